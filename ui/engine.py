"""Running engine jobs from the app: one QProcess per job, speaking the job protocol.

:class:`EngineProcess` starts ``<engine python> -m core.worker``, writes the job spec as the first line
of its stdin, decodes JSON-lines events from its stdout with :func:`core.jobs.protocol.decode_event`
(a malformed line becomes a warning, never a crash) and keeps the tail of stderr (the engine's logs
for people). Cancel writes the protocol's cancel line on stdin; if the engine has not ended after the
grace period it gets SIGTERM, and after another grace period SIGKILL.

:class:`JobManager` owns the :class:`~ui.jobstate.JobQueue`, starts queued jobs (one at a time by
default), persists the journal of each workspace, and re-emits every event as a Qt signal for the
views (training curves, review).
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from core.jobs import protocol as P

from .jobstate import INTERRUPTED, JobQueue, JobRecord
from .notify import Notifier
from .settings import StudioSettings

STDERR_TAIL_LINES = 60


def prepare_engine_process(process: QProcess, settings: StudioSettings, arguments: list[str]) -> None:
    """Program, arguments, environment and folder of an engine process (the settings' Python and PYTHONPATH)."""
    env = QProcessEnvironment.systemEnvironment()
    if settings.engine_pythonpath:
        current = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (settings.engine_pythonpath, current) if p))
    env.insert("PYTHONUNBUFFERED", "1")
    process.setProcessEnvironment(env)
    if settings.engine_pythonpath and Path(settings.engine_pythonpath).is_dir():
        process.setWorkingDirectory(settings.engine_pythonpath)
    process.setProgram(settings.engine_python)
    process.setArguments(arguments)


