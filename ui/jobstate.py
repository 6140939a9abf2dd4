"""The job queue's state, without Qt: records, event-driven transitions and the persisted journal.

The Qt layer (:mod:`ui.engine`) starts processes and feeds their protocol events into a
:class:`JobQueue`; views observe the queue through :class:`~ui.models.JobListModel`. Keeping the
state machine here makes it testable without a display and without an engine.

States::

    queued -> running -> done | error | cancelled
    running -> cancelling -> cancelled (or done/error when the job finished first)
    queued -> cancelled                 (cancelled before it started)
    running/cancelling/queued -> interrupted   (the app closed or crashed: see :meth:`JobQueue.load`)

The journal is ``W/.emodub-studio/jobs.json`` in the job's workspace, written atomically on every
state change (not on every progress event: a training job reports thousands of them).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.jobs import protocol as P

from . import hints

STUDIO_DIR = ".emodub-studio"
JOURNAL_NAME = "jobs.json"
JOURNAL_FORMAT = "emodub-studio-jobs"
JOURNAL_VERSION = 1

QUEUED, RUNNING, CANCELLING = "queued", "running", "cancelling"
DONE, ERROR, CANCELLED, INTERRUPTED = "done", "error", "cancelled", "interrupted"
ACTIVE_STATES = frozenset({RUNNING, CANCELLING})
FINISHED_STATES = frozenset({DONE, ERROR, CANCELLED, INTERRUPTED})
MAX_LOG_LINES = 2000  # per job; older lines are dropped so a chatty job cannot exhaust memory

# Job kinds the app starts, with a human title (the registry on the engine side is the truth).
KIND_TITLES: dict[str, str] = {
    "selftest": "Engine self-test",
    "ingest": "Import footage",
    "shot.prepare": "Prepare shot",
    "track": "Track face",
    "train.a2e": "Train audio-to-expression",
    "train.renderer": "Train renderer",
    "train.actor": "Train actor",
    "dub": "Render dub",
    "actor.consent": "Record actor consent",
}


def journal_path(workspace_root: str | Path) -> Path:
    """Where the job journal of a workspace lives."""
    return Path(workspace_root) / STUDIO_DIR / JOURNAL_NAME


@dataclass
class JobRecord:
    """Everything the app knows about one job.

    Attributes:
        id, kind, params, workspace: the job spec (``workspace`` as sent to the engine, may be ``None``).
        title: what the queue shows.
        home: workspace root whose journal keeps this record (the open workspace at submit time).
        state: one of the states in the module docstring.
        stage, done, total, message, eta_s: the latest progress event (``eta_s``: that stage's time left).
        overall, overall_eta_s: the whole job's position (0..1, across its stages) and time left, from the
            same event (``None`` from an engine older than protocol 3).
        log: recent log lines (``[level] message``), at most :data:`MAX_LOG_LINES`.
        error_code, error_message, error_hint, traceback: set in state ``error``.
        outputs: the ``done`` event's outputs.
        artifacts: ``{"path", "kind"}`` of every artifact event.
        exit_code: the process exit code once it ended (``None`` before, or when it never started).
        warnings: protocol problems (malformed lines) seen on the engine's stdout.
        created, started, finished: unix times.
    """

    id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    workspace: str | None = None
    title: str = ""
    home: str | None = None
    state: str = QUEUED
    stage: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    eta_s: float | None = None
    overall: float | None = None
    overall_eta_s: float | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    error_code: str = ""
    error_message: str = ""
    error_hint: str = ""
    traceback: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, str]] = field(default_factory=list)
    exit_code: int | None = None
    warnings: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def __post_init__(self) -> None:
        if not self.title:
            self.title = KIND_TITLES.get(self.kind, self.kind)
        if not isinstance(self.log, deque):
            self.log = deque(self.log, maxlen=MAX_LOG_LINES)

    @property
    def spec(self) -> P.JobSpec:
        return P.JobSpec(kind=self.kind, params=dict(self.params), workspace=self.workspace, id=self.id)

    @property
    def fraction(self) -> float | None:
        """The job's bar in [0, 1]: the whole job across its stages (the current stage's share alone from an
        engine that does not say, ``None`` when that is unknown too). Full only once the job is done; a failed
        or cancelled job keeps where it stopped."""
        return P.bar_fraction(self.state == DONE, self.overall, self.done, self.total)

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_bug(self) -> bool:
        """A failed job whose error is a bug in emodub (code ``internal``); every other error is the
        user's to fix, and is shown with its hint, not as a bug."""
        return self.state == ERROR and not P.is_user_error(self.error_code)

    def status_text(self) -> str:
        """One line for the queue's message column."""
        if self.state == ERROR:
            text = self.error_message or "failed"
            return f"emodub bug: {text}" if self.is_bug else text
        if self.state == DONE:
            return "finished"
        if self.state == INTERRUPTED:
            return self.message or "interrupted"
        if self.stage and self.state in ACTIVE_STATES:
            left = self.overall_eta_s if self.overall is not None else self.eta_s
            eta = f", about {_duration(left)} left" if left else ""
            text = f"{self.stage} {self.done}/{self.total}" if self.total else self.stage
            return f"{text}{': ' + self.message if self.message else ''}{eta}"
        return self.message

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "params": self.params,
            "workspace": self.workspace,
            "title": self.title,
            "home": self.home,
            "state": self.state,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "message": self.message,
            "eta_s": self.eta_s,
            "overall": self.overall,
            "overall_eta_s": self.overall_eta_s,
            "log": list(self.log)[-200:],
            "error_code": self.error_code,
            "error_message": self.error_message,
            "error_hint": self.error_hint,
            "traceback": self.traceback,
            "outputs": self.outputs,
            "artifacts": self.artifacts,
            "exit_code": self.exit_code,
            "warnings": self.warnings[-50:],
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        if not isinstance(values.get("id"), str) or not isinstance(values.get("kind"), str):
            raise ValueError("a job record needs string 'id' and 'kind'")
        return cls(**values)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


