"""The ``landmarks`` job kind's parameter and workspace errors (the detection itself is tested on real
clips in tests/core/ingest/test_ingest_real.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.jobs import protocol as P
from core.jobs.context import CancelToken
from core.jobs.registry import all_kinds
from core.jobs.runner import run_job
from core.workspace import Workspace


def run(ws: Workspace, params: dict[str, object]) -> tuple[int, P.Event]:
    events: list[P.Event] = []
    code = run_job(P.JobSpec(kind="landmarks", params=params, workspace=str(ws.root)), events.append,
                   CancelToken())
    return code, events[-1]


def test_kinds_are_registered() -> None:
    kinds = all_kinds()
    assert {"ingest", "landmarks"} <= set(kinds)
    dests = {a.dest() for a in kinds["ingest"].args}
    assert {"video", "actor", "clip", "shot", "emotion", "fps", "keep_fps", "landmarks"} <= dests


@pytest.mark.parametrize("params", [{"actor": "nobody", "clip": "x"}, {"shot": "missing"}, {"actor": "a"},
                                    {"actor": "a", "clip": "c", "shot": "s"}])
def test_landmarks_job_refuses_unknown_or_ambiguous_targets(tmp_path: Path, params: dict[str, object]) -> None:
    ws = Workspace.create(tmp_path / "ws")
    code, event = run(ws, params)
    assert code == P.EXIT_ERROR and isinstance(event, P.Error)
    assert event.code in ("not_found", "bad_params") and event.message
