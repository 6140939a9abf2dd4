"""The tri-plane NeRF's landmark transformer against the a2e, on synthetic sentences no model has heard.

    python bench/triplane_landmarks.py -w demo-out/workspace --actor synthetic --model triplane --size 256

For ``--sentences`` new sentences of the synthetic actor (seeds the corpus never used), each spoken with every
emotion of ``--emotions``, the exact per-frame parameters are known (:func:`core.synthetic.corpus.
synthesize_clip`). Landmarks are compared in pixels of a ``--size`` px crop: the camera of the actor's first
tracked clip, the head held in that clip's first tracked pose and identity, so only what speech and emotion do
to the face differs between the three:

* ground truth: the sentence's exact expression and jaw (and blinks) on the tracked face model;
* ``transformer``: the model's dynamic landmark transformer from the sentence's audio, emotion label and true
  eye state (canonical landmarks, placed with the head pose and projected);
* ``a2e``: the actor's audio-to-expression model from the same audio and emotion, composed as the dub composes it
  (the shot's pose, eyes and blinks; the a2e's expression and jaw; the emotion prior for emotions the footage
  never showed), through the face model.

Figures (JSON lines ``landmark_error_px``, one per source and region): the mean distance in pixels per landmark
and frame over ``all`` 68 points, the ``mouth`` (48-67), the ``jaw`` (0-16) and ``no_eyes`` (the 56 the field is
conditioned on); ``config`` has the frames and the per-emotion means.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
import torch
from _common import emit

REGIONS = {"all": list(range(68)), "mouth": list(range(48, 68)), "jaw": list(range(17)),
           "no_eyes": [i for i in range(68) if not 36 <= i < 48]}


def held_out_sentences(n: int, emotions: list[str], fps: float, seed: int, words: int) -> list[dict[str, Any]]:
    """``n`` new sentences x ``emotions``: the synthetic actor's wave and exact parameters."""
    from core.expression.emotions import emotion_vector
    from core.synthetic.corpus import synthesize_clip
    from core.synthetic.phonemes import random_sentence

    rng = np.random.default_rng(seed)
    out = []
    for s in range(n):
        sentence = random_sentence(rng, words)
        for emotion in emotions:
            clip = synthesize_clip(sentence, emotion_vector(emotion), fps, np.random.default_rng([seed, s, len(out)]))
            out.append({**clip, "emotion": emotion, "sentence": s})
    return out


def ground_truth_params(clip: dict[str, Any], reference: Any, expr_names: list[str]) -> Any:
    """The sentence's expression and jaw (by expression name) on ``reference`` (one frame: identity and pose)."""
    from core.morphable.data import PROCEDURAL_EXPRESSIONS

    n = int(clip["n_frames"])
    params = reference.map(lambda x: x.expand(n, *x.shape[1:]).clone())
    params.expression.zero_()
    for j, name in enumerate(PROCEDURAL_EXPRESSIONS):
        if name in expr_names:
            params.expression[:, expr_names.index(name)] = torch.from_numpy(clip["expression"][:, j])
    params.jaw_pose.copy_(torch.from_numpy(clip["jaw_pose"]))
    return params


