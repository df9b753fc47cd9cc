"""The ablation table of a sweep: one row per member, its latest scores as columns.

`vasa sweep experiments/... --workdir ROOT --gather` reads, for every member of the config's
`sweep()`, the newest `metrics.json` that `vasa evaluate --checkpoint ROOT/<member>` wrote (the
member's own row), or else the training-time evaluators' latest `eval/step_<N>.json`, and writes
ROOT/ablation.md (a table like the paper's Table 5, also as ablation.html) and ROOT/ablation.json.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

from vasa_jax.protocol import scoring as protocol
from vasa_jax.protocol.scoring import REAL


def member_scores(workdir: pathlib.Path) -> tuple[dict[str, float], str]:
  """(scores, where they came from) of one member; empty when it has none yet."""
  found = sorted(workdir.glob("evaluation*/metrics.json"), key=lambda p: p.stat().st_mtime)
  if found:
    record = json.loads(found[-1].read_text())
    rows = {k: v for k, v in record.get("rows", {}).items() if k != REAL}
    if rows:
      return dict(next(iter(rows.values()))), str(found[-1])
  steps = sorted(workdir.glob("eval/step_*.json"), key=lambda p: p.name)
  if steps:
    record = json.loads(steps[-1].read_text())
    return {k: v for k, v in record.items() if k != "step"}, str(steps[-1])
  return {}, ""


def gather(members: Sequence[tuple[pathlib.Path, Sequence[str]]], root: pathlib.Path) -> str:
  """Writes ROOT/ablation.md, ablation.html and ablation.json; returns the markdown table."""
  from vasa_jax.protocol import report

  rows = []
  for workdir, overrides in members:
    scores, source = member_scores(pathlib.Path(workdir))
    rows.append({"name": pathlib.Path(workdir).name, "overrides": list(overrides) or "(base)",
                 "source": source, "metrics": scores})
  root.mkdir(parents=True, exist_ok=True)
  path = report.write_ablation_table(rows, root / "ablation.md", root / "ablation.html")
  missing = [row["name"] for row in rows if not row["source"]]
  table = path.read_text()
  if missing:
    table += (f"\nNo scores yet: {', '.join(missing)} (train, then `vasa evaluate --checkpoint "
              "MEMBER_WORKDIR`).\n")
    path.write_text(table)
  protocol.write_json(root / "ablation.json", {"members": rows})
  return table
