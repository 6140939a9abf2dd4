"""Helpers shared by the bench scripts (not a benchmark itself: ``build.py bench`` skips ``_`` names)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "real"
if str(ROOT) not in sys.path:  # `python bench/x.py` without PYTHONPATH
    sys.path.insert(0, str(ROOT))


def emit(name: str, value: Any, unit: str, config: dict[str, Any]) -> None:
    """One figure as a JSON line: ``{"name", "value", "unit", "config"}``."""
    print(json.dumps({"name": name, "value": value, "unit": unit, "config": config}), flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def emodub(*args: str, log: Path) -> dict[str, Any]:
    """Run one CLI job with --json; its ``done`` outputs (raises with the error event on failure)."""
    cmd = [sys.executable, "-m", "core.cli", *args, "--json"]
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                              stdout=subprocess.PIPE, stderr=fh)
        fh.write(proc.stdout)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last = events[-1] if events else {}
    if proc.returncode != 0 or last.get("event") != "done":
        raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {json.dumps(last)[:2000]}")
    print(f"# {' '.join(args[:2])}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return last["outputs"]


def speech(seconds: float, seed: int = 0, sr: int = 16000) -> Any:
    """``seconds`` of synthetic speech (random sentences of the synthetic actor's voice), float32."""
    import numpy as np

    from core.synthetic.phonemes import random_sentence
    from core.synthetic.speech import synthesize

    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < seconds * sr:
        wave, _ = synthesize(random_sentence(rng, 8), None, sr, rng)
        parts.append(wave)
        total += wave.size
    return np.concatenate(parts)[: int(seconds * sr)].astype(np.float32)


def emotion_ramp_args(description: str | None, seconds: float) -> Any:
    """The command line of the emotion-ramp benches: a workspace, an actor's shot, a renderer model."""
    import argparse

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", "-w", type=Path, required=True)
    parser.add_argument("--actor", default="synthetic")
    parser.add_argument("--shot", default="demo_shot")
    parser.add_argument("--renderer-model", required=True)
    parser.add_argument("--emotion", default="happy")
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--bins", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    from core.expression.emotion_prior import EMOTION_SOURCES

    parser.add_argument("--emotion-source", default="auto", choices=list(EMOTION_SOURCES),
                        help="the dub's emotion source (prior: the generic expression even where filmed)")
    return parser.parse_args()


def dub_emotion_ramp(args: Any, prefix: str, seed: int) -> tuple[Any, Path, dict[str, Any], dict[str, Any], float]:
    """Dub ``args.seconds`` of synthetic speech on the shot with ``args.emotion`` ramping 0 -> 1.

    Returns (workspace, output folder, the curves' JSON, the dub's outputs, the shot's fps); the folder is
    ``args.out`` or ``<workspace>/../<prefix>-<model>`` and holds the line, the curves, the video and the log.
    """
    import numpy as np

    from core.io.audio import write_wav
    from core.workspace import Workspace

    ws = Workspace.open(args.workspace)
    name = f"{prefix}-{args.renderer_model}" + ("-prior" if args.emotion_source == "prior" else "")
    out = (args.out or args.workspace.parent / name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    fps = float(ws.shot(args.shot).get("fps") or 25.0)
    n = int(round(args.seconds * fps))
    write_wav(out / "line.wav", speech(args.seconds, seed=seed), 16000)
    curves = {"format": "emodub-emotion-curves", "version": 1, "fps": fps, "frame_start": 0,
              "per_frame": {args.emotion: np.linspace(0.0, 1.0, n).round(5).tolist()}}
    (out / "curves.json").write_text(json.dumps(curves))
    dub = emodub("dub", "-w", str(ws.root), "--actor", args.actor, "--shot", args.shot, "--audio",
                 str(out / "line.wav"), "--emotions", str(out / "curves.json"), "--renderer-model",
                 args.renderer_model, "--name", name, "--out", str(out / "dubbed.mp4"), "--device", args.device,
                 "--emotion-source", args.emotion_source, log=out / "commands.log")
    return ws, out, curves, dub, fps
