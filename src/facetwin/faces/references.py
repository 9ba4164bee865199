"""Reference faces: the person a user means, given as pictures of them (``--identity REF``).

Each reference image (or every image in a folder) contributes the embedding of its largest face; a
face matches the person when it is within ``SAME_PERSON`` of any of them (``faces.identity``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from facetwin.errors import FacetwinError
from facetwin.faces.analyse import FaceAnalyser
from facetwin.faces.identity import FaceEmbedder
from facetwin.media import MediaError, collect_sources, read_frames


def reference_embeddings(paths: Iterable[str | os.PathLike[str]], embedder: FaceEmbedder) -> np.ndarray:
    """The identity embeddings (N x 128 float32) of the largest face in each reference image.

    Raises FacetwinError, naming the file, for a missing or unreadable file, a video (give a frame of it
    as an image), or an image without a face."""
    paths = list(paths)
    collected = collect_sources(paths)
    if collected.errors:
        raise FacetwinError(collected.errors[0])
    embeddings = []
    analyser = FaceAnalyser(max_faces=1)
    try:
        for source in collected.sources:
            if source.kind != "image":
                raise FacetwinError(f"{source.path}: a reference must be an image of the person (save a frame of the video)")
            try:
                frame = next(iter(read_frames(source)))
            except MediaError as exc:
                raise FacetwinError(str(exc)) from exc
            faces = analyser.locate(frame.rgb)
            if not faces:
                raise FacetwinError(f"{source.path}: no face found in this reference image")
            embeddings.append(embedder.embed_in_frame(frame.rgb, [faces[0][1]])[0])
    finally:
        analyser.close()
    if not embeddings:
        raise FacetwinError(f"no reference image in {', '.join(str(Path(p)) for p in paths)}")
    return np.stack(embeddings)
