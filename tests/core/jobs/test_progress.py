"""One bar per job: ``overall`` across a job's stages and the jobs it runs as steps (protocol version 3)."""

from __future__ import annotations

from typing import Any

import pytest

from core.jobs import protocol as P
from core.jobs import registry
from core.jobs.context import CancelToken, JobContext, JobFailed
from core.jobs.runner import run_job


def _leaf(ctx: JobContext) -> dict[str, Any]:
    """A job that does not declare its stages: two of them, the second longer."""
    for stage, steps in (("decode", 4), ("fit", 10)):
        for done in range(steps + 1):
            ctx.progress(stage, done, steps)
    if ctx.params.get("fail"):
        raise JobFailed("the leaf failed", code=P.BAD_INPUT)
    return {}


def _composite(ctx: JobContext) -> dict[str, Any]:
    """A job that declares its steps (two sub-jobs and a stage of its own) with their costs."""
    ctx.plan([("first", 1.0), ("second", 3.0), ("finish", 1.0)])
    ctx.run_kind("test.leaf", {}, step="first")
    ctx.run_kind("test.leaf", {"fail": ctx.params.get("fail", False)}, step="second")
    for done in range(6):
        ctx.progress("finish", done, 5)
        if done == 2 and ctx.params.get("cancel_at_finish"):
            ctx.cancel_token.cancel()
    return {}


@pytest.fixture
def kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    registry.all_kinds()  # the real kinds first, so the test kinds are not replaced by the first lookup
    monkeypatch.setitem(registry._REGISTRY, "test.leaf", registry.JobKind("test.leaf", _leaf, "", (), False))
    monkeypatch.setitem(registry._REGISTRY, "test.composite", registry.JobKind(
        "test.composite", _composite, "", (registry.Arg("--fail", action="store_true"),
                                           registry.Arg("--cancel-at-finish", action="store_true",
                                                        dest="cancel_at_finish")), False))


def _run(params: dict[str, Any]) -> tuple[int, list[P.Event]]:
    events: list[P.Event] = []
    code = run_job(P.JobSpec(kind="test.composite", params=params), events.append, CancelToken())
    return code, events


def _bar(events: list[P.Event]) -> list[float]:
    return [e.overall for e in events if isinstance(e, P.Progress)]  # type: ignore[misc]


def test_the_bar_is_monotone_across_stages_and_sub_jobs_and_never_full_before_done(kinds: None) -> None:
    code, events = _run({})
    assert code == P.EXIT_OK and isinstance(events[-1], P.Done)
    bar = _bar(events)
    assert all(b is not None for b in bar)
    assert bar == sorted(bar), bar
    assert max(bar) <= P.BAR_BEFORE_DONE
    # Shares follow the declared costs 1 : 3 : 1: the first sub-job ends at 1/5, the second at 4/5.
    stages = [(e.stage, e.done, e.total, e.overall) for e in events if isinstance(e, P.Progress)]
    finish_start = next(overall for stage, done, _, overall in stages if stage == "finish" and done == 0)
    assert finish_start == pytest.approx(0.8, abs=0.01)
    second = [i for i, (stage, done, *_rest) in enumerate(stages) if stage == "decode" and done == 0][1]
    # A job that did not declare its stages moves forward within its share, and no further ...
    assert 0.1 < bar[second - 1] <= 0.2 + 1e-6
    # ... and the next step starts where its share does.
    assert bar[second] == pytest.approx(0.2, abs=1e-3)
    assert bar[-1] > 0.95


def test_a_failed_job_stops_where_it_failed_and_says_so(kinds: None) -> None:
    code, events = _run({"fail": True})
    assert code == P.EXIT_ERROR and isinstance(events[-1], P.Error) and events[-1].code == P.BAD_INPUT
    bar = _bar(events)
    assert 0.2 < bar[-1] < 0.8  # inside the second step's share, where it failed
    assert not any(isinstance(e, P.Done) for e in events)


def test_a_cancelled_job_ends_cancelled_below_full(kinds: None) -> None:
    code, events = _run({"cancel_at_finish": True})
    assert code == P.EXIT_CANCELLED and isinstance(events[-1], P.Cancelled)
    assert 0.8 < _bar(events)[-1] < P.BAR_BEFORE_DONE


def test_an_eta_holds_once_the_pace_is_known(kinds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a steady pace the whole job's ETA is the time its rest takes at that pace."""
    import core.jobs.context as context

    clock = [100.0]
    monkeypatch.setattr(context.time, "monotonic", lambda: clock[0])
    ctx = JobContext(P.JobSpec(kind="test.leaf"), lambda event: None)
    ctx.plan([("a", 1.0), ("b", 1.0)])
    etas = []
    for stage in ("a", "b"):
        for done in range(1, 11):
            clock[0] += 1.0  # one second a step: 20 s in all
            ctx.progress(stage, done, 10)
            etas.append(ctx._bar.eta_s())
    elapsed = [i + 1.0 for i in range(20)]
    for t, eta in zip(elapsed, etas, strict=True):
        if t < 2:
            continue
        assert eta == pytest.approx(20.0 - t, abs=0.5)
