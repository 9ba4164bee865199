"""Models by name: what ``--model`` accepts and what a model folder's config refers to."""

from __future__ import annotations

from collections.abc import Callable

from facetwin.errors import FacetwinError
from facetwin.models.base import SwapModel
from facetwin.models.lightweight import Lightweight
from facetwin.models.masked import Masked128
from facetwin.models.original import Original

MODELS: dict[str, Callable[[], SwapModel]] = {"original": Original, "lightweight": Lightweight, "masked128": Masked128}


def build_model(name: str) -> SwapModel:
    try:
        return MODELS[name]()
    except KeyError:
        raise FacetwinError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
