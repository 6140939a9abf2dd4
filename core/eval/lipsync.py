"""A lip-sync proxy that needs no pretrained network: mouth opening vs. audio loudness.

Speech is loud when the mouth is open (vowels) and quiet when it is closed (bilabial stops, pauses),
so the per-frame mouth opening of a well-synced video rises and falls with the audio's loudness
envelope. :func:`lipsync_proxy` measures how well they line up:

* ``peak_corr`` — the largest normalised cross-correlation (Pearson's r) over the offsets tried;
  near 0 when the mouth moves independently of the audio;
* ``offset_frames`` — the offset where that peak is. **Sign: a positive offset means the video lags
  the audio** (the mouth opens ``offset`` frames after the sound), negative means it leads; this is
  the sign of SyncNet's ``offset`` in syncnet_python / the LSE evaluation, so the two can be compared;
* ``offset_refined`` — the peak's sub-frame position (parabola through the peak and its neighbours);
* ``corr_at_zero`` — r at offset 0 (the score of the alignment as it is).

Both signals are linearly detrended and standardised first, so slow drifts (head moving towards the
camera, a crescendo) do not count as sync, and each offset's r is computed on the overlapping frames
only (re-standardised there), so the curve is a true correlation in [-1, 1] at every offset.

What to expect (measured; ``tests/core/eval/test_lipsync.py``): on the synthetic actor (jaw opening of
the viseme track vs. its synthesized speech, 7 s sentences) the peak is r = 0.55-0.71 at offset 0, and
a mouth track shifted by k frames peaks at offset k. Real speech is much weaker: people open the mouth
to breathe in pauses and close it for /p b m/ onsets while the sound is loud, so on the two 8 s real
clips of the shared data the curve has no clear peak (r <= 0.26 anywhere in +-10 frames, about -0.03 and
-0.19 at offset 0). Read the proxy as meaningful on renders whose mouth is driven by the audio (a dub:
it catches frame offsets and a mouth that ignores the audio), not as a perceptual score of real
footage (longer real clips may do better; not measured here); it cannot tell /m/ from /a/ at the same
loudness. Use LSE-C/D
(:mod:`core.eval.pretrained`) when SyncNet weights are at hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# iBUG-68 (0-based) inner-lip pairs (top, bottom) and mouth corners / eye corners used for the opening
INNER_LIP_PAIRS: tuple[tuple[int, int], ...] = ((62, 66), (61, 67), (63, 65))
MOUTH_CORNERS: tuple[int, int] = (48, 54)
EYE_OUTER_CORNERS: tuple[int, int] = (36, 45)


@dataclass
class EnvelopeConfig:
    """How :func:`audio_envelope` turns audio into one loudness value per video frame.

    Attributes:
        band_hz: speech band kept before measuring loudness (zero-phase Butterworth band-pass, so the
            filter adds no delay that would bias the offset); the upper edge is capped at 0.45 x the
            sample rate.
        filter_order: order of the Butterworth band-pass.
        window_frames: length of the RMS window centred on each frame's instant ``i / fps``, in video
            frames (1 = 40 ms at 25 fps; longer windows smooth more but blur fast syllables).
        floor_db: loudness range kept below the loudest frame; quieter frames are clipped to it, so
            near-silence (room noise, digital zero) does not swing the correlation.
    """

    band_hz: tuple[float, float] = (100.0, 4000.0)
    filter_order: int = 4
    window_frames: float = 1.0
    floor_db: float = 50.0


def _bandpass(wave: np.ndarray, sr: int, band_hz: tuple[float, float], order: int) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    low, high = float(band_hz[0]), min(float(band_hz[1]), 0.45 * sr)
    if not 0 < low < high:
        raise ValueError(f"band {band_hz} Hz is empty at a sample rate of {sr} Hz")
    sos = butter(order, [low, high], btype="bandpass", fs=sr, output="sos")
    if wave.size <= 3 * (2 * len(sos) + 1):  # too short for filtfilt's edge padding: leave it
        return wave
    return sosfiltfilt(sos, wave)


def audio_envelope(wave: np.ndarray, sr: int, fps: float, n_frames: int,
                   config: EnvelopeConfig | None = None) -> np.ndarray:
    """Per-video-frame loudness of speech, in [0, 1].

    Frame ``i`` shows the instant ``t_i = i / fps`` (as in :mod:`core.audio.features`); its value is the
    RMS of the band-passed audio over ``[t_i - w/2, t_i + w/2)`` (``w = window_frames / fps``; audio
    outside the file counts as silence), in dB relative to the loudest frame, clipped at
    ``-floor_db`` and mapped linearly to [0, 1] (1 = loudest frame, 0 = ``floor_db`` quieter or silent).

    Args:
        wave: (S,) mono samples (float in [-1, 1]; any scale works since the result is relative).
        sr: sample rate, Hz.
        fps: video frame rate.
        n_frames: number of video frames N.
        config: band, window and floor settings.

    Returns:
        (N,) float64 envelope; all zeros for silent audio.
    """
    config = config or EnvelopeConfig()
    wave = np.asarray(wave, np.float64)
    if wave.ndim != 1:
        raise ValueError(f"audio must be mono (S,), got shape {wave.shape}; average the channels first")
    if sr <= 0 or fps <= 0:
        raise ValueError(f"sample rate and fps must be positive, got sr={sr}, fps={fps}")
    if n_frames <= 0:
        return np.zeros(0)
    if wave.size == 0:
        return np.zeros(n_frames)
    filtered = _bandpass(wave, int(sr), config.band_hz, config.filter_order)
    # windowed energy from a cumulative sum: O(S + N), no per-frame loop
    csum = np.concatenate([[0.0], np.cumsum(filtered**2)])
    half = 0.5 * config.window_frames * sr / fps
    centres = np.arange(n_frames) * (sr / fps)
    start = np.clip(np.round(centres - half).astype(np.int64), 0, wave.size)
    stop = np.clip(np.round(centres + half).astype(np.int64), 0, wave.size)
    length = max(1.0, 2.0 * half)  # divide by the full window: samples beyond the file are silence
    rms = np.sqrt(np.maximum(csum[stop] - csum[start], 0.0) / length)
    top = rms.max()
    if top <= 0:
        return np.zeros(n_frames)
    db = 20.0 * np.log10(np.maximum(rms / top, 1e-12))
    return np.clip(1.0 + db / config.floor_db, 0.0, 1.0)


def pair_gaps(landmarks: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(N,) mean distance between the two points of each of ``pairs`` (iBUG indices) in (N, 68, D) landmarks:
    the inner lips' opening (:data:`INNER_LIP_PAIRS`), the lids' (``core.tracking.geometry.EYELID_PAIRS``)."""
    first = [a for a, _ in pairs]
    second = [b for _, b in pairs]
    return np.linalg.norm(landmarks[:, first] - landmarks[:, second], axis=-1).mean(1)


