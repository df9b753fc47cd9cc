"""Faces: detection, mesh and irises on real photos (scikit-image's samples), pose conventions and
invariances, crops, and the pose of SynthTalk heads."""

import cv2
import numpy as np
import pytest

from vasa_jax.data import faces
from vasa_jax.errors import UserError

skimage_data = pytest.importorskip("skimage.data",
                                   reason="the real test photos come with scikit-image")

# The astronaut's face in skimage.data.astronaut() (512x512), roughly: x 175..275, y 70..180.
FACE_REGION = (175, 70, 275, 180)


def _only_face(analyzer, image):
  """The one face of an image: (detection, landmarks with irises)."""
  found = analyzer.analyze(image)
  assert len(found) == 1, f"{len(found)} faces"
  return found[0]


@pytest.fixture(scope="module")
def reference(analyzer, astronaut):
  detection, marks = _only_face(analyzer, astronaut)
  return detection, marks, faces.head_pose(marks.points, (512, 512))


def _degrees(x):
  return np.degrees(np.asarray(x, np.float64))


def test_astronaut_face_found_once_with_landmarks_in_place(reference):
  detection, marks, pose = reference
  assert detection.score > 0.8
  x0, y0, x1, y1 = detection.box
  fx0, fy0, fx1, fy1 = FACE_REGION
  # The box covers the face region and is not much larger.
  assert x0 < fx0 + 15 and y0 < fy0 + 20 and x1 > fx1 - 15 and y1 > fy1 - 20
  assert (x1 - x0) < 1.5 * (fx1 - fx0) and (y1 - y0) < 1.5 * (fy1 - fy0)
  kp = detection.keypoints
  assert kp.shape == (6, 2) and kp.dtype == np.float32
  assert kp[0, 0] < kp[1, 0]                    # image-left eye first
  eye_y = kp[:2, 1].mean()
  assert eye_y < kp[2, 1] < kp[3, 1]            # eyes above the nose above the mouth
  assert kp[4, 0] < kp[2, 0] < kp[5, 0]         # ears either side of the nose

  assert marks.score > 0.9
  assert marks.points.shape == (468, 3) and marks.points.dtype == np.float32
  # The mesh covers forehead to chin, a little beyond the detector's box.
  margin = 0.2 * (x1 - x0)
  pts = marks.points[:, :2]
  assert np.all((pts[:, 0] > x0 - margin) & (pts[:, 0] < x1 + margin))
  assert np.all((pts[:, 1] > y0 - margin) & (pts[:, 1] < y1 + margin))
  # Named mesh points agree with the detector's keypoints.
  left_eye = marks.points[[33, 133], :2].mean(0)
  right_eye = marks.points[[362, 263], :2].mean(0)
  assert np.linalg.norm(left_eye - kp[0]) < 6 and np.linalg.norm(right_eye - kp[1]) < 6
  assert np.linalg.norm(marks.points[1, :2] - kp[2]) < 8
  # Irises: image-left eye first, each centred between its eye corners, a few pixels in radius.
  assert marks.iris.shape == (2, 5, 2)
  assert marks.iris[0, 0, 0] < marks.iris[1, 0, 0]
  for k, centre in enumerate((left_eye, right_eye)):
    assert np.linalg.norm(marks.iris[k, 0] - centre) < 4
    radius = np.linalg.norm(marks.iris[k, 1:] - marks.iris[k, :1], axis=1)
    assert np.all((radius > 2) & (radius < 7))
  # A portrait looking into the camera: frontal head and gaze, eyes open, lips apart in a smile.
  assert np.all(np.abs(_degrees(pose)) < 10)
  assert np.all(np.abs(_degrees(faces.gaze(marks, pose))) < 10)
  assert 0.25 < faces.eye_openness(marks.points) < 0.5
  assert 0.0 < faces.mouth_opening(marks.points) < 0.2


