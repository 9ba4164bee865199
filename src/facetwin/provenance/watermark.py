"""An invisible watermark in every swapped frame, made to survive H.264, resizing and JPEG.

The method is spread spectrum with informed embedding and perceptual shaping, chosen over
invisible-watermark's three methods after measuring them (bench/provenance.py prints the comparison):
DWT-DCT does not survive H.264 at CRF 28, and RivaGAN does but costs ~0.9 s a frame. Here:

- Each payload bit owns a fixed pseudo-random +-1 pattern on a GRID x GRID lattice that is stretched
  over the whole frame, so the mark scales with the frame: a half-size copy reads the same.
- The reader shrinks the luma to the lattice (area average), keeps its detail (minus a Gaussian blur)
  and correlates it with each pattern: 40 dot products, well under a millisecond.
- The writer shapes the mark to the picture: each lattice cell's strength follows the texture around
  it (``texture_gain``), so flat areas, where added grain shows, get a fraction of what hair, print or
  fabric get, as perceptual watermarks do (texture masking: Cox, Miller, Bloom, Fridrich and Kalker,
  *Digital Watermarking and Steganography*, 2nd ed. 2008, ch. 8). Without it the mark showed as
  streaky grain on flat walls (bench/provenance.py's ``flat_patch``).
- The writer knows the frame, so it measures what the reader would see before marking and adds only
  what each bit lacks to reach a margin ALPHA in the right direction (informed embedding). The picture
  itself then never votes against a bit, and bits the picture already agrees with cost nothing.
  Stretching (bilinear), the reader's area average and its blur are all linear and separable, so the
  reader's response to each shaped pattern is a 40 x 40 matrix computed on the lattice, and "what it
  lacks" is one small linear solve.
- Cells are ~8 px on demo frames: coarse enough that CRF 28 and JPEG 75 keep them, fine enough to stay
  out of sight.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from facetwin.provenance.payload import PAYLOAD_BITS, Payload

GRID = 48
ALPHA = 0.3  # the correlation margin each bit is given, in luma levels
DETAIL_SIGMA = 1.5  # in lattice cells: what the reader subtracts as "the picture's own shading"
MIN_SIDE = 2 * GRID
# Perceptual shaping (texture_gain). Strength grows with texture, so flat areas, where added grain shows,
# get less than hair, print or fabric; the power and the cap keep it from piling up on the one textured
# thing in a flat frame, usually a face. Measured (bench/provenance.py's shaping table, and 77
# frames spread over cap13 and the same frames beside Franck, 800x300), mark RMS in luma levels inside the
# face oval / on cap13's flat wall, and payload recovered after half size then CRF 28:
#   unshaped (power 0)        face 2.9 / 3.4 (Franck), wall 2.9, half+CRF28 75 % / 82 %
#   power 1, cap 1.5          face 4.8 / 7.0 (Franck), wall 2.1, half+CRF28 75 % / 88 %: blotches on faces,
#                             seen on an unswapped person by a first user (PSNR 33 dB on his half)
#   power 0.5, cap 1.2 (used) face 3.6 / 4.7 (Franck), wall 2.5, half+CRF28 78 % / 83 %
# A lower ALPHA hides it better but does not survive: ALPHA 0.22 kept half+CRF28 on 25 % of frames.
TEXTURE_FLOOR = 0.5  # luma levels added to each cell's texture, so flat cells still carry some mark
TEXTURE_POWER = 0.5
GAIN_CAP = 1.2  # no cell gets more than 1.2 times the mean strength
_KEY = b"facetwin-watermark-v1"
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_REPAIR_CANDIDATES = 5  # the weakest bits a reader may flip (up to two at once) to pass the CRC


@lru_cache(maxsize=1)
def _patterns() -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(_KEY).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1.0, 1.0], np.float32), size=(PAYLOAD_BITS, GRID, GRID))


@lru_cache(maxsize=1)
def _written_patterns() -> np.ndarray:
    """What the writer adds: each pattern with the shading the reader subtracts taken out first, so no
    energy goes where the reader does not look (measured: +0.4 dB PSNR at the same robustness)."""
    patterns = _patterns()
    shaped = np.stack([p - cv2.GaussianBlur(p, (0, 0), DETAIL_SIGMA) for p in patterns])
    return shaped / shaped.std(axis=(1, 2), keepdims=True)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _LUMA


def _spread(lattice: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(lattice, (width, height), interpolation=cv2.INTER_LINEAR)


def _response(luma: np.ndarray) -> np.ndarray:
    cells = cv2.resize(luma, (GRID, GRID), interpolation=cv2.INTER_AREA)
    detail = cells - cv2.GaussianBlur(cells, (0, 0), DETAIL_SIGMA)
    return _patterns().reshape(PAYLOAD_BITS, -1) @ detail.reshape(-1) / detail.size


@lru_cache(maxsize=1)
def _reader_weights() -> np.ndarray:
    """(PAYLOAD_BITS, GRID, GRID): the reader's response is linear in the lattice cells it computes;
    these are its weights, found by reading each cell's unit impulse (blurred 512 at a time)."""
    cells = GRID * GRID
    impulses = np.eye(cells, dtype=np.float32).reshape(GRID, GRID, cells)
    detail = np.concatenate(
        [chunk - cv2.GaussianBlur(chunk, (0, 0), DETAIL_SIGMA) for chunk in np.array_split(impulses, 5, axis=2)], axis=2
    )
    return (_patterns().reshape(PAYLOAD_BITS, -1) @ detail.reshape(cells, cells) / cells).reshape(PAYLOAD_BITS, GRID, GRID)


