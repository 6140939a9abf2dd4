"""NeRF-AD: a few-iteration CPU smoke train (attention, fusion, then the NeRF; cancel, resume), the losses'
building blocks, the attention's use, the ablation and the driven emotion path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.jobs.context import JobCancelled
from core.renderers.base import RendererSetup
from core.renderers.data import actor_sources
from core.renderers.nerf_ad.config import NeRFADConfig
from core.renderers.nerf_ad.model import NeRFAD, region_shares
from core.renderers.nerf_ad.networks import au_loss, gradient_penalty, occurrence_weights
from core.renderers.registry import build, load
from core.renderers.train import TrainConfig, read_history, train

TINY = {"render_size": 32, "rays_per_step": 128, "samples": 8, "occupancy_resolution": 16,
        "triplane_resolutions": (8, 16), "triplane_features": 4, "width": 16, "depth": 2, "colour_width": 8,
        "face_size": 16, "attention_steps": 4, "fusion_steps": 4, "references": 3, "audio_window": 4}


def _workspace(tracked_workspace, n_frames: int = 12):
    ws = tracked_workspace(n_frames=n_frames, size=32, clips=2)
    ws.update_clip("a", "c1", emotion={"happy": 1.0})
    return ws


def _build(source, options: dict | None = None) -> NeRFAD:
    setup = RendererSetup(image_size=source.size, face_model=source.face_model_spec,
                          train_frames=source.train_frames, n_expression=source.face_model().n_expr)
    renderer = build("nerf_ad", setup, "cpu", {**TINY, **(options or {})})
    assert isinstance(renderer, NeRFAD)
    return renderer


def test_smoke_train_cancel_resume_render_and_drive(tracked_workspace, tmp_path) -> None:
    torch.set_num_threads(1)
    ws = _workspace(tracked_workspace)
    source, held, _ = actor_sources(ws, "a", NeRFAD.needs_for(NeRFADConfig(**TINY)), holdout=0.25)
    config = TrainConfig(iterations=12, lr=5e-3, lr_final=5e-4, checkpoint_every=4, sample_every=6)

    def cancel_at_5(done: int, total: int, message: str) -> None:
        if done == 5:
            raise JobCancelled("test")

    with pytest.raises(JobCancelled):
        train(_build(source), source, tmp_path, config, progress=cancel_at_5)
    summary = train(_build(source), source, tmp_path, config)
    assert summary["resumed_from"] == 5 and read_history(tmp_path)["step"] == list(range(1, 13))
    renderer = load(tmp_path).eval()
    assert isinstance(renderer, NeRFAD)
    # The training report: the networks' figures and the attention picture (6 rows of 4 crops, 3x larger).
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "attention.png").shape == (6 * 16 * 3, 4 * 16 * 3, 3)
    assert {"attention", "fusion", "emotions"} <= set(__import__("json").loads((tmp_path / "prepare.json").read_text()))
    assert renderer.emotion_known[4].item() == 1.0 and renderer.emotion_known[5].item() == 0.0  # happy; sad
    batch = held.batch([0, 1])
    out = renderer(batch)
    assert out.image.shape == (2, 3, 32, 32) and torch.isfinite(out.image).all()
    with torch.no_grad():
        own = renderer.conditions(batch)
        batch.audio = batch.audio + 3.0  # other audio: only the audio half moves
        dubbed = renderer.conditions(batch)
        assert torch.allclose(own[:, :64], dubbed[:, :64]) and (own[:, 64:] - dubbed[:, 64:]).abs().max() > 1e-5
        batch.driven = True
        batch.emotion.zero_()
        neutral = renderer.conditions(batch)
        batch.emotion[:, 4] = 1.0  # happy: the audio face comes from the happy takes' mouth
        full_happy = renderer.conditions(batch)
        batch.emotion[:, 4] = 0.5  # happy at half: the emotion input at half, the audio features half-way
        happy = renderer.conditions(batch)
        batch.emotion[:, 5] = 1.0  # sad: no take shows it, so it changes nothing
        happy_and_sad = renderer.conditions(batch)
    assert torch.allclose(happy[:, :64], neutral[:, :64])  # the identity face is the plate's
    assert (full_happy[:, 64:128] - neutral[:, 64:128]).abs().max() > 1e-5
    assert torch.allclose(happy[:, 64:128], 0.5 * (neutral[:, 64:128] + full_happy[:, 64:128]), atol=1e-5)
    emotion_input = happy[:, 128:]
    assert emotion_input.shape == (2, 7) and torch.allclose(emotion_input[:, 4], torch.full((2,), 0.5))
    assert float(emotion_input.abs().sum()) == pytest.approx(1.0)
    assert torch.allclose(happy_and_sad, happy)
    # The AU scale C learned is the actor's own range (au_scale "actor"), kept for the reports.
    assert (renderer.au_span > 0).all() and (renderer.au_low >= 0).all() and (renderer.au_low + renderer.au_span
                                                                              <= 1 + 1e-5).all()
    with torch.no_grad():  # training with identity_swap = 1: the identity face is a neutral take's, whatever
        renderer.options.identity_swap = 1.0  # the frame shows
        renderer.train()
        batch.frames = torch.rand_like(batch.frames)
        swapped = renderer.conditions(batch)[:, :64]
        neutral_codes = renderer.identity_encoder(renderer.neutral_faces)
        renderer.eval()
    assert all(torch.isclose(neutral_codes, code, atol=1e-5).all(1).any() for code in swapped)
    mask = renderer.attention_mask(batch.frames)
    assert mask.shape == (2, 1, 32, 32) and float(mask.min()) >= 0 and float(mask.max()) <= 1


def test_the_frozen_networks_stay_out_of_the_optimiser_and_the_ablation_sees_whole_faces(tracked_workspace) -> None:
    ws = _workspace(tracked_workspace, n_frames=8)
    source, _, _ = actor_sources(ws, "a", NeRFAD.needs_for(NeRFADConfig(**TINY)), holdout=0.25)
    full = _build(source)
    trained = {id(p) for g in full.param_groups(1e-3) for p in g["params"]}
    for module in (full.generator, full.classifier, full.fusion):
        assert not any(id(p) in trained for p in module.parameters())
    assert all(id(p) in trained for p in full.identity_encoder.parameters())
    crops = torch.rand(2, 3, 16, 16)
    ablation = _build(source, {"disentangle": False})
    speech = ablation.speech_weights(crops)
    assert torch.equal(speech, torch.ones_like(speech)) and torch.equal(ablation.identity_faces(crops, speech), crops)
    with pytest.raises(ValueError, match="identity_swap"):
        _build(source, {"identity_swap": 1.5})
    with pytest.raises(ValueError, match="disentangle"):
        _build(source, {"identity_swap": 0.5, "disentangle": False})
    with pytest.raises(ValueError, match="face_size"):
        _build(source, {"face_size": 20})
    with pytest.raises(ValueError, match="openface"):
        _build(source, {"action_units": "openface"})


def test_au_loss_weights_and_gradient_penalty() -> None:
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    weights = occurrence_weights(targets)
    assert weights[1] > weights[0] and torch.isclose(weights.mean(), torch.tensor(1.0))  # the rare AU weighs more
    right = au_loss(torch.tensor([[0.9, 0.1]]), torch.tensor([[1.0, 0.0]]), weights)
    wrong = au_loss(torch.tensor([[0.1, 0.9]]), torch.tensor([[1.0, 0.0]]), weights)
    assert right < wrong

    class Slope(torch.nn.Module):  # W(x) = k * sum(x): gradient norm k * sqrt(numel) everywhere
        def __init__(self, k: float) -> None:
            super().__init__()
            self.k = k

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.k * x.flatten(1).sum(1)

    real, fake = torch.rand(3, 3, 4, 4), torch.rand(3, 3, 4, 4)
    unit = 1.0 / (3 * 4 * 4) ** 0.5
    assert gradient_penalty(Slope(unit), real, fake) < 1e-8  # a 1-Lipschitz critic pays nothing
    assert torch.isclose(gradient_penalty(Slope(2 * unit), real, fake), torch.tensor(1.0), atol=1e-5)


def test_region_shares_split_the_mask_weight() -> None:
    speech = torch.zeros(1, 1, 4, 4)
    speech[..., 2:, :] = 1.0  # the lower half
    mouth = torch.zeros(1, 1, 4, 4)
    mouth[..., 3:, :] = 1.0
    eyes = torch.zeros(1, 1, 4, 4)
    eyes[..., :1, :] = 1.0
    shares = region_shares(speech, {"mouth": mouth, "eyes": eyes})
    assert shares["mouth"] == pytest.approx(0.5) and shares["eyes"] == pytest.approx(0.0)


def test_the_classifier_reads_only_the_lower_face_box(tracked_workspace) -> None:
    from core.renderers.nerf_ad.networks import LowerFaceClassifier
    from core.renderers.nerf_ad.pretrain import lower_face_box
    from core.tracking.quality import projected_landmarks

    torch.manual_seed(0)
    classifier = LowerFaceClassifier(9, (0.5, 0.9, 0.25, 0.75)).eval()
    image = torch.rand(1, 3, 32, 32)
    outside, inside = image.clone(), image.clone()
    outside[..., :12, :] = torch.rand(1, 3, 12, 32)  # the eyes' rows: above the box by 4 pixels
    inside[..., 20:24, 12:20] = torch.rand(1, 3, 4, 8)  # the mouth
    with torch.no_grad():
        base, up, down = classifier(image), classifier(outside), classifier(inside)
    assert (up - base).abs().max() < 1e-2 * (down - base).abs().max()
    # The box from tracking holds the mouth and is below the eyes.
    ws = _workspace(tracked_workspace, n_frames=8)
    source, _, _ = actor_sources(ws, "a", NeRFAD.needs_for(NeRFADConfig(**TINY)), holdout=0.25)
    top, bottom, left, right = lower_face_box(source, list(range(len(source))))
    camera = source.clips[0].clip.camera
    xy = projected_landmarks(source.face_model(), source.params([0]), camera)[0] / camera.image_size[0]
    mouth, eyes = xy[48:68], xy[36:48]
    assert top < mouth[:, 1].min() and mouth[:, 1].max() < bottom and eyes[:, 1].max() < top
    assert left < mouth[:, 0].min() and mouth[:, 0].max() < right


def test_reference_weights_blend_keyframes_and_pick_the_frames_own_emotion(tracked_workspace) -> None:
    ws = _workspace(tracked_workspace, n_frames=8)
    source, _, _ = actor_sources(ws, "a", NeRFAD.needs_for(NeRFADConfig(**TINY)), holdout=0.25)
    renderer = _build(source)
    renderer.emotion_known[4:6] = 1.0  # as if the takes showed happy and sad (prepare sets it)
    emotion = torch.zeros(3, 7)
    emotion[1, 4] = 0.3
    emotion[2, 4], emotion[2, 5] = 0.9, 0.6  # more than 1 in all: scaled down, nothing neutral
    driven = renderer.reference_weights(emotion, driven=True)
    assert torch.allclose(driven.sum(1), torch.ones(3))
    assert torch.allclose(driven[1, [0, 5]], torch.tensor([0.7, 0.3])) and driven[2, 0].abs() < 1e-6
    own = renderer.reference_weights(emotion, driven=False)  # a frame's own label: >= 0.5 picks the group
    assert own.argmax(1).tolist() == [0, 0, 5]
    renderer.emotion_known[5] = 0.0  # sad never filmed: its keyframes do not dilute happy
    assert torch.allclose(renderer.reference_weights(emotion, driven=True)[2, [0, 5, 6]], torch.tensor([0.1, 0.9, 0.0]))


def test_imported_openface_units_are_read_by_column_name(tracked_workspace, tmp_path) -> None:
    import numpy as np

    from core.expression.action_units import SPEECH_AUS
    from core.jobs import protocol as P
    from core.jobs.runner import run_job
    from core.renderers.nerf_ad.pretrain import source_units

    ws = tracked_workspace(n_frames=6, size=32, clips=1)
    names = list(reversed(SPEECH_AUS))  # OpenFace's own order differs from ours
    values = np.arange(6 * len(names), dtype=float).reshape(6, -1) % 5
    rows = [", ".join(["frame", "confidence", *(f"{au}_r" for au in names), "AU12_c"])]
    rows += [", ".join(str(x) for x in [f, 0.98, *values[f], 1]) for f in range(6)]
    (tmp_path / "of.csv").write_text("\n".join(rows) + "\n")
    events: list = []
    run_job(P.JobSpec("features.import", {"file": str(tmp_path / "of.csv"), "actor": "a", "clip": "c0",
                                          "name": "openface", "columns": "AU*_r"}, str(ws.root)), events.append)
    assert isinstance(events[-1], P.Done), events[-1]
    options = NeRFADConfig(**{**TINY, "action_units": "openface"})
    source, _, _ = actor_sources(ws, "a", NeRFAD.needs_for(options), holdout=0.0)
    units = source_units(source, [0, 3], "openface")
    expected = values[[0, 3]][:, [names.index(au) for au in SPEECH_AUS]] / 5.0
    assert np.allclose(units.numpy(), expected)


def test_actor_scaled_units_span_the_actors_own_range_and_map_back(tracked_workspace) -> None:
    from core.expression.action_units import AU_MAX
    from core.renderers.nerf_ad.pretrain import absolute_units, actor_scaled_units

    generator = torch.Generator().manual_seed(0)
    reserved = 0.3 + 0.05 * torch.rand(200, 3, generator=generator)  # a mouth that barely moves (0-1 labels)
    reserved[:, 2] = 0.4  # an AU that never moves
    scaled, low, span = actor_scaled_units(reserved)
    assert float(scaled.min()) >= 0 and float(scaled.max()) <= 1
    assert float(scaled[:, 0].quantile(0.98) - scaled[:, 0].quantile(0.02)) == pytest.approx(1.0, abs=1e-3)
    assert torch.allclose(scaled[:, 2], torch.zeros(200))  # no spread: no signal made out of it
    inside = (scaled > 0) & (scaled < 1)  # not clipped: the inverse gives the labels back on the 0-5 scale
    assert torch.allclose(absolute_units(scaled, low, span)[inside], (reserved * AU_MAX)[inside], atol=1e-4)
    source, _, _ = actor_sources(_workspace(tracked_workspace), "a", NeRFAD.needs_for(NeRFADConfig(**TINY)), 0.25)
    with pytest.raises(Exception, match="au_scale"):
        _build(source, {"au_scale": "relative"})
    with pytest.raises(Exception, match="mask_outside_weight"):
        _build(source, {"mask_outside_weight": -1.0})


def test_the_mask_size_term_keeps_speech_weight_in_the_lower_face_box() -> None:
    # Weighing the mask's size outside the box more moves the speech weight 1 - A into the box (random crops:
    # a code loss weight of 1 lets the size term show within a few steps).
    from core.renderers.nerf_ad.networks import box_mask
    from core.renderers.nerf_ad.pretrain import MOUTH, FaceSet, train_attention

    generator = torch.Generator().manual_seed(0)
    n, size = 24, 32
    faces = FaceSet(torch.rand(n, 3, size, size, generator=generator), torch.zeros(n, 8, 13),
                    torch.rand(n, 10, generator=generator), torch.zeros(n, dtype=torch.long), torch.zeros(n, 7),
                    (0.55, 0.95, 0.25, 0.75), torch.zeros(10), torch.ones(10))
    outside = 1 - box_mask(torch.tensor(faces.box), size)
    shares = []
    for weight in (0.0, 20.0):
        torch.manual_seed(0)
        attention, _, _ = train_attention(faces, steps=25, batch=8, lr=1e-3, lambda_code=1.0,
                                          mask_outside_weight=weight)
        with torch.no_grad():
            A, _ = attention(faces.crops, torch.full((n, len(MOUTH)), 0.5))
        speech = 1 - A
        shares.append(float((speech * outside).sum() / speech.sum()))
    assert shares[1] < shares[0] - 0.1, shares  # measured: 0.84 -> 0.66 (the box is a fifth of the crop)


def test_emotional_frames_learn_from_their_neutral_partners_identity_face(tracked_workspace, monkeypatch) -> None:
    from core.renderers.nerf_ad import pretrain
    from core.renderers.nerf_ad.networks import FEATURE_DIM
    from core.renderers.nerf_ad.pretrain import sentence_partners

    torch.manual_seed(0)
    ws = _workspace(tracked_workspace, n_frames=10)
    needs = NeRFAD.needs_for(NeRFADConfig(**TINY))
    source, _, _ = actor_sources(ws, "a", needs, holdout=0.2)
    assert (sentence_partners(source) == -1).all()  # no sentences: no partners
    for clip in ("c0", "c1"):
        ws.update_clip("a", clip, sentence="s0")
    source, _, _ = actor_sources(ws, "a", needs, holdout=0.2)
    partners = sentence_partners(source)
    k_happy, k_neutral = ([c.name for c in source.clips].index(name) for name in ("c1", "c0"))
    mine = int(source.offsets[k_happy]) + np.arange(len(source.clips[k_happy]))
    first = int(source.offsets[k_neutral])
    last = first + len(source.clips[k_neutral])
    assert (partners[mine] >= first).all() and (partners[mine] < last).all()  # into the neutral take's frames
    assert (partners[mine][1:] >= partners[mine][:-1]).all()  # in order: one sentence, same words
    assert (partners[first:last] == -1).all()  # neutral frames keep their own face
    with monkeypatch.context() as patch:  # takes too long to warp: aligned in proportion to their lengths
        patch.setattr(pretrain, "DTW_MAX_CELLS", 0)
        proportional = sentence_partners(source)
    assert proportional[mine[0]] == first and proportional[mine[-1]] == last - 1
    assert (np.diff(proportional[mine]) >= 0).all() and (proportional[first:last] == -1).all()

    renderer = _build(source, {"neutral_partner": 1.0}).train()
    renderer.attach_training_frames(source)
    assert renderer._partner_faces is not None and len(renderer._partner_faces) == len(set(partners[mine].tolist()))
    i = int(mine[2])
    with torch.no_grad():
        swapped = renderer.conditions(source.batch([i]))[:, :FEATURE_DIM]
        partner = renderer.conditions(source.batch([int(partners[i])]))[:, :FEATURE_DIM]
        renderer.options.neutral_partner = 0.0
        own = renderer.conditions(source.batch([i]))[:, :FEATURE_DIM]
    assert (swapped - partner).abs().max() < 0.05 * partner.abs().max()  # the partner's face, up to 8-bit storage
    assert (own - partner).abs().max() > (swapped - partner).abs().max()


def test_the_deformation_option_trains_saves_and_reloads(tracked_workspace, tmp_path) -> None:
    torch.manual_seed(0)
    source, _, _ = actor_sources(_workspace(tracked_workspace, n_frames=8), "a",
                                 NeRFAD.needs_for(NeRFADConfig(**TINY)), holdout=0.25)
    with pytest.raises(Exception, match="deform_width"):
        _build(source, {"deform_width": -1})
    assert _build(source, {"deform_width": 0}).deformation is None
    train(_build(source, {"deform_width": 8}), source, tmp_path, TrainConfig(iterations=3, lr=5e-3,
                                                                              checkpoint_every=10, sample_every=0))
    renderer = load(tmp_path)
    assert renderer.deformation is not None
    assert float(renderer.deformation.mlp[-1].weight.detach().abs().sum()) > 0  # it left its zero start
    # A checkpoint written before the option existed (no deform_width in its options) loads without one.
    from core.renderers.registry import read_checkpoint, renderer_from_state

    state = read_checkpoint(tmp_path / "checkpoint.pt")
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith("deformation.")}
    del state["options"]["deform_width"]
    assert renderer_from_state(state).deformation is None
