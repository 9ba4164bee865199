"""Models by name: what ``--model`` offers and what a model folder's config refers to.

Adding a model: its module under ``facetwin.models`` and one entry here. Entries are imported on first
use (models import PyTorch), so the command line can list them without loading it. Every entry is run
on real faces by tests/test_registries.py without a new test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from facetwin.registry import Lazy, Registry

if TYPE_CHECKING:
    from facetwin.models.base import SwapModel

MODELS: Registry[Callable[[], SwapModel]] = Registry("model", {
    "original": Lazy("facetwin.models.original:Original", "the 2017 deepfakes network, 64 px, 82 M parameters, L1"),
    "lightweight": Lazy("facetwin.models.lightweight:Lightweight",
                        "original at half width, 64 px, 20.5 M, face loss: the model for a CPU (the demo's)"),
    "masked128": Lazy("facetwin.models.masked:Masked128",
                      "128 px, 75 % coverage, learned mask, face loss, 20.6 M: sharper with longer training"),
    "masked256": Lazy("facetwin.models.masked:Masked256",
                      "masked128 at 256 px, 82.5 M, 3 G multiply-adds a face: for a GPU (extract with --size 384+)"),
})  # fmt: skip


def build_model(name: str) -> SwapModel:
    """A freshly initialised model; raises FacetwinError naming the choices for an unknown name."""
    return MODELS[name]()
