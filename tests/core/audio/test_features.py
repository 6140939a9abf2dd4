"""Audio loading and video-frame-aligned features: alignment, any rate/channels, silence, short audio,
bad input."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio import (
    AudioError,
    AudioFeatureConfig,
    FeatureNotAvailable,
    audio_stats,
    load_audio,
    make_extractor,
    n_video_frames,
    prepare_wave,
)

SR = 16000


def _speechlike(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.3 * env * (np.sin(2 * np.pi * 220 * t) + 0.3 * rng.standard_normal(t.size))).astype(np.float32)


def _power(log_mel: np.ndarray) -> np.ndarray:
    """Total power of each audio frame from its log-mel bands (dB): (..., D) -> (...)."""
    return (10.0 ** (log_mel / 10.0)).sum(-1)


@pytest.fixture(scope="module")
def mel() -> object:
    return make_extractor("mel", AudioFeatureConfig(normalize_gain=False))


@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97])
def test_tone_burst_lands_at_the_centre_of_its_video_frame_window(mel: object, fps: float) -> None:
    # A 20 ms burst centred on the presentation time of frame 37: in that frame's window the energy must
    # peak at the two centre audio frames, and in no other video frame's centre.
    frame = 37
    wave = np.zeros(int(3.0 * SR), np.float32)
    centre = int(round(frame / fps * SR))
    t = np.arange(-160, 160) / SR
    wave[centre - 160: centre + 160] = 0.8 * np.sin(2 * np.pi * 1000 * t) * np.hanning(320)
    feats = mel.extract(wave, SR, fps)                                # (N, W, D)
    W = feats.shape[1]
    energy = _power(feats)                                            # (N, W)
    assert feats.shape[0] == n_video_frames(wave.size, SR, fps)
    assert set(np.argsort(energy[frame])[-2:]) == {W // 2 - 1, W // 2}
    centre_energy = energy[:, W // 2 - 1: W // 2 + 1].mean(1)
    assert int(np.argmax(centre_energy)) == frame
    # Neighbouring frames see the burst shifted by exactly k audio frames.
    k = mel.config.frames_per_video_frame
    assert int(np.argmax(energy[frame - 1])) - int(np.argmax(energy[frame])) in (k, k - 1, k + 1)


def test_alignment_does_not_drift_over_a_long_clip(mel: object) -> None:
    fps = 29.97
    wave = np.zeros(int(120 * SR), np.float32)   # two minutes: a drift of 1 sample per frame would show
    frame = int(119 * fps)
    centre = int(round(frame / fps * SR))
    wave[centre - 80: centre + 80] = 0.9 * np.hanning(160)
    energy = _power(mel.extract(wave, SR, fps))
    W = energy.shape[1]
    assert int(np.argmax(energy[:, W // 2 - 1: W // 2 + 1].mean(1))) == frame


def test_window_is_a_multiple_of_the_frame_rate_and_hop_is_10ms() -> None:
    cfg = AudioFeatureConfig()
    ex = make_extractor("mfcc", cfg)
    assert cfg.hop_samples(25) == 160
    assert ex.window == cfg.frames_per_video_frame * cfg.window_video_frames
    feats = ex.extract(_speechlike(2.0), SR, 25)
    assert feats.shape == (50, ex.window, cfg.n_mfcc)
    assert feats.dtype == np.float32 and np.isfinite(feats).all()


@pytest.mark.slow  # librosa.feature's first import JIT-compiles for several seconds
def test_mfcc_equals_librosa_dct_of_the_log_mel() -> None:
    import librosa

    ex = make_extractor("mfcc")
    wave = ex.prepare(_speechlike(0.5), SR)
    centres = ex.frame_centres(12, 25.0)
    log_mel = ex.log_mel(wave, centres)
    expected = librosa.feature.mfcc(S=log_mel.T, n_mfcc=ex.config.n_mfcc).T
    np.testing.assert_allclose(ex.frame_features(wave, centres), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"),
                         [(16000, 512, 80, 20.0, 7600.0), (16000, 400, 40, 0.0, None),
                          (48000, 2048, 128, 55.0, 20000.0)])
def test_mel_filterbank_matches_librosa(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> None:
    # The checkpoints were trained on librosa.filters.mel's bank; ours must be the same filters.
    from librosa.filters import mel

    from core.audio.features import mel_filterbank

    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    expected = mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == expected.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)


def test_mel_scale_round_trips_and_is_linear_below_1khz() -> None:
    from core.audio.features import slaney_hz, slaney_mel

    hz = np.array([0.0, 200.0, 999.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(slaney_hz(slaney_mel(hz)), hz, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(slaney_mel(np.array([300.0, 600.0])), [4.5, 9.0])
    assert np.all(np.diff(slaney_mel(hz)) > 0)


def test_any_sample_rate_and_stereo_give_the_same_features() -> None:
    ex = make_extractor("mfcc")
    base = _speechlike(1.0, 48000)
    ref = ex.extract(prepare_wave(base, 48000, SR), SR, 25)
    stereo_last = np.stack([base, base], 1)                      # (S, 2) soundfile layout
    stereo_first = np.stack([base, base], 0)                     # (2, S) librosa layout
    for wave, sr in ((base, 48000), (stereo_last, 48000), (stereo_first, 48000)):
        out = ex.extract(wave, sr, 25)
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-3)
    for sr in (8000, 22050, 44100):
        wave = prepare_wave(base, 48000, sr)
        out = ex.extract(wave, sr, 25)
        assert out.shape == ref.shape and np.isfinite(out).all()
        # Band-limited speech survives resampling: the energy coefficient follows the same contour.
        assert np.corrcoef(out[:, :, 0].ravel(), ref[:, :, 0].ravel())[0, 1] > 0.95


def test_integer_pcm_is_scaled() -> None:
    wave = _speechlike(0.3)
    pcm = (wave * 32767).astype(np.int16)
    np.testing.assert_allclose(prepare_wave(pcm, SR), wave, atol=1e-4)


def test_silence_clipping_and_short_audio_are_finite() -> None:
    ex = make_extractor("mfcc")
    silent = ex.extract(np.zeros(SR, np.float32), SR, 25)
    assert silent.shape[0] == 25 and np.isfinite(silent).all()
    assert np.allclose(silent, silent[0, 0])                    # one constant floor value, no NaN
    clipped = np.clip(_speechlike(1.0) * 20, -1, 1)
    assert audio_stats(clipped, SR).clipped_fraction > 0.1
    assert np.isfinite(ex.extract(clipped, SR, 25)).all()
    short = ex.extract(_speechlike(0.1), SR, 25)                # 2.5 frames -> 3, zero padded
    assert short.shape == (3, ex.window, 13) and np.isfinite(short).all()
    one = ex.extract(np.ones(1, np.float32) * 0.1, SR, 25)
    assert one.shape[0] == 1
    forced = ex.extract(_speechlike(0.1), SR, 25, n_frames=10)  # a video longer than its audio
    assert forced.shape[0] == 10 and np.allclose(forced[-1], silent[0])


def test_gain_normalisation_makes_level_irrelevant() -> None:
    ex = make_extractor("mfcc")
    wave = _speechlike(1.0)
    np.testing.assert_allclose(ex.extract(wave * 0.05, SR, 25), ex.extract(wave, SR, 25), atol=1e-2)
    assert audio_stats(np.zeros(SR), SR).silent and not audio_stats(wave, SR).silent


def test_load_audio_reads_and_refuses(tmp_path: Path) -> None:
    wave = _speechlike(0.5, 44100)
    stereo = np.stack([wave, wave], 1)
    sf.write(tmp_path / "a.wav", stereo, 44100, subtype="PCM_16")
    out, sr = load_audio(tmp_path / "a.wav")
    assert sr == SR and out.ndim == 1 and out.dtype == np.float32
    assert abs(out.size - SR // 2) <= 1
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), SR)
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(tmp_path / "junk.wav")
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="NaN"):
        prepare_wave(np.array([0.0, np.nan]), SR)
    with pytest.raises(ValueError, match="frame rate"):
        make_extractor("mfcc").extract(wave, 44100, 0)
    with pytest.raises(ValueError, match="unknown audio feature"):
        make_extractor("deepspeech")


def test_wav2vec2_without_transformers_or_weights_says_so(tmp_path: Path) -> None:
    with pytest.raises(FeatureNotAvailable, match="not available.*transformers"):
        make_extractor("wav2vec2")
    (tmp_path / "config.json").write_text("{}")
    if "transformers" not in sys.modules:
        with pytest.raises(FeatureNotAvailable, match="transformers package is not installed"):
            make_extractor("wav2vec2", phoneme_model=tmp_path)


def test_wav2vec2_posteriors_are_aligned_to_the_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loading path with a stand-in for transformers: a 'model' whose token 1 fires where the audio
    is loud. The posteriors must land on the video frame of the burst."""
    import torch

    stride = 320

    class FakeModel(torch.nn.Module):
        config = types.SimpleNamespace(conv_stride=[5, 2, 2, 2, 2, 2, 2], conv_kernel=[10, 3, 3, 3, 3, 2, 2],
                                       vocab_size=3)

        @classmethod
        def from_pretrained(cls, path: str, local_files_only: bool) -> FakeModel:
            assert local_files_only
            return cls()

        def forward(self, x: torch.Tensor) -> types.SimpleNamespace:
            n = (x.shape[1] - 400) // stride + 1
            frames = x[0, torch.arange(n)[:, None] * stride + torch.arange(400)]   # receptive fields
            loud = frames.abs().mean(1) * 50
            logits = torch.stack([torch.zeros(n), loud, torch.zeros(n)], 1)
            return types.SimpleNamespace(logits=logits[None])

    class FakeProcessor:
        sampling_rate = SR

        @classmethod
        def from_pretrained(cls, path: str, local_files_only: bool) -> FakeProcessor:
            return cls()

        def __call__(self, wave: np.ndarray, sampling_rate: int, return_tensors: str) -> types.SimpleNamespace:
            return types.SimpleNamespace(input_values=torch.as_tensor(wave, dtype=torch.float32)[None])

    fake = types.SimpleNamespace(Wav2Vec2ForCTC=FakeModel, Wav2Vec2FeatureExtractor=FakeProcessor)
    monkeypatch.setitem(sys.modules, "transformers", fake)
    (tmp_path / "config.json").write_text("{}")
    ex = make_extractor("wav2vec2", AudioFeatureConfig(normalize_gain=False), phoneme_model=tmp_path)
    assert ex.dim == 3 and ex.stride == 320 and ex.receptive_field == 400
    wave = np.zeros(2 * SR, np.float32)
    frame = 20
    c = int(frame / 25 * SR)
    wave[c - 200: c + 200] = 0.9
    feats = ex.extract(wave, SR, 25)
    assert feats.shape == (50, ex.window, 3)
    np.testing.assert_allclose(feats.sum(-1), 1.0, atol=1e-5)     # posteriors
    W = ex.window
    assert int(np.argmax(feats[:, W // 2 - 1: W // 2 + 1, 1].mean(1))) == frame


# -- speaker and channel robustness -------------------------------------------------------------------

def test_warp_one_is_the_plain_filterbank_and_a_warp_moves_each_band_down() -> None:
    from core.audio.features import warp_filterbank

    rng = np.random.default_rng(0)
    basis = np.abs(rng.normal(size=(3, 257)))
    basis[:, 200:] = 0.0
    assert np.allclose(warp_filterbank(basis, 1.0), basis)
    tri = np.zeros((1, 257))
    tri[0, 90:111] = 10 - np.abs(np.arange(90, 111) - 100)  # a triangle peaking at bin 100
    warped = warp_filterbank(tri, 1.25)
    assert int(np.argmax(warped[0])) == 80  # read at 1.25 x the frequency: centred at 100 / 1.25
    assert warped.sum() == pytest.approx(tri.sum())  # same area: a band's energy does not depend on the warp
    with pytest.raises(ValueError, match="warp"):
        AudioFeatureConfig(warp=3.0)


def test_a_warped_analysis_hears_a_voice_with_a_shorter_tract() -> None:
    from core.synthetic.phonemes import random_sentence
    from core.synthetic.speech import VoiceConfig, synthesize

    sentence = random_sentence(np.random.default_rng(0), 8)
    low, _ = synthesize(sentence, None, rng=1)
    high, _ = synthesize(sentence, None, rng=1, voice=VoiceConfig(formant_scale=1.2))

    def spectrum(wave: np.ndarray, warp: float) -> np.ndarray:  # long-term average log-mel (dB)
        return make_extractor("mel", AudioFeatureConfig(warp=warp)).extract(wave, SR, 25.0)[:, 8].mean(0)

    plain = np.abs(spectrum(low, 1.0) - spectrum(high, 1.0)).mean()
    warped = np.abs(spectrum(low, 1.2) - spectrum(high, 1.0)).mean()
    assert warped < 0.6 * plain  # the low voice analysed at warp 1.2 sounds like the high one


def test_utterance_norm_removes_the_recording_level_and_channel() -> None:
    from scipy import signal

    wave = _speechlike(3.0)
    wave[: SR // 2] = 0.0  # a pause at the start: left out of the statistics
    # Another microphone and level: a first-order high-pass tilt and -20 dB.
    other = (0.1 * signal.lfilter([1.0, -0.7], [1.0], wave)).astype(np.float32)
    plain = make_extractor("mfcc", AudioFeatureConfig(normalize_gain=False))
    normed = make_extractor("mfcc", AudioFeatureConfig(normalize_gain=False, utterance_norm=True))
    a, b = normed.extract(wave, SR, 25.0), normed.extract(other, SR, 25.0)
    speech = slice(20, 70)  # frames well inside the speech
    assert np.isfinite(a).all() and np.isfinite(b).all()
    assert np.abs(a[speech].reshape(-1, a.shape[-1]).mean(0)).max() < 0.5  # standardised over the speech
    def gap(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # per coefficient, in units of its spread
        x, y = x[speech].reshape(-1, x.shape[-1]), y[speech].reshape(-1, y.shape[-1])
        return np.abs(x - y).mean(0) / x.std(0)

    plain_gap = gap(plain.extract(wave, SR, 25.0), plain.extract(other, SR, 25.0))
    normed_gap = gap(a, b)
    assert plain_gap.max() > 5.0 and normed_gap.max() < 0.5  # the tilt no longer shifts c1
    assert normed_gap.mean() < 0.5 * plain_gap.mean()
    silence = normed.extract(np.zeros(SR // 10, np.float32), SR, 25.0)
    assert np.isfinite(silence).all()  # nothing to normalise: finite, no division by zero


def test_utterance_norm_does_not_stretch_a_dimension_that_barely_moves() -> None:
    ex = make_extractor("mfcc", AudioFeatureConfig(utterance_norm=True))
    rng = np.random.default_rng(0)
    feats = np.zeros((200, ex.config.n_mfcc), np.float32)
    feats[:, 0] = 40.0 + 8.0 * rng.standard_normal(200)      # loudness that moves like speech
    feats[:, 1] = -5.0 + 0.01 * rng.standard_normal(200)     # a hum: a hundredth of a dB
    feats[:, 2] = 12.0 * rng.standard_normal(200)            # a coefficient that moves like speech's
    out = ex.normalize_utterance(feats)
    assert np.abs(out[:, 1]).max() < 0.1  # kept near zero, not blown up to unit spread
    assert out[:, 2].std() == pytest.approx(1.0, rel=0.05) and out[:, 0].std() == pytest.approx(1.0, rel=0.05)