def mouth_opening_from_landmarks(lmk68: np.ndarray, normalize: str = "mouth_width") -> np.ndarray:
    """Per-frame inner-lip opening, scale-free.

    The opening is the mean distance of the three inner-lip pairs 62-66 (centre), 61-67 and 63-65
    (iBUG-68, 0-based), divided by the mouth width (corners 48-54, ``normalize="mouth_width"``) or the
    outer eye-corner distance 36-45 (``"inter_ocular"``: unaffected by smiling / pursing, which change
    the mouth width) or left in pixels (``"none"``).

    Args:
        lmk68: (N, 68, 2) landmarks (pixels; rows with NaN give NaN).
        normalize: ``"mouth_width"``, ``"inter_ocular"`` or ``"none"``.

    Returns:
        (N,) float64 opening.
    """
    lmk = np.asarray(lmk68, np.float64)
    if lmk.ndim != 3 or lmk.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (N, 68, 2), got {lmk.shape}")
    opening = pair_gaps(lmk, INNER_LIP_PAIRS)
    if normalize == "none":
        return opening
    if normalize == "mouth_width":
        a, b = MOUTH_CORNERS
    elif normalize == "inter_ocular":
        a, b = EYE_OUTER_CORNERS
    else:
        raise ValueError(f"normalize must be 'mouth_width', 'inter_ocular' or 'none', got {normalize!r}")
    scale = np.linalg.norm(lmk[:, a] - lmk[:, b], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 1e-6, opening / np.where(scale > 1e-6, scale, 1.0), np.nan)


def _prepare(signal: np.ndarray) -> np.ndarray:
    """Linearly detrended, standardised copy (zeros when the signal is constant)."""
    from scipy.signal import detrend

    x = detrend(np.asarray(signal, np.float64), type="linear")
    std = x.std()
    return x / std if std > 1e-12 * max(1.0, float(np.abs(signal).max())) else np.zeros_like(x)


