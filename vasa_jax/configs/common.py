"""What every experiment config sets besides its task's own keys: the run's size and length, the
optimizer and its schedule, the mesh, logging and checkpoints. Importable without jax.

  config = ml_collections.ConfigDict(dict(task="motion", seed=0))
  common.training(config, batch_size=32, total_steps=3000,
                  optimizer=common.adamw(weight_decay=1e-2),
                  schedule=common.cosine(3e-4, end_value=1e-6, warmup_steps=100))
"""

from __future__ import annotations

import ml_collections


def adamw(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4) -> ml_collections.ConfigDict:
  """`config.optimizer`: AdamW (`trainers.common.make_optimizer`)."""
  return ml_collections.ConfigDict(dict(name="adamw", b1=b1, b2=b2, eps=eps,
                                        weight_decay=weight_decay))


def cosine(peak_value: float, end_value: float, warmup_steps: int,
           decay_steps: int = 0) -> ml_collections.ConfigDict:
  """`config.schedule`: linear warm-up to `peak_value`, then cosine decay to `end_value` over
  `decay_steps` (0: the rest of the run)."""
  return ml_collections.ConfigDict(dict(name="cosine", peak_value=peak_value, end_value=end_value,
                                        warmup_steps=warmup_steps, decay_steps=decay_steps))


def constant(peak_value: float, warmup_steps: int) -> ml_collections.ConfigDict:
  """`config.schedule`: linear warm-up to `peak_value`, then constant."""
  return ml_collections.ConfigDict(dict(name="constant", peak_value=peak_value,
                                        end_value=peak_value, warmup_steps=warmup_steps,
                                        decay_steps=0))


def training(config: ml_collections.ConfigDict, *, batch_size: int, total_steps: int,
             optimizer: ml_collections.ConfigDict | None = None,
             schedule: ml_collections.ConfigDict | None = None, grad_clip_norm: float = 1.0,
             compute_dtype: str = "float32", ema_decay: float = 0.0, log_every: int = 50,
             checkpoint_every: int = 500, grad_accum_steps: int = 1) -> ml_collections.ConfigDict:
  """Sets the keys the trainer core reads (`trainers.common.train`) and returns `config`.

  batch_size is global, over all devices and processes; compute_dtype "bfloat16" on accelerators
  (parameters stay float32); ema_decay e.g. 0.999 keeps an EMA of the parameters (0: off). The mesh
  takes every device for data parallelism (`--config.mesh.fsdp=N` shards parameters and optimizer
  state, arrays of at least `fsdp_min_size` elements). The 3 latest checkpoints are kept, written
  in the background. `optimizer` / `schedule` None: left as the config has them.
  """
  config.batch_size = batch_size
  config.total_steps = total_steps
  config.grad_accum_steps = grad_accum_steps
  config.compute_dtype = compute_dtype
  if optimizer is not None:
    config.optimizer = optimizer
  if schedule is not None:
    config.schedule = schedule
  config.grad_clip_norm = grad_clip_norm
  config.ema_decay = ema_decay
  config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, fsdp_min_size=2**14))
  config.log_every = log_every
  config.checkpoint = ml_collections.ConfigDict(dict(every=checkpoint_every, keep=3,
                                                     async_save=True))
  return config
