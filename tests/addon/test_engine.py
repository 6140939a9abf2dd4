"""The add-on's engine client without Blender: finding the engine, running jobs, cancel, crashes.

Jobs run against the fake engine (``fake_engine.py``, started as an ``emodub`` executable); the real
engine runs through the same client in ``test_real_engine.py``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from addon import engine, jobspec, protocol

SetMode = Callable[[str], Path]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def fake_job(fake_emodub: Path, tmp_path: Path, kind: str = "shot.prepare", params: dict | None = None,
             **kw: object) -> engine.EngineJob:
    command = engine.resolve_engine(str(fake_emodub))
    spec = protocol.JobSpec(kind=kind, params=params or {"video": "x.mp4", "shot": "take1"},
                            workspace=str(tmp_path))
    return engine.EngineJob(spec, command, tmp_path / "jobs", **kw)


@pytest.fixture
def fake_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], Path]:
    def set_mode(mode: str) -> Path:
        record = tmp_path / "record"
        monkeypatch.setenv("EMODUB_FAKE_MODE", mode)
        monkeypatch.setenv("EMODUB_FAKE_RECORD", str(record))
        return record

    return set_mode


# -- finding the engine ------------------------------------------------------------------------------

def test_unset_engine_uses_emodub_on_path_or_says_what_to_do() -> None:
    with pytest.raises(engine.EngineError) as err:
        engine.resolve_engine("", which=lambda _name: None)
    assert "no engine is configured" in err.value.message and "Engine command" in err.value.hint
    found = engine.resolve_engine("  ", which=lambda name: f"/opt/bin/{name}")
    assert found == engine.EngineCommand(("/opt/bin/emodub",), "emodub")
    assert found.worker("/j/spec.json") == ["/opt/bin/emodub", "worker", "--job", "/j/spec.json"]
    assert found.doctor("/ws") == ["/opt/bin/emodub", "doctor", "--json", "--workspace", "/ws"]


def test_python_and_emodub_are_told_apart_by_name_then_by_probe(tmp_path: Path, fake_emodub: Path) -> None:
    python = engine.resolve_engine(sys.executable, probe=lambda _p: pytest.fail("no probe for a python"))
    assert python.style == "python"
    assert python.worker("s.json") == [sys.executable, "-m", "core.worker", "--job", "s.json"]
    assert python.doctor() == [sys.executable, "-m", "core.cli", "doctor", "--json"]
    assert engine.resolve_engine(str(fake_emodub)).style == "emodub"
    # Leading words are kept; the last one names the program.
    conda = engine.resolve_engine("conda run -n emodub python3.11", which=lambda n: f"/usr/bin/{n}")
    assert conda.prefix == ("/usr/bin/conda", "run", "-n", "emodub", "python3.11") and conda.style == "python"
    # An odd name is probed with --version: the fake answers "emodub ...".
    odd = tmp_path / "engine-launcher"
    odd.write_text(fake_emodub.read_text())
    odd.chmod(0o755)
    assert engine.resolve_engine(str(odd)).style == "emodub"
    spaced = tmp_path / "My Tools" / "python3"
    spaced.parent.mkdir()
    spaced.symlink_to(sys.executable)
    assert engine.resolve_engine(str(spaced)) == engine.EngineCommand((str(spaced),), "python")
    liar = tmp_path / "tool"
    liar.write_text("#!/bin/sh\necho something else\n")
    liar.chmod(0o755)
    with pytest.raises(engine.EngineError, match="neither a Python nor the emodub executable"):
        engine.resolve_engine(str(liar))


def test_missing_or_not_executable_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(engine.EngineError, match="does not exist"):
        engine.resolve_engine(str(tmp_path / "nope" / "python"))
    plain = tmp_path / "python3"
    plain.write_text("")
    plain.chmod(0o644)
    with pytest.raises(engine.EngineError, match="not executable"):
        engine.resolve_engine(str(plain))
    with pytest.raises(engine.EngineError, match="not on PATH"):
        engine.resolve_engine("emodub-nowhere", which=lambda _n: None)


def test_engine_environment_text_and_blender_python_variables() -> None:
    assert engine.parse_env_text("PYTHONPATH=/src/emodub; OMP_NUM_THREADS=2\n\nA_B=x=y") == {
        "PYTHONPATH": "/src/emodub", "OMP_NUM_THREADS": "2", "A_B": "x=y"}
    with pytest.raises(engine.EngineError, match="no-equals-sign") as err:
        engine.parse_env_text("no-equals-sign")
    assert "KEY=VALUE" in err.value.hint
    env = engine.engine_environment({"X": "1"}, base={"PYTHONHOME": "/blender/python", "PATH": "/bin"})
    assert env == {"PATH": "/bin", "PYTHONUNBUFFERED": "1", "X": "1"}


# -- events -> state ---------------------------------------------------------------------------------

def test_apply_event_builds_status_text_progress_and_outcome() -> None:
    state = engine.JobState("j1", "dub", label="Render dub")
    engine.apply_event(state, protocol.Started("j1", kind="dub"))
    assert state.status == "running" and state.fraction == 0.0
    engine.apply_event(state, protocol.Progress("j1", stage="render", done=30, total=120, message="frame 30",
                                                eta_s=95.0))
    assert state.fraction == 0.25 and state.text == "render 30/120: frame 30 (about 1m35s left)"
    engine.apply_event(state, protocol.Artifact("j1", path="/w/report.json", kind="report"))
    assert state.report == "/w/report.json" and not state.outcome_known
    engine.apply_event(state, protocol.Error("j1", code="no_model", message="no renderer", hint="train"))
    assert (state.status, state.error_message, state.error_hint) == ("error", "no renderer", "press Train Actor first")
    assert state.text == "failed at 25%: no renderer" and not state.is_bug and state.fraction == 0.25


def test_one_bar_across_stages_never_full_before_done_and_kept_where_a_job_stopped() -> None:
    """Protocol 3: the bar follows the whole job (``overall``), not each stage's count."""
    state = engine.JobState("j1", "train.actor")
    seen = []
    for stage, done, total, overall in (("track c0", 5, 10, 0.1), ("track c0", 10, 10, 0.2), ("pretrain", 1, 100, 0.21),
                                        ("pretrain", 100, 100, 0.5), ("train renderer", 3, 3, 0.99)):
        engine.apply_event(state, protocol.Progress("j1", stage=stage, done=done, total=total, overall=overall,
                                                    overall_eta_s=30.0))
        seen.append(state.fraction)
    assert seen == sorted(seen) and max(seen) < 1.0 and seen[2] > seen[1]  # a new stage does not start at 0
    assert "about 30s left" in state.text
    engine.apply_event(state, protocol.Progress("j1", stage="late", done=0, total=1, overall=0.3))
    assert state.fraction == pytest.approx(0.99)  # an event out of order does not move the bar back
    engine.apply_event(state, protocol.Done("j1"))
    assert state.fraction == 1.0
    cancelled = engine.JobState("j2", "dub")
    engine.apply_event(cancelled, protocol.Progress("j2", stage="render", done=1, total=4, overall=0.4))
    engine.apply_event(cancelled, protocol.Cancelled("j2", message="by the user"))
    assert cancelled.fraction == pytest.approx(0.4) and cancelled.text == "cancelled at 40%: by the user"
    # An engine that does not send `overall` (protocol 2): the stage's count, never full before done.
    old = engine.JobState("j3", "dub")
    engine.apply_event(old, protocol.Progress("j3", stage="render", done=120, total=120))
    assert old.fraction == pytest.approx(protocol.BAR_BEFORE_DONE)