def project(model: Any, params: Any, camera: Any) -> np.ndarray:
    """(N, 68, 2) pixel positions of the params' landmarks."""
    xy, _ = camera.expand(params.batch_size).project(model(params).landmarks)
    return xy.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", default="synthetic")
    parser.add_argument("--model", default="triplane", help="the triplane renderer model")
    parser.add_argument("--a2e", default="a2e", help="the actor's audio-to-expression model")
    parser.add_argument("--sentences", type=int, default=6)
    parser.add_argument("--words", type=int, default=6)
    parser.add_argument("--emotions", default="neutral,happy,sad,angry,surprised")
    parser.add_argument("--size", type=int, default=256, help="crop side the pixel errors are measured at")
    parser.add_argument("--seed", type=int, default=424242)
    parser.add_argument("--out", type=Path, default=None, help="write summary.json here")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    from core.dub.pipeline import compose_params
    from core.expression.a2e import A2EModel
    from core.expression.emotion_prior import (
        EmotionPrior,
        actor_emotion_coverage,
        apply_prior,
        network_gate,
        route_emotions,
    )
    from core.expression.emotions import emotion_vector
    from core.renderers.data import assemble_batch, audio_features, tracked_folders
    from core.renderers.nerf.rays import from_canonical, head_frames
    from core.renderers.registry import load
    from core.tracking.result import TrackedClip
    from core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    renderer = load(ws.model_dir(args.actor, args.model))
    if renderer.variant != "triplane":
        raise SystemExit(f"{args.model} is a {renderer.variant} renderer, not a triplane one")
    a2e = A2EModel.load(ws.model_dir(args.actor, args.a2e), "cpu")
    _, folder, _ = tracked_folders(ws, args.actor)[0]
    clip = TrackedClip.load(folder)
    model = clip.face_model("cpu")
    camera = clip.camera.scaled(args.size, args.size)
    reference = clip.params[0:1]
    coverage = actor_emotion_coverage(ws.read_manifest(), args.actor)
    prior = EmotionPrior.for_expressions(model.expr_names)
    errors: dict[str, dict[str, list[float]]] = {s: {r: [] for r in REGIONS} for s in ("transformer", "a2e")}
    per_emotion: dict[str, dict[str, list[float]]] = {}
    frames = 0
    for item in held_out_sentences(args.sentences, args.emotions.split(","), clip.fps, args.seed, args.words):
        n = int(item["n_frames"])
        truth = ground_truth_params(item, reference, list(model.expr_names))
        emotion = np.repeat(emotion_vector(item["emotion"])[None], n, 0).astype(np.float32)
        prediction = a2e.predict(item["wave"], 16000, emotion, n_frames=n, fps=clip.fps,
                                 emotion_gate=network_gate(coverage, prior))
        to_prior, _ = route_emotions(prediction.emotion, coverage, prior)
        if prior is not None and to_prior.any():
            prediction.expression, prediction.jaw_pose = apply_prior(prediction.expression, prediction.jaw_pose,
                                                                     to_prior, prior)
        dubbed = compose_params(prediction, truth, np.arange(n), list(model.expr_names))
        audio = audio_features(item["wave"], 16000, renderer.needs.audio, clip.fps, n)
        batch = assemble_batch(np.zeros((n, 8, 8, 3), np.uint8), truth, truth, camera, model, audio, emotion,
                               np.full(n, -1))
        canonical = torch.cat([renderer.predict_landmarks(batch[i:i + 64]) for i in range(0, n, 64)])
        R, t, _ = head_frames(model, truth)
        placed = from_canonical(canonical, R, t)
        truth_px = project(model, truth, camera)
        sources = {"transformer": camera.expand(n).project(placed)[0].numpy(),
                   "a2e": project(model, dubbed, camera)}
        for source, xy in sources.items():
            distance = np.linalg.norm(xy - truth_px, axis=-1)  # (N, 68)
            for region, points in REGIONS.items():
                errors[source][region].append(float(distance[:, points].mean()) * n)
            per_emotion.setdefault(item["emotion"], {}).setdefault(source, []).append(float(distance.mean()))
        frames += n
    config = {"model": args.model, "a2e": args.a2e, "size": args.size, "frames": frames,
              "sentences": args.sentences, "emotions": args.emotions,
              "per_emotion_all": {e: {s: round(float(np.mean(v)), 3) for s, v in d.items()}
                                  for e, d in per_emotion.items()}}
    summary: dict[str, Any] = {"config": config}
    for source, regions in errors.items():
        for region, totals in regions.items():
            value = round(sum(totals) / max(frames, 1), 3)
            summary.setdefault(source, {})[region] = value
            emit("landmark_error_px", value, "px", {**config, "source": source, "region": region})
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
