"""The evaluation report: one self-contained file with the numbers, their provenance, the plots."""

import base64
import io
import json
import math
import os
import re

import numpy as np
import pytest
from PIL import Image

from vasa_jax.errors import UserError
from vasa_jax.protocol import paper, report

SYNC_WEIGHTS = "/runs/sync_expert step 2000"
CAPP_WEIGHTS = "/runs/capp_synthtalk/checkpoints/3000"
MISSING_I3D = "fvd: no I3D weights at /data/i3d.safetensors; convert them with vasa convert i3d"


def _metrics():
  return {
      "title": "stage 2 at step 4000",
      "created": "2026-11-20T10:00:00",
      "source": {"kind": "checkpoint", "workdir": "/runs/stage2", "step": 4000,
                 "config": "experiments/motion/synthtalk_tiny.py"},
      "protocol": {"split": "test", "num_clips": 8, "samples_per_audio": 3, "seed": 0,
                   "sampling": {"num_steps": 50, "method": "ddim",
                                "guidance": {"audio": 0.5, "gaze": 1.0}},
                   "dataset": "synthtalk/tiny", "notes": ["held-out identities only"]},
      "rows": {
          "ours (step 4000)": {"S_C": 8.12345, "S_D": 6.54321, "CAPP": float("nan"),
                               "dP": 0.4, "psnr": 21.37},
          "ours (step 2000)": {"S_C": 5.5, "S_D": 7.25, "CAPP": 0.25, "dP": 0.2, "psnr": 19.0},
          "Real video": {"S_C": 7.0, "S_D": 7.5, "CAPP": 0.6, "dP": 0.45, "psnr": 99.0},
      },
      "metrics": {
          "S_C": {"evaluator": "sync", "type": "syncnet", "comparable_to_paper": False,
                  "weights": {"syncnet expert": SYNC_WEIGHTS},
                  "note": "own expert trained on SynthTalk; not the public SyncNet"},
          "S_D": {"evaluator": "sync", "type": "syncnet", "comparable_to_paper": False,
                  "weights": {"syncnet expert": SYNC_WEIGHTS}},
          "CAPP": {"evaluator": "capp", "type": "capp", "comparable_to_paper": False,
                   "weights": {"capp audio-pose model": CAPP_WEIGHTS,
                               "wav2vec2 base": "/weights/wav2vec2_base.safetensors"}},
          "dP": {"evaluator": "motion", "type": "delta_p", "comparable_to_paper": True,
                 "weights": {"pose reader": "/weights/pose_reader.npz"}},
      },
      "unavailable": {"fvd": MISSING_I3D},
      "sweep": {"parameter": "sampling.guidance.audio", "points": [
          {"value": 0.0, "S_C": 4.0, "dP": 0.3}, {"value": 0.5, "S_C": 6.0, "dP": 0.35},
          {"value": 1.0, "S_C": 7.0, "dP": 0.38}]},
      "per_clip": {"ours (step 4000)": [{"clip": "id07_s03", "sample": 0, "S_C": 8.5},
                                        {"clip": "id07_s03", "sample": 1, "S_C": 7.75}]},
  }


