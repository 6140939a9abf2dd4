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
