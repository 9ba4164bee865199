"""Scoring a model on its held-out faces: one evaluator for training, ``facetwin evaluate`` and the benches."""
