"""NudeNet's bundled 320n detector, run the way NudeNet runs it, minus its per-box Python loop.

The gate only needs, per frame, the best score of each class, so the 2,100 candidate boxes are reduced
with one numpy max instead of NudeNet's loop and NMS (which cost more than the network on this CPU).
The input is prepared exactly as `nudenet.NudeDetector` prepares it (pad right/bottom to a square,
resize to 320, channels in NudeNet's order), and a test checks that the scores agree.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
INPUT_SIZE = 320
MIN_SCORE = 0.2  # NudeNet's own floor for reporting a box


def model_path() -> Path:
    import nudenet  # located, not run: its module-level code only defines names

    return Path(os.path.dirname(nudenet.__file__)) / "320n.onnx"


class NudityDetector:
    def __init__(self, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @staticmethod
    def shrink(rgb: np.ndarray) -> np.ndarray:
        """The network's view of an RGB uint8 frame (H, W, 3): padded right/bottom to a square and
        resized to INPUT_SIZE, as uint8 (INPUT_SIZE, INPUT_SIZE, 3) in B, G, R order (NudeNet reads BGR
        with cv2 and swaps twice, so its network sees B, G, R: the same here). A quarter of the bytes
        of the float input, so the gate can keep a couple of seconds of frames to check later."""
        height, width = rgb.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)
        square[:height, :width] = rgb[..., ::-1]
        return cv2.resize(square, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)

    @staticmethod
    def prepare(rgb: np.ndarray) -> np.ndarray:
        """The network's input for one RGB frame: float32 (3, INPUT_SIZE, INPUT_SIZE) in [0, 1]."""
        return NudityDetector.shrink(rgb).transpose(2, 0, 1).astype(np.float32) / 255.0

    def scores(self, frames: list[np.ndarray]) -> list[dict[str, float]]:
        """For each RGB frame, the best score of every class seen at NudeNet's reporting floor or above."""
        return self.scores_shrunk([self.shrink(f) for f in frames])

    def scores_shrunk(self, shrunk: list[np.ndarray]) -> list[dict[str, float]]:
        """``scores`` for frames already passed through ``shrink``."""
        if not shrunk:
            return []
        batch = np.stack(shrunk).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        output = self.session.run(None, {self.input_name: batch})[0]  # (batch, 4 + classes, boxes)
        best = output[:, 4:, :].max(axis=2)
        return [{LABELS[i]: float(s) for i, s in enumerate(row) if s >= MIN_SCORE} for row in best]
