"""Face tracking: fit the morphable model to a clip (READ Avatars §3.1, VHAP-style declared stages).

* :mod:`.config` — :class:`StageSpec` (variables, energies and weights, iterations, frames) and
  :class:`TrackerConfig`; :func:`default_stages`: rigid -> landmarks -> texture -> photometric.
* :mod:`.energies` — named :class:`Energy` objects: landmarks (robust reprojection), eyelids (blinks),
  photometric (L1 through the differentiable rasterizer, SH light, UV albedo), priors, smoothness.
* :mod:`.tracker` — :class:`Tracker`: runs the stages batched over frames, warm-started, checkpointed
  (resumable) and reporting progress.
* :mod:`.pipeline` — :func:`track_folder`: a clip/shot folder -> ``tracking/`` outputs.
* :mod:`.quality`, :mod:`.evaluate`, :mod:`.overlay` — the quality record, the comparison with synthetic
  ground truth, the overlay video; :mod:`.synthetic` — small rendered clips for tests and benchmarks.
* :mod:`.jobs` — the ``track`` and ``eval.tracking`` job kinds.

Names are loaded on first use so that importing ``core.tracking.jobs`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **{n: "core.tracking.config" for n in ("StageSpec", "TrackerConfig", "LandmarkWeights", "default_stages")},
    **{n: "core.tracking.energies" for n in ("Energy", "build_energies")},
    **{n: "core.tracking.tracker" for n in ("Tracker", "TrackingResult")},
    **{n: "core.tracking.pipeline" for n in ("TrackOutputs", "track_folder", "read_identity")},
    **{n: "core.tracking.evaluate" for n in ("evaluate_tracking", "compare_with_ground_truth")},
    **{n: "core.tracking.quality" for n in ("quality_record",)},
    **{n: "core.tracking.data" for n in ("ClipTargets", "load_targets")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.tracking' has no attribute {name!r}")
