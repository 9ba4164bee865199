"""A labelled set for face detection: frames with faces at known boxes, at any frame size.

Two kinds of frame, both on backgrounds that are real photographs without faces (scikit-image's sample
images, shipped in its wheel: ``pip install --no-deps scikit-image==0.26.0``, bench-only):

- ``pasted``: faces of the three demo clips (their box found on the full-size clip frame), scaled to a
  chosen size and pasted, several per frame, at random places that do not overlap, with a soft edge.
- ``photo``: one of six real group photos (3 to 5 people each, 22 faces; npm package
  ``@vladmandic/face-api@1.7.15``, MIT, fetched once with ``npm pack`` and checked against its sha256)
  scaled down and placed in the frame; the boxes are ``real_photo_faces.json``, checked by eye.

Every frame comes from a seeded ``random.Random``: the same seed gives the same frames. A label is a
``Face`` with its box in frame pixels; faces under ``CARE_FROM`` px are labelled but "don't care"
(finding them is neither a hit nor a false face). ``match`` scores detections against the labels.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import random
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from facetwin.demo_data import cache_dir, ensure_demo_clips
from facetwin.faces.detect import FaceDetector
from facetwin.faces.tiling import iou

Box = tuple[float, float, float, float]

CARE_FROM = 40.0  # px: the smallest face that counts (the target: faces of 40 px and more)
MATCH_IOU = 0.4  # a detection finds a labelled face when their boxes overlap at least this much
SMALL_IOU = 0.25  # a detection overlapping a don't-care face this much is on that face: not false
BACKGROUNDS = (
    "brick.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png", "coins.png", "color.png",
    "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
    "motorcycle_right.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
)  # scikit-image's photographs without a human face (astronaut and camera have one)
PHOTO_PACKAGE = "@vladmandic/face-api@1.7.15"
PHOTO_LABELS = Path(__file__).with_name("real_photo_faces.json")


@dataclass(frozen=True)
class Face:
    """A labelled face: box (x, y, w, h) in frame pixels. ``size`` is the box's longer side."""

    box: Box

    @property
    def size(self) -> float:
        return max(self.box[2], self.box[3])


@dataclass(frozen=True)
class Frame:
    """An (H, W, 3) uint8 RGB frame, its faces, and which kind of frame it is ("pasted" or "photo")."""

    rgb: np.ndarray
    faces: list[Face]
    kind: str


@dataclass(frozen=True)
class Match:
    """How detections on one frame fared: hits and misses among faces of ``CARE_FROM`` px and more, and
    detections that match no labelled face (false faces)."""

    hits: int
    misses: int
    false: int
    missed_sizes: list[float]
    false_sizes: list[float]


@dataclass(frozen=True)
class _Source:
    crop: np.ndarray  # square RGB crop around a face, the face in its middle
    box: Box  # the face's box inside the crop


def _background_images() -> list[np.ndarray]:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the labelled set needs scikit-image's sample photos: pip install --no-deps scikit-image==0.26.0")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    images = []
    for name in BACKGROUNDS:
        bgr = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"{folder / name}: missing from scikit-image")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images


