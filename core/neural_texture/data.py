"""What the neural-texture renderer trains and renders from: rasterized UVs of the tracked mesh,
square face crops of the footage, and audio-feature windows, all frame-aligned.

A tracked clip (or shot) folder holds ``video.mp4``, ``audio.wav``, ``crop.json`` and
``tracking/{params.npz, camera.json}`` (camera in crop space). :class:`ClipFrames` decodes the crops
once into a cache (``renderer_cache/frames_<S>.npy``, uint8, memory-mapped afterwards) so training
reads frames without re-decoding the video; UVs are rasterized on demand in small batches.

Audio: READ conditions the texture on Wav2Vec2 phoneme posteriors; without those weights we use the
same MFCC windows as the a2e network (``core.audio``), centred on each video frame. Emotion and
identity leak less into MFCCs of one actor than into raw audio, and the renderer only needs the
mouth-shape information they carry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.morphable.data import FaceParams
from core.morphable.model import MorphableModel
from core.render.camera import PerspectiveCamera
from core.render.raster import interpolate, rasterize


def rasterize_uv(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rasterize the posed mesh to UV coordinates.

    Args:
        model: the face model (its ``uvs``/``uv_faces`` give the texture layout).
        params: B frames of parameters.
        camera: one camera (broadcast) or B cameras.

    Returns:
        uv (B, 2, H, W) in [0, 1] (0 off the mesh) and alpha (B, 1, H, W) coverage in {0, 1}.
    """
    uv, alpha, _ = rasterize_uv_and_region(model, params, camera)
    return uv, alpha


def rasterize_uv_and_region(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera,
                            selected_faces: torch.Tensor | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`rasterize_uv`, plus (B, 1, H, W) the coverage of ``selected_faces`` ((F,) bool, e.g. from
    :func:`region_faces`) from the same rasterization (``None`` when not asked for)."""
    B = params.batch_size
    cam = camera.expand(B) if camera.batch_size == 1 and B > 1 else camera
    verts = model(params).vertices
    fragments = rasterize(cam.to_screen(verts), model.faces, cam.image_size, cull_backfaces=True)
    face_uvs = model.uvs[model.uv_faces][None]                      # (1, F, 3, 2)
    uv = interpolate(fragments, face_uvs.to(verts.dtype))           # (B, H, W, 2)
    alpha = fragments.mask.to(verts.dtype)[:, None]
    region = None
    if selected_faces is not None:
        hit = fragments.pix_to_face.clamp_min(0)
        region = (selected_faces.to(hit.device)[hit] & fragments.mask)[:, None].to(verts.dtype)
    return uv.permute(0, 3, 1, 2) * alpha, alpha, region


def region_faces(model: MorphableModel, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
                 ) -> torch.Tensor:
    """(F,) bool: triangles whose vertices all lie in the ``include`` regions (any vertex when empty) and
    none in the ``exclude`` regions (``model.regions`` names)."""
    device = model.faces.device
    inside = torch.zeros(model.n_vertices, dtype=torch.bool, device=device)
    for name in include:
        inside |= model.regions[name].to(device)
    if not include:
        inside = ~inside
    for name in exclude:
        inside &= ~model.regions[name].to(device)
    return inside[model.faces].all(1)


def temporal_neighbours(index: np.ndarray, window: int, n_frames: int) -> np.ndarray:
    """Indices of the W_R neighbours of each frame (W_R even: W_R/2 before and after; odd: one more
    after), clamped at the clip's ends. (B,) -> (B, W_R)."""
    before = window // 2
    offsets = np.array([o for o in range(-before, window - before + 1) if o != 0][:window])
    return np.clip(index[:, None] + offsets[None], 0, n_frames - 1)


@dataclass
class TrackedClip:
    """A tracked clip's arrays (all frame-aligned, N frames)."""

    folder: Path
    params: FaceParams
    camera: PerspectiveCamera
    fps: float
    size: int

    @classmethod
    def load(cls, folder: Path) -> TrackedClip:
        from core.render.camera_io import load_camera

        missing = [p for p in ("crop.json", "tracking/params.npz", "tracking/camera.json")
                   if not (folder / p).exists()]
        if missing:
            raise FileNotFoundError(f"{folder} is not tracked (missing {', '.join(missing)}); "
                                    "run `emodub track` on it first")
        camera = load_camera(folder / "tracking" / "camera.json")
        crop = json.loads((folder / "crop.json").read_text())
        probe = json.loads((folder / "probe.json").read_text()) if (folder / "probe.json").exists() else {}
        fps = float(probe.get("fps") or probe.get("target_fps") or 25.0)
        return cls(folder, FaceParams.load(folder / "tracking" / "params.npz"), camera, fps,
                   int(crop["out_size"]))

    @property
    def n_frames(self) -> int:
        return self.params.batch_size


def cache_crops(folder: Path, size: int) -> np.ndarray:
    """(N, S, S, 3) uint8 square crops of ``folder/video.mp4`` (cached, memory-mapped)."""
    from core.io.video import iter_frames
    from core.landmarks.crop import CropTransform
    from core.workspace import atomic_path

    cache = folder / "renderer_cache" / f"frames_{size}.npy"
    if not cache.exists():
        crop = CropTransform.load(folder / "crop.json")
        frames = [crop.crop_image(f) for f in iter_frames(folder / "video.mp4")]
        array = np.stack(frames)
        if array.shape[1] != size:
            from core.landmarks.crop import resize_image

            array = np.stack([resize_image(f, size, size) for f in array])
        with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
            np.save(fh, array)
    return np.load(cache, mmap_mode="r")


class ClipFrames:
    """Training/evaluation samples of one tracked clip for the renderer (a ``RendererSample``).

    Args:
        clip: the tracked clip.
        model: the face model it was tracked with.
        audio_features: (N, T_a, D_a) windows per frame, or ``None`` for the static variant.
        temporal_window: W_R.
        frames: which frame indices this source exposes (e.g. the first 80% for training).
    """

    def __init__(self, clip: TrackedClip, model: MorphableModel, audio_features: np.ndarray | None,
                 temporal_window: int, frames: np.ndarray | None = None) -> None:
        self.clip = clip
        self.model = model
        self.audio = None if audio_features is None else torch.from_numpy(np.asarray(audio_features))
        self.window = temporal_window
        self.frames = np.arange(clip.n_frames) if frames is None else np.asarray(frames)
        self.crops = cache_crops(clip.folder, clip.size)
        if len(self.crops) < clip.n_frames:
            raise ValueError(f"{clip.folder}: video has {len(self.crops)} frames, tracking {clip.n_frames}")

    def __len__(self) -> int:
        return len(self.frames)

    def uv_for(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return rasterize_uv(self.model, self.clip.params[torch.as_tensor(indices)], self.clip.camera)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        index = int(self.frames[i])
        neighbours = temporal_neighbours(np.array([index]), self.window, self.clip.n_frames)[0]
        uv, alpha = self.uv_for(np.concatenate([[index], neighbours]))
        frame = torch.from_numpy(np.array(self.crops[index])).permute(2, 0, 1).float() / 255.0
        sample = {"frame": frame, "uv": uv[0], "alpha": alpha[0],
                  "uv_window": uv[1:].reshape(-1, *uv.shape[2:])}
        if self.audio is not None:
            sample["audio"] = self.audio[index]
        return sample


class ConcatSource:
    """Several ``RendererSample`` sources as one."""

    def __init__(self, sources: list[ClipFrames]) -> None:
        self.sources = [s for s in sources if len(s)]
        self.offsets = np.cumsum([0] + [len(s) for s in self.sources])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.sources[k][i - int(self.offsets[k])]
