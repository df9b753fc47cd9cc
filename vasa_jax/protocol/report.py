"""The evaluation report: one HTML file that shows what was scored, how, and against what.

`vasa evaluate` writes its numbers to metrics.json; `write_report` turns that dict into report.html:
the scores of every system next to the paper's tables, which of our metrics can be compared with the
paper's (same network and scoring) and which cannot, the networks and files behind each metric, the
metrics that could not be computed and why, the run's training curves, a guidance sweep against the
paper's ablation, and frame strips. The file carries everything inside it (plots as base64 PNG,
inline CSS, no scripts), so it opens offline, can be mailed, and stays true to the run that wrote
it. It is written to a temporary file and moved into place, so a failure leaves the previous report
whole.

Plots use matplotlib's Agg canvas on `Figure` objects directly (not pyplot), so no GUI backend is
ever touched and the global matplotlib state stays as it was. metrics.json looks like

  {"title", "created", "source": {"kind": "checkpoint", "workdir", "step", "config"} or
   {"kind": "videos", "folder"}, "protocol": {"split", "num_clips", "samples_per_audio", "seed",
   "sampling": {...}, "dataset", "notes": [...]}, "rows": {system: {metric: value}},
   "metrics": {metric: {"evaluator", "type", "weights": {network: file}, "comparable_to_paper",
   "note"}}, "unavailable": {evaluator: reason}, "sweep": {"parameter", "points": [{"value", metric:
   value}]}, "per_clip": {system: [{"clip", "sample", metric: value}]}}

and only "rows" is required.

`write_ablation_table` writes a sweep's members (one row each, with their overrides) as a markdown
table, and as HTML when asked, in the layout of the paper's ablation tables.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import numbers
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from vasa_jax import atomic
from vasa_jax.errors import UserError
from vasa_jax.protocol import paper

DEFAULT_TITLE = "VASA-1 evaluation"
# An evaluator scalar `<name>/<key><suffix>` is drawn on the panel of `<name>/<key>`.
VARIANT_SUFFIXES = ("_real", "_unconditional", "_labels")
MAX_PANELS = 24

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;
line-height:1.4}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:2px 8px;vertical-align:top}
th{background:#f2f2f2;text-align:left}th.num,td.num{text-align:right}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{font-weight:bold;background:#e3f2e3}td.na{color:#888}
.row{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}
figure{margin:1em 0}img{max-width:100%;height:auto}figcaption,.note{font-size:.9em;color:#555}
.bad{color:#a22}pre{white-space:pre-wrap;margin:0}code{background:#f4f4f4;padding:0 .2em}
"""

_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF8", "image/gif"))


# ----------------------------------------------------------------------------------------------------
# Values.


def _number(value) -> float | None:
  """A metric value as a float (NaN included), or None when it is not a number."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    return None
  return float(value)


def format_value(value) -> str:
  """A value as a table shows it: 4 significant digits, "n/a" for missing or NaN."""
  if value is None:
    return "n/a"
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, numbers.Integral):
    return str(int(value))
  number = _number(value)
  if number is None:
    return str(value)
  if math.isnan(number):
    return "n/a"
  if math.isinf(number):
    return "inf" if number > 0 else "-inf"
  magnitude = abs(number)
  if magnitude == 0:
    return "0"
  if magnitude >= 1e5 or magnitude < 1e-3:
    return f"{number:.3e}"
  if magnitude >= 1000:
    return f"{number:.0f}"
  return f"{number:.4g}"


def _finite(value) -> float | None:
  number = _number(value)
  return number if number is not None and math.isfinite(number) else None


def _is_real(system: str) -> bool:
  return system.strip().lower() in ("real video", "real", "ground truth")


def best_systems(rows: Mapping[str, Mapping[str, Any]], key: str) -> set[str]:
  """The systems with the best `key` among those that are not real video (ties: all of them).

  Empty when fewer than two systems have a finite value, or when the metric has no direction; a
  metric judged against real video (dP) is best closest to the real-video row's value."""
  better = paper.info(key).better
  values = {name: _finite(row.get(key)) for name, row in rows.items() if not _is_real(name)}
  values = {name: v for name, v in values.items() if v is not None}
  if len(values) < 2:
    return set()
  if better == paper.HIGHER:
    target = max(values.values())
  elif better == paper.LOWER:
    target = min(values.values())
  elif better == paper.CLOSER_TO_REAL:
    real = [_finite(row.get(key)) for name, row in rows.items() if _is_real(name)]
    real = [v for v in real if v is not None]
    if not real:
      return set()
    values = {name: abs(v - real[0]) for name, v in values.items()}
    target = min(values.values())
  else:
    return set()
  return {name for name, v in values.items() if v == target}


