"""Benchmarks: `vasa bench generate | train | roofline`, each printing a table and writing JSON.

  generate   the generation pipeline: offline and streaming frames/s, first-frame latency, time in
             motion sampling vs. frame decoding (`generate.py`);
  train      one training step of stage 1 or 2 over a per-device batch sweep: step time,
             examples/s, MFU from XLA's cost analysis over the device's peak, peak device memory
             (`training.py`);
  roofline   FLOPs and bytes per generated frame and per training example, and the time floor they
             imply on a given accelerator (`roofline.py`).

Every benchmark runs on random weights (the amount of computation does not depend on them) and on
the default JAX backend, so the same command measures a laptop CPU at tiny size and an accelerator
at the paper's. `benchmarks/NOTES.md` keeps the numbers of each version.
"""
