"""Reading and writing still images so that what a viewer sees is kept: orientation, alpha, colour profile.

Pixels come from OpenCV (any bit depth, alpha, grey), the rest from Pillow: the EXIF orientation (JPEG,
PNG, WebP, TIFF), the ICC profile, PNG's colour chunks (sRGB, gAMA, cHRM, cICP), JPEG's quantisation
tables and chroma subsampling. ``read_picture`` gives the upright picture with its alpha;
``write_picture`` writes an edited picture the way its source was written (``ImageDescription``), and
returns a one-line notice for each thing it had to change.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from facetwin.media.orientation import Orientation, from_exif
from facetwin.media.video_in import MediaError

EXIF_ORIENTATION = 0x0112
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
HAS_ALPHA = frozenset({"PNG", "WEBP", "TIFF"})
PNG_COLOUR_CHUNKS = (b"sRGB", b"gAMA", b"cHRM", b"cICP")


@dataclass(frozen=True)
class ImageDescription:
    """How an image file stores its picture: ``format`` (Pillow's name), upright ``width`` x ``height`` in
    pixels, ``orientation`` (from EXIF), ``grey`` (one colour channel), ``alpha``, ``bit_depth`` per
    channel, ``icc_profile`` (bytes), ``png_chunks`` (raw colour chunks), ``jpeg`` (quantisation tables
    and subsampling, to write at the same quality), ``lossless`` (WebP), ``palette``, ``exif`` (had EXIF)."""

    path: Path
    format: str
    width: int
    height: int
    orientation: Orientation = Orientation()
    grey: bool = False
    alpha: bool = False
    bit_depth: int = 8
    icc_profile: bytes | None = field(default=None, repr=False)
    png_chunks: tuple[tuple[bytes, bytes], ...] = field(default=(), repr=False)
    jpeg: dict[str, Any] | None = field(default=None, repr=False)
    lossless: bool = True
    palette: bool = False
    cmyk: bool = False
    exif: bool = False
    orientation_applied_by_decoder: bool = False

    def reading_notices(self) -> list[str]:
        """One line for each thing reading changes: orientation applied, bit depth and colour model reduced."""
        notes = []
        if not self.orientation.identity:
            notes.append(f"{self.path}: EXIF orientation applied ({self.orientation.describe()}): written upright, without the tag")
        if self.bit_depth > 8:
            notes.append(f"{self.path}: {self.bit_depth}-bit image read as 8-bit (facetwin works on 8-bit pictures)")
        if self.cmyk:
            notes.append(f"{self.path}: CMYK image read as RGB")
        return notes


@dataclass(frozen=True)
class Picture:
    """An upright image: ``rgb`` (H, W, 3) uint8, ``alpha`` (H, W) uint8 (255 opaque) or None."""

    rgb: np.ndarray = field(repr=False)
    alpha: np.ndarray | None = field(repr=False)
    description: ImageDescription


def _png_chunks(data: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """The colour chunks of a PNG file, raw, in file order."""
    found = []
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            break
        if kind in PNG_COLOUR_CHUNKS:
            found.append((kind, data[position + 8 : position + 8 + length]))
        position += 12 + length
    return tuple(found)


def _describe(path: Path, data: bytes, pixels: np.ndarray) -> ImageDescription:
    try:
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
            fmt = image.format or FORMATS.get(path.suffix.lower(), "PNG")
            mode = image.mode
            icc = image.info.get("icc_profile") or None
            jpeg = None
            if fmt == "JPEG" and isinstance(image, JpegImagePlugin.JpegImageFile):
                jpeg = {"qtables": image.quantization, "subsampling": JpegImagePlugin.get_sampling(image)}
    except (UnidentifiedImageError, OSError, SyntaxError):  # OpenCV reads it, Pillow does not: no metadata
        exif, fmt, mode, icc, jpeg = Image.Exif(), FORMATS.get(path.suffix.lower(), "PNG"), "", None, None
    orientation = from_exif(exif.get(EXIF_ORIENTATION))
    height, width = pixels.shape[:2]
    if orientation.swaps_sides:
        width, height = height, width
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return ImageDescription(
        path=path, format=fmt, width=width, height=height, orientation=orientation,
        grey=channels == 1 or mode in ("L", "LA", "I;16", "I"), alpha=channels == 4, bit_depth=pixels.dtype.itemsize * 8,
        icc_profile=icc, png_chunks=_png_chunks(data) if fmt == "PNG" else (), jpeg=jpeg,
        lossless=not (fmt == "JPEG" or (fmt == "WEBP" and data[12:16] == b"VP8 ")), palette=mode == "P",
        cmyk=mode == "CMYK", exif=fmt != "TIFF" and any(tag != EXIF_ORIENTATION for tag in exif),
    )  # fmt: skip


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.round(pixels.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def read_picture(path: Path) -> Picture:
    """Read an image file upright, with its alpha. Raises MediaError when it cannot be read."""
    data = path.read_bytes() if path.is_file() else b""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if pixels is None:
        raise MediaError(f"{path}: not a readable image")
    description = _describe(path, data, pixels)
    if description.format == "TIFF" and pixels.dtype == np.uint8:
        # OpenCV reads 8-bit TIFF through libtiff's RGBA interface, which premultiplies alpha (transparent
        # pixels lose their colour): Pillow reads it as stored, and turns it upright itself.
        pixels, turned = _pillow_pixels(data)
        description = replace(description, orientation_applied_by_decoder=turned)
    elif description.format == "TIFF" and not description.orientation.identity and _upright_already(data, pixels, description):
        description = replace(description, orientation_applied_by_decoder=True)
    pixels = _to_8bit(pixels)
    alpha = None
    if pixels.ndim == 2:
        rgb = np.repeat(pixels[:, :, None], 3, axis=2)
    elif pixels.shape[2] == 4:
        rgb, alpha = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB), np.ascontiguousarray(pixels[:, :, 3])
    else:
        rgb = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    orientation = Orientation() if description.orientation_applied_by_decoder else description.orientation
    return Picture(orientation.upright(rgb), orientation.upright(alpha) if alpha is not None else None, description)


def _pillow_pixels(data: bytes) -> tuple[np.ndarray, bool]:
    """An 8-bit image decoded by Pillow in OpenCV's channel order (grey, BGR or BGRA), and whether Pillow
    turned it upright (it drops the orientation tag when it does)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        turned = image.getexif().get(EXIF_ORIENTATION) in (None, 1)
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        if image.mode in ("L", "1") and not has_alpha:
            return np.asarray(image.convert("L")), turned
        rgb = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if has_alpha else cv2.COLOR_RGB2BGR), turned


