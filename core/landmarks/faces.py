"""Shots with more than one face: one landmark track per face, stable ids, and the user's choice of face.

The single-face path (one detector result per frame, ``landmarks.npz`` + ``crop.json`` in the shot folder) is
unchanged and stays the default. Ingest with ``max_faces > 1`` (``emodub ingest --shot S --max-faces 2``,
``shot prepare --max-faces 2``) detects up to that many faces per frame and:

1. **associates** each frame's detections with the faces seen so far (:class:`MultiTrackBuilder`): greedily by
   the overlap (IoU) of their landmark boxes, else by centre distance, with faces unseen for a while retired;
   detections that match no face start a new one;
2. keeps the faces detected on enough frames (``min_frames``), numbers them **0, 1, ... from left to right**
   (by the median centre of their boxes), and gap-fills each one's track like a single face's
   (:func:`core.landmarks.track.fill_gaps`: frames where that face is missing are interpolated or flagged);
3. writes ``faces.json`` (where each face is on each frame, normalised to the source picture: the contract of
   :func:`core.jobs.protocol.face_at`, which the app and the add-on use to turn a click into a face id) and, when
   there is more than one face, ``faces/<id>/landmarks.npz`` + ``crop.json`` per face instead of the shot-level
   files. With one face found, the shot-level files are written as on the single-face path.

Tracking and dubbing then name the face: ``emodub track --shot S --face 1`` tracks ``faces/1/`` and
``emodub dub --shot S --face 1`` dubs it; the other faces keep the plate's pixels. Without ``--face`` on a shot with
several faces both stop with a :class:`FaceChoiceError` that lists the ids and where they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .detector import Detection, LandmarkDetector, box_iou
from .track import LandmarkConfig, LandmarkTrack, NoFaceError, build_track

FACES_FILE = "faces.json"
FACES_DIR = "faces"


class FaceChoiceError(ValueError):
    """The shot has several faces and none (or an unknown one) was chosen; ``code`` is the protocol's."""

    def __init__(self, message: str, hint: str = "", code: str = "face_choice") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def detect_all(detector: LandmarkDetector, frame: np.ndarray) -> list[Detection]:
    """Every face the detector finds in ``frame`` (a single-face detector: its one detection, if any)."""
    many = getattr(detector, "detect_all", None)
    found = many(frame) if callable(many) else [detector.detect(frame)]
    return [d for d in found if d.found]


def _box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


