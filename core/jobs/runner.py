"""Run one job spec: resolve its kind, check its params, call it, and turn the outcome into protocol
events.

Used by the worker process (events as JSON lines on stdout) and by the CLI (events rendered as a
progress bar). Exactly one terminal event (done, error or cancelled) is emitted per job. A failure is
a user error with its own code and hint when :func:`core.jobs.errors.classify` knows it, and
``internal`` (a bug, with the traceback) only when it does not.
"""

from __future__ import annotations

import difflib
import json
import logging
import traceback
from collections.abc import Callable

from . import protocol as P
from .context import CancelToken, JobCancelled, JobContext, JobFailed
from .errors import classify
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
        close = difflib.get_close_matches(spec.kind, list(kinds), n=1)
        sink(P.Error(spec.id, code="unknown_kind",
                     message=f"unknown job kind {spec.kind!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                     hint="known kinds: " + ", ".join(kinds)))
        return P.EXIT_BAD_SPEC
    if kind.needs_workspace and not spec.workspace:
        sink(P.Error(spec.id, code="no_workspace", message=f"job kind {spec.kind!r} needs a workspace",
                     hint="set 'workspace' in the job spec (CLI: --workspace DIR)"))
        return P.EXIT_BAD_SPEC
    try:
        warnings = kind.check_params(spec.params, strict=spec.strict)
    except JobFailed as exc:
        sink(P.Error(spec.id, code=exc.code, message=exc.message, hint=exc.hint))
        return P.EXIT_BAD_SPEC if exc.code == P.BAD_SPEC else P.EXIT_ERROR
    ctx = JobContext(spec, sink, cancel)
    sink(P.Started(spec.id, kind=spec.kind))
    if not spec.strict:
        ctx.log(f"this job spec speaks protocol version {spec.version} (an older add-on or app; the engine speaks "
                f"{P.PROTOCOL_VERSION}): params the job does not have are ignored; update the front-end", "warning")
    for warning in warnings:
        ctx.log(warning, "warning")
    try:
        ctx.check_cancelled()
        outputs = _jsonable(kind.run(ctx))
    except (JobCancelled, KeyboardInterrupt) as exc:
        ctx.remove_leftovers()
        message = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc) or "cancelled"
        sink(P.Cancelled(spec.id, message=message))
        return P.EXIT_CANCELLED
    except Exception as exc:  # noqa: BLE001 - every failure must reach the front-end as an event
        failed = classify(exc, spec.workspace)
        if failed is None:
            log.debug("job %s failed", spec.id, exc_info=True)
            sink(P.Error(spec.id, code=P.INTERNAL, message=f"{type(exc).__name__}: {exc}",
                         hint="this is a bug in emodub; please report it with the traceback",
                         traceback=traceback.format_exc()))
        else:
            sink(P.Error(spec.id, code=failed.code, message=failed.message, hint=failed.hint))
        return P.EXIT_ERROR
    finally:
        ctx.close()
    sink(P.Done(spec.id, outputs=outputs))
    return P.EXIT_OK
