"""Batches on a local Ray instance: a failing item does not stop the others; a stopped batch, run again, redoes
only what did not finish."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.io.audio import write_wav
from core.jobs import protocol as P
from core.jobs.runner import run_job

ROOT = Path(__file__).resolve().parents[3]


def speech(path: Path, seconds: float = 0.6, sr: int = 16000, pitch: float = 180.0) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    return write_wav(path, (0.3 * np.sin(2 * np.pi * pitch * t) * (t % 0.4 < 0.2)).astype(np.float32), sr)


def plan_file(folder: Path, name: str, tracks: dict[str, Path]) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "actor": "a", "shots": ["s"],
                                "tracks": {lang: str(audio) for lang, audio in tracks.items()}}))
    return path


def records(ws: Any, name: str) -> dict[str, dict[str, Any]]:
    folder = Path(ws.root) / "batches" / name / "items"
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json") if not p.name.endswith(".progress.json")}


def run_batch_job(ws: Any, params: dict[str, Any]) -> tuple[int, list[P.Event]]:
    events: list[P.Event] = []
    code = run_job(P.JobSpec("batch.dub", params, str(ws.root)), events.append)
    return code, events


def test_one_item_with_missing_audio_fails_alone_on_two_ray_workers(shared_trained_actor: Any,
                                                                     tmp_path: Path) -> None:
    ws = shared_trained_actor
    tracks = {lang: speech(tmp_path / f"{lang}.wav", pitch=150 + 20 * k) for k, lang in enumerate(("de", "fr", "es"))}
    tracks["it"] = tmp_path / "missing" / "it.wav"
    code, events = run_batch_job(ws, {"plan": str(plan_file(tmp_path, "four", tracks)), "workers": 2,
                                      "device": "cpu"})
    assert code == P.EXIT_OK, [e for e in events if isinstance(e, P.Error | P.Log)][-3:]
    outputs = events[-1].outputs  # type: ignore[attr-defined]
    assert (outputs["done"], outputs["failed"], outputs["skipped"]) == (3, 1, 0)
    state = records(ws, "four")
    assert {i: r["status"] for i, r in state.items()} == {"s.de.neutral": "done", "s.fr.neutral": "done",
                                                          "s.es.neutral": "done", "s.it.neutral": "failed"}
    failed = state["s.it.neutral"]["error"]
    assert failed["code"] == P.BAD_INPUT and "does not exist" in failed["message"]
    for item in ("s.de.neutral", "s.fr.neutral", "s.es.neutral"):
        assert Path(state[item]["outputs"]["video"]).is_file()
    report = Path(outputs["report"]).read_text()
    assert "3 done, 1 failed" in report
    it_row = next(line for line in report.splitlines() if line.startswith("| s.it.neutral"))
    assert "| failed |" in it_row and "does not exist" in it_row
    progress = [e for e in events if isinstance(e, P.Progress)]
    assert progress and all(a.done <= b.done for a, b in itertools.pairwise(progress))
    assert all(e.done < e.total for e in progress[:-1]) and progress[-1].done == progress[-1].total
    # what the app's queue lists under the job: the plan it announced, and each item's record
    from ui.batchview import batch_items, batch_plan_path

    plan_path = batch_plan_path([{"path": e.path, "kind": e.kind} for e in events if isinstance(e, P.Artifact)])
    assert plan_path is not None and plan_path.name == "plan.json"
    rows = {row.id: row for row in batch_items(plan_path, job_finished=True)}
    assert rows["s.it.neutral"].status == "failed" and "does not exist" in rows["s.it.neutral"].detail
    done = rows["s.de.neutral"]
    assert done.status == "done" and done.detail == state["s.de.neutral"]["outputs"]["video"]
    # Ray started and stopped inside the job: no Ray left in this process
    import ray

    assert not ray.is_initialized()


def test_a_batch_stopped_midway_redoes_only_the_unfinished_items(shared_trained_actor: Any, tmp_path: Path) -> None:
    """One item's audio is a FIFO: its dub waits on it (the event this test controls) while the others finish;
    then the batch gets SIGTERM. The rerun must run that item and no finished one."""
    ws = shared_trained_actor
    tracks = {lang: speech(tmp_path / f"{lang}.wav", pitch=150 + 20 * k) for k, lang in enumerate(("de", "fr", "es"))}
    gate = tmp_path / "held.wav"
    os.mkfifo(gate)
    tracks["en"] = gate
    plan = plan_file(tmp_path, "stopped", tracks)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "core.cli", "batch", "dub", "--plan", str(plan), "-w", str(ws.root), "--workers", "2",
           "--device", "cpu", "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = records(ws, "stopped")
            if sum(r.get("status") == "done" for r in state.values()) == 3 and \
                    state.get("s.en.neutral", {}).get("status") == "running":
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.3)
        else:
            pytest.fail(f"the three items did not finish: {records(ws, 'stopped')}")
        proc.send_signal(signal.SIGTERM)
        release_reader(gate)  # let the held dub go
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == P.EXIT_CANCELLED, err[-2000:]
    events = [P.decode_event(line) for line in out.splitlines() if line.strip()]
    assert isinstance(events[-1], P.Cancelled)
    first = records(ws, "stopped")
    assert {i for i, r in first.items() if r["status"] == "done"} == {"s.de.neutral", "s.fr.neutral", "s.es.neutral"}
    assert first["s.en.neutral"]["status"] != "done"
    report = (Path(ws.root) / "batches" / "stopped" / "batch_report.md").read_text()
    assert "Run the plan again" in report

    gate.unlink()
    speech(gate, pitch=240)
    code, events = run_batch_job(ws, {"plan": str(plan), "workers": 2, "device": "cpu"})
    assert code == P.EXIT_OK
    outputs = events[-1].outputs  # type: ignore[attr-defined]
    assert (outputs["done"], outputs["skipped"], outputs["failed"]) == (1, 3, 0)
    second = records(ws, "stopped")
    assert {i: r["attempts"] for i, r in second.items()} == {"s.de.neutral": 1, "s.fr.neutral": 1,
                                                             "s.es.neutral": 1, "s.en.neutral": 2}
    assert all(r["status"] == "done" for r in second.values())
    for item in ("s.de.neutral", "s.fr.neutral", "s.es.neutral"):  # untouched: the same record as after run one
        assert second[item]["finished"] == first[item]["finished"]


def release_reader(fifo: Path) -> bool:
    """Open the FIFO's write end and close it: a process reading it gets an empty file. Returns whether one was
    reading; none (ENXIO: it stopped on its own, e.g. cancelled by the SIGTERM) is nothing to release. Checking for
    a reader first and then opening again raced with that reader's exit."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True


