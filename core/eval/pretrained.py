"""Metrics that need pretrained networks: LSE-C / LSE-D (SyncNet) and FID (Inception-v3 features).

Nothing here downloads anything. When the weights are missing, every entry point returns

    {"available": False, "metric": ..., "reason": "...", "how_to_enable": "..."}

instead of a score, so reports can always be written.

LSE-C / LSE-D (Prajwal et al. 2020, Wav2Lip, §4.1)
-------------------------------------------------
Wav2Lip's "LSE" metrics run the pretrained SyncNet of Chung & Zisserman (2016) as released with
syncnet_python (``syncnet_v2.model``: a state dict) over a talking-face video:

* the face is cropped around a smoothed face box and resized to 224x224; 5 consecutive frames at
  25 fps form one video window (input (3, 5, 224, 224), BGR pixel values 0-255, as cv2 reads them);
* the audio (16 kHz) becomes 13 MFCCs at 100 Hz (25 ms rectangular frames, 26 mel bands, 512-point
  FFT, pre-emphasis 0.97, lifter 22, c0 = log frame energy, samples on the int16 scale); the 20 MFCC
  frames covering the same 0.2 s form one audio window (input (1, 13, 20));
* both streams are embedded (1024-d); for every video window ``i`` the Euclidean distance to the audio
  windows ``i + d`` for ``d = -15..15`` is taken (audio outside the clip = zero embedding), and the
  distances are averaged over the windows per offset: the curve ``D(d)``.

``LSE-D = min_d D(d)`` (lower is better) and ``LSE-C = median_d D(d) - min_d D(d)`` (the confidence;
higher is better); ``offset`` is ``-argmin`` in SyncNet's sign (positive = the video lags the audio).

Differences from the published pipeline, stated so numbers are read correctly: syncnet_python finds
faces with S3FD; here the face box comes from the iBUG-68 landmarks (MediaPipe by default), medianly
smoothed over 13 frames and cropped with the same rule (crop scale 0.4, grey 110 padding). Scores on
the same video therefore differ slightly from published LSE numbers; compare methods with this one
implementation.

Weights: ``syncnet_v2.model`` from syncnet_python (its ``download_model.sh`` fetches it from the
authors' site), placed at ``~/.emodub/weights/syncnet_v2.model`` or pointed at by ``EMODUB_SYNCNET``.
A state dict with the same parameter names (optionally inside ``{"state_dict": ...}`` or prefixed
``module.`` / ``__S__.``) works too.

FID (Heusel et al. 2017)
------------------------
FID is the Fréchet distance between Gaussians fitted to Inception-v3 pool3 features (2048-d) of two
image sets. torchvision (which defines Inception-v3) is not a dependency, so the feature extractor is
user-supplied as a TorchScript file mapping ``(B, 3, 299, 299)`` float RGB in [0, 1] to ``(B, 2048)``,
at ``~/.emodub/weights/fid_inception.pt`` or ``EMODUB_FID_EXTRACTOR`` (a ``.pt2`` ``torch.export``
program with a dynamic batch dimension works too). On a machine with pytorch-fid installed it is made
by::

    import torch
    from pytorch_fid.inception import InceptionV3
    net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=False, normalize_input=True)
    class Pool3(torch.nn.Module):
        def __init__(self, net): super().__init__(); self.net = net.eval()
        def forward(self, x): return self.net(x)[0].flatten(1)
    torch.jit.trace(Pool3(net), torch.rand(2, 3, 299, 299)).save("fid_inception.pt")

Frames are resized to 299x299 bilinearly here. FID from a few hundred frames is strongly biased
upwards (the covariance of 2048-d features needs thousands of samples); compare only FIDs computed
on the same number of frames.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_DIR = Path.home() / ".emodub" / "weights"
SYNCNET_FILE = "syncnet_v2.model"
SYNCNET_ENV = "EMODUB_SYNCNET"
FID_FILE = "fid_inception.pt"
FID_ENV = "EMODUB_FID_EXTRACTOR"

SYNCNET_FPS = 25.0
SYNCNET_SR = 16000
SYNCNET_FACE_SIZE = 224
SYNCNET_WINDOW = 5  # video frames per window
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps
FID_SIZE = 299


def not_available(metric: str, reason: str, how_to_enable: str) -> dict[str, Any]:
    """The result of a metric whose weights (or inputs) are missing."""
    return {"available": False, "metric": metric, "reason": reason, "how_to_enable": how_to_enable}


def _find_weights(env: str, filename: str) -> tuple[Path | None, str]:
    """``(path, "")`` of an existing weights file, or ``(None, why)``."""
    value = os.environ.get(env)
    if value:
        path = Path(value).expanduser()
        if path.is_file():
            return path, ""
        return None, f"${env} points at {path}, which is not a file"
    path = WEIGHTS_DIR / filename
    if path.is_file():
        return path, ""
    return None, f"no {filename} in {WEIGHTS_DIR} and ${env} is not set"


# ================================================================================================
# SyncNet
# ================================================================================================

_SYNCNET_HOW = (f"put syncnet_python's {SYNCNET_FILE} (fetched by its download_model.sh) at "
                f"{WEIGHTS_DIR / SYNCNET_FILE} or set {SYNCNET_ENV}=/path/to/{SYNCNET_FILE}")

# Layer specs: ("conv", out_channels, kernel, stride, padding) adds Conv + BatchNorm + ReLU (3 modules),
# ("pool", kernel, stride, padding) adds one max-pool, so module indices match the released state dict.
_AUDIO_LAYERS: tuple[tuple[Any, ...], ...] = (
    ("conv", 64, (3, 3), (1, 1), (1, 1)), ("pool", (1, 1), (1, 1), (0, 0)),
    ("conv", 192, (3, 3), (1, 1), (1, 1)), ("pool", (3, 3), (1, 2), (0, 0)),
    ("conv", 384, (3, 3), (1, 1), (1, 1)),
    ("conv", 256, (3, 3), (1, 1), (1, 1)),
    ("conv", 256, (3, 3), (1, 1), (1, 1)), ("pool", (3, 3), (2, 2), (0, 0)),
    ("conv", 512, (5, 4), (1, 1), (0, 0)),
)
_LIP_LAYERS: tuple[tuple[Any, ...], ...] = (
    ("conv", 96, (5, 7, 7), (1, 2, 2), (0, 0, 0)), ("pool", (1, 3, 3), (1, 2, 2), (0, 0, 0)),
    ("conv", 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), ("pool", (1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ("conv", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    ("conv", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
    ("conv", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)), ("pool", (1, 3, 3), (1, 2, 2), (0, 0, 0)),
    ("conv", 512, (1, 6, 6), (1, 1, 1), (0, 0, 0)),
)


def _encoder(spec: tuple[tuple[Any, ...], ...], in_channels: int, dims: int) -> nn.Sequential:
    conv, norm, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dims == 2 else \
        (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d)
    layers: list[nn.Module] = []
    channels = in_channels
    for kind, *args in spec:
        if kind == "conv":
            out, kernel, stride, padding = args
            layers += [conv(channels, out, kernel, stride, padding), norm(out), nn.ReLU(inplace=True)]
            channels = out
        else:
            kernel, stride, padding = args
            layers.append(pool(kernel, stride, padding))
    return nn.Sequential(*layers)


def _head(embed_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
                         nn.Linear(512, embed_dim))


class SyncNetV2(nn.Module):
    """SyncNet (Chung & Zisserman 2016) in the layout of syncnet_python's released ``syncnet_v2.model``.

    Audio encoder: (B, 1, 13, 20) MFCC windows -> conv stack -> (B, 512, 1, 1) -> MLP -> (B, E).
    Lip encoder: (B, 3, 5, 224, 224) five BGR face crops (0-255) -> 3-D conv stack -> (B, 512, 1, 1, 1)
    -> MLP -> (B, E). ``E = embed_dim`` (1024 in the release). Parameter names (``netcnnaud.*``,
    ``netfcaud.*``, ``netcnnlip.*``, ``netfclip.*``) match the released state dict.
    """

    def __init__(self, embed_dim: int = 1024) -> None:
        super().__init__()
        self.netcnnaud = _encoder(_AUDIO_LAYERS, 1, dims=2)
        self.netfcaud = _head(embed_dim)
        self.netcnnlip = _encoder(_LIP_LAYERS, 3, dims=3)
        self.netfclip = _head(embed_dim)

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(B, 1, 13, 20) -> (B, E)."""
        if mfcc.dim() != 4 or tuple(mfcc.shape[1:]) != (1, 13, 20):
            raise ValueError(f"SyncNet audio input must be (B, 1, 13, 20) MFCC windows, got {tuple(mfcc.shape)}")
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def embed_video(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, 5, 224, 224) -> (B, E)."""
        expected = (3, SYNCNET_WINDOW, SYNCNET_FACE_SIZE, SYNCNET_FACE_SIZE)
        if faces.dim() != 5 or tuple(faces.shape[1:]) != expected:
            raise ValueError(f"SyncNet video input must be (B, {', '.join(map(str, expected))}), "
                             f"got {tuple(faces.shape)}")
        return self.netfclip(self.netcnnlip(faces).flatten(1))


def find_syncnet_weights() -> Path | None:
    """``$EMODUB_SYNCNET`` or ``~/.emodub/weights/syncnet_v2.model`` when it exists."""
    return _find_weights(SYNCNET_ENV, SYNCNET_FILE)[0]


def load_syncnet(path: str | Path, device: str | torch.device = "cpu") -> SyncNetV2:
    """A :class:`SyncNetV2` in eval mode with the weights of ``path`` (a state dict; tensors only).

    Raises:
        ValueError: the file is not a state dict of this architecture (what differs is named).
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a plain state dict"
        raise ValueError(f"cannot read {path} as a tensor state dict ({exc}); give syncnet_python's "
                         f"{SYNCNET_FILE}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    cleaned = {}
    for key, value in state.items():
        for prefix in ("module.", "__S__."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        cleaned[key] = value
    embed = cleaned.get("netfcaud.3.weight")
    model = SyncNetV2(embed_dim=int(embed.shape[0]) if isinstance(embed, torch.Tensor) else 1024)
    own = model.state_dict()
    missing = [k for k in own if k not in cleaned and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in cleaned if k not in own]
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(own[k].shape)})" for k, v in cleaned.items()
             if k in own and (not isinstance(v, torch.Tensor) or v.shape != own[k].shape)]
    if missing or unexpected or wrong:
        raise ValueError(f"{path} does not match the SyncNet v2 layout: missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]}, wrong shapes {wrong[:4]}")
    model.load_state_dict(cleaned, strict=False)  # only num_batches_tracked may be absent
    return model.to(device).eval().requires_grad_(False)