Listener = Callable[[JobRecord, str], None]


class JobQueue:
    """Ordered job records and their state transitions; listeners hear every change.

    Listener signature: ``(record, what)`` with ``what`` one of ``added``, ``changed``, ``removed``.
    """

    def __init__(self) -> None:
        self._records: dict[str, JobRecord] = {}
        self._listeners: list[Listener] = []
        self._saver: Callable[[JobRecord], None] | None = None

    # -- observation ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener, first: bool = False) -> None:
        """Hear every change; ``first`` puts the listener before the others (item models use it so
        they are up to date when other listeners react)."""
        if first:
            self._listeners.insert(0, listener)
        else:
            self._listeners.append(listener)

    def set_saver(self, saver: Callable[[JobRecord], None] | None) -> None:
        """``saver(record)`` persists the journal holding ``record``; called on each state change."""
        self._saver = saver

    def _notify(self, record: JobRecord, what: str, persist: bool = True) -> None:
        for listener in list(self._listeners):
            listener(record, what)
        if persist and self._saver is not None:
            self._saver(record)

    # -- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._records

    def __getitem__(self, job_id: str) -> JobRecord:
        return self._records[job_id]

    def records(self) -> list[JobRecord]:
        return list(self._records.values())

    def index_of(self, job_id: str) -> int:
        return list(self._records).index(job_id)

    def next_queued(self) -> JobRecord | None:
        return next((r for r in self._records.values() if r.state == QUEUED), None)

    def active(self) -> list[JobRecord]:
        return [r for r in self._records.values() if r.is_active]

    def records_of_home(self, home: str | None) -> list[JobRecord]:
        return [r for r in self._records.values() if r.home == home]

    # -- transitions ---------------------------------------------------------------------------
    def submit(self, spec: P.JobSpec, title: str = "", home: str | None = None) -> JobRecord:
        if spec.id in self._records:
            raise ValueError(f"job {spec.id} is already in the queue")
        record = JobRecord(
            id=spec.id,
            kind=spec.kind,
            params=dict(spec.params),
            workspace=spec.workspace,
            title=title,
            home=home if home is not None else spec.workspace,
        )
        self._records[spec.id] = record
        self._notify(record, "added")
        return record

    def add_existing(self, record: JobRecord) -> bool:
        """Add a record read from a journal (not re-persisted); ``False`` if its id is known."""
        if record.id in self._records:
            return False
        self._records[record.id] = record
        self._notify(record, "added", persist=False)
        return True

    def mark_running(self, job_id: str) -> JobRecord:
        record = self._records[job_id]
        if record.state != QUEUED:
            raise ValueError(f"job {job_id} is {record.state}, only queued jobs can start")
        record.state = RUNNING
        record.started = time.time()
        record.message = "starting the engine"
        self._notify(record, "changed")
        return record

    def apply(self, job_id: str, event: P.Event) -> JobRecord:
        """Update a record from one protocol event of its job."""
        record = self._records[job_id]
        state_changed = False
        if isinstance(event, P.Started):
            record.message = "started"
        elif isinstance(event, P.Progress):
            record.stage, record.done, record.total = event.stage, event.done, event.total
            record.message, record.eta_s = event.message, event.eta_s
            if event.overall is not None:  # the bar never goes back, whatever order events come in
                record.overall = max(record.overall or 0.0, event.overall)
            record.overall_eta_s = event.overall_eta_s
        elif isinstance(event, P.Log):
            record.log.append(f"[{event.level}] {event.message}")
        elif isinstance(event, P.Artifact):
            record.artifacts.append({"path": event.path, "kind": event.kind})
            record.log.append(f"[artifact] {event.kind}: {event.path}")
        elif isinstance(event, P.Error):
            record.state, state_changed = ERROR, True
            record.error_code, record.error_message = event.code, event.message
            record.error_hint = P.hint_in_own_words(event.code, record.kind, event.hint, hints.WORDS)
            record.traceback = event.traceback
            if event.hint and event.hint != record.error_hint:  # the engine's own (command-line) advice, for the log
                record.log.append(f"[hint] engine: {event.hint}")
            record.log.append(f"[error] {event.message}")
        elif isinstance(event, P.Done):
            record.state, state_changed = DONE, True
            record.outputs = dict(event.outputs)
            record.done = max(record.done, record.total)
        elif isinstance(event, P.Cancelled):
            record.state, state_changed = CANCELLED, True
            record.message = event.message or "cancelled"
        if state_changed:
            record.finished = time.time()
        self._notify(record, "changed", persist=state_changed)
        return record

    def add_log(self, job_id: str, line: str) -> None:
        record = self._records[job_id]
        record.log.append(line)
        self._notify(record, "changed", persist=False)

    def add_warning(self, job_id: str, warning: str) -> None:
        record = self._records[job_id]
        record.warnings.append(warning)
        record.log.append(f"[warning] {warning}")
        self._notify(record, "changed", persist=False)

    def request_cancel(self, job_id: str) -> bool:
        """Cancel a queued job at once or move a running one to ``cancelling``; ``True`` if the
        caller must now tell the engine process."""
        record = self._records[job_id]
        if record.state == QUEUED:
            record.state, record.message, record.finished = (
                CANCELLED,
                "cancelled before it started",
                time.time(),
            )
            self._notify(record, "changed")
            return False
        if record.state == RUNNING:
            record.state, record.message = CANCELLING, "cancelling: the engine saves what it has"
            self._notify(record, "changed")
            return True
        return False

    def process_finished(
        self, job_id: str, exit_code: int | None, stderr_tail: str = "", killed: bool = False
    ) -> JobRecord:
        """The engine process ended. Without a terminal event, its exit code decides the state."""
        record = self._records[job_id]
        record.exit_code = exit_code
        if not record.is_finished:
            if exit_code == P.EXIT_CANCELLED or (killed and record.state == CANCELLING):
                record.state = CANCELLED
                record.message = (
                    "stopped after the grace period (the engine did not respond to cancel)"
                    if killed
                    else "cancelled"
                )
            else:
                record.state = ERROR
                record.error_code = "engine_exit"
                record.error_message, record.error_hint = explain_exit(exit_code, stderr_tail, killed)
            record.finished = time.time()
        self._notify(record, "changed")
        return record

    def fail(self, job_id: str, message: str, hint: str, code: str) -> JobRecord:
        """A failure on the app's side (e.g. the engine could not be started)."""
        record = self._records[job_id]
        record.state, record.error_code = ERROR, code
        record.error_message, record.error_hint = message, hint
        record.log.append(f"[error] {message}")
        record.finished = time.time()
        self._notify(record, "changed")
        return record

    def mark_interrupted(self, job_id: str, message: str) -> None:
        record = self._records[job_id]
        if record.is_finished:
            return
        record.state, record.message, record.finished = INTERRUPTED, message, time.time()
        self._notify(record, "changed")

    def remove(self, job_id: str) -> None:
        record = self._records[job_id]
        if not record.is_finished:
            raise ValueError(f"job {job_id} is {record.state}; cancel it before removing it")
        del self._records[job_id]
        self._notify(record, "removed")

    def clear_finished(self) -> int:
        gone = [r.id for r in self._records.values() if r.is_finished]
        for job_id in gone:
            self.remove(job_id)
        return len(gone)

    # -- journal -------------------------------------------------------------------------------
    def save(self, home: str) -> Path:
        """Write the journal of ``home`` (a workspace root) atomically."""
        from core.workspace import atomic_write_json

        payload = {
            "format": JOURNAL_FORMAT,
            "version": JOURNAL_VERSION,
            "jobs": [r.to_json() for r in self.records_of_home(home)],
        }
        return atomic_write_json(journal_path(home), payload)

    def load(self, home: str) -> list[JobRecord]:
        """Read the journal of ``home``; jobs it lists as queued or running were cut off when the
        app last closed, so they come back as ``interrupted``. Returns the records added."""
        records = read_journal(journal_path(home))
        added: list[JobRecord] = []
        for record in records:
            record.home = home
            if not record.is_finished:
                was = record.state
                record.state = INTERRUPTED
                record.message = (
                    "the app closed before it started"
                    if was == QUEUED
                    else "interrupted: the app closed while it ran"
                )
            if self.add_existing(record):
                added.append(record)
        return added


