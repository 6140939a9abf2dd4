"""The ``track`` and ``eval.tracking`` job kinds on a tiny synthetic workspace."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.jobs import protocol as P
from core.jobs.runner import run_job
from core.tracking.synthetic import add_synthetic_clip, synthetic_params
from core.workspace import Workspace

FAST = {"iterations": 0.15, "model_resolution": "small", "device": "cpu"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, small_model) -> Workspace:
    ws = Workspace.create(tmp_path_factory.mktemp("ws") / "w")
    for clip, seed in (("a", 4), ("b", 5)):
        add_synthetic_clip(ws, "synth", clip, small_model, synthetic_params(12, seed=seed), size=96, crop_size=96)
    return ws


def _run(ws: Workspace, kind: str, params: dict) -> tuple[int, list]:
    events: list = []
    code = run_job(P.JobSpec(kind=kind, params=params, workspace=str(ws.root)), events.append)
    return code, events


def test_track_then_eval(workspace: Workspace) -> None:
    code, events = _run(workspace, "track", {"actor": "synth", "clip": "a", **FAST})
    assert code == P.EXIT_OK, events[-1]
    done = events[-1]
    folder = workspace.clip_dir("synth", "a") / "tracking"
    for name in ("params.npz", "camera.json", "quality.json", "overlay.mp4", "albedo.png", "shared.npz",
                 "config.json", "state.pt"):
        assert (folder / name).is_file(), name
    # crops at the photometric size are removed after success; the crop-size cache (what renderers read) stays
    crop_size = json.loads((folder.parent / "crop.json").read_text())["out_size"]
    kept = sorted(p.name for p in (folder.parent / "cache").glob("crops_*.npy"))
    assert kept == ([f"crops_{crop_size}.npy"] if crop_size == 128 else []), kept
    stages = {e.stage for e in events if isinstance(e, P.Progress)}
    assert {"rigid", "landmarks", "texture", "photometric", "overlay"} <= stages
    record = workspace.clip("synth", "a")
    assert record["stages"]["tracking"] is True and record["tracking"]["params"].endswith("params.npz")
    quality = json.loads((folder / "quality.json").read_text())
    assert len(quality["landmark_rmse_px_per_frame"]) == 12
    assert quality["landmark_rmse_px"] == done.outputs["landmark_rmse_px"] < 3.0
    camera = json.loads((folder / "camera.json").read_text())
    assert camera["width"] == camera["height"] == 96 and len(camera["R"]) == 3
    with np.load(folder / "params.npz") as data:
        assert data["expression"].shape[0] == 12 and data["shape"].shape[0] == 12
        assert str(data["model"]) == "procedural"
    from core.io.video import probe

    assert probe(folder / "overlay.mp4").frames == 12

    code, events = _run(workspace, "eval.tracking", {"actor": "synth", "clip": "a", "device": "cpu"})
    assert code == P.EXIT_OK, events[-1]
    result = events[-1].outputs
    assert result["ground_truth"] is True
    for key in ("landmark_rmse_px", "jaw_corr", "vertex_err_rel"):
        assert isinstance(result[key], float), key
    assert result["vertex_err_rel"] < 0.05
    assert json.loads((folder / "eval.json").read_text())["jaw_corr"] == result["jaw_corr"]


def test_tracking_every_clip_shares_the_identity(workspace: Workspace) -> None:
    code, events = _run(workspace, "track", {"actor": "synth", **FAST, "overlay": False})
    assert code == P.EXIT_OK, events[-1]
    tracked = events[-1].outputs["tracked"]
    assert [t["label"] for t in tracked] == ["clip synth/a", "clip synth/b"]
    q_b = json.loads((workspace.clip_dir("synth", "b") / "tracking" / "quality.json").read_text())
    assert q_b["identity_reused"] is True
    with np.load(workspace.clip_dir("synth", "a") / "tracking" / "shared.npz") as a, \
            np.load(workspace.clip_dir("synth", "b") / "tracking" / "shared.npz") as b:
        assert np.allclose(a["shape"], b["shape"])  # held fixed for the actor's second clip


def test_bad_requests_fail_clearly(workspace: Workspace, tmp_path) -> None:
    code, events = _run(workspace, "track", {"clip": "a"})
    assert code == P.EXIT_ERROR and events[-1].code == "bad_params"
    code, events = _run(workspace, "track", {"actor": "nobody", "clip": "a"})
    assert code == P.EXIT_ERROR and events[-1].code == "not_found"
    workspace.set_clip("synth", "bare", {"video": None, "audio": None, "fps": 25.0, "frames": 3})
    code, events = _run(workspace, "track", {"actor": "synth", "clip": "bare", **FAST})
    assert code == P.EXIT_ERROR and events[-1].code == "no_landmarks" and "landmarks" in events[-1].hint
    code, events = _run(workspace, "eval.tracking", {"actor": "synth", "clip": "bare"})
    assert code == P.EXIT_ERROR and events[-1].code == "not_tracked"
    workspace.update(lambda m: m["actors"]["synth"]["clips"].pop("bare"))


def test_cancelled_track_job_resumes(workspace: Workspace) -> None:
    from core.jobs.context import CancelToken

    token = CancelToken()
    events: list = []

    def sink(event: object) -> None:
        events.append(event)
        if isinstance(event, P.Progress) and event.stage == "landmarks":
            token.cancel()  # a cancel request arrives while the landmark stage runs

    params = {"actor": "synth", "clip": "b", **FAST, "overlay": False, "restart": True}
    spec = P.JobSpec(kind="track", params=params, workspace=str(workspace.root))
    assert run_job(spec, sink, token) == P.EXIT_CANCELLED
    assert (workspace.clip_dir("synth", "b") / "tracking" / "state.pt").is_file()
    code, events = _run(workspace, "track", {**params, "restart": False})
    assert code == P.EXIT_OK, events[-1]
    stages = [e.stage for e in events if isinstance(e, P.Progress)]
    assert "rigid" not in stages and "landmarks" in stages  # continued where it stopped
    quality = json.loads((workspace.clip_dir("synth", "b") / "tracking" / "quality.json").read_text())
    assert quality["resumed"] is True


def test_a_crafted_tracking_state_is_refused_by_emodub_track(tmp_path, small_model, crafted_pickle) -> None:
    """Issue 19: a ``tracking/state.pt`` whose unpickling calls ``os.system`` ran during ``emodub track``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    ws = Workspace.create(tmp_path / "w")
    add_synthetic_clip(ws, "synth", "evil", small_model, synthetic_params(12, seed=6), size=96, crop_size=96)
    state = ws.clip_dir("synth", "evil") / "tracking" / "state.pt"
    marker = crafted_pickle(state)
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-m", "core.cli", "track", "-w", str(ws.root), "--actor", "synth",
                          "--clip", "evil", "--iterations", "0.15", "--model-resolution", "small", "--device", "cpu",
                          "--json"], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True,
                         text=True, timeout=300)
    error = P.decode_event(out.stdout.strip().splitlines()[-1])
    assert out.returncode == P.EXIT_ERROR and isinstance(error, P.Error) and error.code == "unsafe_file"
    assert str(state) in error.message and error.hint and not error.traceback
    assert not marker.exists(), "the crafted tracking state's code ran"
    assert state.exists()  # refused, not silently replaced: the user decides what to do with it


def test_a_damaged_tracking_state_is_ignored_and_tracking_starts_over(workspace: Workspace) -> None:
    state = workspace.clip_dir("synth", "a") / "tracking" / "state.pt"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(b"PK\x03\x04 truncated")
    code, events = _run(workspace, "track", {"actor": "synth", "clip": "a", **FAST, "overlay": False})
    assert code == P.EXIT_OK, events[-1]
    assert any(isinstance(e, P.Log) and "ignoring unreadable tracking checkpoint" in e.message for e in events)