def test_two_faces_best_first(analyzer, astronaut):
  dimmer = (astronaut[:, ::-1] * 0.8).astype(np.uint8)
  found = analyzer.analyze(np.concatenate([astronaut, dimmer], axis=1))
  assert len(found) == 2
  assert found[0][0].score >= found[1][0].score
  centres = sorted(float(d.box[0::2].mean()) for d, _ in found)
  assert centres[0] < 512 < centres[1]
  for detection, marks in found:
    assert marks.score > 0.9
    assert abs(marks.points[:, 0].mean() - detection.box[0::2].mean()) < 15


@pytest.mark.parametrize("name", ["coffee", "rocket"])
def test_no_face_no_detection(analyzer, name):
  assert analyzer.detect(getattr(skimage_data, name)()) == []


@pytest.mark.parametrize("angle", [15.0, -15.0])
def test_rotating_the_image_changes_roll_only(analyzer, astronaut, reference, angle):
  _, marks, pose = reference
  centre = tuple(float(v) for v in marks.points[:, :2].mean(0))
  # OpenCV's positive angle turns the picture counter-clockwise on screen.
  matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
  rotated = cv2.warpAffine(astronaut, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)
  _, turned = _only_face(analyzer, rotated)
  change = _degrees(faces.head_pose(turned.points, (512, 512)) - pose)
  assert abs(change[2] - angle) < 4, change
  # Turning about the face rather than the principal point changes the view a little.
  assert np.all(np.abs(change[:2]) < 5), change
  expected = np.c_[marks.points[:, :2], np.ones(468)] @ matrix.T
  assert np.abs(turned.points[:, :2] - expected).mean() < 1.0


def test_mirroring_the_image_negates_yaw_and_roll(analyzer, astronaut, reference):
  _, marks, pose = reference
  _, mirrored = _only_face(analyzer, np.ascontiguousarray(astronaut[:, ::-1]))
  flipped = faces.head_pose(mirrored.points, (512, 512))
  assert _degrees(abs(flipped[0] + pose[0])) < 3
  assert _degrees(abs(flipped[1] - pose[1])) < 3
  assert _degrees(abs(flipped[2] + pose[2])) < 2
  # The image-left eye of the mirror image is the image-right eye of the original.
  assert abs((511 - mirrored.iris[0, 0, 0]) - marks.iris[1, 0, 0]) < 1.5


def test_shrinking_the_image_scales_face_size_and_keeps_pose(analyzer, astronaut, reference):
  _, marks, pose = reference
  small = cv2.resize(astronaut, (358, 358), interpolation=cv2.INTER_AREA)
  _, shrunk = _only_face(analyzer, small)
  ratio = faces.face_size(shrunk.points) / faces.face_size(marks.points)
  assert abs(ratio - 358 / 512) < 0.05 * 358 / 512
  assert np.all(np.abs(_degrees(faces.head_pose(shrunk.points, (358, 358)) - pose)) < 3)
  box, small_box = faces.crop_box(marks.points), faces.crop_box(shrunk.points)
  assert abs(small_box[2] / box[2] - 358 / 512) < 0.05 * 358 / 512


def test_translating_the_image_moves_the_crop_box(analyzer, astronaut, reference):
  _, marks, _ = reference
  shift = np.array([37.0, -21.0])
  moved = cv2.warpAffine(astronaut, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (512, 512),
                         borderMode=cv2.BORDER_REFLECT)
  _, found = _only_face(analyzer, moved)
  box, moved_box = faces.crop_box(marks.points), faces.crop_box(found.points)
  np.testing.assert_allclose(moved_box[:2] - box[:2], shift, atol=1.5)
  assert abs(moved_box[2] / box[2] - 1) < 0.02


@pytest.mark.parametrize("canvas_size,offset", [((600, 900), (300, 50)), ((900, 600), (40, 330))])
def test_larger_non_square_canvas_gives_the_same_landmarks(analyzer, astronaut, reference,
                                                           canvas_size, offset):
  _, marks, _ = reference
  height, width = canvas_size
  canvas = np.full((height, width, 3), 96, np.uint8)
  canvas[offset[1]:offset[1] + 512, offset[0]:offset[0] + 512] = astronaut
  _, found = _only_face(analyzer, canvas)
  shift = np.asarray(offset, np.float32)
  error = np.linalg.norm(found.points[:, :2] - marks.points[:, :2] - shift, axis=1)
  assert error.mean() < 1.0 and error.max() < 2.5, (error.mean(), error.max())
  assert np.abs(found.iris - marks.iris - shift).max() < 2.0


