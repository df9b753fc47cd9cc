"""The SynthTalk head renderer: determinism, identities, and that pose, gaze, blink, mouth show."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from vasa_jax.data.synthtalk import render

L = render.PART_LABELS
RES = 128


def _identity(seed: int, **changes) -> render.Identity:
  """A sampled identity without accessories that could cover the eyes."""
  ident = render.sample_identity(np.random.default_rng(seed))
  return dataclasses.replace(ident, glasses=0, hat=0, **changes)


def _state(**changes) -> dict[str, float]:
  state = render.neutral_state()
  state.update(changes)
  return state


def _centroid(mask: np.ndarray) -> np.ndarray:
  """(x, y) pixel centroid of a boolean [H, W] mask."""
  rows, cols = np.nonzero(mask)
  assert rows.size > 0
  return np.array([cols.mean(), rows.mean()])


def _eye_centroids(labels: np.ndarray,
                   parts=("eye_white", "iris")) -> tuple[np.ndarray, np.ndarray]:
  """Centroids of the left and right eye's pixels of `parts` (the eyes split at their middle)."""
  eyes = np.isin(labels, [L["eye_white"], L["iris"]])
  _, cols = np.nonzero(eyes)
  split = (cols.min() + cols.max()) / 2
  mask = np.isin(labels, [L[p] for p in parts])
  left, right = mask.copy(), mask.copy()
  left[:, int(np.ceil(split)):] = False
  right[:, :int(np.ceil(split))] = False
  return _centroid(left), _centroid(right)


def test_same_inputs_give_the_same_bytes():
  ident = render.sample_identity(np.random.default_rng(7))
  state = _state(yaw=0.3, pitch=-0.1, jaw_open=0.4, blink=0.3, smile=0.5)
  first = render.render_frame(ident, state, RES)
  render.scene.build_scene.cache_clear()
  render.background.backdrop.cache_clear()
  again = render.render_frame(render.identity_from_dict(render.identity_to_dict(ident)), state, RES)
  assert first.dtype == np.uint8 and first.shape == (RES, RES, 3)
  assert first.tobytes() == again.tobytes()


def test_identity_round_trips_through_json():
  ident = render.sample_identity(np.random.default_rng(3))
  back = render.identity_from_dict(json.loads(json.dumps(render.identity_to_dict(ident))))
  assert back == ident


def test_identities_are_distinct_and_varied():
  idents = [render.sample_identity(np.random.default_rng(i)) for i in range(300)]
  assert len(set(idents)) == 300
  assert {i.hair_style for i in idents} == set(range(len(render.HAIR_STYLES)))
  assert len({i.background for i in idents}) == len(render.BACKGROUNDS)
  assert any(i.glasses for i in idents) and any(i.hat for i in idents)
  assert any(i.beard for i in idents) and any(i.earrings for i in idents)
  brightness = [np.mean(i.skin_color) for i in idents]
  assert min(brightness) < 0.35 and max(brightness) > 0.8


def test_different_identities_give_clearly_different_images():
  frames = [render.render_frame(render.sample_identity(np.random.default_rng(i)),
                                render.neutral_state(), RES).astype(np.float32) for i in range(6)]
  for i in range(len(frames)):
    for j in range(i):
      assert np.abs(frames[i] - frames[j]).mean() > 10.0, (i, j)


@pytest.mark.parametrize("resolution", [64, 128, 256, 512])
def test_every_resolution_renders_a_face(resolution):
  ident = _identity(11)
  rgb, labels = render.render_frame_and_labels(ident, _state(yaw=0.2), resolution)
  assert rgb.shape == (resolution, resolution, 3) and rgb.dtype == np.uint8
  assert labels.shape == (resolution, resolution)
  for part in ("skin", "nose", "eye_white", "iris", "lips"):
    assert (labels == L[part]).any(), part
  face = np.isin(labels, [L["skin"], L["nose"], L["eye_white"], L["iris"], L["lips"], L["brow"],
                          L["beard"]])
  assert 0.08 < face.mean() < 0.5


def test_mouth_interior_grows_with_jaw_open():
  interior = np.array(render.MOUTH_INTERIOR_RGB)
  for seed in (1, 2, 5):
    ident = _identity(seed)
    counts = []
    for jaw in (0.0, 0.25, 0.5, 1.0):
      rgb = render.render_frame(ident, _state(jaw_open=jaw, yaw=0.1), RES).astype(int)
      counts.append(int((np.abs(rgb - interior).max(-1) <= 1).sum()))
    assert all(a < b for a, b in zip(counts, counts[1:])), (seed, counts)
    assert counts[-1] > 40


@pytest.mark.parametrize("pose", [dict(yaw=0.4), dict(yaw=-0.4), dict(pitch=0.3), dict(pitch=-0.3),
                                  dict(roll=0.3), dict(roll=-0.3),
                                  dict(yaw=0.3, pitch=-0.2, roll=0.2, tx=0.05, ty=-0.04,
                                       scale=1.1)])
def test_rendered_features_sit_where_project_puts_the_landmarks(pose):
  ident = _identity(4, hair_style=2)
  state = _state(**pose)
  rgb, labels = render.render_frame_and_labels(ident, state, RES)
  # The labelled whites of the eyes are what the image shows: light and nearly grey.
  sclera = rgb[labels == L["eye_white"]].astype(int)
  assert sclera.mean() > 120 and (sclera.max(-1) - sclera.min(-1)).mean() < 40
  marks = render.landmarks_3d(ident)
  names = ("left_eye", "right_eye", "nose_tip")
  left, right, nose = render.project(ident, state, np.stack([marks[n] for n in names]), RES)
  seen_left, seen_right = _eye_centroids(labels)
  assert np.linalg.norm(seen_left - left) < 2.0, (seen_left, left)
  assert np.linalg.norm(seen_right - right) < 2.0, (seen_right, right)
  col, row = np.round(nose).astype(int)
  assert labels[row, col] == L["nose"]


