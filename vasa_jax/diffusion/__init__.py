"""Diffusion: noise schedules, samplers for x0-predicting models, multi-condition guidance, and the
stage-2 motion generator sampled window after window (`motion`)."""
