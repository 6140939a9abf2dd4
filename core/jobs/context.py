"""What a running job sees: progress/log/artifact reporting, cancellation, its workspace."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
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


# An ETA from fewer seconds or a smaller part of the job than this would jump about.
ETA_MIN_SECONDS = 1.0
ETA_MIN_FRACTION = 0.02


@dataclass
class _JobBar:
    """The one bar of a job: its position in [0, ``BAR_BEFORE_DONE``] across all its stages and the jobs it
    runs as steps (all of them move this one object). It never goes back."""

    started: float = field(default_factory=lambda: time.monotonic())
    fraction: float = 0.0

    def advance(self, fraction: float) -> None:
        self.fraction = max(self.fraction, min(fraction, P.BAR_BEFORE_DONE))

    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (``None`` until enough is done to tell)."""
        elapsed = time.monotonic() - self.started
        if self.fraction < ETA_MIN_FRACTION or elapsed < ETA_MIN_SECONDS:
            return None
        return elapsed * (1.0 - self.fraction) / self.fraction


@dataclass
class _Steps:
    """How one (sub-)job's share ``[lo, hi]`` of the bar is split among its steps.

    Declared steps (:meth:`JobContext.plan`) get shares in proportion to their cost. A stage nobody declared
    gets half of what is left of the share when no plan was made (a job that does not know its stages still
    moves forward, never past its share), and no room at all when one was (the plan covers the share).
    """

    lo: float = 0.0
    hi: float = 1.0
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)
    free: float = 0.0  # where the room for undeclared stages starts
    planned: bool = False

    def __post_init__(self) -> None:
        self.free = self.lo

    def span(self, name: str, now: float) -> tuple[float, float]:
        """The share of step ``name``; ``now`` is where the bar is."""
        if name in self.spans:
            return self.spans[name]
        if self.planned:
            return (min(max(now, self.lo), self.hi),) * 2
        start = min(max(self.free, now, self.lo), self.hi)
        self.spans[name] = (start, start + (self.hi - start) / 2)
        self.free = self.spans[name][1]
        return self.spans[name]


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
        self._bar = _JobBar()
        self._steps = _Steps()

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
        sub._bar, sub._steps = self._bar, self._steps  # the same job, the same bar
        self._held.callback(sub.close)
        return sub

    @property
    def device(self) -> str:
        """``cpu`` or ``cuda`` from the ``device`` param (``auto``: CUDA when available)."""
        return resolve_device(self.params.get("device"))

    def plan(self, steps: Sequence[tuple[str, float]]) -> None:
        """Declare the steps of this job in order, each with its relative cost (expected seconds, say): each
        gets that share of the job's bar. A step is a progress stage or a job run with :meth:`run_kind`
        (``step=``, or its kind). Call it before the first of them reports; stages left out of a plan show
        their label but do not move the bar."""
        steps_ = self._steps
        costs = [max(float(cost), 0.0) for _, cost in steps]
        total = sum(costs) or 1.0
        position = min(max(steps_.free, self._bar.fraction, steps_.lo), steps_.hi)  # what ran before is kept
        width = steps_.hi - position
        for (name, _), cost in zip(steps, costs, strict=True):
            end = position + width * cost / total
            steps_.spans[name] = (position, end)
            position = end
        steps_.free, steps_.planned = steps_.hi, True

    def run_kind(self, kind: str, params: dict[str, Any], step: str | None = None) -> dict[str, Any]:
        """Run another job kind as a step of this job (same workspace, events, cancel token and bar: it moves
        within the share of ``step``, default its kind, see :meth:`plan`); returns its outputs. Used by
        composite kinds such as ``shot.prepare`` and ``train.actor``."""
        from .registry import get_kind

        job = get_kind(kind)
        if job is None:
            raise JobFailed(f"job kind {kind!r} is not available in this engine", code="unknown_kind",
                            hint="update emodub; `emodub --help` lists the kinds it has")
        sub = JobContext(P.JobSpec(kind=kind, params=params, workspace=self.spec.workspace, id=self.spec.id),
                         self._sink, self.cancel_token)
        if self.spec.workspace:
            sub._workspace = self.workspace  # opened (and announced) once, by this job
        lo, hi = self._steps.span(step or kind, self._bar.fraction)
        sub._bar, sub._steps = self._bar, _Steps(lo, hi)
        outputs = job.run(sub)
        self._bar.advance(hi)
        return outputs

    # -- reporting -------------------------------------------------------------------------
    def emit(self, event: P.Event) -> None:
        self._sink(event)

    def check_cancelled(self) -> None:
        if self.cancel_token.is_cancelled:
            raise JobCancelled("cancel requested")

    def progress(self, stage: str, done: int, total: int, message: str = "") -> None:
        """Report ``done``/``total`` of ``stage`` (ETA from the stage's rate so far) and where the whole job
        is (see :meth:`plan`); then raise :class:`JobCancelled` if a cancel was requested."""
        now = time.monotonic()
        start = self._stage_start.setdefault(stage, (now, done))
        eta: float | None = None
        if done > start[1] and total > 0:
            rate = (now - start[0]) / (done - start[1])
            eta = max(0.0, rate * (total - done))
        lo, hi = self._steps.span(stage, self._bar.fraction)
        self._bar.advance(lo + (hi - lo) * (min(max(done / total, 0.0), 1.0) if total > 0 else 0.0))
        self.emit(P.Progress(self.spec.id, stage=stage, done=int(done), total=int(total), message=message,
                             eta_s=eta, overall=round(self._bar.fraction, 4), overall_eta_s=self._bar.eta_s()))
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
