"""Pick Face: which face of a shot with several the editor clicked in the sequencer preview.

Pure Python (no ``bpy``). The engine writes ``shots/<shot>/faces.json`` when it finds several faces (the
contract and the hit test, :func:`protocol.face_at`, live in the protocol module the add-on carries); here:

* :func:`preview_to_image`: a point of the preview (Blender's ``view2d`` coordinates: scene pixels, origin at the
  centre of the picture) to a point of the source strip's picture, normalised (0..1, origin top-left), undoing
  the strip's fit (``FIT``, ``FILL``, ``STRETCH``, ``ORIGINAL``), scale and offset;
* :func:`shot_frame`: the shot frame (the file's frame) a scene frame shows on the strip;
* :func:`pick_face`: both, then the hit test, with a message for people when no face is there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import protocol
from .placement import StripSpan


class FacePickError(ValueError):
    """No face where the editor clicked (or no face list); ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def read_faces(workspace: str, shot: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """The shot's ``faces.json``.

    Raises:
        FacePickError: the shot is not prepared, or it was prepared looking for one face only.
    """
    record = (manifest.get("shots") or {}).get(shot)
    if not isinstance(record, dict):
        raise FacePickError(f"shot {shot!r} is not prepared", hint="press Prepare Shot first")
    rel = record.get("faces_file") or f"shots/{shot}/faces.json"
    path = Path(workspace).expanduser() / rel
    if not path.is_file():
        raise FacePickError(f"shot {shot!r} has no list of faces (it was prepared for one face)",
                            hint="set Faces to 2 or more and press Prepare Shot again")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FacePickError(f"cannot read {path}: {exc}", hint="prepare the shot again") from None


def preview_to_image(view_x: float, view_y: float, scene_size: tuple[int, int], image_size: tuple[int, int],
                     fit: str = "FIT", scale: tuple[float, float] = (1.0, 1.0),
                     offset: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """A preview point (scene pixels from the picture's centre, y up) -> the strip picture's normalised point
    (x right, y down, 0..1 inside the picture)."""
    sw, sh = (float(v) for v in scene_size)
    iw, ih = (float(v) for v in image_size)
    if fit == "FIT":
        fx = fy = min(sw / iw, sh / ih)
    elif fit == "FILL":
        fx = fy = max(sw / iw, sh / ih)
    elif fit == "STRETCH":
        fx, fy = sw / iw, sh / ih
    else:  # ORIGINAL
        fx = fy = 1.0
    fx, fy = fx * float(scale[0]), fy * float(scale[1])
    x = (view_x - float(offset[0])) / fx  # image pixels from its centre
    y = (view_y - float(offset[1])) / fy
    return x / iw + 0.5, 0.5 - y / ih


def shot_frame(span: StripSpan, scene_frame: float) -> int:
    """The file frame the strip shows at ``scene_frame`` (clamped to the file)."""
    return int(min(max(scene_frame - span.shot_start, 0), max(span.shot_frames - 1, 0)))


def pick_face(faces: dict[str, Any], span: StripSpan, scene_frame: float, x: float, y: float) -> int:
    """The face id at the normalised point ``(x, y)`` of the strip's picture on ``scene_frame``.

    Raises:
        FacePickError: no face there (the message lists the faces of that frame).
    """
    frame = shot_frame(span, scene_frame)
    found = protocol.face_at(faces, frame, x, y)
    if found is None:
        raise FacePickError(f"no face at ({x:.2f}, {y:.2f}) on frame {frame} of the shot",
                            hint=f"click inside a face: {protocol.describe_faces(faces)}")
    return found
