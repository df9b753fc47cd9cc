"""vasa_jax: VASA-1 (audio-driven talking faces from one photo) in JAX/Flax."""

__version__ = "0.1.0"
