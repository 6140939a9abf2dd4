"""JEAN: a few-iteration CPU smoke train of the whole renderer (encoders, then the NeRF; cancel, resume), the
encoders' own training signals, the keyframed-emotion map and the driven path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.jobs.context import JobCancelled
from core.renderers.base import RendererSetup
from core.renderers.data import actor_sources
from core.renderers.jean.features import jean_landmarks
from core.renderers.jean.model import JEAN, load_audio_encoder, save_audio_encoder
from core.renderers.jean.networks import ExpressionTransformer, LandmarkAutoencoder, info_nce
from core.renderers.jean.pretrain import negatives_mask, series_of_source, train_expression_transformer
from core.renderers.registry import build, load
from core.renderers.train import TrainConfig, read_history, train

TINY = {"render_size": 32, "rays_per_step": 128, "samples": 8, "occupancy_resolution": 16,
        "triplane_resolutions": (8, 16), "triplane_features": 4, "width": 16, "depth": 2, "colour_width": 8,
        "pretrain_steps": 15, "expression_steps": 5, "audio_window": 4}


def _workspace(tracked_workspace, n_frames: int = 16):
    """Three tracked clips: c0 neutral and c1 happy say one sentence, c2 another."""
    ws = tracked_workspace(n_frames=n_frames, size=32, clips=3)
    ws.update_clip("a", "c0", sentence="s0")
    ws.update_clip("a", "c1", sentence="s0", emotion={"happy": 1.0})
    ws.update_clip("a", "c2", sentence="s1", emotion={"sad": 0.5})
    return ws


def _build(source, options: dict | None = None) -> JEAN:
    setup = RendererSetup(image_size=source.size, face_model=source.face_model_spec,
                          train_frames=source.train_frames, n_expression=source.face_model().n_expr)
    renderer = build("jean", setup, "cpu", {**TINY, **(options or {})})
    assert isinstance(renderer, JEAN)
    return renderer


def test_smoke_train_cancel_resume_and_render(tracked_workspace, tmp_path) -> None:
    torch.set_num_threads(1)
    ws = _workspace(tracked_workspace)
    source, held, _ = actor_sources(ws, "a", JEAN.needs_for(_build_options()), holdout=0.25)
    config = TrainConfig(iterations=20, lr=5e-3, lr_final=5e-4, checkpoint_every=5, sample_every=10)

    def cancel_at_8(done: int, total: int, message: str) -> None:
        if done == 8:
            raise JobCancelled("test")

    with pytest.raises(JobCancelled):
        train(_build(source), source, tmp_path, config, progress=cancel_at_8)
    stopped = read_history(tmp_path)
    summary = train(_build(source), source, tmp_path, config)
    history = read_history(tmp_path)
    assert summary["resumed_from"] == 8 and history["step"] == list(range(1, 21))
    assert history["photo"][:8] == stopped["photo"]
    renderer = load(tmp_path)
    assert isinstance(renderer, JEAN)
    # The emotion map was fitted: happy and sad come from the takes, the rest from the prior (or none).
    assert renderer.code_source[4].item() == 1.0 and renderer.code_source[5].item() == 1.0  # happy, sad
    batch = held.batch([0, 1])
    out = renderer(batch)
    assert out.image.shape == (2, 3, 32, 32) and out.alpha.shape == (2, 1, 32, 32)
    assert torch.isfinite(out.image).all()
    # Driven: the expression features follow the keyframed intensities, not the frames.
    batch.driven = True
    neutral = renderer.conditions(batch)
    batch.emotion[:, 4] = 1.0  # happy
    happy = renderer.conditions(batch)
    assert torch.allclose(happy[:, :64], neutral[:, :64])  # the audio half is untouched
    offset = renderer.emotion_codes[1 + 4]
    assert torch.allclose(happy[:, 64:] - neutral[:, 64:], offset.expand(2, -1), atol=1e-5)


def _build_options():
    from core.renderers.jean.config import JEANConfig

    return JEANConfig(**{k: v for k, v in TINY.items()})


def test_frozen_encoders_stay_out_of_the_optimiser_and_ablations_train_theirs(tracked_workspace) -> None:
    ws = _workspace(tracked_workspace, n_frames=12)
    source, _, _ = actor_sources(ws, "a", JEAN.needs_for(_build_options()), holdout=0.25)
    full = _build(source)
    trained = {id(p) for g in full.param_groups(1e-3) for p in g["params"]}
    assert not any(id(p) in trained for p in full.audio_encoder.parameters())
    assert not any(id(p) in trained for p in full.expression_encoder.parameters())
    joint = _build(source, {"audio_encoder": "joint", "expression_features": "mlp"})
    trained = {id(p) for g in joint.param_groups(1e-3) for p in g["params"]}
    assert all(id(p) in trained for p in joint.audio_encoder.parameters())
    assert all(id(p) in trained for p in joint.expression_encoder.parameters())
    assert JEAN.needs_for(joint.options).context_frames == 0  # no transformer window
    with pytest.raises(ValueError, match="audio_encoder"):
        _build(source, {"audio_encoder": "deepspeech"})


def test_landmark_swap_targets_follow_the_swapped_mouth() -> None:
    torch.manual_seed(0)
    model = LandmarkAutoencoder(dim=8, hidden=32)
    a, b = torch.randn(4, 51, 2), torch.randn(4, 51, 2)
    model.norm.fit(torch.cat([a, b]).flatten(1))
    # Probability 1: the decoder must give a's eye-nose with b's mouth; a perfect decoder for that target has
    # zero loss, one that copies its own input does not.
    with torch.no_grad():
        fa, ma = model.encode(a)
        fb, mb = model.encode(b)
    loss_swapped = model.swap_loss(a, b, swap_probability=1.0)
    loss_kept = model.swap_loss(a, b, swap_probability=0.0)
    assert loss_swapped.item() > 0 and loss_kept.item() > 0
    assert not torch.allclose(loss_swapped, loss_kept)


def test_info_nce_prefers_the_matching_key_and_ignores_masked_negatives() -> None:
    keys = torch.eye(4)
    assert info_nce(keys, keys).item() < info_nce(keys, keys.roll(1, 0)).item()
    clip = torch.tensor([0, 0, 1, 1])
    time = torch.tensor([0, 5, 0, 40])
    valid = negatives_mask(clip, time, gap=25)
    assert not valid[0, 1] and valid[0, 2] and valid[2, 3]
    # A masked near-duplicate key cannot make the loss worse.
    queries = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0]])
    masked = info_nce(queries, queries, valid)
    assert masked.item() < info_nce(queries, queries).item()
    # Another speaker's frame is never a negative, however far in time.
    speaker = torch.tensor([0, 0, 0, 1])
    by_speaker = negatives_mask(clip, time, gap=25, speaker=speaker)
    assert by_speaker[0, 2] and not by_speaker[0, 3] and not by_speaker[2, 3]


def test_batches_by_speaker_draw_each_group_from_one_speaker_and_every_speaker_alike() -> None:
    from core.renderers.jean.pretrain import Pool, Series, train_audio_encoder

    def series(speaker: str, n: int) -> Series:
        return Series(speaker, torch.zeros(n, 51, 2), torch.zeros(n, 8, 13), torch.zeros(n, 4), np.zeros(7), None,
                      np.arange(n), speaker)

    # The big speaker's clips come before and after the small one's: groups must not care about the order.
    pool = Pool.of([series("big", 900), series("small", 30), series("big", 900)])
    rows = pool.draw_by_speaker(4000, 40, torch.Generator().manual_seed(0))
    groups = pool.speaker[rows].reshape(100, 40)
    assert (groups == groups[:, :1]).all()
    share_small = float((groups[:, 0] == 1).float().mean())
    assert 0.35 < share_small < 0.65  # 30 frames against 1,800, drawn as often
    assert set(pool.clip[rows][pool.speaker[rows] == 1].tolist()) == {1}
    torch.manual_seed(0)
    two = [Series(name, torch.randn(40, 51, 2), torch.randn(40, 8, 13), torch.zeros(40, 4), np.zeros(7), None,
                  np.arange(40), name) for name in ("a", "b")]
    encoder, loss = train_audio_encoder(two, LandmarkAutoencoder(), steps=2, batch=16)
    assert np.isfinite(loss) and encoder(two[0].audio[:3]).shape == (3, 64)


def test_expression_transformer_trains_on_the_takes_of_one_sentence(tracked_workspace) -> None:
    torch.set_num_threads(1)
    ws = _workspace(tracked_workspace, n_frames=14)
    source, _, _ = actor_sources(ws, "a", JEAN.needs_for(_build_options()), holdout=0.0)
    series = series_of_source(source, source.face_model().n_expr)
    assert [s.sentence for s in series] == ["s0", "s0", "s1"]
    assert series[0].landmarks.shape == (14, 51, 2)
    model, report = train_expression_transformer(series, steps=3, window=4, batch=4)
    assert report["pairs"] == 1 and np.isfinite(report["loss"]) and isinstance(model, ExpressionTransformer)
    speech, expression = model.encode(series[0].emotion[None, :4])
    assert speech.shape == (1, 4, 64) and expression.shape == (1, 64)
    for s in series:
        s.sentence = None
    _, report = train_expression_transformer(series, steps=1, window=4, batch=2)
    assert report["pairs"] == 0 and "--sentence" in report["note"]


def test_landmarks_ignore_the_head_pose(tracked_workspace) -> None:
    ws = _workspace(tracked_workspace, n_frames=4)
    source, _, _ = actor_sources(ws, "a", JEAN.needs_for(_build_options()), holdout=0.0)
    params = source.params([0, 1])
    model = source.face_model()
    before = jean_landmarks(model, params)
    params.rotation += 0.2
    params.translation += 0.05
    assert torch.allclose(jean_landmarks(model, params), before, atol=1e-5)
    params.jaw_pose[:, 0] += 0.3
    moved = jean_landmarks(model, params) - before
    assert moved[:, 31:].abs().max() > 10 * moved[:, :31].abs().max()  # the jaw moves the mouth points


def test_audio_encoder_file_round_trip(tmp_path) -> None:
    from core.renderers.jean.networks import AudioEncoder

    landmark_ae, audio = LandmarkAutoencoder(), AudioEncoder(13)
    path = save_audio_encoder(tmp_path / "enc.pt", landmark_ae, audio, {"speakers": 3})
    loaded_ae, loaded_audio, info = load_audio_encoder(path)
    x = torch.randn(2, 8, 13)
    assert torch.allclose(loaded_audio(x), audio.eval()(x)) and info == {"speakers": 3}
    torch.save({"kind": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a JEAN audio encoder"):
        load_audio_encoder(tmp_path / "other.pt")


class _Echo(torch.nn.Module):
    """A stand-in encoder: the mouth embedding is the flattened landmarks, the audio embedding its input's first
    time step."""

    def encode(self, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return landmarks.flatten(1), landmarks.flatten(1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return audio[:, 0]


def test_retrieval_finds_the_matching_window_and_falls_to_chance_without_a_match() -> None:
    from core.renderers.jean.pretrain import Series, retrieval_accuracy

    torch.manual_seed(0)
    n = 200
    mouths = torch.randn(n, 51, 2)
    matched = Series("clip", mouths, mouths.flatten(1)[:, None, :].clone(), torch.zeros(n, 4), np.zeros(7), None,
                     np.arange(n))
    assert retrieval_accuracy(matched, _Echo(), _Echo(), candidates=32, trials=300) == pytest.approx(1.0)
    unrelated = Series("clip", mouths, torch.randn(n, 1, 102), torch.zeros(n, 4), np.zeros(7), None, np.arange(n))
    single = retrieval_accuracy(unrelated, _Echo(), _Echo(), candidates=32, trials=2000)
    assert single < 0.08  # chance is 1/32 = 0.031
    with pytest.raises(ValueError, match="too few"):
        retrieval_accuracy(Series("short", mouths[:10], mouths[:10].flatten(1)[:, None], torch.zeros(10, 4),
                                  np.zeros(7), None, np.arange(10)), _Echo(), _Echo())


def test_a_missing_encoder_file_is_a_clear_job_error(tracked_workspace) -> None:
    from core.jobs import protocol as P
    from core.jobs.runner import run_job

    ws = _workspace(tracked_workspace, n_frames=8)
    events: list = []
    spec = P.JobSpec("train.renderer", {"actor": "a", "renderer": "jean", "iterations": 2, "device": "cpu",
                                        "options": {**TINY, "audio_encoder_weights": "/nowhere/encoder.pt"}},
                     str(ws.root))
    assert run_job(spec, events.append) != P.EXIT_OK
    error = events[-1]
    assert isinstance(error, P.Error) and error.code == "bad_params" and error.hint
    assert "/nowhere/encoder.pt" in error.message and "audio_encoder_weights" in error.message


def test_imported_emotion_network_features_drive_the_expression_input(tracked_workspace, tmp_path) -> None:
    """``emotion_network=NAME``: the transformer reads the user's imported features, not the tracked face."""
    from core.jobs import protocol as P
    from core.jobs.runner import run_job

    torch.set_num_threads(1)
    ws = _workspace(tracked_workspace, n_frames=12)
    rng = np.random.default_rng(0)
    for k, clip in enumerate(("c0", "c1", "c2")):
        features = rng.normal(size=(12, 10)) + 3.0 * k  # a stand-in network that tells the takes apart
        np.save(tmp_path / f"{clip}.npy", features)
        events: list = []
        run_job(P.JobSpec("features.import", {"file": str(tmp_path / f"{clip}.npy"), "actor": "a", "clip": clip,
                                              "name": "emotion_net"}, str(ws.root)), events.append)
        assert isinstance(events[-1], P.Done), events[-1]
    options = {**TINY, "emotion_network": "emotion_net"}
    from core.renderers.jean.config import JEANConfig

    needs = JEAN.needs_for(JEANConfig(**options))
    assert needs.frame_features == ("emotion_net",)
    source, held, _ = actor_sources(ws, "a", needs, holdout=0.25)
    setup = RendererSetup(image_size=source.size, face_model=source.face_model_spec, train_frames=source.train_frames,
                          n_expression=source.face_model().n_expr, frame_features=source.feature_widths())
    renderer = build("jean", setup, "cpu", options)
    assert isinstance(renderer, JEAN) and renderer.expression_encoder.norm.mean.shape == (10,)
    train(renderer, source, tmp_path / "model", TrainConfig(iterations=3, lr=5e-3, lr_final=5e-4))
    loaded = load(tmp_path / "model")
    assert loaded.setup.frame_features == {"emotion_net": 10}
    # Emotions no take shows get no offset: the prior's faces cannot pass through the user's network.
    assert loaded.code_source[4].item() == 1.0 and loaded.code_source[0].item() == 0.0  # happy; angry
    batch = held.batch([0, 1])
    with torch.no_grad():
        before = loaded.conditions(batch)
        batch.context.features["emotion_net"] += 5.0
        after = loaded.conditions(batch)
    assert torch.allclose(before[:, :64], after[:, :64])  # the audio half does not see them
    assert (before[:, 64:] - after[:, 64:]).abs().max() > 1e-3  # the expression half does
    with pytest.raises(ValueError, match="emotion_network='other'"):
        build("jean", setup, "cpu", {**TINY, "emotion_network": "other"})
