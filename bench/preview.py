"""Preview latency: one frame at 256 px from a cold process and from a warm engine (``emodub worker --serve``).

    python build.py bench preview [--size 256]

A neural-texture actor at ``--size`` (the tests' known clip at that size, the renderer's default width, trained a
few steps: the speed of a render does not depend on how long the model was trained) and a 2 s shot. Records,
each as seconds from sending the request to reading its answer:

* ``preview_cold_s``: ``emodub preview`` in a new process (Python, torch, models, the a2e over the audio, one
  frame, the PNG);
* ``preview_warm_first_s``: a warm engine (Python and torch loaded by a warm-up preview) asked for new audio (a new
  set-up: models read again, the a2e runs);
* ``preview_warm_s``: the median of 5 more previews of other frames with the same audio and curves;
* ``preview_warm_new_curves_s``: a preview after the curves changed (a new set-up: models read again, the a2e
  runs again).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, emit, emodub, load_average, speech


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    from core.io.audio import write_wav
    from core.jobs import protocol as P
    from core.synthetic.known_clip import known_clip_workspace

    folder = Path(tempfile.mkdtemp(prefix="emodub-bench-preview-"))
    log = folder / "bench.log"
    try:
        ws = known_clip_workspace(folder / "ws", n_frames=50, size=args.size, clips=2)
        emodub("train", "a2e", "-w", str(ws.root), "--actor", "a", "--iterations", "10", "--device", "cpu", log=log)
        emodub("train", "renderer", "-w", str(ws.root), "--actor", "a", "--iterations", "5", "--no-eval",
               "--device", "cpu", log=log)
        shutil.copytree(ws.clip_dir("a", "c1"), ws.shot_dir("s"))
        ws.set_shot("s", {"video": "shots/s/video.mp4", "fps": 25, "frames": 50})
        audio = write_wav(folder / "dub.wav", speech(2.0), 16000)
        base = {"actor": "a", "shot": "s", "audio": str(audio), "emotions": "happy:0.5", "device": "cpu",
                "out": str(folder / "previews")}
        config = {"size": args.size, "renderer": "neural_texture", "frames": 1, "load": load_average()}

        t0 = time.perf_counter()
        emodub("preview", "-w", str(ws.root), "--actor", "a", "--shot", "s", "--audio", str(audio), "--emotions",
               "happy:0.5", "--frame", "10", "--out", str(folder / "previews"), "--device", "cpu", log=log)
        emit("preview_cold_s", round(time.perf_counter() - t0, 2), "s", config)

        proc = subprocess.Popen([sys.executable, "-m", "core.worker", "--serve"], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        assert proc.stdin is not None and proc.stdout is not None

        def ask(params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
            spec = P.JobSpec("preview", params, str(ws.root))
            start = time.perf_counter()
            proc.stdin.write(json.dumps(spec.to_dict()) + "\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            while True:
                event = P.decode_event(proc.stdout.readline())  # type: ignore[union-attr]
                if event.job_id == spec.id and isinstance(event, P.Done | P.Error):
                    if isinstance(event, P.Error):
                        raise RuntimeError(event.message)
                    return time.perf_counter() - start, event.outputs

        try:
            ask({**base, "frame": 0, "audio": str(write_wav(folder / "warmup.wav", speech(0.5, seed=9), 16000))})
            first, _ = ask({**base, "frame": 10})
            emit("preview_warm_first_s", round(first, 2), "s",
                 {**config, "note": "new audio: a new set-up in a warm process"})
            times = [ask({**base, "frame": frame})[0] for frame in (12, 20, 31, 40, 49)]
            emit("preview_warm_s", round(statistics.median(times), 3), "s", {**config, "runs": [round(t, 3)
                                                                                                 for t in times]})
            curves, _ = ask({**base, "frame": 20, "emotions": "sad:0.8"})
            emit("preview_warm_new_curves_s", round(curves, 3), "s", config)
        finally:
            proc.stdin.write("quit\n")
            proc.stdin.flush()
            proc.wait(timeout=60)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
