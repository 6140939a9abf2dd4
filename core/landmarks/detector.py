"""Face landmark detectors behind one interface.

A :class:`LandmarkDetector` turns frames of one clip, in order, into :class:`Detection` s: the 68 iBUG
points in pixels, a confidence in ``[0, 1]`` and, when the detector has them, dense points. Two
implementations:

* :class:`MediaPipeDetector` — MediaPipe FaceMesh, the legacy "solutions" API of mediapipe 0.10.21,
  with refined landmarks (478 points: 468 mesh vertices + 10 iris points), mapped to iBUG 68 by
  :mod:`core.landmarks.mapping`. The models (``face_landmark_with_attention.tflite``,
  ``face_detection_short_range.tflite``) ship inside the mediapipe wheel: nothing is downloaded.
* :class:`GroundTruthDetector` — replays known landmarks (the synthetic actor's), optionally with
  Gaussian pixel noise, so every later stage can be tested against ground truth.

Confidence of a MediaPipe detection
-----------------------------------
The legacy FaceMesh solution reports no score: a face is either returned (its internal face-presence
score passed ``min_tracking_confidence``) or not. So the confidence is built from two measurable
things::

    confidence = presence * in_frame
    presence   = 0.5 + 0.5 * s     s = score of MediaPipe's BlazeFace face detector on the same frame
                                       (the best detection whose box overlaps the mesh's box, IoU >= 0.3;
                                       0 when none does). Without verification, presence = 1.
    in_frame   = fraction of the 68 points inside the image

A mesh the face detector confirms with score 0.95, fully in the picture, gets 0.975; one the detector
does not see (profile view, heavy blur, a false track) gets at most 0.5; a face half out of the
picture loses half. :func:`core.landmarks.track.detect_clip` treats frames under its
``min_confidence`` (0.3) as missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .mapping import mediapipe_to_ibug68


@dataclass
class Detection:
    """One frame's result.

    Attributes:
        lmk68: (68, 2) float32 pixel coordinates (x right, y down, pixel centres at integers), or
            ``None`` when no face was found.
        confidence: in [0, 1]; 0 when no face was found.
        lmk_dense: optional (K, 2) float32 dense points in pixels (MediaPipe: K = 478).
    """

    lmk68: np.ndarray | None
    confidence: float = 0.0
    lmk_dense: np.ndarray | None = None

    @property
    def found(self) -> bool:
        return self.lmk68 is not None

    @classmethod
    def none(cls) -> Detection:
        return cls(None, 0.0, None)


@runtime_checkable
class LandmarkDetector(Protocol):
    """Detects landmarks in the frames of one clip, given in order (detectors may track over time)."""

    name: str
    #: points in :attr:`Detection.lmk_dense` (0 when the detector has none)
    dense_points: int

    def detect(self, frame: np.ndarray) -> Detection:
        """Landmarks of the next frame, (H, W, 3) uint8 RGB."""
        ...

    def reset(self) -> None:
        """Forget temporal state: the next frame starts a new clip."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


def detect_many(detector: LandmarkDetector, frames: Iterable[np.ndarray]) -> Iterator[Detection]:
    """Run ``detector`` over ``frames`` lazily (one result per frame, in order)."""
    for frame in frames:
        yield detector.detect(frame)


def _check_frame(frame: np.ndarray) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {arr.shape} {arr.dtype}")
    return np.ascontiguousarray(arr)


def in_frame_fraction(points: np.ndarray, width: int, height: int) -> float:
    """Fraction of ``points`` (K, 2) inside the image (pixel centres at integers, so the image spans
    ``[-0.5, width - 0.5] x [-0.5, height - 0.5]``)."""
    x, y = points[:, 0], points[:, 1]
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    return float(inside.mean())


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boxes (x0, y0, x1, y1)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class MediaPipeConfig:
    """Settings of :class:`MediaPipeDetector`.

    Attributes:
        refine_landmarks: 478 points with iris and refined lips/eyes (the attention model).
        min_detection_confidence: BlazeFace score needed to start tracking a face.
        min_tracking_confidence: FaceMesh face-presence score needed to keep tracking (below it,
            MediaPipe re-detects on the next frame).
        static_image_mode: detect afresh on every frame (no temporal tracking; jitterier, slower).
        verify_with_face_detector: run BlazeFace on every frame for the ``presence`` term of the
            confidence (about 3 ms per frame on one CPU core).
        face_detector_model: ``"short"`` (faces within ~2 m, the usual dubbing close-up) or ``"full"``
            (up to ~5 m: wide shots; slower).
        max_num_faces: faces FaceMesh tracks per frame (1: the single-face path; more for
            :meth:`MediaPipeDetector.detect_all`, used by ingest's ``max_faces``).
    """

    refine_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    static_image_mode: bool = False
    verify_with_face_detector: bool = True
    face_detector_model: str = "short"
    max_num_faces: int = 1


