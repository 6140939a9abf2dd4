"""Does a keyframed smile lift the rendered mouth corners? Landmarks detected on a dub with an emotion ramp.

    python bench/emotion_corners.py -w demo-out/workspace --actor synthetic --shot demo_shot --renderer-model triplane

A line of synthetic speech (``--seconds``) is dubbed onto ``--shot`` through the renderer model
``--renderer-model`` with ``--emotion`` ramping linearly from 0 to 1; MediaPipe FaceMesh
(:mod:`core.landmarks.detector`) finds the 68 landmarks on every frame of the dubbed video. Per frame:

* ``corner_height``: how far the mouth corners (48, 54) sit above the nose tip (30), in inter-ocular distances
  (36-45), so head size and motion cancel: ``(y_nose - mean y_corners) / IOD`` (image y points down: higher
  corners give a larger value);
* ``corner_lift``: the corners above the vertical middle of the lips (51, 57), same units (less sensitive to the
  jaw, more to detection noise on the lips).

The frames are grouped into ``--bins`` equal intensity ranges (:func:`core.eval.emotion_transfer.
binned_projection` on the scalar); figures (JSON lines ``emotion_corner_rho`` per measure): the Spearman rho
between bin intensity and mean value (goal >= 0.9 for ``corner_height``), with the bin means.
"""

from __future__ import annotations

import json

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
from _common import dub_emotion_ramp, emit, emotion_ramp_args


def corner_measures(lmk68: np.ndarray) -> tuple[float, float]:
    """(corner_height, corner_lift) of one frame's (68, 2) pixel landmarks (module docstring)."""
    iod = float(np.linalg.norm(lmk68[45] - lmk68[36]))
    corners = float(lmk68[[48, 54], 1].mean())
    return (float(lmk68[30, 1]) - corners) / iod, (float(lmk68[[51, 57], 1].mean()) - corners) / iod


def main() -> None:
    args = emotion_ramp_args(__doc__, seconds=8.0)
    from core.eval.emotion_transfer import binned_projection
    from core.expression.emotions import EmotionCurves, emotion_index
    from core.io.video import iter_frames
    from core.landmarks.detector import make_detector

    ws, out, curves, dub, _fps = dub_emotion_ramp(args, "corners", seed=4243)
    detector = make_detector("mediapipe")
    measures = []
    for frame in iter_frames(dub["video"]):
        found = detector.detect(frame)
        measures.append(corner_measures(found.lmk68) if found.found else (np.nan, np.nan))
    detector.close()
    values = np.asarray(measures, np.float64)
    intensity = EmotionCurves.from_json(curves).sample(len(values))[:, emotion_index(args.emotion)]
    ok = np.isfinite(values).all(1)
    config = {"renderer_model": args.renderer_model, "variant": dub["renderer"]["variant"], "emotion": args.emotion,
              "frames": len(values), "detected": int(ok.sum()), "bins": args.bins, "workspace": str(ws.root)}
    summary = {"config": config}
    for k, name in enumerate(("corner_height", "corner_lift")):
        binned = binned_projection(values[ok, k:k + 1], intensity[ok], np.ones(1), args.bins)
        summary[name] = binned
        emit("emotion_corner_rho", round(binned["rho"], 4), "", {**config, "measure": name, **binned})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))


if __name__ == "__main__":
    main()
