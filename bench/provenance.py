"""Provenance and content-gate figures on the demo output: cap13_edit2.mp4 converted B->A.

Prints JSON:
- watermark: bit accuracy and payload detection rate over every frame of the converted video, as it
  is and after each attack (H.264 CRF 28 re-encode, half size, JPEG 75 per frame, half size then
  CRF 28), and on every frame of the three untouched demo clips (must be 0);
- quality: PSNR of the marked swap against the unmarked swap, and the drop in PSNR against the input
  frame that marking causes; ``margin_sweep`` repeats both, with the payload recovered after CRF 28,
  half size and JPEG 75, for other embedding margins: the trade-off behind ``watermark.ALPHA`` (pass
  ``--model-dir out/model`` to see it on the demo's trained model, whose swap changes the input less);
  ``shaping`` does the same, with every attack, for the mark as shipped (shaped to the picture's
  texture) and unshaped (the same everywhere, as before issue #17);
- soft_null: the soft reader's z (``watermark.soft_read``: how far the best of the 65,536 codewords
  stands out of the noise) on every 2nd frame of the three untouched demo clips, as is, after CRF 28 and
  after half size then CRF 28: the evidence behind ``watermark.SOFT_Z``; ``correct_payload`` counts a
  frame read either way, ``hard_payload`` only those the hard bits (with their 2-bit repair) read;
- flat_patch: the luma standard deviation of a flat wall patch (FLAT_PATCH) over the first 3 s of
  cap13, unmarked, marked unshaped and marked as shipped, as is and after convert's H.264 CRF 18: how
  much grain the mark adds where there is nothing to hide it;
- time: ms per frame of marking, of reading, of the gate's detector; the gate's check of cap13 as
  extract runs it; signing and `verify` per file; convert frames/s as shipped, with the gate checking
  every frame instead of screening, without the gate, and without gate and watermark (median of
  --runs, all four measured in the same run, so the watermark's and the gate's shares of convert's
  time show);
- compare: invisible-watermark's dwtDct, dwtDctSvd and rivaGan (32 bits, "marked" at >= 28 bits right)
  on the same frames and attacks, next to facetwin's own.

    .venv/bin/python bench/provenance.py [--model-dir DIR] [--runs 3] [--compare-frames 12] [--speed-only]
                                         [--watermark-only]

``--watermark-only``: one convert, then only the watermark's tables (robustness, soft_null, shaping,
flat_patch; ~10 minutes against ~50 for everything).

Without --model-dir it trains a throwaway `original` (as bench/convert.py does): the figures here do not
depend on how well the model swaps.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from convert import throwaway_model  # noqa: E402  (bench/convert.py)

from facetwin.convert import run as convert_run  # noqa: E402
from facetwin.convert.run import ConvertOptions, FrameConverter, convert  # noqa: E402
from facetwin.demo_data import ensure_demo_clips  # noqa: E402
from facetwin.media import MediaSource, read_frames  # noqa: E402
from facetwin.provenance import watermark  # noqa: E402
from facetwin.provenance.credentials import local_identity  # noqa: E402
from facetwin.provenance.label import Labeller  # noqa: E402
from facetwin.provenance.payload import Payload  # noqa: E402
from facetwin.provenance.verify import verify_file  # noqa: E402
from facetwin.safety import gate as gate_module  # noqa: E402
from facetwin.safety.detector import NudityDetector  # noqa: E402
from facetwin.safety.gate import ContentGate  # noqa: E402
from facetwin.safety.screen import Screen  # noqa: E402
from facetwin.swapper import Swapper  # noqa: E402

Frames = list[np.ndarray]
FLAT_PATCH = (280, 20, 390, 150)  # x0, y0, x1, y1 in cap13: the bare wall right of the head


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def decode(path: Path) -> Frames:
    return [f.rgb for f in read_frames(MediaSource(path, "video"))]


def h264(frames: Frames, crf: int) -> Frames:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = frames[0].shape[1] // 2 * 2, frames[0].shape[0] // 2 * 2
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf)}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: stream.height, : stream.width]), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def half(frames: Frames) -> Frames:
    return [cv2.resize(f, (f.shape[1] // 2, f.shape[0] // 2), interpolation=cv2.INTER_AREA) for f in frames]


def jpeg(frames: Frames, quality: int = 75) -> Frames:
    out = []
    for f in frames:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        out.append(cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return out


ATTACKS: dict[str, Callable[[Frames], Frames]] = {
    "none": lambda f: f,
    "h264_crf28": lambda f: h264(f, 28),
    "half_size": half,
    "jpeg_q75": jpeg,
    "half_size_then_crf28": lambda f: h264(half(f), 28),
}


def score(frames: Frames, expected: Payload | None) -> dict[str, float]:
    readings = [watermark.read(f) for f in frames]
    found = [r.payload for r in readings if r.payload is not None]
    result = {"frames": len(frames), "detected": round(len(found) / len(frames), 4)}
    if expected is not None:
        result["bit_accuracy"] = round(float(np.mean([r.bit_accuracy(expected) for r in readings])), 4)
        result["correct_payload"] = round(sum(p == expected for p in found) / len(frames), 4)
        result["hard_payload"] = round(sum(r.payload == expected and not r.soft_z for r in readings) / len(frames), 4)
    return result


class _Unmarked(Labeller):
    def mark(self, rgb: np.ndarray) -> np.ndarray:
        return rgb


class _Unscreened:
    def add(self, frames: Frames) -> None:
        pass

    def verdict(self) -> None:
        pass

    def close(self) -> None:
        pass


class _NoGate(ContentGate):
    def screen(self, source: MediaSource) -> _Unscreened:  # type: ignore[override]
        return _Unscreened()


def _screen_every_frame(detect: Callable[[np.ndarray], dict[str, float]]) -> Screen[np.ndarray]:
    return Screen(detect, gap_s=0.0)


def convert_fps(clip: Path, model_dir: Path, out: Path, gate: bool, mark: bool, every_frame: bool = False) -> float:
    """Convert as shipped, or with the gate and/or the watermark taken out, or with the gate checking
    every frame instead of screening (bench instrumentation)."""
    original_gate, original_labeller, original_screen = convert_run.ContentGate, convert_run.Labeller, gate_module.Screen
    try:
        if not gate:
            convert_run.ContentGate = _NoGate  # type: ignore[misc]
        if not mark:
            convert_run.Labeller = _Unmarked  # type: ignore[misc]
        if every_frame:
            gate_module.Screen = _screen_every_frame  # type: ignore[misc,assignment]
        start = time.perf_counter()
        report = convert(clip, model_dir, out, ConvertOptions(direction="b2a"))
        return report.frames / (time.perf_counter() - start)
    finally:
        convert_run.ContentGate, convert_run.Labeller, gate_module.Screen = original_gate, original_labeller, original_screen


def _unshaped_gain(luma: np.ndarray) -> np.ndarray:
    return np.ones((watermark.GRID, watermark.GRID), np.float32)


def _marked(frames: Frames, payload: Payload, shaped: bool) -> Frames:
    original = watermark.texture_gain
    try:
        if not shaped:
            watermark.texture_gain = _unshaped_gain  # type: ignore[assignment]
        return [watermark.embed(f, payload) for f in frames]
    finally:
        watermark.texture_gain = original  # type: ignore[assignment]


def flat_patch(clip: Path, payload: Payload) -> dict[str, dict[str, float]]:
    """Median luma std of FLAT_PATCH over the first 3 s of the clip: unmarked, unshaped, shaped; as is
    and after H.264 CRF 18 (what convert writes)."""
    cut = [f.rgb for f in read_frames(MediaSource(clip, "video"))][:75]
    x0, y0, x1, y1 = FLAT_PATCH

    def std(frames: Frames) -> float:
        return round(statistics.median(float(watermark._luma(f)[y0:y1, x0:x1].std()) for f in frames), 2)

    variants = {"unmarked": cut, "unshaped": _marked(cut, payload, False), "shipped": _marked(cut, payload, True)}
    return {name: {"as_is": std(frames), "after_crf18": std(h264(frames, 18))} for name, frames in variants.items()}


def shaping(plain: Frames, sources: Frames, payload: Payload) -> dict[str, dict[str, float]]:
    """The mark as shipped against the unshaped mark, at the same ALPHA, on the same swapped frames:
    PSNR cost and the payload recovered after every attack."""
    results = {}
    for name, shaped in (("unshaped", False), ("shipped", True)):
        marked = _marked(plain, payload, shaped)
        against_unmarked, drop = marking_cost(marked, plain, sources)
        results[name] = {
            "psnr_drop_vs_input_db": round(drop, 3),
            "psnr_vs_unmarked_db": round(against_unmarked, 2),
            **{attack_name: score(attack(marked), payload)["correct_payload"] for attack_name, attack in ATTACKS.items()},
        }
    return results


def compare_invisible_watermark(frames: Frames, seed: int = 0) -> dict[str, object]:
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        return {"skipped": "invisible-watermark is not installed (pip install --no-deps invisible-watermark PyWavelets)"}
    bits = list(np.random.default_rng(seed).integers(0, 2, 32))
    results: dict[str, object] = {}
    for method in ("dwtDct", "dwtDctSvd", "rivaGan"):
        if method == "rivaGan":
            WatermarkEncoder.loadModel()
        encoder = WatermarkEncoder()
        encoder.set_watermark("bits", bits)
        decoder = WatermarkDecoder("bits", 32)
        bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
        start = time.perf_counter()
        marked = [cv2.cvtColor(encoder.encode(f, method), cv2.COLOR_BGR2RGB) for f in bgr]
        embed_ms = (time.perf_counter() - start) / len(frames) * 1e3

        def read(attacked: Frames, size: tuple[int, int], decoder: Any = decoder, method: str = method) -> dict[str, float]:
            # these methods need >= 256x256 pixels: a half-size frame is scaled back up to be read
            matches = []
            for f in attacked:
                f = cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) if f.shape[1::-1] != size else f
                decoded = decoder.decode(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), method)
                matches.append(int(np.sum(np.asarray(decoded, int) == np.asarray(bits, int))))
            return {"bit_accuracy": round(float(np.mean(matches)) / 32, 4), "marked": round(float(np.mean([m >= 28 for m in matches])), 4)}

        size = frames[0].shape[1::-1]
        results[method] = {
            "embed_ms": round(embed_ms, 1),
            "psnr_db": round(statistics.median(psnr(m, f) for m, f in zip(marked, frames)), 2),
            **{name: read(attack(marked), size) for name, attack in ATTACKS.items() if name != "half_size_then_crf28"},
            "unmarked": read(frames, size),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare-frames", type=int, default=12)
    parser.add_argument("--margins", default="0.3,0.22,0.18", help="embedding margins to sweep (empty: skip)")
    parser.add_argument("--speed-only", action="store_true", help="only convert's frames/s and the shares (a quick rerun)")
    parser.add_argument("--watermark-only", action="store_true", help="one convert, then only the watermark's tables")
    args = parser.parse_args()
    clips = ensure_demo_clips()
    with tempfile.TemporaryDirectory(prefix="facetwin-bench-") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = args.model_dir or throwaway_model(scratch)
        output = scratch / "demo_swap.mp4"
        fps: dict[str, list[float]] = {"shipped": [], "gate_checking_every_frame": [], "without_gate": [], "without_gate_and_watermark": []}
        if args.watermark_only:
            convert_fps(clips.cap13, model_dir, output, gate=True, mark=True)
        for run in range(0 if args.watermark_only else args.runs):
            fps["shipped"].append(convert_fps(clips.cap13, model_dir, output, gate=True, mark=True))
            fps["gate_checking_every_frame"].append(
                convert_fps(clips.cap13, model_dir, scratch / "full.mp4", gate=True, mark=True, every_frame=True)
            )
            fps["without_gate"].append(convert_fps(clips.cap13, model_dir, scratch / "nogate.mp4", gate=False, mark=True))
            fps["without_gate_and_watermark"].append(convert_fps(clips.cap13, model_dir, scratch / "plain.mp4", gate=False, mark=False))
            print(f"run {run + 1}: " + json.dumps({name: round(values[-1], 2) for name, values in fps.items()}), file=sys.stderr)
        speed = {name: round(statistics.median(values), 2) if values else float("nan") for name, values in fps.items()}
        if args.speed_only:
            print(json.dumps({"convert_fps": speed, **shares(speed), "runs": fps}, indent=2))
            return

        swapper = Swapper(model_dir)
        payload = Labeller(swapper.model_id, "b2a", local_identity()).payload
        converted = decode(output)
        robustness = {name: score(attack(converted), payload) for name, attack in ATTACKS.items()}
        unmarked = {clip.name: score(decode(clip), None) for clip in (clips.franck, clips.cap12, clips.cap13)}
        null = soft_null([clips.franck, clips.cap12, clips.cap13])

        # Marking's cost in picture quality, before any encoding: the same swapped frames, with and without.
        inputs = [f for f in read_frames(MediaSource(clips.cap13, "video"), every=8)]
        converter = FrameConverter(swapper, ConvertOptions(direction="b2a"), _Unmarked(swapper.model_id, "b2a", local_identity()))
        swapped = converter.convert_batch(inputs)
        plain = [out for out, faces in swapped if faces]
        sources = [f.rgb for f, (_, faces) in zip(inputs, swapped, strict=True) if faces]
        converter.close()
        start = time.perf_counter()
        marked = [watermark.embed(f, payload) for f in plain]
        mark_ms = (time.perf_counter() - start) / len(plain) * 1e3
        start = time.perf_counter()
        for f in marked:
            watermark.read(f)
        read_ms = (time.perf_counter() - start) / len(marked) * 1e3
        psnr_vs_unmarked, drop = marking_cost(marked, plain, sources)
        sweep = {} if args.watermark_only else margin_sweep(plain, sources, payload, [float(m) for m in args.margins.split(",") if m])
        shaped_or_not = shaping(plain, sources, payload)
        flat = flat_patch(clips.cap13, payload)

        if args.watermark_only:
            print(json.dumps({"clip": clips.cap13.name, "model": swapper.model_id, "payload": payload.hex,
                              "watermark": {"converted_output": robustness, "untouched_demo_clips": unmarked, "soft_null": null},
                              "quality": {"psnr_marked_vs_unmarked_db": round(psnr_vs_unmarked, 2), "frames": len(plain),
                                          "shaping": shaped_or_not},
                              "flat_patch": {"box": FLAT_PATCH, "frames": 75, "luma_std": flat}}, indent=2))  # fmt: skip
            return

        detector = NudityDetector()
        sample = [f.rgb for f in read_frames(MediaSource(clips.cap13, "video"), every=12)][:48]
        detector.scores(sample[:8])
        start = time.perf_counter()
        for i in range(0, len(sample), 8):
            detector.scores(sample[i : i + 8])
        gate_ms = (time.perf_counter() - start) / len(sample) * 1e3
        start = time.perf_counter()
        checked = ContentGate().check(MediaSource(clips.cap13, "video")).checked_frames
        check_s = time.perf_counter() - start

        start = time.perf_counter()
        verdict = verify_file(output)
        verify_s = time.perf_counter() - start
        compare_frames = [f.rgb for f in read_frames(MediaSource(clips.cap13, "video"), every=max(1, 765 // args.compare_frames))]
        compare_frames = compare_frames[: args.compare_frames]
        ours = {"embed_ms": round(float(np.mean([_time_ms(watermark.embed, f, payload) for f in compare_frames])), 2),
                "psnr_db": round(statistics.median(psnr(watermark.embed(f, payload), f) for f in compare_frames), 2),
                **{name: score(attack([watermark.embed(f, payload) for f in compare_frames]), payload)
                   for name, attack in ATTACKS.items() if name != "half_size_then_crf28"},
                "unmarked": score(compare_frames, payload)}

    print(json.dumps({
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "clip": clips.cap13.name,
        "model": swapper.model_id,
        "payload": payload.hex,
        "watermark": {"converted_output": robustness, "untouched_demo_clips": unmarked, "soft_null": null},
        "quality": {"psnr_marked_vs_unmarked_db": round(psnr_vs_unmarked, 2), "psnr_drop_vs_input_db": round(drop, 3),
                    "frames": len(plain), "margin_sweep": sweep, "shaping": shaped_or_not},
        "flat_patch": {"box": FLAT_PATCH, "frames": 75, "luma_std": flat},
        "time": {
            "mark_ms_per_frame": round(mark_ms, 2),
            "read_ms_per_frame": round(read_ms, 2),
            "gate_detector_ms_per_frame": round(gate_ms, 1),
            "gate_check_s_cap13": round(check_s, 2),  # as extract runs it, before storing anything
            "gate_check_frames_cap13": checked,
            "verify_s_per_video": round(verify_s, 2),
            "convert_fps": speed,
            **shares(speed),
        },
        "verify_verdict": verdict.summary,
        "compare": {"facetwin_spread_spectrum_40bit": ours, **compare_invisible_watermark(compare_frames)},
    }, indent=2))


def soft_null(clips: list[Path]) -> dict[str, float]:
    """The soft reader's z on unmarked frames (every 2nd of each clip; as is, CRF 28, half then CRF 28)."""
    z = np.array([watermark.soft_read(f)[1] for clip in clips for name in ("none", "h264_crf28", "half_size_then_crf28")
                  for f in ATTACKS[name](decode(clip)[::2])])  # fmt: skip
    return {"frames": len(z), "z_median": round(float(np.median(z)), 2), "z_p99": round(float(np.percentile(z, 99)), 2),
            "z_max": round(float(z.max()), 2), "over_soft_z": int((z > watermark.SOFT_Z).sum()), "soft_z": watermark.SOFT_Z}


