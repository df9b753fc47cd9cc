"""CAPP's config defaults (experiments/evals/capp.py), importable without jax."""

# Default input divisors (radians and radians per frame, yaw/pitch/roll). Measured on SynthTalk
# tiny's train split (`vasa synthtalk build --config tiny`, seed 0; 50-frame windows): the standard
# deviation of the pose about each window's mean (0.032, 0.027, 0.010) and of the frame-to-frame
# change (0.0056, 0.0101, 0.0021), rounded up.
POSE_SCALE = (0.035, 0.03, 0.011)
VELOCITY_SCALE = (0.006, 0.011, 0.0025)
