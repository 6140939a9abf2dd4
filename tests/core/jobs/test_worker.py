"""The worker as a subprocess: ordered progress, cancel midway, no partial artifact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.jobs import protocol as P

ROOT = Path(__file__).resolve().parents[3]


def start_worker(spec: P.JobSpec) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "core.worker"], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(spec.to_json() + "\n")
    proc.stdin.flush()
    return proc


def read_events_until(proc: subprocess.Popen[str], stop: callable) -> list[P.Event]:
    assert proc.stdout is not None
    events: list[P.Event] = []
    for line in proc.stdout:
        event = P.decode_event(line)
        events.append(event)
        if stop(event):
            break
    return events


def test_selftest_streams_ordered_progress_and_done(tmp_path: Path) -> None:
    spec = P.JobSpec(kind="selftest", params={"steps": 8, "out_dir": str(tmp_path)})
    proc = start_worker(spec)
    events = read_events_until(proc, lambda e: e.name in P.TERMINAL_EVENTS)
    assert proc.wait(timeout=60) == P.EXIT_OK
    assert events[0].name == "started" and events[-1].name == "done"
    assert all(e.job_id == spec.id for e in events)
    done = [e.done for e in events if isinstance(e, P.Progress)]
    assert done == list(range(0, 9))
    report = json.loads((tmp_path / "selftest.json").read_text())
    assert report["final_loss"] < report["first_loss"]  # it really trained
    assert any(isinstance(e, P.Artifact) and e.path.endswith("selftest.json") for e in events)


@pytest.mark.parametrize("how", ["stdin", "sigterm"])
def test_cancel_midway_saves_checkpoint_and_exits_cleanly(tmp_path: Path, how: str) -> None:
    spec = P.JobSpec(kind="selftest", params={"steps": 400, "step_delay": 0.02, "out_dir": str(tmp_path)})
    proc = start_worker(spec)
    events = read_events_until(proc, lambda e: isinstance(e, P.Progress) and e.done >= 5)
    if how == "stdin":
        assert proc.stdin is not None
        proc.stdin.write(P.encode_cancel() + "\n")
        proc.stdin.flush()
    else:
        proc.send_signal(signal.SIGTERM)
    events += read_events_until(proc, lambda e: e.name in P.TERMINAL_EVENTS)
    assert proc.wait(timeout=60) == P.EXIT_CANCELLED
    assert events[-1].name == "cancelled"
    progress = [e.done for e in events if isinstance(e, P.Progress)]
    assert progress == sorted(progress) and 5 <= progress[-1] < 400
    assert not (tmp_path / "selftest.json").exists()  # the final artifact was never started
    assert (tmp_path / "selftest.ckpt").exists()      # what it had was saved...
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # ...atomically


def test_unknown_kind_and_bad_spec_give_error_events() -> None:
    proc = start_worker(P.JobSpec(kind="no-such-kind"))
    events = read_events_until(proc, lambda e: e.name in P.TERMINAL_EVENTS)
    assert proc.wait(timeout=60) == P.EXIT_BAD_SPEC
    assert isinstance(events[-1], P.Error) and "selftest" in events[-1].hint

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "core.worker"], cwd=ROOT, env=env, text=True,
                         input='{"v": 7, "kind": "selftest"}\n', capture_output=True, timeout=60)
    assert out.returncode == P.EXIT_BAD_SPEC
    error = P.decode_event(out.stdout.strip().splitlines()[-1])
    assert isinstance(error, P.Error) and "protocol version 7" in error.message


def test_job_failure_is_an_error_event_with_hint(tmp_path: Path) -> None:
    proc = start_worker(P.JobSpec(kind="selftest", params={"steps": 0, "out_dir": str(tmp_path)}))
    events = read_events_until(proc, lambda e: e.name in P.TERMINAL_EVENTS)
    assert proc.wait(timeout=60) == P.EXIT_ERROR
    assert isinstance(events[-1], P.Error) and events[-1].hint


def test_cli_json_mode_and_help() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "core.cli", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "selftest" in out.stdout and "doctor" in out.stdout
    assert time.monotonic() - t0 < 30
    out = subprocess.run([sys.executable, "-m", "core.cli", "selftest", "--steps", "3", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    names = [P.decode_event(line).name for line in out.stdout.splitlines()]
    assert names[0] == "started" and names[-1] == "done" and names.count("progress") == 4


def test_doctor_json() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "core.cli", "doctor", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    report = json.loads(out.stdout)
    names = {c["name"] for c in report["checks"]}
    assert {"python", "torch", "cuda", "ffmpeg", "mediapipe", "flame", "disk"} <= names
    assert all(c["ok"] or c["hint"] for c in report["checks"])  # every problem has a hint
    assert out.returncode == (0 if report["ok"] else 1)


def test_closing_the_stdin_pipe_cancels_an_orphaned_job(tmp_path: Path) -> None:
    spec = P.JobSpec(kind="selftest", params={"steps": 400, "step_delay": 0.02, "out_dir": str(tmp_path)})
    proc = start_worker(spec)
    read_events_until(proc, lambda e: isinstance(e, P.Progress) and e.done >= 3)
    assert proc.stdin is not None
    proc.stdin.close()  # the front-end went away
    events = read_events_until(proc, lambda e: e.name in P.TERMINAL_EVENTS)
    assert proc.wait(timeout=60) == P.EXIT_CANCELLED and events[-1].name == "cancelled"


def _worker(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "core.worker", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


@pytest.mark.timeout(90)
def test_a_spec_without_trailing_newline_on_an_open_stdin_runs() -> None:
    proc = _worker(stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(P.JobSpec(kind="selftest", params={"steps": 2}).to_json())  # no newline, stdin stays open
    proc.stdin.flush()
    events = read_events_until(proc, lambda e: e.name in P.TERMINAL_EVENTS)
    assert events[-1].name == "done"
    proc.stdin.close()
    assert proc.wait(timeout=60) == P.EXIT_OK


@pytest.mark.timeout(90)
def test_a_deeply_nested_spec_is_a_bad_spec_event() -> None:
    proc = _worker(stdin=subprocess.PIPE)
    nested = '{"v": 2, "kind": "selftest", "params": {"x": ' + "[" * 200_000 + "]" * 200_000 + "}}\n"
    out, err = proc.communicate(nested, timeout=60)
    assert proc.returncode == P.EXIT_BAD_SPEC and "RecursionError" not in err
    error = P.decode_event(out.strip().splitlines()[-1])
    assert isinstance(error, P.Error) and error.code == "bad_spec" and "nested" in error.message


@pytest.mark.timeout(90)
@pytest.mark.parametrize("stdin", ["closed pipe", "no descriptor"])
def test_job_file_with_stdin_closed_at_start_runs_to_the_end(tmp_path: Path, stdin: str) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(P.JobSpec(kind="selftest", params={"steps": 20, "step_delay": 0.01}).to_json())
    if stdin == "closed pipe":
        proc = _worker("--job", str(spec_file), stdin=subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.close()  # the caller has nothing to say on stdin
    else:
        proc = _worker("--job", str(spec_file), stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0))
    events = read_events_until(proc, lambda e: e.name in P.TERMINAL_EVENTS)
    assert proc.wait(timeout=60) == P.EXIT_OK and events[-1].name == "done"
    assert [e.done for e in events if isinstance(e, P.Progress)][-1] == 20


@pytest.mark.timeout(90)
def test_a_misspelled_param_is_refused_from_version_2_and_warned_in_version_1() -> None:
    proc = _worker(stdin=subprocess.PIPE)
    out, _ = proc.communicate(json.dumps({"v": 2, "kind": "selftest", "params": {"step": 3}}) + "\n", timeout=60)
    error = P.decode_event(out.strip().splitlines()[-1])
    assert proc.returncode == P.EXIT_BAD_SPEC and error.code == "bad_spec"
    assert "'step'" in error.message and "did you mean 'steps'" in error.message and "steps" in error.hint

    proc = _worker(stdin=subprocess.PIPE)
    out, _ = proc.communicate(json.dumps({"v": 1, "kind": "selftest", "params": {"step": 3, "steps": 2}}), timeout=60)
    lines = out.strip().splitlines()
    # answered in version 1, so that the old front-end can read it
    assert proc.returncode == P.EXIT_OK and all(json.loads(line)["v"] == 1 for line in lines)
    warnings = [e.message for e in map(P.decode_event, lines) if isinstance(e, P.Log) and e.level == "warning"]
    assert any("did you mean 'steps'" in w and "ignored" in w for w in warnings)
    assert any("update the front-end" in w for w in warnings)


def test_a_param_of_the_wrong_type_is_bad_params() -> None:
    proc = _worker(stdin=subprocess.PIPE)
    out, _ = proc.communicate(P.JobSpec(kind="selftest", params={"steps": "3"}).to_json() + "\n", timeout=60)
    error = P.decode_event(out.strip().splitlines()[-1])
    assert proc.returncode == P.EXIT_ERROR and error.code == "bad_params" and error.traceback == ""
    assert "'steps'" in error.message and "integer" in error.message
