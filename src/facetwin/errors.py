"""The one exception type that the CLI turns into a one-line message instead of a traceback."""

from __future__ import annotations


class FacetwinError(Exception):
    """A problem a user can act on: the message names the file and the reason."""