def lagged_correlation(video: np.ndarray, audio: np.ndarray, max_offset: int) -> np.ndarray:
    """Pearson's r of ``video[t]`` with ``audio[t - d]`` for ``d = -max_offset..max_offset``.

    Each r uses only the ``N - |d|`` overlapping frames (means/stds taken over them), so every entry is
    a correlation in [-1, 1]; an overlap without variance gives 0. Vectorised over offsets.

    Returns:
        (2 * max_offset + 1,) float64, entry ``d + max_offset`` for offset ``d``.
    """
    v = np.asarray(video, np.float64)
    a = np.asarray(audio, np.float64)
    n = v.size
    offsets = np.arange(-max_offset, max_offset + 1)
    t = np.arange(n)
    # (D, N) index grids; frames without a partner at this offset are masked out
    src = t[None, :] - offsets[:, None]
    mask = (src >= 0) & (src < n)
    vv = np.where(mask, v[None, :], 0.0)
    aa = np.where(mask, a[np.clip(src, 0, n - 1)], 0.0)
    count = np.maximum(mask.sum(axis=1), 1)
    vm = vv.sum(1) / count
    am = aa.sum(1) / count
    vc = np.where(mask, vv - vm[:, None], 0.0)
    ac = np.where(mask, aa - am[:, None], 0.0)
    denom = np.sqrt((vc**2).sum(1) * (ac**2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 1e-12, (vc * ac).sum(1) / np.where(denom > 1e-12, denom, 1.0), 0.0)
    return np.clip(r, -1.0, 1.0)


def lipsync_proxy(opening: np.ndarray, envelope: np.ndarray, max_offset: int = 10,
                  min_overlap: int = 8) -> dict[str, Any]:
    """Cross-correlate mouth opening with the audio envelope over offsets ``-max_offset..max_offset``.

    Args:
        opening: (N,) mouth opening per video frame (:func:`mouth_opening_from_landmarks`). NaN frames
            (no face) are filled by linear interpolation from their neighbours.
        envelope: (N,) audio loudness per video frame (:func:`audio_envelope`).
        max_offset: largest offset tried, in frames (reduced so every offset keeps ``min_overlap``
            frames; the result says so).
        min_overlap: fewest overlapping frames an offset may have.

    Returns:
        ``{"peak_corr", "offset_frames", "offset_refined", "corr_at_zero", "curve", "offsets", "frames",
        "note"}``: ``curve[k]`` is r at ``offsets[k]``; positive ``offset_frames`` = the video lags the
        audio; ``offset_refined`` is the peak's sub-frame position (parabola through the peak and its
        neighbours), useful because a true offset between two frames shows as either neighbour.
        ``note`` is ``None`` or says why the numbers mean little (constant input, short clip...).
        Constant or all-NaN inputs give correlations of 0 (never NaN).
    """
    o = np.asarray(opening, np.float64).reshape(-1)
    e = np.asarray(envelope, np.float64).reshape(-1)
    if o.size != e.size:
        raise ValueError(f"opening has {o.size} frames but the envelope has {e.size}; compute the envelope "
                         "with n_frames = the video's frame count")
    if max_offset < 0:
        raise ValueError(f"max_offset must be >= 0, got {max_offset}")
    notes: list[str] = []
    n = o.size
    finite = np.isfinite(o)
    if n and not finite.all():
        if finite.any():
            o = np.interp(np.arange(n), np.flatnonzero(finite), o[finite])
            notes.append(f"{int((~finite).sum())} frame(s) without a mouth opening were interpolated")
        else:
            o = np.zeros(n)
            notes.append("no frame has a mouth opening")
    e = np.where(np.isfinite(e), e, 0.0)
    usable = max(0, (n - min_overlap))
    if max_offset > usable:
        notes.append(f"max_offset reduced from {max_offset} to {usable}: the clip has only {n} frames")
        max_offset = usable
    offsets = list(range(-max_offset, max_offset + 1))
    if n < 2:
        curve = np.zeros(len(offsets))
        notes.append("too few frames to correlate")
    else:
        vo, va = _prepare(o), _prepare(e)
        if not vo.any() or not va.any():
            which = [name for name, x in (("mouth opening", vo), ("audio envelope", va)) if not x.any()]
            notes.append(f"{' and '.join(which)} is constant: no correlation can be measured (reported as 0)")
            curve = np.zeros(len(offsets))
        else:
            curve = lagged_correlation(vo, va, max_offset)
    best = int(np.argmax(curve)) if len(curve) else 0
    peak = float(curve[best]) if len(curve) else 0.0
    refined = float(offsets[best]) + _parabolic_peak(curve, best) if peak != 0.0 else 0.0
    if peak > 0.0 and max_offset > 0 and abs(offsets[best]) == max_offset:
        notes.append(f"the peak is at the edge of the +-{max_offset} frame range: the best offset may lie "
                     "outside it, or there is no clear peak")
    return {
        "peak_corr": peak,
        "offset_frames": int(offsets[best]) if peak != 0.0 else 0,
        "offset_refined": refined,
        "corr_at_zero": float(curve[max_offset]) if len(curve) else 0.0,
        "curve": [float(c) for c in curve],
        "offsets": offsets,
        "frames": int(n),
        "note": "; ".join(notes) or None,
    }


def _parabolic_peak(curve: np.ndarray, i: int) -> float:
    """Sub-frame position of the peak at ``i``: the vertex of the parabola through it and its two
    neighbours, in [-0.5, 0.5] (0 at the ends of the curve or on a flat top)."""
    if i <= 0 or i >= len(curve) - 1:
        return 0.0
    left, mid, right = curve[i - 1], curve[i], curve[i + 1]
    denom = left - 2.0 * mid + right
    if denom >= -1e-12:
        return 0.0
    return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def offset_seconds(offset_frames: int, fps: float) -> float:
    """An offset in frames as seconds (same sign convention: positive = video lags audio)."""
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return offset_frames / float(fps)
