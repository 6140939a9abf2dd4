"""`emodub demo` end to end on CPU with the smallest preset (every stage runs for real), comparing the
neural-texture renderer with LipNeRF."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_smoke_preset_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-m", "core.cli", "demo", "--preset", "smoke", "--out", str(tmp_path),
                          "--device", "cpu", "--compare", "neural_texture,lipnerf", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    bar = [(e["stage"], e["overall"]) for e in events if e.get("event") == "progress" and e.get("overall") is not None]
    assert bar and all(b[1] >= a[1] - 1e-9 for a, b in itertools.pairwise(bar))  # never goes back
    # the demo's plan: the bar is not nearly full before its last steps (the dubs) start
    first_dub = next(i for i, (stage, _) in enumerate(bar) if stage == "predict")
    assert 0.2 < bar[first_dub][1] < 0.9
    report = json.loads((tmp_path / "report.json").read_text())
    from core.io.video import probe

    dubbed, gt, sbs = (probe(tmp_path / name) for name in ("dubbed.mp4", "ground_truth.mp4", "side_by_side.mp4"))
    assert dubbed.has_audio and dubbed.frames == report["frames"] == gt.frames
    assert sbs.width == dubbed.width + gt.width
    names = ("neural_texture", "neural_texture_static", "lipnerf")  # the smoke preset runs the ablation too
    assert set(report["timings_s"]) == {"corpus", "tracking", "train_a2e", "dub", "ground_truth",
                                        *(f"{stage}_{n}" for n in names for stage in ("train", "eval"))}
    held = report["metrics"]["renderer_held_out"]
    assert set(held) == set(names)
    frames = {scores["frames"] for scores in held.values()}
    assert len(frames) == 1 and frames.pop() > 0  # every variant on the same held-out frames
    for scores in held.values():
        assert 0 < scores["face_psnr"] < 60 and 0 < scores["psnr"] < 60 and 0 < scores["ssim"] <= 1
    compare = probe(tmp_path / "compare.mp4")
    assert compare.width == 3 * gt.width and set(report["metrics"]["compare"]) == {"neural_texture", "lipnerf"}
    assert 0 < report["metrics"]["psnr_vs_ground_truth"] < 60
    assert (tmp_path / "report.md").exists()
