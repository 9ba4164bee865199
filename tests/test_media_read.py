"""Reading media as a viewer sees it: rotation, colour tags, range, depth, HDR, alpha, timestamps, damage.

Every input is made here from cap13 (three seconds or less) the way phones, cameras and editors write
it (``media_clips.write_clip``); what facetwin reads is compared with the pictures that went in.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facetwin.extract import extract
from facetwin.faceset import FaceSet
from facetwin.media import DamagedMedia, MediaSource, describe_video, read_frames, read_picture, read_video
from facetwin.media.orientation import Orientation
from facetwin.media.tonemap import sdr_to_hlg, sdr_to_pq
from facetwin.options import ExtractOptions
from media_clips import Clip, Track, bar_centres, colour_bars, damage, write_clip


def _stored(frames: list[np.ndarray], orientation: Orientation) -> list[np.ndarray]:
    return [orientation.stored(f) for f in frames]


@pytest.mark.parametrize(("degrees", "mirror"), [(-90, False), (180, False), (90, True)])
def test_display_rotation_is_applied(cap13_rgb: list[np.ndarray], tmp_path: Path, degrees: int, mirror: bool) -> None:
    """A phone's portrait clip (pixels sideways, a display matrix saying how to turn them) is read upright."""
    orientation = Orientation(degrees % 360, mirror)
    clip = write_clip(tmp_path / "phone.mp4", _stored(cap13_rgb[:25], orientation), Clip(rotation=degrees, mirror=mirror))
    description = describe_video(clip)
    assert (description.width, description.height) == (400, 300) and description.orientation == orientation
    frames = list(read_video(clip))
    assert len(frames) == 25 and frames[0].rgb.shape == (300, 400, 3)
    errors = [np.abs(f.rgb.astype(int) - original.astype(int)).mean() for f, original in zip(frames, cap13_rgb)]
    assert max(errors) < 2.0, "upright frames must match the pictures that went in (up to coding noise)"


