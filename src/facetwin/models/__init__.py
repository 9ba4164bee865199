"""Swap models: one shared encoder, one decoder per identity. ``registry`` maps names to builders."""