class MultiTrackBuilder:
    """Per-face landmark tracks of one clip from a detector that returns several faces per frame.

    Args:
        detector: a detector (``detect_all`` when it has one; see :func:`detect_all`).
        config: the gap and confidence settings every face's track uses.
        max_faces: faces kept per frame (the most confident ones).
        max_lost: frames a face may go unseen before a detection there counts as a new face.
        min_frames: a face detected on fewer frames than this (default: 5 % of the clip, at least 3) is dropped
            as a false detection.
    """

    def __init__(self, detector: LandmarkDetector, config: LandmarkConfig | None = None, *, max_faces: int = 2,
                 max_lost: int = 50, min_frames: int | None = None, reset: bool = True) -> None:
        self.detector = detector
        self.config = config or LandmarkConfig()
        self.max_faces = int(max_faces)
        self.max_lost = int(max_lost)
        self.min_frames = min_frames
        if reset:
            detector.reset()
        self.image_size: tuple[int, int] | None = None
        self._n = 0
        # per face: {frame: Detection}, last box, last frame seen
        self._faces: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return self._n

    def add(self, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        if self.image_size is None:
            self.image_size = (width, height)
        dets = [d for d in detect_all(self.detector, frame) if d.confidence >= self.config.min_confidence]
        dets = sorted(dets, key=lambda d: -d.confidence)[:self.max_faces]
        boxes = [_box(np.asarray(d.lmk68, np.float64)) for d in dets]
        live = [k for k, f in enumerate(self._faces) if self._n - f["last"] <= self.max_lost]
        pairs = []
        for i, box in enumerate(boxes):
            for k in live:
                other = self._faces[k]["box"]
                overlap = box_iou(box, other)
                size = max(other[2] - other[0], other[3] - other[1], 1e-6)
                near = np.hypot(*((box[:2] + box[2:]) / 2 - (other[:2] + other[2:]) / 2)) / size
                if overlap >= 0.1 or near < 0.5:
                    pairs.append((overlap - near, i, k))
        used_d: set[int] = set()
        used_f: set[int] = set()
        for _, i, k in sorted(pairs, reverse=True):
            if i in used_d or k in used_f:
                continue
            used_d.add(i)
            used_f.add(k)
            self._faces[k].update(box=boxes[i], last=self._n)
            self._faces[k]["dets"][self._n] = dets[i]
        for i, det in enumerate(dets):
            if i not in used_d:
                self._faces.append({"box": boxes[i], "last": self._n, "dets": {self._n: det}})
        self._n += 1

    def finish(self) -> list[LandmarkTrack]:
        """One gap-filled :class:`LandmarkTrack` per face, ids 0, 1... from left to right.

        Raises:
            NoFaceError: no face was found on enough frames.
        """
        n = self._n
        if n == 0:
            raise ValueError("the clip has no frames")
        least = self.min_frames if self.min_frames is not None else max(3, int(np.ceil(0.05 * n)))
        kept = [f for f in self._faces if len(f["dets"]) >= min(least, n)]
        if not kept:
            raise NoFaceError(f"no face was found on at least {least} of the {n} frames",
                              hint="check that the video shows a face (frontal to three-quarter view, not tiny)")

        def centre(face: dict[str, Any]) -> float:
            return float(np.median([(_box(d.lmk68)[0] + _box(d.lmk68)[2]) / 2 for d in face["dets"].values()]))

        tracks = []
        for face in sorted(kept, key=centre):
            dets: Sequence[Detection | None] = [face["dets"].get(i) for i in range(n)]
            lmk = [np.asarray(d.lmk68, np.float32) if d is not None else np.full((68, 2), np.nan, np.float32)
                   for d in dets]
            conf = [float(d.confidence) if d is not None else 0.0 for d in dets]
            dense = [d.lmk_dense if d is not None else None for d in dets]
            tracks.append(build_track(lmk, conf, dense, self.image_size or (0, 0), self.config,
                                      getattr(self.detector, "name", type(self.detector).__name__)))
        return tracks


def faces_document(tracks: Sequence[LandmarkTrack], record: dict[str, Any], source_size: tuple[int, int],
                   pad: float = 0.2, pad_top: float = 0.3) -> dict[str, Any]:
    """The ``faces.json`` document of per-face tracks (see :func:`core.jobs.protocol.face_at`).

    Boxes are the padded 68-point boxes (the crop's padding, forehead included) of the frames where the face is
    usable (detected or interpolated), mapped from the working copy to the source (``source_region`` /
    ``source_scale`` of the ingest ``record``) and normalised by ``source_size``.
    """
    from core.ingest.ingest import working_to_source

    from .crop import padded_boxes

    width, height = (float(v) for v in source_size)
    norm = np.array([width, height, width, height])
    faces, boxes = [], {}
    for face_id, track in enumerate(tracks):
        padded = padded_boxes(track.lmk68, pad, pad_top)
        corners = working_to_source(padded.reshape(-1, 2, 2), record).reshape(-1, 4) + [0.5, 0.5, 0.5, 0.5]
        rel = np.clip(corners / norm, 0.0, 1.0)
        usable = track.usable
        per_frame = [[round(float(v), 5) for v in rel[i]] if usable[i] else None for i in range(len(track))]
        frames = np.flatnonzero(usable)
        union = ([round(float(rel[usable, 0].min()), 5), round(float(rel[usable, 1].min()), 5),
                  round(float(rel[usable, 2].max()), 5), round(float(rel[usable, 3].max()), 5)]
                 if frames.size else [0.0, 0.0, 0.0, 0.0])
        faces.append({"id": face_id, "first": int(frames[0]) if frames.size else None,
                      "last": int(frames[-1]) if frames.size else None, "detected": int(track.detected.sum()),
                      "box": union})
        boxes[str(face_id)] = per_frame
    return {"format": "emodub-faces", "version": 1, "frames": len(tracks[0]) if tracks else 0,
            "width": int(width), "height": int(height), "faces": faces, "boxes": boxes}


def read_faces(shot_dir: Path) -> dict[str, Any] | None:
    """The shot's ``faces.json``, or ``None`` (a single-face shot ingested the default way)."""
    path = Path(shot_dir) / FACES_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def face_ids(doc: dict[str, Any] | None) -> list[int]:
    return [int(f["id"]) for f in (doc or {}).get("faces") or []]


def face_folder(shot_dir: Path, face: int | None) -> Path:
    """The folder holding the tracked face to dub: the shot folder (one face) or ``faces/<id>/``.

    Raises:
        FaceChoiceError: the shot has several faces and ``face`` is ``None``, or it has no face ``face``.
    """
    from core.jobs.protocol import describe_faces

    shot_dir = Path(shot_dir)
    doc = read_faces(shot_dir)
    ids = face_ids(doc) or [0]
    where = describe_faces(doc) if doc else "face 0: the only face"
    if face is None:
        if len(ids) > 1:
            raise FaceChoiceError(f"shot {shot_dir.name!r} shows {len(ids)} faces ({where}); choose the one to "
                                  "dub", hint="give --face ID (in the app and in Blender: Pick Face and click it "
                                              "on a frame)")
        return shot_dir
    if face not in ids:
        raise FaceChoiceError(f"shot {shot_dir.name!r} has no face {face} ({where})",
                              hint=f"give one of --face {', '.join(map(str, ids))}")
    return shot_dir if len(ids) == 1 else shot_dir / FACES_DIR / str(face)


def media_dir(folder: Path) -> Path:
    """Where a tracked folder's ``video.mp4``/``probe.json`` are: the folder itself, or the shot of a face folder."""
    folder = Path(folder)
    if not (folder / "video.mp4").exists() and folder.parent.name == FACES_DIR:
        return folder.parent.parent
    return folder


def face_at_working(doc: dict[str, Any], record: dict[str, Any], frame: int, u: float, v: float) -> int | None:
    """The face id under a click on the shot's *working copy* (``video.mp4``, what the app shows), at ``(u, v)``
    normalised to that picture (0..1, origin top-left), on ``frame``: the point is mapped to the source picture
    (``source_region``/``source_scale`` of the shot ``record``: a 4K plate's working copy is a face region or a
    downscale) and hit-tested with :func:`core.jobs.protocol.face_at`. Qt- and bpy-free."""
    from core.ingest.ingest import working_to_source
    from core.jobs.protocol import face_at

    width, height = float(record.get("width") or 1), float(record.get("height") or 1)
    source = working_to_source(np.array([u * width - 0.5, v * height - 0.5]), record)
    sw, sh = (float(x) for x in (record.get("source_size") or (width, height)))
    return face_at(doc, frame, float((source[0] + 0.5) / sw), float((source[1] + 0.5) / sh))
