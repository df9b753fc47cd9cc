"""Converters of pretrained weights users already have into Flax parameters (no pickle)."""
