"""Editing with stage 1 alone: a photo's face driven by the motion of a video.

Stage 1 splits a face into appearance, identity, head pose (z_pose) and facial dynamics (z_dyn). The
driving video's face is tracked and cropped as training data was (`faces.crop_box` on MediaPipe's
mesh, the boxes smoothed over time), its motion encoded frame by frame, and the photo rendered with
  all:        the video's pose and dynamics (reenactment);
  expression: the photo's pose, the video's dynamics (keep the pose, change the expression);
  pose:       the video's pose, the photo's dynamics (keep the expression, change the pose).
The video is read twice (face boxes first, then frames), so memory does not grow with its length.
"""

from __future__ import annotations

import os
import pathlib
import time
from typing import Any

import numpy as np

from vasa_jax.errors import UserError
from vasa_jax.inference.face import FaceRenderer
from vasa_jax.models.face_latent.warping import POSE_DIM

TRANSFERS = ("all", "expression", "pose")
# Smoothing of the driving video's crop boxes over time, frames (as real-video preparation).
BOX_SMOOTHING = 2.0
# Frames per motion-encoding and rendering batch.
BATCH = 16


def load_face_renderer(checkpoint: str | os.PathLike, step: int | None = None,
                       batch_size: int = 8) -> FaceRenderer:
  """Stage 1 of a stage-1 run, or the stage-1 run a stage-2 run was trained on."""
  from vasa_jax import configs
  from vasa_jax.data import motion_latents
  from vasa_jax.trainers import motion as motion_trainer

  workdir = pathlib.Path(checkpoint).expanduser()
  if not (workdir / "config.json").is_file():
    raise UserError(f"{workdir} is not a training run (no config.json); give a stage-1 "
                    "(face_latent) or stage-2 (motion) workdir")
  task = configs.read_json(workdir / "config.json").get("task")
  if task == motion_trainer.TASK_NAME:
    _, source = motion_trainer.read_run_files(workdir)
    if not source or not source.get("stage1"):
      raise UserError(f"{workdir} records no stage-1 run (it learned labels, or predates the "
                      "record); give the stage-1 workdir itself")
    workdir = pathlib.Path(source["stage1"]["workdir"])
    step = int(source["stage1"]["step"]) if step is None else step
  elif task != "face_latent":
    raise UserError(f"{workdir} is a {task!r} run; give a stage-1 (face_latent) or stage-2 "
                    "(motion) workdir")
  return FaceRenderer.from_stage1(motion_latents.load_stage1(workdir, step), batch_size)


def track_face(video: str | os.PathLike, analyzer) -> tuple[np.ndarray, np.ndarray]:
  """The canonical crop box (cx, cy, size) of the driving face in every frame, float32 [T, 3],
  and its landmarks in that crop, float32 [T, len(LANDMARK_NAMES), 2] ((x, y) / size; NaN in
  frames where the face was not found).

  The face is the largest in the first frame where one is found, then the one nearest the last
  box; frames without it keep the last box (the first frames take the first box found). Boxes are
  smoothed over time.
  """
  from vasa_jax.data import faces, prepare, video_io

  boxes, meshes, last = [], [], None
  for frame in video_io.iter_frames(video):
    found = [(faces.crop_box(landmarks.points), landmarks)
             for _, landmarks in analyzer.analyze(frame)]
    mesh = None
    if found:
      if last is None:
        last, mesh = max(found, key=lambda f: f[0][2])
      else:
        last, mesh = min(found, key=lambda f: float(np.hypot(*(f[0][:2] - last[:2]))))
    boxes.append(last)
    meshes.append(mesh)
  if not boxes:
    raise UserError(f"{video} holds no frames")
  if last is None:
    raise UserError(f"no face found in any frame of {video}; drive with a video that shows one "
                    "face clearly")
  first = next(b for b in boxes if b is not None)
  boxes = np.stack([first if b is None else b for b in boxes]).astype(np.float32)
  boxes = prepare.smooth_track(boxes, BOX_SMOOTHING).astype(np.float32)
  landmarks = np.stack([
      np.full((6, 2), np.nan, np.float32) if mesh is None
      else prepare.landmarks_in_box(mesh.points, mesh.iris, box)
      for mesh, box in zip(meshes, boxes)])
  return boxes, landmarks


def edit_video(image: str | os.PathLike, video: str | os.PathLike, checkpoint: str | os.PathLike,
               out: str | os.PathLike, transfer: str = "all", step: int | None = None,
               face_index: int | None = None, resolution: int | None = None,
               paste_back: bool = False, batch_size: int = 8) -> dict[str, Any]:
  """Writes the photo's face driven by the video's motion (see the module docstring) to `out`,
  with the video's sound if it has any. Returns a summary."""
  from tqdm import tqdm

  from vasa_jax.data import faces, video_io
  from vasa_jax.inference import portrait as portrait_lib
  from vasa_jax.inference import talking_face as tf

  if transfer not in TRANSFERS:
    raise UserError(f"transfer {transfer!r}: use one of {', '.join(TRANSFERS)}")
  try:
    info = video_io.probe(video)
  except video_io.MediaError as e:
    raise UserError(f"cannot use the driving video {video}: {e.reason}; give a video file "
                    "(mp4, mov, webm, ...)") from e
  photo = portrait_lib.load_photo(image)
  renderer = load_face_renderer(checkpoint, step, batch_size)
  analyzer = faces.FaceAnalyzer()
  found = portrait_lib.find_portrait(photo, renderer.image_size, analyzer, face_index, str(image))
  latents = renderer.encode(found.crop, found.landmarks)
  start = time.perf_counter()
  boxes, landmarks = track_face(video, analyzer)
  compose = tf.FrameComposer(found, renderer.image_size, tf.Output(paste_back, resolution))

  def drive(crops: list[np.ndarray], first: int) -> np.ndarray:
    motion = renderer.encode_motion(np.stack(crops), landmarks[first:first + len(crops)])
    if transfer == "expression":
      motion[:, :POSE_DIM] = latents.z_pose
    elif transfer == "pose":
      motion[:, POSE_DIM:] = latents.z_dyn
    return compose(renderer.render(latents, motion))

  with video_io.VideoWriter(out, tf.FPS, audio=info.has_audio,
                            metadata={"title": f"{transfer} of {pathlib.Path(video).name} on "
                                      f"{pathlib.Path(image).name}"}) as writer:
    # The sound goes along a batch at a time (BATCH frames of it per batch of frames).
    sound = video_io.iter_audio(video, tf.SAMPLE_RATE, BATCH * tf.SAMPLES_PER_FRAME) \
        if info.has_audio else iter(())

    def write(crops):
      writer.write_frames(drive(crops, writer.num_frames))
      if info.has_audio:
        writer.write_audio(next(sound, np.zeros(0, np.float32)))
      bar.update(len(crops))

    crops = []
    with tqdm(total=len(boxes), desc="edit", unit="frame") as bar:
      for frame, box in zip(video_io.iter_frames(video), boxes):
        crops.append(faces.crop(frame, box, renderer.image_size))
        if len(crops) == BATCH:
          write(crops)
          crops = []
      if crops:
        write(crops)
  elapsed = time.perf_counter() - start
  return {"frames": writer.num_frames, "video_seconds": writer.num_frames / tf.FPS,
          "transfer": transfer, "seconds": elapsed,
          "frames_per_second": writer.num_frames / max(elapsed, 1e-9)}