def _check(metrics) -> None:
  if not isinstance(metrics, Mapping):
    raise UserError(f"metrics.json: expected a JSON object, got {type(metrics).__name__}")
  rows = metrics.get("rows")
  if not isinstance(rows, Mapping) or not all(isinstance(r, Mapping) for r in rows.values()):
    raise UserError("metrics.json: 'rows' must map each system's name to {metric: value}; "
                    "write it with `vasa evaluate`")
  for section in ("source", "protocol", "metrics", "unavailable", "sweep", "per_clip"):
    if section in metrics and not isinstance(metrics[section], Mapping):
      raise UserError(f"metrics.json: '{section}' must be a JSON object")


# ----------------------------------------------------------------------------------------------------
# HTML pieces.


def _e(value) -> str:
  return html.escape(str(value))


def _header(key: str) -> str:
  meta = paper.info(key)
  tip = "; ".join(part for part in (meta.name, meta.unit, meta.definition) if part)
  arrow = f" {meta.arrow}" if meta.arrow else ""
  return f'<th class=num title="{_e(tip)}">{_e(key)}{_e(arrow)}</th>'


def _cell(value, best: bool = False) -> str:
  text = format_value(value)
  classes = ["num"] + (["best"] if best else []) + (["na"] if text == "n/a" else [])
  return f'<td class="{" ".join(classes)}">{_e(text)}</td>'


def _score_table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str],
                 first: str = "system", highlight: bool = True) -> str:
  best = {key: best_systems(rows, key) if highlight else set() for key in columns}
  out = ["<table><tr><th>" + _e(first) + "</th>" + "".join(_header(k) for k in columns) + "</tr>"]
  for name, row in rows.items():
    cells = "".join(_cell(row.get(key), name in best[key]) for key in columns)
    out.append(f"<tr><td>{_e(name)}</td>{cells}</tr>")
  return "".join(out) + "</table>"


def _paper_table(table: paper.PaperTable) -> str:
  out = [f"<div><h3>Paper: {_e(table.title)}</h3><p class=note>{_e(table.description)}</p>"
         "<table><tr><th>system</th>" + "".join(_header(k) for k in table.columns) + "</tr>"]
  for name, row in table.rows.items():
    out.append(f"<tr><td>{_e(name)}</td>" + "".join(
        f'<td class=num>{row[k]:.3f}</td>' for k in table.columns) + "</tr>")
  return "".join(out) + "</table></div>"


def _key_values(items: Mapping[str, Any]) -> str:
  rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(format_value(v))}</td></tr>"
                 for k, v in items.items())
  return f"<table>{rows}</table>"


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  out = {}
  for key, value in mapping.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping):
      out.update(_flatten(value, name + "."))
    elif isinstance(value, (list, tuple)):
      out[name] = ", ".join(str(v) for v in value)
    else:
      out[name] = value
  return out


def _unique_names(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
  out = {}
  for i, (name, value) in enumerate(pairs):
    out[name if name not in out else f"{name} ({i + 1})"] = value
  return out


def _image(data: str, caption: str, mime: str = "image/png") -> str:
  return (f'<figure><img src="data:{mime};base64,{data}" alt="{_e(caption)}">'
          f"<figcaption>{_e(caption)}</figcaption></figure>")


# ----------------------------------------------------------------------------------------------------
# Plots.


def _figure(panels: int, columns: int = 3, width: float = 3.8, height: float = 2.7):
  """A matplotlib Figure on an Agg canvas with `panels` axes in a grid (no pyplot, no GUI)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  columns = max(1, min(panels, columns))
  rows = math.ceil(panels / columns)
  figure = Figure(figsize=(width * columns, height * rows), dpi=100, layout="constrained")
  FigureCanvasAgg(figure)
  axes = [figure.add_subplot(rows, columns, i + 1) for i in range(panels)]
  return figure, axes


def _png(figure) -> str:
  """A figure as base64 PNG."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png", metadata={"Software": None})
  return base64.b64encode(buffer.getvalue()).decode("ascii")