def test_inline_rerun_skips_a_finished_item_until_its_audio_changes(shared_trained_actor: Any, tmp_path: Path) -> None:
    ws = shared_trained_actor
    audio = speech(tmp_path / "de.wav")
    plan = plan_file(tmp_path, "inline", {"de": audio})
    params = {"plan": str(plan), "backend": "inline", "device": "cpu"}
    code, events = run_batch_job(ws, params)
    assert code == P.EXIT_OK and events[-1].outputs["done"] == 1  # type: ignore[attr-defined]
    code, events = run_batch_job(ws, params)
    assert code == P.EXIT_OK and events[-1].outputs["skipped"] == 1  # type: ignore[attr-defined]
    speech(audio, pitch=300)  # the same path, another recording
    code, events = run_batch_job(ws, params)
    assert code == P.EXIT_OK and events[-1].outputs["done"] == 1  # type: ignore[attr-defined]
    assert records(ws, "inline")["s.de.neutral"]["attempts"] == 2
    item_events = [e for e in events if isinstance(e, P.Artifact) and e.kind == "batch_item"]
    assert [Path(e.path).name for e in item_events] == ["s.de.neutral.json"]


@pytest.fixture
def ray_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Ray head started like a studio would (`ray start --head`, with a cluster token), stopped afterwards;
    yields its address. The driver (this process) gets the same token."""
    import secrets
    import socket

    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(16))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ray_cli = Path(sys.executable).parent / "ray"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    start = subprocess.run([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=1",
                            "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], env=env, capture_output=True, timeout=120)


def run_cli(ws: Any, params: list[str], timeout: float = 240) -> tuple[int, list[P.Event]]:
    """``emodub batch dub`` in its own process (a driver joins one Ray cluster per process, with its token)."""
    cmd = [sys.executable, "-m", "core.cli", "batch", "dub", "-w", str(ws.root), "--json", *params]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, [P.decode_event(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_items_run_on_an_existing_ray_cluster(shared_trained_actor: Any, tmp_path: Path, ray_cluster: str) -> None:
    ws = shared_trained_actor
    plan = plan_file(tmp_path, "cluster", {"de": speech(tmp_path / "de.wav")})
    code, events = run_cli(ws, ["--plan", str(plan), "--ray-address", ray_cluster, "--device", "cpu"])
    assert code == P.EXIT_OK, [e for e in events if isinstance(e, P.Error | P.Log)][-3:]
    assert events[-1].outputs["done"] == 1  # type: ignore[attr-defined]
    assert any(isinstance(e, P.Log) and f"the Ray cluster at {ray_cluster}" in e.message for e in events)
    assert records(ws, "cluster")["s.de.neutral"]["status"] == "done"
    status = subprocess.run([str(Path(sys.executable).parent / "ray"), "status", f"--address={ray_cluster}"],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0  # the batch left the cluster running: it was not its own


def test_an_unreachable_cluster_is_a_user_error(shared_trained_actor: Any, tmp_path: Path) -> None:
    plan = plan_file(tmp_path, "nowhere", {"de": speech(tmp_path / "de.wav")})
    code, events = run_batch_job(shared_trained_actor, {"plan": str(plan), "ray_address": "127.0.0.1:9",
                                                        "device": "cpu"})
    error = events[-1]
    assert code == P.EXIT_ERROR and isinstance(error, P.Error) and error.code == "ray_unreachable", error
    assert "127.0.0.1:9" in error.message and "ray status" in error.hint


@pytest.mark.slow
def test_an_item_no_cluster_node_can_hold_is_refused_at_once(shared_trained_actor: Any, tmp_path: Path,
                                                             ray_cluster: str) -> None:
    plan = plan_file(tmp_path, "too-big", {"de": speech(tmp_path / "de.wav")})
    code, events = run_cli(shared_trained_actor, ["--plan", str(plan), "--ray-address", ray_cluster, "--threads", "4",
                                                  "--device", "cpu"])
    error = events[-1]
    assert code == P.EXIT_ERROR and isinstance(error, P.Error) and error.code == "bad_params", error
    assert "has 4 CPU(s)" in error.message and "largest has 1 CPU(s)" in error.message


def test_gpu_items_on_a_machine_without_a_gpu_are_refused_at_once(shared_trained_actor: Any, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    plan = plan_file(tmp_path, "gpu", {"de": speech(tmp_path / "de.wav")})
    code, events = run_batch_job(shared_trained_actor, {"plan": str(plan), "device": "cuda", "workers": 1})
    error = events[-1]
    assert code == P.EXIT_ERROR and isinstance(error, P.Error) and error.code == "bad_params", error
    assert "no node of the local Ray instance" in error.message and "0 GPU(s)" in error.message
    assert "--device cpu" in error.hint and not records(shared_trained_actor, "gpu")