@lru_cache(maxsize=8)
def _lattice_weights(width: int, height: int) -> np.ndarray:
    """(PAYLOAD_BITS, GRID * GRID): the reader's response to a lattice once stretched to this frame size
    and shrunk back. Both resizes are separable, so stretch-then-shrink is Sy @ lattice @ Sx."""
    eye = np.eye(GRID, dtype=np.float32)
    sy = cv2.resize(np.eye(height, dtype=np.float32), (height, GRID), interpolation=cv2.INTER_AREA) @ cv2.resize(
        eye, (GRID, height), interpolation=cv2.INTER_LINEAR
    )
    sx = cv2.resize(eye, (width, GRID), interpolation=cv2.INTER_LINEAR) @ cv2.resize(
        np.eye(width, dtype=np.float32), (GRID, width), interpolation=cv2.INTER_AREA
    )
    return (sy.T @ _reader_weights() @ sx.T).reshape(PAYLOAD_BITS, -1)


def texture_gain(luma: np.ndarray) -> np.ndarray:
    """(GRID, GRID) float32 strength of the mark per lattice cell, mean-relative, in (0, GAIN_CAP].

    Texture is each cell's luma standard deviation (levels), then the smallest over the cell and its
    eight neighbours: a cell counts as busy only inside texture, so a strong edge (a head against a
    wall) does not lend strength to the flat side next to it, where the stretched mark would show as a
    halo. Strength is (texture + TEXTURE_FLOOR) ** TEXTURE_POWER, capped at GAIN_CAP times the mean."""
    mean = cv2.resize(luma, (GRID, GRID), interpolation=cv2.INTER_AREA)
    square = cv2.resize(luma * luma, (GRID, GRID), interpolation=cv2.INTER_AREA)
    texture = cv2.erode(np.sqrt(np.maximum(square - mean * mean, 0.0)), np.ones((3, 3), np.uint8))
    gain = (texture + TEXTURE_FLOOR) ** TEXTURE_POWER
    return np.minimum(gain / gain.mean(), GAIN_CAP).astype(np.float32)


def can_mark(rgb: np.ndarray) -> bool:
    return min(rgb.shape[:2]) >= MIN_SIDE


def embed(rgb: np.ndarray, payload: Payload) -> np.ndarray:
    """The frame (RGB uint8, H x W x 3) with the payload written into its luma; frames smaller than
    MIN_SIDE come back unchanged."""
    if not can_mark(rgb):
        return rgb
    height, width = rgb.shape[:2]
    luma = _luma(rgb)
    signs = payload.to_bits().astype(np.float32) * 2 - 1
    seen = _response(luma)
    wanted = signs * np.maximum(ALPHA, signs * seen)
    gain = texture_gain(luma).reshape(-1)
    written = _written_patterns().reshape(PAYLOAD_BITS, -1)
    # column j: what pattern j, shaped, reads as. einsum, not @: a 40 x 40 x 2304 product is too small
    # for BLAS threads, which on a busy 2-core machine took 14-130 ms to wake against einsum's 1.1 ms
    response = np.einsum("ik,jk->ij", _lattice_weights(width, height) * gain, written)
    amounts = np.linalg.solve(response, wanted - seen).astype(np.float32)
    mark = _spread(((amounts @ written) * gain).reshape(GRID, GRID), width, height)
    return np.clip(rgb.astype(np.float32) + mark[..., None] + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Reading:
    """What one frame says: the decoded payload (None when it does not check) and the raw evidence."""

    payload: Payload | None
    bits: np.ndarray  # the hard decisions, before any repair
    strength: np.ndarray  # each bit's correlation in units of ALPHA (sign = bit)
    repaired: int  # bits flipped to pass the CRC (0-2)

    def bit_accuracy(self, expected: Payload) -> float:
        return float(np.mean(self.bits == expected.to_bits()))


def read(rgb: np.ndarray) -> Reading:
    """Decode one frame. When the hard bits fail the check, the two or fewer least certain of the five
    weakest bits are flipped; with a 24-bit check that keeps false marks below one in a million frames."""
    strength = _response(_luma(rgb)) / ALPHA if can_mark(rgb) else np.zeros(PAYLOAD_BITS, np.float32)
    bits = (strength > 0).astype(np.uint8)
    if not can_mark(rgb):
        return Reading(None, bits, strength, 0)
    weakest = np.argsort(np.abs(strength))[:_REPAIR_CANDIDATES]
    candidates = [()] + [(i,) for i in weakest] + [(i, j) for n, i in enumerate(weakest) for j in weakest[n + 1 :]]
    for flips in candidates:
        trial = bits.copy()
        trial[list(flips)] ^= 1
        payload = Payload.from_bits(trial)
        if payload is not None:
            return Reading(payload, bits, strength, len(flips))
    return Reading(None, bits, strength, 0)
