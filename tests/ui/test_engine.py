"""Jobs through the real engine as a QProcess: ordered progress signals, clean Cancel, the engine
missing, a misbehaving engine (garbage lines, ignoring cancel), and the dub job once it exists."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from core.jobs import protocol as P
from ui.engine import JobManager
from ui.jobstate import CANCELLED, DONE, ERROR, INTERRUPTED, JobQueue

pytestmark = pytest.mark.qt
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def manager(qtbot, studio_settings, notifier) -> JobManager:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    jobs = JobManager(studio_settings, notifier)
    yield jobs
    jobs.shutdown(wait_ms=2000)


def _collect(manager: JobManager) -> list[P.Event]:
    events: list[P.Event] = []
    manager.job_event.connect(lambda _job, event: events.append(event))
    return events


@pytest.mark.slow  # the worker imports torch: a few seconds, more on a busy machine
def test_selftest_runs_with_progress_in_order(qtbot, manager, tmp_path: Path) -> None:
    events = _collect(manager)
    with qtbot.waitSignal(manager.job_finished, timeout=90000):
        record = manager.submit("selftest", {"steps": 6, "out_dir": str(tmp_path)}, None)
    assert record.state == DONE and record.exit_code == P.EXIT_OK
    names = [e.name for e in events]
    assert names[0] == "started" and names[-1] == "done"
    assert [e.done for e in events if isinstance(e, P.Progress)] == list(range(7))
    assert record.outputs["final_loss"] < record.outputs["first_loss"]
    assert (tmp_path / "selftest.json").exists()
    assert any(a["kind"] == "report" for a in record.artifacts)
    assert any("selftest: torch" in line for line in record.log)


@pytest.mark.slow
def test_cancel_ends_the_job_cleanly(qtbot, manager, tmp_path: Path) -> None:
    record = manager.submit("selftest", {"steps": 2000, "step_delay": 0.02, "out_dir": str(tmp_path)}, None)
    qtbot.waitUntil(lambda: record.done >= 3, timeout=90000)
    assert record.state == "running"
    with qtbot.waitSignal(manager.job_finished, timeout=30000):
        manager.cancel(record.id)
        assert record.state == "cancelling"
    assert record.state == CANCELLED and record.exit_code == P.EXIT_CANCELLED
    assert 3 <= record.done < 2000 and not manager.processes  # process gone
    assert (tmp_path / "selftest.ckpt").exists() and not (tmp_path / "selftest.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_unknown_kind_error_carries_the_engine_hint(qtbot, manager) -> None:
    with qtbot.waitSignal(manager.job_finished, timeout=60000):
        record = manager.submit("no-such-kind", {}, None)
    assert record.state == ERROR and record.exit_code == P.EXIT_BAD_SPEC
    assert "unknown job kind" in record.error_message and "update emodub" in record.error_hint


def test_engine_missing_is_a_clear_dialog_and_the_queue_goes_on(qtbot, manager, notifier, tmp_path) -> None:
    manager.settings.engine_python = str(tmp_path / "no" / "python")
    with qtbot.waitSignal(manager.job_finished, timeout=10000):
        first = manager.submit("selftest", {"steps": 1}, None)
    assert first.state == ERROR and first.error_code == "engine_missing"
    dialog = notifier.of_level("error")[-1]
    assert (
        dialog.title == "Engine not found" and "Settings" in dialog.hint and str(tmp_path) in dialog.message
    )
    # An engine Python that cannot import emodub: told so, with what to do (the symptom is simulated:
    # this interpreter has emodub installed, so the real one would be found).
    manager.settings.engine_python = _fake_engine(
        tmp_path,
        """
        import sys
        sys.stderr.write("Traceback (most recent call last):\\n")
        sys.stderr.write("ModuleNotFoundError: No module named 'core'\\n")
        sys.exit(1)
    """,
    )
    with qtbot.waitSignal(manager.job_finished, timeout=20000):
        second = manager.submit("selftest", {"steps": 1}, None)
    assert second.state == ERROR and "cannot import" in second.error_message
    assert notifier.of_level("error")[-1].title == "Engine not usable"
    assert any("No module named 'core'" in line for line in second.log)


def _fake_engine(tmp_path: Path, body: str) -> str:
    """An executable standing in for the engine Python (it ignores `-m core.worker`)."""
    script = tmp_path / "engine.py"
    script.write_text(textwrap.dedent(body))
    launcher = tmp_path / "fake-python"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {script}\n")
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return str(launcher)


def test_malformed_lines_become_warnings_not_crashes(qtbot, manager, tmp_path) -> None:
    manager.settings.engine_python = _fake_engine(
        tmp_path,
        """
        import json, sys, time
        spec = json.loads(sys.stdin.readline())
        def emit(**kw):
            print(json.dumps({"v": 1, "job_id": spec["id"], "t": time.time(), **kw}), flush=True)
        emit(event="started", kind=spec["kind"])
        print("this is not json", flush=True)
        print(json.dumps({"v": 99, "event": "progress"}), flush=True)
        emit(event="progress", stage="s", done=1, total=2, message="", eta_s=None)
        done = {"v": 1, "job_id": spec["id"], "t": 0, "event": "done", "outputs": {"x": 1}}
        sys.stdout.write(json.dumps(done))
    """,
    )  # the last line has no newline: it must still be read
    events = _collect(manager)
    with qtbot.waitSignal(manager.job_finished, timeout=20000):
        record = manager.submit("selftest", {}, None)
    assert record.state == DONE and record.outputs == {"x": 1}
    assert [e.name for e in events] == ["started", "progress", "done"]
    assert (
        len(record.warnings) == 2 and "not JSON" in record.warnings[0] and "version 99" in record.warnings[1]
    )


def test_engine_ignoring_cancel_is_terminated_then_killed(qtbot, manager, tmp_path) -> None:
    manager.settings.cancel_grace_s = 0.5
    manager.settings.engine_python = _fake_engine(
        tmp_path,
        """
        import json, signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # a stuck engine
        spec = json.loads(sys.stdin.readline())
        print(json.dumps({"v": 1, "event": "started", "job_id": spec["id"], "t": time.time(),
                          "kind": spec["kind"]}), flush=True)
        time.sleep(120)
    """,
    )
    with qtbot.waitSignal(manager.job_event, timeout=20000):
        record = manager.submit("selftest", {}, None)
    with qtbot.waitSignal(manager.job_finished, timeout=20000):
        manager.cancel(record.id)
    assert record.state == CANCELLED and "grace period" in record.message and not manager.processes


def test_jobs_running_at_close_are_interrupted_on_reopen(qtbot, studio_settings, notifier, tmp_path) -> None:
    home = tmp_path / "ws"
    home.mkdir()
    studio_settings.engine_python = _fake_engine(
        tmp_path,
        """
        import json, sys, time
        spec = json.loads(sys.stdin.readline())
        print(json.dumps({"v": 1, "event": "started", "job_id": spec["id"], "t": time.time(),
                          "kind": spec["kind"]}), flush=True)
        for line in sys.stdin:          # honours cancel
            sys.exit(3)
    """,
    )
    first = JobManager(studio_settings, notifier)
    with qtbot.waitSignal(first.job_event, timeout=20000):
        running = first.submit("train.a2e", {"actor": "anna"}, str(home))
    waiting = first.submit("train.renderer", {"actor": "anna"}, str(home))
    first.shutdown(wait_ms=5000)
    assert not first.processes

    reopened = JobManager(studio_settings, notifier)
    added = reopened.load_journal(str(home))
    states = {r.id: r.state for r in added}
    assert states == {running.id: INTERRUPTED, waiting.id: INTERRUPTED}
    assert "closed while it ran" in reopened.queue[running.id].message
    # Interrupted jobs can be run again with the same parameters.
    again = reopened.retry(running.id)
    assert again.kind == "train.a2e" and again.params == {"actor": "anna"} and again.id != running.id
    reopened.cancel(again.id)
    reopened.shutdown(wait_ms=2000)
    assert JobQueue().load(str(home))  # the journal on disk is still readable


@pytest.mark.slow
def test_tiny_dub_through_the_app(qtbot, studio_settings, notifier, shot_workspace) -> None:
    """The dub job from the timeline to the review tab. Needs the engine's ``dub`` kind; where the demo
    workspace has no trained actor the engine's error (with its hint) is the expected outcome."""
    from core.jobs.registry import get_kind
    from ui import curvedoc as cd
    from ui.app import MainWindow

    if get_kind("dub") is None:
        pytest.skip("the engine has no 'dub' job kind yet")
    window = MainWindow(studio_settings, notifier)
    qtbot.addWidget(window)
    window.open_workspace(shot_workspace.root)
    window.open_shot("scene12")
    qtbot.waitUntil(lambda: window.timeline.media_loading == 0, timeout=20000)
    window.timeline.push_edit(cd.apply_preset(window.timeline.doc, "happy", "ramp in", 5, 30, 0.8))
    events = _collect(window.jobs)
    with qtbot.waitSignal(window.jobs.job_finished, timeout=600000):
        record = window.render_dub("anna")
    progress = [(e.stage, e.done) for e in events if isinstance(e, P.Progress)]
    for stage in {s for s, _ in progress}:
        done = [d for s, d in progress if s == stage]
        assert done == sorted(done), f"progress of {stage} went backwards"
    if record.state == ERROR:
        assert record.error_hint, "a failed dub must say what to do"
        pytest.skip(f"dub failed as expected without a trained actor: {record.error_message}")
    assert record.state == DONE and Path(record.outputs["video"]).exists()
    assert window.tabs.currentWidget() is window.review and window.review.render_path is not None
    assert window.review.n_frames == record.outputs["frames"]
    window.jobs.shutdown()


