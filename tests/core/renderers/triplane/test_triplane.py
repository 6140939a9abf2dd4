"""The tri-plane NeRF through the shared trainer at toy size: a few-iteration smoke train with cancel and resume
(the curve continues, the fine stage's perceptual term starts on schedule), what drives the field on frames it
never trained on (the drive and blinks options), the emotion prior's augmentation of the landmark targets, the
mouth-patch sampler, and a dub on the shared code path (the dub's audio window reaches the transformer, the
plate's eyes or the eye predictor drive the lids)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from core.jobs import protocol as P
from core.jobs.context import JobCancelled
from core.jobs.runner import run_job
from core.renderers.base import RendererSetup, TrainStep
from core.renderers.data import actor_sources
from core.renderers.registry import build, load, make_options
from core.renderers.spec import BadRendererOption, resolve_options
from core.renderers.train import TrainConfig, read_history, train
from core.renderers.triplane.model import TriPlaneNeRF

TINY = {"render_size": 32, "rays_per_step": 128, "samples": 8, "occupancy_resolution": 16, "hash_levels": 2,
        "hash_log2_table": 8, "hash_base": 4, "hash_finest": 32, "width": 16, "colour_width": 8, "geo_dim": 4,
        "landmark_dim": 8, "field_audio_dim": 4, "eye_dim": 4, "dlt_width": 16, "dlt_layers": 1, "dlt_heads": 2,
        "vae_dim": 4, "audio_slots": 3, "patch_size": 8, "patches": 1, "perceptual": "ssim"}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _sources(ws, **options):
    needs = TriPlaneNeRF.needs_for(make_options("triplane", resolve_options("triplane", None, {**TINY, **options})))
    return actor_sources(ws, "a", needs, holdout=0.25)


def _build(source, **options) -> TriPlaneNeRF:
    setup = RendererSetup(image_size=source.size, face_model=source.face_model_spec,
                          train_frames=source.train_frames, n_expression=source.face_model().n_expr)
    renderer = build("triplane", setup, "cpu", {**TINY, **options})
    assert isinstance(renderer, TriPlaneNeRF)
    return renderer


def test_smoke_train_cancel_resume_coarse_to_fine_and_render(tracked_workspace, tmp_path) -> None:
    ws = tracked_workspace(n_frames=12, size=32)
    source, held, _ = _sources(ws)
    config = TrainConfig(iterations=30, lr=5e-3, lr_final=5e-4, checkpoint_every=10, sample_every=15)

    def cancel_at_12(done: int, total: int, message: str) -> None:
        if done == 12:
            raise JobCancelled("test")

    with pytest.raises(JobCancelled):
        train(_build(source, fine_start=0.5), source, tmp_path, config, progress=cancel_at_12)
    stopped = read_history(tmp_path)
    assert stopped["step"] == list(range(1, 13))
    summary = train(_build(source, fine_start=0.5), source, tmp_path, config)
    history = read_history(tmp_path)
    assert summary["resumed_from"] == 12 and history["step"] == list(range(1, 31))  # the curve continues
    assert history["photo"][:12] == stopped["photo"] and history["landmark"][:12] == stopped["landmark"]
    # coarse until half the budget, then the mouth patches' perceptual term (which starts after the cancel)
    assert all(v == 0 for v in history["perceptual"][:14]) and all(v > 0 for v in history["perceptual"][14:])
    assert sum(history["photo"][-5:]) < sum(history["photo"][:5])  # the field learns
    assert sum(history["landmark"][-5:]) < sum(history["landmark"][:5])  # and so does the transformer
    for term in ("vae", "eye", "opacity"):
        assert len(history[term]) == 30
    renderer = load(tmp_path)
    assert renderer.occupancy.grid.any() and not renderer.occupancy.grid.all()
    assert renderer.landmark_unit.item() > 0 and (renderer.eye_open > 0.1).all()  # statistics were saved
    batch = held.batch([0, 1])
    out = renderer(batch)
    assert out.image.shape == (2, 3, 32, 32) and out.alpha.shape == (2, 1, 32, 32)
    outside = (out.alpha == 0).expand_as(out.image)
    assert torch.equal(out.image[outside], batch.frames[outside])
    assert out.extras["landmarks"].shape == (2, 68, 3) and out.extras["eye_openness"].shape == (2, 2)


@pytest.mark.gpu
def test_training_and_rendering_on_cuda_with_bf16_autocast(tracked_workspace, tmp_path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    ws = tracked_workspace(n_frames=8, size=32)
    source, held, _ = _sources(ws)
    summary = train(_build(source, fine_start=0.5), source, tmp_path, TrainConfig(iterations=6, lr=1e-3),
                    device="cuda")
    history = read_history(tmp_path)
    assert summary["iterations"] == 6 and all(torch.isfinite(torch.tensor(history[k])).all()
                                              for k in ("photo", "landmark", "perceptual"))
    out = load(tmp_path, "cuda")(held.batch([0], "cuda"))
    assert out.image.shape == (1, 3, 32, 32) and torch.isfinite(out.image).all()


def test_drive_and_blinks_choose_what_drives_unseen_frames(tracked_workspace) -> None:
    from core.renderers.nerf.rays import canonical_landmarks

    ws = tracked_workspace(n_frames=8, size=32)
    source, held, _ = _sources(ws)
    renderer = _build(source)
    renderer.prepare(source)
    renderer.eval()
    batch = held.batch([0, 1])
    model = batch.face_model
    closed = batch.plate_params.map(lambda x: x.clone())
    for side in ("blink_left", "blink_right"):
        closed.expression[:, model.expr_names.index(side)] = 1.0
    tracked = canonical_landmarks(model, batch.params)
    with torch.no_grad():
        _, shot = renderer.frame_conditions(batch)
        _, shut = renderer.frame_conditions(dataclasses.replace(batch, plate_params=closed))
    # blinks = "shot": the plate's own eyes (closed lids in the plate close the rendered eyes' condition)
    assert torch.allclose(shot["eye_openness"], torch.ones(2, 2), atol=0.05)
    assert (shut["eye_openness"] < 0.3).all()
    # drive = "mesh": the batch's parameters' landmarks
    assert torch.allclose(shot["landmarks"], tracked, atol=1e-6)

    renderer.options.blinks, renderer.options.drive = "predicted", "transformer"
    with torch.no_grad():
        _, predicted = renderer.frame_conditions(dataclasses.replace(batch, plate_params=closed))
        audio = renderer.standardised_audio(batch)
        expected_eyes = renderer.eye_predictor(renderer.transformer.audio_features(audio)[0], batch.emotion)
        expected = renderer.predict_landmarks(batch, eyes=expected_eyes)
    # blinks = "predicted": the eye predictor's openness, whatever the plate's lids do
    assert torch.allclose(predicted["eye_openness"], expected_eyes, atol=1e-6)
    assert (predicted["eye_openness"] > 0.5).all()  # it starts at the open eye
    # drive = "transformer": the transformer's landmarks (untrained: the actor's mean face), not the tracked ones
    assert torch.allclose(predicted["landmarks"], expected, atol=1e-5)
    assert torch.allclose(predicted["landmarks"], renderer.landmark_mean.expand(2, 68, 3), atol=1e-5)
    assert not torch.allclose(predicted["landmarks"], tracked, atol=1e-4)
    # a training frame is always driven by its own tracking
    trained = source.batch([0])
    with torch.no_grad():
        _, own = renderer.frame_conditions(trained)
    assert torch.allclose(own["landmarks"], canonical_landmarks(model, trained.params), atol=1e-6)


def test_emotions_never_filmed_are_learned_from_the_prior(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=8, size=32)
    source, _, _ = _sources(ws)
    renderer = _build(source, emotion_augment=1.0)
    renderer.prepare(source)
    assert renderer.emotion_coverage.sum() == 0  # the known clip is neutral
    assert renderer.prior_expression.abs().sum() > 0  # the procedural head has FACS names: a prior
    renderer.train()
    batch = source.batch([0, 1, 2, 3])
    torch.manual_seed(5)
    with torch.no_grad():
        _, extras = renderer.frame_conditions(batch)
    from core.renderers.nerf.rays import canonical_landmarks

    tracked = canonical_landmarks(batch.face_model, batch.params)
    moved = (extras["landmark_target"] - tracked).abs().amax((1, 2)) > 1e-4
    added = (extras["landmark_emotion"] - batch.emotion).amax(1) > 0
    assert moved.any() and torch.equal(moved, added)  # targets follow the prior where an emotion was added
    # the field itself is still driven by the tracked face
    assert torch.allclose(extras["landmarks"], tracked, atol=1e-6)
    renderer.options.emotion_augment = 0.0
    with torch.no_grad():
        _, plain = renderer.frame_conditions(batch)
    assert torch.allclose(plain["landmark_target"], tracked, atol=1e-6)


def test_mouth_patches_lie_inside_the_head_region_around_the_mouth(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=4, size=64)
    source, _, _ = _sources(ws, render_size=64)
    renderer = _build(source, render_size=64)
    batch = source.batch([0, 1])
    region, camera, _ = renderer.head_region(batch, 64)
    mouth = renderer.mouth_region(batch, camera)
    assert mouth.sum() > 0
    torch.manual_seed(0)
    pixels = renderer.mouth_patch_pixels(region, mouth, count=6, side=8)
    assert pixels.shape == (6 * 64,)
    flat_region = region[:, 0].flatten()
    assert (flat_region[pixels] > 0.5).all()  # every ray of every patch is in the head region
    patches = pixels.view(6, 8, 8)
    frame, rows, cols = patches // 4096, (patches % 4096) // 64, patches % 64
    assert (frame == frame[:, :1, :1]).all()  # one frame per patch
    assert (rows[:, 1:] - rows[:, :-1] == 1).all() and (cols[:, :, 1:] - cols[:, :, :-1] == 1).all()  # square
    centres = mouth[frame[:, 4, 4], 0, rows[:, 4, 4], cols[:, 4, 4]]
    assert (centres > 0.5).all()  # centred in the mouth
    # no patch fits in an empty region: patches are still returned, clamped to the picture
    fallback = renderer.mouth_patch_pixels(torch.zeros_like(region), mouth, count=2, side=8)
    assert fallback.shape == (128,) and fallback.max() < 2 * 64 * 64


def test_eye_rays_land_around_the_eyes_and_frames_are_spread_over_openness(tracked_workspace, monkeypatch) -> None:
    from core.landmarks.mapping import IBUG68_EYES

    ws = tracked_workspace(n_frames=8, size=64)
    source, _, _ = _sources(ws, render_size=64)
    renderer = _build(source, render_size=64, eye_ray_fraction=0.5, mouth_ray_fraction=0.0, rays_per_step=400)
    batch = source.batch([0, 1])
    region, camera, _ = renderer.head_region(batch, 64)
    eyes = renderer.eye_region(batch, camera)
    xy, _ = camera.project(batch.face_model(batch.params).landmarks)
    corners = xy[:, [i for eye in IBUG68_EYES for i in eye]].floor().long().clamp(0, 63)  # (B, 12, 2)
    frame = torch.arange(2)[:, None].expand(-1, 12)
    assert (eyes[frame, 0, corners[..., 1], corners[..., 0]] > 0.5).all()  # every lid landmark is in the box
    assert 0 < eyes.mean() < 0.2  # around the eyes, not the whole picture
    torch.manual_seed(0)
    pick = renderer._training_pixels(region, [(0.5, eyes)])
    assert pick.shape == (400,)
    flat_eyes, flat_region = eyes[:, 0].flatten(), region[:, 0].flatten()
    assert (flat_region[pick] > 0.5).all()
    share = float((flat_eyes[pick] > 0.5).float().mean())
    assert share >= 0.5 and share > 2 * float(flat_eyes[flat_region > 0.5].float().mean())
    # every training frame's eye openness goes to the balanced draws, with the share asked for
    renderer.prepare(source)
    seen: dict = {}

    def record(openness: np.ndarray, share: float) -> np.ndarray:
        seen.update(openness=openness, share=share)
        return np.ones(len(openness))

    monkeypatch.setattr("core.renderers.triplane.model.eye_balanced_weights", record)
    assert renderer.frame_weights(source).shape == (len(source),)
    assert seen["openness"].shape == (len(source), 2) and seen["share"] == renderer.options.eye_balanced_share
    assert np.isfinite(seen["openness"]).all() and (seen["openness"] > 0).all()
    renderer.options.eye_balanced_share = 0.0
    assert renderer.frame_weights(source) is None


def test_the_stage_follows_the_budget_fraction_and_bad_options_are_refused(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=4, size=32)
    source, _, _ = _sources(ws)
    renderer = _build(source, fine_start=0.6)
    renderer.before_step(TrainStep(5, 10))
    assert not renderer.fine and renderer.ray_patches() == (0, 0)
    renderer.before_step(TrainStep(6, 10))
    assert renderer.fine and renderer.ray_patches() == (1, 8)
    renderer.before_step(TrainStep(6, 10**7, progress=0.7))  # a time budget: the spent time decides
    assert renderer.fine
    renderer.eval()
    assert renderer.ray_patches() == (0, 0)  # whole frames have no patches
    for bad in ({"drive": "audio"}, {"blinks": "never"}, {"audio_slots": 4}, {"fine_start": 1.5},
                {"audio_feature": "wav2vec2"}, {"eye_balanced_share": -0.1}, {"eye_ray_fraction": 0.9},
                {"mouth_ray_fraction": -0.5}):
        with pytest.raises(BadRendererOption):
            _build(source, **bad)


def _run(ws, kind: str, params: dict) -> dict:
    events: list[P.Event] = []
    assert run_job(P.JobSpec(kind, {**params, "device": "cpu"}, str(ws.root)), events.append) == P.EXIT_OK, events[-1]
    return events[-1].outputs


@pytest.mark.parametrize("drive", ["mesh", "transformer"])
def test_a_dub_through_triplane(trained_actor, tmp_path: Path, drive: str) -> None:
    from core.io.audio import write_wav

    torch.set_num_threads(1)
    ws = trained_actor
    options = {**TINY, "drive": drive, "blinks": "shot" if drive == "mesh" else "predicted"}
    trained = _run(ws, "train.renderer", {"actor": "a", "renderer": "triplane", "iterations": 3, "options": options,
                                          "name": f"tri_{drive}"})
    assert np.isfinite(trained["held_out"]["face_psnr"])
    write_wav(tmp_path / "a.wav", (0.3 * np.sin(np.arange(8000) / 5.0)).astype(np.float32), 16000)
    dub = _run(ws, "dub", {"actor": "a", "shot": "s", "audio": str(tmp_path / "a.wav"),
                           "renderer_model": f"tri_{drive}", "name": f"tri_{drive}",
                           "emotions": {"format": "emodub-emotion-curves", "version": 1, "fps": 25, "frame_start": 0,
                                        "per_frame": {"happy": np.linspace(0, 1, 13).round(3).tolist()}}})
    assert dub["renderer"]["variant"] == "triplane" and dub["frames"] == 13
    assert Path(dub["video"]).is_file() and dub["chin_neck_gap_px"]["max"] <= 64