def syncnet_mfcc(wave: np.ndarray, sr: int = SYNCNET_SR, n_ceps: int = 13, n_filters: int = 26,
                 n_fft: int = 512, preemphasis: float = 0.97, lifter: int = 22) -> np.ndarray:
    """MFCCs as SyncNet was trained on them (the python_speech_features ``mfcc`` defaults).

    25 ms rectangular frames every 10 ms (the last one zero-padded), pre-emphasis, power spectrum
    ``|FFT_512|^2 / 512``, 26 triangular mel filters 0..sr/2 on FFT-bin edges, log, orthonormal DCT-II,
    13 coefficients, sinusoidal lifter 22, then c0 replaced by the log frame energy. Float input in
    [-1, 1] is scaled by 32768 first, because SyncNet saw int16 sample values (this only shifts c0).

    Args:
        wave: (S,) mono samples at ``sr`` (16 kHz for SyncNet).

    Returns:
        (13, T) float32, ``T = 1 + ceil((S - 400) / 160)`` (1 for shorter audio).
    """
    from scipy.fft import dct

    x = np.asarray(wave, np.float64).reshape(-1) * 32768.0
    if x.size == 0:
        raise ValueError("no audio samples")
    x = np.concatenate([x[:1], x[1:] - preemphasis * x[:-1]])
    frame_len = int(math.floor(0.025 * sr + 0.5))
    step = int(math.floor(0.010 * sr + 0.5))
    n_frames = 1 if x.size <= frame_len else 1 + int(math.ceil((x.size - frame_len) / step))
    padded = np.zeros((n_frames - 1) * step + frame_len)
    padded[: x.size] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_len)[::step][:n_frames]
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2 / n_fft
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    feat = power @ _mel_filterbank(n_filters, n_fft, sr).T
    feat = np.where(feat == 0, np.finfo(float).eps, feat)
    ceps = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :n_ceps]
    ceps *= 1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(n_ceps) / lifter)
    ceps[:, 0] = np.log(energy)
    return ceps.T.astype(np.float32)


