"""A procedural 3D head renderer in numpy: an identity and a face state in, an RGB image out.

The head is a union of quadrics (ellipsoids, elliptic cylinders, hyperboloids, planes) seen by an
orthographic camera. Every pixel casts one ray; ray-quadric intersections are solved in closed form
(for parallel rays the discriminant is a quadratic polynomial in the pixel coordinates), a z-buffer
keeps the nearest surface, and the hit point, taken back to canonical head coordinates, decides the
colour: eyes, brows, lips, mouth interior, teeth, nostrils, beard and hairline are functions of that
canonical point, so they move, turn and foreshorten with the head exactly. Shading is Lambertian +
ambient (+ a little specular) under a per-identity light; the normals of the face parts are blended
near their seams so the face reads as one smooth surface.

Coordinates and conventions
  Canonical head coordinates: x right (viewer's right in a frontal view), y up, z towards the
  camera, in head units of about 10 cm. Eyes are at y ~ +0.1, the nose tip at y ~ -0.25, the
  mouth at y ~ -0.6, the chin at y ~ -1.05 and the top of the skull at y ~ +1.2. The head centre,
  about which the head turns and which tx, ty place, is HEAD_CENTRE = (0, -0.2, 0), mid-nose.
  Face state (FACE_STATE_FIELDS), one float each:
    yaw, pitch, roll: radians. yaw > 0 turns the face towards the viewer's right (image +x);
      pitch > 0 tilts the face up (chin forward/up, the face moves towards the image top); roll > 0
      rotates the face counter-clockwise in the image. R = R_roll @ R_pitch @ R_yaw maps canonical
      head coordinates (relative to the head centre) to camera coordinates (x right, y up, z towards
      the camera).
    tx, ty: offset of the head centre from the image centre, in fractions of the image size
      (+x right, +y down).
    scale: apparent head size; 1.0 is the default framing, where brow to chin is about 45% of the
      image height. Distance to the camera is 1 / scale (the camera is orthographic, so only the
      size changes).
    gaze_theta, gaze_phi: eye rotation relative to the head, radians (theta > 0 towards the viewer's
      right, phi > 0 up).
    blink: 0 open .. 1 closed.  jaw_open: 0 .. 1.  lip_width: 0 .. 1 (0.5 neutral).
    lip_round: 0 .. 1.  brow_raise: -1 .. 1 (0 neutral).  smile: -1 .. 1 (mouth corners down .. up).
    Values outside these ranges are clipped to them.
  Pixel coordinates: (x, y) with x to the right and y down; pixel (col, row) is centred at
  (col, row), so the image centre is ((W - 1) / 2, (H - 1) / 2). `project` uses the renderer's
  camera.
  Landmarks: "left_eye" is the eye at canonical x < 0, i.e. on the image left in a frontal view.

The shoulders stay upright (they follow tx, ty and scale but not the head rotation); the neck turns
with the head. The face, open jaw included, stays inside the image for |yaw| <= 0.8, |pitch| <= 0.3,
|roll| <= 0.3, |tx| <= 0.1, scale <= 1.2 and ty + 0.4 * scale <= 0.52 (scale 1.2: ty <= 0.04;
scale 1.0: ty <= 0.1), short of a pixel or two where everything pushes towards one edge at once.
The top of the hair may leave the image at scale > 1.

Modules, in the order each builds on the ones before:
  identity     who is drawn: face shape, colours, hair, accessories, background; sampling
  camera       the face state, the head rotation, the orthographic camera, `project`
  primitives   quadrics and planes and their closed-form ray intersections
  scene        one identity's geometry and colours, built once per identity
  shading      lighting, blended face normals, the painted eyes, brows, beard and mouth
  background   the backdrop, one per identity and resolution
  drawing      one frame (intersect, z-buffer, shade, supersample) and the public functions
"""

from vasa_jax.data.synthtalk.render.camera import (FACE_STATE_FIELDS, FOCAL, HEAD_CENTRE,
                                                   head_rotation, neutral_state, project)
from vasa_jax.data.synthtalk.render.drawing import (landmarks_3d, render_frame,
                                                    render_frame_and_labels, render_frames)
from vasa_jax.data.synthtalk.render.identity import (BACKGROUNDS, BEARDS, CLOTHING_PATTERNS,
                                                     EARRINGS, GLASSES, HAIR_STYLES, HATS,
                                                     Identity, identity_from_dict,
                                                     identity_to_dict, sample_identity)
from vasa_jax.data.synthtalk.render.shading import MOUTH_INTERIOR_RGB, PART_LABELS

__all__ = [
    "BACKGROUNDS", "BEARDS", "CLOTHING_PATTERNS", "EARRINGS", "FACE_STATE_FIELDS", "FOCAL",
    "GLASSES", "HAIR_STYLES", "HATS", "HEAD_CENTRE", "Identity", "MOUTH_INTERIOR_RGB",
    "PART_LABELS", "head_rotation", "identity_from_dict", "identity_to_dict", "landmarks_3d",
    "neutral_state", "project", "render_frame", "render_frame_and_labels", "render_frames",
    "sample_identity"]