def _upright_already(data: bytes, pixels: np.ndarray, description: ImageDescription) -> bool:
    """Whether OpenCV's decoder already turned a TIFF upright (libtiff's RGBA path does, others do not).

    Told by comparison with Pillow's decode, made upright where Pillow did not (Pillow drops the tag
    when it turns the picture itself)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        turned_by_pillow = image.getexif().get(EXIF_ORIENTATION) in (None, 1)
        seen = np.asarray(image.convert("L"), dtype=np.float32)
    upright = seen if turned_by_pillow else description.orientation.upright(seen)
    stored = description.orientation.stored(upright)
    grey = (pixels if pixels.ndim == 2 else cv2.cvtColor(pixels[:, :, :3], cv2.COLOR_BGR2GRAY)).astype(np.float32)
    if grey.shape != stored.shape:
        return grey.shape == upright.shape
    if grey.shape != upright.shape:
        return False
    return float(np.abs(grey - upright).mean()) < float(np.abs(grey - stored).mean())


def read_image(path: Path) -> np.ndarray:
    """An image file as upright (H, W, 3) uint8 RGB. Raises MediaError when it cannot be read."""
    return read_picture(path).rgb


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, params: Sequence[int] = ()) -> Path:
    """Write an (H, W, 3) uint8 RGB picture facetwin made itself (crops, sheets, previews) in the format its
    suffix names, via a temporary file and a rename, so a reader never sees half a file. Raises OSError
    when it cannot be written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(target.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))
    if not ok:
        raise OSError(f"{target}: cannot encode this image")
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(encoded.tobytes())
    os.replace(partial, target)
    return target


def _png_info(chunks: tuple[tuple[bytes, bytes], ...], has_icc: bool) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for kind, payload in chunks:
        if kind == b"sRGB" and has_icc:
            continue  # PNG allows an iCCP or an sRGB chunk, not both
        info.add(kind, payload)
    return info


def write_picture(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, like: ImageDescription) -> list[str]:
    """Write an edited picture (rgb (H, W, 3) uint8, alpha (H, W) uint8 or None) to ``path`` in the format
    its suffix names (PNG, JPEG, WebP, TIFF), the way ``like``'s file was written: grey stays grey, alpha
    is kept, the ICC profile and PNG colour chunks are copied, a JPEG source's quantisation tables and
    subsampling are reused (the same quality), a lossless source stays lossless. The picture is written
    upright without an orientation tag, and without the source's other EXIF data (a synthetic picture
    should not carry a camera's time and place). Returns a one-line notice for each thing that could
    not be kept. Raises OSError when the file cannot be written."""
    fmt = FORMATS.get(path.suffix.lower(), "PNG")
    notes = []
    if alpha is not None and fmt not in HAS_ALPHA:
        notes.append(f"{path}: alpha channel dropped ({fmt} cannot carry it)")
        alpha = None
    if like.palette:
        notes.append(f"{path}: palette image written in full colour (a swapped face needs more colours than the palette)")
    if like.exif and like.orientation.identity:
        notes.append(f"{path}: EXIF metadata of {like.path.name} not copied (a synthetic picture should not carry a camera's time and place)")
    grey = like.grey and fmt != "WEBP"
    channels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if grey else rgb
    if alpha is not None:
        image = Image.fromarray(np.dstack([channels, alpha]), "LA" if grey else "RGBA")
    else:
        image = Image.fromarray(channels, "L" if grey else "RGB")
    options: dict[str, Any] = {"icc_profile": like.icc_profile} if like.icc_profile else {}
    if fmt == "PNG":
        options["pnginfo"] = _png_info(like.png_chunks, like.icc_profile is not None)
    elif fmt == "JPEG":
        options.update(like.jpeg if like.jpeg and not grey else {"quality": 95})
    elif fmt == "WEBP":
        options.update({"lossless": True} if like.lossless else {"quality": 95})
    elif fmt == "TIFF":
        options["compression"] = "tiff_deflate"
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **options)
    except (OSError, ValueError, zlib.error) as exc:
        raise OSError(f"{path}: cannot encode this image ({exc})") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)
    return notes