def shares(speed: dict[str, float]) -> dict[str, float]:
    """The share of a frame's time that each adds: 1 - (fps with it / fps without it)."""
    return {
        "watermark_share_of_convert_time": round(1 - speed["without_gate"] / speed["without_gate_and_watermark"], 3),
        "gate_share_of_convert_time": round(1 - speed["shipped"] / speed["without_gate"], 3),
        "gate_share_checking_every_frame": round(1 - speed["gate_checking_every_frame"] / speed["without_gate"], 3),
    }


def marking_cost(marked: Frames, plain: Frames, sources: Frames) -> tuple[float, float]:
    """(PSNR of the marked swap against the unmarked one, the PSNR against the input that marking loses),
    medians over the frames."""
    against_unmarked = statistics.median(psnr(m, p) for m, p in zip(marked, plain))
    drop = statistics.median(psnr(p, s) - psnr(m, s) for m, p, s in zip(marked, plain, sources))
    return against_unmarked, drop


def margin_sweep(plain: Frames, sources: Frames, payload: Payload, margins: list[float]) -> dict[str, dict[str, float]]:
    """The trade-off behind watermark.ALPHA: for each embedding margin, the PSNR drop against the input
    that marking causes, the PSNR against the unmarked swap, and the payload recovered after each
    required attack. A smaller margin costs less PSNR and survives less."""
    shipped = watermark.ALPHA
    results = {}
    try:
        for margin in margins:
            watermark.ALPHA = margin
            marked = [watermark.embed(f, payload) for f in plain]
            against_unmarked, drop = marking_cost(marked, plain, sources)
            results[str(margin)] = {
                "psnr_drop_vs_input_db": round(drop, 3),
                "psnr_vs_unmarked_db": round(against_unmarked, 2),
                **{name: score(attack(marked), payload)["correct_payload"]
                   for name, attack in ATTACKS.items() if name in ("h264_crf28", "half_size", "jpeg_q75")},
            }  # fmt: skip
    finally:
        watermark.ALPHA = shipped
    return results


def _time_ms(function: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    function(*args)
    return (time.perf_counter() - start) * 1e3


if __name__ == "__main__":
    main()
