"""Lip sync across voices without rendering: each a2e's posed mouth opening against each voice's loudness.

    .venv/bin/python bench/voice_posed.py -w /tmp/compare-office/workspace --actor actor --a2e-models a2e,a2e_sp

For every voice (the six of ``bench/voice_dubs.py``: German, French and English radio speech, three LibriSpeech
readers) and every a2e model: the model predicts the face's expression and jaw from the voice's first
``--seconds``; the actor's tracked face model is posed with them (the first tracked clip's mean head pose and
shape), and the lip-sync proxy (:func:`core.eval.lipsync.lipsync_proxy`) correlates that inner-lip opening with the
voice's envelope: peak r over offsets of +-10 frames and its offset. The same proxy as ``voice_dubs.py`` measures
on rendered dubs, minutes faster, without the renderer's share. No ground truth exists for other speakers on this
face; ``emodub eval a2e`` has the ground-truth figures on the actor's own voice.

Prints one JSON line per model and voice, then a table and a ``summary`` line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import emit
from voice_dubs import DEFAULT_VOICES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", required=True)
    parser.add_argument("--a2e-models", default="a2e", help="comma-separated a2e model names")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()

    from core.audio.io import load_audio
    from core.eval.lipsync import audio_envelope, lipsync_proxy
    from core.expression.a2e import A2EModel
    from core.expression.a2e_eval import posed_mouth_opening, with_prediction
    from core.morphable.data import FaceParams
    from core.tracking.result import TrackedClip
    from core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    models = [m.strip() for m in args.a2e_models.split(",") if m.strip()]
    folders = sorted(p.parent.parent for p in (ws.actor_dir(args.actor) / "clips").glob("*/tracking/params.npz"))
    if not folders:
        raise SystemExit(f"actor {args.actor!r} has no tracked clip to take a head from")
    clip_name = folders[0].name
    tracked = TrackedClip.load(folders[0])
    face_model = tracked.face_model()
    rest = {k: v.mean(0, keepdims=True) for k, v in tracked.params.to_numpy().items()}  # one still head
    config = {"workspace": str(args.workspace), "actor": args.actor, "pose_from": clip_name, "seconds": args.seconds}
    rows: dict[str, dict[str, str]] = {}
    peaks: dict[str, list[float]] = {m: [] for m in models}
    voices = {}  # each voice read once for every model (16 kHz, the a2e's analysis rate; predict resamples)
    for voice, path in DEFAULT_VOICES.items():
        wave, sr = load_audio(path, 16000)
        voices[voice] = (wave[: int(args.seconds * sr)], sr)
    for model_name in models:
        model = A2EModel.load(ws.model_dir(args.actor, model_name))
        fps = model.fps
        for voice, path in DEFAULT_VOICES.items():
            wave, sr = voices[voice]
            prediction = model.predict(wave, sr)
            n = prediction.expression.shape[0]
            still = FaceParams.from_numpy({k: np.repeat(v, n, 0) for k, v in rest.items()})
            opening = posed_mouth_opening(face_model, with_prediction(still, prediction.expression,
                                                                      prediction.jaw_pose))
            sync = lipsync_proxy(opening, audio_envelope(wave, sr, fps, n))
            peak, offset = float(sync["peak_corr"]), int(sync["offset_frames"])
            peaks[model_name].append(peak)
            rows.setdefault(voice, {})[model_name] = f"{peak:.2f} ({offset:+d})"
            emit(f"posed_lipsync_{voice}_{model_name}", {"peak_r": round(peak, 3), "offset_frames": offset,
                                                          "r_at_0": round(float(sync["corr_at_zero"]), 3)},
                 "r / frames", {**config, "voice": str(path), "a2e_model": model_name, "feature": model.config.feature})
    lines = ["| voice | " + " | ".join(f"{m}: peak r (offset)" for m in models) + " |",
             "| --- | " + " | ".join("---" for _ in models) + " |"]
    lines += [f"| {voice} | " + " | ".join(cells[m] for m in models) + " |" for voice, cells in rows.items()]
    lines.append("| mean | " + " | ".join(f"{np.mean(peaks[m]):.2f}" for m in models) + " |")
    print("\n".join(lines))
    emit("summary", {m: round(float(np.mean(p)), 3) for m, p in peaks.items()}, "mean peak r", config)
    print(json.dumps({"table": lines}))


if __name__ == "__main__":
    main()
