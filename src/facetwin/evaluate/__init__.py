"""``facetwin evaluate``: swap quality measured the way the face-swapping papers measure it."""
