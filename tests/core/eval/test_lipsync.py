"""The model-free lip-sync proxy: envelope timing, mouth opening, cross-correlation offsets and signs."""

from __future__ import annotations

import numpy as np
import pytest

from core.eval.lipsync import (
    EnvelopeConfig,
    audio_envelope,
    lagged_correlation,
    lipsync_proxy,
    mouth_opening_from_landmarks,
    offset_seconds,
)

FPS = 25.0
SR = 16000


def smooth_signal(n: int, seed: int) -> np.ndarray:
    """A speech-like random signal: noise low-passed to a few Hz."""
    rng = np.random.default_rng(seed)
    kernel = np.hanning(7)
    return np.convolve(rng.normal(size=n + 6), kernel / kernel.sum(), mode="valid")


@pytest.mark.parametrize("k", [-6, -2, 0, 3, 7])
def test_shifted_opening_gives_offset_k_and_peak_near_one(k: int) -> None:
    base = smooth_signal(240, seed=1)
    envelope = base[20:220]
    opening = base[20 - k:220 - k]  # opening[t] = envelope[t - k]: the video lags the audio by k frames
    result = lipsync_proxy(opening, envelope, max_offset=10)
    assert result["offset_frames"] == k
    assert result["peak_corr"] > 0.95
    assert result["offsets"][int(np.argmax(result["curve"]))] == k
    assert len(result["curve"]) == 21 and result["note"] is None
    if k != 0:
        assert result["corr_at_zero"] < result["peak_corr"] - 0.05


@pytest.mark.parametrize("delay", [-1.5, 2.5, 4.25])
def test_refined_offset_resolves_fractions_of_a_frame(delay: float) -> None:
    t = np.arange(300, dtype=float)
    fine = np.linspace(0, 300, 3001)
    slow = np.interp(fine, t, smooth_signal(300, seed=8))
    envelope = np.interp(t, fine, slow)
    opening = np.interp(t - delay, fine, slow)  # opening[t] = envelope(t - delay): lags by `delay`
    result = lipsync_proxy(opening[20:-20], envelope[20:-20], max_offset=8)
    assert result["offset_frames"] in (int(np.floor(delay)), int(np.ceil(delay)))
    assert result["offset_refined"] == pytest.approx(delay, abs=0.2)


def test_a_peak_at_the_edge_of_the_range_is_flagged() -> None:
    base = smooth_signal(260, seed=9)
    result = lipsync_proxy(base[5:205], base[20:220], max_offset=6)  # true offset -15: outside +-6
    assert abs(result["offset_frames"]) == 6 and "edge" in result["note"]


def test_linear_trend_and_scale_do_not_matter() -> None:
    base = smooth_signal(200, seed=2)
    t = np.arange(200)
    plain = lipsync_proxy(base, base, max_offset=5)
    drifted = lipsync_proxy(3.0 * base + 0.05 * t + 7.0, base - 0.02 * t, max_offset=5)
    np.testing.assert_allclose(drifted["curve"], plain["curve"], atol=1e-9)


def test_independent_noise_gives_a_low_peak() -> None:
    rng = np.random.default_rng(0)
    peaks = [lipsync_proxy(rng.normal(size=500), rng.normal(size=500), max_offset=10)["peak_corr"]
             for _ in range(5)]
    assert max(peaks) < 0.2  # 21 offsets of ~N(0, 1/sqrt(500)) correlations: max ~ 0.1


def test_anticorrelated_signals_do_not_peak_high() -> None:
    base = smooth_signal(200, seed=3)
    result = lipsync_proxy(-base, base, max_offset=3)
    assert result["corr_at_zero"] < -0.99
    assert result["peak_corr"] < 0.6