def test_extract_crops_of_a_rotated_clip_are_upright(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """The issue's example: extract of a clip stored upside down with a 180° matrix gave 75 upside-down crops."""
    upright = write_clip(tmp_path / "upright.mp4", cap13_rgb[:30], Clip())
    turned = write_clip(tmp_path / "turned.mp4", _stored(cap13_rgb[:30], Orientation(180)), Clip(rotation=180))
    crops = {}
    for name, clip in (("upright", upright), ("turned", turned)):
        report = extract([clip], tmp_path / name, ExtractOptions(every=5, max_faces=1))
        assert report.exit_code == 0, report.problems
        with FaceSet(tmp_path / name) as store:
            crops[name] = [store.load_crop(face).astype(int) for face in store.faces()]
    assert len(crops["turned"]) == len(crops["upright"]) == 6
    for turned_crop, upright_crop in zip(crops["turned"], crops["upright"]):
        same = np.abs(turned_crop - upright_crop).mean()
        flipped = np.abs(turned_crop[::-1, ::-1] - upright_crop).mean()
        assert same < 6 and same < flipped / 3, "the crops of the rotated clip must be the upright clip's crops"


@pytest.mark.parametrize(
    ("size", "tags", "pix_fmt"),
    [
        ((1280, 720), (1, 1, 1, 1), "yuv420p"),  # the example: HD tagged BT.709
        ((1280, 720), None, "yuv420p"),  # untagged HD: read as BT.709, as players do
        ((400, 300), None, "yuv420p"),  # untagged SD: BT.601
        ((1280, 720), (6, 6, 6, 1), "yuv420p"),  # HD tagged BT.601 (an upscaled SD master)
        ((1280, 720), (1, 1, 1, 2), "yuv420p"),  # full range
        ((640, 360), (1, 1, 1, 1), "yuv444p"),
        ((640, 360), (1, 1, 1, 1), "yuv420p10le"),
        ((640, 360), (9, 14, 9, 1), "yuv420p10le"),  # BT.2020 SDR, 10-bit
    ],
)
def test_colour_is_read_as_tagged(tmp_path: Path, size: tuple[int, int], tags: tuple[int, int, int, int] | None, pix_fmt: str) -> None:
    """Colour bars come out as they went in, whatever matrix, range, subsampling and depth they were stored with."""
    bars = colour_bars(*size)
    untagged_matrix = (1, 1) if size[0] >= 1280 else (6, 1)  # what players assume; the file says nothing
    clip = write_clip(tmp_path / "bars.mp4", [bars] * 3, Clip(pix_fmt=pix_fmt, colour=tags, matrix=None if tags else untagged_matrix))
    assert describe_video(clip).colour.guessed == (() if tags else ("primaries", "transfer", "matrix", "range"))
    frame = next(iter(read_video(clip)))
    assert np.abs(bar_centres(frame.rgb) - bar_centres(bars)).max() <= 2.0


@pytest.mark.parametrize(("transfer", "name"), [(16, "HDR10 (PQ)"), (18, "HLG")])
def test_hdr_is_read_as_sdr_with_a_notice(cap13_rgb: list[np.ndarray], tmp_path: Path, transfer: int, name: str) -> None:
    """HDR10 (10-bit, BT.2020, PQ) and HLG made from SDR frames (white at BT.2408's 203 cd/m²) read back as those frames."""
    make = sdr_to_pq if transfer == 16 else sdr_to_hlg
    clip = write_clip(tmp_path / "hdr.mp4", [make(f) for f in cap13_rgb[:5]],
                      Clip(pix_fmt="yuv420p10le", colour=(9, transfer, 9, 1), input_format="rgb48le"))
    description = describe_video(clip)
    assert description.colour.hdr == name and description.delivered.transfer == 1 and description.bit_depth == 10
    assert any(f"{name} input read as SDR BT.709 after tone mapping" in n for n in description.reading_notices())
    for frame, original in zip(read_video(clip), cap13_rgb):
        assert np.abs(frame.rgb.astype(int) - original.astype(int)).mean() < 3.0
    if transfer == 16:  # extract says so too: the faces in the set are the SDR pictures
        report = extract([clip], tmp_path / "set", ExtractOptions(max_faces=1))
        assert report.exit_code == 0 and report.results[0].faces == 5
        assert any(f"{name} input read as SDR BT.709" in n for n in report.results[0].notices)


def test_video_alpha_is_read(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """A MOV with alpha (PNG frames, as motion-graphics tools export) delivers its alpha beside the RGB."""
    rgba = [np.dstack([f, np.full(f.shape[:2], 200, np.uint8)]) for f in cap13_rgb[:3]]
    clip = write_clip(tmp_path / "overlay.mov", rgba, Clip(codec="png", pix_fmt="rgba", input_format="rgba", options={}))
    frames = list(read_video(clip))
    assert describe_video(clip).alpha and all(f.alpha is not None and (f.alpha == 200).all() for f in frames)
    assert np.array_equal(frames[0].rgb, cap13_rgb[0])


def test_variable_frame_rate_and_2997_keep_their_times(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    times = [round(t, 4) for t in np.cumsum([0.0] + [0.1 if i % 3 == 0 else 0.04 for i in range(29)])]
    vfr = write_clip(tmp_path / "vfr.mp4", cap13_rgb[:30], Clip(times=times))
    assert [round(f.seconds, 3) for f in read_video(vfr)] == pytest.approx(times, abs=2e-3)
    ntsc = write_clip(tmp_path / "ntsc.mp4", cap13_rgb[:30], Clip(rate=Fraction(30000, 1001)))
    assert describe_video(ntsc).rate == Fraction(30000, 1001)
    assert [f.seconds for f in read_video(ntsc)] == pytest.approx([i * 1001 / 30000 for i in range(30)], abs=1e-3)


def test_damage_mid_file_is_skipped_and_reported(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """The issue's example: 40 KB overwritten in the middle of a 3 s clip stopped decoding at the first bad packet."""
    clip = write_clip(tmp_path / "clip.mp4", cap13_rgb, Clip(tracks=[Track(440)]))
    broken = damage(clip, tmp_path / "broken.mp4")
    frames = []
    with pytest.raises(DamagedMedia) as caught:
        for frame in read_video(broken):
            frames.append(frame)
    lost = caught.value.damage.lost
    assert len(frames) + len(lost) == 75 and 0 < len(lost) < 30 and caught.value.damage.delivered == len(frames)
    assert not caught.value.damage.tail_lost
    assert max(f.seconds for f in frames) > max(lost), "frames after the damage must be kept"
    assert f"{len(lost)} frames could not be decoded (at {min(lost):.2f}-" in str(caught.value)
    assert [f.index for f in frames] == sorted(f.index for f in frames) and frames[-1].index == 74
    assert all(abs(f.seconds - f.index / 25) < 1e-6 for f in frames), "every kept frame keeps its own time"


def test_a_file_cut_short_keeps_what_decodes(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", cap13_rgb[:50], Clip(container_options={"movflags": "+faststart"}))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])  # the index is at the front, as phones write it
    frames = []
    with pytest.raises(DamagedMedia, match=f"{cut}: decoding stopped after") as caught:
        frames.extend(read_video(cut))
    assert caught.value.damage.tail_lost and 10 < len(frames) < 50


EXIF_CASES = [(".jpg", 6), (".jpg", 3), (".png", 8), (".webp", 6), (".tiff", 3), (".jpg", 5)]


@pytest.mark.parametrize(("suffix", "tag"), EXIF_CASES)
def test_exif_orientation_is_applied_in_every_format(cap13_rgb: list[np.ndarray], tmp_path: Path, suffix: str, tag: int) -> None:
    """A photo stored as the sensor saw it, with an EXIF orientation, is read upright (JPEG, PNG, WebP, TIFF)."""
    from facetwin.media.orientation import from_exif

    upright = cap13_rgb[10]
    image = Image.fromarray(from_exif(tag).stored(upright))
    exif = image.getexif()
    exif[0x0112] = tag
    path = tmp_path / f"photo{suffix}"
    image.save(path, exif=exif, **({"quality": 98} if suffix == ".jpg" else {"lossless": True} if suffix == ".webp" else {}))
    picture = read_picture(path)
    assert picture.rgb.shape == upright.shape and picture.description.orientation == from_exif(tag)
    assert np.abs(picture.rgb.astype(int) - upright.astype(int)).mean() < (2.0 if suffix == ".jpg" else 0.01)


def test_a_still_without_exif_is_read_as_stored(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    """A sideways photo with no orientation tag shows sideways in every viewer: it is read that way, not guessed."""
    sideways = np.ascontiguousarray(np.rot90(cap13_rgb[10]))
    path = tmp_path / "sideways.png"
    Image.fromarray(sideways).save(path)
    picture = read_picture(path)
    assert np.array_equal(picture.rgb, sideways) and picture.description.orientation.identity


def _rgba(rgb: np.ndarray) -> np.ndarray:
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:20], alpha[-20:], alpha[:, :20], alpha[:, -20:] = 0, 0, 0, 0  # a transparent border
    alpha[20:40, 20:-20] = 128
    return np.dstack([rgb, alpha])


@pytest.mark.parametrize(("suffix", "mode"), [(".png", "RGBA"), (".png", "LA"), (".webp", "RGBA"), (".tiff", "RGBA"), (".png", "P")])
def test_alpha_is_read(cap13_rgb: list[np.ndarray], tmp_path: Path, suffix: str, mode: str) -> None:
    rgba = _rgba(cap13_rgb[0])
    image = Image.fromarray(rgba, "RGBA").convert(mode)
    path = tmp_path / f"cut_out{suffix}"
    image.save(path, **({"lossless": True} if suffix == ".webp" else {}))
    expected = np.asarray(image.convert("RGBA"))[..., 3]
    frame = next(read_frames(MediaSource(path, "image")))
    assert frame.alpha is not None and np.array_equal(frame.alpha, expected)
    assert (frame.alpha == 0).sum() == (expected == 0).sum() == 400 * 300 - 360 * 260


def test_16_bit_png_is_read_as_8_bit_with_a_notice(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    deep = cap13_rgb[0].astype(np.uint16) * 257
    path = tmp_path / "deep.png"
    ok, data = cv2.imencode(".png", cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    path.write_bytes(data.tobytes())
    picture = read_picture(path)
    assert np.array_equal(picture.rgb, cap13_rgb[0])
    assert picture.description.reading_notices() == [f"{path}: 16-bit image read as 8-bit (facetwin works on 8-bit pictures)"]


def test_icc_profile_is_described(cap13_rgb: list[np.ndarray], tmp_path: Path) -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.fromarray(cap13_rgb[0]).save(buffer, "JPEG", icc_profile=profile, quality=90)
    path = tmp_path / "profiled.jpg"
    path.write_bytes(buffer.getvalue())
    description = read_picture(path).description
    assert description.icc_profile == profile and description.jpeg is not None
