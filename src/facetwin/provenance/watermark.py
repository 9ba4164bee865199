"""An invisible watermark in every swapped frame, made to survive H.264, resizing and JPEG.

The method is spread spectrum with informed embedding and perceptual shaping, chosen over
invisible-watermark's three methods after measuring them (bench/provenance.py prints the comparison):
DWT-DCT does not survive H.264 at CRF 28, and RivaGAN does but costs ~0.9 s a frame. Here:

- Each payload bit owns a fixed pseudo-random +-1 pattern on a GRID x GRID lattice that is stretched
  over the whole frame, so the mark scales with the frame: a half-size copy reads the same.
- The reader shrinks the luma to the lattice (area average), keeps its detail (minus a Gaussian blur)
  and correlates it with each pattern: 40 dot products, well under a millisecond.
- When the hard bits fail the CRC even after repair, the reader decodes softly: the 40 correlations
  against all 65,536 codewords (maximum likelihood), the best accepted when it stands SOFT_Z noise
  standard deviations clear, the noise measured on the frame with decoy patterns. On the demo's
  converted video after half size then CRF 28 that reads 100 % of frames against 94.6 % by the hard
  bits alone (bench/provenance.py --watermark-only).
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

from facetwin.provenance.payload import PAYLOAD_BITS, Payload, all_codeword_bits

GRID = 48
ALPHA = 0.3  # the correlation margin each bit is given, in luma levels
DETAIL_SIGMA = 1.5  # in lattice cells: what the reader subtracts as "the picture's own shading"
MIN_SIDE = 2 * GRID
# Perceptual shaping (texture_gain). Strength grows with texture, so flat areas, where added grain shows,
# get less than hair, print or fabric; the power and the cap keep it from piling up on the one textured
# thing in a flat frame, usually a face. Measured on cap13 with one payload (0x1234): the grain added to
# the flat wall (luma std, median of every 25th frame) and the mark's RMS inside the face oval, in luma
# levels; payload recovered after half size then CRF 28 on a converted video (a 20-iteration model's
# swap of all of cap13, marked, written at CRF 18 as convert does, then halved and re-encoded), with the
# soft reader / hard bits only:
#   ALPHA, floor, power, cap   wall added  face RMS  converted half+CRF28
#   0.30, 0.5,  0.5,  1.2      0.91        3.95      99.0 / 96.7 %   (used)
#   0.30, 0.35, 0.75, 1.1      0.82        4.21      99.7 / 97.7 %
#   0.28, 0.35, 0.75, 1.1      0.75        4.01      97.9 / 96.6 %
#   0.28, 0.35, 0.75, 1.2      0.71        4.23      97.7 / 96.5 %
#   0.27, 0.5,  0.5,  1.2      0.80        3.69      94.6 / 93.5 %
#   0.25, 0.35, 0.75, 1.2      0.62        3.92      92.3 / 91.0 %   (88.8 % in bench/provenance.py's own convert)
# Texture^1 capped at 1.5 put 4.8 on the face: blotches a first user saw on an unswapped face. The wall
# figure moves by a third with the payload alone (0.67 for 0xBEEF at the used row), so the rows above
# differ less than the margin by which a lower ALPHA loses half+CRF28 once the output is re-encoded twice.
TEXTURE_FLOOR = 0.5  # luma levels added to each cell's texture, so flat cells still carry some mark
TEXTURE_POWER = 0.5
GAIN_CAP = 1.2  # no cell gets more than 1.2 times the mean strength
_KEY = b"facetwin-watermark-v1"
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_REPAIR_CANDIDATES = 5  # the weakest bits a reader may flip (up to two at once) to pass the CRC
# Soft reading (``read``, when the hard bits fail): the response is compared with every one of the 65,536
# codewords a facetwin mark can be, and the best is accepted when its correlation stands out of the noise.
# The noise scale is measured in each frame, on DECOYS random patterns that no payload uses.
DECOYS = 1024  # sigma to ~2 % (1 / sqrt(2 * 1024)); 1,024 x 2,304 dot products, ~1 ms
SOFT_Z = 7.0  # see SOFT_FALSE_RATE
# Chance that an unmarked frame reads as marked through the soft path: a union bound over the 65,536
# codewords, each Gaussian with the decoy-measured sigma, which may be ~6 % low at 3 standard errors:
# 65,536 * Q(7.0 / 1.06) = 65,536 * Q(6.6) ~ 1.3e-6. Measured (bench/provenance.py's ``soft_null``):
# the best codeword's z on every 2nd unmarked frame of all three demo clips, as is, after CRF 28 and
# after half size then CRF 28: 10,356 frames, median 3.22, 99th percentile 4.61, highest 4.94.
SOFT_FALSE_RATE = 1.3e-6
_DECOY_KEY = b"facetwin-watermark-decoys-v1"


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


def _detail(luma: np.ndarray) -> np.ndarray:
    """(GRID * GRID,) what the reader correlates: the luma shrunk to the lattice, minus its shading."""
    cells = cv2.resize(luma, (GRID, GRID), interpolation=cv2.INTER_AREA)
    return (cells - cv2.GaussianBlur(cells, (0, 0), DETAIL_SIGMA)).reshape(-1)


def _correlations(detail: np.ndarray) -> np.ndarray:
    """(PAYLOAD_BITS,) each bit pattern's correlation with the reader's detail, in luma levels."""
    return _patterns().reshape(PAYLOAD_BITS, -1) @ detail / detail.size


def _response(luma: np.ndarray) -> np.ndarray:
    return _correlations(_detail(luma))


@lru_cache(maxsize=1)
def _decoys() -> np.ndarray:
    """(DECOYS, GRID * GRID) float32 +-1: patterns drawn like the payload's, from another key."""
    seed = int.from_bytes(hashlib.sha256(_DECOY_KEY).digest()[:8], "little")
    return np.random.default_rng(seed).choice(np.array([-1.0, 1.0], np.float32), size=(DECOYS, GRID * GRID))