def _embedded_images(text):
  return [base64.b64decode(data) for data in
          re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def _row(text, system):
  """The HTML of the first table row whose first cell is `system`."""
  match = re.search(r"<tr><td>" + re.escape(system) + r"</td>(.*?)</tr>", text)
  assert match, system
  return re.findall(r'<td class="([^"]*)">([^<]*)</td>', match.group(1))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  """A full report: two systems and real video, a sweep, training curves, a frame strip."""
  root = tmp_path_factory.mktemp("report")
  workdir = root / "run"
  workdir.mkdir()
  lines = [json.dumps({"step": s, "loss": 1.0 / s, "grad_norm": 0.5}) for s in range(10, 110, 10)]
  lines += [json.dumps({"step": s, "motion/dP": 0.1 * s / 100, "motion/dP_real": 0.3})
            for s in (50, 100)]
  lines.append('{"step": 110, "loss": 0.0')  # A run still writing its last line.
  (workdir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
  strip = np.zeros((24, 96, 3), np.uint8)
  strip[:, 48:] = (200, 30, 60)
  strip_path = root / "strip.png"
  Image.fromarray(strip).save(strip_path)
  out = root / "out"
  path = report.write_report(out / "report.html", _metrics(), workdir_curves=workdir,
                             strips=[("generated (top) and real (bottom)", strip_path)])
  return path, path.read_text(), strip_path


def test_report_is_one_self_contained_file(written):
  path, text, _ = written
  assert [p.name for p in path.parent.iterdir()] == ["report.html"]
  umask = os.umask(0o022)
  os.umask(umask)
  assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # Not the temporary file's private mode.
  assert "<script" not in text.lower()
  assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
  assert "http://" not in text and "https://" not in text
  assert re.search(r"<link\b", text) is None  # CSS is inline.


def test_report_embeds_decodable_pngs_and_the_strip_unchanged(written):
  _, text, strip_path = written
  images = _embedded_images(text)
  # Training loss, the 'motion' evaluator, the sweep, the strip.
  assert len(images) == 4
  for data in images:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG" and min(image.size) > 20
  assert strip_path.read_bytes() in images


def test_report_shows_formatted_scores_and_best_values(written):
  _, text, _ = written
  new, old, real = (_row(text, name) for name in ("ours (step 4000)", "ours (step 2000)",
                                                   "Real video"))
  # Columns: S_C, S_D, CAPP, dP, psnr.
  assert [cell for _, cell in new] == ["8.123", "6.543", "n/a", "0.4", "21.37"]
  assert [cell for _, cell in old] == ["5.5", "7.25", "0.25", "0.2", "19"]
  best_new = ["best" in classes for classes, _ in new]
  best_old = ["best" in classes for classes, _ in old]
  # S_C higher, S_D lower, CAPP only one finite value, dP closest to real (0.45), psnr higher.
  assert best_new == [True, True, False, True, True]
  assert best_old == [False, False, False, False, False]
  assert not any("best" in classes for classes, _ in real)  # Real video is the reference.
  assert "na" in new[2][0].split()
  # The paper's tables beside ours, printed as the paper prints them.
  assert "8.841" in text and "214.507" in text and "OneMin-32" in text


def test_report_states_provenance_comparability_and_unavailability(written):
  _, text, _ = written
  for name in ("syncnet expert", SYNC_WEIGHTS, "capp audio-pose model", CAPP_WEIGHTS,
               "wav2vec2 base", "/weights/wav2vec2_base.safetensors", "pose reader"):
    assert name in text, name
  assert MISSING_I3D in text
  assert "own expert trained on SynthTalk; not the public SyncNet" in text
  comparability = text[text.index("What compares with the paper"):
                       text.index("Weights behind every metric")]
  assert re.search(r"<b>dP</b>: <span class=ok>comparable", comparability)
  assert re.search(r"<b>S_C</b>: <span class=bad>not comparable", comparability)
  assert re.search(r"<b>psnr</b>: <span class=note>the paper reports no", comparability)
  for shown in ("/runs/stage2", "synthtalk/tiny", "held-out identities only", "id07_s03 #1",
                "sampling.guidance.audio"):
    assert shown in text, shown
  assert "the paper&#x27;s audio-guidance ablation" in text  # Drawn beside the sweep.


def test_training_curves_skip_a_broken_line_and_a_missing_file(written, tmp_path):
  path, text, _ = written
  curves, unreadable = report.read_curves(path.parent.parent / "run" / "metrics.jsonl")
  assert unreadable == 1
  assert [s for s, _ in curves["loss"]] == list(range(10, 110, 10))
  assert curves["motion/dP"] == [(50, pytest.approx(0.05)), (100, pytest.approx(0.1))]
  assert "training loss (log scale)" in text and "1 unreadable lines skipped" in text

  minimal = {"rows": {"a": {"S_C": 1.0}, "b": {"S_C": float("nan")}}}
  out = report.write_report(tmp_path / "r.html", minimal, workdir_curves=tmp_path / "nowhere")
  minimal_text = out.read_text()
  assert "does not exist" in minimal_text and not _embedded_images(minimal_text)
  assert [cell for _, cell in _row(minimal_text, "b")] == ["n/a"]
  assert "No record of the weights behind: S_C" in minimal_text


def test_a_failing_plot_leaves_the_old_report_whole(written, tmp_path, monkeypatch):
  _, text, _ = written
  path = tmp_path / "report.html"
  path.write_text(text)

  def broken(figure):
    raise RuntimeError("plotting failed")

  monkeypatch.setattr(report, "_png", broken)
  with pytest.raises(RuntimeError, match="plotting failed"):
    report.write_report(path, _metrics(), title="a new title")
  assert path.read_text() == text
  assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_bad_metrics_are_a_user_error(tmp_path):
  with pytest.raises(UserError, match="'rows'"):
    report.write_report(tmp_path / "r.html", {"rows": [1, 2]})
  assert not list(tmp_path.iterdir())


def test_format_value():
  assert [report.format_value(v) for v in (8.12345, 214.507, 12345.6, 0.000123456, 3, None,
                                           float("nan"), float("inf"), 0.0, np.float32(0.5))] == [
      "8.123", "214.5", "12346", "1.235e-04", "3", "n/a", "n/a", "inf", "0", "0.5"]


def test_ablation_table(tmp_path):
  members = [
      {"name": "audio 0", "overrides": {"sampling.guidance.audio": 0.0},
       "metrics": {"dP": 0.29, "S_C": 7.134}},
      {"name": "audio 1", "overrides": ["sampling.guidance.audio=1.0"],
       "metrics": {"S_C": 8.2181, "dP": 0.342, "S_D": float("nan")}},
  ]
  md = report.write_ablation_table(members, tmp_path / "t.md", tmp_path / "t.html").read_text()
  lines = md.strip().splitlines()
  assert lines[0] == "| member | overrides | S_C \u2191 | S_D \u2193 | dP \u2192 real |"
  assert lines[2] == "| audio 0 | sampling.guidance.audio=0.0 | 7.134 | n/a | 0.29 |"
  assert lines[3] == "| audio 1 | sampling.guidance.audio=1.0 | **8.218** | n/a | 0.342 |"
  assert "<td class=\"num best\">8.218</td>" in (tmp_path / "t.html").read_text()
  with pytest.raises(UserError, match="member 0"):
    report.write_ablation_table([{"metrics": {}}], tmp_path / "u.md")


def test_paper_data_is_consistent():
  for table in paper.TABLES:
    assert all(set(row) == set(table.columns) for row in table.rows.values())
    assert all(key in paper.METRICS for key in table.columns)
  # The paper's own claims: audio guidance lifts lip sync above real video; VASA-1 beats SadTalker
  # on every metric of both tables; the ablation's l_audio = 0.5 row is the OneMin-32 VASA-1 row.
  assert paper.ONEMIN32.rows["VASA-1"]["S_C"] > paper.ONEMIN32.rows["Real video"]["S_C"]
  for table in paper.TABLES:
    vasa, sadtalker = table.rows["VASA-1"], table.rows["SadTalker"]
    for key in table.columns:
      assert (vasa[key] > sadtalker[key]) == (paper.info(key).better != paper.LOWER), key
  scales, scores = paper.cfg_ablation("S_C")
  assert scales == [0.0, 0.5, 1.0, 2.0] and scores[1] == paper.ONEMIN32.rows["VASA-1"]["S_C"]
  assert paper.cfg_ablation("CAPP") is None
  assert max(paper.CAPP_SANITY_SHIFT.values()) == paper.CAPP_SANITY_SHIFT[0]
  assert paper.info("unknown_key").better == "" and paper.info("unknown_key").key == "unknown_key"
  assert not math.isnan(paper.TEN_STEPS["FVD_25"])
