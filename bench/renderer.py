"""Neural-texture renderer and dubbing speed/memory on this machine (JSON lines).

    python build.py bench renderer
    OMP_NUM_THREADS=1 .venv/bin/python bench/renderer.py --threads 1 [--memory-seconds 60] [--skip-memory]
    .venv/bin/python bench/renderer.py --workdir /tmp/rbench --only forward dub   # reuses the workspace

The 60 s dub renders 1500 frames at 256 px: ~20 min on one core of this CPU (``--skip-memory`` leaves it
out). On a shared machine torch's OpenMP threads stall each other when a core is busy elsewhere: compare
``--threads 1`` and ``OMP_WAIT_POLICY=PASSIVE`` with the default before reading much into a 2-thread figure.

Setup: a throw-away workspace with one actor whose two tracked clips are rendered from known parameters
(:mod:`core.synthetic.known_clip`, ``--size`` px, 32 frames each); the a2e model and the renderer
(default :class:`NeuralTextureConfig`) are trained for a handful of iterations (speed and memory do not
depend on the weights); the shot is a copy of a clip (a ``size`` x ``size`` plate, identity crop).

Figures (one JSON object per line, ``{"name", "value", "unit", "config"}``; ``config`` carries the
thread count and the machine's load average before/after, since the cores may be shared; ``cpu_s_per_frame``
is this process's CPU time per frame, less sensitive to other work than the wall-clock rates):

* ``renderer_train_iterations_per_s``: :func:`train_renderer` steps on the tracked clip (batch 1, L1 +
  style + LSGAN from the first step, UVs rasterized per sample as in real training), after 2 warm-up steps.
* ``renderer_forward_fps``: the renderer's forward pass alone (no grad), one frame per call, real samples;
  extra lines with ``config.variant = true`` time untrained renderers of other ``--unet-bases`` widths.
* ``dub_render_fps``: :func:`core.dub.pipeline.dub`'s render loop (rasterize UVs + renderer + colour match +
  feather + paste + H.264 encode) on ``--dub-seconds`` of synthetic speech (``render_fps`` of its result).
* ``dub_peak_rss_mb``: peak resident memory (VmHWM, Linux) of a fresh python process that runs ``dub`` on
  ``--memory-seconds`` (60) of synthetic speech (the shot loops); the ffmpeg decoder/encoder processes it
  starts are not included. ``config.rss_short_mb`` is the same for a ``--dub-seconds`` dub: equal figures
  show the loop streams (memory does not grow with the length).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import ROOT, emit, load_average, speech

FIGURES = ("train", "forward", "dub", "memory")


def build_actor(root: Path, size: int, frames: int, renderer_iterations: int) -> Any:
    """Workspace with actor ``a`` (clips c0, c1), trained a2e + renderer, and shot ``s`` (a copy of c1)."""
    from core.jobs import protocol as P
    from core.jobs.runner import run_job
    from core.synthetic.known_clip import known_clip_workspace

    ws = known_clip_workspace(root / "ws", n_frames=frames, size=size, clips=2)

    def run(kind: str, params: dict[str, Any]) -> None:
        events: list[P.Event] = []
        if run_job(P.JobSpec(kind, {**params, "device": "cpu"}, str(ws.root)), events.append) != P.EXIT_OK:
            raise RuntimeError(f"{kind} failed: {events[-1]}")

    run("train.a2e", {"actor": "a", "iterations": 4, "batch_size": 4, "seq_len": 8, "checkpoint_every": 4})
    run("train.renderer", {"actor": "a", "iterations": renderer_iterations})  # default NeuralTextureConfig
    shutil.copytree(ws.clip_dir("a", "c1"), ws.shot_dir("s"))
    ws.set_shot("s", {"video": "shots/s/video.mp4", "fps": 25, "frames": frames})
    return ws


def reuse_actor(root: Path, size: int) -> Any:
    """The workspace a previous run left in ``root`` (``--workdir``) when it was built at ``size``, else None."""
    from core.workspace import Workspace, WorkspaceError

    try:
        ws = Workspace.open(root / "ws")
        clip = json.loads((ws.shot_dir("s") / "crop.json").read_text())
    except (OSError, ValueError, KeyError, WorkspaceError):
        return None
    trained = all((ws.model_dir("a", m) / "checkpoint.pt").exists() for m in ("a2e", "neural_texture"))
    return ws if trained and clip["out_size"] == size else None


def bench_training(ws: Any, iterations: int, base: dict[str, Any]) -> None:
    from core.renderers.base import RendererSetup
    from core.renderers.data import actor_sources
    from core.renderers.registry import build
    from core.renderers.train import TrainConfig, train

    probe = build("neural_texture", RendererSetup(64, {}), options={"gan_start": 0})
    source, _, _ = actor_sources(ws, "a", probe.needs, holdout=0.2)
    renderer = build("neural_texture", RendererSetup(source.size, source.face_model_spec, source.train_frames),
                     options={"gan_start": 0})
    model = renderer.options
    config = TrainConfig(iterations=iterations, batch_size=1, lr=1e-4, betas=(0.5, 0.999), checkpoint_every=10**9,
                         sample_every=0)
    stamps: dict[int, float] = {}

    def progress(done: int, _total: int, _msg: str) -> None:
        stamps[done] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        train(renderer, source, Path(tmp), config, progress=progress)
    # Steps 3..N-1: after 2 warm-up steps, before the final checkpoint write (progress runs after it).
    first, last = 2, iterations - 1
    rate = (last - first) / (stamps[last] - stamps[first])
    emit("renderer_train_iterations_per_s", round(rate, 3), "it/s",
         {**base, "batch": 1, "timed_iterations": last - first, "gan": True,
          "unet_base": model.unet_base, "unet_depth": model.unet_depth, "load_avg_after": load_average()})


def bench_forward(ws: Any, repeats: int, unet_bases: list[int], base: dict[str, Any]) -> None:
    """Forward fps of the trained default renderer, then of untrained variants with other UNet widths
    (``config.variant``: what a smaller default would buy; the weights do not change the cost)."""
    from torch.utils.flop_counter import FlopCounterMode

    from core.renderers.data import actor_sources
    from core.renderers.neural_texture.config import NeuralTextureConfig
    from core.renderers.neural_texture.model import NeuralTextureRenderer
    from core.renderers.registry import load

    trained = load(ws.model_dir("a", "neural_texture"))
    source, _, _ = actor_sources(ws, "a", trained.needs, holdout=0.2)
    samples = []
    with torch.no_grad():
        for i in range(repeats + 1):
            batch = source.batch([i % len(source)])
            samples.append(trained.rasterize(batch) | {"frame": batch.frames, "audio": batch.audio})
    coverage = float(np.mean([s["alpha"].mean().item() for s in samples]))
    variants = [(trained, False)] + [(NeuralTextureRenderer(NeuralTextureConfig(unet_base=b)).eval(), True)
                                     for b in unet_bases if b != trained.config.unet_base]
    for renderer, variant in variants:
        times, cpu = [], []
        with torch.no_grad():
            with FlopCounterMode(display=False) as flops:
                renderer.render_uv(**samples[0])
            for s in samples:
                t, c = time.perf_counter(), time.process_time()
                renderer.render_uv(**s)
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
        times, cpu = times[1:], cpu[1:]  # the first call warms up oneDNN
        emit("renderer_forward_fps", round(1.0 / min(times), 3), "frames/s",
             {**base, "batch": 1, "repeats": repeats, "median_fps": round(1.0 / float(np.median(times)), 3),
              "face_coverage": round(coverage, 3), "unet_base": renderer.config.unet_base,
              "variant": variant, "gflop_per_frame": round(flops.get_total_flops() / 1e9, 2),
              "cpu_s_per_frame": round(float(np.median(cpu)), 3),
              "load_avg_after": load_average()})


def write_dub_audio(path: Path, seconds: float) -> Path:
    from core.io.audio import write_wav

    return write_wav(path, speech(seconds), 16000)


def bench_dub_loop(ws: Any, audio: Path, seconds: float, base: dict[str, Any]) -> None:
    from core.dub.pipeline import dub

    cpu = time.process_time()
    result = dub(ws, "a", "s", audio, "happy:0.5", render_name="bench-loop")
    cpu = time.process_time() - cpu
    emit("dub_render_fps", round(result["render_fps"], 3), "frames/s",
         {**base, "audio_s": seconds, "frames": result["frames"], "chunk": result["config"]["chunk"],
          "cpu_s_per_frame": round(cpu / result["frames"], 3),
          "total_s": round(result["seconds"], 2), "plate": f"{base['size']}x{base['size']}",
          "load_avg_after": load_average()})


# The child reports VmHWM of /proc/self/status: the peak of its own address space since exec. Its
# ru_maxrss (getrusage, or wait4 in the parent) would not do: Linux carries the spawning process's RSS
# across fork/vfork + exec into it, so a child of this (large) bench process would report the bench's size.
_CHILD = """
import json, sys, torch
torch.set_num_threads({threads})
from core.dub.pipeline import dub
from core.workspace import Workspace
r = dub(Workspace.open({root!r}), "a", "s", {audio!r}, "happy:0.5", render_name={name!r})
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(json.dumps({{"frames": r["frames"], "render_fps": r["render_fps"], "peak_rss_mb": int(hwm[0]) / 1024}}))
"""


def dub_in_child(ws: Any, audio: Path, name: str, threads: int) -> dict[str, Any]:
    """Run ``dub`` in a fresh python process (Linux); its frames, render fps and peak RSS (MB)."""
    code = _CHILD.format(threads=threads, root=str(ws.root), audio=str(audio), name=name)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=ROOT, env=env, check=True)
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def bench_dub_memory(ws: Any, short_audio: Path, short_s: float, long_s: float, tmp: Path,
                     base: dict[str, Any]) -> None:
    long_audio = tmp / f"dub_{long_s:g}s.wav"
    if not long_audio.exists():
        write_dub_audio(long_audio, long_s)
    short = dub_in_child(ws, short_audio, "bench-mem-short", base["threads"])
    long = dub_in_child(ws, long_audio, "bench-mem-long", base["threads"])
    emit("dub_peak_rss_mb", round(long["peak_rss_mb"], 1), "MB",
         {**base, "audio_s": long_s, "frames": long["frames"], "render_fps": round(long["render_fps"], 3),
          "rss_short_mb": round(short["peak_rss_mb"], 1), "short_audio_s": short_s,
          "short_frames": short["frames"], "load_avg_after": load_average()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="crop size of the clips and the renderer")
    parser.add_argument("--frames", type=int, default=32, help="frames per tracked clip (and of the shot)")
    parser.add_argument("--train-iterations", type=int, default=12, help="timed run of train_renderer")
    parser.add_argument("--repeats", type=int, default=8, help="renderer forward calls timed")
    parser.add_argument("--unet-bases", type=int, nargs="*", default=[32],
                        help="also time the forward pass of renderers with these UNet widths (default 32)")
    parser.add_argument("--dub-seconds", type=float, default=4.0, help="audio length of the timed dub")
    parser.add_argument("--memory-seconds", type=float, default=60.0, help="audio length of the memory dub")
    parser.add_argument("--skip-memory", action="store_true", help="no 60 s dub (it takes minutes on a CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the workspace here (default: temp); an existing bench workspace is reused")
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES), help="figures to measure")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = {"size": args.size, "threads": torch.get_num_threads(), "device": "cpu", "cpus": os.cpu_count(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_avg_before": load_average()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = args.workdir or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        ws = reuse_actor(tmp, args.size) or build_actor(tmp, args.size, args.frames, renderer_iterations=3)
        if "train" in args.only:
            bench_training(ws, args.train_iterations, base)
        if "forward" in args.only:
            bench_forward(ws, args.repeats, args.unet_bases, base)
        short_audio = write_dub_audio(tmp / f"dub_{args.dub_seconds:g}s.wav", args.dub_seconds)
        if "dub" in args.only:
            bench_dub_loop(ws, short_audio, args.dub_seconds, base)
        if "memory" in args.only and not args.skip_memory:
            bench_dub_memory(ws, short_audio, args.dub_seconds, args.memory_seconds, tmp, base)


if __name__ == "__main__":
    main()
