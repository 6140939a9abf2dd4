"""The synthetic actor on screen: the procedural head rendered with an identity, albedo, SH lighting, a fixed
camera and a textured static background, plus the exact 2D landmarks of every frame.

:class:`SyntheticActor` turns per-frame :class:`~core.morphable.data.FaceParams` (or the parameter arrays of
:mod:`core.synthetic.corpus`) into RGB frames, streamed in chunks so a clip of any length renders in bounded
memory. Anti-aliasing is ``supersample`` x ``supersample`` supersampling: the head is rasterised at the
larger size over a black, transparent background, box-filtered down together with its coverage, and then
composited over the background (premultiplied alpha, so silhouettes blend with the backdrop).

:func:`render_clip` writes one complete synthetic clip into a workspace in the shared layout::

    actors/<actor>/clips/<clip>/video.mp4                  H.264, 25 fps, the audio muxed in (AAC)
    actors/<actor>/clips/<clip>/audio.wav                  16 kHz mono PCM16
    actors/<actor>/clips/<clip>/ground_truth/params.npz    FaceParams (N rows) + expr_names
    actors/<actor>/clips/<clip>/ground_truth/landmarks.npz lmk68 (N, 68, 2) px (centres at integers, as
                                                           detected landmarks), visible (N, 68), ...
    actors/<actor>/clips/<clip>/ground_truth/phonemes.json [[start_s, end_s, phoneme], ...]
    actors/<actor>/clips/<clip>/ground_truth/camera.json   the fixed camera, full-frame pixels
    actors/<actor>/clips/<clip>/ground_truth/actor.json    the actor's look: config, identity, SH lighting
    actors/<actor>/clips/<clip>/ground_truth/emotion.npy   (N, 7) float32 per-frame label

and :func:`build_corpus` / :func:`corpus_render_hook` plug the renderer into
:func:`core.synthetic.corpus.build_param_corpus` so a whole MEAD-like corpus gets videos.

Ground-truth landmarks are the model's iBUG-68 surface points projected with the clip camera. Occluded
landmarks (the far jaw contour of a turned head, points behind the nose) are *still the projected surface
points*, not moved to the silhouette as a 2D annotator would place them; ``visible`` says which ones the
z-buffer shows (the landmark is within ``visibility_tolerance_m`` of the nearest surface at its pixel).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from core.morphable.data import PROCEDURAL_EXPRESSIONS, FaceParams

if TYPE_CHECKING:
    from core.morphable.model import MorphableModel
    from core.render.camera import PerspectiveCamera
    from core.synthetic.corpus import CorpusClip, RenderHook
    from core.workspace import Workspace

SAMPLE_RATE = 16000
PARAM_KEYS: tuple[str, ...] = ("shape", "expression", "jaw_pose", "neck_pose", "eye_pose", "rotation",
                               "translation")
_WIDTHS = {"jaw_pose": 3, "neck_pose": 3, "eye_pose": 6, "rotation": 3, "translation": 3}


@dataclass(frozen=True)
class ActorConfig:
    """How the synthetic actor looks and is filmed.

    Attributes:
        size: output frame height = width in pixels (even: H.264 yuv420p needs even sides).
        fps: video frame rate.
        resolution: procedural head resolution (``"default"`` ~5,000 vertices, ``"small"`` ~1,700).
        identity_seed: seed of the identity (shape) coefficients.
        identity_scale: standard deviation of the shape coefficients (1 = each mode's typical size, a few
            millimetres); draws are clipped to +-2.5 standard deviations.
        shape: explicit identity coefficients (overrides ``identity_seed``); ``None`` draws them.
        albedo_seed: varies the skin blotches and iris streaks of the painted albedo.
        albedo_tint: RGB multiplier of the albedo (skin tone variation).
        key_light: direction *towards* the key light in world space (x = the head's left, y up, z towards
            the camera): upper left of the image, in front.
        key_intensity: RGB intensity of the key light (slightly warm).
        fill_light: direction towards the fill light (right of the image, a little below).
        fill_intensity: RGB intensity of the fill light (cool, weaker).
        ambient: RGB uniform sky radiance.
        focal_mm_equiv: 35 mm-equivalent focal length of the camera.
        camera_distance: metres from the camera to the head's vertical axis.
        camera_height: world height (m) of the camera and the point it looks at (the face's centre sits
            slightly below the head's origin); with the defaults the head fills about 60 % of the width.
        background_seed: seed of the static background texture.
        background_colors: (top, bottom) RGB colours of the backdrop gradient in [0, 1].
        background_texture: amplitude of the backdrop's multi-scale noise (0 = a flat gradient).
        supersample: anti-aliasing factor (rasterise at ``size * supersample``; 1 = off).
        visibility_tolerance_m: depth slack for the landmark visibility test.
        video_crf: x264 quality of the written videos (17 is visually lossless).
    """

    size: int = 256
    fps: float = 25.0
    resolution: str = "default"
    identity_seed: int = 0
    identity_scale: float = 0.8
    shape: tuple[float, ...] | None = None
    albedo_seed: int = 0
    albedo_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    key_light: tuple[float, float, float] = (-0.55, 0.5, 0.8)
    key_intensity: tuple[float, float, float] = (0.78, 0.74, 0.68)
    fill_light: tuple[float, float, float] = (0.7, -0.1, 0.6)
    fill_intensity: tuple[float, float, float] = (0.22, 0.24, 0.28)
    ambient: tuple[float, float, float] = (0.3, 0.3, 0.32)
    focal_mm_equiv: float = 50.0
    camera_distance: float = 0.5
    camera_height: float = 0.0
    background_seed: int = 0
    background_colors: tuple[tuple[float, float, float], tuple[float, float, float]] = field(
        default=((0.36, 0.42, 0.48), (0.16, 0.18, 0.22)))
    background_texture: float = 0.08
    supersample: int = 2
    visibility_tolerance_m: float = 0.006
    video_crf: int = 17

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if self.size < 16 or self.size % 2:
            raise ValueError(f"actor size must be an even number of pixels >= 16 (H.264 needs even sides), "
                             f"got {self.size}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {self.supersample}")
        if self.camera_distance <= 0.2:
            raise ValueError(f"camera_distance must exceed 0.2 m (the camera would be inside the head), "
                             f"got {self.camera_distance}")


@dataclass
class RenderedChunk:
    """A few consecutive rendered frames.

    Attributes:
        frames: (B, H, W, 3) uint8 RGB.
        landmarks: (B, 68, 2) float32 pixel coordinates (x right, y down, pixel centres at integer + 0.5).
        visible: (B, 68) bool, landmark not hidden by another part of the head.
        coverage: (B, H, W) float32 head coverage in [0, 1] (fractional on anti-aliased edges).
    """

    frames: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    coverage: np.ndarray


def background_texture(size: int | tuple[int, int], seed: int = 0,
                       colors: tuple[Sequence[float], Sequence[float]] = ((0.36, 0.42, 0.48),
                                                                          (0.16, 0.18, 0.22)),
                       texture: float = 0.08) -> np.ndarray:
    """A static studio-like backdrop: a vertical colour gradient, soft multi-scale noise and a vignette.

    Every size of the same seed shows the same pattern (the noise lives on fixed coarse grids that are
    resampled to the output size), so a clip rendered at 128 and at 512 pixels has the same backdrop.

    Returns:
        (H, W, 3) float32 in [0, 1].
    """
    H, W = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7301]))
    top, bottom = (np.asarray(c, np.float32) for c in colors)
    y = (np.arange(H, dtype=np.float32) + 0.5) / H
    x = (np.arange(W, dtype=np.float32) + 0.5) / W
    image = top[None, None] + (bottom - top)[None, None] * y[:, None, None] ** 1.2
    image = np.broadcast_to(image, (H, W, 3)).copy()
    # Octaves of bicubically upsampled random grids (1/f: coarse blotches dominate, fine grain stays).
    noise = torch.zeros(1, 3, H, W)
    for octave, cells in enumerate((3, 6, 12, 24, 48)):
        grid = torch.from_numpy(rng.standard_normal((1, 3, cells, cells)).astype(np.float32))
        grid[:, 1:] = 0.85 * grid[:, :1] + 0.15 * grid[:, 1:]  # mostly luminance, a little colour
        noise += F.interpolate(grid, size=(H, W), mode="bicubic", align_corners=False) * 0.6 ** octave
    image += texture * noise[0].permute(1, 2, 0).numpy()
    # A light soft spot behind the head and a vignette, as a backdrop lit by the key light.
    spot = np.exp(-(((x[None, :] - 0.42) / 0.45) ** 2 + ((y[:, None] - 0.35) / 0.55) ** 2))
    vignette = 1.0 - 0.35 * (((x[None, :] - 0.5) ** 2 + (y[:, None] - 0.5) ** 2) / 0.5)
    image = image * (vignette * (0.85 + 0.3 * spot))[..., None]
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def identity_coefficients(n_shape: int, seed: int = 0, scale: float = 0.8) -> np.ndarray:
    """(n_shape,) float32 identity coefficients ``N(0, scale^2)`` clipped to +-2.5 scale."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4242]))
    return np.clip(rng.standard_normal(n_shape) * scale, -2.5 * scale, 2.5 * scale).astype(np.float32)


class SyntheticActor:
    """The procedural head as a filmed actor (see the module docstring).

    Args:
        config: looks, lighting, camera and output size.
        device: where to render (``"cuda"`` when available makes long corpora much faster).
        model: an already loaded :class:`MorphableModel` to use instead of the procedural head of
            ``config.resolution`` (any model with the FLAME joints works; expression names it lacks are
            dropped).
    """

    def __init__(self, config: ActorConfig | None = None, device: torch.device | str = "cpu",
                 model: MorphableModel | None = None) -> None:
        from core.morphable.registry import load_model
        from core.render.camera import PerspectiveCamera
        from core.render.shading import sh_directional

        self.config = config or ActorConfig()
        self.config.validate()
        cfg = self.config
        self.device = torch.device(device)
        if model is None:
            model = load_model("procedural", device=self.device, resolution=cfg.resolution,
                               seed=cfg.albedo_seed)
        self.model = model.to(self.device)
        if self.model.albedo is None:
            raise ValueError(f"model {self.model.name!r} has no albedo texture to render the actor with")
        if cfg.shape is not None:
            identity = np.asarray(cfg.shape, np.float32)
            if identity.ndim != 1 or identity.size > self.model.n_shape:
                raise ValueError(f"config.shape must have at most {self.model.n_shape} coefficients, "
                                 f"got shape {identity.shape}")
        else:
            identity = identity_coefficients(self.model.n_shape, cfg.identity_seed, cfg.identity_scale)
        self.identity: np.ndarray = identity
        tint = torch.tensor(cfg.albedo_tint, dtype=torch.float32, device=self.device)
        self.texture = (self.model.albedo * tint).clamp(0.0, 1.0).permute(2, 0, 1)[None].contiguous()
        self.sh = (sh_directional(cfg.key_light, cfg.key_intensity, 0.0, device=self.device)
                   + sh_directional(cfg.fill_light, cfg.fill_intensity, cfg.ambient, device=self.device))
        eye = torch.tensor([[0.0, cfg.camera_height, cfg.camera_distance]], device=self.device)
        target = torch.tensor([0.0, cfg.camera_height, 0.0], device=self.device)
        fx = cfg.focal_mm_equiv / 36.0 * cfg.size
        self.camera: PerspectiveCamera = PerspectiveCamera.from_look_at(eye, target, cfg.size, fx=fx)
        ss = cfg.size * cfg.supersample
        self._camera_ss = self.camera.scaled(ss, ss)
        self.background: np.ndarray = background_texture(cfg.size, cfg.background_seed, cfg.background_colors,
                                                         cfg.background_texture)
        self._background_t = torch.from_numpy(self.background).to(self.device)
        self._expr_map = self._expression_map(PROCEDURAL_EXPRESSIONS)

    # ------------------------------------------------------------------ description
    @property
    def size(self) -> int:
        return self.config.size

    @property
    def fps(self) -> float:
        return self.config.fps

    def camera_json(self) -> dict[str, Any]:
        """The clip camera as the workspace's ``camera.json`` dict (full-frame pixels)."""
        from core.render.camera_io import camera_to_json

        return camera_to_json(self.camera)

    def actor_json(self) -> dict[str, Any]:
        """The resolved look of the actor (config, identity, SH coefficients) as written next to its clips
        (``ground_truth/actor.json``), so an evaluation can compare estimated lighting and shape with it."""
        from dataclasses import asdict

        return {"config": asdict(self.config), "model": self.model.name, "identity": self.identity.tolist(),
                "sh": self.sh[0].detach().cpu().double().tolist(),
                "sh_layout": "(9, 3) radiance coefficients in core.render.shading.sh_basis order, RGB columns"}

    def _expression_map(self, names: Sequence[str]) -> torch.Tensor:
        """(len(names), E_model) matrix taking weights named ``names`` onto the model's expression modes."""
        out = torch.zeros(len(names), self.model.n_expr)
        for i, name in enumerate(names):
            for j in self.model.expression_indices(str(name)):
                out[i, j] = 1.0
        return out.to(self.device)

    # ------------------------------------------------------------------ parameters
    def face_params(self, params: FaceParams | Mapping[str, Any]) -> FaceParams:
        """Parameters ready for the model (its device, dtype and expression layout).

        Args:
            params: :class:`FaceParams` in the model's own layout, or a mapping of arrays as written by
                :mod:`core.synthetic.corpus` (``expression`` (N, E) in the order of ``expr_names`` when
                given, else of :data:`PROCEDURAL_EXPRESSIONS`; ``shape`` (N or 1, S<=model's); missing pose
                arrays count as zero). An empty ``shape`` is the model's mean identity, exactly as the
                ground truth says: the actor's own :attr:`identity` is used only when the caller stores it.
        """
        if isinstance(params, FaceParams):
            return params.to(self.device, self.model.dtype)
        if "expression" not in params:
            raise KeyError("face parameters need at least an 'expression' array (N, E)")
        expression = torch.as_tensor(np.asarray(params["expression"], np.float32), device=self.device)
        if expression.ndim != 2:
            raise ValueError(f"expression must be (N, E), got shape {tuple(expression.shape)}")
        n = expression.shape[0]
        names = params.get("expr_names")
        mapping = (self._expr_map if names is None else
                   self._expression_map([str(s) for s in np.asarray(names).tolist()]))
        if mapping.shape[0] != expression.shape[1]:
            raise ValueError(f"expression has {expression.shape[1]} columns but {mapping.shape[0]} names "
                             f"({'expr_names' if names is not None else 'PROCEDURAL_EXPRESSIONS'})")
        values: dict[str, torch.Tensor] = {"expression": expression @ mapping}
        for key, width in _WIDTHS.items():
            if key in params and params[key] is not None:
                arr = torch.as_tensor(np.asarray(params[key], np.float32), device=self.device)
                if tuple(arr.shape) != (n, width):
                    raise ValueError(f"{key} must be ({n}, {width}), got {tuple(arr.shape)}")
                values[key] = arr
            else:
                values[key] = torch.zeros(n, width, device=self.device)
        shape = np.asarray(params.get("shape", np.zeros((n, 0))), np.float32)
        shape = shape.reshape(shape.shape[0] if shape.ndim == 2 else 1, -1)
        if shape.shape[1] > self.model.n_shape:
            raise ValueError(f"shape has {shape.shape[1]} coefficients, the model only {self.model.n_shape}")
        padded = np.zeros((shape.shape[0], self.model.n_shape), np.float32)
        padded[:, :shape.shape[1]] = shape
        values["shape"] = torch.as_tensor(padded, device=self.device).expand(n, -1).contiguous()
        return FaceParams(**values)

    def neutral_params(self, n: int = 1, with_identity: bool = True) -> FaceParams:
        """``n`` frames of the actor at rest (its own identity unless ``with_identity`` is False)."""
        params = self.model.zero_params(n)
        if with_identity:
            params.shape[:, :self.identity.size] = torch.as_tensor(self.identity, device=self.device)
        return params

    # ------------------------------------------------------------------ rendering
    @torch.no_grad()
    def render_chunk(self, params: FaceParams | Mapping[str, Any]) -> RenderedChunk:
        """Render a few frames at once (all of ``params``; use :meth:`iter_chunks` for long clips)."""
        from core.render.shading import render_mesh

        p = self.face_params(params)
        B = p.batch_size
        out = self.model(p)
        ss = self.config.supersample
        cam = self._camera_ss.expand(B)
        model = self.model
        image, fragments = render_mesh(out.vertices, model.faces, cam, model.uvs, model.uv_faces,
                                       self.texture, self.sh.expand(B, 9, 3), background=None,
                                       cull_backfaces=True)
        image = image.permute(0, 3, 1, 2)
        coverage = fragments.mask.to(image.dtype)[:, None]
        if ss > 1:  # box filter of the premultiplied colour and of the coverage
            image = F.avg_pool2d(image, ss)
            coverage = F.avg_pool2d(coverage, ss)
        frame = image.clamp(0.0, 1.0) + (1.0 - coverage) * self._background_t.permute(2, 0, 1)[None]
        frames = (frame.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)
        # Landmarks: project with the output camera; visibility from the supersampled z-buffer.
        xy, depth = self.camera.expand(B).project(out.landmarks)
        visible = self._visible(xy * ss, depth, fragments)
        return RenderedChunk(frames=frames.cpu().numpy(), landmarks=xy.float().cpu().numpy(),
                             visible=visible.cpu().numpy(), coverage=coverage[:, 0].float().cpu().numpy())

    def _visible(self, xy: torch.Tensor, depth: torch.Tensor, fragments: Any) -> torch.Tensor:
        """(B, 68) landmark not occluded: inside the image, on a covered pixel, near the visible depth."""
        B, H, W = fragments.mask.shape
        col = xy[..., 0].floor().long()
        row = xy[..., 1].floor().long()
        inside = (col >= 0) & (col < W) & (row >= 0) & (row < H)
        batch = torch.arange(B, device=xy.device)[:, None]
        flat = (batch * H + row.clamp(0, H - 1)) * W + col.clamp(0, W - 1)
        covered = fragments.mask.reshape(-1)[flat]
        surface = fragments.depth.reshape(-1)[flat]
        return inside & covered & (depth <= surface + self.config.visibility_tolerance_m)

    def iter_chunks(self, params: FaceParams | Mapping[str, Any], chunk: int = 16) -> Iterator[RenderedChunk]:
        """Render ``params`` (N frames) in chunks of at most ``chunk`` frames (bounded memory)."""
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        p = self.face_params(params)
        for start in range(0, p.batch_size, chunk):
            yield self.render_chunk(p[start:start + chunk])

    def render_frames(self, params: FaceParams | Mapping[str, Any], chunk: int = 16) -> Iterator[np.ndarray]:
        """Yield N (H, W, 3) uint8 RGB frames, rendering ``chunk`` frames at a time."""
        for rendered in self.iter_chunks(params, chunk):
            yield from rendered.frames

    @torch.no_grad()
    def landmarks_2d(self, params: FaceParams | Mapping[str, Any]) -> np.ndarray:
        """(N, 68, 2) float32 pixel positions of the model's iBUG-68 landmarks (projected surface points;
        occluded ones included, see the module docstring)."""
        p = self.face_params(params)
        xy, _ = self.camera.expand(p.batch_size).project(self.model(p).landmarks)
        return xy.float().cpu().numpy()

    # ------------------------------------------------------------------ clips
    def write_video(self, clip_dir: str | Path, params: FaceParams | Mapping[str, Any],
                    audio: str | Path | None = None, chunk: int = 16,
                    should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Render ``video.mp4`` (audio muxed in) and ``ground_truth/{landmarks.npz, camera.json, actor.json}``.

        Every file is written atomically; the video appears only when fully encoded.

        Args:
            clip_dir: the clip folder.
            params: the clip's per-frame ground-truth parameters (N frames).
            audio: wav to mux into the video (default: ``clip_dir/audio.wav`` when it exists).
            chunk: frames rendered at once.
            should_stop: polled between chunks; returning True aborts (nothing is written).

        Returns:
            ``{"frames", "width", "height", "fps"}``.
        """
        from core.io.video import VideoWriter
        from core.workspace import atomic_save_npz, atomic_write_json

        clip_dir = Path(clip_dir)
        gt = clip_dir / "ground_truth"
        gt.mkdir(parents=True, exist_ok=True)
        if audio is None and (clip_dir / "audio.wav").is_file():
            audio = clip_dir / "audio.wav"
        p = self.face_params(params)
        landmarks: list[np.ndarray] = []
        visible: list[np.ndarray] = []
        with VideoWriter(clip_dir / "video.mp4", self.fps, audio=audio, crf=self.config.video_crf,
                         preset="fast", keyint=int(round(2 * self.fps))) as writer:
            for rendered in self.iter_chunks(p, chunk):
                if should_stop is not None and should_stop():
                    raise InterruptedError("rendering stopped")
                writer.write_many(rendered.frames)
                landmarks.append(rendered.landmarks)
                visible.append(rendered.visible)
        n = p.batch_size
        lmk = np.concatenate(landmarks, 0).astype(np.float32)
        vis = np.concatenate(visible, 0)
        # The landmarks-stage layout (lmk68, confidence, detected, interpolated, flagged) plus visibility,
        # so ground truth can stand in wherever detected landmarks are read; hence also the detectors' pixel
        # convention (centres at integers), 0.5 px from the camera's (centres at +0.5).
        atomic_save_npz(gt / "landmarks.npz", lmk68=lmk - 0.5, visible=vis, confidence=np.ones(n, np.float32),
                        detected=np.ones(n, bool), interpolated=np.zeros(n, bool), flagged=np.zeros(n, bool))
        atomic_write_json(gt / "camera.json", self.camera_json())
        atomic_write_json(gt / "actor.json", self.actor_json())
        return {"frames": int(n), "width": int(self.size), "height": int(self.size), "fps": float(self.fps)}


# ====================================================================== workspace clips and corpora


def params_to_arrays(params: FaceParams | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """FaceParams or a mapping -> float32 numpy arrays of :data:`PARAM_KEYS` (+ ``expr_names`` if given)."""
    if isinstance(params, FaceParams):
        return {k: np.asarray(v, np.float32) for k, v in params.to_numpy().items()}
    out = {k: np.asarray(params[k], np.float32) for k in PARAM_KEYS if k in params}
    if "expr_names" in params:
        out["expr_names"] = np.asarray(params["expr_names"])
    return out


def render_clip(ws: Workspace, synthetic: SyntheticActor, actor: str, clip: str,
                params: FaceParams | Mapping[str, Any], wave: np.ndarray, sr: int, timing: Any,
                emotion_vec: np.ndarray | Sequence[float], *, source: str = "synthetic",
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write one complete synthetic clip (video with audio, wav, ground truth) and its manifest record.

    Args:
        ws: the workspace.
        synthetic: the renderer.
        actor, clip: names in the workspace.
        params: N frames of ground-truth parameters (FaceParams in the model's layout, or corpus arrays
            in the order of :data:`PROCEDURAL_EXPRESSIONS`).
        wave: (S,) float audio in [-1, 1]; resampled to 16 kHz when ``sr`` differs.
        sr: its sample rate.
        timing: a :class:`~core.synthetic.phonemes.PhonemeTiming` (``to_json()``) or ``[[start, end, ph]]``.
        emotion_vec: (7,) constant or (N, 7) per-frame intensities (order of ``EMOTIONS``).
        source: the record's ``source`` string.
        extra: more record fields (e.g. ``sentence``).

    Returns:
        The manifest record written.
    """
    from core.expression.emotions import EMOTIONS, N_EMOTIONS
    from core.io.audio import resample, write_wav
    from core.workspace import atomic_path, atomic_save_npz, atomic_write_json

    arrays = params_to_arrays(params)
    n = int(arrays["expression"].shape[0])
    emotion = np.asarray(emotion_vec, np.float32)
    emotion = np.repeat(emotion.reshape(1, -1), n, 0) if emotion.ndim == 1 else emotion
    if emotion.shape != (n, N_EMOTIONS):
        raise ValueError(f"emotion_vec must be ({N_EMOTIONS},) or ({n}, {N_EMOTIONS}), got {emotion.shape}")
    audio = np.asarray(wave, np.float32).reshape(-1)
    if int(sr) != SAMPLE_RATE:
        audio = resample(audio, int(sr), SAMPLE_RATE)
    clip_dir = ws.clip_dir(actor, clip)
    gt = clip_dir / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    write_wav(clip_dir / "audio.wav", audio, SAMPLE_RATE)
    if "expr_names" not in arrays and not isinstance(params, FaceParams):
        arrays["expr_names"] = np.array(PROCEDURAL_EXPRESSIONS)
    elif isinstance(params, FaceParams):
        arrays["expr_names"] = np.array(synthetic.model.expr_names)
    atomic_save_npz(gt / "params.npz", **arrays)
    phonemes = timing.to_json() if hasattr(timing, "to_json") else [list(t) for t in timing]
    atomic_write_json(gt / "phonemes.json", phonemes)
    with atomic_path(gt / "emotion.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, emotion.astype(np.float32))
    video = synthetic.write_video(clip_dir, arrays, clip_dir / "audio.wav")
    mean = emotion.mean(0)
    label = {name: round(float(v), 4) for name, v in zip(EMOTIONS, mean, strict=True) if v > 0}
    record: dict[str, Any] = {
        "video": ws.rel(clip_dir / "video.mp4"), "audio": ws.rel(clip_dir / "audio.wav"), "fps": video["fps"],
        "frames": video["frames"], "width": video["width"], "height": video["height"],
        "duration_s": float(len(audio) / SAMPLE_RATE), "emotion": label, "source": source, "synthetic": True,
        "stages": {"ground_truth": True}, "ground_truth": ws.rel(gt),
    }
    if extra:
        record.update(extra)
    ws.set_clip(actor, clip, record)
    return record


def corpus_render_hook(ws: Workspace, synthetic: SyntheticActor, chunk: int = 16,
                       on_clip: Callable[[str], None] | None = None,
                       should_stop: Callable[[], bool] | None = None) -> RenderHook:
    """The ``render`` hook of :func:`core.synthetic.corpus.build_param_corpus`: renders ``video.mp4`` (the
    clip's audio muxed in) and the ground-truth landmarks and camera, returns the record updates.

    ``on_clip(clip_name)`` is called before each clip is rendered (for progress messages);
    ``should_stop()`` is polled between frame chunks and aborts the clip with ``InterruptedError`` (its video
    is not written; the caller removes the clip's other files)."""

    def render(clip_dir: Path, params: dict[str, np.ndarray], record: dict[str, Any]) -> dict[str, Any]:
        if on_clip is not None:
            on_clip(Path(clip_dir).name)
        fps = float(record.get("fps", synthetic.fps))
        if abs(fps - synthetic.fps) > 1e-6:
            raise ValueError(f"the corpus runs at {fps} fps but the actor renders at {synthetic.fps} fps")
        info = synthetic.write_video(clip_dir, params, Path(clip_dir) / "audio.wav", chunk=chunk,
                                     should_stop=should_stop)
        return {"video": ws.rel(Path(clip_dir) / "video.mp4"), "width": info["width"],
                "height": info["height"], "frames": info["frames"],
                "ground_truth": ws.rel(Path(clip_dir) / "ground_truth"),
                "stages": {**record.get("stages", {}), "ground_truth": True}}

    return render


def build_corpus(ws: Workspace, synthetic: SyntheticActor, actor: str = "synthetic", n_sentences: int = 4,
                 emotions: Sequence[str] | None = None, intensities: Sequence[float] | None = None,
                 seed: int = 0, render_video: bool = True, words: tuple[int, int] = (3, 7),
                 progress: Callable[[int, int], None] | None = None, overwrite: bool = False,
                 chunk: int = 16, on_clip: Callable[[str], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> list[CorpusClip]:
    """A MEAD-like corpus of the synthetic actor: sentences x emotions x intensities, with videos.

    Thin wrapper of :func:`core.synthetic.corpus.build_param_corpus` that stores the actor's identity in
    the ground truth and renders every clip with :func:`corpus_render_hook`. Deterministic for ``seed``;
    an interrupted build resumes (finished clips are kept unless ``overwrite``).

    Args:
        ws: the workspace.
        synthetic: the renderer (its ``fps`` is the corpus frame rate).
        actor: actor name in the workspace.
        n_sentences: distinct random sentences.
        emotions: emotion names (default: all eight MEAD emotions, neutral included).
        intensities: intensities in (0, 1] of the non-neutral emotions (default MEAD's 0.33, 0.66, 1.0).
        seed: corpus seed.
        render_video: False writes audio and parameters only (no video).
        words: (min, max) words per sentence.
        progress: ``progress(done, total)`` after each finished clip (raise in it to stop between clips).
        overwrite: rebuild clips that already exist.
        chunk: frames rendered at once.
        on_clip: called with each clip's name before it is rendered.
        should_stop: polled between frame chunks; True aborts the clip being rendered (``InterruptedError``).
    """
    from core.consent import record_synthetic_consent
    from core.expression.emotions import MEAD_EMOTIONS, MEAD_INTENSITIES
    from core.synthetic.corpus import build_param_corpus

    clips = build_param_corpus(
        ws, actor, n_sentences, emotions=tuple(emotions or MEAD_EMOTIONS),
        intensities=tuple(intensities or MEAD_INTENSITIES.values()), seed=seed, fps=synthetic.fps,
        render=corpus_render_hook(ws, synthetic, chunk, on_clip, should_stop) if render_video else None,
        words=words,
        identity=synthetic.identity, progress=progress, overwrite=overwrite)
    # The synthetic actor is no real person: its consent record says so (core.consent).
    record_synthetic_consent(ws, actor, "core.synthetic.actor.build_corpus")
    return clips


def read_ground_truth(clip_dir: str | Path) -> dict[str, Any]:
    """Everything under a synthetic clip's ``ground_truth/``: ``params`` (dict of arrays), ``lmk68``,
    ``visible``, ``emotion`` (N, 7), ``phonemes``, ``camera`` (the camera.json dict) and ``actor``
    (actor.json: config, identity, SH lighting); ``lmk68``, ``visible``, ``camera`` and ``actor`` exist once
    the clip has a video."""
    gt = Path(clip_dir) / "ground_truth"
    with np.load(gt / "params.npz") as data:
        params = {k: data[k] for k in data.files}
    out: dict[str, Any] = {"params": params, "emotion": np.load(gt / "emotion.npy"),
                           "phonemes": json.loads((gt / "phonemes.json").read_text(encoding="utf-8"))}
    if (gt / "landmarks.npz").is_file():
        with np.load(gt / "landmarks.npz") as data:
            out["lmk68"], out["visible"] = data["lmk68"], data["visible"]
    for name in ("camera", "actor"):
        if (gt / f"{name}.json").is_file():
            out[name] = json.loads((gt / f"{name}.json").read_text(encoding="utf-8"))
    return out


def head_pose(yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """(3,) axis-angle of a head turned by yaw (about y; positive turns the face towards its left, the image's
    right), pitch (about x; positive tips the face down) and roll (about z, the viewing axis; positive turns
    the top of the head towards the image's left), composed about the fixed world axes in that order:
    ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)``."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_euler("yxz", [math.radians(yaw_deg), math.radians(pitch_deg), math.radians(roll_deg)])
    return rot.as_rotvec().astype(np.float32)
