"""Every output labelled: Content Credentials and the watermark, read back by `facetwin verify` from the
converted file and from copies that were re-encoded, shrunk, JPEG-compressed or stripped of metadata."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import run_cli, save_frame
from facetwin.convert.run import ConvertOptions, ConvertReport, convert
from facetwin.demo_data import DemoClips
from facetwin.faces.analyse import FaceAnalyser
from facetwin.faces.regions import FACE_OVAL
from facetwin.media import MediaSource, read_frames
from facetwin.provenance import watermark
from facetwin.provenance.credentials import local_identity, read_credentials
from facetwin.provenance.payload import Payload, model_tag
from facetwin.provenance.verify import read_watermark


def _verify(*paths: Path) -> tuple[int, list[dict]]:
    result = run_cli("verify", "--json", *paths)
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else []


def _reencode(source: Path, target: Path, crf: int, scale: float = 1.0) -> Path:
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream_in = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=stream_in.average_rate)
        stream.width = int(stream_in.width * scale) // 2 * 2
        stream.height = int(stream_in.height * scale) // 2 * 2
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf)}
        for i, frame in enumerate(src.decode(stream_in)):
            rgb = cv2.resize(frame.to_ndarray(format="rgb24"), (stream.width, stream.height), interpolation=cv2.INTER_AREA)
            out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            out.pts, out.time_base = i, Fraction(1) / stream_in.average_rate
            for packet in stream.encode(out):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return target


@pytest.fixture(scope="module")
def converted(model_dir: Path, clip_with_tone: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ConvertReport]:
    output = tmp_path_factory.mktemp("converted") / "swapped.mp4"
    return output, convert(clip_with_tone, model_dir, output, ConvertOptions(direction="b2a"))


def test_payload_round_trip_and_checks() -> None:
    payload = Payload(model_tag("original@30-0123456789abcdef"))
    bits = payload.to_bits()
    assert len(bits) == 40 and Payload.from_bits(bits) == payload
    for flipped in range(40):
        damaged = bits.copy()
        damaged[flipped] ^= 1
        assert Payload.from_bits(damaged) is None, "any single flipped bit fails the marker or the CRC"


def test_watermark_on_real_frames_is_faint_and_reads_back(clips: DemoClips) -> None:
    payload = Payload(0xBEEF)
    psnrs = []
    for clip in (clips.franck, clips.cap13):
        for frame in read_frames(MediaSource(clip, "video"), every=97):
            marked = watermark.embed(frame.rgb, payload)
            mse = np.mean((marked.astype(float) - frame.rgb) ** 2)
            psnrs.append(10 * np.log10(255**2 / mse))
            reading = watermark.read(marked)
            assert reading.payload == payload and reading.repaired == 0
            # informed embedding on the lattice model: every bit reaches the margin, give or take rounding
            assert np.all(reading.strength * (payload.to_bits() * 2.0 - 1) > 0.9)
            assert watermark.read(frame.rgb).payload is None
    # shaped to the texture, the mark is stronger where it hides (franck: most of it on the face, the
    # background being flat blue), so PSNR is no longer the whole story; it stays above 34 dB
    assert min(psnrs) > 34 and np.median(psnrs) > 36, psnrs


def test_watermark_stays_off_flat_areas_without_piling_onto_faces(clips: DemoClips) -> None:
    """The bare wall beside the head in cap13: shaped to the picture, the mark adds about two thirds of the
    grain the unshaped mark added there (+0.67 luma levels of standard deviation measured on these frames
    with this payload, against ~0.9), and inside the face oval its RMS stays under 4.2 levels (3.5
    measured; shaping by texture alone, power 1 and cap 1.5, put 4.8 there: blotches a first user saw on
    an unswapped face); and it still reads back."""
    payload = Payload(0xBEEF)
    x0, y0, x1, y1 = 280, 20, 390, 150
    added, on_face = [], []
    analyser = FaceAnalyser(size=256, max_faces=1)
    try:
        for frame in read_frames(MediaSource(clips.cap13, "video"), every=25):
            marked = watermark.embed(frame.rgb, payload)
            luma = [watermark._luma(f) for f in (frame.rgb, marked)]
            added.append(luma[1][y0:y1, x0:x1].std() - luma[0][y0:y1, x0:x1].std())
            oval = np.zeros(frame.rgb.shape[:2], np.uint8)
            points = analyser.locate(frame.rgb)[0][1]
            cv2.fillConvexPoly(oval, cv2.convexHull(points[list(FACE_OVAL), :2].round().astype(np.int32)), 1)
            on_face.append(float(np.sqrt(((luma[1] - luma[0])[oval.astype(bool)] ** 2).mean())))
            assert watermark.read(marked).payload == payload
    finally:
        analyser.close()
    gain = watermark.texture_gain(watermark._luma(frame.rgb))
    assert gain.shape == (watermark.GRID, watermark.GRID) and gain.max() <= watermark.GAIN_CAP + 1e-6
    assert np.median(added) < 0.75, added
    assert np.median(on_face) < 4.2, on_face


def test_soft_reading_recovers_frames_the_hard_bits_lose_and_never_invents_one(clips: DemoClips) -> None:
    """Marked cap13 frames under heavy grain (luma noise, sigma 70 levels, seeded): about half the frames'
    hard bits fail the check even after repair. The soft reader (the best of the 65,536 codewords, its z
    against decoy patterns) reads several of those, never a wrong payload; the same frames unmarked,
    under the same grain, stay far below SOFT_Z and read as unmarked."""
    payload = Payload(0x5A17)
    rng = np.random.default_rng(0)

    def grain(rgb: np.ndarray) -> np.ndarray:
        return np.clip(rgb + rng.normal(0, 70, rgb.shape[:2])[..., None], 0, 255).astype(np.uint8)

    frames = [f.rgb for f in read_frames(MediaSource(clips.cap13, "video"), every=32)]
    readings = [watermark.read(grain(watermark.embed(f, payload))) for f in frames]
    assert all(r.payload in (None, payload) for r in readings)
    hard = sum(r.payload == payload and r.soft_z == 0 for r in readings)
    soft = [r for r in readings if r.payload == payload and r.soft_z > 0]
    assert 0 < hard < 0.75 * len(frames), hard
    assert len(soft) >= 3 and all(r.soft_z > watermark.SOFT_Z and r.repaired >= 1 for r in soft), [r.soft_z for r in readings]
    for rgb in frames:
        reading = watermark.read(grain(rgb))
        assert reading.payload is None and reading.soft_z < 0.8 * watermark.SOFT_Z, reading.soft_z


def test_converted_video_verifies_as_synthetic(converted: tuple[Path, ConvertReport], signing_config: Path) -> None:
    output, report = converted
    code, [verdict] = _verify(output)
    assert code == 0 and verdict["synthetic"] and verdict["verdict"] == "synthetic (made by facetwin)"
    credentials = verdict["credentials"]
    assert credentials["state"] == "Trusted", "verify trusts the local root it made"
    assert credentials["synthetic"] and credentials["generator"].startswith("facetwin ")
    assert credentials["claim"]["watermark_payload"] == report.watermark
    assert credentials["claim"]["model_id"].startswith("original@30-")
    assert len(credentials["claim"]["input_sha256"]) == 64
    assert verdict["watermark"]["payload"] == report.watermark and verdict["watermark"]["fraction"] >= 0.95
    elsewhere = read_credentials(output, trust_roots=[])
    assert elsewhere.state == "Valid", "a reader without the local root sees a valid, untrusted manifest"


def test_copies_still_verify_by_watermark(converted: tuple[Path, ConvertReport], tmp_path: Path) -> None:
    output, report = converted
    crf28 = _reencode(output, tmp_path / "crf28.mp4", crf=28)
    half = _reencode(output, tmp_path / "half.mp4", crf=18, scale=0.5)
    half_crf28 = _reencode(output, tmp_path / "half_crf28.mp4", crf=28, scale=0.5)
    code, verdicts = _verify(crf28, half, half_crf28)
    assert code == 0 and len(verdicts) == 3
    for verdict, least in zip(verdicts, (0.95, 0.95, 0.92), strict=True):
        assert not verdict["credentials"]["present"], "a re-encode strips the manifest"
        assert verdict["watermark"]["payload"] == report.watermark
        assert verdict["watermark"]["fraction"] >= least, verdict["watermark"]
    frames = [f.rgb for f in read_frames(MediaSource(output, "video"), every=10)]
    jpeg_ok = 0
    for i, rgb in enumerate(frames):
        path = tmp_path / f"frame{i}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])
        jpeg_ok += read_watermark(path, "image").payload == report.watermark
    assert jpeg_ok >= 0.95 * len(frames)


def test_converted_image_and_stripped_copy(model_dir: Path, clips: DemoClips, tmp_path: Path) -> None:
    save_frame(clips.cap13, 300, tmp_path / "still.png")
    output = tmp_path / "swapped.png"
    report = convert(tmp_path / "still.png", model_dir, output, ConvertOptions(direction="b2a"))
    stripped = tmp_path / "stripped.png"
    cv2.imwrite(str(stripped), cv2.imread(str(output)))  # pixels only: the manifest is gone
    jpeg = tmp_path / "q75.jpg"
    cv2.imwrite(str(jpeg), cv2.imread(str(output)), [cv2.IMWRITE_JPEG_QUALITY, 75])
    code, (signed, bare, compressed) = _verify(output, stripped, jpeg)
    assert code == 0
    assert signed["credentials"]["state"] == "Trusted" and signed["credentials"]["synthetic"]
    assert signed["watermark"]["payload"] == report.watermark
    for copy in (bare, compressed):
        assert not copy["credentials"]["present"] and copy["watermark"]["payload"] == report.watermark


def test_own_certificate_and_tampering(model_dir: Path, clips: DemoClips, tmp_path: Path) -> None:
    identity = local_identity(tmp_path / "mine")  # stands in for a certificate the user already has
    still = tmp_path / "still.jpg"
    save_frame(clips.cap12, 50, still)
    output = tmp_path / "out.jpg"
    result = run_cli("convert", still, "-m", model_dir, "-o", output, "--direction", "b2a",
                     "--sign-cert", tmp_path / "mine" / "chain.pem", "--sign-key", tmp_path / "mine" / "signer.key")
    assert result.returncode == 0, result.stderr
    mine = read_credentials(output, trust_roots=[identity.root or b""])
    assert mine.state == "Trusted" and mine.signer == "facetwin signer"
    data = bytearray(output.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of picture data changed after signing
    tampered = tmp_path / "tampered.jpg"
    tampered.write_bytes(bytes(data))
    report = read_credentials(tampered, trust_roots=[identity.root or b""])
    assert report.state == "Invalid" and report.problems


@pytest.mark.slow
def test_untouched_demo_clips_are_not_marked(clips: DemoClips) -> None:
    code, verdicts = _verify(clips.franck, clips.cap12, clips.cap13)
    assert code == 1 and all(v["verdict"] == "not marked" for v in verdicts)
    for clip in (clips.franck, clips.cap12, clips.cap13):  # every frame, not a sample
        assert read_watermark(clip, "video", sampled=10**6).marked_frames == 0


def test_verify_corrupt_file_exits_2(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    result = run_cli("verify", corrupt)
    assert result.returncode == 2
    assert result.stderr.startswith(f"facetwin: error: {corrupt}: not a readable video")
