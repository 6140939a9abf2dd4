"""The job queue's state machine and its journal, without Qt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.jobs import protocol as P
from ui.jobstate import (
    CANCELLED,
    CANCELLING,
    DONE,
    ERROR,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    JobQueue,
    explain_exit,
    journal_path,
)


def _submit(queue: JobQueue, home: str | None = None, kind: str = "selftest") -> str:
    return queue.submit(P.JobSpec(kind=kind, params={"steps": 3}), home=home).id


def test_events_drive_the_states_and_listeners_hear_them() -> None:
    queue = JobQueue()
    heard: list[tuple[str, str]] = []
    queue.subscribe(lambda r, what: heard.append((what, r.state)))
    job = _submit(queue)
    assert queue[job].state == QUEUED and queue.next_queued().id == job
    queue.mark_running(job)
    queue.apply(job, P.Started(job, kind="selftest"))
    queue.apply(job, P.Progress(job, stage="fit", done=1, total=4, message="loss 0.5", eta_s=3.0))
    assert queue[job].fraction == 0.25 and "fit 1/4" in queue[job].status_text()
    queue.apply(job, P.Log(job, level="warning", message="careful"))
    queue.apply(job, P.Artifact(job, path="/x/report.json", kind="report"))
    queue.apply(job, P.Done(job, outputs={"report": "/x/report.json"}))
    record = queue[job]
    assert record.state == DONE and record.fraction == 1.0 and record.outputs["report"] == "/x/report.json"
    assert "[warning] careful" in record.log and record.artifacts == [
        {"path": "/x/report.json", "kind": "report"}
    ]
    queue.process_finished(job, P.EXIT_OK)
    assert queue[job].state == DONE and queue[job].exit_code == 0  # the done event wins
    assert heard[0] == ("added", QUEUED) and heard[-1] == ("changed", DONE)


def test_one_bar_per_job_across_its_stages_never_full_before_done() -> None:
    queue = JobQueue()
    job = _submit(queue, kind="train.actor")
    queue.mark_running(job)
    bars = []
    for stage, done, total, overall in (("track c0", 10, 10, 0.2), ("pretrain", 0, 100, 0.2),
                                        ("pretrain", 50, 100, 0.45), ("train renderer", 300, 300, 0.99)):
        queue.apply(job, P.Progress(job, stage=stage, done=done, total=total, eta_s=1.0, overall=overall,
                                    overall_eta_s=90.0))
        bars.append(queue[job].fraction)
    assert bars == sorted(bars) and bars[1] == pytest.approx(0.2) and max(bars) < 1.0
    assert "about 1 min 30 s left" in queue[job].status_text()  # the whole job's time left, not the stage's
    queue.apply(job, P.Error(job, code="bad_input", message="no audio"))
    record = queue.process_finished(job, P.EXIT_ERROR)
    assert record.state == ERROR and record.fraction == pytest.approx(0.99)
    # a journal keeps the bar of a finished job
    from ui.jobstate import JobRecord

    assert JobRecord.from_json(record.to_json()).fraction == pytest.approx(0.99)
    # an engine that says nothing of the whole job (protocol 2): the stage's count, never full before done
    old = _submit(queue)
    queue.mark_running(old)
    queue.apply(old, P.Progress(old, stage="fit", done=4, total=4))
    assert queue[old].fraction == pytest.approx(0.99)


def test_error_event_keeps_message_and_hint() -> None:
    queue = JobQueue()
    job = _submit(queue)
    queue.mark_running(job)
    queue.apply(
        job, P.Error(job, code="decode_failed", message="cannot decode frame 3", hint="re-export the movie")
    )
    record = queue.process_finished(job, P.EXIT_BAD_SPEC)
    assert record.state == ERROR and record.error_hint == "re-export the movie"
    assert "What to do" not in record.status_text() and record.status_text() == "cannot decode frame 3"
    assert not record.is_bug


@pytest.mark.parametrize("code, bug", [("bad_input", False), ("busy", False), ("read_only", False),
                                       ("unsafe_file", False), ("incompatible_checkpoint", False),
                                       ("internal", True)])
def test_only_internal_errors_are_shown_as_bugs(code: str, bug: bool) -> None:
    queue = JobQueue()
    job = _submit(queue)
    queue.mark_running(job)
    queue.apply(job, P.Error(job, code=code, message="the dub audio is empty", hint="export it again"))
    record = queue.process_finished(job, P.EXIT_ERROR)
    assert record.is_bug is bug
    assert record.status_text() == ("emodub bug: " if bug else "") + "the dub audio is empty"


def test_exit_without_terminal_event_is_explained() -> None:
    queue = JobQueue()
    job = _submit(queue)
    queue.mark_running(job)
    record = queue.process_finished(job, 1, "Traceback...\nModuleNotFoundError: No module named 'core'")
    assert record.state == ERROR and "cannot import" in record.error_message
    assert "engine Python" in record.error_hint
    job2 = _submit(queue)
    queue.mark_running(job2)
    assert queue.process_finished(job2, P.EXIT_CANCELLED).state == CANCELLED
    message, hint = explain_exit(7, "boom: disk full", killed=False)
    assert "code 7" in message and "disk full" in message and hint


def test_cancel_queued_is_immediate_and_running_goes_through_cancelling() -> None:
    queue = JobQueue()
    first, second = _submit(queue), _submit(queue)
    queue.mark_running(first)
    assert queue.request_cancel(second) is False and queue[second].state == CANCELLED
    assert queue.request_cancel(first) is True and queue[first].state == CANCELLING
    assert queue.process_finished(first, None, killed=True).state == CANCELLED
    assert "grace period" in queue[first].message
    with pytest.raises(ValueError):
        queue.mark_running(second)  # a cancelled job never starts


def test_journal_round_trip_marks_unfinished_jobs_interrupted(tmp_path: Path) -> None:
    home = str(tmp_path)
    queue = JobQueue()
    queue.set_saver(lambda record: record.home and queue.save(record.home))
    done, running, waiting = _submit(queue, home), _submit(queue, home), _submit(queue, home)
    other = _submit(queue, None)  # no workspace: not journaled
    queue.mark_running(done)
    queue.apply(done, P.Done(done, outputs={"a": 1}))
    queue.mark_running(running)
    queue.apply(running, P.Progress(running, stage="fit", done=2, total=10))
    queue.save(home)  # progress is not saved on every event; a state change or this call saves it
    data = json.loads(journal_path(home).read_text())
    assert {j["id"] for j in data["jobs"]} == {done, running, waiting} and other not in str(data)

    reopened = JobQueue()
    added = reopened.load(home)
    states = {r.id: r.state for r in added}
    assert states == {done: DONE, running: INTERRUPTED, waiting: INTERRUPTED}
    assert reopened[running].done == 2 and "closed while it ran" in reopened[running].message
    assert "before it started" in reopened[waiting].message
    assert reopened.load(home) == []  # loading twice adds nothing


def test_damaged_or_newer_journal_is_refused_with_a_message(tmp_path: Path) -> None:
    path = journal_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read"):
        JobQueue().load(str(tmp_path))
    path.write_text(json.dumps({"format": "emodub-studio-jobs", "version": 99, "jobs": []}))
    with pytest.raises(ValueError, match="newer"):
        JobQueue().load(str(tmp_path))


def test_remove_and_clear_only_finished_jobs() -> None:
    queue = JobQueue()
    a, b = _submit(queue), _submit(queue)
    queue.mark_running(a)
    with pytest.raises(ValueError, match="cancel it"):
        queue.remove(a)
    queue.request_cancel(b)
    assert queue.clear_finished() == 1 and a in queue and b not in queue
    assert queue[a].state == RUNNING


@pytest.mark.parametrize(("code", "kind", "engine_hint", "expected"), [
    ("no_consent", "dub", "emodub actor consent -w W --actor anna --by ...", "Jobs > Record actor consent…"),
    ("missing_input", "train.actor", "import the actor's footage first", "File > Import footage…"),
    ("missing_input", "dub", "prepare the shot (`emodub shot prepare`) and train", "Jobs > Train…"),
    ("decode_failed", "dub", "re-export it with --crf 18", "Jobs panel has the details"),
])
def test_hints_speak_of_the_apps_menus_not_of_commands(code: str, kind: str, engine_hint: str,
                                                       expected: str) -> None:
    from ui import hints

    queue = JobQueue()
    job = _submit(queue, kind=kind)
    queue.mark_running(job)
    queue.apply(job, P.Error(job, code=code, message="it failed", hint=engine_hint))
    record = queue[job]
    assert expected in record.error_hint and not P.names_a_command(record.error_hint)
    assert f"[hint] engine: {engine_hint}" in record.log  # the engine's own advice stays in the log
    assert not [words for words in hints.WORDS.values() if P.names_a_command(words)]
