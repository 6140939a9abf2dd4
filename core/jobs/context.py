"""What a running job sees: progress/log/artifact reporting, cancellation, its workspace."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import protocol as P

if TYPE_CHECKING:
    from core.workspace import Workspace

T = TypeVar("T")


class JobCancelled(Exception):
    """Raised inside a job at its next step after a cancel request; the runner turns it into the
    ``cancelled`` event. Jobs catch it only to save what they have, then re-raise."""


class JobFailed(Exception):
    """A failure the user can act on: ``code`` for programs, ``message`` and ``hint`` for people."""

    def __init__(self, message: str, *, hint: str = "", code: str = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


class CancelToken:
    """A thread-safe flag set by SIGTERM, a ``cancel`` line on stdin, Ctrl-C or a test."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def is_cancelled(self) -> bool:
        return self._event.is_set()


def resolve_device(wanted: str | None) -> str:
    """``cpu`` or ``cuda`` for a ``device`` param (``auto`` or none: CUDA when available)."""
    if wanted and wanted != "auto":
        return str(wanted)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class JobContext:
    """Passed to every job function. Reporting methods also act as cancellation points."""

    def __init__(self, spec: P.JobSpec, sink: Callable[[P.Event], None],
                 cancel: CancelToken | None = None) -> None:
        self.spec = spec
        self.params: dict[str, Any] = dict(spec.params)
        self._sink = sink
        self.cancel_token = cancel or CancelToken()
        self._stage_start: dict[str, tuple[float, int]] = {}
        self._workspace: Workspace | None = None
        self._held = contextlib.ExitStack()

    # -- workspace -------------------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        """The job's workspace, opened (and validated) on first use.

        From then on until :meth:`close` the job holds the lock ``job/<id>`` in it, so that other jobs
        know it is at work and leave its files in progress alone; and when no other job is at work,
        the leftovers of interrupted ones are removed (:meth:`core.workspace.Workspace.cleanup`).
        """
        if self._workspace is None:
            if not self.spec.workspace:
                raise JobFailed(f"job kind {self.spec.kind!r} needs a workspace",
                                hint="pass --workspace DIR (create one with `emodub workspace init DIR`)",
                                code="no_workspace")
            from core.workspace import Workspace, WorkspaceError

            try:
                self._workspace = Workspace.open(self.spec.workspace)
            except WorkspaceError as exc:
                raise JobFailed(str(exc), hint=exc.hint, code="bad_workspace") from None
            self._announce(self._workspace)
        return self._workspace

    def _announce(self, ws: Workspace) -> None:
        try:
            self._held.enter_context(ws.lock(f"job/{self.spec.id}"))
        except OSError:
            return  # a read-only workspace: nothing to clean; the job fails with read_only if it writes
        self._report_removed(ws.cleanup())

    def _report_removed(self, removed: object) -> None:
        from core.workspace.cleanup import Leftovers

        if isinstance(removed, Leftovers) and removed:
            lines = removed.describe(self.workspace.root)
            self.log(f"removed {len(lines)} leftover(s) of interrupted jobs: " + "; ".join(lines[:5])
                     + (" ..." if len(lines) > 5 else ""))

    def remove_leftovers(self) -> None:
        """After a cancel: remove what the job left half-made (a partial render, temporary files) unless
        other jobs are at work (then the next job or `emodub workspace clean` does it)."""
        if self._workspace is None:
            return
        from core.workspace import WorkspaceError

        try:
            self._report_removed(self._workspace.cleanup())
        except (OSError, WorkspaceError) as exc:
            self.log(f"could not remove the leftovers of this job: {exc}", "warning")

    def close(self) -> None:
        """Release what the job holds in its workspace (its ``job/<id>`` lock)."""
        self._held.close()

    def in_workspace(self, workspace: str) -> JobContext:
        """A context for steps of this job in another workspace (same id, events and cancel token),
        closed with this one."""
        sub = JobContext(P.JobSpec(kind=self.spec.kind, params=self.params, workspace=workspace, id=self.spec.id),
                         self._sink, self.cancel_token)
        self._held.callback(sub.close)
        return sub

    @property
    def device(self) -> str:
        """``cpu`` or ``cuda`` from the ``device`` param (``auto``: CUDA when available)."""
        return resolve_device(self.params.get("device"))

    def run_kind(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run another job kind as a step of this job (same workspace, events and cancel token);
        returns its outputs. Used by composite kinds such as ``shot.prepare`` and ``train.actor``."""
        from .registry import get_kind

        job = get_kind(kind)
        if job is None:
            raise JobFailed(f"job kind {kind!r} is not available in this engine", code="unknown_kind",
                            hint="update emodub; `emodub --help` lists the kinds it has")
        sub = JobContext(P.JobSpec(kind=kind, params=params, workspace=self.spec.workspace, id=self.spec.id),
                         self._sink, self.cancel_token)
        if self.spec.workspace:
            sub._workspace = self.workspace  # opened (and announced) once, by this job
        return job.run(sub)

    # -- reporting -------------------------------------------------------------------------
    def emit(self, event: P.Event) -> None:
        self._sink(event)

    def check_cancelled(self) -> None:
        if self.cancel_token.is_cancelled:
            raise JobCancelled("cancel requested")

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        """Report ``done``/``total`` of ``stage`` (ETA from the stage's rate so far); then raise
        :class:`JobCancelled` if a cancel was requested."""
        now = time.monotonic()
        start = self._stage_start.setdefault(stage, (now, done))
        eta: float | None = None
        if done > start[1] and total > 0:
            rate = (now - start[0]) / (done - start[1])
            eta = max(0.0, rate * (total - done))
        self.emit(P.Progress(self.spec.id, stage=stage, done=int(done), total=int(total),
                             message=message, eta_s=eta))
        self.check_cancelled()

    def log(self, message: str, level: str = "info") -> None:
        self.emit(P.Log(self.spec.id, level=level, message=message))

    def artifact(self, path: str | Path, kind: str) -> None:
        self.emit(P.Artifact(self.spec.id, path=str(path), kind=kind))

    def track(self, items: Iterable[T], stage: str, total: int | None = None,
              message: str = "") -> Iterator[T]:
        """Iterate ``items`` reporting progress for ``stage`` after each one (a cancellation point)."""
        if total is None:
            total = len(items) if hasattr(items, "__len__") else 0  # type: ignore[arg-type]
        self.progress(stage, 0, total, message)
        for i, item in enumerate(items, 1):
            yield item
            self.progress(stage, i, total, message)