def test_pose_moves_the_face_the_stated_way():
  ident = _identity(9, hair_style=1)

  def nose_and_eyes(**pose):
    _, labels = render.render_frame_and_labels(ident, _state(**pose), RES)
    return _centroid(labels == L["nose"]), _eye_centroids(labels)

  nose0, _ = nose_and_eyes()
  assert nose_and_eyes(yaw=0.4)[0][0] > nose0[0] + 5 > nose_and_eyes(yaw=-0.4)[0][0] + 10
  assert nose_and_eyes(pitch=0.3)[0][1] < nose0[1] - 3 < nose_and_eyes(pitch=-0.3)[0][1] - 6
  for roll in (0.3, -0.3):
    left, right = nose_and_eyes(roll=roll)[1]
    # Image y points down: a counter-clockwise eye line has a positive angle of (dx, -dy).
    angle = np.arctan2(-(right[1] - left[1]), right[0] - left[0])
    assert abs(angle - roll) < 0.08, (roll, angle)


def test_gaze_moves_the_irises():
  ident = _identity(12)

  def irises(**gaze):
    _, labels = render.render_frame_and_labels(ident, _state(**gaze), 256)
    return _eye_centroids(labels, parts=("iris",))

  centre = irises()
  for eye in range(2):
    assert irises(gaze_theta=0.35)[eye][0] > centre[eye][0] + 2
    assert irises(gaze_theta=-0.35)[eye][0] < centre[eye][0] - 2
    assert irises(gaze_phi=0.3)[eye][1] < centre[eye][1] - 0.5
    assert irises(gaze_phi=-0.3)[eye][1] > centre[eye][1] + 0.5


def test_blink_hides_the_eyes():
  ident = _identity(13)
  rgb_open, open_ = render.render_frame_and_labels(ident, _state(), RES)
  rgb_shut, shut = render.render_frame_and_labels(ident, _state(blink=1.0), RES)
  assert (open_ == L["iris"]).sum() > 10
  assert not np.isin(shut, [L["iris"], L["eye_white"]]).any()
  eyes = np.isin(open_, [L["iris"], L["eye_white"]])
  assert np.abs(rgb_open[eyes].astype(int) - rgb_shut[eyes]).mean() > 20


def test_scale_and_translation_move_the_face():
  ident = _identity(14)

  def eyes(**pose):
    _, labels = render.render_frame_and_labels(ident, _state(**pose), RES)
    left, right = _eye_centroids(labels)
    return (left + right) / 2, np.linalg.norm(right - left), (labels == L["skin"]).sum()

  mid, dist, skin = eyes()
  _, dist_big, skin_big = eyes(scale=1.3)
  assert 1.25 < dist_big / dist < 1.35
  assert skin_big > 1.4 * skin
  mid_moved, _, _ = eyes(tx=0.1, ty=-0.05)
  np.testing.assert_allclose(mid_moved - mid, [0.1 * RES, -0.05 * RES], atol=1.0)


def test_render_frames_matches_render_frame():
  ident = render.sample_identity(np.random.default_rng(21))
  states = {"yaw": np.array([0.0, 0.2, -0.3]), "jaw_open": np.array([0.0, 0.5, 1.0]),
            "blink": np.array([0.0, 0.0, 1.0])}
  frames = render.render_frames(ident, states, 64)
  assert frames.shape == (3, 64, 64, 3)
  for t in range(3):
    one = render.render_frame(ident, {k: float(v[t]) for k, v in states.items()}, 64)
    assert np.array_equal(frames[t], one)
  with pytest.raises(ValueError):
    render.render_frame(ident, {"jaw": 1.0}, 64)


def test_accessories_and_styles_render_in_every_pose():
  base = render.sample_identity(np.random.default_rng(0))
  poses = [dict(yaw=0.8), dict(yaw=-0.8, pitch=0.5), dict(pitch=-0.5, roll=0.5)]
  for style in range(len(render.HAIR_STYLES)):
    ident = dataclasses.replace(base, hair_style=style, glasses=style % 3, hat=style % 3,
                                earrings=style % 3, beard=style % len(render.BEARDS),
                                background=style % len(render.BACKGROUNDS))
    for pose in poses:
      rgb, labels = render.render_frame_and_labels(ident, _state(**pose), 64)
      assert (labels == L["skin"]).sum() > 100
      assert np.isfinite(rgb).all()


def test_timing():
  idents = [render.sample_identity(np.random.default_rng(i)) for i in range(4)]
  rng = np.random.default_rng(0)
  for res, frames in ((64, 8), (128, 8), (256, 4), (512, 4)):
    render.render_frame(idents[0], render.neutral_state(), res)
    start = time.perf_counter()
    for i in range(frames):
      render.render_frame(idents[i % 4], _state(yaw=rng.uniform(-0.5, 0.5),
                                                jaw_open=rng.uniform(0, 1)), res)
    print(f"\nrender {res}x{res}: {(time.perf_counter() - start) / frames * 1e3:.1f} ms/frame")