def read_curves(path: str | os.PathLike) -> tuple[dict[str, list[tuple[int, float]]], int]:
  """metrics.jsonl -> ({scalar: [(step, value)]} of finite values, number of unreadable lines).

  A line cut short (a run still writing) or without "step" is counted and skipped."""
  curves: dict[str, list[tuple[int, float]]] = {}
  unreadable = 0
  for line in pathlib.Path(path).read_text(errors="replace").splitlines():
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      unreadable += 1
      continue
    if not isinstance(record, dict) or _finite(record.get("step")) is None:
      unreadable += 1
      continue
    step = int(record["step"])
    for key, value in record.items():
      value = _finite(value)
      if key != "step" and value is not None:
        curves.setdefault(key, []).append((step, value))
  return curves, unreadable


def _curve_figures(curves: Mapping[str, list[tuple[int, float]]]) -> list[tuple[str, str]]:
  """(caption, base64 PNG) for the training loss and for each evaluator's scalars."""
  figures = []
  losses = [k for k in curves if "/" not in k and (k == "loss" or k.endswith("_loss"))]
  if losses:
    figure, (axis,) = _figure(1, width=7.0, height=3.2)
    for key in sorted(losses, key=lambda k: (k != "loss", k)):
      steps, values = zip(*curves[key])
      axis.plot(steps, values, label=key, linewidth=1.5 if key == "loss" else 1.0)
    if all(v > 0 for key in losses for _, v in curves[key]):
      axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figures.append(("training loss" + (" (log scale)" if axis.get_yscale() == "log" else ""),
                    _png(figure)))

  groups: dict[str, list[str]] = {}
  for key in curves:
    if "/" in key:
      groups.setdefault(key.split("/", 1)[0], []).append(key)
  for group, keys in groups.items():
    bases = [k for k in keys
             if not any(k.endswith(s) and k[:-len(s)] in keys for s in VARIANT_SUFFIXES)]
    shown = bases[:MAX_PANELS]
    figure, axes = _figure(len(shown))
    for axis, base in zip(axes, shown):
      for key in [base] + [base + s for s in VARIANT_SUFFIXES if base + s in keys]:
        steps, values = zip(*curves[key])
        style = "o-" if key == base else "o--"
        axis.plot(steps, values, style, markersize=3, linewidth=1.2,
                  label=key[len(base):].lstrip("_") or "model")
      axis.set_title(base.split("/", 1)[1], fontsize=9)
      axis.tick_params(labelsize=7)
      axis.grid(alpha=0.3)
      if len(axis.lines) > 1:
        axis.legend(fontsize=7)
    caption = f"evaluator '{group}' during training (x: step)"
    if len(bases) > len(shown):
      caption += f"; {len(bases) - len(shown)} more scalars not drawn"
    figures.append((caption, _png(figure)))
  return figures


def _sweep_figure(sweep: Mapping[str, Any], rows: Mapping[str, Mapping[str, Any]]
                  ) -> tuple[str, str, bool]:
  """(caption, base64 PNG, whether the paper's ablation is drawn) of a sweep's metrics."""
  parameter = str(sweep.get("parameter", "value"))
  points = [p for p in sweep.get("points", []) if isinstance(p, Mapping)]
  keys = paper.column_order(k for p in points for k in p if k != "value"
                            and _number(p[k]) is not None)
  if not keys:
    return "", "", False
  raw = [p.get("value") for p in points]
  numeric = all(_finite(v) is not None for v in raw)
  x = [float(v) for v in raw] if numeric else list(range(len(raw)))
  is_cfg = parameter.endswith(paper.CFG_ABLATION_PARAMETER)
  figure, axes = _figure(len(keys))
  drew_paper = False
  for axis, key in zip(axes, keys):
    y = [_finite(p.get(key)) for p in points]
    y = [math.nan if v is None else v for v in y]
    axis.plot(x, y, "o-", label="ours")
    ablation = paper.cfg_ablation(key) if is_cfg else None
    if ablation:
      axis.plot(*ablation, "s--", color="gray", label="paper (OneMin-32)")
      drew_paper = True
    real = [_finite(r.get(key)) for name, r in rows.items() if _is_real(name)]
    if real and real[0] is not None:
      axis.axhline(real[0], color="green", linestyle=":", label="real video (ours)")
    meta = paper.info(key)
    axis.set_title(f"{key} {meta.arrow}".strip(), fontsize=9)
    axis.set_xlabel(parameter, fontsize=8)
    if not numeric:
      axis.set_xticks(x, [str(v) for v in raw], fontsize=7, rotation=30)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3)
    if len(axis.lines) > 1:
      axis.legend(fontsize=7)
  caption = f"metrics against {parameter}"
  if drew_paper:
    caption += ("; dashed gray: the paper's audio-guidance ablation on OneMin-32 (l_gaze 1, "
                "50 steps)")
  return caption, _png(figure), drew_paper


