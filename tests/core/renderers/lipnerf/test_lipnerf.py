"""LipNeRF: a few-iteration CPU smoke train (cancel, resume, the loss curve continues), the latent a frame
that was never trained on gets, and conditions that follow the expression."""

from __future__ import annotations

import pytest
import torch

from core.jobs.context import JobCancelled
from core.renderers.base import RendererSetup
from core.renderers.data import actor_sources
from core.renderers.lipnerf.model import LipNeRF
from core.renderers.registry import build, load
from core.renderers.train import TrainConfig, read_history, train

TINY = {"render_size": 32, "rays_per_step": 128, "samples": 8, "occupancy_resolution": 16,
        "triplane_resolutions": (8, 16), "triplane_features": 4, "width": 16, "depth": 2, "colour_width": 8,
        "latent_dim": 4}


def _sources(ws):
    return actor_sources(ws, "a", LipNeRF.needs_for(None), holdout=0.25)


def _build(source) -> LipNeRF:
    setup = RendererSetup(image_size=source.size, face_model=source.face_model_spec,
                          train_frames=source.train_frames, n_expression=source.face_model().n_expr)
    renderer = build("lipnerf", setup, "cpu", TINY)
    assert isinstance(renderer, LipNeRF)
    return renderer


def test_smoke_train_cancel_resume_and_render(tracked_workspace, tmp_path) -> None:
    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=12, size=32)
    source, held, _ = _sources(ws)
    config = TrainConfig(iterations=30, lr=5e-3, lr_final=5e-4, checkpoint_every=10, sample_every=15)

    def cancel_at_12(done: int, total: int, message: str) -> None:
        if done == 12:
            raise JobCancelled("test")

    with pytest.raises(JobCancelled):
        train(_build(source), source, tmp_path, config, progress=cancel_at_12)
    stopped = read_history(tmp_path)
    assert stopped["step"] == list(range(1, 13))
    summary = train(_build(source), source, tmp_path, config)
    history = read_history(tmp_path)
    assert summary["resumed_from"] == 12 and history["step"] == list(range(1, 31))  # the curve continues
    assert history["photo"][:12] == stopped["photo"] and len(history["latent"]) == 30
    assert sum(history["photo"][-5:]) < sum(history["photo"][:5])  # it learns
    renderer = load(tmp_path)
    assert renderer.occupancy.grid.any() and not renderer.occupancy.grid.all()  # fitted to the meshes
    batch = held.batch([0, 1])
    out = renderer(batch)
    assert out.image.shape == (2, 3, 32, 32) and out.alpha.shape == (2, 1, 32, 32)
    outside = out.alpha == 0
    assert torch.equal(out.image[outside.expand_as(out.image)], batch.frames[outside.expand_as(batch.frames)])
    assert out.extras["gap_px"].shape == (2,)


def test_unseen_frames_get_the_mean_latent_and_conditions_follow_the_expression(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=8, size=32)
    source, held, _ = _sources(ws)
    renderer = _build(source)
    ids = torch.tensor([0, 3, -1])
    with torch.no_grad():
        codes, table = renderer.latent_codes(ids), renderer.latents.weight
    assert torch.allclose(codes[0], table[0]) and torch.allclose(codes[1], table[3])
    assert torch.allclose(codes[2], table.mean(0))
    batch = held.batch([0])
    base = renderer.conditions(batch)
    n = renderer.setup.n_expression
    assert base.shape == (1, n + 3 + 4)
    batch.params.expression[0, 5] += 1.0
    batch.params.jaw_pose[0, 0] += 0.2
    moved = renderer.conditions(batch)
    assert (moved[0, 5] - base[0, 5]).item() == pytest.approx(1.0)  # not standardised before prepare()
    assert (moved[0, n] - base[0, n]).item() == pytest.approx(0.2)
    renderer.prepare(source)  # standardised by the training frames: the jaw moved, expression 5 did not
    jaw = torch.stack([source.batch([i]).params.jaw_pose[0, 0] for i in range(len(source))])
    assert renderer.e_scale[5].item() == 0.0 and renderer.e_scale[n].item() == pytest.approx(1 / jaw.std().item(),
                                                                                             rel=1e-4)
    z = renderer.conditions(source.batch(list(range(len(source)))))[:, n]
    assert z.mean().item() == pytest.approx(0.0, abs=1e-5) and z.std().item() == pytest.approx(1.0, rel=1e-4)


