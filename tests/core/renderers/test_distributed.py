"""Distributed training of a renderer: two ranks on CPU with gloo step together, only rank 0 writes, and the
checkpoint resumes in one process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.jobs import protocol as P
from core.jobs.runner import run_job
from core.renderers.distributed import DistEnv
from core.workspace.atomic import atomic_write_text, forbid_writes


def train(ws: Any, **params: Any) -> tuple[int, list[P.Event]]:
    events: list[P.Event] = []
    spec = P.JobSpec("train.renderer", {"actor": "a", "options": {"unet_base": 8}, "evaluate": False,
                                        "device": "cpu", **params}, str(ws.root))
    return run_job(spec, events.append), events


def test_two_gloo_ranks_step_together_rank0_writes_and_one_process_resumes(tracked_workspace: Any) -> None:
    ws = tracked_workspace(n_frames=12, size=64)
    code, events = train(ws, iterations=4, nproc=2)
    assert code == P.EXIT_OK, events[-1]
    outputs = events[-1].outputs  # type: ignore[attr-defined]
    dist = outputs["distributed"]
    assert dist["world_size"] == 2 and dist["backend"] == "gloo" and dist["frames_per_step"] == 2
    assert [r["steps"] for r in dist["ranks"]] == [4, 4]  # both ranks stepped every iteration
    first, second = (r["checksum"] for r in dist["ranks"])
    assert first == pytest.approx(second, rel=1e-9, abs=1e-9)  # the averaged gradients kept the replicas equal
    model_dir = Path(outputs["model_dir"])
    assert (model_dir / "checkpoint.pt").is_file() and not list(model_dir.glob(".tmp-*"))
    # rank 1 ran with writes forbidden (a write would have failed it, and so the job): the files are rank 0's
    assert not any(isinstance(e, P.Log) and "rank 1" in e.message for e in events)

    code, events = train(ws, iterations=6)
    assert code == P.EXIT_OK, events[-1]
    resumed = events[-1].outputs  # type: ignore[attr-defined]
    assert resumed["resumed_from"] == 4 and resumed["iterations"] == 6 and "distributed" not in resumed


def test_a_rank_other_than_0_cannot_write(tmp_path: Path) -> None:
    forbid_writes("rank 1 of a distributed training (only rank 0 writes)")
    try:
        with pytest.raises(PermissionError, match="only rank 0 writes"):
            atomic_write_text(tmp_path / "x.txt", "no")
    finally:
        forbid_writes(None)
    assert atomic_write_text(tmp_path / "x.txt", "yes").read_text() == "yes"
    assert not (tmp_path / ".tmp-x.txt").exists()


def test_the_rank_comes_from_torchrun_environment() -> None:
    assert DistEnv.from_environ({}) == DistEnv()
    env = DistEnv.from_environ({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (env.rank, env.world_size, env.local_rank, env.active, env.is_writer) == (2, 4, 0, True, False)
    with pytest.raises(ValueError, match="outside"):
        DistEnv.from_environ({"WORLD_SIZE": "2", "RANK": "5"})


def test_nproc_under_torchrun_is_refused(tracked_workspace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tracked_workspace(n_frames=8, size=64)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    code, events = train(ws, iterations=2, nproc=2)
    assert code == P.EXIT_ERROR and isinstance(events[-1], P.Error) and events[-1].code == "bad_params"