# ----------------------------------------------------------------------------------------------------
# Sections.


def _scores_section(metrics: Mapping[str, Any]) -> list[str]:
  rows = metrics["rows"]
  columns = paper.column_order(k for row in rows.values() for k in row)
  protocol = metrics.get("protocol", {})
  described = metrics.get("metrics", {})
  dataset = protocol.get("dataset", "our data")
  out = ["<h2>Scores</h2>",
         f"<p>Means over the clips of {_e(dataset)} (split {_e(protocol.get('split', '?'))}); "
         "bold: the best system per column (real video left out; dP: closest to real video). "
         "Hover a column's name for its definition.</p>",
         '<div class=row><div><h3>Ours</h3>',
         _score_table(rows, columns) if rows else "<p>No scores.</p>", "</div>"]
  out += [_paper_table(t) for t in paper.TABLES]
  out.append("</div>")

  paper_keys = {k for t in paper.TABLES for k in t.columns} | set(paper.TEN_STEPS)
  items = []
  for key in columns:
    entry = described.get(key, {})
    note = entry.get("note", "")
    if key not in paper_keys:
      verdict, cls = "the paper reports no such number", "note"
    elif entry.get("comparable_to_paper") is True:
      verdict, cls = "comparable with the paper (same network and scoring)", ""
    elif not entry:
      verdict, cls = "not comparable: no record of the network behind it", "bad"
    else:
      verdict, cls = "not comparable with the paper", "bad"
    items.append(f"<li><b>{_e(key)}</b>: <span class={cls or 'ok'}>{_e(verdict)}</span>"
                 + (f" &mdash; {_e(note)}" if note else "") + "</li>")
  out += ["<h3>What compares with the paper</h3>",
          f"<p>The paper scores its systems on VoxCeleb2 and OneMin-32; ours are on "
          f"{_e(dataset)}. A metric marked comparable uses the same network and scoring as the "
          "paper's, so the scale is the same; the clips still differ unless the data set is "
          "the paper's.</p>", "<ul>" + "".join(items) + "</ul>"]
  return out


def _weights_section(metrics: Mapping[str, Any]) -> list[str]:
  described = metrics.get("metrics", {})
  by_evaluator: dict[str, dict[str, Any]] = {}
  for key, entry in described.items():
    entry = entry if isinstance(entry, Mapping) else {}
    name = str(entry.get("evaluator", key))
    group = by_evaluator.setdefault(name, {"type": entry.get("type", ""), "keys": [],
                                           "weights": {}})
    group["keys"].append(key)
    group["weights"].update(entry.get("weights") or {})
  out = ["<h2>Weights behind every metric</h2>",
         "<p>Every network a score depends on, with the file or training run it was loaded "
         "from. A metric whose network was not provided is not computed (see Unavailable "
         "metrics): no score here comes from randomly initialised weights.</p>"]
  if by_evaluator:
    out.append("<table><tr><th>evaluator</th><th>type</th><th>metrics</th>"
               "<th>network: weights</th></tr>")
    for name, group in by_evaluator.items():
      weights = "<br>".join(f"{_e(net)}: <code>{_e(file)}</code>"
                            for net, file in group["weights"].items()) or "none listed"
      out.append(f"<tr><td>{_e(name)}</td><td>{_e(group['type'])}</td>"
                 f"<td>{_e(', '.join(group['keys']))}</td><td>{weights}</td></tr>")
    out.append("</table>")
  scored = paper.column_order(k for row in metrics["rows"].values() for k in row)
  unrecorded = [k for k in scored if k not in described]
  if unrecorded:
    out.append(f"<p class=bad>No record of the weights behind: {_e(', '.join(unrecorded))}.</p>")
  return out