def test_the_paper_preset_trains_coarse_and_fine_and_renders(tracked_workspace, tmp_path) -> None:
    """The GPU preset (frequency encoding, coarse + fine networks, hierarchical resampling) at toy size."""
    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=6, size=32)
    source, held, _ = _sources(ws)
    setup = RendererSetup(image_size=32, face_model=source.face_model_spec, train_frames=source.train_frames,
                          n_expression=source.face_model().n_expr)
    small = {"render_size": 32, "rays_per_step": 64, "samples": 8, "fine_samples": 8, "width": 16, "depth": 6,
             "colour_width": 8, "position_freqs": 4, "latent_dim": 4}
    renderer = build("lipnerf", setup, "paper", small)
    assert renderer.options.hierarchical and renderer.options.encoding == "frequency"
    assert renderer.coarse_mlp is not None and renderer.mlp.skips == (3,)
    summary = train(renderer, source, tmp_path, TrainConfig(iterations=4, lr=1e-3))
    assert summary["iterations"] == 4
    history = read_history(tmp_path)
    assert len(history["photo_coarse"]) == 4 and len(history["photo"]) == 4  # both networks are trained
    out = load(tmp_path)(held.batch([0]))
    assert out.image.shape == (1, 3, 32, 32) and torch.isfinite(out.image).all()


@pytest.mark.gpu
def test_training_on_cuda_with_bf16_autocast(tracked_workspace, tmp_path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    ws = tracked_workspace(n_frames=6, size=32)
    source, _, _ = _sources(ws)
    summary = train(_build(source), source, tmp_path, TrainConfig(iterations=5, lr=1e-3), device="cuda")
    assert summary["iterations"] == 5 and all(torch.isfinite(torch.tensor(read_history(tmp_path)["photo"])))


def test_frames_without_a_face_are_not_learned_and_bad_options_are_refused(tracked_workspace, tmp_path) -> None:
    import numpy as np

    from core.renderers.spec import BadRendererOption

    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=8, size=32)
    flagged = np.zeros(8, bool)
    flagged[2:4] = True
    np.savez(ws.clip_dir("a", "c0") / "landmarks.npz", flagged=flagged)
    source, held, split = _sources(ws)
    assert len(source) == 4 and source.train_frames == 4 and split["c0"]["train_frames"] == 4  # of 6
    # two frames per step, one of which may show no head at all: training still runs
    summary = train(_build(source), source, tmp_path, TrainConfig(iterations=3, batch_size=2))
    assert summary["iterations"] == 3
    setup = RendererSetup(32, source.face_model_spec, source.train_frames, n_expression=source.face_model().n_expr)
    with pytest.raises(BadRendererOption, match="fine_samples"):
        build("lipnerf", setup, "cpu", {**TINY, "hierarchical": True, "fine_samples": 0})


def test_resuming_on_other_frames_is_refused(tracked_workspace) -> None:
    from core.jobs import protocol as P
    from core.jobs.runner import run_job

    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=8, size=32)
    params = {"actor": "a", "renderer": "lipnerf", "iterations": 2, "device": "cpu", "evaluate": False,
              "options": {k: v for k, v in TINY.items() if k != "triplane_resolutions"}}
    events: list[P.Event] = []
    assert run_job(P.JobSpec("train.renderer", params, str(ws.root)), events.append) == P.EXIT_OK
    events.clear()
    code = run_job(P.JobSpec("train.renderer", {**params, "iterations": 4, "holdout": 0.5}, str(ws.root)),
                   events.append)
    assert code != P.EXIT_OK and events[-1].code == "incompatible_checkpoint"
    assert "trained on other data" in events[-1].message and "--restart" in events[-1].hint
