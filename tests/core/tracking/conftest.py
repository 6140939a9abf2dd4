"""Fixtures of the tracking tests: the small procedural head and tiny synthetic clips with ground truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.morphable.registry import load_model
from core.tracking.config import TrackerConfig

# Seeds of the synthetic performances used by the tests (the must-show evaluation uses others).
CLIP_SEED = 3
SIZE = 128


@pytest.fixture(scope="session")
def small_model():
    torch.manual_seed(0)
    return load_model("procedural", resolution="small")


def make_fast_config(**overrides: object) -> TrackerConfig:
    """The default schedule with few iterations, on the small head: seconds per test, not minutes."""
    base = TrackerConfig(model_resolution="small", photometric_size=64, albedo_size=64, keyframes=6,
                         overlay_scale=1)
    stages = []
    for stage in base.stages:
        its = {"rigid": 60, "landmarks": 25, "texture": 10, "photometric": 3}[stage.name]
        stages.append(replace(stage, iterations=its, batch_size=min(stage.batch_size, 8),
                              passes=min(stage.passes, 2)))
    return replace(base, stages=tuple(stages), **overrides)


@pytest.fixture
def fast_config():
    """A factory of fast configs: ``fast_config(**TrackerConfig overrides)``."""
    return make_fast_config


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory: pytest.TempPathFactory, small_model) -> Path:
    """A 16-frame, 128-pixel clip of the small head speaking (video, landmarks, crop, ground truth)."""
    from core.tracking.synthetic import synthetic_params, write_synthetic_clip

    folder = tmp_path_factory.mktemp("clip") / "c"
    params = synthetic_params(16, seed=CLIP_SEED)
    # open the jaw clearly in a few frames so the jaw track has something to follow
    params["jaw_pose"][4:8, 0] += np.array([0.05, 0.12, 0.15, 0.08], np.float32)
    write_synthetic_clip(folder, small_model, params, size=SIZE, crop_size=SIZE, distance=0.45)
    return folder


@pytest.fixture(scope="session")
def blinking_clip(tmp_path_factory: pytest.TempPathFactory, small_model) -> Path:
    """The 16-frame clip of :func:`synthetic_clip` with a three-frame blink of both eyes (frames 7-9)."""
    from core.tracking.synthetic import synthetic_params, write_synthetic_clip

    folder = tmp_path_factory.mktemp("blink") / "c"
    params = synthetic_params(16, seed=CLIP_SEED)
    for name in ("blink_left", "blink_right"):
        params["expression"][7:10, small_model.expression_index(name)] = np.array([0.6, 0.95, 0.6], np.float32)
    write_synthetic_clip(folder, small_model, params, size=SIZE, crop_size=SIZE, distance=0.45)
    return folder
