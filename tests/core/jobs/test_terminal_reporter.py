"""The terminal's progress bars: one per stage, a fresh one when a stage runs again."""

from __future__ import annotations

import io

from core.cli import TerminalReporter
from core.jobs import protocol as P


def _progress(stage: str, done: int, total: int = 4) -> P.Progress:
    return P.Progress(job_id="j", stage=stage, done=done, total=total)


def test_a_stage_that_runs_again_gets_its_own_bar() -> None:
    """The demo evaluates two models one after the other under the same stage name: the second evaluation
    must count from 0 again, not redraw the first one's finished bar."""
    stream = io.StringIO()
    reporter = TerminalReporter(stream)
    for done in range(5):
        reporter(_progress("eval renderer", done))
    first = reporter._bars["eval renderer"]
    reporter(_progress("train renderer", 1))
    assert "eval renderer" not in reporter._bars  # the finished stage's bar is closed and forgotten
    reporter(_progress("eval renderer", 1))
    second = reporter._bars["eval renderer"]
    assert second is not first and second.n == 1
    reporter(_progress("eval renderer", 0))  # the same stage restarting in place: a fresh bar too
    assert reporter._bars["eval renderer"] is not second
    reporter(P.Done(job_id="j", outputs={"ok": 1}))
    assert reporter.outputs == {"ok": 1} and not reporter._bars
    assert "1/4" in stream.getvalue()
