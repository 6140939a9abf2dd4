"""Hooks for pretrained metrics: 'not available' results, the SyncNet layout and LSE pipeline with random
weights (no claims about scores), MFCCs, face crops, and the Fréchet distance against closed forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import core.eval.pretrained as pre
from core.eval.pretrained import (
    FID_ENV,
    SYNCNET_ENV,
    LSEConfig,
    RunningStats,
    SyncNetV2,
    face_boxes_from_landmarks,
    fid_frames,
    fid_videos,
    frechet_distance,
    load_syncnet,
    lse_from_embeddings,
    lse_scores,
    syncnet_face_crops,
    syncnet_mfcc,
)


@pytest.fixture
def no_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty weights folder and no environment overrides."""
    monkeypatch.delenv(SYNCNET_ENV, raising=False)
    monkeypatch.delenv(FID_ENV, raising=False)
    monkeypatch.setattr(pre, "WEIGHTS_DIR", tmp_path / "weights")
    return tmp_path


def write_talking_clip(folder: Path, n: int = 12, size: int = 96, with_audio: bool = True) -> Path:
    from core.io.audio import write_wav
    from core.io.video import write_video

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(n, size, size, 3), dtype=np.uint8)
    audio = None
    if with_audio:
        audio = write_wav(folder / "speech.wav", 0.3 * rng.normal(size=int(n / 25 * 16000) + 800), 16000)
    return write_video(folder / "clip.mp4", frames, fps=25, audio=audio)


