"""The add-on's engine client against the REAL engine (``python -m core.worker``): the ``selftest``
kind started, polled to ``done``, and cancelled midway, exactly as the add-on runs its jobs."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from addon import engine, protocol

ROOT = Path(__file__).resolve().parents[2]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def real_engine_job(tmp_path: Path, params: dict) -> engine.EngineJob:
    command = engine.resolve_engine(sys.executable)
    spec = protocol.JobSpec(kind="selftest", params={"out_dir": str(tmp_path / "out"), **params})
    return engine.EngineJob(spec, command, tmp_path / "jobs",
                            env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})


def test_real_engine_selftest_start_poll_done(tmp_path: Path) -> None:
    job = real_engine_job(tmp_path, {"steps": 6})
    job.start()
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while not (state := engine.poll_job(job)).finished and time.monotonic() < deadline:
        if not seen or seen[-1] != state.done:
            seen.append(state.done)
        time.sleep(0.02)
    assert state.status == "done" and state.exit_code == 0, state.error_message or job.log_tail()
    assert seen == sorted(seen) and state.done == 6 and state.total == 6
    report = json.loads(Path(state.outputs["report"]).read_text())
    assert report["final_loss"] < report["first_loss"] and state.report == state.outputs["report"]
    assert not pid_alive(job.pid)


@pytest.mark.slow
def test_real_engine_selftest_cancel(tmp_path: Path) -> None:
    job = real_engine_job(tmp_path, {"steps": 400, "step_delay": 0.02})
    job.start()
    deadline = time.monotonic() + 120
    while engine.poll_job(job).done < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.cancel()
    state = job.wait(timeout=60)
    assert state.status == "cancelled" and state.exit_code == protocol.EXIT_CANCELLED
    assert (tmp_path / "out" / "selftest.ckpt").exists() and not (tmp_path / "out" / "selftest.json").exists()
    assert not pid_alive(job.pid)


def test_a_warm_engine_runs_jobs_in_turn_in_one_process_cancels_and_quits(tmp_path: Path) -> None:
    """What Preview Frame uses: ``worker --serve`` kept up between jobs, a cancel stops only the job, ``quit``
    (disabling the add-on, quitting Blender) ends the process."""
    warm = engine.WarmEngine(engine.resolve_engine(sys.executable), tmp_path / "jobs",
                             env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, idle_exit_s=120)
    spec = protocol.JobSpec(kind="selftest", params={"out_dir": str(tmp_path / "a"), "steps": 4})
    first = warm.submit(spec)
    assert first.wait(120).status == "done", warm.log_tail(20)
    pid = warm.pid
    assert pid is not None and pid_alive(pid)  # still up after its job
    slow = warm.submit(protocol.JobSpec(kind="selftest", params={"out_dir": str(tmp_path / "b"), "steps": 400,
                                                                 "step_delay": 0.02}))
    with pytest.raises(engine.JobConflict, match="still running"):
        warm.submit(protocol.JobSpec(kind="selftest", params={"out_dir": str(tmp_path / "c")}))
    deadline = time.monotonic() + 60
    while slow.poll().done < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    slow.cancel()
    assert slow.wait(60).status == "cancelled" and warm.pid == pid  # the job stopped, the engine did not
    again = warm.submit(protocol.JobSpec(kind="selftest", params={"out_dir": str(tmp_path / "d"), "steps": 2}))
    assert again.wait(60).status == "done" and warm.pid == pid
    warm.stop()
    assert not warm.alive
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)
