"""The paper's test protocol (`vasa evaluate --checkpoint / --videos`): videos generated once per
clip of a split and scored by every video metric of `config.evals`, then metrics.json and
report.html beside the paper's numbers. The metrics themselves are `vasa_jax.evaluators`."""
