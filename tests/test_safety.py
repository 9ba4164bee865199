"""The content gate: its decision rule on recorded detections, the real NudeNet model on the demo clips,
and the refusal wired into extract and convert (nothing written for a refused file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nudenet import NudeDetector

from conftest import save_frame
from facetwin.convert.run import ConvertOptions, convert
from facetwin.demo_data import DemoClips
from facetwin.extract import extract
from facetwin.faceset import FaceSet
from facetwin.media import MediaSource, read_frames, video_info
from facetwin.safety import rule
from facetwin.safety.detector import NudityDetector
from facetwin.safety.gate import ContentGate, ContentRefused
from facetwin.safety.rule import decide

# Detections as the gate records them (class -> best score in the frame), in the shapes the real model
# produces: faces and covered parts everywhere, explicit classes in some frames.
CLOTHED = {"FACE_FEMALE": 0.83, "ARMPITS_COVERED": 0.31, "BELLY_COVERED": 0.42}
EXPLICIT = {"FACE_FEMALE": 0.79, "FEMALE_BREAST_EXPOSED": 0.71, "BELLY_EXPOSED": 0.55}
BORDERLINE = {"FACE_MALE": 0.88, "BUTTOCKS_EXPOSED": 0.49}
COVERED_ONLY = {"FEMALE_BREAST_COVERED": 0.93, "BUTTOCKS_COVERED": 0.9, "FEMALE_GENITALIA_COVERED": 0.6}


def test_rule_on_recorded_detections() -> None:
    assert not decide([]).refused
    assert not decide([CLOTHED]).refused
    image = decide([EXPLICIT])
    assert image.refused and image.flagged_frames == 1 and image.classes == ("FEMALE_BREAST_EXPOSED",)
    assert not decide([BORDERLINE]).refused, "below the score threshold does not count"
    assert decide([{**BORDERLINE, "BUTTOCKS_EXPOSED": 0.5}]).refused, "the threshold itself counts"
    assert not decide([COVERED_ONLY, {"MALE_BREAST_EXPOSED": 0.95, "BELLY_EXPOSED": 0.9, "FEET_EXPOSED": 0.9}]).refused
    # A video: a stray detection in a long clip passes, a pattern does not.
    assert not decide([CLOTHED] * 99 + [EXPLICIT]).refused
    assert not decide([CLOTHED] * 95 + [EXPLICIT] * 5).refused, "exactly 5% is still a small share"
    many = decide([CLOTHED] * 94 + [EXPLICIT] * 4 + [{"ANUS_EXPOSED": 0.8, "MALE_GENITALIA_EXPOSED": 0.6}] * 2)
    assert many.refused and many.flagged_frames == 6 and many.sampled_frames == 100
    assert many.classes == ("FEMALE_BREAST_EXPOSED", "ANUS_EXPOSED", "MALE_GENITALIA_EXPOSED")
    assert abs(many.flagged_share - 0.06) < 1e-9
    assert str(ContentRefused(Path("clip.mp4"), decide([EXPLICIT] * 3))) == (
        "clip.mp4: refused: facetwin does not process sexually explicit material "
        "(female breast exposed detected in 3 of 3 sampled frames)"
    )


def test_detector_scores_match_nudenet(clips: DemoClips) -> None:
    frames = [f.rgb for f in read_frames(MediaSource(clips.cap12, "video"), every=200)]
    ours = NudityDetector().scores(frames)
    reference = NudeDetector()
    for rgb, scores in zip(frames, ours, strict=True):
        theirs: dict[str, float] = {}
        for box in reference.detect(np.ascontiguousarray(rgb[..., ::-1])):
            theirs[box["class"]] = max(theirs.get(box["class"], 0.0), box["score"])
        assert theirs, "NudeNet sees at least the face"
        for name, score in theirs.items():
            assert scores[name] == pytest.approx(score, abs=1e-4)


@pytest.mark.slow
def test_demo_clips_pass_the_gate(clips: DemoClips) -> None:
    gate = ContentGate()
    for clip in (clips.franck, clips.cap12, clips.cap13):
        decision = gate.check(MediaSource(clip, "video"))
        info = video_info(clip)
        seconds = (info.frame_count or 0) / info.fps
        assert not decision.refused and decision.flagged_frames == 0
        assert abs(decision.sampled_frames - seconds) <= 2, "about one frame a second"


@pytest.fixture
def faces_count_as_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    """No explicit material belongs in a test suite: to see the refusal path run end to end on the real
    detector, count the faces it finds on the demo clips as explicit for the duration of a test."""
    monkeypatch.setattr(rule, "EXPLICIT_CLASSES", rule.EXPLICIT_CLASSES | {"FACE_FEMALE", "FACE_MALE"})


@pytest.mark.usefixtures("faces_count_as_explicit")
def test_extract_refuses_and_writes_nothing_for_the_file(clips: DemoClips, tmp_path: Path) -> None:
    output = tmp_path / "set"
    report = extract([clips.cap13], output)
    assert report.exit_code == 1 and report.results[0].refused
    assert report.problems[0].startswith(f"{clips.cap13}: refused: facetwin does not process sexually explicit material")
    with FaceSet(output) as store:
        assert store.counts() == [], "nothing of a refused file enters the set"
    assert not list(output.rglob("*.png")), "and no face crop is written"


@pytest.mark.usefixtures("faces_count_as_explicit")
def test_convert_refuses_video_image_and_folder_member(model_dir: Path, clips: DemoClips, tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    with pytest.raises(ContentRefused, match="refused: facetwin does not process sexually explicit material"):
        convert(clips.cap13, model_dir, output, ConvertOptions(direction="b2a"))
    assert list(tmp_path.iterdir()) == [], "no output and no partial file"
    folder = tmp_path / "in"
    folder.mkdir()
    save_frame(clips.cap12, 0, folder / "face.png")
    report = convert(folder, model_dir, tmp_path / "out", ConvertOptions(direction="b2a"))
    assert report.frames == 0 and len(report.refused) == 1 and "face.png: refused" in report.refused[0]
    assert list((tmp_path / "out").iterdir()) == []