def test_crop_box_frames_the_face(reference):
  _, marks, _ = reference
  cx, cy, size = faces.crop_box(marks.points)
  between = marks.points[[33, 133, 362, 263], :2].mean(0)
  mouth = marks.points[[13, 14], :2].mean(0)
  top = cy - size / 2
  # Upright face: the eyes and the mouth at the chosen fractions, both near the vertical middle.
  assert abs((between[1] - top) / size - faces.CROP_EYES_FRACTION) < 0.02
  assert abs((mouth[1] - top) / size - faces.CROP_MOUTH_FRACTION) < 0.02
  assert abs(between[0] - cx) < 0.05 * size and abs(mouth[0] - cx) < 0.05 * size
  # Brow (mesh 105/334) to chin (152) is about 45% of the crop.
  brow = marks.points[[105, 334], 1].mean()
  assert 0.4 < (marks.points[152, 1] - brow) / size < 0.5


def test_crop_shape_content_and_replicated_border():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
  # The whole image at its own resolution is the image itself.
  square = np.pad(image, ((10, 10), (0, 0), (0, 0)), mode="edge")
  np.testing.assert_array_equal(faces.crop(square, np.array([39.5, 39.5, 80.0]), 80), square)
  # A box reaching past the top-left corner: the outside repeats the border pixels.
  out = faces.crop(image, np.array([0.0, 0.0, 41.0]), 41)
  assert out.shape == (41, 41, 3) and out.dtype == np.uint8
  np.testing.assert_array_equal(out[20, 20:], image[0, :21])
  np.testing.assert_array_equal(out[20:, 20], image[:21, 0])
  np.testing.assert_array_equal(out[:20, :20], np.broadcast_to(image[0, 0], (20, 20, 3)))
  np.testing.assert_array_equal(out[:20, 20:], np.broadcast_to(image[0, :21], (20, 21, 3)))
  # Shrinking averages: a fine checkerboard becomes flat grey instead of aliasing.
  board = np.indices((400, 400)).sum(0) % 2 * 255
  board = np.repeat(board[..., None], 3, axis=2).astype(np.uint8)
  small = faces.crop(board, np.array([199.5, 199.5, 400.0]), 37)
  assert small.shape == (37, 37, 3) and np.abs(small.astype(int) - 127).max() <= 6
  # Far outside the image: the nearest pixel repeated.
  far = faces.crop(image, np.array([500.0, -300.0, 16.0]), 16)
  np.testing.assert_array_equal(far, np.broadcast_to(image[0, -1], (16, 16, 3)))


def test_missing_models_name_the_folder(tmp_path, monkeypatch):
  with pytest.raises(faces.FaceModelsMissing, match=str(tmp_path)) as raised:
    faces.FaceAnalyzer(tmp_path)
  assert isinstance(raised.value, UserError)
  assert "face_landmark.tflite" in str(raised.value)
  monkeypatch.setenv("VASA_FACE_MODELS", str(tmp_path / "elsewhere"))
  with pytest.raises(faces.FaceModelsMissing, match="elsewhere"):
    faces.FaceAnalyzer()


def test_default_model_folder_is_the_repository_data():
  assert faces.DEFAULT_MODEL_DIR.name == "face_models"
  assert (faces.DEFAULT_MODEL_DIR / "face_detection_short_range.tflite").is_file()


