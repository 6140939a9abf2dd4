"""Face landmarks: detectors (MediaPipe FaceMesh -> iBUG 68, ground truth), per-clip tracks with gap
filling, and the stable square crop of READ Avatars §3.4.

Modules: :mod:`.detector`, :mod:`.mapping` (the 478 -> 68 table), :mod:`.track`, :mod:`.crop`,
:mod:`.overlay`, :mod:`.stage`. Names are loaded on first use so that importing
``core.landmarks.jobs`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **{n: "core.landmarks.crop" for n in ("CropConfig", "CropTransform", "stable_crop")},
    **{n: "core.landmarks.detector" for n in ("Detection", "GroundTruthDetector", "LandmarkDetector",
                                               "MediaPipeConfig", "MediaPipeDetector", "make_detector")},
    **{n: "core.landmarks.mapping" for n in ("IBUG68_GROUPS", "MEDIAPIPE_TO_IBUG68", "mediapipe_to_ibug68")},
    **{n: "core.landmarks.track" for n in ("LandmarkConfig", "LandmarkTrack", "NoFaceError", "TrackBuilder",
                                            "detect_clip", "fill_gaps")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.landmarks' has no attribute {name!r}")