def _unavailable_section(metrics: Mapping[str, Any]) -> list[str]:
  unavailable = metrics.get("unavailable", {})
  out = ["<h2>Unavailable metrics</h2>"]
  if not unavailable:
    return out + ["<p>None: every metric asked for was computed.</p>"]
  out.append("<table><tr><th>evaluator</th><th>why, and how to provide it</th></tr>")
  out += [f"<tr><td>{_e(name)}</td><td><pre>{_e(reason)}</pre></td></tr>"
          for name, reason in unavailable.items()]
  return out + ["</table>"]


def _sweep_section(metrics: Mapping[str, Any]) -> list[str]:
  sweep = metrics.get("sweep")
  if not sweep:
    return []
  parameter = str(sweep.get("parameter", "value"))
  points = [p for p in sweep.get("points", []) if isinstance(p, Mapping)]
  out = [f"<h2>Sweep of {_e(parameter)}</h2>"]
  caption, png, _ = _sweep_figure(sweep, metrics["rows"])
  if png:
    out.append(_image(png, caption))
  columns = paper.column_order(k for p in points for k in p if k != "value")
  table_rows = _unique_names([(format_value(p.get("value")), p) for p in points])
  out.append(_score_table(table_rows, columns, first=parameter))
  return out


def _curves_section(workdir: str | os.PathLike | None) -> list[str]:
  if workdir is None:
    return []
  path = pathlib.Path(workdir) / "metrics.jsonl"
  out = ["<h2>Training curves</h2>"]
  if not path.is_file():
    return out + [f"<p class=note>No training curves: {_e(path)} does not exist.</p>"]
  curves, unreadable = read_curves(path)
  figures = _curve_figures(curves)
  out.append(f"<p class=note>From <code>{_e(path)}</code>"
             + (f"; {unreadable} unreadable lines skipped" if unreadable else "") + ".</p>")
  if not figures:
    out.append("<p class=note>It holds no loss and no evaluator scalars.</p>")
  return out + [_image(png, caption) for caption, png in figures]


def _strips_section(strips: Sequence[tuple[str, str | os.PathLike]]) -> list[str]:
  if not strips:
    return []
  out = ["<h2>Frames</h2>"]
  for caption, image_path in strips:
    image_path = pathlib.Path(image_path)
    data = image_path.read_bytes() if image_path.is_file() else b""
    mime = next((m for magic, m in _IMAGE_TYPES if data.startswith(magic)), None)
    if mime is None:
      out.append(f"<p class=bad>{_e(caption)}: {_e(image_path)} is missing or not an image.</p>")
    else:
      out.append(_image(base64.b64encode(data).decode("ascii"), caption, mime))
  return out


def _per_clip_section(metrics: Mapping[str, Any]) -> list[str]:
  per_clip = metrics.get("per_clip")
  if not per_clip:
    return []
  out = ["<h2>Per-clip scores</h2>"]
  for system, entries in per_clip.items():
    entries = [e for e in entries if isinstance(e, Mapping)]
    columns = paper.column_order(k for e in entries for k in e if k not in ("clip", "sample"))
    table_rows = _unique_names([(f"{e.get('clip', '?')} #{e.get('sample', 0)}", e)
                                for e in entries])
    out.append(f"<details><summary>{_e(system)} ({len(entries)} videos)</summary>"
               + _score_table(table_rows, columns, first="clip #sample", highlight=False)
               + "</details>")
  return out


def _definitions_section(metrics: Mapping[str, Any]) -> list[str]:
  keys = paper.column_order(
      [k for row in metrics["rows"].values() for k in row]
      + [k for p in (metrics.get("sweep") or {}).get("points", []) for k in p if k != "value"])
  out = ["<h2>Metric definitions</h2><table><tr><th>metric</th><th>name</th><th>unit</th>"
         "<th>better</th><th>definition</th></tr>"]
  for key in keys:
    meta = paper.info(key)
    out.append(f"<tr><td>{_e(key)}</td><td>{_e(meta.name)}</td><td>{_e(meta.unit)}</td>"
               f"<td>{_e(meta.better or '-')}</td><td>{_e(meta.definition)}</td></tr>")
  return out + ["</table>"]


def _page(title: str, body: Sequence[str]) -> str:
  return ("<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
          "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
          f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n"
          + "\n".join(body) + "\n</body></html>\n")


# ----------------------------------------------------------------------------------------------------
# Entry points.


