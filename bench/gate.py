"""The content gate's measurements: the figures behind rule.MIN_FLAGGED and rule.WINDOW_S, screen.CHECK_GAP_S
and screen.SUSPICION_SCORE, and gate.CUT_LEVEL.

NudeNet runs, as the gate runs it, on every frame of the three demo clips and of the clean footage of
people in ordinary clothes that bench/clean_footage.py fetches from public packages. Prints JSON:

- ``clean_footage``: per file, frames, frames flagged (an explicit class at >= 0.5: false positives),
  frames at >= SUSPICION_SCORE, the highest explicit score, the most flagged frames in any WINDOW_S and
  the longest run of consecutive suspicious frames (false alarms come in runs, not singly); totals, the
  false-positive rate per frame and its exact (Clopper-Pearson) 95 % upper bound;
- ``rule_choice``: for k flagged frames within w seconds, the chance that a clean 10-minute clip at 25
  frames/s is refused when false positives are scattered at the upper-bound rate (2,000 simulated
  clips), and the share of a 2 s explicit segment's frames the detector must flag at 10, 25 and 60
  frames/s;
- ``cuts``: the mean absolute change of the gate's 32x32 luma thumbnail between consecutive frames of
  each clean video (the largest, and how many exceed CUT_LEVEL), and the same across every splice of one
  video's last frame onto another's first (the smallest);
- ``screen``: on each clean video's recorded detections, the share of frames the screen checks and
  whether it decides as the full check; on recorded sequences with an explicit segment (0.12
  to 4 s, every phase of the schedule, four detector patterns, with and without a visible cut), how
  many the full check refuses and the screen passes: none wherever the segment is longer than the gap
  or starts with a visible cut and the frames the detector does not flag still score SUSPICION_SCORE;
  where they score nothing ("sparse_nothing"), the share passed is the screen's limit.
  (Each sequence is a clean minute around its segment: the rule and the screen look 2 s around.)

    .venv/bin/python bench/gate.py [--detections FILE]

``--detections FILE`` keeps the per-frame detections there (JSON) and reuses them on later runs: the
detector pass is ~9,000 frames.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from itertools import pairwise, permutations
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from clean_footage import ensure_clean_footage  # noqa: E402  (bench/clean_footage.py)

from facetwin.demo_data import ensure_demo_clips  # noqa: E402
from facetwin.media import MediaSource, TruncatedMedia, read_frames, video_info  # noqa: E402
from facetwin.safety import gate, rule, screen  # noqa: E402
from facetwin.safety.detector import NudityDetector  # noqa: E402
from facetwin.safety.rule import CheckedFrame, FrameDetections, decide, flagged  # noqa: E402

CLOTHED: FrameDetections = {"FACE_FEMALE": 0.83, "ARMPITS_COVERED": 0.31}
EXPLICIT: FrameDetections = {"FACE_FEMALE": 0.79, "FEMALE_BREAST_EXPOSED": 0.71}
NEAR_MISS: FrameDetections = {"FACE_FEMALE": 0.8, "FEMALE_BREAST_EXPOSED": 0.3}


def _frames(path: Path, kind: str) -> list:
    frames = []
    try:
        for frame in read_frames(MediaSource(path, kind)):
            frames.append(frame)  # noqa: PERF402  (a loop keeps what decoded before TruncatedMedia)
    except TruncatedMedia:  # the gate screens what decodes; so does this
        pass
    return frames


def _thumb(rgb: np.ndarray) -> np.ndarray:
    shrunk = NudityDetector.shrink(rgb)
    return cv2.resize(cv2.cvtColor(shrunk, cv2.COLOR_BGR2GRAY), (32, 32), interpolation=cv2.INTER_AREA)


def record(paths: list[Path], cache: Path | None) -> dict[str, dict]:
    """Per file: kind, fps, frame times, detections (as the gate records them) and thumbnail changes."""
    stored = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    detector = None
    for path in paths:
        kind = "image" if path.suffix.lower() in (".jpg", ".png") else "video"
        frames = _frames(path, kind)
        thumbs = [_thumb(f.rgb) for f in frames]
        entry = stored.get(path.name, {})
        if len(entry.get("scores", [])) != len(frames):
            detector = detector or NudityDetector()
            entry = {"scores": [s for i in range(0, len(frames), 8) for s in detector.scores([f.rgb for f in frames[i : i + 8]])]}
        entry.update(
            kind=kind,
            fps=video_info(path).fps if kind == "video" else 0.0,
            seconds=[f.seconds for f in frames],
            changes=[float(cv2.absdiff(a, b).mean()) for a, b in pairwise(thumbs)],
            ends=[thumbs[0].tolist(), thumbs[-1].tolist()],
        )
        stored[path.name] = entry
    if cache is not None:
        cache.write_text(json.dumps(stored))
    return stored


def explicit_score(scores: FrameDetections) -> float:
    return max((s for name, s in scores.items() if name in rule.EXPLICIT_CLASSES), default=0.0)


def most_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def longest_run(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def upper_bound(failures: int, trials: int, confidence: float = 0.95) -> float:
    """Clopper-Pearson upper bound of a binomial rate, by bisection on the binomial CDF."""
    def cdf(p: float) -> float:
        return sum(math.comb(trials, i) * p**i * (1 - p) ** (trials - i) for i in range(failures + 1))

    low, high = failures / trials, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) > 1 - confidence else (low, middle)
    return high


def clean_footage(data: dict[str, dict]) -> tuple[dict, float]:
    per_file, frames, flagged_frames, videos, video_flagged, most = {}, 0, 0, 0, 0, 0
    for name, entry in data.items():
        scores = entry["scores"]
        explicit = [explicit_score(s) for s in scores]
        hits = [bool(flagged(s)) for s in scores]
        times = [t for t, hit in zip(entry["seconds"], hits) if hit]
        window_most = most_in_window(times, rule.WINDOW_S)
        frames += len(scores)
        flagged_frames += sum(hits)
        if entry["kind"] == "video":
            videos += len(scores)
            video_flagged += sum(hits)
            most = max(most, window_most)
        if entry["kind"] == "video" or sum(hits) or max(explicit) >= screen.SUSPICION_SCORE:
            per_file[name] = {
                "frames": len(scores),
                "flagged": sum(hits),
                "suspicious": sum(e >= screen.SUSPICION_SCORE for e in explicit),
                "max_explicit_score": round(max(explicit), 3),
                "most_flagged_in_window": window_most,
                "longest_suspicious_run": longest_run([e >= screen.SUSPICION_SCORE for e in explicit]),
            }
    bound = upper_bound(flagged_frames, frames)
    totals = {
        "files": len(data),
        "frames": frames,
        "flagged": flagged_frames,
        "false_positive_rate": round(flagged_frames / frames, 6),
        "false_positive_rate_upper95": round(bound, 6),
        "video_frames": videos,
        "video_flagged": video_flagged,
        "most_flagged_in_window_any_video": most,
    }
    return {"files": per_file, "totals": totals}, bound


def rule_choice(rate: float, trials: int = 2000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    fps, frames = 25.0, 15000
    counts = rng.poisson(rate * frames, trials)
    clips = [np.sort(rng.choice(frames, n, replace=False)) / fps for n in counts]
    table = {}
    for window in (1.0, 2.0, 4.0):
        for k in (1, 2, 3, 4):
            refused = sum(bool(len(t) >= k and np.any(t[k - 1 :] - t[: len(t) - k + 1] <= window)) for t in clips)
            table[f"k{k}_w{window:g}s"] = {
                "clean_10min_refused": round(refused / trials, 4),
                "share_of_2s_segment_to_flag": {
                    f"{f}fps": round(min(1.0, k / (min(window, 2.0) * f)), 3) for f in (10, 25, 60)
                },
            }
    return {"false_positive_rate_used": round(rate, 6), "simulated_clips": trials, "table": table}


def cuts(data: dict[str, dict]) -> dict:
    videos = {name: entry for name, entry in data.items() if entry["kind"] == "video"}
    per_file = {
        name: {
            "largest_change": round(max(entry["changes"]), 1),
            "p999_change": round(float(np.percentile(entry["changes"], 99.9)), 1),
            "cuts_at_level": sum(c > gate.CUT_LEVEL for c in entry["changes"]),
        }
        for name, entry in videos.items()
    }
    splices = [
        float(np.abs(np.array(a["ends"][1], np.float32) - np.array(b["ends"][0], np.float32)).mean())
        for a, b in permutations(videos.values(), 2)
    ]
    return {
        "cut_level": gate.CUT_LEVEL,
        "files": per_file,
        "splices": len(splices),
        "smallest_splice_change": round(min(splices), 1),
        "splices_below_level": sum(s <= gate.CUT_LEVEL for s in splices),
    }


def _screened(frames: list[CheckedFrame], cut_frames: set[int]) -> tuple[rule.GateDecision, int]:
    checker: screen.Screen[FrameDetections] = screen.Screen(lambda scores: scores)
    for frame in frames:
        checker.feed(frame.index, frame.seconds, frame.scores, cut=frame.index in cut_frames)
    return decide(checker.checked), len(checker.checked)


def screen_on_recordings(data: dict[str, dict]) -> dict:
    per_file = {}
    for name, entry in data.items():
        if entry["kind"] != "video":
            continue
        frames = [CheckedFrame(i, t, s) for i, (t, s) in enumerate(zip(entry["seconds"], entry["scores"]))]
        cut_frames = {i + 1 for i, c in enumerate(entry["changes"]) if c > gate.CUT_LEVEL}
        screened, checked = _screened(frames, cut_frames)
        per_file[name] = {"checked_share": round(checked / len(frames), 3), "same_decision": screened.refused == decide(frames).refused}
    return per_file


def screen_on_sequences() -> dict:
    """Per detector pattern: sequences the full check refuses, and of those the ones the screen passes,
    apart for segments shorter than the gap with no visible cut (which the screen may step over)."""
    fps, length = 25.0, 1500  # a clean minute around each segment: the screen and the rule only look 2 s around
    patterns = ("every", "alternate", "sparse_near_miss", "sparse_nothing")
    results = {p: {"refused_by_full": 0, "passed_by_screen": 0, "of_them_shorter_than_gap_no_cut": 0} for p in patterns}
    checked_share = []
    for seconds in (0.12, 0.2, 0.5, 1.0, 2.0, 4.0):
        for phase in range(9):
            for pattern in patterns:
                for with_cut in (True, False):
                    for seed in range(3):
                        rng = random.Random(seed * 100 + phase)
                        frames: list[FrameDetections] = [CLOTHED] * length
                        first = int(20 * fps) + phase
                        end = first + max(1, round(seconds * fps))
                        for i in range(first, end):
                            hit = (
                                True if pattern == "every"
                                else (i - first) % 2 == 0 if pattern == "alternate"
                                else rng.random() < 1 / 3
                            )  # fmt: skip
                            frames[i] = EXPLICIT if hit else NEAR_MISS if pattern != "sparse_nothing" else CLOTHED
                        timed = [CheckedFrame(i, i / fps, s) for i, s in enumerate(frames)]
                        full = decide(timed)
                        screened, checked = _screened(timed, {first, end} if with_cut else set())
                        checked_share.append(checked / length)
                        missed = full.refused and not screened.refused
                        results[pattern]["refused_by_full"] += full.refused
                        results[pattern]["passed_by_screen"] += missed
                        results[pattern]["of_them_shorter_than_gap_no_cut"] += (
                            missed and not with_cut and seconds < screen.CHECK_GAP_S
                        )
    return {"sequences": results, "median_checked_share": round(float(np.median(checked_share)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detections", type=Path, help="keep and reuse the per-frame detections here (JSON)")
    args = parser.parse_args()
    demo = ensure_demo_clips()
    footage = ensure_clean_footage()
    data = record([demo.franck, demo.cap12, demo.cap13, *footage.videos, *footage.images], args.detections)
    false_positives, bound = clean_footage(data)
    print(json.dumps({
        "detector": "NudeNet 320n, as facetwin.safety.detector runs it",
        "rule": {"score_threshold": rule.SCORE_THRESHOLD, "min_flagged": rule.MIN_FLAGGED, "window_s": rule.WINDOW_S},
        "screen": {"check_gap_s": screen.CHECK_GAP_S, "suspicion_score": screen.SUSPICION_SCORE},
        "skipped_sources": footage.skipped,
        "clean_footage": false_positives,
        "rule_choice": rule_choice(bound),
        "cuts": cuts(data),
        "screen_on_clean_videos": screen_on_recordings(data),
        "screen_on_recorded_sequences": screen_on_sequences(),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