def _mel_filterbank(n_filters: int, n_fft: int, sr: int) -> np.ndarray:
    """(n_filters, n_fft // 2 + 1) triangles between mel-spaced FFT bins (edges floored to bins)."""
    def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    mel = np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_filters + 2)
    bins = np.floor((n_fft + 1) * (700.0 * (10.0 ** (mel / 2595.0) - 1.0)) / sr)
    k = np.arange(n_fft // 2 + 1)[None, :]
    lo, mid, hi = bins[:-2, None], bins[1:-1, None], bins[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where((k >= lo) & (k < mid), (k - lo) / np.where(mid > lo, mid - lo, 1.0), 0.0)
        falling = np.where((k >= mid) & (k < hi), (hi - k) / np.where(hi > mid, hi - mid, 1.0), 0.0)
    return rising + falling


def face_boxes_from_landmarks(lmk68: np.ndarray, smooth: int = 13) -> np.ndarray:
    """Per-frame SyncNet face boxes ``(cx, cy, half_size)`` from iBUG-68 landmarks.

    The box is the landmarks' bounding box (brows to chin, ear to ear: close to a face detector's box)
    with ``half_size = max(width, height) / 2``; each of the three tracks is median-filtered over
    ``smooth`` frames (odd), as syncnet_python smooths its detections.

    Args:
        lmk68: (N, 68, 2) pixels, no NaN (fill gaps first).

    Returns:
        (N, 3) float64.
    """
    from scipy.signal import medfilt

    lmk = np.asarray(lmk68, np.float64)
    if lmk.ndim != 3 or lmk.shape[1:] != (68, 2) or not np.all(np.isfinite(lmk)):
        raise ValueError("landmarks must be finite (N, 68, 2) arrays (fill frames without a face first)")
    lo, hi = lmk.min(axis=1), lmk.max(axis=1)
    boxes = np.stack([(lo[:, 0] + hi[:, 0]) / 2, (lo[:, 1] + hi[:, 1]) / 2,
                      np.max(hi - lo, axis=1) / 2], axis=1)
    # odd kernel, at most the clip's length (medfilt zero-pads beyond the ends)
    kernel = min(smooth if smooth % 2 else smooth + 1, len(boxes) if len(boxes) % 2 else len(boxes) - 1)
    if kernel > 1:
        boxes = np.stack([medfilt(boxes[:, j], kernel) for j in range(3)], axis=1)
    return boxes


def syncnet_face_crops(frames: torch.Tensor, boxes: np.ndarray, crop_scale: float = 0.4,
                       size: int = SYNCNET_FACE_SIZE, fill: float = 110.0) -> torch.Tensor:
    """Crop and resize faces as syncnet_python does (vectorised over the batch with ``grid_sample``).

    The crop spans ``[cx - s(1+c), cx + s(1+c)) x [cy - s, cy + s(1+2c))`` (``s`` = half box size, ``c`` =
    ``crop_scale``: wider than the box, extended below the chin), whole-pixel bounds as in the original,
    with ``fill`` grey outside the frame, then bilinearly resized to ``size`` x ``size``.

    Args:
        frames: (B, 3, H, W) float pixel values 0-255 (any channel order; it is kept).
        boxes: (B, 3) ``(cx, cy, half_size)`` in pixels.

    Returns:
        (B, 3, size, size) float32.
    """
    b, _, h, w = frames.shape
    boxes = np.asarray(boxes, np.float64).reshape(b, 3)
    cx, cy, s = boxes[:, 0], boxes[:, 1], boxes[:, 2]
    pad = np.floor(s * (1 + 2 * crop_scale))  # syncnet_python pads by this, then truncates in padded coords
    y0 = np.floor(cy + pad - s) - pad
    y1 = np.floor(cy + pad + s * (1 + 2 * crop_scale)) - pad
    x0 = np.floor(cx + pad - s * (1 + crop_scale)) - pad
    x1 = np.floor(cx + pad + s * (1 + crop_scale)) - pad
    dev, dt = frames.device, torch.float32
    t = (torch.arange(size, device=dev, dtype=dt) + 0.5) / size  # output pixel centres in [0, 1]

    def axis(a0: np.ndarray, a1: np.ndarray, extent: int) -> torch.Tensor:
        start = torch.as_tensor(a0, device=dev, dtype=dt)[:, None]
        length = torch.as_tensor(a1 - a0, device=dev, dtype=dt)[:, None]
        src = start + t[None, :] * length - 0.5  # source pixel coordinate (pixel centres at integers)
        return (2.0 * src + 1.0) / extent - 1.0  # grid_sample's normalised coordinate (align_corners=False)

    gx, gy = axis(x0, x1, w), axis(y0, y1, h)
    grid = torch.stack([gx[:, None, :].expand(b, size, size), gy[:, :, None].expand(b, size, size)], dim=-1)
    # sample (frame - fill) with zero padding so outside the frame reads as the fill grey
    out = F.grid_sample(frames.to(dt) - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + fill


def lse_from_embeddings(video_emb: torch.Tensor, audio_emb: torch.Tensor, vshift: int = 15) -> dict[str, Any]:
    """LSE-D, LSE-C and the offset from per-window embeddings (Wav2Lip's evaluation rule).

    Args:
        video_emb: (W, E) lip embeddings of windows 0..W-1.
        audio_emb: (W, E) audio embeddings of the same windows.
        vshift: offsets ``-vshift..vshift`` tried (audio beyond the ends = zero embedding).

    Returns:
        ``{"lse_d", "lse_c", "offset_frames", "curve", "offsets", "windows"}``; ``curve[k]`` is the mean
        distance with the audio moved by ``offsets[k] = k - vshift`` windows (video ``i`` vs audio
        ``i + offsets[k]``); ``offset_frames = -offsets[argmin]`` (positive = video lags audio).
    """
    if video_emb.shape != audio_emb.shape or video_emb.dim() != 2:
        raise ValueError(f"embeddings must both be (W, E), got {tuple(video_emb.shape)} and "
                         f"{tuple(audio_emb.shape)}")
    n = video_emb.shape[0]
    if n == 0:
        raise ValueError("no windows to score")
    padded = F.pad(audio_emb, (0, 0, vshift, vshift))
    index = torch.arange(n, device=audio_emb.device)[:, None] + torch.arange(2 * vshift + 1,
                                                                             device=audio_emb.device)[None, :]
    shifted = padded[index]  # (W, D, E): audio window i + d - vshift for each video window i
    # F.pairwise_distance adds eps to the difference; kept for parity with the published evaluation
    dists = F.pairwise_distance(video_emb[:, None, :].expand_as(shifted).reshape(-1, video_emb.shape[1]),
                                shifted.reshape(-1, video_emb.shape[1])).view(n, -1)
    curve = dists.mean(dim=0)
    min_val, min_idx = torch.min(curve, dim=0)
    return {
        "lse_d": float(min_val),
        "lse_c": float(torch.median(curve) - min_val),
        "offset_frames": int(vshift - int(min_idx)),
        "curve": [float(c) for c in curve],
        "offsets": list(range(-vshift, vshift + 1)),
        "windows": int(n),
    }


@dataclass
class LSEConfig:
    """Settings of :func:`lse_scores`.

    Attributes:
        vshift: offsets tried, in frames (15 in Wav2Lip's evaluation).
        batch_size: windows embedded at once (memory: ~3 MB of input per window).
        crop_scale: syncnet_python's crop scale.
        box_smoothing: median-filter length for the face boxes, frames.
        max_frames: score at most this many frames (at 25 fps); ``None``: the whole video.
        min_confidence: landmark detections under this confidence are treated as missing.
    """

    vshift: int = 15
    batch_size: int = 20
    crop_scale: float = 0.4
    box_smoothing: int = 13
    max_frames: int | None = None
    min_confidence: float = 0.3


def _resample_landmarks(lmk68: np.ndarray, src_fps: float, n_out: int) -> np.ndarray:
    """Nearest-frame landmarks for the 25-fps frame grid (``i / 25`` s -> frame ``round(i * src / 25)``)."""
    idx = np.clip(np.round(np.arange(n_out) * src_fps / SYNCNET_FPS).astype(int), 0, len(lmk68) - 1)
    return lmk68[idx]


def _fill_landmarks(lmk68: np.ndarray, valid: np.ndarray) -> np.ndarray:
    from core.landmarks.track import fill_gaps

    if not valid.any():
        raise ValueError("no face was found in any frame; LSE needs a visible face")
    return fill_gaps(lmk68, valid, max_gap=len(valid))[0]


def _lip_windows(frames: Iterator[np.ndarray], boxes: np.ndarray, w: int, model: SyncNetV2, config: LSEConfig,
                 device: torch.device) -> torch.Tensor:
    """Embeddings (w, E) of the 5-frame windows starting at frames 0..w-1, streamed in batches.

    syncnet_python scores windows 0..N-6 of N frames (``lastframe = N - 5``), one fewer than fit.
    """
    outputs: list[torch.Tensor] = []
    carry: torch.Tensor | None = None  # the last 4 crops of the previous batch
    chunk: list[np.ndarray] = []
    start = 0  # index of the first frame in `chunk`
    done = 0  # windows embedded so far

    def flush(chunk_frames: list[np.ndarray], first: int) -> None:
        nonlocal carry, done
        # (B, H, W, 3) RGB -> (B, 3, H, W) BGR 0-255, the order cv2 gave SyncNet during training
        batch = torch.from_numpy(np.stack(chunk_frames)).to(device).permute(0, 3, 1, 2).flip(1).float()
        crops = syncnet_face_crops(batch, boxes[first:first + len(chunk_frames)], config.crop_scale)
        seq = crops if carry is None else torch.cat([carry, crops])
        n_win = min(len(seq) - (SYNCNET_WINDOW - 1), w - done)
        if n_win > 0:
            # (n_win, 3, 5, 224, 224): window j holds crops j..j+4
            win = torch.stack([seq[k:k + n_win] for k in range(SYNCNET_WINDOW)], dim=2)
            outputs.append(model.embed_video(win))
            done += n_win
        carry = seq[-(SYNCNET_WINDOW - 1):]

    for i, frame in enumerate(frames):
        if i >= min(len(boxes), w + SYNCNET_WINDOW - 1):
            break
        chunk.append(frame)
        if len(chunk) == config.batch_size:
            flush(chunk, start)
            start += len(chunk)
            chunk = []
        if done >= w:
            break
    if chunk and done < w:
        flush(chunk, start)
    if done < w:
        raise ValueError(f"the video ended after fewer frames than its landmarks ({len(boxes)})")
    return torch.cat(outputs)


def lse_scores(video: str | Path, audio: str | Path | None = None, *, lmk68: np.ndarray | None = None,
               lmk_fps: float | None = None, valid: np.ndarray | None = None, detector: Any = None,
               weights: str | Path | None = None, model: SyncNetV2 | None = None,
               config: LSEConfig | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """LSE-D / LSE-C of a talking-face video with its audio (see the module docstring).

    Args:
        video: the video (resampled to 25 fps on decoding).
        audio: speech to score against (``None``: the video's own sound track).
        lmk68: optional (N, 68, 2) landmarks of the video's own frames (e.g. ``landmarks.npz``); ``None``
            runs ``detector`` (MediaPipe by default) on the 25-fps frames.
        lmk_fps: frame rate of ``lmk68`` (default: the video's).
        valid: (N,) bool, frames of ``lmk68`` with a real detection (others are interpolated).
        weights: SyncNet weights file (default: ``$EMODUB_SYNCNET`` or ``~/.emodub/weights``).
        model: an already loaded :class:`SyncNetV2` (overrides ``weights``).
        config: :class:`LSEConfig`.
        device: torch device.

    Returns:
        ``{"available": True, "lse_d", "lse_c", "offset_frames", "curve", "offsets", "windows",
        "frames", "weights", "note"}``, or :func:`not_available` when the weights are missing.
    """
    from core.audio.io import load_audio
    from core.io.video import iter_frames, probe

    config = config or LSEConfig()
    device = torch.device(device)
    weights_path: Path | None = None
    if model is None:
        if weights is not None:
            weights_path = Path(weights)
            if not weights_path.is_file():
                return not_available("lse", f"SyncNet weights {weights_path} do not exist", _SYNCNET_HOW)
        else:
            weights_path, why = _find_weights(SYNCNET_ENV, SYNCNET_FILE)
            if weights_path is None:
                return not_available("lse", f"SyncNet weights not found: {why}", _SYNCNET_HOW)
        try:
            model = load_syncnet(weights_path, device)
        except ValueError as exc:
            return not_available("lse", str(exc), _SYNCNET_HOW)
    model = model.to(device).eval()
    info = probe(video, count_frames=False)
    if audio is None:
        if not info.has_audio:
            return not_available("lse", f"{video} has no sound track and no audio was given",
                                 "pass the audio file the video was made for")
        from core.io.audio import extract_audio

        with tempfile.TemporaryDirectory() as tmp:
            wave, _ = load_audio(extract_audio(video, Path(tmp) / "audio.wav", SYNCNET_SR), SYNCNET_SR)
    else:
        wave, _ = load_audio(audio, SYNCNET_SR)

    def frames() -> Iterator[np.ndarray]:
        return iter_frames(video, fps=SYNCNET_FPS, max_frames=config.max_frames, info=info)

    notes = ["face boxes from iBUG-68 landmarks (not S3FD): compare with LSE computed by this function"]
    if lmk68 is None:
        from core.eval.landmark_metrics import detect_frames

        own = detector is None
        if own:
            from core.landmarks.detector import MediaPipeDetector

            detector = MediaPipeDetector()
        try:
            detector.reset()
            points, found = detect_frames(frames(), detector, config.min_confidence)
        finally:
            if own:
                detector.close()
    else:
        points = np.asarray(lmk68, np.float32)
        found = np.ones(len(points), bool) if valid is None else np.asarray(valid, bool)
        src_fps = float(lmk_fps or info.fps)
        if abs(src_fps - SYNCNET_FPS) > 1e-3:
            n_out = int(math.floor(len(points) * SYNCNET_FPS / src_fps))
            points, found = _resample_landmarks(points, src_fps, n_out), \
                _resample_landmarks(found, src_fps, n_out)
        if config.max_frames is not None:
            points, found = points[:config.max_frames], found[:config.max_frames]
    if len(points) and found.mean() < 0.9:
        notes.append(f"a face was found in only {100 * found.mean():.0f}% of the frames")
    points = _fill_landmarks(points, found)
    n = min(len(points), wave.size // int(SYNCNET_SR / SYNCNET_FPS))
    if n - SYNCNET_WINDOW < 1:
        return not_available("lse", f"too short: {n} frames at 25 fps with audio; need at least 6",
                             "score a longer clip")
    mfcc = torch.from_numpy(syncnet_mfcc(wave)).to(device)
    # audio window j = MFCC frames 4j .. 4j + 19 (the same 0.2 s as video frames j .. j + 4); 640 samples
    # per frame give exactly the n - 5 windows syncnet_python scores
    audio_win = mfcc.unfold(1, 20, MFCC_PER_FRAME).permute(1, 0, 2)[:, None]
    w = min(n - SYNCNET_WINDOW, len(audio_win))
    audio_win = audio_win[:w]
    boxes = face_boxes_from_landmarks(points[:n], config.box_smoothing)
    with torch.no_grad():
        video_emb = _lip_windows(frames(), boxes, w, model, config, device)
        audio_emb = torch.cat([model.embed_audio(audio_win[k:k + config.batch_size])
                               for k in range(0, w, config.batch_size)])
        result = lse_from_embeddings(video_emb, audio_emb, config.vshift)
    return {"available": True, **result, "frames": int(n),
            "weights": str(weights_path) if weights_path else None, "note": "; ".join(notes)}


# ================================================================================================
# FID
# ================================================================================================

_FID_HOW = (f"save a TorchScript Inception-v3 pool3 extractor ((B,3,299,299) in [0,1] -> (B,2048); recipe "
            f"in core/eval/pretrained.py) as {WEIGHTS_DIR / FID_FILE} or set {FID_ENV}=/path/to/file.pt")


def find_fid_extractor() -> Path | None:
    """``$EMODUB_FID_EXTRACTOR`` or ``~/.emodub/weights/fid_inception.pt`` when it exists."""
    return _find_weights(FID_ENV, FID_FILE)[0]


def load_fid_extractor(path: str | Path, device: str | torch.device = "cpu") -> tuple[Any, int]:
    """``(module, feature_dim)`` from a TorchScript file (``torch.jit.save``) or, for a ``.pt2`` file, a
    ``torch.export`` program (``torch.export.save``; export it with a dynamic batch dimension), checked
    on a dummy batch of 2.

    Raises:
        ValueError: not such a file, or its output is not (B, D).
    """
    import warnings

    path = Path(path)
    try:
        if path.suffix == ".pt2":
            module = torch.export.load(str(path)).module().to(device)
        else:
            with warnings.catch_warnings():  # recent torch marks TorchScript deprecated; it still loads
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location=torch.device(device))
                module.eval()
    except Exception as exc:  # noqa: BLE001 - torch raises several types for foreign files
        kind = "a torch.export program" if path.suffix == ".pt2" else "TorchScript"
        raise ValueError(f"cannot load {path} as {kind} ({exc})") from None
    try:
        with torch.no_grad():
            out = module(torch.rand(2, 3, FID_SIZE, FID_SIZE, device=device))
    except Exception as exc:  # noqa: BLE001 - whatever the user's module raises
        raise ValueError(f"{path} fails on a (2, 3, 299, 299) batch: {exc}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{path} maps (2, 3, 299, 299) to {shape}; a (2, D) feature tensor is needed")
    return module, int(out.shape[1])


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance² between N(mu1, sigma1) and N(mu2, sigma2):

        ||mu1 - mu2||² + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

    The matrix square root is scipy's ``sqrtm`` (as in the reference FID code); when it is not finite
    (singular covariances, e.g. fewer samples than dims) ``eps`` is added to both diagonals, and when
    it is still unusable (non-finite, or a large imaginary part) the trace is taken from the
    eigenvalues of ``s1^(1/2) s2 s1^(1/2)`` instead. Tiny imaginary parts from round-off are dropped.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    scale = max(1.0, float(np.abs(covmean).max())) if np.all(np.isfinite(covmean)) else 1.0
    if not np.all(np.isfinite(covmean)) or (
            np.iscomplexobj(covmean) and np.abs(np.diagonal(covmean).imag).max() > 1e-3 * scale):
        # sqrtm struggles with (near-)singular products; the trace needs only the eigenvalues of
        # s1 s2, which equal those of the symmetric PSD matrix s1^(1/2) s2 s1^(1/2)
        trace_sqrt = _trace_sqrt_product(s1, s2)
    else:
        trace_sqrt = float(np.trace(covmean.real))
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr((s1 s2)^(1/2)) for symmetric PSD s1, s2 via symmetric eigendecompositions."""
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    inner = root @ s2 @ root
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum())


class RunningStats:
    """Streaming mean and covariance of D-dimensional features (float64 sums: bounded memory)."""

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.total = np.zeros(dim)
        self.outer = np.zeros((dim, dim))

    def update(self, features: np.ndarray) -> None:
        """Add (B, D) features."""
        f = np.asarray(features, np.float64)
        self.n += len(f)
        self.total += f.sum(axis=0)
        self.outer += f.T @ f

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mu (D,), sigma (D, D))`` with the unbiased covariance."""
        if self.n < 2:
            raise ValueError(f"need at least 2 images for a covariance, got {self.n}")
        mu = self.total / self.n
        sigma = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, sigma


def activation_statistics(frames: Iterable[np.ndarray], extractor: Any, dim: int, batch_size: int = 16,
                          device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray, int]:
    """``(mu, sigma, n)`` of the extractor's features over (H, W, 3) uint8 RGB frames, streamed."""
    stats = RunningStats(dim)
    batch: list[np.ndarray] = []

    def flush() -> None:
        x = torch.from_numpy(np.stack(batch)).to(device).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
        with torch.no_grad():
            stats.update(extractor(x).double().cpu().numpy())
        batch.clear()

    for frame in frames:
        batch.append(np.asarray(frame))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    mu, sigma = stats.finish()
    return mu, sigma, stats.n


def fid_frames(pred_frames: Iterable[np.ndarray], ref_frames: Iterable[np.ndarray], *,
               extractor: str | Path | None = None, batch_size: int = 16,
               device: str | torch.device = "cpu") -> dict[str, Any]:
    """FID between two streams of (H, W, 3) uint8 RGB frames (see the module docstring).

    Returns:
        ``{"available": True, "fid", "frames_pred", "frames_ref", "feature_dim", "extractor", "note"}``
        or :func:`not_available`.
    """
    if extractor is not None:
        path: Path | None = Path(extractor)
        if not path.is_file():
            return not_available("fid", f"FID extractor {path} does not exist", _FID_HOW)
    else:
        path, why = _find_weights(FID_ENV, FID_FILE)
        if path is None:
            return not_available("fid", f"FID feature extractor not found: {why}", _FID_HOW)
    try:
        module, dim = load_fid_extractor(path, device)
    except ValueError as exc:
        return not_available("fid", str(exc), _FID_HOW)
    mu1, s1, n1 = activation_statistics(pred_frames, module, dim, batch_size, device)
    mu2, s2, n2 = activation_statistics(ref_frames, module, dim, batch_size, device)
    notes = []
    if dim != 2048:
        notes.append(f"the extractor gives {dim}-d features, not Inception pool3's 2048: not standard FID")
    if min(n1, n2) < dim:
        notes.append(f"fewer frames ({min(n1, n2)}) than feature dims ({dim}): FID is biased upwards; "
                     "compare only FIDs over equal frame counts")
    return {"available": True, "fid": frechet_distance(mu1, s1, mu2, s2), "frames_pred": n1, "frames_ref": n2,
            "feature_dim": dim, "extractor": str(path), "note": "; ".join(notes) or None}


def fid_videos(pred_video: str | Path, ref_video: str | Path, *, max_frames: int | None = None,
               extractor: str | Path | None = None, batch_size: int = 16,
               device: str | torch.device = "cpu") -> dict[str, Any]:
    """FID between the frames of two videos (streamed; see :func:`fid_frames`)."""
    from core.io.video import iter_frames

    return fid_frames(iter_frames(pred_video, max_frames=max_frames), iter_frames(ref_video, max_frames=max_frames),
                      extractor=extractor, batch_size=batch_size, device=device)


# ================================================================================================
# LPIPS (Zhang et al. 2018), VGG-16 variant
# ================================================================================================
# Two user-supplied files (nothing is downloaded):
# * torchvision's ImageNet VGG-16 ``vgg16-397923af.pth`` (``features.<i>.weight/bias``), at
#   ``~/.emodub/weights/vgg16-397923af.pth`` or ``EMODUB_VGG16``;
# * the lpips package's linear calibration ``lpips/weights/v0.1/vgg.pth`` (``lin<k>.model.1.weight``,
#   (1, C_k, 1, 1)), at ``~/.emodub/weights/lpips_vgg.pth`` or ``EMODUB_LPIPS_VGG``.
# LPIPS = sum over the five relu taps of the spatial mean of lin_k((f_k(x)/|f_k(x)| - f_k(y)/|f_k(y)|)^2),
# on images scaled to [-1, 1] and normalised by the lpips "scaling layer".

VGG16_FILE, VGG16_ENV = "vgg16-397923af.pth", "EMODUB_VGG16"
LPIPS_FILE, LPIPS_ENV = "lpips_vgg.pth", "EMODUB_LPIPS_VGG"
_VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_LPIPS_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in torchvision's features
_LPIPS_HOW = (f"put torchvision's {VGG16_FILE} and the lpips package's weights/v0.1/vgg.pth (renamed "
              f"{LPIPS_FILE}) in {WEIGHTS_DIR}, or set {VGG16_ENV} and {LPIPS_ENV}")


def vgg_features(layout: tuple[int | str, ...]) -> nn.Sequential:
    """VGG conv layers in torchvision's ``features`` layout (conv + ReLU per channel count, "M" = max-pool), so
    torchvision's weight files load by name (``features.<i>.weight``)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in layout:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """LPIPS distance with the VGG-16 backbone: (B, 3, H, W) pairs in [0, 1] -> (B,) (lower = more alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg_features(_VGG16_LAYOUT)
        widths = (64, 128, 256, 512, 512)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in widths)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    @classmethod
    def from_files(cls, vgg16: Path, lins: Path) -> LPIPS:
        model = cls()
        backbone = torch.load(vgg16, map_location="cpu", weights_only=True)
        own = {k: v for k, v in backbone.items() if k.startswith("features.") and
               int(k.split(".")[1]) < len(model.features)}
        model.features.load_state_dict({k[len("features."):]: v for k, v in own.items()})
        calibration = torch.load(lins, map_location="cpu", weights_only=True)
        for k, lin in enumerate(model.lins):
            lin.weight.data.copy_(calibration[f"lin{k}.model.1.weight"])
        return model.eval().requires_grad_(False)

    def _taps(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = ((image * 2.0 - 1.0) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _LPIPS_TAPS:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = pred.new_zeros(pred.shape[0])
        for lin, a, b in zip(self.lins, self._taps(pred), self._taps(target), strict=True):
            total = total + lin((a - b) ** 2).mean((1, 2, 3))
        return total


def find_lpips_weights() -> tuple[tuple[Path, Path] | None, str]:
    """((vgg16, lins), "") when both LPIPS files are present, else (None, why)."""
    vgg, why_vgg = _find_weights(VGG16_ENV, VGG16_FILE)
    lins, why_lins = _find_weights(LPIPS_ENV, LPIPS_FILE)
    if vgg is None or lins is None:
        return None, "; ".join(w for w in (why_vgg, why_lins) if w)
    return (vgg, lins), ""


def load_lpips(device: str | torch.device = "cpu") -> LPIPS | None:
    """The LPIPS network when its weights are present (``None`` otherwise: see :data:`_LPIPS_HOW`)."""
    found, _ = find_lpips_weights()
    return None if found is None else LPIPS.from_files(*found).to(device)


def lpips_unavailable() -> dict[str, Any]:
    _, why = find_lpips_weights()
    return not_available("lpips", why, _LPIPS_HOW)
