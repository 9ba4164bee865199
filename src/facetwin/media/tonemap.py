"""HDR video (PQ or HLG, BT.2020) to SDR BT.709, so faces from HDR footage look like faces from any other.

facetwin works on 8-bit frames, and an 8-bit PQ picture bands; so an HDR input is read as SDR BT.709
and written so, with a notice. The conversion follows ITU-R BT.2408: the signal is made linear (PQ's
EOTF, or HLG's inverse OETF and its OOTF at a 1000 cd/m² nominal peak), HDR reference white (203 cd/m²)
becomes SDR white, the BT.2020 primaries are converted to BT.709 in linear light, and the range above
``KNEE`` of SDR white is rolled off smoothly towards white (slope 1 at the knee, so everything below it,
which includes faces in ordinary light, keeps its value). The result is encoded with the BT.1886
gamma (2.4) of an SDR display.
"""

from __future__ import annotations

import numpy as np

REFERENCE_WHITE = 203.0  # cd/m², BT.2408's HDR reference white, shown as SDR white
KNEE = 0.8  # share of SDR white below which nothing changes
HLG_PEAK = 1000.0  # cd/m², HLG's nominal display peak for the OOTF
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]], np.float32)  # fmt: skip  (BT.2087, linear light)
BT2020_LUMA = np.array([0.2627, 0.6780, 0.0593], np.float32)


def pq_to_nits(signal: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 EOTF: signal in [0, 1] to display light in cd/m² (0-10000)."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    power = np.power(np.clip(signal, 0, 1), 1 / m2)
    return 10000.0 * np.power(np.maximum(power - c1, 0) / (c2 - c3 * power), 1 / m1)


def nits_to_pq(nits: np.ndarray) -> np.ndarray:
    """The inverse of ``pq_to_nits``: cd/m² to the PQ signal in [0, 1]."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = np.power(np.clip(nits / 10000.0, 0, 1), m1)
    return np.power((c1 + c2 * y) / (1 + c3 * y), m2)


def hlg_to_scene(signal: np.ndarray) -> np.ndarray:
    """BT.2100 HLG inverse OETF: signal in [0, 1] to scene light in [0, 1]."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    signal = np.clip(signal, 0, 1)
    return np.where(signal <= 0.5, signal**2 / 3, (np.exp((signal - c) / a) + b) / 12)


def _roll_off(relative: np.ndarray) -> np.ndarray:
    """Identity below KNEE, then an exponential approach to 1 with slope 1 at the knee."""
    over = np.maximum(relative - KNEE, 0)
    return np.where(relative <= KNEE, relative, KNEE + (1 - KNEE) * (1 - np.exp(-over / (1 - KNEE))))


def hdr_to_sdr(rgb16: np.ndarray, transfer: str) -> np.ndarray:
    """(H, W, 3) uint16 non-linear BT.2020 R'G'B' (0-65535, full scale, as swscale's rgb48 gives it) of a
    PQ (``transfer='pq'``) or HLG (``'hlg'``) picture to (H, W, 3) uint8 SDR BT.709 R'G'B'."""
    signal = rgb16.astype(np.float32) / 65535.0
    if transfer == "pq":
        relative = pq_to_nits(signal) / REFERENCE_WHITE
    elif transfer == "hlg":
        scene = hlg_to_scene(signal)
        luminance = np.maximum(scene @ BT2020_LUMA, 1e-6)[..., None]
        relative = HLG_PEAK * np.power(luminance, 0.2) * scene / REFERENCE_WHITE
    else:
        raise ValueError(f"transfer is 'pq' or 'hlg', not {transfer!r}")
    linear709 = np.clip(relative @ BT2020_TO_BT709.T, 0, None)
    display = _roll_off(linear709)
    return np.round(np.power(np.clip(display, 0, 1), 1 / 2.4) * 255.0).astype(np.uint8)


def sdr_to_pq(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 SDR BT.709 R'G'B' to (H, W, 3) uint16 PQ BT.2020 R'G'B' (SDR white at 203 cd/m²):
    the inverse mapping below the knee, for making HDR10 test material from SDR footage."""
    linear709 = np.power(rgb.astype(np.float32) / 255.0, 2.4)
    linear2020 = np.clip(linear709 @ np.linalg.inv(BT2020_TO_BT709).T.astype(np.float32), 0, None)
    return np.round(nits_to_pq(linear2020 * REFERENCE_WHITE) * 65535.0).astype(np.uint16)


def sdr_to_hlg(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 SDR BT.709 R'G'B' to (H, W, 3) uint16 HLG BT.2020 R'G'B' (SDR white at 203 cd/m²,
    1000 cd/m² display): the inverse mapping below the knee, for making HLG test material."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    linear709 = np.power(rgb.astype(np.float32) / 255.0, 2.4)
    display = np.clip(linear709 @ np.linalg.inv(BT2020_TO_BT709).T.astype(np.float32), 0, None) * REFERENCE_WHITE / HLG_PEAK
    luminance = np.maximum(display @ BT2020_LUMA, 1e-6)[..., None]
    scene = display / np.power(luminance, 0.2 / 1.2)  # the OOTF's inverse: Ys = Yd^(1/1.2)
    signal = np.where(scene <= 1 / 12, np.sqrt(3 * scene), a * np.log(np.maximum(12 * scene - b, 1e-6)) + c)
    return np.round(np.clip(signal, 0, 1) * 65535.0).astype(np.uint16)
