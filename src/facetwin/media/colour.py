"""What a video frame's numbers mean, and the rule for files that do not say.

A colour description is four tags, with FFmpeg's (ITU-T H.273) code points: primaries, transfer,
matrix (how Y'CbCr is made from R'G'B') and range (limited 16-235 or full 0-255). A file may leave
any of them unspecified; then facetwin assumes what players assume (mpv's rule, which browsers follow
for the matrix): BT.709 for HD (width 1280 or more, or more than 576 lines), BT.601 below that (the
625-line primaries at exactly 576 lines, the 525-line ones otherwise), the BT.709 transfer and the
limited range. The guess is recorded, so that the output can carry it as explicit tags and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# H.273 code points (FFmpeg's AVColorPrimaries, AVColorTransferCharacteristic, AVColorSpace, AVColorRange)
UNSPECIFIED = 2
PRIMARIES = {1: "BT.709", 4: "BT.470M", 5: "BT.601-625", 6: "BT.601-525", 7: "SMPTE 240M", 8: "film",
             9: "BT.2020", 10: "SMPTE 428", 11: "DCI-P3", 12: "Display P3", 22: "EBU 3213"}  # fmt: skip
TRANSFERS = {1: "BT.709", 4: "gamma 2.2", 5: "gamma 2.8", 6: "BT.601", 7: "SMPTE 240M", 8: "linear",
             9: "log 100", 10: "log 316", 11: "IEC 61966-2-4", 12: "BT.1361", 13: "sRGB", 14: "BT.2020 10-bit",
             15: "BT.2020 12-bit", 16: "PQ", 17: "SMPTE 428", 18: "HLG"}  # fmt: skip
MATRICES = {0: "RGB", 1: "BT.709", 4: "FCC", 5: "BT.601", 6: "BT.601", 7: "SMPTE 240M", 8: "YCgCo",
            9: "BT.2020", 10: "BT.2020 constant luminance", 11: "SMPTE 2085", 12: "chroma-derived",
            13: "chroma-derived constant luminance", 14: "ICtCp"}  # fmt: skip
PQ, HLG = 16, 18
RANGE_LIMITED, RANGE_FULL = 1, 2

# The matrices swscale converts with (sws_getCoefficients); others are read as the nearest of these.
SWSCALE_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
BT709_PRIMARIES = BT709_TRANSFER = BT709_MATRIX = 1


@dataclass(frozen=True)
class Colour:
    """A colour description: H.273 code points and the range. ``guessed`` names the tags the file left
    unspecified and that were filled in by the players' rule (module docstring)."""

    primaries: int
    transfer: int
    matrix: int
    full_range: bool
    guessed: tuple[str, ...] = field(default=(), compare=False)

    @property
    def hdr(self) -> str | None:
        """'HDR10 (PQ)' or 'HLG' for a high-dynamic-range transfer, else None."""
        return {PQ: "HDR10 (PQ)", HLG: "HLG"}.get(self.transfer)

    @property
    def range_code(self) -> int:
        return RANGE_FULL if self.full_range else RANGE_LIMITED

    @property
    def swscale_matrix(self) -> int:
        """The matrix code swscale understands for this description (BT.709 for any it does not)."""
        return SWSCALE_MATRIX.get(self.matrix, BT709_MATRIX)

    def describe(self) -> str:
        """One phrase, e.g. 'BT.709 (primaries BT.709, transfer BT.709), limited range'."""
        name = MATRICES.get(self.matrix, f"matrix {self.matrix}")
        primaries = PRIMARIES.get(self.primaries, f"primaries {self.primaries}")
        transfer = TRANSFERS.get(self.transfer, f"transfer {self.transfer}")
        return f"{name} (primaries {primaries}, transfer {transfer}), {'full' if self.full_range else 'limited'} range"


SDR_BT709 = Colour(BT709_PRIMARIES, BT709_TRANSFER, BT709_MATRIX, full_range=False)


def is_hd(width: int, height: int) -> bool:
    """The size from which players assume BT.709 for untagged video."""
    return width >= 1280 or height > 576


def describe_tags(primaries: int, transfer: int, matrix: int, colour_range: int, width: int, height: int,
                  pix_fmt: str = "") -> Colour:
    """The colour of a stream from its tags, unspecified ones filled in by the players' rule.

    ``pix_fmt`` matters for two legacy cases: the ``yuvj*`` formats mean full range, and RGB formats
    (``gbrp``, ``rgb24``...) have no matrix and are full range."""
    guessed = []
    rgb = pix_fmt.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "rgba", "bgra", "0rgb", "rgb0", "pal8"))
    hd = is_hd(width, height)
    if primaries in (0, UNSPECIFIED) or primaries not in PRIMARIES:
        primaries = BT709_PRIMARIES if hd else (5 if height == 576 else 6)
        guessed.append("primaries")
    if transfer in (0, UNSPECIFIED) or transfer not in TRANSFERS:
        transfer = BT709_TRANSFER
        guessed.append("transfer")
    if rgb:
        matrix = 0
    elif matrix == UNSPECIFIED or matrix not in MATRICES:
        matrix = BT709_MATRIX if hd else 6
        guessed.append("matrix")
    if rgb or pix_fmt.startswith("yuvj"):
        full = True
    elif colour_range in (RANGE_LIMITED, RANGE_FULL):
        full = colour_range == RANGE_FULL
    else:
        full = False
        guessed.append("range")
    return Colour(primaries, transfer, matrix, full, tuple(guessed))
