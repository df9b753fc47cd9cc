"""Disentanglement on SynthTalk: identity A driven by identity B's frame, checked against ground truth.

SynthTalk renders any identity in any face state, so the right answer of a cross-identity transfer
exists: A's head rendered in B's state (pose, mouth, eyes, brows) at the driving frame, through the
same JPEG round trip as the stored frames. For
`num_pairs` pairs of held-out identities (A's first frame as the source, a frame of B as the
driver) this reports:
  * transfer_psnr / transfer_ssim: the output against that ground truth (higher is better);
  * copy_source_psnr: the same score for the source frame itself (what "no transfer" earns);
  * identity_margin_db: transfer_psnr minus the output's PSNR against B's own frame; positive when
    the output looks more like A in B's state than like B (identity kept, not leaked);
  * mouth_transfer_psnr / mouth_copy_source_psnr: the first two within the mouth window (the lower
    middle of SynthTalk's framing): whether B's mouth was carried over;
and, with a probe (`vasa_jax.models.synthtalk_probe`, trained on SynthTalk frames) that reads
pose and mouth from pixels, the errors of what it reads on the output against B's true labels:
  * pose_error_deg (mean absolute yaw, pitch and roll), jaw_open_error, and one per probe label;
  * the same on the ground-truth renders (`*_floor`: the probe's own error) and on the source
    (`*_copy_source`: the error of not transferring anything).
"""

from __future__ import annotations

import json
import logging

import jax
import jax.numpy as jnp
import numpy as np

from vasa_jax.data import schema
from vasa_jax.errors import UserError
from vasa_jax.evaluators import EvalResult, image_metrics
from vasa_jax.evaluators.image_metrics import to_signed, to_unit

_POSE = ("yaw", "pitch", "roll")


def as_stored(frame: np.ndarray) -> np.ndarray:
  """A rendered frame after the JPEG round trip SynthTalk's stored frames went through."""
  import cv2

  from vasa_jax.data.synthtalk.clip import ClipSpec, decode_frames

  encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                         [int(cv2.IMWRITE_JPEG_QUALITY), ClipSpec().jpeg_quality])[1].tobytes()
  return decode_frames([encoded])[0]


