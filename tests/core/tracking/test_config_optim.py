"""Stage declarations, config serialisation and the tracker's Adam."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from core.tracking.config import StageSpec, TrackerConfig, default_stages
from core.tracking.optim import NamedAdam


def test_stage_spec_refuses_bad_declarations() -> None:
    with pytest.raises(ValueError, match="unknown variables"):
        StageSpec("x", ("pose",), {"landmarks": 1.0}, 10, {"pose": 0.1})
    with pytest.raises(ValueError, match="no learning rate"):
        StageSpec("x", ("rotation",), {"landmarks": 1.0}, 10, {})
    with pytest.raises(ValueError, match="unknown energies"):
        StageSpec("x", ("rotation",), {"lmk": 1.0}, 10, {"rotation": 0.1})
    with pytest.raises(ValueError, match="keyframes"):
        StageSpec("x", ("rotation",), {"landmarks": 1.0}, 10, {"rotation": 0.1}, frames="some")
    with pytest.raises(ValueError, match="unique"):
        TrackerConfig(stages=(default_stages()[0], default_stages()[0]))


def test_default_schedule_is_the_documented_one() -> None:
    stages = default_stages()
    assert [s.name for s in stages] == ["rigid", "landmarks", "texture", "photometric"]
    assert stages[0].frames == "keyframes" and set(stages[0].variables) == {"rotation", "translation", "focal"}
    assert "shape" in stages[1].shared_variables and "expression" in stages[1].frame_variables
    assert stages[2].photometric and set(stages[2].variables) == {"sh", "albedo"}
    assert stages[3].photometric and "photometric" in stages[3].energies


def test_config_round_trips_and_fingerprints() -> None:
    config = TrackerConfig(iteration_scale=0.5, expression_range=(0.0, 2.0))
    again = TrackerConfig.from_json(config.to_json())
    assert again == config
    assert again.fingerprint() == config.fingerprint()
    assert replace(config, overlay=False).fingerprint() == config.fingerprint()  # output-only setting
    assert replace(config, keyframes=3).fingerprint() != config.fingerprint()
    assert config.iterations(config.stages[1]) == round(config.stages[1].iterations * 0.5)
    assert TrackerConfig(iteration_scale=0.0).iterations(config.stages[1]) == 0


def test_named_adam_matches_torch_adam() -> None:
    g = torch.Generator().manual_seed(0)
    start = {"a": torch.randn(4, 3, generator=g), "b": torch.randn(5, generator=g)}
    target = {"a": torch.randn(4, 3, generator=g), "b": torch.randn(5, generator=g)}
    mine = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    theirs = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    opt = NamedAdam(mine, {"a": 0.05, "b": 0.01})
    ref = torch.optim.Adam([{"params": [theirs["a"]], "lr": 0.05}, {"params": [theirs["b"]], "lr": 0.01}])
    for _ in range(7):
        for params, step in ((mine, opt), (theirs, ref)):
            step.zero_grad()
            sum(((params[k] - target[k]) ** 2).sum() for k in params).backward()
            step.step()
    for k in start:
        assert torch.allclose(mine[k], theirs[k], atol=1e-6)
    # the state survives a save/load: two optimisers continue identically
    clone = {k: v.detach().clone().requires_grad_(True) for k, v in mine.items()}
    other = NamedAdam(clone, {"a": 0.05, "b": 0.01})
    other.load_state_dict(opt.state_dict())
    for params, step in ((mine, opt), (clone, other)):
        step.zero_grad()
        sum(((params[k] - target[k]) ** 2).sum() for k in params).backward()
        step.step(0.5)
    for k in start:
        assert torch.equal(mine[k], clone[k])