def read_journal(path: Path) -> list[JobRecord]:
    """Records of a journal file; ``[]`` when there is none. A damaged journal raises ``ValueError``
    (the caller keeps the file and tells the user: it is history, not work)."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"the job journal {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != JOURNAL_FORMAT:
        raise ValueError(f"{path} is not an emodub-studio job journal")
    if data.get("version") != JOURNAL_VERSION:
        raise ValueError(
            f"{path} has journal version {data.get('version')!r}; this app reads "
            f"{JOURNAL_VERSION} (a newer emodub-studio wrote it)"
        )
    jobs = data.get("jobs", [])
    if not isinstance(jobs, list):
        raise ValueError(f"{path}: 'jobs' must be a list")
    return [JobRecord.from_json(j) for j in jobs if isinstance(j, dict)]


def explain_exit(exit_code: int | None, stderr_tail: str, killed: bool) -> tuple[str, str]:
    """Message and hint for an engine that ended without saying why (no terminal event)."""
    tail = stderr_tail.strip()
    last = tail.splitlines()[-1] if tail else ""
    if "No module named 'core'" in tail or "No module named core" in tail:
        return (
            "the engine Python cannot import emodub's engine (module 'core')",
            "set the engine Python in Settings to the emodub environment (.venv/bin/python), "
            "or install emodub into that Python",
        )
    if "No module named" in tail:
        return (
            f"the engine is missing a package: {last}",
            "install the engine's requirements into the engine Python (python build.py demo does it)",
        )
    if killed:
        return ("the engine was stopped", "run the job again")
    if exit_code == P.EXIT_BAD_SPEC:
        return ("the engine rejected the job spec", "update the app and the engine together")
    if exit_code is None:
        return ("the engine crashed", "see the log for details; run `emodub doctor` to check the set-up")
    detail = f": {last}" if last else ""
    return (
        f"the engine exited with code {exit_code} without reporting a result{detail}",
        "see the job's log; run `emodub doctor` to check the engine set-up",
    )


def summarize(records: Iterable[JobRecord]) -> dict[str, int]:
    """Count of records per state (for the status bar)."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    return counts
