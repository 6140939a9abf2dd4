"""Batch throughput: a plan of 8 tiny dubs of the synthetic actor with 1 and with 2 local Ray workers.

    python build.py bench batch [--items 8] [--seconds 1.0] [--out DIR]

A tiny actor (two 24-frame tracked 64 px clips, a2e and renderer trained a few steps: the tests' actor) and one
shot; ``--items`` audio tracks of ``--seconds`` of synthetic speech each, one dub per track. The same plan runs
under two batch names (so nothing is skipped), once with ``--workers 1`` (all cores to one item at a time) and
once with ``--workers 2`` (cores / 2 threads each), in one run of this script, so the ratio compares like with
like. Records: ``batch_items_per_min`` per worker count, ``batch_seconds_per_item`` (wall / items),
``batch_item_seconds_in_worker`` (the mean time of one dub inside its worker), ``batch_speedup_2_vs_1``.
Each run includes starting and stopping its local Ray instance (a few seconds), as a real batch does.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit, emodub, load_average, speech


def tiny_actor(root: Path, log: Path) -> Path:
    from core.synthetic.known_clip import known_clip_workspace

    ws = known_clip_workspace(root, n_frames=24, size=64, clips=2)
    emodub("train", "a2e", "-w", str(ws.root), "--actor", "a", "--iterations", "6", "--batch-size", "4",
           "--device", "cpu", log=log)
    emodub("train", "renderer", "-w", str(ws.root), "--actor", "a", "--iterations", "4", "--set", "unet_base=8",
           "--no-eval", "--device", "cpu", log=log)
    shutil.copytree(ws.clip_dir("a", "c1"), ws.shot_dir("s"))
    ws.set_shot("s", {"video": "shots/s/video.mp4", "fps": 25, "frames": 24})
    return Path(ws.root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None, help="keep the workspace here (default: a temp dir)")
    args = parser.parse_args()
    from core.io.audio import write_wav

    folder = args.out or Path(tempfile.mkdtemp(prefix="emodub-bench-batch-"))
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "bench.log"
    ws = tiny_actor(folder / "ws", log)
    tracks = {f"t{k}": str(write_wav(folder / f"t{k}.wav", speech(args.seconds, seed=k), 16000))
              for k in range(args.items)}
    config = {"items": args.items, "audio_seconds": args.seconds, "frames_per_item": round(args.seconds * 25),
              "size": 64, "renderer": "neural_texture", "load": load_average()}
    rates = {}
    for workers in (1, 2):
        plan = folder / f"w{workers}.json"
        plan.write_text(json.dumps({"name": f"bench-w{workers}", "actor": "a", "shots": ["s"], "tracks": tracks}))
        t0 = time.perf_counter()
        outputs = emodub("batch", "dub", "--plan", str(plan), "-w", str(ws), "--workers", str(workers),
                         "--device", "cpu", log=log)
        seconds = time.perf_counter() - t0
        if outputs["done"] != args.items:
            raise RuntimeError(f"{outputs['failed']} item(s) failed: see {outputs['report']}")
        rates[workers] = args.items / seconds * 60
        emit("batch_items_per_min", round(rates[workers], 2), "items/min", {**config, "workers": workers,
                                                                             "wall_s": round(seconds, 1)})
        emit("batch_seconds_per_item", round(seconds / args.items, 2), "s", {**config, "workers": workers})
        summary = json.loads((Path(outputs["batch_dir"]) / "summary.json").read_text())
        inside = [row["seconds"] for row in summary["items"] if row.get("seconds")]
        # the dub itself, in its worker (model loading, a2e, render, encode), without Ray's start and stop
        emit("batch_item_seconds_in_worker", round(sum(inside) / len(inside), 2), "s", {**config, "workers": workers})
        # what the items do not explain: the CLI's start, Ray's start and stop, scheduling
        emit("batch_fixed_seconds", round(seconds - sum(inside) / workers, 1), "s", {**config, "workers": workers})
    emit("batch_speedup_2_vs_1", round(rates[2] / rates[1], 2), "x", config)
    if args.out is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
