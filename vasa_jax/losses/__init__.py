"""Losses of the face latent space (stage 1): pure functions of arrays, one concern per module."""
