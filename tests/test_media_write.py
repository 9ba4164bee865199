"""Writing media back the way it came: what a player sees of the output against what it sees of the input.

These run facetwin's reader and writers without a model (frames pass through unchanged, as convert
passes frames without a face), so each kind is shown in the fast tier; ``test_convert_media.py`` runs
the issue's examples through ``facetwin convert`` with a model.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageCms

from facetwin.media import DamagedMedia, describe_video, read_picture, read_video, write_picture
from facetwin.media.orientation import Orientation
from facetwin.media.plan import VideoPlan
from facetwin.media.tonemap import sdr_to_pq
from facetwin.media.video_out import VideoWriter
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


def rewrite(source: Path, target: Path, side_by_side: bool = False) -> VideoPlan:
    """Read ``source`` and write every frame unchanged to ``target``, as convert does for frames without a face."""
    description = describe_video(source)
    with VideoWriter(target, description, side_by_side=side_by_side) as writer:
        try:
            for frame in read_video(source, description=description):
                writer.write(np.hstack([frame.rgb, frame.rgb]) if side_by_side else frame.rgb, frame.pts)
        except DamagedMedia as exc:
            assert not exc.damage.tail_lost, "a clip damaged at its end is tested on its own"
    return writer.plan


def timed_text(path: Path) -> list[tuple[float, bytes]]:
    """(time s, payload) of each non-empty subtitle packet."""
    with av.open(str(path)) as container:
        return [(float(p.pts * p.time_base), bytes(p)) for p in container.demux(subtitles=0) if p.size > 2]


def same_picture(source: Path, target: Path, tolerance: float = 1.5) -> None:
    seen_in, seen_out = player_view(source), player_view(target)
    assert len(seen_in) == len(seen_out)
    for before, after in zip(seen_in, seen_out):
        assert before.rgb.shape == after.rgb.shape
        assert abs(before.seconds - after.seconds) < 1e-3
        assert np.abs(before.rgb - after.rgb).mean() < tolerance


def has_display_matrix(path: Path) -> bool:
    from av.sidedata.sidedata import Type

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.side_data.get(Type.DISPLAYMATRIX) is not None  # type: ignore[call-overload]


@pytest.mark.parametrize("degrees", [-90, 180])
def test_rotated_video_is_written_upright_and_shows_the_same(cap13_rgb: list[np.ndarray], tmp_path: Path, degrees: int) -> None:
    source = write_clip(tmp_path / "phone.mp4", [Orientation(degrees % 360).stored(f) for f in cap13_rgb[:20]], Clip(rotation=degrees))
    plan = rewrite(source, tmp_path / "out.mp4")
    same_picture(source, tmp_path / "out.mp4")
    assert not has_display_matrix(tmp_path / "out.mp4") and has_display_matrix(source)
    assert any("applied to the pixels: written upright, without a rotation tag" in n for n in plan.notices)


@pytest.mark.parametrize(
    ("size", "tags", "pix_fmt", "out_tags", "out_pix_fmt"),
    [
        ((1280, 720), (1, 1, 1, 1), "yuv420p", (1, 1, 1, 1), "yuv420p"),  # the example
        ((1280, 720), (6, 6, 6, 1), "yuv420p", (6, 6, 6, 1), "yuv420p"),
        ((1280, 720), (1, 1, 1, 2), "yuv420p", (1, 1, 1, 2), "yuv420p"),  # full range stays full range
        ((640, 360), (1, 1, 1, 1), "yuv444p", (1, 1, 1, 1), "yuv444p"),
        ((640, 360), (1, 13, 1, 1), "yuv422p", (1, 13, 1, 1), "yuv422p"),
        ((640, 360), (9, 14, 9, 1), "yuv420p10le", (9, 14, 9, 1), "yuv420p"),  # 10-bit: 8-bit, said so
    ],
)
def test_colour_bars_round_trip_with_their_tags(tmp_path: Path, size: tuple[int, int], tags: tuple[int, int, int, int], pix_fmt: str,
                                                out_tags: tuple[int, int, int, int], out_pix_fmt: str) -> None:
    bars = colour_bars(*size)
    source = write_clip(tmp_path / "bars.mp4", [bars] * 5, Clip(pix_fmt=pix_fmt, colour=tags))
    plan = rewrite(source, tmp_path / "out.mp4")
    assert colour_tags(tmp_path / "out.mp4") == out_tags
    with av.open(str(tmp_path / "out.mp4")) as container:  # FFmpeg names full-range 4:2:0 "yuvj420p"
        assert container.streams.video[0].codec_context.pix_fmt.replace("yuvj", "yuv") == out_pix_fmt
    for before, after in zip(player_view(source), player_view(tmp_path / "out.mp4")):
        assert np.abs(bar_centres(after.rgb) - bar_centres(before.rgb)).max() <= 3.0, "bars within 3 levels in a player honouring tags"
    assert ("10-bit input read as 8-bit" in " ".join(plan.notices)) == pix_fmt.endswith("10le")


def test_untagged_input_is_tagged_as_players_read_it(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    source = write_clip(tmp_path / "plain.mp4", cap13_rgb[:10], Clip())
    plan = rewrite(source, tmp_path / "out.mp4")
    assert colour_tags(source) == (2, 2, 2, 0) and colour_tags(tmp_path / "out.mp4") == (6, 1, 6, 1)
    same_picture(source, tmp_path / "out.mp4")
    assert any("no colour tags" in n and "BT.601" in n for n in plan.notices)


def test_hdr_is_written_as_sdr_bt709_with_a_notice(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    source = write_clip(tmp_path / "hdr.mp4", [sdr_to_pq(f) for f in cap13_rgb[:5]],
                        Clip(pix_fmt="yuv420p10le", colour=(9, 16, 9, 1), input_format="rgb48le"))
    plan = rewrite(source, tmp_path / "out.mp4")
    assert colour_tags(tmp_path / "out.mp4") == (1, 1, 1, 1)
    assert any("HDR10 (PQ) input read as SDR BT.709 after tone mapping" in n for n in plan.notices)
    for seen, original in zip(player_view(tmp_path / "out.mp4"), cap13_rgb):
        assert np.abs(seen.rgb - original).mean() < 3.0


@pytest.mark.parametrize(("pix_fmt", "codec"), [("yuv444p", "libx264"), ("yuv420p", "libvpx-vp9")])
def test_odd_size_is_kept(cap13_rgb: list[np.ndarray], tmp_path: Path, pix_fmt: str, codec: str) -> None:
    """401x299: today silently 400x298. 4:4:4 input stays 4:4:4; 4:2:0 (VP9 allows odd sizes) becomes 4:4:4, said so."""
    frames = [np.ascontiguousarray(np.pad(f, ((0, 0), (0, 1), (0, 0)), mode="edge")[:299]) for f in cap13_rgb[:10]]
    options = {"crf": "10"} if codec == "libx264" else {"crf": "10", "b:v": "0", "deadline": "realtime", "cpu-used": "8"}
    source = write_clip(tmp_path / f"odd.{'mp4' if codec == 'libx264' else 'webm'}", frames, Clip(codec=codec, pix_fmt=pix_fmt, options=options))
    plan = rewrite(source, tmp_path / "out.mp4")
    assert (plan.width, plan.height, plan.pix_fmt) == (401, 299, "yuv444p")
    same_picture(source, tmp_path / "out.mp4")
    assert any("to keep its odd size 401x299" in n for n in plan.notices) == (pix_fmt == "yuv420p")


def test_every_stream_is_kept_in_order_bit_for_bit(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """The issue's example: the second AAC track was dropped silently. Subtitles come along too."""
    source = write_clip(tmp_path / "tracks.mp4", cap13_rgb, Clip(
        tracks=[Track(440, language="eng"), Track(660, layout="stereo", language="fra")],
        subtitles=[("hello", 0.5, 1.5), ("world", 2.0, 2.5)]))  # fmt: skip
    plan = rewrite(source, tmp_path / "out.mp4")
    assert stream_summary(tmp_path / "out.mp4") == stream_summary(source)
    for index in (1, 2):
        assert packets(tmp_path / "out.mp4", index) == packets(source, index) != []
    # the MP4 muxer fills the gaps between subtitles with empty samples of its own; the subtitles are the same
    assert timed_text(tmp_path / "out.mp4") == timed_text(source) == [(0.5, b"\x00\x05hello"), (2.0, b"\x00\x05world")]
    assert [s.action for s in plan.streams] == ["copy", "copy", "copy"]
    assert not any(word in n for n in plan.notices for word in ("not carried", "re-encoded", "converted"))


