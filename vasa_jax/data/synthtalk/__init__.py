"""SynthTalk: a procedural talking-face dataset with real speech and exact ground truth."""
