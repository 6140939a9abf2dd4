"""The shared trainer: a few-iteration smoke train of the neural-texture renderer on tracked clips, cancel and
resume (the loss curve continues), the learning-rate decay, and refusing to resume with other options."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from core.io.checkpoint import CheckpointError
from core.jobs.context import JobCancelled
from core.renderers.base import RendererSetup
from core.renderers.data import actor_sources
from core.renderers.registry import build, load
from core.renderers.train import TrainConfig, frame_drawer, read_history, train

TINY = {"temporal_window": 1, "audio_dim": 4, "audio_window": 8, "audio_code": 8, "siren_hidden": 16,
        "siren_layers": 2, "unet_base": 4, "unet_depth": 2, "mask_expand_px": 2, "gan_start": 10}


def _setup(source) -> RendererSetup:
    return RendererSetup(image_size=source.size, face_model=source.face_model_spec,
                         train_frames=source.train_frames)


def test_smoke_train_cancel_and_resume(tracked_workspace, tmp_path) -> None:
    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=10, size=32)
    renderer = build("neural_texture", RendererSetup(32, {}), options=TINY)
    source, _, _ = actor_sources(ws, "a", renderer.needs, holdout=0.2)
    config = TrainConfig(iterations=40, checkpoint_every=15, sample_every=20, lr=2e-3, betas=(0.5, 0.999))

    def cancel_at_25(done: int, total: int, message: str) -> None:
        if done == 25:
            raise JobCancelled("test")

    with pytest.raises(JobCancelled):
        train(build("neural_texture", _setup(source), options=TINY), source, tmp_path, config,
              progress=cancel_at_25)
    assert read_history(tmp_path)["step"] == list(range(1, 26))  # saved what it had on cancel
    summary = train(build("neural_texture", _setup(source), options=TINY), source, tmp_path, config)
    history = read_history(tmp_path)
    assert summary["resumed_from"] == 25 and history["step"] == list(range(1, 41))  # unbroken curve
    assert all(len(history[k]) == 40 for k in ("l1", "style", "gan_g", "gan_d"))
    assert sum(history["l1"][-5:]) < sum(history["l1"][:5])  # it learns
    assert (tmp_path / "loss.png").stat().st_size > 0 and (tmp_path / "samples" / "000040.png").exists()
    assert load(tmp_path).variant == "neural_texture"


def test_resuming_with_other_options_is_refused(tracked_workspace, tmp_path) -> None:
    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=6, size=32)
    renderer = build("neural_texture", RendererSetup(32, {}), options=TINY)
    source, _, _ = actor_sources(ws, "a", renderer.needs, holdout=0.0)
    train(build("neural_texture", _setup(source), options=TINY), source, tmp_path, TrainConfig(iterations=2))
    wider = build("neural_texture", _setup(source), options={**TINY, "unet_base": 8})
    with pytest.raises(CheckpointError, match="unet_base 4 .checkpoint. vs 8 .now.") as info:
        train(wider, source, tmp_path, TrainConfig(iterations=4))
    assert info.value.code == "incompatible_checkpoint"


def test_learning_rate_decays_exponentially_to_its_final_value() -> None:
    config = TrainConfig(iterations=101, lr=5e-4, lr_final=5e-5)
    assert config.lr * config.lr_factor(1) == pytest.approx(5e-4)
    assert config.lr * config.lr_factor(51) == pytest.approx((5e-4 * 5e-5) ** 0.5)
    assert config.lr * config.lr_factor(101) == pytest.approx(5e-5)
    assert TrainConfig(iterations=10).lr_factor(7) == 1.0
    with pytest.raises(ValueError, match="iterations"):
        TrainConfig(iterations=0)


def test_a_time_budget_stops_training_and_spans_the_learning_rate_decay(tracked_workspace, tmp_path) -> None:
    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=6, size=32)
    renderer = build("neural_texture", RendererSetup(32, {}), options=TINY)
    source, _, _ = actor_sources(ws, "a", renderer.needs, holdout=0.0)
    seen = []
    config = TrainConfig(iterations=10**6, max_seconds=2.0, lr=1e-3, lr_final=1e-4)
    summary = train(build("neural_texture", _setup(source), options=TINY), source, tmp_path, config,
                    progress=lambda done, total, msg: seen.append((done, total)))
    assert summary["stopped_by_time"] and 0 < summary["iterations"] < 10**6
    assert summary["training_seconds"] >= 2.0  # it stopped at the budget, not before
    assert all(total == 2 for _, total in seen)  # progress is in seconds of the budget
    assert config.lr_factor(1, 0.0) == 1.0 and config.lr_factor(1, 2.0) == pytest.approx(0.1)
    assert len(read_history(tmp_path)["step"]) == summary["iterations"]  # saved where it stopped
    from core.io.checkpoint import load_checkpoint

    snapshots = sorted((tmp_path / "snapshots").glob("*.pt"))
    assert not snapshots  # none asked for
    config = TrainConfig(iterations=10**6, max_seconds=1.5, snapshot_every_s=0.5)
    train(build("neural_texture", _setup(source), options=TINY), source, tmp_path / "snap", config)
    times = [load_checkpoint(p)["elapsed_s"] for p in sorted((tmp_path / "snap" / "snapshots").glob("*.pt"))]
    assert len(times) >= 2 and times == sorted(times) and times[-1] >= 1.5


def test_an_interrupted_run_resumes_exactly_where_it_stopped(tracked_workspace, tmp_path) -> None:
    """In one process (same threads), k iterations, a cancel and a resume give the losses of one straight run:
    weights, optimiser and criteria state, RNG and sampling order are all restored."""
    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=8, size=32)
    probe = build("neural_texture", RendererSetup(32, {}), options=TINY)
    source, _, _ = actor_sources(ws, "a", probe.needs, holdout=0.0)
    config = TrainConfig(iterations=16, checkpoint_every=100, sample_every=0, lr=2e-3, betas=(0.5, 0.999))

    def fresh():
        torch.manual_seed(3)
        return build("neural_texture", _setup(source), options={**TINY, "gan_start": 4})

    train(fresh(), source, tmp_path / "straight", config)

    def cancel_at_9(done: int, total: int, message: str) -> None:
        if done == 9:
            raise JobCancelled("test")

    with pytest.raises(JobCancelled):
        train(fresh(), source, tmp_path / "resumed", config, progress=cancel_at_9)
    train(fresh(), source, tmp_path / "resumed", config)
    straight, resumed = read_history(tmp_path / "straight"), read_history(tmp_path / "resumed")
    assert resumed["step"] == straight["step"] == list(range(1, 17))
    for name in ("l1", "style", "gan_g", "gan_d"):
        assert resumed[name] == pytest.approx(straight[name], rel=1e-4, abs=1e-6), name


@pytest.mark.gpu
def test_neural_texture_trains_on_cuda(tracked_workspace, tmp_path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    ws = tracked_workspace(n_frames=6, size=32)
    probe = build("neural_texture", RendererSetup(32, {}), options=TINY)
    source, _, _ = actor_sources(ws, "a", probe.needs, holdout=0.0)
    for autocast in (False, True):  # the default (float32) and bf16 autocast of the networks
        summary = train(build("neural_texture", _setup(source), options=TINY), source, tmp_path / str(autocast),
                        TrainConfig(iterations=3, autocast=autocast), device="cuda")
        assert summary["iterations"] == 3


def test_frames_are_drawn_in_proportion_to_the_renderers_weights() -> None:
    random.seed(0)
    uniform = frame_drawer(None, 4)(4000)
    assert set(uniform) == {0, 1, 2, 3} and abs(uniform.count(0) / 4000 - 0.25) < 0.03
    random.seed(0)
    weighted = frame_drawer(np.array([0.0, 1.0, 1.0, 2.0]), 4)(4000)
    assert 0 not in weighted  # a zero weight is never drawn
    assert abs(weighted.count(3) / 4000 - 0.5) < 0.03 and abs(weighted.count(1) / 4000 - 0.25) < 0.03
    random.seed(5)
    first = frame_drawer(np.ones(4), 4)(10)
    random.seed(5)
    assert frame_drawer(np.ones(4), 4)(10) == first  # from the random state a checkpoint keeps
    for bad in (np.ones(3), np.zeros(4), np.array([1.0, -1.0, 1.0, 1.0]), np.array([1.0, np.nan, 1.0, 1.0])):
        with pytest.raises(ValueError, match="frame weights"):
            frame_drawer(bad, 4)
