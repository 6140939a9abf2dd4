"""Checkpoints hold tensors and plain data only: saving refuses anything else, loading runs nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.io.checkpoint import (
    UnreadableCheckpoint,
    UnsafeCheckpoint,
    is_state_dict_mismatch,
    load_checkpoint,
    save_checkpoint,
)


def test_round_trip_of_what_emodub_saves(tmp_path: Path) -> None:
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"format": "x", "version": 2, "model": net.state_dict(), "opt": opt.state_dict(),
             "history": {"l1": [0.5, 0.25]}, "rng": np.random.default_rng(0).bit_generator.state,
             "torch_rng": torch.get_rng_state(), "split": ("a", "b"), "none": None}
    path = save_checkpoint(state, tmp_path / "m" / "checkpoint.pt")
    loaded = load_checkpoint(path)
    torch.testing.assert_close(loaded["model"]["weight"], net.state_dict()["weight"])
    assert loaded["rng"] == state["rng"] and loaded["split"] == ("a", "b") and loaded["history"]["l1"] == [0.5, 0.25]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("value, where", [
    (np.zeros(3), "state['stats']['mean']"),
    (Path("x"), "state['stats']['mean']"),
    (lambda: 0, "state['stats']['mean']"),
])
def test_saving_refuses_what_loading_would_refuse(tmp_path: Path, value: object, where: str) -> None:
    with pytest.raises(TypeError, match=where.replace("[", r"\[").replace("]", r"\]")):
        save_checkpoint({"stats": {"mean": value}}, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_a_crafted_file_is_unsafe_and_a_damaged_one_unreadable(tmp_path: Path, crafted_pickle) -> None:
    crafted = tmp_path / "checkpoint.pt"
    marker = crafted_pickle(crafted)
    with pytest.raises(UnsafeCheckpoint) as info:
        load_checkpoint(crafted, what="a2e checkpoint")
    assert info.value.code == "unsafe_file" and str(crafted) in info.value.message and "system" in info.value.message
    assert not marker.exists()
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(crafted.read_bytes()[:40])
    with pytest.raises(UnreadableCheckpoint) as bad:
        load_checkpoint(damaged)
    assert bad.value.code == "incompatible_checkpoint" and bad.value.hint
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(UnreadableCheckpoint, match="not a checkpoint dict"):
        load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_state_dict_mismatch_is_recognised() -> None:
    with pytest.raises(RuntimeError) as info:
        torch.nn.Linear(3, 2).load_state_dict(torch.nn.Linear(4, 2).state_dict())
    assert is_state_dict_mismatch(info.value) and not is_state_dict_mismatch(RuntimeError("CUDA error"))
