"""The speech prior: synthetic sentences mixed into an actor's a2e training, in the actor's ranges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.audio.features import make_extractor
from core.expression.a2e import A2EConfig
from core.expression.a2e_data import (
    SPEECH_PRIOR_PREFIX,
    A2EDataError,
    ClipData,
    match_target_statistics,
    speech_prior_clips,
)
from core.expression.a2e_train import train_a2e
from core.morphable.data import PROCEDURAL_EXPRESSIONS
from core.synthetic.corpus import build_param_corpus
from core.workspace import Workspace


def test_prior_clips_are_deterministic_neutral_speech_of_the_procedural_head() -> None:
    extractor = make_extractor("mfcc")
    a = speech_prior_clips(2, extractor, False, 25.0, PROCEDURAL_EXPRESSIONS, seed=3)
    b = speech_prior_clips(2, extractor, False, 25.0, PROCEDURAL_EXPRESSIONS, seed=3)
    assert [c.name for c in a] == [f"{SPEECH_PRIOR_PREFIX}000", f"{SPEECH_PRIOR_PREFIX}001"]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.features, y.features) and np.array_equal(x.targets, y.targets)
        assert x.targets.shape == (x.n_frames, len(PROCEDURAL_EXPRESSIONS) + 3) and not x.emotion.any()
        assert x.targets[:, len(PROCEDURAL_EXPRESSIONS)].std() > 0  # the jaw moves with the speech
    with pytest.raises(A2EDataError, match="procedural"):
        speech_prior_clips(1, extractor, False, 25.0, [f"expr_{i}" for i in range(50)])


def _clip(name: str, targets: np.ndarray) -> ClipData:
    n = len(targets)
    return ClipData(name, name, np.zeros((n, 4, 2), np.float32), targets.astype(np.float32),
                    np.zeros((n, 7), np.float32), {}, False, {})


def test_prior_targets_take_the_actors_mean_and_spread() -> None:
    rng = np.random.default_rng(0)
    prior = [_clip("p", rng.normal([1.0, 5.0, 0.0], [2.0, 1.0, 1.0], (500, 3)))]
    actor = [_clip("a", np.stack([rng.normal(0.1, 0.05, 300), rng.normal(-1, 0.5, 300), np.full(300, 0.3)], 1))]
    matched = match_target_statistics(prior, actor)[0].targets
    assert np.allclose(matched.mean(0), actor[0].targets.mean(0), atol=1e-4)
    assert np.allclose(matched.std(0), actor[0].targets.std(0), atol=1e-4)  # a still dimension stays still
    assert np.corrcoef(matched[:, 0], prior[0].targets[:, 0])[0, 1] > 0.999  # the timing is the prior's


def test_training_with_the_prior_never_holds_it_out(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    ws = Workspace.create(tmp_path / "ws")
    build_param_corpus(ws, "p", 2, emotions=("neutral",), intensities=(1.0,), seed=1, words=(2, 3))
    logs: list[str] = []

    class Reporter:
        def progress(self, *args: object, **kw: object) -> None: ...
        def log(self, message: str, level: str = "info") -> None: logs.append(message)
        def artifact(self, *args: object) -> None: ...
        def check_cancelled(self) -> None: ...

    config = A2EConfig(encoder_hidden=16, lstm_hidden=16, decoder_hidden=16, disc_hidden=8, batch_size=4,
                       seq_len=8, iterations=3, checkpoint_every=3, val_every=3, val_fraction=0.5, speech_prior=3)
    train_a2e(ws, "p", config, reporter=Reporter())
    split = json.loads((ws.model_dir("p", "a2e") / "config.json").read_text())["split"]
    prior = [n for n in split["train"] if n.startswith(SPEECH_PRIOR_PREFIX)]
    assert len(prior) == 3 and not any(n.startswith(SPEECH_PRIOR_PREFIX) for n in split["val"])
    assert len(split["val"]) == 1  # one of the actor's two sentences
    assert any("speech prior: 3 synthetic sentences" in line for line in logs)


def test_the_job_adds_the_prior_for_short_real_footage_only(tmp_path: Path) -> None:
    from core.expression.jobs import AUTO_PRIOR_SENTENCES, _auto_speech_prior
    from core.jobs.context import JobContext
    from core.jobs.protocol import JobSpec

    ws = Workspace.create(tmp_path / "ws")
    logs: list[object] = []
    ctx = JobContext(JobSpec(kind="train.a2e", params={}, workspace=str(ws.root)), logs.append)
    ws.set_clip("anna", "take1", {"video": "v.mp4", "fps": 25, "duration_s": 8.0})
    assert _auto_speech_prior(ctx, "anna") == AUTO_PRIOR_SENTENCES
    ws.set_clip("anna", "take2", {"video": "w.mp4", "fps": 25, "duration_s": 120.0})
    assert _auto_speech_prior(ctx, "anna") == 0  # enough footage
    ws.set_clip("synth", "s0", {"video": "x.mp4", "fps": 25, "duration_s": 2.0, "synthetic": True})
    assert _auto_speech_prior(ctx, "synth") == 0  # the synthetic actor needs no prior
    assert _auto_speech_prior(ctx, "nobody") == 0


def test_prior_voices_are_deterministic_and_unlike_the_one_synthetic_voice() -> None:
    from core.synthetic.speech import random_voice

    voices = [random_voice(np.random.default_rng(s)) for s in range(40)]
    pitches = np.array([v.base_pitch_hz for v in voices])
    scales = np.array([v.formant_scale for v in voices])
    assert pitches.min() >= 85 and pitches.max() <= 255 and (pitches > 160).any() and (pitches < 160).any()
    assert np.corrcoef(pitches, scales)[0, 1] > 0.5  # high voices come with shorter tracts
    extractor = make_extractor("mfcc")
    one = speech_prior_clips(2, extractor, False, 25.0, PROCEDURAL_EXPRESSIONS, seed=3)
    many = speech_prior_clips(2, extractor, False, 25.0, PROCEDURAL_EXPRESSIONS, seed=3, voices=True)
    again = speech_prior_clips(2, extractor, False, 25.0, PROCEDURAL_EXPRESSIONS, seed=3, voices=True)
    assert all(np.array_equal(a.features, b.features) for a, b in zip(many, again, strict=True))
    assert [c.n_frames for c in one] == [c.n_frames for c in many]  # same sentences, other voices
    assert not any(np.allclose(a.features, b.features) for a, b in zip(one, many, strict=True))


def test_voice_warps_add_trained_copies_of_the_footage_only(tmp_path: Path) -> None:
    from core.expression.a2e_data import TAIL, WARP_MARK

    torch.set_num_threads(1)
    ws = Workspace.create(tmp_path / "ws")
    build_param_corpus(ws, "p", 2, emotions=("neutral",), intensities=(1.0,), seed=1, words=(2, 3))
    config = A2EConfig(encoder_hidden=16, lstm_hidden=16, decoder_hidden=16, disc_hidden=8, batch_size=4,
                       seq_len=8, iterations=3, checkpoint_every=3, val_every=3, tail_holdout=0.3,
                       voice_warps=[0.9, 1.15])
    train_a2e(ws, "p", config)
    split = json.loads((ws.model_dir("p", "a2e") / "config.json").read_text())["split"]
    names = sorted(ws.read_manifest()["actors"]["p"]["clips"])
    copies = sorted(n for n in split["train"] if WARP_MARK in n)
    assert copies == sorted(f"{n}{WARP_MARK}{w}" for n in names for w in ("0.9", "1.15"))
    assert sorted(split["val"]) == [n + TAIL for n in names]  # held-out ends are heard as they are
    with pytest.raises(ValueError, match="voice_warps"):
        A2EConfig(voice_warps=[2.0])
