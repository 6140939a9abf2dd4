"""Does a keyframed emotion reach the picture? Dub with an emotion ramp, track the dub again, measure.

    .venv/bin/python bench/emotion_retrack.py -w demo-out/workspace --renderer-model lipnerf --emotion happy

On an actor's workspace (the demo's, or any trained actor): a line of synthetic speech (``--seconds``) is dubbed
onto ``--shot`` with ``--emotion`` ramping linearly from 0 to 1 over the line, through the renderer model
``--renderer-model``; the dubbed video is prepared as a new shot (ingest, MediaPipe landmarks, tracking) and its
re-tracked expression is projected on the emotion's direction in the face model's expression space
(:mod:`core.eval.emotion_transfer`). Figures (JSON lines):

* ``emotion_rho_retracked``: Spearman rho between intensity and the mean projection of the re-tracked
  expression over ``--bins`` intensity bins (goal >= 0.9), with the bin means and the cosine of the change;
* ``emotion_rho_input``: the same on the parameters the renderer was given (what the a2e and the emotion prior
  asked for): how much of the ramp reached the renderer's input at all;
* ``emotion_rho_retracked_actor`` (when the actor has takes labelled with ``--emotion`` and neutral ones): the
  same on the actor's *own* direction, the mean tracked expression of its ``--emotion`` takes minus that of its
  neutral takes, with the cosine of the dub's change with it (beside the generic direction's cosine above).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import _common  # noqa: F401 - puts the project on sys.path
from _common import dub_emotion_ramp, emit, emodub, emotion_ramp_args


def main() -> None:
    args = emotion_ramp_args(__doc__, seconds=6.0)
    from core.eval.emotion_transfer import binned_projection, emotion_direction
    from core.expression.emotions import EmotionCurves
    from core.morphable.data import FaceParams
    from core.tracking.result import TrackedClip

    ws, out, curves, dub, fps = dub_emotion_ramp(args, "emotion", seed=4242)
    log = out / "commands.log"
    # The shot is named after the dub's bytes: a new dub (another line, length or model) is tracked anew, never
    # measured on the tracking of an earlier dub.
    digest = hashlib.sha256((out / "dubbed.mp4").read_bytes()).hexdigest()[:10]
    shot = f"retrack-{args.renderer_model}-{digest}"
    if not (ws.shot_dir(shot) / "tracking" / "params.npz").exists():
        emodub("shot", "prepare", "-w", str(ws.root), str(out / "dubbed.mp4"), "--shot", shot, "--fps", str(fps),
               "--device", args.device, log=log)
    tracked = TrackedClip.load(ws.shot_dir(shot))
    model = tracked.face_model()
    direction = emotion_direction(model.expr_names, args.emotion)
    if direction is None:
        sys.exit(f"the face model {model.name} has no {args.emotion} direction (no FACS blendshapes)")
    from core.expression.emotions import emotion_index

    intensity = EmotionCurves.from_json(curves).sample(tracked.n_frames)[:, emotion_index(args.emotion)]
    config = {"renderer_model": args.renderer_model, "emotion": args.emotion, "frames": tracked.n_frames,
              "bins": args.bins, "workspace": str(ws.root)}
    retracked = binned_projection(tracked.params.expression.numpy(), intensity, direction, args.bins)
    emit("emotion_rho_retracked", round(retracked["rho"], 4), "", {**config, **retracked})
    given = FaceParams.load(Path(dub["report"]).parent / "params.npz").expression.numpy()[: tracked.n_frames]
    asked = binned_projection(given, intensity[: len(given)], direction, args.bins)
    emit("emotion_rho_input", round(asked["rho"], 4), "", {**config, **asked})
    summary = {"config": config, "retracked": retracked, "input": asked}
    own = actor_direction(ws, args.actor, args.emotion)
    if own is not None:
        columns = min(len(own), tracked.params.expression.shape[1])
        mine = binned_projection(tracked.params.expression.numpy()[:, :columns], intensity, own[:columns], args.bins)
        emit("emotion_rho_retracked_actor", round(mine["rho"], 4), "", {**config, **mine})
        summary["retracked_actor"] = mine
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


def actor_direction(ws: object, actor: str, emotion: str) -> object:
    """(E,) the actor's own direction of ``emotion``: mean tracked expression of the takes labelled with it minus
    that of the neutral takes; ``None`` when either is missing."""
    import numpy as np

    from core.renderers.data import tracked_folders
    from core.tracking.result import TrackedClip

    with_emotion, neutral = [], []
    for _, folder, record in tracked_folders(ws, actor):
        label = record.get("emotion") or {}
        mean = TrackedClip.load(folder).params.expression.numpy().mean(0)
        if float(label.get(emotion, 0.0)) > 0.5:
            with_emotion.append(mean)
        elif not any(float(v) > 0 for v in label.values()):
            neutral.append(mean)
    if not with_emotion or not neutral:
        return None
    return np.mean(with_emotion, 0) - np.mean(neutral, 0)


if __name__ == "__main__":
    main()
