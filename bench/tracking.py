"""Face tracking speed: seconds per frame of every tracker stage on a 256-pixel clip, and the total for a
10 s clip (250 frames at 25 fps).

A synthetic clip of the procedural head speaking (``core.tracking.synthetic``; 256 x 256 frames, crop
``out_size`` 256, exact landmarks) is tracked with the default :class:`~core.tracking.config.TrackerConfig`
(photometric renders at ``photometric_size`` = 128 unless ``--photometric-size`` says otherwise). Per-stage
wall time comes from the tracker's own timing of its batches (model building, frame decoding and output
writing are reported separately). Keyframe stages (rigid, texture) cost the same whatever the clip's length,
so their seconds per frame fall with longer clips; the figure printed is over the measured clip's frames.

Prints one JSON object per line: {"name", "value", "unit", "config"}::

    OMP_NUM_THREADS=1 .venv/bin/python bench/tracking.py              # a full 10 s clip (250 frames)
    OMP_NUM_THREADS=1 .venv/bin/python bench/tracking.py --frames 64  # quicker; the total is extrapolated
    OMP_NUM_THREADS=2 .venv/bin/python bench/tracking.py --threads 2  # both cores
    python3 bench/tracking.py --device cuda --in-memory               # on a GPU machine without ffmpeg
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LANDMARK_STAGES = ("rigid", "landmarks")
PHOTOMETRIC_STAGES = ("texture", "photometric")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=250, help="frames of the benchmark clip (250 = 10 s)")
    parser.add_argument("--size", type=int, default=256, help="frame and crop size (default 256)")
    parser.add_argument("--photometric-size", type=int, default=None, help="render size of the photometric "
                        "stages (default: the tracker's, 128)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1, the tracker's default: see TrackerConfig.cpu_threads)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=101, help="performance seed of the synthetic clip")
    parser.add_argument("--in-memory", dest="in_memory", action="store_true",
                        help="render the clip in memory and run the tracker alone (no video files: machines "
                             "without ffmpeg, e.g. a GPU box)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from dataclasses import replace

    from core.morphable.registry import load_model
    from core.tracking.config import TrackerConfig
    from core.tracking.pipeline import track_folder
    from core.tracking.synthetic import synthetic_params, write_synthetic_clip

    config = TrackerConfig(overlay=False, cpu_threads=args.threads)
    if args.photometric_size:
        config = replace(config, photometric_size=args.photometric_size)
    start = time.perf_counter()
    model = load_model("procedural", device=args.device)
    model_s = time.perf_counter() - start
    params = synthetic_params(args.frames, seed=args.seed)
    if args.in_memory:
        from core.tracking.quality import quality_record
        from core.tracking.synthetic import synthetic_targets
        from core.tracking.tracker import Tracker

        targets = synthetic_targets(model, params, config, size=args.size, crop_size=args.size)
        start = time.perf_counter()
        result = Tracker(model, targets, config).run()
        wall = time.perf_counter() - start
        quality = quality_record(model, result.params, result.camera, targets, config, result.shared)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "clip"
            write_synthetic_clip(folder, model, params, size=args.size, crop_size=args.size)
            start = time.perf_counter()
            outputs = track_folder(folder, config, device=args.device)
            wall = time.perf_counter() - start
        result, quality = outputs.result, outputs.quality
    n = args.frames
    seconds = result.stage_seconds
    common = {"frames": n, "size": args.size, "photometric_size": config.photometric_size,
              "in_memory": args.in_memory,
              "threads": torch.get_num_threads(), "device": args.device, "model": "procedural/default",
              "iteration_scale": config.iteration_scale}

    def emit(name: str, value: float, unit: str, **extra: object) -> None:
        print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, "config": {**common, **extra}}))

    for stage in config.stages:
        if stage.name in seconds:
            emit(f"tracking_{stage.name}_s_per_frame", seconds[stage.name] / n, "s/frame",
                 stage_seconds=round(seconds[stage.name], 3), stage_frames=result.stage_frames[stage.name],
                 iterations=config.iterations(stage), passes=stage.passes, batch_size=stage.batch_size)
    landmark = sum(seconds.get(s, 0.0) for s in LANDMARK_STAGES)
    photometric = sum(seconds.get(s, 0.0) for s in PHOTOMETRIC_STAGES)
    emit("tracking_landmark_stages_s_per_frame", landmark / n, "s/frame", stages=list(LANDMARK_STAGES),
         target=0.1)
    emit("tracking_photometric_stages_s_per_frame", photometric / n, "s/frame", stages=list(PHOTOMETRIC_STAGES),
         target=1.5)
    # 10 s clip: keyframe stages are a fixed cost, the others scale with the frames
    clip = 250
    fixed = sum(seconds.get(s.name, 0.0) for s in config.stages if s.frames == "keyframes")
    per_frame = sum(seconds.get(s.name, 0.0) for s in config.stages if s.frames == "all") / n
    emit("tracking_total_10s_clip_s", fixed + per_frame * clip, "s", measured=n == clip,
         extrapolated_from_frames=n, stages_only=True)
    emit("tracking_wall_s", wall, "s", model_build_s=round(model_s, 3),
         note="the tracker alone" if args.in_memory else "track_folder: decode, stages, quality, outputs")
    emit("tracking_landmark_rmse_px", float(quality["landmark_rmse_px"]), "px",
         photometric_l1=quality["photometric_l1"])


if __name__ == "__main__":
    main()