def _face_sources(every: int = 25, per_clip: int = 30) -> list[_Source]:
    """Face crops from the demo clips, their box found on the full-size frame (faces of 90-150 px in
    frames of 360-400 px, where one pass of the detector sees them)."""
    clips = ensure_demo_clips()
    detector = FaceDetector(min_face=80)
    sources = []
    try:
        for path in (clips.franck, clips.cap12, clips.cap13):
            with av.open(str(path)) as container:
                taken = 0
                for index, frame in enumerate(container.decode(video=0)):
                    if index % every or taken >= per_clip:
                        continue
                    rgb = frame.to_ndarray(format="rgb24")
                    found = detector.detect(rgb)
                    if not found:
                        continue
                    x, y, w, h = found[0].box
                    side = 2.2 * max(w, h)
                    x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
                    shift = np.array([[1, 0, -x0], [0, 1, -y0]], dtype=np.float64)
                    crop = cv2.warpAffine(rgb, shift, (round(side), round(side)), borderMode=cv2.BORDER_REPLICATE)
                    sources.append(_Source(crop, (x - x0, y - y0, w, h)))
                    taken += 1
    finally:
        detector.close()
    return sources


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def real_photos() -> list[tuple[np.ndarray, list[Face]]]:
    """The six group photos as RGB arrays with their labelled faces, fetched once into the cache."""
    labels = json.loads(PHOTO_LABELS.read_text())
    folder = cache_dir().parent / "bench-photos"
    paths = [folder / name for name in labels["faces"]]
    if not all(path.is_file() for path in paths):
        if shutil.which("npm") is None:
            raise SystemExit(f"npm is needed once to fetch {PHOTO_PACKAGE}")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            subprocess.run(["npm", "pack", PHOTO_PACKAGE, "--silent"], cwd=scratch, check=True, capture_output=True)
            tarball = next(Path(scratch).glob("*.tgz"))
            if _sha256(tarball) != labels["tarball_sha256"]:
                raise SystemExit(f"{tarball.name}: sha256 does not match {labels['tarball_sha256']}")
            with tarfile.open(tarball, "r:gz") as archive:
                for path in paths:
                    member = archive.extractfile(f"package/demo/{path.name}")
                    assert member is not None
                    path.write_bytes(member.read())
    photos = []
    for path in paths:
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        photos.append((rgb, [Face(tuple(box)) for box in labels["faces"][path.name]]))
    return photos


