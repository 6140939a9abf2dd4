"""Run one job spec: resolve its kind, call it, and turn the outcome into protocol events.

Used by the worker process (events as JSON lines on stdout) and by the CLI (events rendered as a
progress bar). Exactly one terminal event (done, error or cancelled) is emitted per job.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable

from . import protocol as P
from .context import CancelToken, JobCancelled, JobContext, JobFailed
from .registry import all_kinds

log = logging.getLogger("emodub.jobs")


def _jsonable(outputs: object) -> dict[str, object]:
    if not isinstance(outputs, dict):
        raise TypeError(f"a job must return a dict of outputs, got {type(outputs).__name__}")
    json.dumps(outputs, allow_nan=False)  # fail here, in the engine, rather than in a front-end
    return outputs


def run_job(spec: P.JobSpec, sink: Callable[[P.Event], None], cancel: CancelToken | None = None) -> int:
    """Run ``spec`` to completion, emitting events to ``sink``; returns the process exit code."""
    kinds = all_kinds()
    kind = kinds.get(spec.kind)
    if kind is None:
        sink(P.Error(spec.id, code="unknown_kind", message=f"unknown job kind {spec.kind!r}",
                     hint="known kinds: " + ", ".join(kinds)))
        return P.EXIT_BAD_SPEC
    if kind.needs_workspace and not spec.workspace:
        sink(P.Error(spec.id, code="no_workspace", message=f"job kind {spec.kind!r} needs a workspace",
                     hint="set 'workspace' in the job spec (CLI: --workspace DIR)"))
        return P.EXIT_BAD_SPEC
    ctx = JobContext(spec, sink, cancel)
    sink(P.Started(spec.id, kind=spec.kind))
    try:
        ctx.check_cancelled()
        outputs = _jsonable(kind.run(ctx))
    except JobCancelled as exc:
        sink(P.Cancelled(spec.id, message=str(exc) or "cancelled"))
        return P.EXIT_CANCELLED
    except KeyboardInterrupt:
        sink(P.Cancelled(spec.id, message="interrupted"))
        return P.EXIT_CANCELLED
    except JobFailed as exc:
        sink(P.Error(spec.id, code=exc.code, message=exc.message, hint=exc.hint))
        return P.EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - every failure must reach the front-end as an event
        log.debug("job %s failed", spec.id, exc_info=True)
        sink(P.Error(spec.id, code="internal", message=f"{type(exc).__name__}: {exc}",
                     hint="this is a bug in emodub; please report it with the traceback",
                     traceback=traceback.format_exc()))
        return P.EXIT_ERROR
    sink(P.Done(spec.id, outputs=outputs))
    return P.EXIT_OK