def test_engine_hints_are_told_in_the_addons_words() -> None:
    from addon import hints

    state = engine.JobState("j1", "dub")
    engine.apply_event(state, protocol.Error("j1", code="no_consent", message="anna has no consent record",
                                             hint="emodub actor consent -w /ws --actor anna --by NAME ..."))
    assert "Record Actor Consent" in state.error_hint and not protocol.names_a_command(state.error_hint)
    other = engine.JobState("j2", "train.actor")
    engine.apply_event(other, protocol.Error("j2", code="missing_input", message="no footage", hint="x"))
    assert other.error_hint == hints.WORDS["missing_input@train.actor"]
    assert not [words for words in hints.WORDS.values() if protocol.names_a_command(words)]


@pytest.mark.parametrize("code", ["bad_input", "bad_params", "bad_spec", "busy", "read_only",
                                  "incompatible_checkpoint", "unsafe_file", "missing_input"])
def test_user_errors_are_not_shown_as_bugs(code: str) -> None:
    state = engine.JobState("j1", "dub", label="Render dub")
    engine.apply_event(state, protocol.Error("j1", code=code, message="the audio is empty", hint="export it"))
    assert not state.is_bug and "bug" not in state.text and state.text == "failed: the audio is empty"
    bug = engine.JobState("j2", "dub")
    engine.apply_event(bug, protocol.Error("j2", code="internal", message="KeyError: 'x'", hint="report it"))
    assert bug.is_bug and bug.text == "emodub bug: KeyError: 'x'"
    done = engine.JobState("j2", "dub")
    engine.apply_event(done, protocol.Done("j2", outputs={"video": "/v.mp4", "report": "/r.json"}))
    assert done.status == "done" and done.report == "/r.json" and done.outputs["video"] == "/v.mp4"