class LabelledSet:
    """Makes labelled frames of any size; ``pasted`` and ``photo`` frames, see the module docstring."""

    def __init__(self) -> None:
        self.backgrounds = _background_images()
        self.sources = _face_sources()
        self.photos = real_photos()

    def background(self, rng: random.Random, width: int, height: int) -> np.ndarray:
        """A mosaic of photo crops filling the frame, each shown at 0.7-2.5 times its own size."""
        frame = np.zeros((height, width, 3), np.uint8)
        y = 0
        while y < height:
            row = rng.randint(max(64, height // 4), max(65, height // 2))
            x = 0
            while x < width:
                cell = rng.randint(max(64, width // 5), max(65, width // 2))
                image = rng.choice(self.backgrounds)
                zoom = rng.uniform(0.7, 2.5)
                need_w, need_h = min(image.shape[1], math.ceil(cell / zoom)), min(image.shape[0], math.ceil(row / zoom))
                x0, y0 = rng.randint(0, image.shape[1] - need_w), rng.randint(0, image.shape[0] - need_h)
                piece = image[y0 : y0 + need_h, x0 : x0 + need_w]
                if rng.random() < 0.5:
                    piece = piece[:, ::-1]
                w, h = min(cell, width - x), min(row, height - y)
                frame[y : y + h, x : x + w] = cv2.resize(piece, (cell, row), interpolation=cv2.INTER_LINEAR)[:h, :w]
                x += cell
            y += row
        return frame

    def pasted(self, rng: random.Random, width: int, height: int) -> Frame:
        """Demo faces pasted into a background: 3-8 faces; 60 % of 40-80 px, 25 % of 80 px to a quarter
        of the frame height, 15 % of 24-40 px (don't care); flipped at random, brightness 0.75-1.25."""
        frame = self.background(rng, width, height)
        placed: list[Box] = []
        faces: list[Face] = []
        for _ in range(rng.randint(3, 8)):
            pick = rng.random()
            if pick < 0.6:
                size = rng.uniform(CARE_FROM, 80)
            elif pick < 0.85:
                size = math.exp(rng.uniform(math.log(80), math.log(max(81, height / 4))))
            else:
                size = rng.uniform(24, CARE_FROM)
            source = rng.choice(self.sources)
            k = size / max(source.box[2], source.box[3])
            side = source.crop.shape[0] * k
            if side >= min(width, height):
                continue
            for _try in range(50):
                px, py = rng.uniform(0, width - side), rng.uniform(0, height - side)
                square = (px, py, side, side)
                if all(iou(square, other) == 0 for other in placed):
                    break
            else:
                continue
            placed.append(square)
            crop = source.crop[:, ::-1] if rng.random() < 0.5 else source.crop
            bx = source.crop.shape[1] - source.box[0] - source.box[2] if crop is not source.crop else source.box[0]
            _paste(frame, crop, k, px, py, rng.uniform(0.75, 1.25))
            faces.append(Face((px + bx * k, py + source.box[1] * k, source.box[2] * k, source.box[3] * k)))
        return Frame(frame, faces, "pasted")

    def photo(self, rng: random.Random, width: int, height: int, index: int) -> Frame:
        """Group photo ``index`` (0-5) scaled so that its smallest face is 40-110 px (never larger than
        the frame), on a background, at a random place."""
        rgb, labelled = self.photos[index % len(self.photos)]
        smallest = min(face.size for face in labelled)
        k = min(rng.uniform(CARE_FROM, 110) / smallest, width / rgb.shape[1], height / rgb.shape[0])
        out_w, out_h = round(rgb.shape[1] * k), round(rgb.shape[0] * k)
        frame = self.background(rng, width, height)
        px, py = rng.randint(0, width - out_w), rng.randint(0, height - out_h)
        frame[py : py + out_h, px : px + out_w] = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA)
        faces = [Face((px + f.box[0] * k, py + f.box[1] * k, f.box[2] * k, f.box[3] * k)) for f in labelled]
        return Frame(frame, faces, "photo")


def _paste(frame: np.ndarray, crop: np.ndarray, k: float, px: float, py: float, gain: float) -> None:
    """Scale ``crop`` by ``k`` and blend it in at (px, py) with a soft edge (an eighth of its side)."""
    side = max(2, round(crop.shape[0] * k))
    scaled = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    scaled = np.clip(scaled.astype(np.float32) * gain, 0, 255)
    ramp = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5) / max(1.0, side / 8)
    edge = np.clip(ramp, 0, 1)
    alpha = (np.minimum.outer(edge, edge))[..., None]
    x0, y0 = round(px), round(py)
    region = frame[y0 : y0 + side, x0 : x0 + side]
    h, w = region.shape[:2]
    region[:] = (region * (1 - alpha[:h, :w]) + scaled[:h, :w] * alpha[:h, :w]).astype(np.uint8)


def match(detections: list[Box], faces: list[Face], min_size: float = CARE_FROM) -> Match:
    """Greedy one-to-one matching by IoU (at least ``MATCH_IOU``), best pairs first. Detections smaller
    than 0.8 x ``min_size`` are ignored; a detection on a don't-care face (IoU at least ``SMALL_IOU``:
    the box of a face under 40 px is coarse) is neither hit nor false."""
    dets = [d for d in detections if max(d[2], d[3]) >= 0.8 * min_size]
    pairs = sorted(
        ((iou(d, f.box), i, j) for i, d in enumerate(dets) for j, f in enumerate(faces)), reverse=True
    )
    used_d: set[int] = set()
    used_f: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < MATCH_IOU:
            break
        if i in used_d or j in used_f:
            continue
        used_d.add(i)
        used_f.add(j)
    small = [f for f in faces if f.size < min_size]
    false = [
        max(d[2], d[3])
        for i, d in enumerate(dets)
        if i not in used_d and not any(iou(d, f.box) >= SMALL_IOU for f in small)
    ]
    cared = [j for j, f in enumerate(faces) if f.size >= min_size]
    hits = sum(1 for j in cared if j in used_f)
    missed = [faces[j].size for j in cared if j not in used_f]
    return Match(hits=hits, misses=len(missed), false=len(false), missed_sizes=missed, false_sizes=false)
