"""Renderer checkpoints: round trip through the registry, the version-1 format, and refusing anything that
is not tensors and plain data."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from core.io.checkpoint import CheckpointError
from core.renderers.base import RendererSetup
from core.renderers.neural_texture.config import NeuralTextureConfig
from core.renderers.neural_texture.model import NeuralTextureRenderer
from core.renderers.registry import build, header, load, read_checkpoint

TINY = {"temporal_window": 0, "audio_dim": 4, "audio_window": 8, "audio_code": 8, "siren_hidden": 16,
        "siren_layers": 1, "unet_base": 4, "unet_depth": 2}
SETUP = RendererSetup(image_size=32, face_model={"model": "procedural", "model_path": None,
                                                 "model_resolution": "small"}, train_frames=3)


def _save(renderer: torch.nn.Module, folder: Path, **extra: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({**header(renderer), "model": renderer.state_dict(), **extra}, folder / "checkpoint.pt")


def test_build_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    renderer = build("neural_texture", SETUP, options=TINY)
    assert isinstance(renderer, NeuralTextureRenderer) and renderer.variant == "neural_texture"
    _save(renderer, tmp_path)
    loaded = load(tmp_path)
    assert loaded.setup == SETUP and loaded.options == renderer.options and not loaded.training
    for (name, a), (_, b) in zip(renderer.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_version_1_neural_texture_checkpoint_still_loads(tmp_path: Path) -> None:
    """The layout the renderer wrote before the registry (no format header, ``model_config``)."""
    import random

    from core.renderers.losses import PatchDiscriminator

    options = NeuralTextureConfig(**TINY)
    old = NeuralTextureRenderer(options)
    disc = PatchDiscriminator()
    torch.save({"model": old.state_dict(), "disc": disc.state_dict(), "opt_g": {}, "opt_d": {},
                "history": {"step": [1]}, "iteration": 1,
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
                "model_config": {**asdict(options), "setting_from_a_newer_version": 1.0}},
               tmp_path / "checkpoint.pt")
    state = read_checkpoint(tmp_path / "checkpoint.pt")
    assert state["variant"] == "neural_texture" and state["format_version"] == 1
    # the old discriminator lands where the trainer's adversarial criterion keeps it
    criteria = NeuralTextureRenderer(options).criteria()
    criteria.load_state_dict(state["train"]["criteria"], strict=False)
    assert torch.equal(criteria["gan"].discriminator.net[0].weight, disc.net[0].weight)
    loaded = load(tmp_path)
    assert isinstance(loaded, NeuralTextureRenderer) and loaded.options == options


def test_a_checkpoint_older_than_an_option_loads_with_the_value_it_was_trained_with(tmp_path: Path) -> None:
    """``normal_input`` came later: a checkpoint without it was trained without the normals' channels."""
    renderer = build("neural_texture", SETUP, options={**TINY, "normal_input": False})
    state = {**header(renderer), "model": renderer.state_dict()}
    del state["options"]["normal_input"]
    torch.save(state, tmp_path / "checkpoint.pt")
    assert load(tmp_path).options == renderer.options


class _Payload:
    """Unpickling this runs a command: what a crafted checkpoint in a shared workspace would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    renderer = build("neural_texture", SETUP, options=TINY)
    _save(renderer, tmp_path / "m", extra=_Payload(marker))
    with pytest.raises(CheckpointError) as info:
        load(tmp_path / "m")
    assert info.value.code == "unsafe_file" and "checkpoint.pt" in str(info.value)
    assert not marker.exists()


def test_a_newer_format_and_a_foreign_file_are_refused(tmp_path: Path) -> None:
    renderer = build("neural_texture", SETUP, options=TINY)
    _save(renderer, tmp_path / "new", format_version=99)
    with pytest.raises(CheckpointError, match="newer emodub"):
        load(tmp_path / "new")
    (tmp_path / "junk").mkdir()
    torch.save({"weights": torch.zeros(2)}, tmp_path / "junk" / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not a renderer checkpoint"):
        load(tmp_path / "junk")
    with pytest.raises(FileNotFoundError, match="train the renderer first"):
        load(tmp_path / "missing")