@pytest.mark.parametrize("which", ["opening", "envelope", "both"])
def test_constant_inputs_give_zero_not_nan(which: str) -> None:
    varying = smooth_signal(100, seed=4)
    opening = np.full(100, 0.3) if which in ("opening", "both") else varying
    envelope = np.zeros(100) if which in ("envelope", "both") else varying
    result = lipsync_proxy(opening, envelope, max_offset=10)
    assert result["peak_corr"] == 0.0 and result["corr_at_zero"] == 0.0 and result["offset_frames"] == 0
    assert all(c == 0.0 for c in result["curve"])
    assert "constant" in result["note"]


def test_nan_frames_are_interpolated_and_reported() -> None:
    base = smooth_signal(150, seed=5)
    opening = base.copy()
    opening[[10, 11, 50]] = np.nan
    result = lipsync_proxy(opening, base, max_offset=4)
    assert result["offset_frames"] == 0 and result["peak_corr"] > 0.98
    assert "3 frame(s)" in result["note"]
    all_nan = lipsync_proxy(np.full(150, np.nan), base, max_offset=4)
    assert all_nan["peak_corr"] == 0.0 and np.isfinite(all_nan["curve"]).all()


def test_short_clip_reduces_the_offset_range() -> None:
    base = smooth_signal(20, seed=6)
    result = lipsync_proxy(base, base, max_offset=10, min_overlap=8)
    assert result["offsets"] == list(range(-10, 11)) and result["note"] is None  # 20 - 8 >= 10
    tiny = lipsync_proxy(base[:12], base[:12], max_offset=10, min_overlap=8)
    assert tiny["offsets"] == [-4, -3, -2, -1, 0, 1, 2, 3, 4] and "reduced" in tiny["note"]


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="frames"):
        lipsync_proxy(np.zeros(10), np.zeros(11))


def test_lagged_correlation_matches_numpy_corrcoef() -> None:
    rng = np.random.default_rng(7)
    v, a = rng.normal(size=60), rng.normal(size=60)
    curve = lagged_correlation(v, a, max_offset=3)
    for d in range(-3, 4):
        t = np.arange(60)
        ok = (t - d >= 0) & (t - d < 60)
        expected = np.corrcoef(v[t[ok]], a[t[ok] - d])[0, 1]
        assert curve[d + 3] == pytest.approx(expected, abs=1e-12)


def bursts_wave(frames_on: list[int], n_frames: int, freq: float = 440.0) -> np.ndarray:
    """Tone bursts one frame long centred on the instants i / fps of ``frames_on``."""
    t = np.arange(int(n_frames / FPS * SR)) / SR
    wave = np.zeros_like(t)
    for f in frames_on:
        centre = f / FPS
        inside = np.abs(t - centre) < 0.5 / FPS
        wave[inside] = 0.5 * np.sin(2 * np.pi * freq * t[inside])
    return wave


def test_envelope_is_centred_on_each_frame_instant() -> None:
    n = 50
    on = [5, 20, 21, 40]
    env = audio_envelope(bursts_wave(on, n), SR, FPS, n)
    assert env.shape == (n,)
    assert env.max() == pytest.approx(1.0)
    loud = np.flatnonzero(env > 0.8)
    assert set(on) <= set(loud.tolist())
    assert all(min(abs(i - f) for f in on) <= 1 for i in loud)  # no loudness far from a burst
    assert env[30] == 0.0  # silence, clipped to the floor


def test_envelope_rejects_out_of_band_sound() -> None:
    n = 40
    hum = bursts_wave(list(range(24, 37)), n, 30.0)  # a 30 Hz hum as loud as the speech-band burst
    wave = bursts_wave([10], n, 440.0) + hum
    speech_band = audio_envelope(wave, SR, FPS, n)
    assert speech_band[10] == pytest.approx(1.0)
    assert speech_band[27:34].max() < 0.45  # the hum is >= 27 dB down after the 100 Hz high-pass
    wide_band = audio_envelope(wave, SR, FPS, n, EnvelopeConfig(band_hz=(10.0, 4000.0)))
    assert wide_band[27:34].min() > 0.9  # ...and is not, when the band includes 30 Hz


