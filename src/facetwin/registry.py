"""Named choices of one kind (models, colour modes, mask modes, blend modes) in one explicit table.

A registry is what the command line offers (``--model``, ``--colour``, ...), what its help lists, and
what the code looks a name up in; adding a choice is adding one entry. An entry is the object itself,
or, where importing it is costly (models import PyTorch, ~2 s), a ``Lazy`` reference that is imported
on first lookup, so that ``facetwin --help`` and ``facetwin verify`` stay quick.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from facetwin.errors import FacetwinError

T = TypeVar("T")


@dataclass(frozen=True)
class Lazy:
    """``"package.module:attribute"``, imported when first looked up, with the one-line summary that
    help shows without importing it."""

    target: str
    summary: str

    def load(self) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


class Registry(Generic[T]):
    """An ordered, read-only table from names to entries of one ``kind`` (used in messages)."""

    def __init__(self, kind: str, entries: Mapping[str, T | Lazy]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> T:
        """The entry called ``name``; raises FacetwinError naming the choices when there is none."""
        if name not in self._entries:
            raise FacetwinError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}")
        entry = self._entries[name]
        return cast(T, entry.load() if isinstance(entry, Lazy) else entry)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def summary(self, name: str) -> str:
        """The first line of the entry's docstring (or its Lazy summary)."""
        entry = self._entries[name]
        if isinstance(entry, Lazy):
            return entry.summary
        doc = getattr(entry, "__doc__", None) or ""
        return doc.strip().splitlines()[0].rstrip(".").replace("``", "") if doc.strip() else name  # no reST markup in help

    def help(self) -> str:
        """``name: summary; name: summary`` for command-line help."""
        return "; ".join(f"{name}: {self.summary(name)}" for name in self._entries)
