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

import argparse
import json
from pathlib import Path

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
from _common import emit, emodub, speech


def corner_measures(lmk68: np.ndarray) -> tuple[float, float]:
    """(corner_height, corner_lift) of one frame's (68, 2) pixel landmarks (module docstring)."""
    iod = float(np.linalg.norm(lmk68[45] - lmk68[36]))
    corners = float(lmk68[[48, 54], 1].mean())
    return (float(lmk68[30, 1]) - corners) / iod, (float(lmk68[[51, 57], 1].mean()) - corners) / iod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", default="synthetic")
    parser.add_argument("--shot", default="demo_shot")
    parser.add_argument("--renderer-model", required=True)
    parser.add_argument("--emotion", default="happy")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--bins", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    from core.eval.emotion_transfer import binned_projection
    from core.expression.emotions import EmotionCurves, emotion_index
    from core.io.audio import write_wav
    from core.io.video import iter_frames
    from core.landmarks.detector import make_detector
    from core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    out = (args.out or args.workspace.parent / f"corners-{args.renderer_model}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    fps = float(ws.shot(args.shot).get("fps") or 25.0)
    n = int(round(args.seconds * fps))
    write_wav(out / "line.wav", speech(args.seconds, seed=4243), 16000)
    curves = {"format": "emodub-emotion-curves", "version": 1, "fps": fps, "frame_start": 0,
              "per_frame": {args.emotion: np.linspace(0.0, 1.0, n).round(5).tolist()}}
    (out / "curves.json").write_text(json.dumps(curves))
    dub = emodub("dub", "-w", str(ws.root), "--actor", args.actor, "--shot", args.shot, "--audio",
                 str(out / "line.wav"), "--emotions", str(out / "curves.json"), "--renderer-model",
                 args.renderer_model, "--name", f"corners-{args.renderer_model}", "--out", str(out / "dubbed.mp4"),
                 "--device", args.device, log=log)
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
