"""Synthetic actor speed: seconds per rendered frame, and what a MEAD-like corpus costs.

Prints one JSON object per line: {"name", "value", "unit", "config"}.

* ``synth_render_s_per_frame`` -- :meth:`SyntheticActor.render_chunk` (model + rasterise + shade +
  anti-aliasing + composite + landmarks), best of ``--repeats`` runs over ``--frames`` frames of a real
  corpus clip; ``config.median`` is the typical run. Once per supersampling factor of ``--supersample``.
* ``synth_clip_s_per_frame`` -- one whole clip written by :func:`render_clip` (rendering, H.264 encoding with
  the audio, ground-truth files, manifest), per frame.
* ``synth_corpus_frames`` -- frames of the corpus ``--sentences`` x ``--emotions`` x ``--intensities`` (counted
  from its parameters, which take well under a second per clip), and ``synth_corpus_estimated_s`` = those
  frames x the clip cost per frame.
* ``synth_corpus_s`` -- with ``--full-corpus``: actually build that corpus (videos and all) and time it.

    OMP_NUM_THREADS=1 .venv/bin/python bench/synth.py --threads 1
    OMP_NUM_THREADS=1 .venv/bin/python bench/synth.py --threads 1 --full-corpus   # minutes on a CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def emit(name: str, value: float, unit: str, config: dict) -> None:
    print(json.dumps({"name": name, "value": round(float(value), 6), "unit": unit, "config": config}),
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--supersample", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--frames", type=int, default=32, help="frames per timed render run")
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--sentences", type=int, default=4)
    parser.add_argument("--emotions", nargs="+", default=None, help="default: all eight MEAD emotions")
    parser.add_argument("--intensities", type=float, nargs="+", default=[0.33, 0.66, 1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-corpus", action="store_true", help="also build the whole corpus and time it")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else (
        "cpu" if args.device == "auto" else args.device)

    from core.expression.emotions import MEAD_EMOTIONS, mead_emotion_vector
    from core.synthetic.actor import ActorConfig, SyntheticActor, build_corpus, render_clip
    from core.synthetic.corpus import build_param_corpus, synthesize_clip
    from core.synthetic.phonemes import random_sentence
    from core.workspace import Workspace

    base = {"size": args.size, "device": device, "threads": torch.get_num_threads(), "chunk": args.chunk}
    rng = np.random.default_rng(args.seed)
    clip = synthesize_clip(random_sentence(rng, 6), mead_emotion_vector("happy", 2), 25.0, rng)
    keys = ("expression", "jaw_pose", "neck_pose", "eye_pose", "rotation", "translation")

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    clip_actor = None
    for ss in args.supersample:
        actor = SyntheticActor(ActorConfig(size=args.size, supersample=ss), device=device)
        clip_actor = clip_actor or actor
        n = min(args.frames, clip["n_frames"])
        params = {k: clip[k][:n] for k in keys}
        params["shape"] = actor.identity[None]
        actor.render_chunk({k: v[:2] for k, v in params.items()})  # warm-up
        times = []
        for _ in range(args.repeats):
            sync()
            start = time.perf_counter()
            for _chunk in actor.iter_chunks(params, args.chunk):
                pass
            sync()
            times.append((time.perf_counter() - start) / n)
        emit("synth_render_s_per_frame", min(times), "s", {**base, "supersample": ss, "frames": n,
                                                            "median": round(statistics.median(times), 6),
                                                            "fps": round(1.0 / min(times), 2)})
    assert clip_actor is not None
    with tempfile.TemporaryDirectory(prefix="emodub-bench-synth-") as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        params = {k: clip[k] for k in keys}
        params["shape"] = np.repeat(clip_actor.identity[None], clip["n_frames"], 0)
        start = time.perf_counter()
        render_clip(ws, clip_actor, "synthetic", "bench", params, clip["wave"], 16000, clip["timing"],
                    mead_emotion_vector("happy", 2))
        per_frame = (time.perf_counter() - start) / clip["n_frames"]
        emit("synth_clip_s_per_frame", per_frame, "s", {**base, "supersample": clip_actor.config.supersample,
                                                         "frames": clip["n_frames"]})

        emotions = tuple(args.emotions or MEAD_EMOTIONS)
        counted = build_param_corpus(Workspace.create(Path(tmp) / "params"), "synthetic", args.sentences,
                                     emotions=emotions, intensities=tuple(args.intensities), seed=args.seed)
        frames = sum(c.frames for c in counted)
        corpus = {"sentences": args.sentences, "emotions": list(emotions), "intensities": args.intensities,
                  "clips": len(counted), "seed": args.seed, "size": args.size}
        emit("synth_corpus_frames", frames, "frames", corpus)
        emit("synth_corpus_estimated_s", frames * per_frame, "s", {**corpus, "from": "synth_clip_s_per_frame"})
        if args.full_corpus:
            start = time.perf_counter()
            clips = build_corpus(Workspace.create(Path(tmp) / "full"), clip_actor, n_sentences=args.sentences,
                                 emotions=emotions, intensities=tuple(args.intensities), seed=args.seed)
            elapsed = time.perf_counter() - start
            emit("synth_corpus_s", elapsed, "s", {**corpus, **base, "frames": sum(c.frames for c in clips),
                                                  "s_per_frame": round(elapsed / max(frames, 1), 6)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