def test_matroska_streams_are_copied_or_converted(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """MKV with FLAC, AC-3 and SubRip into MP4: the audio is copied, the subtitles become mov_text with their text."""
    source = write_clip(tmp_path / "film.mkv", cap13_rgb[:50], Clip(
        tracks=[Track(440, codec="flac", seconds=2), Track(550, codec="ac3", layout="stereo", seconds=2)],
        subtitles=[("hello there", 0.5, 1.5)], subtitle_codec="subrip"))  # fmt: skip
    plan = rewrite(source, tmp_path / "out.mp4")
    assert [s[:2] for s in stream_summary(tmp_path / "out.mp4")] == [("video", "h264"), ("audio", "flac"), ("audio", "ac3"), ("subtitle", "mov_text")]
    assert packets(tmp_path / "out.mp4", 1) == packets(source, 1) and packets(tmp_path / "out.mp4", 2) == packets(source, 2)
    assert any("subtitle stream 3 (srt) converted to mov_text" in n for n in plan.notices)
    with av.open(str(tmp_path / "out.mp4")) as container:
        text = [rect.ass for packet in container.demux(subtitles=0) for rect in packet.decode()]
    assert len(text) == 1 and "hello there" in str(text[0])
    same_picture(source, tmp_path / "out.mp4")


@pytest.mark.parametrize(("container", "codec", "audio", "output", "action"), [
    ("webm", "libvpx-vp9", "libopus", "out.mp4", "copy"),  # WebM: VP9 and Opus
    ("mov", "libx264", "pcm_s16le", "out.mov", "copy"),  # a camera's MOV with PCM sound
    ("webm", "libvpx-vp9", "libopus", "out.m4v", "aac"),  # .m4v (iPod) cannot hold Opus: AAC, said so
])  # fmt: skip
def test_other_containers_and_audio_codecs(cap13_rgb: list[np.ndarray], tmp_path: Path, container: str, codec: str, audio: str,
                                           output: str, action: str) -> None:
    options = {"crf": "10"} if codec == "libx264" else {"crf": "10", "b:v": "0", "deadline": "realtime", "cpu-used": "8"}
    source = write_clip(tmp_path / f"in.{container}", cap13_rgb[:25], Clip(codec=codec, options=options,
                        tracks=[Track(440, codec=audio, layout="stereo", seconds=1)]))  # fmt: skip
    plan = rewrite(source, tmp_path / output)
    assert [s.action for s in plan.streams] == [action]
    summary = stream_summary(tmp_path / output)
    assert summary[0][:2] == ("video", "h264") and summary[1][0] == "audio"
    if action == "copy":
        assert packets(tmp_path / output, 1) == packets(source, 1)
    else:
        assert summary[1][1] == "aac" and any("re-encoded as AAC" in n for n in plan.notices)
        with av.open(str(tmp_path / output)) as out:
            samples = sum(frame.samples for frame in out.decode(audio=0))
        assert abs(samples - 48000) < 3000, "the re-encoded sound lasts as long as the original"
    same_picture(source, tmp_path / output)


def test_video_alpha_is_dropped_with_a_notice(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    rgba = [np.dstack([f, np.full(f.shape[:2], 200, np.uint8)]) for f in cap13_rgb[:3]]
    source = write_clip(tmp_path / "overlay.mov", rgba, Clip(codec="png", pix_fmt="rgba", input_format="rgba", options={}))
    plan = rewrite(source, tmp_path / "out.mov")
    assert any("alpha channel dropped (H.264 cannot carry it)" in n for n in plan.notices)
    assert np.abs(player_view(tmp_path / "out.mov")[0].rgb - cap13_rgb[0]).mean() < 1.5


def test_chapters_are_kept_and_camera_metadata_is_not(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    source = tmp_path / "phone.mov"
    with av.open(str(source), "w") as out:
        out.metadata["location"], out.metadata["creation_time"] = "+48.8584+002.2945/", "2026-05-01T10:00:00Z"
        out.set_chapters([{"id": 1, "start": 0, "end": 10, "time_base": Fraction(1, 25), "metadata": {"title": "start"}},
                          {"id": 2, "start": 10, "end": 20, "time_base": Fraction(1, 25), "metadata": {"title": "end"}}])
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 400, 300, "yuv420p"
        for index, rgb in enumerate(cap13_rgb[:20]):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    plan = rewrite(source, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert [c["metadata"]["title"] for c in out.chapters()] == ["start", "end"]
        assert "location" not in out.metadata and "creation_time" not in out.metadata
    assert any("container metadata not copied (creation_time, location)" in n for n in plan.notices)


def test_a_second_video_stream_is_left_out_with_a_notice(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    source = tmp_path / "two_angles.mkv"
    with av.open(str(source), "w") as out:
        streams = [out.add_stream("libx264", rate=25) for _ in range(2)]
        for stream in streams:
            stream.width, stream.height, stream.pix_fmt = 400, 300, "yuv420p"
        for index, rgb in enumerate(cap13_rgb[:10]):
            for stream in streams:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, 25)
                for packet in stream.encode(frame):
                    out.mux(packet)
        for stream in streams:
            for packet in stream.encode(None):
                out.mux(packet)
    plan = rewrite(source, tmp_path / "out.mp4")
    assert [s[0] for s in stream_summary(tmp_path / "out.mp4")] == ["video"]
    assert any("video stream 1 (h264) not carried: facetwin converts and labels the first video stream only" in n for n in plan.notices)


def test_damaged_clip_keeps_every_decodable_frame_in_sync(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """The issue's example: output had 0.4 s of video against 3.0 s of audio. Now every frame that decodes
    is written at its own time and the sound is copied whole, so the two stay together."""
    clip = write_clip(tmp_path / "clip.mp4", cap13_rgb, Clip(tracks=[Track(440)]))
    broken = damage(clip, tmp_path / "broken.mp4")
    rewrite(broken, tmp_path / "out.mp4")
    seen_in, seen_out = player_view(broken), player_view(tmp_path / "out.mp4")
    assert 50 < len(seen_out) == len(seen_in) < 75
    assert [round(s.seconds, 3) for s in seen_out] == [round(s.seconds, 3) for s in seen_in]
    assert packets(tmp_path / "out.mp4", 1) == packets(broken, 1)


def test_damage_at_the_end_cuts_the_sound_with_the_picture(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """Garbage over the last frames (the index is intact): no sound plays on after the last picture."""
    clip = write_clip(tmp_path / "clip.mp4", cap13_rgb, Clip(tracks=[Track(440)]))
    data = bytearray(clip.read_bytes())
    index = data.rfind(b"moov") - 4  # the index is at the end: damage what comes just before it
    data[index - 25_000 : index - 1_000] = np.random.default_rng(3).integers(0, 256, 24_000, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    description = describe_video(broken)
    with pytest.raises(DamagedMedia) as caught, VideoWriter(tmp_path / "out.mp4", description) as writer:
        for frame in read_video(broken, description=description):
            writer.write(frame.rgb, frame.pts)
    assert caught.value.damage.tail_lost and not caught.value.damage.truncated
    with av.open(str(tmp_path / "out.mp4")) as out:
        video_end = max(float(f.time) for f in out.decode(video=0)) + 1 / 25
    with av.open(str(tmp_path / "out.mp4")) as out:
        audio_end = max(float(p.pts * p.time_base) for p in out.demux(audio=0) if p.size)
    assert video_end < 2.9 and audio_end < video_end


def test_a_clip_cut_short_has_no_sound_past_its_picture(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", cap13_rgb, Clip(tracks=[Track(440)], container_options={"movflags": "+faststart"}))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    description = describe_video(cut)
    with pytest.raises(DamagedMedia), VideoWriter(tmp_path / "out.mp4", description) as writer:
        for frame in read_video(cut, description=description):
            writer.write(frame.rgb, frame.pts)
    with av.open(str(tmp_path / "out.mp4")) as out:
        video_end = max(float(f.time) for f in out.decode(video=0)) + 1 / 25
    with av.open(str(tmp_path / "out.mp4")) as out:
        audio_end = max(float(p.pts * p.time_base) for p in out.demux(audio=0) if p.size)
    assert 0.5 < video_end < 2.9 and audio_end < video_end


def _rgba(rgb: np.ndarray) -> np.ndarray:
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:20], alpha[-20:], alpha[:, :20], alpha[:, -20:] = 0, 0, 0, 0
    return np.dstack([rgb, alpha])


@pytest.mark.parametrize(("suffix", "mode"), [(".png", "RGBA"), (".png", "LA"), (".webp", "RGBA"), (".tiff", "RGBA")])
def test_alpha_is_kept_in_every_format_that_has_it(cap13_rgb: list[np.ndarray], tmp_path: Path, suffix: str, mode: str) -> None:
    """The issue's example: an RGBA PNG with a transparent border came out opaque."""
    source = tmp_path / f"in{suffix}"
    Image.fromarray(_rgba(cap13_rgb[0]), "RGBA").convert(mode).save(source, **({"lossless": True} if suffix == ".webp" else {}))
    picture = read_picture(source)
    notices = write_picture(tmp_path / f"out{suffix}", picture.rgb, picture.alpha, picture.description)
    written = Image.open(tmp_path / f"out{suffix}")
    assert written.mode == mode and not notices
    assert np.array_equal(np.asarray(written), np.asarray(Image.open(source)))


def test_jpeg_keeps_profile_and_quality_and_png_alpha_into_jpeg_is_said(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = tmp_path / "in.jpg"
    Image.fromarray(cap13_rgb[0]).save(source, quality=80, icc_profile=profile, subsampling="4:4:4")
    picture = read_picture(source)
    write_picture(tmp_path / "out.jpg", picture.rgb, None, picture.description)
    written = Image.open(tmp_path / "out.jpg")
    assert written.info.get("icc_profile") == profile
    assert written.quantization == Image.open(source).quantization, "the same quality as the input"
    png = tmp_path / "cut_out.png"
    Image.fromarray(_rgba(cap13_rgb[0]), "RGBA").save(png)
    cut_out = read_picture(png)
    notices = write_picture(tmp_path / "flat.jpg", cut_out.rgb, cut_out.alpha, cut_out.description)
    assert notices == [f"{tmp_path / 'flat.jpg'}: alpha channel dropped (JPEG cannot carry it)"]


def test_grey_stays_grey_and_png_colour_chunks_are_copied(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", (45455).to_bytes(4, "big"))
    source = tmp_path / "grey.png"
    Image.fromarray(cap13_rgb[0][:, :, 1]).save(source, pnginfo=info)
    picture = read_picture(source)
    write_picture(tmp_path / "out.png", picture.rgb, picture.alpha, picture.description)
    written = Image.open(tmp_path / "out.png")
    assert written.mode == "L" and written.info.get("gamma") == pytest.approx(0.45455)
    assert np.array_equal(np.asarray(written), cap13_rgb[0][:, :, 1])


def test_evaluate_reads_a_rotated_clip_and_its_output_upright(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """``evaluate --video`` pairs the clip's frames with the output's through the same reader: a phone's
    portrait clip and its upright output are the same frames, so no flicker is added and every face is found."""
    from facetwin.evaluate.clip import evaluate_clip
    from facetwin.faces.identity import FaceEmbedder

    source = write_clip(tmp_path / "phone.mp4", [Orientation(270).stored(f) for f in cap13_rgb[:10]], Clip(rotation=-90))
    rewrite(source, tmp_path / "out.mp4")
    centroid = np.zeros(128, np.float32)
    report = evaluate_clip(source, tmp_path / "out.mp4", centroid, centroid, FaceEmbedder())
    assert report.frames == report.frames_with_face == 10
    assert 0.6 < report.flicker_ratio < 1.2, "the same frames: no flicker added (re-encoding smooths a little)"
