"""Streaming PSNR/SSIM between videos, and the lip-sync report of a video with its audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.eval.video_metrics import compare_videos, sync_report

FPS = 25


def write(path: Path, frames: np.ndarray, audio: Path | None = None) -> Path:
    from core.io.video import write_video

    return write_video(path, frames, fps=FPS, crf=0, audio=audio)  # lossless: exact grey levels


def grey(n: int, value: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    return np.full((n, *size, 3), value, np.uint8)


def test_identical_videos(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(11, 48, 64, 3), dtype=np.uint8)
    video = write(tmp_path / "a.mp4", frames)
    result = compare_videos(video, video, batch_size=4)  # 11 frames: batches of 4, 4, 3
    assert result["frames"] == 11 and len(result["psnr_per_frame"]) == 11
    assert result["psnr"] == pytest.approx(100.0) and result["ssim"] == pytest.approx(1.0)
    assert result["length_mismatch"] is False and result["masked"] is False


def test_known_grey_offset_gives_the_expected_psnr(tmp_path: Path) -> None:
    a = write(tmp_path / "a.mp4", grey(6, 100))
    b = write(tmp_path / "b.mp4", grey(6, 110))
    result = compare_videos(a, b)
    from core.io.video import iter_frames

    # expected from the decoded frames (yuv420p's limited range turns 10 RGB levels into about 9)
    pa, pb = (next(iter(iter_frames(v))).astype(float) for v in (a, b))
    expected = 10 * np.log10(255.0**2 / np.mean((pa - pb) ** 2))
    assert result["psnr"] == pytest.approx(expected, abs=1e-3)
    assert 27.5 < result["psnr"] < 30.0  # ~28.1 dB for exactly 10 levels
    assert result["ssim"] < 1.0
    assert compare_videos(a, b, max_frames=2)["frames"] == 2


def test_region_mask_scores_only_the_masked_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(60, 200, size=(5, 48, 64, 3), dtype=np.uint8)
    pred = ref.copy()
    pred[:, :, :32] = 255 - pred[:, :, :32]  # the left half is wrong, the right half exact
    a, b = write(tmp_path / "p.mp4", pred), write(tmp_path / "r.mp4", ref)
    right = np.zeros((48, 64), np.float32)
    right[:, 40:] = 1.0  # away from the seam by more than SSIM's 5-pixel half window
    left = np.zeros((48, 64), np.float32)
    left[:, :24] = 1.0
    good, bad = compare_videos(a, b, region_mask=right), compare_videos(a, b, region_mask=left)
    assert good["masked"] and good["psnr"] > 60 and good["ssim"] > 0.99
    assert bad["psnr"] < 15 and bad["ssim"] < 0.5
    whole = compare_videos(a, b)
    assert bad["psnr"] < whole["psnr"] < good["psnr"]
    per_frame = np.repeat(right[None], 5, axis=0)
    assert compare_videos(a, b, region_mask=per_frame)["psnr"] == pytest.approx(good["psnr"])
    calls: list[tuple[int, int]] = []

    def mask_fn(start: int, count: int) -> np.ndarray:
        calls.append((start, count))
        return np.repeat(right[None], count, axis=0)

    assert compare_videos(a, b, region_mask=mask_fn, batch_size=2)["psnr"] == pytest.approx(good["psnr"])
    assert calls == [(0, 2), (2, 2), (4, 1)]
    with pytest.raises(ValueError, match="region mask"):
        compare_videos(a, b, region_mask=np.ones((10, 10)))


def test_length_and_size_mismatch(tmp_path: Path) -> None:
    short, long = write(tmp_path / "s.mp4", grey(4, 90)), write(tmp_path / "l.mp4", grey(5, 90))
    for pair in ((short, long), (long, short)):
        result = compare_videos(*pair)
        assert result["frames"] == 4 and result["length_mismatch"] is True and "shorter" in result["note"]
    assert compare_videos(short, long, max_frames=4)["length_mismatch"] is False
    other = write(tmp_path / "o.mp4", grey(4, 90, size=(64, 64)))
    with pytest.raises(ValueError, match="sizes differ"):
        compare_videos(short, other)


def speech_and_jaw(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from core.synthetic import random_sentence, synthesize, viseme_track

    rng = np.random.default_rng(seed)
    wave, timing = synthesize(random_sentence(rng, n_words=10), None, sr=16000, rng=rng)
    n = int(np.ceil(timing.duration * FPS))
    _, jaw = viseme_track(timing, FPS, n)
    return wave, jaw


def mouth_landmarks(jaw: np.ndarray) -> np.ndarray:
    """68 points whose inner lips open in proportion to ``jaw`` (radians -> pixels)."""
    n = len(jaw)
    lmk = np.zeros((n, 68, 2), np.float32)
    lmk[:, 36], lmk[:, 45] = [20, 20], [44, 20]
    lmk[:, 48], lmk[:, 54] = [22, 40], [42, 40]
    for top, bottom, x in ((62, 66, 32), (61, 67, 29), (63, 65, 35)):
        lmk[:, top] = [x, 40]
        lmk[:, bottom, 0] = x
        lmk[:, bottom, 1] = 40 + 30 * jaw
    return lmk


def test_sync_report_of_the_synthetic_actor(tmp_path: Path) -> None:
    """Mouth landmarks driven by the viseme jaw track against the synthesized speech: in sync at 0;
    delaying the mouth by 3 frames reports +3 frames = +0.12 s (the video lags the audio)."""
    from core.io.audio import write_wav

    wave, jaw = speech_and_jaw()
    wav = write_wav(tmp_path / "speech.wav", wave, 16000)
    n = len(jaw)
    video = write(tmp_path / "v.mp4", grey(n, 128, size=(32, 32)), audio=wav)
    result = sync_report(video, wav, lmk68=mouth_landmarks(jaw))
    assert result["offset_frames"] == 0 and result["peak_corr"] > 0.45
    assert result["fps"] == FPS and result["frames"] == n and result["detected_fraction"] == 1.0
    delayed = sync_report(video, wav, lmk68=mouth_landmarks(np.concatenate([np.zeros(3), jaw[:-3]])))
    # the synthetic mouth anticipates its sound by about half a frame (coarticulation), so the integer
    # peak may land on either side; the sub-frame peak moves by the 3 frames of delay
    assert delayed["offset_frames"] in (2, 3)
    assert delayed["offset_refined"] - result["offset_refined"] == pytest.approx(3.0, abs=0.3)
    assert delayed["offset_s"] == pytest.approx(delayed["offset_frames"] / FPS)
    own_track = sync_report(video, lmk68=mouth_landmarks(jaw))  # the audio muxed into the video (AAC)
    assert own_track["offset_frames"] == 0
    assert own_track["peak_corr"] == pytest.approx(result["peak_corr"], abs=0.05)


def test_sync_report_with_missing_faces_and_without_audio(tmp_path: Path) -> None:
    from core.landmarks.detector import GroundTruthDetector

    wave, jaw = speech_and_jaw(seed=1)
    lmk = mouth_landmarks(jaw)
    lmk[5:8] = np.nan  # no face in three frames
    video = write(tmp_path / "v.mp4", grey(len(jaw), 128, size=(32, 32)))
    from core.io.audio import write_wav

    wav = write_wav(tmp_path / "speech.wav", wave, 16000)
    result = sync_report(video, wav, GroundTruthDetector(lmk))  # landmarks detected from the video
    assert result["detected_fraction"] == pytest.approx(1 - 3 / len(jaw))
    assert "interpolated" in result["note"] and result["offset_frames"] == 0
    with pytest.raises(ValueError, match="sound track"):
        sync_report(video, None, lmk68=lmk)
