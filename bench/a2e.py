"""Audio-to-expression benchmarks: inference speed (default) and, with ``--quality``, the modest-scale
synthetic experiment (train GAN + L1-only ablation on CPU, evaluate on held-out sentences).

    python build.py bench a2e                      # speed: x real time of a2e predict on this CPU
    OMP_NUM_THREADS=1 python bench/a2e.py --quality --workspace /tmp/a2e_bench [--sentences 40]

Each figure is one JSON line ``{"name", "value", "unit", "config"}``. Speed is measured on 60 s of
synthetic speech with the default :class:`A2EConfig` (weights from a few training steps: the cost does not
depend on them), after one warm-up call; ``a2e_first_call_s`` is the cold latency of a fresh process
(librosa's filterbank import included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def emit(name: str, value: float, unit: str, config: dict) -> None:
    print(json.dumps({"name": name, "value": value, "unit": unit, "config": config}), flush=True)


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    from core.synthetic.phonemes import random_sentence
    from core.synthetic.speech import synthesize

    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < seconds * 16000:
        wave, _ = synthesize(random_sentence(rng, 8), None, 16000, rng)
        parts.append(wave)
        total += wave.size
    return np.concatenate(parts)[: int(seconds * 16000)]


def bench_speed(threads: int) -> None:
    from core.expression.a2e import A2EConfig, A2EModel, predict
    from core.expression.a2e_train import train_a2e
    from core.synthetic.corpus import build_param_corpus
    from core.workspace import Workspace

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        build_param_corpus(ws, "bench", 2, emotions=("neutral", "happy"), intensities=(1.0,), words=(2, 3))
        config = A2EConfig(iterations=2, batch_size=4, val_fraction=0.0)
        train_a2e(ws, "bench", config)
        t0 = time.perf_counter()
        model = A2EModel.load(ws.model_dir("bench", "a2e"))
        wave = _speech(60.0)
        first = predict(model, wave[:16000 * 5], 16000, "happy:0.5")  # warm-up (+ cold start figure)
        first_s = time.perf_counter() - t0
        seconds = wave.size / 16000
        cfg = {"audio_s": seconds, "threads": threads, "fps": model.fps, "feature": model.config.feature,
               "lstm_hidden": model.config.lstm_hidden, "smooth": True, "device": "cpu"}
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            pred = predict(model, wave, 16000, "happy:0.5")
            runs.append(time.perf_counter() - t)
        best = min(runs)
        assert pred.n_frames == int(np.ceil(seconds * model.fps - 1e-6)) and first.n_frames > 0
        feats_t, net_t = [], []
        for _ in range(5):
            t = time.perf_counter()
            feats = model.features(wave, 16000)
            feats_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.predict_features(feats, np.zeros((feats.shape[0], 7), np.float32))
            net_t.append(time.perf_counter() - t)
        emit("a2e_predict_x_realtime", round(seconds / best, 1), "x", cfg)
        emit("a2e_predict_s_per_min_audio", round(best * 60 / seconds, 4), "s", cfg)
        emit("a2e_features_x_realtime", round(seconds / min(feats_t), 1), "x", cfg)
        emit("a2e_network_x_realtime", round(seconds / min(net_t), 1), "x", cfg)
        emit("a2e_first_call_s", round(first_s, 2), "s", {**cfg, "audio_s": 5.0})


def bench_quality(root: Path, sentences: int, iterations: int, threads: int) -> None:
    """Build the corpus, train L1+GAN and L1-only, evaluate; figures + wall times as JSON lines."""
    from core.expression.a2e import A2EConfig
    from core.expression.a2e_eval import evaluate_a2e
    from core.expression.a2e_train import train_a2e
    from core.synthetic.corpus import build_param_corpus
    from core.workspace import Workspace

    torch.set_num_threads(threads)
    ws = Workspace.create(root, exist_ok=True)
    t = time.perf_counter()
    clips = build_param_corpus(ws, "synth", sentences, seed=0)
    cfg = {"sentences": sentences, "clips": len(clips), "frames": sum(c.frames for c in clips),
           "iterations": iterations, "threads": threads}
    emit("a2e_corpus_build_s", round(time.perf_counter() - t, 1), "s", cfg)
    for name, use_gan in (("a2e", True), ("a2e_l1", False)):
        t = time.perf_counter()
        out = train_a2e(ws, "synth", A2EConfig(iterations=iterations, use_gan=use_gan), model_name=name)
        emit(f"a2e_train_s_{name}", round(time.perf_counter() - t, 1), "s",
             {**cfg, "use_gan": use_gan, "train_loop_s": round(out["seconds"], 1)})
    result = evaluate_a2e(ws, "synth", "a2e", "a2e_l1")
    emit("a2e_jaw_corr", round(result["jaw_corr"], 4), "pearson", {**cfg, "held_out_clips": result["n_clips"]})
    emit("a2e_mouth_l1", round(result["mouth_l1"], 5), "abs", {**cfg, "baseline": result["mouth_l1_mean_baseline"]})
    for e, ok in result["emotion_direction_ok"].items():
        emit(f"a2e_emotion_direction_ok_{e}", float(ok), "bool", cfg)
        emit(f"a2e_emotion_monotonic_{e}", float(result["emotion_monotonic"][e]), "bool", cfg)
    for model, ratios in result["ablation"].items():
        for key in ("upper_face_var_ratio", "lip_var_ratio", "upper_face_temporal_var_ratio",
                    "lip_temporal_var_ratio"):
            emit(f"a2e_{key}_{model}", round(ratios[key], 5), "ratio", {**cfg, "use_gan": ratios["use_gan"]})
    (root / "eval.json").write_text(json.dumps(result, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", action="store_true", help="run the modest-scale training experiment")
    parser.add_argument("--workspace", default=None, help="workspace of the quality run (kept)")
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = parser.parse_args(argv)
    if args.quality:
        root = Path(args.workspace or tempfile.mkdtemp(prefix="emodub-a2e-bench-"))
        bench_quality(root, args.sentences, args.iterations, args.threads)
    else:
        bench_speed(args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
