"""NeRF renderer speed on this machine: training steps and whole-frame rendering (JSON lines).

    python build.py bench nerf [--renderer lipnerf] [--sizes 128 256] [--preset cpu] [--device auto]

For each variant (default: every registered NeRF variant; ``--renderer`` names one, ``neural_texture``
included), preset and size S, a throw-away workspace holds one actor with a tracked S px clip rendered from
known parameters (:mod:`core.synthetic.known_clip`, 24 frames); the renderer is built with
``render_size = S`` (the speed does not depend on the weights, so nothing is trained to quality).

Figures (``{"name", "value", "unit", "config"}``; ``config`` has ``renderer``, ``size``, ``device``, ``preset``,
the thread count and the load average, since the cores may be shared):

* ``train_it_per_s``: steps of the shared trainer (:mod:`core.renderers.train`) after 3 warm-up steps;
* ``render_fps``: whole frames rendered in eval mode (the dub's path), one per call, after a warm-up frame;
  on CUDA also ``config.peak_memory_mb`` (``torch.cuda.max_memory_allocated``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - puts the project on sys.path
import numpy as np
import torch
from _common import emit, load_average


def nerf_variants() -> list[str]:
    from core.renderers.nerf.head import HeadNeRF
    from core.renderers.registry import renderer_class
    from core.renderers.spec import variants

    return [name for name in variants() if issubclass(renderer_class(name), HeadNeRF)]


def bench_one(variant: str, preset: str | None, size: int, device: str, iterations: int, frames: int,
              root: Path) -> None:
    from core.renderers.base import RendererSetup
    from core.renderers.data import actor_sources
    from core.renderers.registry import build, make_options, renderer_class
    from core.renderers.spec import resolve_options
    from core.renderers.train import TrainConfig, train
    from core.synthetic.known_clip import known_clip_workspace

    ws = known_clip_workspace(root / f"{variant}_ws{size}", n_frames=24, size=size)
    options = {"render_size": size} if "render_size" in resolve_options(variant, preset) else {}
    needs = renderer_class(variant).needs_for(make_options(variant, resolve_options(variant, preset, options)))
    source, held, _ = actor_sources(ws, "a", needs, holdout=0.25)
    setup = RendererSetup(size, source.face_model_spec, source.train_frames, n_expression=source.face_model().n_expr)
    renderer = build(variant, setup, preset, options)
    base = {"renderer": variant, "size": size, "device": device, "preset": preset, "threads": torch.get_num_threads()}
    stamps: dict[int, float] = {}
    warm = 3

    def progress(done: int, _total: int, _msg: str) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        stamps[done] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        train(renderer, source, Path(tmp), TrainConfig(iterations=warm + iterations, checkpoint_every=10**9,
                                                       sample_every=0), device=device, progress=progress)
    rate = iterations / (stamps[warm + iterations] - stamps[warm])
    emit("train_it_per_s", round(rate, 3), "it/s", {**base, "timed_iterations": iterations,
                                                    "load_avg_after": load_average()})
    renderer.eval()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.no_grad():
        for i in range(frames + 1):
            batch = held.batch([i % len(held)], device)
            start = time.perf_counter()
            renderer(batch)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    times = times[1:]
    extra: dict[str, Any] = {"frames": frames, "median_s": round(float(np.median(times)), 4)}
    if device == "cuda":
        extra["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    emit("render_fps", round(1.0 / float(np.median(times)), 3), "frames/s", {**base, **extra,
                                                                            "load_avg_after": load_average()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renderer", action="append", default=None, help="a variant (repeatable; default: NeRFs)")
    parser.add_argument("--preset", default=None, help="the variants' preset (default: each variant's own)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="render sizes (CPU 128 256; GPU 512)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--iterations", type=int, default=20, help="timed training steps")
    parser.add_argument("--frames", type=int, default=4, help="timed whole frames")
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    sizes = args.sizes or ([512] if device == "cuda" else [128, 256])
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.renderer or nerf_variants():
            for size in sizes:
                bench_one(variant, args.preset, size, device, args.iterations, args.frames, Path(tmp))


if __name__ == "__main__":
    main()