def test_head_pose_conventions_on_projected_mean_face():
  """The PnP recovers the rotation a pinhole camera gives the mean face itself."""
  from vasa_jax.data.synthtalk.render import head_rotation

  width = height = 512
  model = np.array(list(faces._MEAN_FACE.values()))
  index = list(faces._MEAN_FACE)
  for yaw, pitch, roll in [(0.3, 0.0, 0.0), (0.0, 0.2, 0.0), (0.0, 0.0, 0.25), (-0.4, -0.2, 0.1)]:
    camera = model @ head_rotation(yaw, pitch, roll).T + np.array([0.0, 0.0, -600.0])
    # Camera coordinates here have y up and z towards the viewer; the image has y down.
    depth = -camera[:, 2]
    points = np.zeros((468, 2))
    points[index, 0] = (width - 1) / 2 + width * camera[:, 0] / depth
    points[index, 1] = (height - 1) / 2 - width * camera[:, 1] / depth
    np.testing.assert_allclose(faces.head_pose(points, (width, height)), [yaw, pitch, roll],
                               atol=1e-3)


def test_synthtalk_pose_sweeps_are_followed(analyzer):
  render = pytest.importorskip("vasa_jax.data.synthtalk.render")
  rng = np.random.default_rng(11)
  identities = [render.sample_identity(rng) for _ in range(2)]
  for axis, limit in (("yaw", 0.5), ("pitch", 0.3), ("roll", 0.3)):
    k = ("yaw", "pitch", "roll").index(axis)
    values = np.linspace(-limit, limit, 7)
    for identity in identities:
      estimates = []
      for value in values:
        image = render.render_frame(identity, {axis: value}, 256)
        detections = analyzer.detect(image)
        assert len(detections) == 1
        marks = analyzer.landmarks(image, detections[0].box, iris=False)
        estimates.append(faces.head_pose(marks.points, (256, 256))[k])
      assert np.corrcoef(values, estimates)[0, 1] > 0.9, (axis, values, estimates)


def test_synthtalk_eyes_mouth_and_gaze_follow_the_face_state(analyzer):
  render = pytest.importorskip("vasa_jax.data.synthtalk.render")
  identity = render.sample_identity(np.random.default_rng(5))

  def measure(**state):
    image = render.render_frame(identity, state, 256)
    detection = analyzer.detect(image)[0]
    marks = analyzer.landmarks(image, detection.box, keypoints=detection.keypoints)
    pose = faces.head_pose(marks.points, (256, 256))
    return marks, faces.gaze(marks, pose)

  openness = [faces.eye_openness(measure(blink=b)[0].points) for b in (0.0, 0.5, 1.0)]
  assert openness[0] > openness[1] > openness[2]
  mouth = [faces.mouth_opening(measure(jaw_open=j)[0].points) for j in (0.0, 0.5, 1.0)]
  assert mouth[0] < 0.05 < mouth[1] < mouth[2]
  theta = [measure(gaze_theta=t)[1][0] for t in (-0.4, 0.0, 0.4)]
  assert theta[0] < theta[1] < theta[2]
  phi = [measure(gaze_phi=p)[1][1] for p in (-0.3, 0.3)]
  assert phi[0] < phi[1]


def test_gaze_without_irises_is_nan(reference):
  _, marks, pose = reference
  blind = faces.FaceLandmarks(points=marks.points, score=marks.score, iris=None)
  assert np.all(np.isnan(faces.gaze(blind, pose)))


def _detect_in_worker(image):
  return [d.box for d in faces.FaceAnalyzer().detect(image)]


def test_analyzer_is_built_inside_a_spawned_worker(astronaut, reference):
  import multiprocessing

  with multiprocessing.get_context("spawn").Pool(1) as pool:
    (boxes,) = pool.map(_detect_in_worker, [astronaut])
  assert len(boxes) == 1
  np.testing.assert_allclose(boxes[0], reference[0].box, atol=1e-3)


def test_speed(analyzer, astronaut, reference):
  import time

  detection, _, _ = reference
  timings = {}
  calls = {"detect": lambda: analyzer.detect(astronaut),
           "landmarks+iris": lambda: analyzer.landmarks(astronaut, detection.box,
                                                         keypoints=detection.keypoints)}
  for name, call in calls.items():
    call()
    start = time.perf_counter()
    for _ in range(20):
      call()
    timings[name] = (time.perf_counter() - start) / 20 * 1e3
  print("\nfaces on 512x512, 1 thread: " + ", ".join(f"{k} {v:.2f} ms" for k, v in timings.items()))
