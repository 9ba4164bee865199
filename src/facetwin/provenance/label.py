"""What convert does to label its output: watermark every swapped frame, then sign the finished file.

Nothing unlabelled is ever left at the output path: frames are marked as they are made, and the file
appears there only once signed (it is rendered under a hidden name, signed into place, and the hidden
file removed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetwin.errors import FacetwinError
from facetwin.provenance import watermark
from facetwin.provenance.credentials import MIME_TYPES, SigningIdentity, SwapClaim, mime_type, sign
from facetwin.provenance.payload import Payload, model_tag


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def require_signable(output: Path) -> None:
    """Fail before any work when the output format cannot carry Content Credentials."""
    if mime_type(output) is None:
        kinds = ", ".join(sorted(MIME_TYPES))
        raise FacetwinError(f"{output}: facetwin labels everything it writes, and this format cannot carry "
                            f"Content Credentials; write one of {kinds}")


@dataclass
class Labeller:
    model_id: str
    direction: str
    identity: SigningIdentity
    payload: Payload = field(init=False)

    def __post_init__(self) -> None:
        self.payload = Payload(model_tag(self.model_id))

    def mark(self, rgb: np.ndarray) -> np.ndarray:
        return watermark.embed(rgb, self.payload)

    @staticmethod
    def rendering_path(output: Path) -> Path:
        return output.with_name(f".{output.stem}.render{output.suffix}")

    def finish(self, rendered: Path, output: Path, original: Path, frames: int, swapped: int) -> None:
        """Sign `rendered` into `output` and remove `rendered`."""
        claim = SwapClaim(
            model_id=self.model_id,
            input_name=original.name,
            input_sha256=sha256_file(original),
            watermark=self.payload.hex,
            swapped_frames=swapped,
            frames=frames,
            direction=self.direction,
        )
        try:
            sign(rendered, output, claim, self.identity, original)
        finally:
            rendered.unlink(missing_ok=True)
