"""Diffusion: noise schedules, samplers for x0-predicting models, multi-condition guidance."""
