"""Inference: audio to motion (`motion`), and image + audio to video."""
