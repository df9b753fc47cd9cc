"""Audio models: Wav2Vec2 / HuBERT in Flax, and frame-synchronous audio features."""
