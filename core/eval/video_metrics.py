"""Whole-video metrics: PSNR/SSIM between two videos (streamed) and the lip-sync proxy of a video.

:func:`compare_videos` decodes both files frame by frame (:func:`core.io.video.iter_frames`), scores
small batches with :mod:`core.eval.image_metrics` and keeps only per-frame numbers, so memory does not
grow with the video's length. PSNR and SSIM are computed per frame on RGB in [0, 1] and averaged over
frames (the usual convention in talking-head papers). SSIM is Wang et al.'s with an 11x11 Gaussian
window (sigma 1.5) over the RGB channels, valid region only.

:func:`sync_report` measures the model-free lip-sync proxy of :mod:`core.eval.lipsync` on a video and
its audio: landmarks -> mouth opening, audio -> loudness envelope, then their cross-correlation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

MaskSource = np.ndarray | Callable[[int, int], np.ndarray]


def _mask_batch(region_mask: MaskSource | None, start: int, count: int, height: int, width: int,
                device: torch.device) -> torch.Tensor | None:
    """(count, 1, H, W) float mask of frames ``start..start+count-1``, or None."""
    if region_mask is None:
        return None
    if callable(region_mask):
        mask = np.asarray(region_mask(start, count), np.float32)
    else:
        mask = np.asarray(region_mask, np.float32)
        if mask.ndim == 3:
            if start + count > len(mask):
                raise ValueError(f"region_mask has {len(mask)} frames; frame {start + count - 1} was needed")
            mask = mask[start:start + count]
    if mask.ndim == 2:
        mask = np.repeat(mask[None], count, axis=0)
    if mask.shape != (count, height, width):
        raise ValueError(f"region mask must be (H, W) = ({height}, {width}) or (N, H, W); got {mask.shape}")
    return torch.from_numpy(np.array(mask, np.float32)).to(device)[:, None]  # a copy: inputs may be read-only


def _score_batch(pred: list[np.ndarray], ref: list[np.ndarray], mask_source: MaskSource | None, start: int,
                 device: torch.device) -> tuple[list[float], list[float]]:
    from core.eval.image_metrics import psnr, ssim_map

    p = torch.from_numpy(np.stack(pred)).to(device).permute(0, 3, 1, 2).float() / 255.0
    r = torch.from_numpy(np.stack(ref)).to(device).permute(0, 3, 1, 2).float() / 255.0
    _, _, h, w = p.shape
    mask = _mask_batch(mask_source, start, len(pred), h, w, device)
    psnr_values = psnr(p, r, mask)
    smap = ssim_map(p, r)  # (B, 3, H - 10, W - 10): the valid region of the 11x11 window
    if mask is None:
        ssim_values = smap.flatten(1).mean(1)
    else:
        trim = (h - smap.shape[2]) // 2
        weight = mask[:, :, trim:trim + smap.shape[2], trim:trim + smap.shape[3]].expand_as(smap)
        ssim_values = (smap * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1e-8)
    return psnr_values.tolist(), ssim_values.tolist()


def compare_videos(pred_mp4: str | Path, ref_mp4: str | Path, max_frames: int | None = None,
                   region_mask: MaskSource | None = None, batch_size: int = 8,
                   device: str | torch.device = "cpu") -> dict[str, Any]:
    """PSNR and SSIM of ``pred_mp4`` against ``ref_mp4``, frame by frame (streamed, bounded memory).

    Args:
        pred_mp4: generated video.
        ref_mp4: reference video, same frame size (frames are compared in order, up to the shorter).
        max_frames: compare at most this many frames.
        region_mask: optional weights in [0, 1] of the pixels to score (e.g. the mouth region): an
            (H, W) array for every frame, an (N, H, W) array, or ``fn(start, count) -> (count, H, W)``.
            PSNR uses the masked mean squared error; SSIM averages its map over the mask (inside the
            valid region).
        batch_size: frames scored at once.
        device: torch device.

    Returns:
        ``{"psnr", "ssim", "frames", "psnr_per_frame", "ssim_per_frame", "length_mismatch", "masked",
        "note"}`` (means in dB / [-1, 1]; ``length_mismatch`` when one video has frames left after the
        other ended; PSNR of identical frames is capped at 100 dB).

    Raises:
        ValueError: the frame sizes differ, or a video has no frames.
    """
    from core.io.video import iter_frames, probe

    device = torch.device(device)
    pred_info, ref_info = probe(pred_mp4, count_frames=False), probe(ref_mp4, count_frames=False)
    if pred_info.size != ref_info.size:
        raise ValueError(f"frame sizes differ: {pred_mp4} is {pred_info.size[0]}x{pred_info.size[1]}, "
                         f"{ref_mp4} is {ref_info.size[0]}x{ref_info.size[1]}; render at the reference size")
    pred_iter = iter_frames(pred_mp4, max_frames=max_frames, info=pred_info)
    ref_iter = iter_frames(ref_mp4, max_frames=max_frames, info=ref_info)
    psnrs: list[float] = []
    ssims: list[float] = []
    pred_batch: list[np.ndarray] = []
    ref_batch: list[np.ndarray] = []
    mismatch = False
    while True:
        pf, rf = next(pred_iter, None), next(ref_iter, None)
        if pf is None or rf is None:
            mismatch = (pf is None) != (rf is None)  # one stream still had a frame
            break
        pred_batch.append(pf)
        ref_batch.append(rf)
        if len(pred_batch) == batch_size:
            p, s = _score_batch(pred_batch, ref_batch, region_mask, len(psnrs), device)
            psnrs += p
            ssims += s
            pred_batch, ref_batch = [], []
    for it in (pred_iter, ref_iter):
        it.close()  # stops ffmpeg if frames were left
    if pred_batch:
        p, s = _score_batch(pred_batch, ref_batch, region_mask, len(psnrs), device)
        psnrs += p
        ssims += s
    if not psnrs:
        raise ValueError(f"no frames to compare ({pred_mp4} or {ref_mp4} is empty)")
    return {
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)),
        "frames": len(psnrs),
        "psnr_per_frame": psnrs,
        "ssim_per_frame": ssims,
        "length_mismatch": bool(mismatch),
        "masked": region_mask is not None,
        "note": "the videos have different lengths; compared up to the shorter" if mismatch else None,
    }


def sync_report(video_mp4: str | Path, audio_wav: str | Path | None = None, detector: Any = None, *,
                lmk68: np.ndarray | None = None, max_offset: int = 10, max_frames: int | None = None,
                normalize: str = "mouth_width") -> dict[str, Any]:
    """The lip-sync proxy (:func:`core.eval.lipsync.lipsync_proxy`) of a video against its audio.

    Args:
        video_mp4: the video.
        audio_wav: the speech (``None``: the video's own sound track).
        detector: landmark detector (default: MediaPipe), used when ``lmk68`` is not given.
        lmk68: optional (N, 68, 2) landmarks of the video's frames (NaN rows = no face), e.g. from
            ``landmarks.npz``; skips detection.
        max_offset: offsets tried, frames.
        max_frames: use at most this many frames.
        normalize: mouth-opening normalisation (see :func:`~core.eval.lipsync.mouth_opening_from_landmarks`).

    Returns:
        The :func:`~core.eval.lipsync.lipsync_proxy` dict plus ``"fps"``, ``"offset_s"`` (positive = the
        video lags the audio) and ``"detected_fraction"`` (frames with a face).
    """
    from core.audio.io import DEFAULT_SAMPLE_RATE, load_audio
    from core.eval.landmark_metrics import video_landmarks
    from core.eval.lipsync import audio_envelope, lipsync_proxy, mouth_opening_from_landmarks, offset_seconds
    from core.io.video import probe

    info = probe(video_mp4, count_frames=False)
    fps = float(info.fps)
    if lmk68 is None:
        lmk68, _ = video_landmarks(video_mp4, detector, max_frames=max_frames)
    else:
        lmk68 = np.asarray(lmk68, np.float32)[:max_frames]
    n = len(lmk68)
    if n == 0:
        raise ValueError(f"{video_mp4} has no frames")
    if audio_wav is None:
        if not info.has_audio:
            raise ValueError(f"{video_mp4} has no sound track; pass the audio it was made for")
        import tempfile

        from core.io.audio import extract_audio

        with tempfile.TemporaryDirectory() as tmp:
            wave, sr = load_audio(extract_audio(video_mp4, Path(tmp) / "audio.wav"), DEFAULT_SAMPLE_RATE)
    else:
        wave, sr = load_audio(audio_wav, DEFAULT_SAMPLE_RATE)
    opening = mouth_opening_from_landmarks(lmk68, normalize)
    envelope = audio_envelope(wave, sr, fps, n)
    result = lipsync_proxy(opening, envelope, max_offset=max_offset)
    result.update(fps=fps, offset_s=offset_seconds(result["offset_frames"], fps),
                  detected_fraction=float(np.isfinite(opening).mean()))
    return result