def _import_mediapipe():  # type: ignore[no-untyped-def]
    try:
        import mediapipe as mp
    except ImportError:
        raise ImportError("the landmark detector needs mediapipe: pip install mediapipe==0.10.21 "
                          "(its face models ship inside the wheel; nothing is downloaded)") from None
    if not hasattr(mp, "solutions"):
        raise ImportError(f"mediapipe {getattr(mp, '__version__', '?')} has no legacy 'solutions' API; "
                          "install mediapipe==0.10.21")
    return mp


class MediaPipeDetector:
    """MediaPipe FaceMesh (legacy solution, one face, 478 refined landmarks) mapped to iBUG 68."""

    name = "mediapipe"

    def __init__(self, config: MediaPipeConfig | None = None) -> None:
        self.config = config or MediaPipeConfig()
        if self.config.face_detector_model not in ("short", "full"):
            raise ValueError(f"face_detector_model must be 'short' or 'full', got "
                             f"{self.config.face_detector_model!r}")
        self.dense_points = 478 if self.config.refine_landmarks else 468
        self._mp = _import_mediapipe()
        self._mesh = None
        self._face_detector = None
        self.reset()

    def reset(self) -> None:
        self.close()
        cfg = self.config
        self._mesh = self._mp.solutions.face_mesh.FaceMesh(
            static_image_mode=cfg.static_image_mode, max_num_faces=max(1, int(cfg.max_num_faces)),
            refine_landmarks=cfg.refine_landmarks,
            min_detection_confidence=cfg.min_detection_confidence,
            min_tracking_confidence=cfg.min_tracking_confidence)
        if cfg.verify_with_face_detector:
            self._face_detector = self._mp.solutions.face_detection.FaceDetection(
                model_selection=0 if cfg.face_detector_model == "short" else 1, min_detection_confidence=0.1)

    def close(self) -> None:
        for solution in (self._mesh, self._face_detector):
            if solution is not None:
                solution.close()
        self._mesh = self._face_detector = None

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _presences(self, frame: np.ndarray, mesh_boxes: list[np.ndarray]) -> list[float]:
        if self._face_detector is None:
            return [1.0] * len(mesh_boxes)
        result = self._face_detector.process(frame)
        height, width = frame.shape[:2]
        boxes = []
        for det in result.detections or ():
            rel = det.location_data.relative_bounding_box
            boxes.append((np.array([rel.xmin * width, rel.ymin * height, (rel.xmin + rel.width) * width,
                                    (rel.ymin + rel.height) * height]), float(det.score[0])))
        out = []
        for mesh_box in mesh_boxes:
            best = max([score for box, score in boxes if box_iou(box, mesh_box) >= 0.3], default=0.0)
            out.append(0.5 + 0.5 * best)
        return out

    def detect_all(self, frame: np.ndarray) -> list[Detection]:
        """Every face FaceMesh tracks in ``frame`` (up to ``max_num_faces``), in MediaPipe's order."""
        frame = _check_frame(frame)
        if self._mesh is None:
            self.reset()
        result = self._mesh.process(frame)  # type: ignore[union-attr]
        if not result.multi_face_landmarks:
            return []
        height, width = frame.shape[:2]
        found = []
        for face in result.multi_face_landmarks:
            # MediaPipe gives x, y normalised to the image; pixel = normalised * size (pixel centres at +0.5
            # in MediaPipe's convention, shifted so pixel centres sit at integers as everywhere in emodub)
            norm = np.array([(p.x, p.y) for p in face.landmark], np.float32)
            dense = norm * np.array([width, height], np.float32) - 0.5
            found.append((mediapipe_to_ibug68(dense), dense))
        # the 68-point box lacks the forehead; BlazeFace's box spans brows to chin, so they overlap well
        presences = self._presences(frame, [np.concatenate([lmk.min(axis=0), lmk.max(axis=0)]) for lmk, _ in found])
        return [Detection(lmk68, float(presence * in_frame_fraction(lmk68, width, height)), dense)
                for (lmk68, dense), presence in zip(found, presences, strict=True)]

    def detect(self, frame: np.ndarray) -> Detection:
        found = self.detect_all(frame)
        return found[0] if found else Detection.none()


