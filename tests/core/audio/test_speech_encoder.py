"""The speech encoder: shapes, locality, the acoustic units, a smoke train, its file and its feature extractor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.audio.features import FEATURES, FeatureNotAvailable, make_extractor
from core.audio.speech_encoder import (
    SPEECH_ENCODER_FILE,
    TRAIN_WARPS,
    SpeechEncoder,
    SpeechEncoderConfig,
    SpeechEncoderFeatures,
    kmeans,
    load_speech_encoder,
    sample_segments,
    save_speech_encoder,
    train_speech_encoder,
    unit_accuracy,
    unit_labels,
    utterance_views,
)

TINY = SpeechEncoderConfig(hidden=16, dim=8, kernel=3, dilations=(1, 2), units=8)


def syllables(seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    """A voice-like test signal: harmonic bursts with moving formant-like peaks and pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 60 * rng.random()
    wave = np.zeros_like(t)
    for k in range(1, 25):
        formant = 500 + 1500 * (0.5 + 0.5 * np.sin(2 * np.pi * (1.5 + rng.random()) * t + rng.random() * 6))
        wave += np.exp(-((k * f0 - formant) / 300) ** 2) * np.sin(2 * np.pi * k * f0 * t)
    envelope = np.clip(np.sin(2 * np.pi * (3 + rng.random()) * t), 0, None)
    return (0.1 * wave * envelope + 1e-3 * rng.standard_normal(t.size)).astype(np.float32)


def test_encoder_keeps_length_and_sees_only_its_receptive_field() -> None:
    torch.manual_seed(0)
    encoder = SpeechEncoder(TINY).eval()
    x = torch.randn(2, 60, TINY.n_mels)
    y = encoder(x)
    assert y.shape == (2, 60, TINY.dim)
    changed = x.clone()
    changed[:, 50:] += 5.0  # far from frame 20: its receptive field is 1 + 2 * 4 = 9 frames wide
    assert TINY.receptive_field == 9
    y2 = encoder(changed)
    assert torch.allclose(y[:, :40], y2[:, :40], atol=1e-5)
    assert not torch.allclose(y[:, 50:], y2[:, 50:], atol=1e-3)


def test_kmeans_finds_separated_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    truth = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.3 * torch.randn(50, 2, generator=g) for c in truth])
    centres = kmeans(points, 3)
    assert torch.cdist(truth, centres).min(1).values.max() < 0.5


def test_units_are_named_on_the_unwarped_frames_and_segments_pair_them() -> None:
    views = utterance_views([syllables(1.0, seed) for seed in range(3)])
    assert views[0].shape[0] == len(TRAIN_WARPS) and views[0].shape[2] == 40
    labels, centres = unit_labels(views, 6)
    assert centres.shape == (6, 40) and all(len(lab) == v.shape[1] for lab, v in zip(labels, views, strict=True))
    x, units = sample_segments(views, labels, 5, 30, np.random.default_rng(0), gain_depth=0.0)
    assert x.shape == (5, 30, 40) and units.shape == (5, 30) and int(units.max()) < 6
    with pytest.raises(ValueError, match="no utterance"):
        sample_segments(views, labels, 2, 1000, np.random.default_rng(0))


def test_smoke_train_lowers_the_loss_and_names_units_across_warps() -> None:
    views = utterance_views([syllables(2.0, seed) for seed in range(4)])
    encoder, losses, centres = train_speech_encoder(views, steps=40, config=TINY, batch=8, length=48, lr=3e-3)
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    by_encoder, by_nearest = unit_accuracy(encoder, utterance_views([syllables(1.0, 99)]), centres, 0)
    assert by_encoder > 2 / TINY.units  # above chance on a voice it never heard, through the strongest warp
    assert 0.0 <= by_nearest <= 1.0


def test_weights_round_trip_and_feature_extractor(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = SpeechEncoder(TINY)
    path = save_speech_encoder(encoder, tmp_path / "enc.pt", {"data": "test"})
    loaded, report = load_speech_encoder(path)
    assert report == {"data": "test"}
    x = torch.randn(1, 30, TINY.n_mels)
    assert torch.allclose(encoder.eval()(x), loaded(x), atol=1e-6)

    features = SpeechEncoderFeatures(weights=path)
    out = features.extract(syllables(1.0, 3), 16000, fps=25.0)
    assert out.shape == (25, features.window, TINY.dim) and np.isfinite(out).all()
    # louder and quieter copies of one recording give the same features (the input is standardised)
    assert np.allclose(out, features.extract(0.3 * syllables(1.0, 3), 16000, fps=25.0), atol=1e-3)


def test_load_refuses_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(FeatureNotAvailable, match="missing"):
        load_speech_encoder(tmp_path / "none.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(FeatureNotAvailable, match="not an emodub speech encoder"):
        load_speech_encoder(tmp_path / "other.pt")


@pytest.mark.skipif(not SPEECH_ENCODER_FILE.is_file(), reason="the package's encoder weights are not built")
def test_the_package_encoder_is_a_librispeech_one() -> None:
    assert "speech" in FEATURES
    extractor = make_extractor("speech")
    assert "LibriSpeech" in extractor.report["data"]
    out = extractor.extract(syllables(0.5, 1), 16000, fps=25.0)
    assert out.shape[-1] == extractor.dim and np.isfinite(out).all()
