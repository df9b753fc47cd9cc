"""Evaluating checkpoints and videos with the paper's protocol: metrics.json and report.html."""
