"""Landmark detection and ingest speed on the real clips, plus their detection figures.

For each clip of ``../shared/data/real/clips`` (or ``--clips``), prints one JSON object per line,
``{"name", "value", "unit", "config"}``:

* ``decode_ms_per_frame`` — :func:`core.io.video.iter_frames` normalising to 25 fps;
* ``encode_ms_per_frame`` — :class:`core.io.video.VideoWriter` (H.264 with ingest's x264 preset, crf 17);
* ``mediapipe_ms_per_frame`` — :class:`MediaPipeDetector` (FaceMesh 478 + BlazeFace verification), and
  ``mediapipe_mesh_only_ms_per_frame`` without the verification;
* ``ingest_ms_per_frame`` — the whole ingest (decode + encode + landmarks + audio + files), per frame;
* ``detection_rate`` and ``mean_confidence`` of the ingest's landmark track.

Times are the best of ``--repeats`` passes over ``--frames`` frames (the machine may be shared);
``config.median_ms`` is the typical pass. ``--overlay DIR`` also writes a PNG per clip with the 68
points drawn (numbered) on a few frames, to check the mapping by eye.

    OMP_NUM_THREADS=1 .venv/bin/python bench/landmarks.py --overlay /tmp/landmarks-overlay
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.ingest.ingest import IngestConfig, ingest
from core.io.video import VideoWriter, iter_frames, probe
from core.landmarks.detector import MediaPipeConfig, MediaPipeDetector
from core.landmarks.overlay import annotate_frame, contact_sheet, save_image
from core.workspace import Workspace

ENCODE_PRESET = IngestConfig().preset


def emit(name: str, value: float, unit: str, **config: object) -> None:
    record = {"name": name, "value": round(float(value), 4), "unit": unit, "config": config}
    print(json.dumps(record), flush=True)


def best_ms_per_frame(run: Callable[[], int], repeats: int) -> tuple[float, float]:
    """(best, median) milliseconds per frame of ``run`` (which returns the frames it handled)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        times.append((time.perf_counter() - start) * 1000.0 / max(n, 1))
    return min(times), statistics.median(times)


def bench_clip(path: Path, frames_limit: int, repeats: int, overlay: Path | None) -> None:
    info = probe(path)
    base = {"clip": path.name, "size": f"{info.width}x{info.height}", "source_fps": info.fps,
            "threads": os.environ.get("OMP_NUM_THREADS", "unset")}
    frames = list(iter_frames(path, fps=25, max_frames=frames_limit))
    n = len(frames)

    best, med = best_ms_per_frame(lambda: sum(1 for _ in iter_frames(path, fps=25, max_frames=n)), repeats)
    emit("decode_ms_per_frame", best, "ms", frames=n, median_ms=round(med, 3), **base)

    with tempfile.TemporaryDirectory() as tmp:
        def encode() -> int:
            with VideoWriter(Path(tmp) / "enc.mp4", 25, crf=17, preset=ENCODE_PRESET) as writer:
                writer.write_many(frames)
            return n

        best, med = best_ms_per_frame(encode, repeats)
        emit("encode_ms_per_frame", best, "ms", frames=n, preset=ENCODE_PRESET, crf=17,
             median_ms=round(med, 3), **base)

    for verify, name in ((True, "mediapipe_ms_per_frame"), (False, "mediapipe_mesh_only_ms_per_frame")):
        with MediaPipeDetector(MediaPipeConfig(verify_with_face_detector=verify)) as detector:
            detector.detect(frames[0])  # warm-up (graph start)

            def detect(d: MediaPipeDetector = detector) -> int:
                d.reset()
                for f in frames:
                    d.detect(f)
                return n

            best, med = best_ms_per_frame(detect, repeats)
        emit(name, best, "ms", frames=n, refine_landmarks=True, median_ms=round(med, 3), **base)

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        start = time.perf_counter()
        result = ingest(ws, path, shot="bench", config=IngestConfig())
        total = result.record["frames"]
        emit("ingest_ms_per_frame", (time.perf_counter() - start) * 1000.0 / total, "ms", frames=total,
             fps=25, preset=ENCODE_PRESET, **base)
        stats = result.record["landmark_stats"]
        emit("detection_rate", stats["detection_rate"], "fraction", frames=total, **base)
        emit("mean_confidence", stats["mean_confidence"], "confidence", frames=total, **base)
        if overlay is not None and result.track is not None:
            track = result.track
            picks = set(np.linspace(0, len(track) - 1, 4).round().astype(int).tolist())
            tiles = [annotate_frame(f, track, i, numbers=True, scale=2.0)
                     for i, f in enumerate(iter_frames(ws.root / result.record["video"])) if i in picks]
            out = save_image(overlay / f"{path.stem}.png", contact_sheet(tiles, columns=2))
            print(f"# overlay: {out}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dir = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "clips"
    if os.environ.get("EMODUB_SHARED_DATA"):
        default_dir = Path(os.environ["EMODUB_SHARED_DATA"]) / "real" / "clips"
    parser.add_argument("--clips", nargs="*", type=Path, default=None,
                        help=f"videos (default: {default_dir}/*)")
    parser.add_argument("--frames", type=int, default=100, help="frames timed per clip (default 100)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overlay", type=Path, default=None, help="write overlay PNGs into this folder")
    args = parser.parse_args()
    clips = args.clips if args.clips is not None else sorted(default_dir.glob("*.mp4"))
    if not clips:
        raise SystemExit(f"no clips found (looked in {default_dir}); pass --clips")
    for clip in clips:
        bench_clip(clip, args.frames, args.repeats, args.overlay)


if __name__ == "__main__":
    main()