# -- jobs against the fake engine --------------------------------------------------------------------

def test_job_runs_to_done_without_blocking_and_leaves_no_process(tmp_path: Path, fake_emodub: Path,
                                                                  fake_mode: SetMode) -> None:
    record = fake_mode("ok")
    job = fake_job(fake_emodub, tmp_path)
    t0 = time.monotonic()
    job.start()
    first = engine.poll_job(job)
    assert time.monotonic() - t0 < 1.0 and not first.finished  # start and poll return at once
    state = job.wait(timeout=30)
    assert state.finished and state.status == "done" and state.exit_code == 0
    assert state.outputs == {"steps": 5} and state.stage == "render" and state.done == 4
    assert not pid_alive(job.pid)
    received = json.loads((record / f"{job.id}.json").read_text())
    assert received == job.spec.to_dict()  # the engine read exactly the spec we wrote
    assert job.spec_path.parent == tmp_path / "jobs" and job.log_path.exists()


def test_engine_error_event_gives_message_and_hint(tmp_path: Path, fake_emodub: Path,
                                                   fake_mode: SetMode) -> None:
    fake_mode("fail")
    job = fake_job(fake_emodub, tmp_path)
    job.start()
    state = job.wait(timeout=30)
    assert state.status == "error" and state.exit_code == protocol.EXIT_ERROR
    assert state.error_message == "actor 'anna' has no trained renderer"
    assert state.error_hint == "press Train Actor first"
    assert any("loading the renderer failed" in line for line in state.logs)
    assert not pid_alive(job.pid)


def test_engine_crash_midway_is_reported_with_its_log(tmp_path: Path, fake_emodub: Path,
                                                      fake_mode: SetMode) -> None:
    fake_mode("crash")
    job = fake_job(fake_emodub, tmp_path)
    job.start()
    state = job.wait(timeout=30)
    assert state.status == "error" and state.error_code == "engine_crashed" and state.exit_code == 70
    assert "stopped unexpectedly (exit code 70)" in state.error_message
    assert "simulated crash in the renderer" in state.error_message  # the last stderr line
    assert str(job.log_path) in state.error_hint
    assert state.done == 1  # it had made progress before dying
    assert not pid_alive(job.pid)


