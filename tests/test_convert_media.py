"""The issue's examples through ``facetwin convert`` with a trained model: what a player sees of each output
against what it sees of the input, the notices printed, and the provenance label verifying on each.

Inputs are made here from cap13 (two or three seconds each) the way phones, editors and damaged copies
write them. Slow tier: these need the session's trained model.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from facetwin.media.orientation import Orientation
from facetwin.provenance.verify import verify_file
from media_clips import (
    Clip,
    Track,
    bar_centres,
    colour_bars,
    colour_tags,
    damage,
    packets,
    player_view,
    stream_summary,
    write_clip,
)


def convert_cli(source: Path, model_dir: Path, output: Path) -> str:
    """Run ``facetwin convert`` as a user would; return what it printed on stderr (the notices)."""
    result = run_cli("convert", source, "-m", model_dir, "-o", output, "--direction", "b2a")
    assert result.returncode == 0, result.stderr
    verdict = verify_file(output)
    assert verdict.synthetic and verdict.credentials.valid and not verdict.problems, "the provenance label must verify"
    return " ".join(result.stderr.split())  # the console wraps long lines


def test_rotated_clips_convert_as_the_upright_one(model_dir: Path, cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """-90° (a phone's portrait clip) and 180°: the output shows what the input shows, and the swap is the
    one made on the same clip stored upright (the 180° face was garbled, the -90° output lay on its side)."""
    frames = cap13_rgb[:50]
    upright = write_clip(tmp_path / "upright.mp4", frames, Clip())
    convert_cli(upright, model_dir, tmp_path / "upright_out.mp4")
    reference = player_view(tmp_path / "upright_out.mp4")
    for degrees in (-90, 180):
        source = write_clip(tmp_path / f"turned{degrees}.mp4", [Orientation(degrees % 360).stored(f) for f in frames], Clip(rotation=degrees))
        output = tmp_path / f"turned{degrees}_out.mp4"
        notices = convert_cli(source, model_dir, output)
        assert f"{output}: display rotation" in notices and "written upright, without a rotation tag" in notices
        seen_in, seen_out = player_view(source), player_view(output)
        assert len(seen_out) == len(seen_in) == 50 and seen_out[0].rgb.shape == (300, 400, 3)
        for before, after, same_swap in zip(seen_in, seen_out, reference):
            assert np.abs(after.rgb - same_swap.rgb).mean() < 2.5, "the swap must be the upright clip's swap"
            assert np.abs(after.rgb - before.rgb).mean() < 12, "the output must show the input's picture, upright"


def test_hd_colour_bars_keep_their_colours_and_tags(model_dir: Path, tmp_path: Path) -> None:
    """1280x720 H.264 tagged BT.709: the output was untagged and encoded with BT.601 (green 220 shown as 185)."""
    bars = colour_bars(1280, 720)
    source = write_clip(tmp_path / "bars.mp4", [bars] * 25, Clip(colour=(1, 1, 1, 1)))
    output = tmp_path / "bars_out.mp4"
    convert_cli(source, model_dir, output)
    assert colour_tags(output) == (1, 1, 1, 1)
    for before, after in zip(player_view(source), player_view(output), strict=True):
        assert np.abs(bar_centres(after.rgb) - bar_centres(before.rgb)).max() <= 3.0


def test_odd_frame_size_is_kept(model_dir: Path, cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """401x299: silently 400x298 before."""
    frames = [np.ascontiguousarray(np.pad(f, ((0, 0), (0, 1), (0, 0)), mode="edge")[:299]) for f in cap13_rgb[:50]]
    source = write_clip(tmp_path / "odd.mp4", frames, Clip(pix_fmt="yuv444p"))
    output = tmp_path / "odd_out.mp4"
    result = run_cli("convert", source, "-m", model_dir, "-o", output, "--direction", "b2a")
    assert result.returncode == 0, result.stderr
    assert "50 frames, 50 with a swapped face" in result.stdout
    seen = player_view(output)
    assert len(seen) == 50 and seen[0].rgb.shape == (299, 401, 3)
    assert verify_file(output).synthetic


def test_transparent_border_stays_transparent(model_dir: Path, cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """An RGBA PNG with a transparent border: 31,600 transparent pixels became opaque."""
    rgba = np.dstack([cap13_rgb[30], np.full((300, 400), 255, np.uint8)])
    rgba[:20, :, 3] = rgba[-20:, :, 3] = rgba[:, :20, 3] = rgba[:, -20:, 3] = 0
    rgba[20:30, 20:-20, 3] = 128
    source = tmp_path / "cut_out.png"
    Image.fromarray(rgba, "RGBA").save(source)
    output = tmp_path / "cut_out_swapped.png"
    convert_cli(source, model_dir, output)
    written = np.asarray(Image.open(output))
    assert written.shape == (300, 400, 4) and np.array_equal(written[..., 3], rgba[..., 3])
    assert (written[..., 3] == 0).sum() == 400 * 300 - 360 * 260


def test_every_audio_track_is_kept(model_dir: Path, cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """An MP4 with two AAC tracks: the second was dropped silently."""
    source = write_clip(tmp_path / "two_tracks.mp4", cap13_rgb, Clip(tracks=[Track(440, language="eng"), Track(660, layout="stereo", language="deu")]))
    output = tmp_path / "two_tracks_out.mp4"
    notices = convert_cli(source, model_dir, output)
    assert stream_summary(output) == stream_summary(source) == [("video", "h264", "und"), ("audio", "aac", "eng"), ("audio", "aac", "deu")]
    assert packets(output, 1) == packets(source, 1) and packets(output, 2) == packets(source, 2)
    assert "not carried" not in notices and "re-encoded" not in notices


def test_damaged_clip_keeps_every_frame_that_decodes_in_sync(model_dir: Path, cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """40 KB overwritten in the middle of a 3 s clip: 10 frames were kept and 0.4 s of video met 3 s of sound."""
    clip = write_clip(tmp_path / "clip.mp4", cap13_rgb, Clip(tracks=[Track(440)]))
    source = damage(clip, tmp_path / "damaged.mp4")
    output = tmp_path / "damaged_out.mp4"
    notices = convert_cli(source, model_dir, output)
    seen_in, seen_out = player_view(source), player_view(output)
    lost = 75 - len(seen_in)
    assert 0 < lost < 25 and len(seen_out) == len(seen_in)
    assert f"{source}: {lost} frames could not be decoded (at " in notices and "were skipped" in notices
    assert [round(s.seconds, 3) for s in seen_out] == [round(s.seconds, 3) for s in seen_in], "every frame at its own time"
    assert packets(output, 1) == packets(source, 1), "the sound is copied whole: nothing shifts"
    with av.open(str(output)) as container:
        assert abs(float(container.streams.video[0].duration * container.streams.video[0].time_base) - 3.0) < 0.1


@pytest.mark.parametrize(("container", "codec", "audio"), [("webm", "libvpx-vp9", "libopus"), ("mkv", "libx264", "flac")])
def test_webm_and_matroska_inputs(model_dir: Path, cap13_rgb: list[np.ndarray], tmp_path: Path, container: str, codec: str, audio: str) -> None:
    options = {"crf": "10"} if codec == "libx264" else {"crf": "10", "b:v": "0", "deadline": "realtime", "cpu-used": "8"}
    source = write_clip(tmp_path / f"in.{container}", cap13_rgb[:25], Clip(codec=codec, options=options, tracks=[Track(440, codec=audio, seconds=1)]))
    output = tmp_path / "out.mp4"
    convert_cli(source, model_dir, output)
    assert [s[:2] for s in stream_summary(output)] == [("video", "h264"), ("audio", audio.removeprefix("lib"))]
    assert packets(output, 1) == packets(source, 1)
    assert len(player_view(output)) == 25
