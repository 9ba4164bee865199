"""Jobs that chain stages: what the command line, the demo and the benches run when one stage's output
is the next one's input. Stages never import each other; this module (an entry point) composes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import Progress

from facetwin.convert.run import convert
from facetwin.evaluate.run import evaluate
from facetwin.options import BlendOptions, ConvertOptions, EvaluateOptions


def evaluate_model(model_dir: Path, out: Path, video: Path | None = None, options: EvaluateOptions = EvaluateOptions(),
                   progress: Progress | None = None) -> tuple[dict[str, Any], Path]:
    """``facetwin evaluate``: the held-out figures, and with ``video`` that clip converted (into ``out``) in
    ``options.direction`` with ``options.restore`` and measured (flicker, jitter, identity, expression) on
    the faces convert swapped (the model's source person, ``options.identity``'s, or with
    ``options.all_faces`` every face). Returns the metrics and report path."""
    clip, restored = None, None
    if video is not None:
        converted = out / f"converted_{video.stem}.mp4"
        out.mkdir(parents=True, exist_ok=True)
        report = convert(video, model_dir, converted, ConvertOptions(direction=options.direction, device=options.device,
                                                                     identity=options.identity, all_faces=options.all_faces,
                                                                     blend=BlendOptions(restore=options.restore)), progress)  # fmt: skip
        clip, restored = (video, converted), (report.restored, report.faces, report.lips_closed)
    return evaluate(model_dir, out, options, clip, restored)