@pytest.mark.slow
def test_dub_with_a_trained_tiny_actor(qtbot, studio_settings, notifier, tmp_path, tiny_trained_shot) -> None:
    """A real dub from the app: a tiny actor whose tracked clips are rendered from known parameters is
    trained for a few steps in-process, then the app renders a shot and opens it in the review tab."""
    import torch

    from ui import curvedoc as cd
    from ui.app import MainWindow

    torch.set_num_threads(1)
    ws = tiny_trained_shot(tmp_path / "ws", "anna", "scene12")
    window = MainWindow(studio_settings, notifier)
    qtbot.addWidget(window)
    window.open_workspace(ws.root)
    window.open_shot("scene12")
    qtbot.waitUntil(lambda: window.timeline.media_loading == 0, timeout=20000)
    window.timeline.push_edit(cd.apply_preset(window.timeline.doc, "happy", "ramp in", 2, 20, 0.8))
    events = _collect(window.jobs)
    with qtbot.waitSignal(window.jobs.job_finished, timeout=600000):
        record = window.render_dub("anna")
    assert record.state == DONE, f"{record.error_message} / {record.error_hint}"
    progress = [e.done for e in events if isinstance(e, P.Progress) and e.stage == "render"]
    assert progress == sorted(progress) and progress[-1] == record.outputs["frames"]
    assert Path(record.outputs["video"]).exists()
    assert window.tabs.currentWidget() is window.review and window.review.n_frames == record.outputs["frames"]
    window.jobs.shutdown()