def centred_landmarks(n: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (size / 2 + rng.uniform(-size / 4, size / 4, size=(1, 68, 2))).repeat(n, 0).astype(np.float32)


# -------------------------------------------------------------------------------------------------
# not available
# -------------------------------------------------------------------------------------------------

def test_missing_weights_give_a_not_available_result(no_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = write_talking_clip(no_weights, n=8)
    result = lse_scores(video, lmk68=centred_landmarks(8))
    assert result["available"] is False and result["metric"] == "lse"
    assert "syncnet_v2.model" in result["reason"] and SYNCNET_ENV in result["how_to_enable"]
    result = fid_videos(video, video)
    assert result["available"] is False and result["metric"] == "fid"
    assert FID_ENV in result["how_to_enable"]
    monkeypatch.setenv(SYNCNET_ENV, str(no_weights / "nowhere.model"))
    result = lse_scores(video, lmk68=centred_landmarks(8))
    assert result["available"] is False and "nowhere.model" in result["reason"]
    assert lse_scores(video, weights=no_weights / "x.model")["available"] is False


def test_a_file_that_is_not_a_state_dict_is_reported(no_weights: Path) -> None:
    bad = no_weights / "syncnet_v2.model"
    bad.write_bytes(b"not a torch file")
    video = write_talking_clip(no_weights, n=8)
    result = lse_scores(video, lmk68=centred_landmarks(8), weights=bad)
    assert result["available"] is False and "state dict" in result["reason"]
    wrong = no_weights / "wrong.pt"
    torch.save({"netcnnaud.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match="layout"):
        load_syncnet(wrong)


# -------------------------------------------------------------------------------------------------
# SyncNet
# -------------------------------------------------------------------------------------------------

def test_syncnet_layout_and_shapes() -> None:
    model = SyncNetV2().eval()
    state = model.state_dict()
    # the parameter names and shapes of the released syncnet_v2.model
    expected = {"netcnnaud.0.weight": (64, 1, 3, 3), "netcnnaud.18.weight": (512, 256, 5, 4),
                "netfcaud.3.weight": (1024, 512), "netcnnlip.0.weight": (96, 3, 5, 7, 7),
                "netcnnlip.4.weight": (256, 96, 1, 5, 5), "netcnnlip.18.weight": (512, 256, 1, 6, 6),
                "netcnnlip.19.running_var": (512,), "netfclip.1.running_mean": (512,)}
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    with torch.no_grad():
        assert model.embed_audio(torch.randn(2, 1, 13, 20)).shape == (2, 1024)
        assert model.embed_video(torch.rand(2, 3, 5, 224, 224) * 255).shape == (2, 1024)
    with pytest.raises(ValueError, match="13, 20"):
        model.embed_audio(torch.randn(2, 1, 13, 21))
    with pytest.raises(ValueError, match="224"):
        model.embed_video(torch.rand(1, 3, 5, 112, 112))


def test_state_dict_round_trip_with_prefixes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SyncNetV2(embed_dim=64)
    path = tmp_path / "w.model"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    loaded = load_syncnet(path)
    assert not loaded.training
    x = torch.randn(3, 1, 13, 20)
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed_audio(x), model.eval().embed_audio(x))


@pytest.mark.parametrize("k", [-3, 0, 4])
def test_lse_from_embeddings_finds_the_offset(k: int) -> None:
    rng = np.random.default_rng(2)
    audio = torch.from_numpy(rng.normal(size=(40, 16))).float()
    video = torch.from_numpy(rng.normal(size=(40, 16))).float()
    idx = np.arange(40) - k  # video window i shows the audio of window i - k: the video lags by k
    ok = (idx >= 0) & (idx < 40)
    video[torch.from_numpy(ok)] = audio[torch.from_numpy(idx[ok])]
    result = lse_from_embeddings(video, audio, vshift=15)
    assert result["offset_frames"] == k
    assert len(result["curve"]) == 31 and result["windows"] == 40
    assert result["lse_d"] == pytest.approx(min(result["curve"]))
    assert result["lse_c"] == pytest.approx(float(np.median(result["curve"])) - result["lse_d"])
    assert result["lse_c"] > 1.0  # matched windows are at distance ~0, others ~sqrt(2 * 16)


def test_mfcc_frames_gain_and_energy() -> None:
    rng = np.random.default_rng(3)
    wave = 0.1 * rng.normal(size=16000)
    mfcc = syncnet_mfcc(wave)
    assert mfcc.shape == (13, 1 + int(np.ceil((16000 - 400) / 160)))  # 99 frames at 100 Hz
    louder = syncnet_mfcc(2.0 * wave)
    np.testing.assert_allclose(louder[1:], mfcc[1:], atol=1e-3)  # gain only moves the log-energy c0
    np.testing.assert_allclose(louder[0] - mfcc[0], np.log(4.0), atol=1e-4)
    x = wave * 32768.0
    emph = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    energy0 = (np.abs(np.fft.rfft(emph[:400], 512)) ** 2 / 512).sum()
    assert mfcc[0, 0] == pytest.approx(np.log(energy0), rel=1e-5)
    assert syncnet_mfcc(np.zeros(100)).shape == (13, 1)  # shorter than a frame: one padded frame


def test_mel_filterbank_triangles() -> None:
    bank = pre._mel_filterbank(26, 512, 16000)
    assert bank.shape == (26, 257)
    assert np.all(bank >= 0) and np.allclose(bank.max(axis=1), 1.0)
    peaks = bank.argmax(axis=1)
    assert np.all(np.diff(peaks) > 0)  # centres rise with the filter index
    # the filter centred nearest 1 kHz (bin 32 at 31.25 Hz per bin) is the one whose mel centre is 1 kHz-ish
    centre_hz = peaks * 16000 / 512
    assert np.min(np.abs(centre_hz - 1000)) < 80


def test_face_crops_sample_the_right_pixels() -> None:
    h, w = 160, 200
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frame = torch.from_numpy(np.stack([xs, ys, np.zeros_like(xs)]))[None]  # channel 0 = x, 1 = y
    crops = syncnet_face_crops(frame, np.array([[100.0, 80.0, 20.0]]))
    assert crops.shape == (1, 3, 224, 224)
    # s = 20, c = 0.4: x in [100 - 28, 100 + 28) = [72, 128), y in [80 - 20, 80 + 36) = [60, 116)
    j = torch.arange(224, dtype=torch.float32)
    torch.testing.assert_close(crops[0, 0, 100], 72 + (j + 0.5) * 56 / 224 - 0.5, atol=1e-3, rtol=0)
    torch.testing.assert_close(crops[0, 1, :, 100], 60 + (j + 0.5) * 56 / 224 - 0.5, atol=1e-3, rtol=0)
    # a face at the corner: what lies outside the frame is the grey 110 of syncnet_python's padding
    corner = syncnet_face_crops(frame, np.array([[5.0, 5.0, 20.0]]))
    assert torch.all(corner[0, :, :50, :50] == 110.0)


def test_face_boxes_from_landmarks_are_smoothed() -> None:
    lmk = np.zeros((15, 68, 2))
    lmk[:, :, 0] = np.linspace(0, 40, 68)
    lmk[:, :, 1] = np.linspace(10, 30, 68)
    lmk[7] += 100.0  # one jumpy detection
    boxes = face_boxes_from_landmarks(lmk, smooth=5)
    np.testing.assert_allclose(boxes[7], [20.0, 20.0, 20.0])  # the median filter removes the outlier
    raw = face_boxes_from_landmarks(lmk, smooth=1)
    np.testing.assert_allclose(raw[7], [120.0, 120.0, 20.0])
    with pytest.raises(ValueError):
        face_boxes_from_landmarks(np.full((3, 68, 2), np.nan))


def test_lse_pipeline_runs_with_random_weights(no_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights found through $EMODUB_SYNCNET; the whole pipeline (audio from the video, crops, windows,
    offsets) runs and is consistent. Random weights: the scores themselves mean nothing."""
    torch.manual_seed(0)
    path = no_weights / "syncnet_v2.model"
    torch.save(SyncNetV2().state_dict(), path)
    monkeypatch.setenv(SYNCNET_ENV, str(path))
    video = write_talking_clip(no_weights, n=11)
    lmk = centred_landmarks(11)
    result = lse_scores(video, lmk68=lmk, config=LSEConfig(batch_size=3))
    assert result["available"] is True and result["weights"] == str(path)
    assert result["frames"] == 11 and result["windows"] == 11 - 5
    assert len(result["curve"]) == 31 and np.all(np.isfinite(result["curve"]))
    assert result["lse_d"] == pytest.approx(min(result["curve"]))
    assert result["lse_c"] >= 0 and -15 <= result["offset_frames"] <= 15
    # streaming in batches of 3 frames gives exactly the windows of one big batch, and a separate wav
    # with the same sound gives the same scores as the video's own track (up to AAC coding)
    big = lse_scores(video, no_weights / "speech.wav", lmk68=lmk, config=LSEConfig(batch_size=32))
    np.testing.assert_allclose(big["curve"], result["curve"], rtol=0.05)
    # a loaded model can be passed in; landmarks given at 50 fps are resampled onto the 25 fps frames
    model = load_syncnet(path)
    doubled = lse_scores(video, no_weights / "speech.wav", lmk68=np.repeat(lmk, 2, axis=0), lmk_fps=50.0,
                         model=model, config=LSEConfig(batch_size=32))
    np.testing.assert_allclose(doubled["curve"], big["curve"], rtol=1e-5)


def test_lse_refuses_too_short_clips(no_weights: Path) -> None:
    video = write_talking_clip(no_weights, n=5)
    result = lse_scores(video, lmk68=centred_landmarks(5), model=SyncNetV2(embed_dim=8).eval())
    assert result["available"] is False and "too short" in result["reason"]


# -------------------------------------------------------------------------------------------------
# Fréchet distance / FID
# -------------------------------------------------------------------------------------------------

def test_frechet_distance_of_diagonal_gaussians_matches_the_closed_form() -> None:
    rng = np.random.default_rng(4)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_frechet_distance_of_general_gaussians() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    # tr((s1 s2)^(1/2)) = tr((s1^(1/2) s2 s1^(1/2))^(1/2)), computed by symmetric eigendecompositions
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)
    # rank-1 covariances (sqrtm's hard case): s = m m^T gives tr(s + s - 2 (s s)^(1/2)) = 0
    low = np.outer(mu1, mu1)
    assert frechet_distance(mu1, low, mu2, low) == pytest.approx(np.sum((mu1 - mu2) ** 2), rel=1e-6)
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(mu1, s1, mu2[:4], s2[:4, :4])


def test_running_stats_match_numpy() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(50, 4)) * [1, 2, 3, 4] + [5, 0, -1, 2]
    stats = RunningStats(4)
    for chunk in np.array_split(x, 7):
        stats.update(chunk)
    mu, sigma = stats.finish()
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))
    with pytest.raises(ValueError):
        RunningStats(2).finish()


class PooledColours(torch.nn.Module):
    """A stand-in 'feature extractor': colour means over a 2x2 grid, (B, 3, 299, 299) -> (B, 12)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script in recent torch
def test_fid_with_a_user_supplied_torchscript_extractor(no_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = no_weights / "fid_inception.pt"
    torch.jit.script(PooledColours()).save(str(path))
    monkeypatch.setenv(FID_ENV, str(path))
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 200, size=(40, 48, 3), dtype=np.uint8) for _ in range(30)]
    same = fid_frames(iter(frames), iter(frames), batch_size=7)
    assert same["available"] is True and same["feature_dim"] == 12
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert same["frames_pred"] == 30 and "2048" in same["note"]
    brighter = [np.clip(f.astype(int) + 40, 0, 255).astype(np.uint8) for f in frames]
    shifted = fid_frames(iter(brighter), iter(frames))
    # a uniform +40/255 brightness shift moves each of the 12 means by ~0.157: FID >= 12 * 0.157^2
    assert shifted["fid"] > 12 * (40 / 255) ** 2 * 0.9


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fid_extractor_problems_are_reported(no_weights: Path) -> None:
    frames = [np.zeros((8, 8, 3), np.uint8)] * 3
    junk = no_weights / "junk.pt"
    junk.write_bytes(b"junk")
    result = fid_frames(iter(frames), iter(frames), extractor=junk)
    assert result["available"] is False and "TorchScript" in result["reason"]

    class Wrong(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3), keepdim=True)

    wrong = no_weights / "wrong.pt"
    torch.jit.script(Wrong()).save(str(wrong))
    result = fid_frames(iter(frames), iter(frames), extractor=wrong)
    assert result["available"] is False and "(2, D)" in result["reason"]


@pytest.mark.slow
def test_fid_with_a_torch_export_program(no_weights: Path) -> None:
    path = no_weights / "extractor.pt2"
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(PooledColours(), (torch.rand(2, 3, 299, 299),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(path))
    rng = np.random.default_rng(8)
    frames = [rng.integers(0, 255, size=(16, 16, 3), dtype=np.uint8) for _ in range(10)]
    result = fid_frames(iter(frames), iter(frames), extractor=path, batch_size=3)
    assert result["available"] is True and result["feature_dim"] == 12
    assert result["fid"] == pytest.approx(0.0, abs=1e-6)