def write_report(path: str | os.PathLike, metrics: Mapping[str, Any],
                 workdir_curves: str | os.PathLike | None = None,
                 strips: Sequence[tuple[str, str | os.PathLike]] = (),
                 title: str | None = None) -> pathlib.Path:
  """Writes the evaluation report of `metrics` (metrics.json's dict) to `path` as one HTML file.

  `workdir_curves`: a training workdir whose metrics.jsonl gives the training curves (none drawn
  when None; a note when the file is absent). `strips`: (caption, image file) pairs of frame strips
  to embed. `title`: defaults to metrics["title"]. The whole page is built before anything is
  written, so a failure leaves an existing report unchanged. Returns the path written."""
  _check(metrics)
  title = title or metrics.get("title") or DEFAULT_TITLE
  source, protocol = metrics.get("source", {}), metrics.get("protocol", {})
  body = [f"<h1>{_e(title)}</h1>"]
  if metrics.get("created"):
    body.append(f"<p class=note>Created {_e(metrics['created'])}.</p>")
  body.append('<div class=row>')
  if source:
    body.append("<div><h2>Source</h2>" + _key_values(source) + "</div>")
  if protocol:
    notes = protocol.get("notes") or []
    notes = [notes] if isinstance(notes, str) else notes
    settings = _flatten({k: v for k, v in protocol.items() if k != "notes"})
    body.append("<div><h2>Protocol</h2>" + _key_values(settings)
                + ("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"
                   if notes else "") + "</div>")
  body.append("</div>")
  body += _scores_section(metrics)
  body += _weights_section(metrics)
  body += _unavailable_section(metrics)
  body += _sweep_section(metrics)
  body += _curves_section(workdir_curves)
  body += _strips_section(strips)
  body += _per_clip_section(metrics)
  body += _definitions_section(metrics)
  return atomic.write_text(pathlib.Path(path), _page(title, body))


def _overrides_text(overrides) -> str:
  if overrides is None:
    return ""
  if isinstance(overrides, Mapping):
    return ", ".join(f"{k}={v}" for k, v in overrides.items())
  if isinstance(overrides, str):
    return overrides
  return ", ".join(str(o) for o in overrides)


def write_ablation_table(rows: Sequence[Mapping[str, Any]], path_md: str | os.PathLike,
                         path_html: str | os.PathLike | None = None) -> pathlib.Path:
  """A sweep's members as a table: one row per member (its name and overrides), one column per
  metric, the best value per column in bold.

  rows: [{"name": str, "overrides": {key: value} | [str] | str, "metrics": {metric: value}}].
  Writes markdown to `path_md` (and an HTML page to `path_html` when given); returns `path_md`."""
  for i, row in enumerate(rows):
    if not isinstance(row, Mapping) or "name" not in row:
      raise UserError(f"ablation table: member {i} needs a 'name' (and 'overrides', 'metrics')")
  scores = {str(row["name"]): dict(row.get("metrics") or {}) for row in rows}
  if len(scores) != len(rows):
    raise UserError("ablation table: member names must differ")
  overrides = {str(row["name"]): _overrides_text(row.get("overrides")) for row in rows}
  columns = paper.column_order(k for s in scores.values() for k in s)
  best = {key: best_systems(scores, key) for key in columns}

  def md(text: str) -> str:
    return text.replace("|", "\\|")

  headers = [f"{key} {paper.info(key).arrow}".strip() for key in columns]
  lines = ["| member | overrides | " + " | ".join(md(h) for h in headers) + " |",
           "|---|---|" + "---:|" * len(columns)]
  for name, values in scores.items():
    cells = []
    for key in columns:
      text = format_value(values.get(key))
      cells.append(f"**{text}**" if name in best[key] else text)
    lines.append(f"| {md(name)} | {md(overrides[name])} | " + " | ".join(cells) + " |")
  path_md = atomic.write_text(pathlib.Path(path_md), "\n".join(lines) + "\n")
  if path_html is not None:
    table = ["<table><tr><th>member</th><th>overrides</th>"
             + "".join(_header(k) for k in columns) + "</tr>"]
    for name, values in scores.items():
      table.append(f"<tr><td>{_e(name)}</td><td><code>{_e(overrides[name])}</code></td>"
                   + "".join(_cell(values.get(k), name in best[k]) for k in columns) + "</tr>")
    atomic.write_text(pathlib.Path(path_html),
                  _page("Ablation", ["<h1>Ablation</h1>", "".join(table) + "</table>"]))
  return path_md
