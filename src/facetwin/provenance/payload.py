"""The 40 bits that every swapped frame carries: a facetwin marker, the model's tag and a CRC.

Why 40 and not the minimum 32: a frame only counts as marked when the marker and a CRC-16 both check,
so a random frame passes with odds of 2**-24. That leaves room to repair the one or two weakest bits of
a damaged frame (see watermark.read) and still never report a mark on footage facetwin did not make.
"""

from __future__ import annotations

import binascii
import hashlib
from dataclasses import dataclass

import numpy as np

MARKER = 0xF7  # one byte that says "facetwin"; with the CRC it is what a reader looks for
PAYLOAD_BITS = 40


def model_tag(model_id: str) -> int:
    """16 bits of the model id's SHA-256: enough to tell models apart, too few to identify anyone."""
    return int.from_bytes(hashlib.sha256(model_id.encode()).digest()[:2], "big")


def _word(tag: int) -> bytes:
    """The 5 bytes a model tag is written as: marker, tag (big-endian), CRC-16 of those three."""
    body = bytes([MARKER]) + tag.to_bytes(2, "big")
    return body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")


def all_codeword_bits() -> np.ndarray:
    """(65536, PAYLOAD_BITS) uint8 0/1: the bits of every payload, row = model tag (what a soft reader
    compares a frame with)."""
    words = b"".join(_word(tag) for tag in range(1 << 16))
    return np.unpackbits(np.frombuffer(words, np.uint8).reshape(1 << 16, PAYLOAD_BITS // 8), axis=1)


@dataclass(frozen=True)
class Payload:
    model_tag: int

    def to_bits(self) -> np.ndarray:
        return np.unpackbits(np.frombuffer(_word(self.model_tag), np.uint8))

    @staticmethod
    def from_bits(bits: np.ndarray) -> Payload | None:
        """The payload these bits carry, or None when the marker or the CRC does not check."""
        word = np.packbits(np.asarray(bits, np.uint8)).tobytes()
        if len(word) != PAYLOAD_BITS // 8 or word[0] != MARKER:
            return None
        if binascii.crc_hqx(word[:3], 0xFFFF) != int.from_bytes(word[3:], "big"):
            return None
        return Payload(int.from_bytes(word[1:3], "big"))

    @property
    def hex(self) -> str:
        return np.packbits(self.to_bits()).tobytes().hex()