class GroundTruthDetector:
    """Replays known landmarks, one row per frame, as detections (for the synthetic actor).

    Args:
        landmarks: (N, 68, 2) pixel coordinates; a frame whose points are all NaN has no face.
        noise_px: standard deviation of Gaussian noise added to every coordinate, in pixels.
        seed: noise seed (the same seed gives the same noise after :meth:`reset`).
        confidence: confidence reported for frames with a face.
        dense: optional (N, K, 2) dense points to pass along (noise is added to them too).
    """

    name = "ground_truth"

    def __init__(self, landmarks: np.ndarray, noise_px: float = 0.0, seed: int = 0, confidence: float = 1.0,
                 dense: np.ndarray | None = None) -> None:
        self.landmarks = np.asarray(landmarks, np.float32)
        if self.landmarks.ndim != 3 or self.landmarks.shape[1:] != (68, 2):
            raise ValueError(f"ground-truth landmarks must be (N, 68, 2), got {self.landmarks.shape}")
        if noise_px < 0:
            raise ValueError(f"noise_px must be >= 0, got {noise_px}")
        self.noise_px = float(noise_px)
        self.seed = seed
        self.confidence = float(confidence)
        self.dense = None if dense is None else np.asarray(dense, np.float32)
        self.dense_points = 0 if self.dense is None else int(self.dense.shape[1])
        self.reset()

    def __len__(self) -> int:
        return int(self.landmarks.shape[0])

    def reset(self) -> None:
        self._index = 0
        self._rng = np.random.default_rng(self.seed)

    def close(self) -> None:
        pass

    def detect(self, frame: np.ndarray) -> Detection:
        i = self._index
        if i >= len(self):
            raise IndexError(f"GroundTruthDetector has landmarks for {len(self)} frames; frame {i} was "
                             "asked for")
        self._index += 1
        points = self.landmarks[i]
        noise = self._noise(points.shape)
        if not np.all(np.isfinite(points)):
            return Detection.none()
        dense = None if self.dense is None else self.dense[i] + self._noise(self.dense[i].shape)
        return Detection(points + noise, self.confidence, dense)

    def _noise(self, shape: tuple[int, ...]) -> np.ndarray | float:
        if not self.noise_px:
            return 0.0
        return self._rng.normal(0.0, self.noise_px, shape).astype(np.float32)


class MultiGroundTruthDetector:
    """Replays the known landmarks of several faces per frame (for synthetic multi-face shots).

    Args:
        faces: one (N, 68, 2) array per face; a frame whose points are NaN for a face does not show it.
        confidence: confidence reported for each face found.
    """

    name = "ground_truth"
    dense_points = 0

    def __init__(self, faces: list[np.ndarray], confidence: float = 1.0) -> None:
        self.faces = [np.asarray(f, np.float32) for f in faces]
        if not self.faces or any(f.ndim != 3 or f.shape[1:] != (68, 2) for f in self.faces):
            raise ValueError("faces must be a non-empty list of (N, 68, 2) arrays")
        self.confidence = float(confidence)
        self.reset()

    def reset(self) -> None:
        self._index = 0

    def close(self) -> None:
        pass

    def detect_all(self, frame: np.ndarray) -> list[Detection]:
        i = self._index
        self._index += 1
        return [Detection(face[i].copy(), self.confidence) for face in self.faces
                if i < len(face) and np.all(np.isfinite(face[i]))]

    def detect(self, frame: np.ndarray) -> Detection:
        found = self.detect_all(frame)
        return found[0] if found else Detection.none()


def make_detector(name: str = "mediapipe", **options: object) -> LandmarkDetector:
    """A detector by name: ``"mediapipe"`` (options: fields of :class:`MediaPipeConfig`)."""
    if name == "mediapipe":
        return MediaPipeDetector(MediaPipeConfig(**options))  # type: ignore[arg-type]
    raise ValueError(f"unknown landmark detector {name!r}; known: mediapipe (the synthetic actor's ground "
                     "truth is passed in code as GroundTruthDetector)")