def test_cancel_stops_the_engine_cleanly(tmp_path: Path, fake_emodub: Path, fake_mode: SetMode) -> None:
    fake_mode("slow")
    job = fake_job(fake_emodub, tmp_path)
    job.start()
    deadline = time.monotonic() + 30
    while engine.poll_job(job).done < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    job.cancel()
    assert time.monotonic() - t0 < 0.5 and job.state.text == "cancelling..."
    state = job.wait(timeout=30)
    assert state.status == "cancelled" and state.exit_code == protocol.EXIT_CANCELLED
    assert 3 <= state.done < 399
    assert not pid_alive(job.pid)


def test_cancel_ignored_by_the_engine_escalates_to_kill(tmp_path: Path, fake_emodub: Path,
                                                        fake_mode: SetMode) -> None:
    fake_mode("hang")
    job = fake_job(fake_emodub, tmp_path, cancel_grace_s=0.3, kill_grace_s=0.3)
    job.start()
    deadline = time.monotonic() + 30
    while engine.poll_job(job).done < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    job.cancel()
    state = job.wait(timeout=15)
    assert state.finished and state.status == "cancelled" and state.exit_code == -9  # SIGKILL
    assert any("SIGTERM" in line for line in state.logs) and any("SIGKILL" in line for line in state.logs)
    assert not pid_alive(job.pid)


def test_lines_that_are_not_events_are_logged_not_fatal(tmp_path: Path, fake_emodub: Path,
                                                        fake_mode: SetMode) -> None:
    fake_mode("noisy")
    job = fake_job(fake_emodub, tmp_path)
    job.start()
    state = job.wait(timeout=30)
    assert state.status == "done"
    assert sum("not a protocol event" in line for line in state.logs) == 5


def test_engine_that_cannot_start_is_an_engine_error(tmp_path: Path) -> None:
    gone = tmp_path / "emodub"
    gone.write_text("#!/bin/sh\n")
    gone.chmod(0o755)
    command = engine.resolve_engine(str(gone))
    gone.unlink()
    job = engine.EngineJob(protocol.JobSpec(kind="selftest"), command, tmp_path / "jobs")
    with pytest.raises(engine.EngineError, match="cannot start the engine"):
        job.start()


def test_registry_refuses_two_jobs_on_one_shot(tmp_path: Path, fake_emodub: Path, fake_mode: SetMode) -> None:
    fake_mode("slow")
    registry = engine.JobRegistry()
    first = fake_job(fake_emodub, tmp_path, keys=jobspec.job_keys(shot="take1", actor="anna"),
                     label="Render dub")
    first.start()
    registry.add(first)
    second = fake_job(fake_emodub, tmp_path, keys=jobspec.job_keys(shot="take1"), label="Prepare")
    with pytest.raises(engine.JobConflict, match="Render dub is still running on shot take1"):
        registry.add(second)
    registry.check_free(jobspec.job_keys(shot="take2", actor="bob"))  # another shot is fine
    with pytest.raises(engine.JobConflict, match="actor anna"):
        registry.check_free(jobspec.job_keys(actor="anna"))
    first.cancel()
    first.wait(timeout=30)
    registry.add(second)  # the shot is free again once the first job has finished
    assert [j.id for j in registry.jobs()] == [first.id, second.id] and registry.running() == [second]


def test_doctor_summary_and_background_run(fake_emodub: Path) -> None:
    run = engine.DoctorRun(engine.resolve_engine(str(fake_emodub)))
    run.start()
    result = run.wait(timeout=30)
    assert result is not None and result.ok and "all required checks passed" in result.summary
    assert result.lines[0].startswith("ok: python - ")
    check = {"name": "torch", "ok": False, "detail": "not importable", "hint": "pip install torch",
             "required": True}
    bad = engine.summarize_doctor(json.dumps({"emodub": "0.1", "ok": False, "checks": [check]}), "", 1)
    assert not bad.ok and bad.lines == ("FAIL: torch - not importable (hint: pip install torch)",)
    crash = "Traceback...\nModuleNotFoundError: No module named 'core'"
    garbage = engine.summarize_doctor("", crash, 1, "py")
    assert not garbage.ok and "No module named 'core'" in garbage.summary
