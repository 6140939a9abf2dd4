"""The app's warm engine: one ``<engine python> -m core.worker --serve`` kept running for previews.

Starting Python, torch and the models takes seconds; a preview in a warm engine takes a fraction of one
(``python build.py bench preview``). :class:`WarmEngine` starts the engine on the first request, sends each job
spec as a line, and answers every request with its terminal event (done, error or cancelled). It is stopped when
the app closes (a ``quit`` line, then SIGTERM), and the engine stops by itself when the app is gone (its stdin
closes) or after 15 idle minutes.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QProcess, Signal

from core.jobs import protocol as P

from .engine import prepare_engine_process
from .settings import StudioSettings


class WarmEngine(QObject):
    """Signals:
        answered(str, object): a request's job id and its terminal event.
        progress(str, object): a request's job id and a progress event.
    """

    answered = Signal(str, object)
    progress = Signal(str, object)

    def __init__(self, settings: StudioSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.process: QProcess | None = None
        self._buffer = bytearray()
        self.pending: set[str] = set()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def request(self, spec: P.JobSpec) -> None:
        """Send ``spec`` (started the engine if needed); its answer comes as :attr:`answered`."""
        if not self.running:
            self.process = QProcess(self)
            prepare_engine_process(self.process, self.settings, ["-m", "core.worker", "--serve"])
            self.process.readyReadStandardOutput.connect(self._read)
            self.process.finished.connect(self._on_finished)
            self.process.start()
        assert self.process is not None
        self.pending.add(spec.id)
        self.process.write((spec.to_json() + "\n").encode("utf-8"))

    def stop(self, wait_ms: int = 3000) -> None:
        if not self.running:
            return
        assert self.process is not None
        self.process.write(b"quit\n")
        if not self.process.waitForFinished(wait_ms):
            self.process.terminate()
            if not self.process.waitForFinished(wait_ms):
                self.process.kill()

    def _read(self) -> None:
        assert self.process is not None
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, rest = bytes(self._buffer).split(b"\n")
        self._buffer = bytearray(rest)
        for line in lines:
            if not line.strip():
                continue
            try:
                event = P.decode_event(line)
            except P.ProtocolError:
                continue
            if isinstance(event, P.Progress):
                self.progress.emit(event.job_id, event)
            elif isinstance(event, P.Done | P.Error | P.Cancelled) and event.job_id in self.pending:
                self.pending.discard(event.job_id)
                self.answered.emit(event.job_id, event)

    def _on_finished(self, *_args: object) -> None:
        for job_id in sorted(self.pending):  # the engine ended under them
            self.answered.emit(job_id, P.Error(job_id, code="engine_stopped", message="the preview engine stopped",
                                               hint="try again (a new engine starts)"))
        self.pending.clear()
