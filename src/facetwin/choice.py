"""Whose faces convert swaps (and evaluate --video measures): one rule for both stages.

By default the model's source person, A for a2b and B for b2a (``ModelDir.people``: the centre of that
side's training faces), counting a face as them when it lies within the distance of that centre and
nearer to it than to the other side's; ``--identity REF...`` picks the person in reference images
instead; ``--all-faces`` picks everyone.
"""

from __future__ import annotations

from collections.abc import Sequence

from facetwin.errors import FacetwinError
from facetwin.faces.identity import SAME_PERSON, FaceEmbedder, IdentityMatch
from facetwin.faces.references import reference_embeddings
from facetwin.modeldir import ModelDir

SOURCE_SIDE = {"a2b": ("a", "b"), "b2a": ("b", "a")}  # direction -> (the side whose faces are replaced, the other)


def choose_faces(model_dir: ModelDir, direction: str, embedder: FaceEmbedder, identity: Sequence[str] = (),
                 all_faces: bool = False, distance: float = SAME_PERSON,
                 notices: list[str] | None = None) -> IdentityMatch | None:  # fmt: skip
    """The match for the faces to swap, or None for every face. When the model cannot tell who its source
    person is (it has no people.json and its face sets are gone), every face, and a line in ``notices``
    says so. Raises FacetwinError for an unknown direction or a bad reference image."""
    if direction not in SOURCE_SIDE:
        raise FacetwinError(f"--direction is a2b or b2a, not {direction!r}")
    if all_faces:
        return None
    if identity:
        return IdentityMatch(reference_embeddings(identity, embedder), distance)
    source, other = SOURCE_SIDE[direction]
    try:
        people = model_dir.people(embedder)
    except FacetwinError as exc:
        if notices is not None:
            notices.append(f"{exc}; who {source.upper()} is cannot be told, so every face is swapped (give --identity REF)")
        return None
    return IdentityMatch(people[source][None], distance, people[other][None])