class EngineProcess(QObject):
    """One engine worker process running one job.

    Signals:
        protocol_event(object): each decoded :class:`core.jobs.protocol.Event`, in stream order.
        warning(str): a stdout line that is not a protocol event (logged, then ignored).
        stderr_line(str): a line the engine wrote for people.
        failed_to_start(str): the engine executable could not be started (message).
        ended(object, bool): exit code (``None`` after a crash) and whether it had to be killed.
    """

    protocol_event = Signal(object)
    warning = Signal(str)
    stderr_line = Signal(str)
    failed_to_start = Signal(str)
    ended = Signal(object, bool)

    def __init__(self, spec: P.JobSpec, settings: StudioSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self.settings = settings
        self.process = QProcess(self)
        self._stdout = bytearray()
        self._stderr = bytearray()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._cancel_requested = False
        self._forced = False
        self._ended = False
        self._escalation = QTimer(self)
        self._escalation.setSingleShot(True)
        self._escalation.timeout.connect(self._escalate)
        self.process.readyReadStandardOutput.connect(self._read_stdout)
        self.process.readyReadStandardError.connect(self._read_stderr)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        prepare_engine_process(self.process, self.settings, ["-m", "core.worker"])
        self.process.start()
        # Written now, buffered by Qt until the process runs; the worker reads its first stdin line.
        self.process.write((self.spec.to_json() + "\n").encode("utf-8"))

    def cancel(self) -> None:
        """Ask the engine to stop at its next step (it saves what it has), then escalate if needed."""
        if self._ended or self._cancel_requested:
            return
        self._cancel_requested = True
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.write((P.encode_cancel() + "\n").encode("utf-8"))
            self._escalation.start(int(self.settings.cancel_grace_s * 1000))

    def kill_now(self) -> None:
        """Stop at once (app closing after its own grace period)."""
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self._forced = True
            self.process.kill()

    def _escalate(self) -> None:
        if self.process.state() == QProcess.ProcessState.NotRunning:
            return
        if not self._forced:
            self._forced = True
            self.process.terminate()  # SIGTERM: the worker treats it as a cancel request too
            self._escalation.start(int(self.settings.cancel_grace_s * 1000))
        else:
            self.process.kill()

    @property
    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    # -- reading -------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._stdout += bytes(self.process.readAllStandardOutput().data())
        *lines, rest = bytes(self._stdout).split(b"\n")
        self._stdout = bytearray(rest)
        for line in lines:
            self._handle_line(line)

    def _handle_line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            event = P.decode_event(line)
        except P.ProtocolError as exc:
            self.warning.emit(f"ignored a line from the engine that is not a protocol event: {exc}")
            return
        self.protocol_event.emit(event)

    def _read_stderr(self) -> None:
        self._stderr += bytes(self.process.readAllStandardError().data())
        *lines, rest = bytes(self._stderr).split(b"\n")
        self._stderr = bytearray(rest)
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                self.stderr_tail.append(text)
                self.stderr_line.emit(text)

    def _on_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        if self._stdout.strip():  # a last line without its newline
            self._handle_line(bytes(self._stdout))
            self._stdout.clear()
        if self._stderr.strip():
            self.stderr_tail.append(self._stderr.decode("utf-8", "replace").rstrip())
            self._stderr.clear()
        self._escalation.stop()
        if self._ended:
            return
        self._ended = True
        crashed = status == QProcess.ExitStatus.CrashExit
        self.ended.emit(None if crashed else int(exit_code), self._forced)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self._ended:
            self._ended = True
            self._escalation.stop()
            self.failed_to_start.emit(
                f"the engine could not be started: {self.settings.engine_python!r} "
                f"({self.process.errorString()})"
            )


class JobManager(QObject):
    """The app's job queue: submits, runs, cancels and journals jobs.

    Signals:
        job_added(str), job_changed(str), job_removed(str): queue changes (job id).
        job_event(str, object): every protocol event of a job, after the queue applied it.
        job_finished(str): a job reached a final state (done, error, cancelled).
    """

    job_added = Signal(str)
    job_changed = Signal(str)
    job_removed = Signal(str)
    job_event = Signal(str, object)
    job_finished = Signal(str)

    def __init__(self, settings: StudioSettings, notifier: Notifier, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.notifier = notifier
        self.queue = JobQueue()
        self.processes: dict[str, EngineProcess] = {}
        self.journal_errors: list[str] = []
        self._closing = False
        self.queue.subscribe(self._on_queue_change)
        self.queue.set_saver(self._save_journal)

    # -- queue plumbing ------------------------------------------------------------------------
    def _on_queue_change(self, record: JobRecord, what: str) -> None:
        {"added": self.job_added, "changed": self.job_changed, "removed": self.job_removed}[what].emit(
            record.id
        )

    def _save_journal(self, record: JobRecord) -> None:
        if not record.home:
            return
        try:
            self.queue.save(record.home)
        except OSError as exc:
            # A read-only workspace: jobs still run (they may write elsewhere); say it once.
            message = f"cannot write the job journal in {record.home}: {exc.strerror or exc}"
            if message not in self.journal_errors:
                self.journal_errors.append(message)

    def load_journal(self, home: str) -> list[JobRecord]:
        """Show the jobs recorded in a workspace (interrupted ones marked so)."""
        try:
            added = self.queue.load(home)
        except ValueError as exc:
            self.notifier.warning(
                "Job history not loaded", str(exc), "the file was left as it is; the queue starts empty"
            )
            return []
        if any(r.state == INTERRUPTED for r in added):
            with contextlib.suppress(OSError):
                self.queue.save(home)
        return added

    # -- public API ----------------------------------------------------------------------------
    def submit(
        self, kind: str, params: dict, workspace: str | None, home: str | None = None, title: str = ""
    ) -> JobRecord:
        spec = P.JobSpec(kind=kind, params=dict(params), workspace=workspace)
        record = self.queue.submit(spec, title=title, home=home if home is not None else workspace)
        QTimer.singleShot(0, self._pump)
        return record

    def retry(self, job_id: str) -> JobRecord:
        old = self.queue[job_id]
        return self.submit(old.kind, old.params, old.workspace, old.home, old.title)

    def cancel(self, job_id: str) -> None:
        if self.queue.request_cancel(job_id):
            process = self.processes.get(job_id)
            if process is not None:
                process.cancel()
        QTimer.singleShot(0, self._pump)

    def remove(self, job_id: str) -> None:
        self.queue.remove(job_id)

    def running(self) -> list[JobRecord]:
        return self.queue.active()

    def shutdown(self, wait_ms: int = 3000) -> None:
        """The app is closing: ask running jobs to cancel, wait a little, kill what remains, and
        journal them as interrupted (they are shown so on reopen)."""
        self._closing = True
        for job_id, process in list(self.processes.items()):
            self.queue.mark_interrupted(job_id, "interrupted: the app closed while it ran")
            process.cancel()
        for process in list(self.processes.values()):
            if not process.process.waitForFinished(wait_ms):
                process.kill_now()
                process.process.waitForFinished(1000)
        for record in self.queue.records():
            if record.state == "queued":
                self.queue.mark_interrupted(record.id, "the app closed before it started")

    # -- running -------------------------------------------------------------------------------
    def _pump(self) -> None:
        while len(self.processes) < max(1, self.settings.max_parallel_jobs):
            record = self.queue.next_queued()
            if record is None:
                return
            self._start(record)

    def _start(self, record: JobRecord) -> None:
        self.queue.mark_running(record.id)
        process = EngineProcess(record.spec, self.settings, self)
        self.processes[record.id] = process
        job_id = record.id
        process.protocol_event.connect(lambda event: self._on_event(job_id, event))
        process.warning.connect(lambda text: self.queue.add_warning(job_id, text))
        process.stderr_line.connect(lambda text: self.queue.add_log(job_id, f"[engine] {text}"))
        process.failed_to_start.connect(lambda message: self._on_failed_to_start(job_id, message))
        process.ended.connect(lambda code, killed: self._on_ended(job_id, code, killed))
        process.start()

    def _on_event(self, job_id: str, event: P.Event) -> None:
        if self._closing:
            return
        if event.job_id != job_id and event.job_id != "unknown":
            self.queue.add_warning(job_id, f"ignored an event for another job ({event.job_id})")
            return
        self.queue.apply(job_id, event)
        self.job_event.emit(job_id, event)

    def _on_failed_to_start(self, job_id: str, message: str) -> None:
        self._finish_process(job_id)
        hint = (
            "set the engine Python in File ▸ Settings to the Python of the emodub environment "
            "(e.g. /path/to/emodub/.venv/bin/python)"
        )
        self.queue.fail(job_id, message, hint, code="engine_missing")
        self.notifier.error("Engine not found", message, hint)
        self.job_finished.emit(job_id)
        QTimer.singleShot(0, self._pump)

    def _on_ended(self, job_id: str, exit_code: int | None, killed: bool) -> None:
        process = self._finish_process(job_id)
        if self._closing:
            return
        tail = "\n".join(process.stderr_tail) if process is not None else ""
        record = self.queue.process_finished(job_id, exit_code, tail, killed)
        if record.error_code == "engine_exit" and "emodub's engine" in record.error_message:
            self.notifier.error("Engine not usable", record.error_message, record.error_hint)
        self.job_finished.emit(job_id)
        QTimer.singleShot(0, self._pump)

    def _finish_process(self, job_id: str) -> EngineProcess | None:
        process = self.processes.pop(job_id, None)
        if process is not None:
            process.deleteLater()
        return process
