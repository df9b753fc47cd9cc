"""Flax linen modules of the method."""