def transfer_pairs(source, num_pairs: int, image_size: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Pairs of clips of different identities from a SynthTalk split, with the ground-truth render of
  A in B's state. Returns uint8 images "source", "driving", "truth" [num_pairs, S, S, 3], float32
  "driving_labels", "source_labels" [num_pairs, len(LABEL_NAMES)] and float32
  "source_landmarks", "driving_landmarks" [num_pairs, len(LANDMARK_NAMES), 2]."""
  from vasa_jax.data.pipelines import landmarks_at, _resize
  from vasa_jax.data.synthtalk import motion, render
  from vasa_jax.data.synthtalk.clip import decode_frames

  rng = np.random.default_rng(seed)
  by_identity: dict[str, list[int]] = {}
  for index in range(len(source)):
    by_identity.setdefault(source[index]["meta"]["identity"], []).append(index)
  identities = sorted(by_identity)
  if len(identities) < 2:
    raise UserError("the SynthTalk transfer evaluator needs a split with two identities or more")
  out = {k: [] for k in ("source", "driving", "truth", "source_labels", "driving_labels",
                         "source_landmarks", "driving_landmarks")}
  for _ in range(num_pairs):
    a, b = rng.choice(len(identities), size=2, replace=False)
    clip_a = source[int(rng.choice(by_identity[identities[a]]))]
    clip_b = source[int(rng.choice(by_identity[identities[b]]))]
    details = json.loads(clip_a["meta"]["details"])
    if "identity" not in details:
      raise UserError("the transfer evaluator needs SynthTalk clips (their meta holds the identity "
                      "that made them); use it with a synthtalk/<config> dataset")
    look = render.identity_from_dict(details["identity"])
    t = int(rng.integers(len(clip_b["frames"])))
    labels_b = schema.stack_labels(clip_b["labels"])
    state = {k: float(v[t]) for k, v in motion.render_state(
        {k: np.asarray(v) for k, v in clip_b["labels"].items()}).items()}
    resolution = int(clip_b["meta"]["resolution"])
    out["truth"].append(_resize(as_stored(render.render_frame(look, state, resolution)),
                                image_size))
    out["source"].append(_resize(decode_frames(clip_a["frames"], [0])[0], image_size))
    out["driving"].append(_resize(decode_frames(clip_b["frames"], [t])[0], image_size))
    out["source_labels"].append(schema.stack_labels(clip_a["labels"])[0])
    out["driving_labels"].append(labels_b[t])
    out["source_landmarks"].append(landmarks_at(clip_a, 0))
    out["driving_landmarks"].append(landmarks_at(clip_b, t))
  return {k: np.stack(v) for k, v in out.items()}


class Evaluator:
  def __init__(self, task, split: str = "validation", num_pairs: int = 64, probe_workdir: str = "",
               batch_size: int = 16, seed: int = 0, show: int = 6):
    self.pairs = transfer_pairs(task.open_split(split), num_pairs, task.image_size, seed)
    self.batch_size, self.show = batch_size, show
    self.probe = None
    if probe_workdir:
      from vasa_jax import runs

      self.probe = runs.load_run(probe_workdir, task="synthtalk_probe").predictor()
    else:
      logging.warning("SynthTalk transfer: no probe configured (config.evals.<name>.probe_workdir),"
                      " so pose and mouth errors are not measured; image errors only")

    def transfer(params, source, driving, source_landmarks, driving_landmarks):
      return task.reenact(params, to_signed(source), to_signed(driving), source_landmarks,
                          driving_landmarks)

    self._transfer = jax.jit(transfer)

  def run(self, params) -> EvalResult:
    pairs, n = self.pairs, len(self.pairs["source"])
    names, b = ("source", "driving", "source_landmarks", "driving_landmarks"), self.batch_size
    outputs = np.concatenate([
        np.asarray(jax.device_get(self._transfer(params, *(pairs[k][i:i + b] for k in names))))
        for i in range(0, n, b)])
    unit = np.asarray(to_unit(jnp.asarray(outputs)))
    truth = pairs["truth"].astype(np.float32) / 255.0
    driving = pairs["driving"].astype(np.float32) / 255.0
    source = pairs["source"].astype(np.float32) / 255.0
    transfer_psnr = np.asarray(image_metrics.psnr(unit, truth))
    scalars = dict(
        transfer_psnr=float(transfer_psnr.mean()),
        transfer_ssim=float(np.mean(image_metrics.ssim(unit, truth))),
        copy_source_psnr=float(np.mean(image_metrics.psnr(source, truth))),
        identity_margin_db=float(np.mean(transfer_psnr - image_metrics.psnr(unit, driving))))
    from vasa_jax.models.synthtalk_probe import region_slices

    rows, cols = region_slices(unit.shape[1])["mouth"]
    scalars["mouth_transfer_psnr"] = float(np.mean(image_metrics.psnr(
        unit[:, rows, cols], truth[:, rows, cols])))
    scalars["mouth_copy_source_psnr"] = float(np.mean(image_metrics.psnr(
        source[:, rows, cols], truth[:, rows, cols])))
    if self.probe is not None:
      scalars.update(self._probe_errors(outputs, pairs))
    shown = min(self.show, n)
    columns = [source[:shown], driving[:shown], unit[:shown], truth[:shown]]
    grid = np.concatenate([np.concatenate(list(c), axis=0) for c in columns], axis=1)
    return EvalResult(scalars, images={"source_driving_output_truth": grid})

  def _probe_errors(self, outputs: np.ndarray, pairs: dict) -> dict[str, float]:
    names = list(self.probe.labels)
    columns = [schema.LABEL_NAMES.index(name) for name in names]
    target = pairs["driving_labels"][:, columns]

    def read(images_signed):
      return np.concatenate([self.probe.predict(images_signed[i:i + self.batch_size])
                             for i in range(0, len(images_signed), self.batch_size)])

    readings = {"": read(outputs),
                "_floor": read(np.asarray(to_signed(pairs["truth"]))),
                "_copy_source": read(np.asarray(to_signed(pairs["source"])))}
    scalars = {}
    for suffix, values in readings.items():
      errors = np.abs(values - target)
      for k, name in enumerate(names):
        scale = 180.0 / np.pi if name in _POSE else 1.0
        key = f"{name}_error{'_deg' if name in _POSE else ''}{suffix}"
        scalars[key] = float(np.mean(errors[:, k]) * scale)
      pose = [k for k, name in enumerate(names) if name in _POSE]
      if pose:
        scalars[f"pose_error_deg{suffix}"] = float(np.mean(errors[:, pose]) * 180.0 / np.pi)
    return scalars