@lru_cache(maxsize=1)
def _codewords() -> np.ndarray:
    """(65536, PAYLOAD_BITS) float32 +-1: every payload a facetwin mark can carry, row = model tag."""
    return all_codeword_bits().astype(np.float32) * 2 - 1


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
    repaired: int  # bits where the payload read differs from the hard decisions (0-2 by repair, more when soft)
    soft_z: float = 0.0  # the best codeword's correlation in noise standard deviations (0 when not needed)

    def bit_accuracy(self, expected: Payload) -> float:
        return float(np.mean(self.bits == expected.to_bits()))


def soft_read(rgb: np.ndarray) -> tuple[Payload, float]:
    """The codeword this frame is most like, and how far it stands out of the noise (z, in standard
    deviations of a codeword's correlation on an unmarked frame).

    Maximum-likelihood decoding over the 65,536 payloads: with Gaussian noise of equal variance on each
    bit's correlation, the likeliest codeword is the one with the largest sum of signed correlations, so
    weak bits vote with their strength instead of being rounded first. The noise's standard deviation is
    measured on this frame, by correlating DECOYS random patterns that carry nothing."""
    detail = _detail(_luma(rgb))
    return _soft(detail, _correlations(detail))


def _soft(detail: np.ndarray, correlations: np.ndarray) -> tuple[Payload, float]:
    noise = _decoys() @ detail / detail.size
    sigma = float(np.sqrt(np.mean(noise * noise)))
    scores = _codewords() @ correlations
    best = int(np.argmax(scores))
    return Payload(best), float(scores[best] / (max(sigma, 1e-12) * np.sqrt(PAYLOAD_BITS)))


def read(rgb: np.ndarray) -> Reading:
    """Decode one frame (RGB uint8, H x W x 3).

    First the hard bits: when they fail the check, the two or fewer least certain of the five weakest
    bits are flipped; with a 24-bit check that keeps false marks below one in a million frames. When
    that fails, the soft reading (``soft_read``) is accepted if its z exceeds SOFT_Z (false marks
    ~SOFT_FALSE_RATE a frame). Frames smaller than MIN_SIDE read as unmarked."""
    if not can_mark(rgb):
        return Reading(None, np.zeros(PAYLOAD_BITS, np.uint8), np.zeros(PAYLOAD_BITS, np.float32), 0)
    detail = _detail(_luma(rgb))
    correlations = _correlations(detail)
    strength = correlations / ALPHA
    bits = (strength > 0).astype(np.uint8)
    weakest = np.argsort(np.abs(strength))[:_REPAIR_CANDIDATES]
    candidates = [()] + [(i,) for i in weakest] + [(i, j) for n, i in enumerate(weakest) for j in weakest[n + 1 :]]
    for flips in candidates:
        trial = bits.copy()
        trial[list(flips)] ^= 1
        payload = Payload.from_bits(trial)
        if payload is not None:
            return Reading(payload, bits, strength, len(flips))
    best, z = _soft(detail, correlations)  # the frame's detail and correlations, not computed again
    if z > SOFT_Z:
        return Reading(best, bits, strength, int(np.sum(best.to_bits() != bits)), z)
    return Reading(None, bits, strength, 0, z)