def test_envelope_of_silence_and_bad_input() -> None:
    assert np.all(audio_envelope(np.zeros(16000), SR, FPS, 25) == 0)
    assert audio_envelope(np.zeros(0), SR, FPS, 3).tolist() == [0, 0, 0]
    assert audio_envelope(np.ones(100), SR, FPS, 0).shape == (0,)
    with pytest.raises(ValueError, match="mono"):
        audio_envelope(np.zeros((100, 2)), SR, FPS, 4)
    with pytest.raises(ValueError):
        audio_envelope(np.zeros(100), SR, 0.0, 4)
    with pytest.raises(ValueError, match="band"):
        audio_envelope(np.random.default_rng(0).normal(size=4000), 200, FPS, 4, EnvelopeConfig(band_hz=(100, 4000)))


def synthetic_lmk(opening_px: np.ndarray, mouth_width: float = 60.0, iod: float = 100.0) -> np.ndarray:
    """68 points with given inner-lip gaps (pixels), fixed mouth width and eye distance."""
    n = len(opening_px)
    lmk = np.zeros((n, 68, 2))
    lmk[:, 36] = [100, 100]
    lmk[:, 45] = [100 + iod, 100]
    lmk[:, 48] = [120, 200]
    lmk[:, 54] = [120 + mouth_width, 200]
    for top, bottom, x in ((62, 66, 150), (61, 67, 140), (63, 65, 160)):
        lmk[:, top] = [x, 200]
        lmk[:, bottom, 0] = x
        lmk[:, bottom, 1] = 200 + opening_px
    return lmk


def test_mouth_opening_normalisations() -> None:
    gaps = np.array([0.0, 6.0, 12.0])
    lmk = synthetic_lmk(gaps)
    np.testing.assert_allclose(mouth_opening_from_landmarks(lmk, "none"), gaps)
    np.testing.assert_allclose(mouth_opening_from_landmarks(lmk), gaps / 60.0)
    np.testing.assert_allclose(mouth_opening_from_landmarks(lmk, "inter_ocular"), gaps / 100.0)
    # scale-free: the same face twice as large gives the same opening
    np.testing.assert_allclose(mouth_opening_from_landmarks(2 * lmk), gaps / 60.0)
    lmk[1] = np.nan
    assert np.isnan(mouth_opening_from_landmarks(lmk)[1])
    with pytest.raises(ValueError):
        mouth_opening_from_landmarks(np.zeros((3, 20, 2)))
    with pytest.raises(ValueError):
        mouth_opening_from_landmarks(lmk, "bogus")


def test_offset_seconds_sign() -> None:
    assert offset_seconds(5, 25.0) == pytest.approx(0.2)
    assert offset_seconds(-3, 30.0) == pytest.approx(-0.1)


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_actor_jaw_is_in_sync_with_its_speech(seed: int) -> None:
    """End to end on the synthetic actor: the viseme jaw track vs. the synthesized speech peaks at
    offset 0 with a clear correlation, and delaying the mouth by k frames moves the peak to +k."""
    from core.synthetic import random_sentence, synthesize, viseme_track

    rng = np.random.default_rng(seed)
    wave, timing = synthesize(random_sentence(rng, n_words=12), None, sr=SR, rng=rng)
    n = int(np.ceil(timing.duration * FPS))
    _, jaw = viseme_track(timing, FPS, n)
    envelope = audio_envelope(wave, SR, FPS, n)
    result = lipsync_proxy(jaw, envelope, max_offset=10)
    assert result["offset_frames"] == 0
    assert result["peak_corr"] > 0.45
    for k in (-4, 3):
        delayed = np.roll(jaw, k)[10:-10]  # delayed[t] = jaw[t - k]
        shifted = lipsync_proxy(delayed, envelope[10:-10], max_offset=10)
        assert shifted["offset_frames"] == k
