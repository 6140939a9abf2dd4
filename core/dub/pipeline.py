"""Dubbing: a tracked shot + new audio + per-frame emotion curves -> the dubbed shot, full resolution.

1. The new audio is loaded (any rate, mono mix), trimmed by ``audio_offset_s``/``audio_duration_s``.
2. The output length follows the audio (``length="audio"``) or the shot (``length="shot"``: the audio
   is cut or padded with silence). When the audio is longer than the shot, the shot's frames **loop**
   from its first frame (``end="loop"``, default) or its last frame is **held** (``end="hold"``).
3. The actor's a2e model predicts expression and jaw from the audio and the emotion curves. The shot's
   own head pose, neck, eye gaze, identity and blinks (blink/squint coefficients) are kept.
4. The renderer draws the face crops in chunks of frames (bounded memory for any length), each blended
   over the shot's crop inside the expanded face mask (READ Eq. 2).
5. Each crop is pasted back into the full-resolution plate through the inverse crop transform with a
   feathered mask, after a per-frame colour match of the face to the plate (mean shift inside the face),
   and the frames are encoded with the new audio (H.264 + AAC). Outside the feathered mask the plate's
   pixels are untouched.
6. ``report.json``/``report.md`` and ``emotions.png`` (emotion curves against predicted parameters).
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.workspace import Workspace, atomic_write_json, atomic_write_text

KEEP_FROM_SHOT = ("blink", "squint")  # expression coefficients the shot keeps (its own blinks)
PASTE_EXCLUDE = ("scalp", "ears", "neck")  # mesh regions whose plate pixels the dub keeps (paste_region "face")


@dataclass
class DubConfig:
    """Options of a dub.

    Attributes:
        length: ``"audio"`` (output as long as the new audio) or ``"shot"``.
        end: when the audio outlasts the shot: ``"loop"`` its frames from the start, or ``"hold"`` the last.
        chunk: frames whose UVs are rasterized and whose crops are gathered at once (memory bound).
        render_batch: frames per renderer call; ``None`` = 1 on CPU (a 256 px frame's UNet activations
            stay in cache: ~1.5x less CPU time per frame than 16 at once) and ``chunk`` on other devices.
        feather_px: width in crop pixels of the soft edge of the paste-back mask.
        colour_match: shift the rendered face's mean colour to the plate's, per frame.
        smooth: Savitzky-Golay smoothing of the predicted parameters (window 5, order 2).
        a2e_name, renderer_name: the actor's models to use.
        emotion_prior: emotions the actor has no labelled footage of come from the face model's generic
            FACS prior (:mod:`core.expression.emotion_prior`) instead of the network's untrained inputs.
        paste_region: ``"face"``: only the face (the mesh without scalp, ears and neck, in the union of the
            dubbed and the shot's own geometry, grown by ``paste_grow_px``) replaces the plate, so hair,
            ears and neck keep the plate's sharp pixels; ``"head"``: everything the mesh covers. Models
            without those region names use ``"head"``.
        paste_grow_px: crop pixels by which the face region is grown before feathering.
    """

    length: str = "audio"
    end: str = "loop"
    chunk: int = 16
    render_batch: int | None = None
    feather_px: int = 6
    colour_match: bool = True
    smooth: bool = True
    a2e_name: str = "a2e"
    renderer_name: str = "renderer"
    emotion_prior: bool = True
    paste_region: str = "face"
    paste_grow_px: int = 4

    def __post_init__(self) -> None:
        if self.length not in ("audio", "shot"):
            raise ValueError(f"length must be 'audio' or 'shot', got {self.length!r}")
        if self.paste_region not in ("face", "head"):
            raise ValueError(f"paste_region must be 'face' or 'head', got {self.paste_region!r}")
        if self.end not in ("loop", "hold"):
            raise ValueError(f"end must be 'loop' or 'hold', got {self.end!r}")


def source_indices(n_out: int, n_shot: int, end: str) -> np.ndarray:
    """Which shot frame each output frame shows (loop from the start, or hold the last)."""
    i = np.arange(n_out)
    return i % n_shot if end == "loop" else np.minimum(i, n_shot - 1)


def trim_audio(wave: np.ndarray, sr: int, offset_s: float, duration_s: float | None) -> np.ndarray:
    start = max(0, int(round(offset_s * sr)))
    stop = wave.shape[0] if duration_s is None else min(wave.shape[0], start + int(round(duration_s * sr)))
    return wave[start:stop]


def compose_params(prediction: Any, shot_params: Any, src: np.ndarray, expr_names: list[str]) -> Any:
    """Per-frame FaceParams: the shot's pose/neck/eyes/identity/blinks at ``src``, the a2e's
    expression and jaw elsewhere."""
    from core.morphable.data import FaceParams

    shot = shot_params.to_numpy()
    arrays = {k: v[src] for k, v in shot.items()}
    n_model = arrays["expression"].shape[1]
    predicted = np.zeros_like(arrays["expression"])
    n = min(n_model, prediction.expression.shape[1])
    predicted[:, :n] = prediction.expression[:, :n]
    keep = np.array([any(k in name for k in KEEP_FROM_SHOT) for name in expr_names[:n_model]] +
                    [False] * max(0, n_model - len(expr_names)))
    arrays["expression"] = np.where(keep[None], arrays["expression"], predicted)
    arrays["jaw_pose"] = prediction.jaw_pose.astype(np.float32)
    return FaceParams.from_numpy(arrays)


def feather(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Soft edge: (B,1,H,W) mask blurred by a box filter of ``2 * pixels + 1`` inside its own support."""
    if pixels <= 0:
        return mask
    # Both square filters are separable (row pass, then column pass): same result, ~3x faster.
    from core.neural_texture.model import expand_mask

    k = 2 * pixels + 1
    eroded = -expand_mask(-mask, pixels)
    rows = torch.nn.functional.avg_pool2d(eroded, (1, k), stride=1, padding=(0, pixels), count_include_pad=False)
    return torch.nn.functional.avg_pool2d(rows, (k, 1), stride=1, padding=(pixels, 0), count_include_pad=False)


def colour_match(rendered: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Shift each frame's rendered colour mean inside ``mask`` to the reference's (B,3,H,W)."""
    weight = mask.expand_as(rendered)
    total = weight.flatten(2).sum(2).clamp_min(1.0)
    shift = ((reference - rendered) * weight).flatten(2).sum(2) / total
    return (rendered + shift[:, :, None, None].clamp(-0.1, 0.1)).clamp(0, 1)


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ``ru_maxrss``: on Linux the latter survives
    fork + exec, so a worker started by a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 if sys.platform != "darwin" else 2**20)


class ShotReader:
    """Sequential full-resolution frames of the shot at the given source indices (re-opened to loop)."""

    def __init__(self, video: Path) -> None:
        self.video = video
        self._it: Iterator[np.ndarray] | None = None
        self._pos = -1
        self._frame: np.ndarray | None = None

    def get(self, index: int) -> np.ndarray:
        from core.io.video import iter_frames

        if self._it is None or index < self._pos:
            self._it, self._pos = iter_frames(self.video), -1
        while self._pos < index:
            try:
                self._frame = next(self._it)
            except StopIteration:
                break  # the shot ended early: hold its last frame
            self._pos += 1
        assert self._frame is not None, f"{self.video} has no frames"
        return self._frame


def dub(ws: Workspace, actor: str, shot: str, audio: Path, emotions: Any, out: Path | None = None,
        audio_offset_s: float = 0.0, audio_duration_s: float | None = None,
        config: DubConfig | None = None, device: str = "cpu",
        progress: Callable[[str, int, int, str], None] | None = None,
        render_name: str | None = None) -> dict[str, Any]:
    """Dub ``shot`` with ``audio`` and ``emotions`` (any form core.expression.a2e accepts)."""
    from core.audio.features import AudioFeatureConfig, make_extractor
    from core.expression.a2e import A2EModel
    from core.expression.emotion_prior import (
        EmotionPrior,
        actor_emotion_coverage,
        apply_prior,
        network_gate,
        route_emotions,
    )
    from core.io.audio import load_wav, write_wav
    from core.io.video import VideoWriter
    from core.landmarks.crop import CropTransform
    from core.neural_texture.data import (
        TrackedClip,
        cache_crops,
        rasterize_uv_and_region,
        region_faces,
        temporal_neighbours,
    )
    from core.neural_texture.model import expand_mask
    from core.neural_texture.pipeline import face_model_for, renderer_audio_config
    from core.neural_texture.train import load_renderer

    config = config or DubConfig()
    report = progress or (lambda *a: None)
    t_start = time.perf_counter()
    shot_dir = ws.shot_dir(shot)
    ws.shot(shot)  # clear error if the shot is unknown
    clip = TrackedClip.load(shot_dir)
    fps = clip.fps
    crop = CropTransform.load(shot_dir / "crop.json")
    face_model = face_model_for(shot_dir).to(device)
    a2e = A2EModel.load(ws.model_dir(actor, config.a2e_name), device)
    renderer = load_renderer(ws.model_dir(actor, config.renderer_name), device)

    native, native_sr = load_wav(audio)
    native = trim_audio(native, native_sr, audio_offset_s, audio_duration_s)
    if native.size == 0:
        raise ValueError(f"the dub audio {audio} is empty after offset {audio_offset_s}s; check the offset")
    n_shot = clip.n_frames
    n_out = (max(1, math.ceil(native.size / native_sr * fps - 1e-6)) if config.length == "audio" else n_shot)
    if config.length == "shot":  # cut or pad the audio to the shot
        want = int(round(n_out / fps * native_sr))
        native = np.pad(native[:want], (0, max(0, want - native.size)))
    sr16 = AudioFeatureConfig().sample_rate
    wave16, _ = load_wav(audio, sr16)
    wave16 = trim_audio(wave16, sr16, audio_offset_s, audio_duration_s)

    report("predict", 0, 1, "audio to expression")
    # Emotions the actor was never filmed with come from the face model's generic prior (emotion_prior).
    coverage = actor_emotion_coverage(ws.read_manifest(), actor)
    prior = EmotionPrior.for_expressions(face_model.expr_names) if config.emotion_prior else None
    prediction = a2e.predict(wave16, sr16, emotions, n_frames=n_out, fps=fps, smooth=config.smooth,
                             emotion_gate=network_gate(coverage, prior))
    to_prior, emotion_sources = route_emotions(prediction.emotion, coverage, prior)
    if prior is not None and to_prior.any():
        prediction.expression, prediction.jaw_pose = apply_prior(prediction.expression, prediction.jaw_pose,
                                                                 to_prior, prior)
    src = source_indices(n_out, n_shot, config.end)
    params = compose_params(prediction, clip.params, src, face_model.expr_names).to(device)
    report("predict", 1, 1, "audio to expression")

    audio_feats = None
    if renderer.config.audio_conditioned:
        audio_feats = torch.from_numpy(make_extractor("mfcc", renderer_audio_config(renderer.config))
                                       .extract(wave16, sr16, fps, n_out))
    crops = cache_crops(shot_dir, clip.size)
    render_name = render_name or f"{shot}-{time.strftime('%Y%m%d-%H%M%S')}"
    render_dir = ws.render_dir(render_name)
    render_dir.mkdir(parents=True, exist_ok=True)
    dub_wav = write_wav(render_dir / "audio.wav", native, native_sr)
    out = Path(out) if out else render_dir / "dubbed.mp4"
    camera = clip.camera.to(device)
    reader = ShotReader(shot_dir / "video.mp4")
    window = renderer.config.temporal_window
    render_batch = config.render_batch or (1 if torch.device(device).type == "cpu" else config.chunk)
    face_only = config.paste_region == "face" and all(r in face_model.regions for r in PASTE_EXCLUDE)
    paste_faces = region_faces(face_model, exclude=PASTE_EXCLUDE) if face_only else None
    shot_params = clip.params.to(device)
    t_render = time.perf_counter()
    with torch.no_grad(), VideoWriter(out, fps, audio=dub_wav) as writer:
        for start in range(0, n_out, config.chunk):
            idx = np.arange(start, min(n_out, start + config.chunk))
            neighbours = temporal_neighbours(idx, window, n_out)
            # Neighbours are mostly frames of this chunk: rasterize each needed frame once.
            needed = np.unique(np.concatenate([idx, neighbours.reshape(-1)]))
            uv_all, alpha_all, face_all = rasterize_uv_and_region(face_model, params[torch.as_tensor(needed)],
                                                                  camera, paste_faces)
            uv = uv_all[torch.as_tensor(np.searchsorted(needed, idx))]
            alpha = alpha_all[torch.as_tensor(np.searchsorted(needed, idx))]
            uv_window = (uv_all[torch.as_tensor(np.searchsorted(needed, neighbours.reshape(-1)))]
                         .reshape(len(idx), window * 2, *uv_all.shape[2:]) if window else None)
            frame = torch.from_numpy(np.stack([crops[int(s)] for s in src[idx]])).permute(0, 3, 1, 2)
            frame = frame.to(device).float() / 255.0
            audio_win = audio_feats[torch.as_tensor(idx)].to(device) if audio_feats is not None else None
            paste = None
            if face_all is not None:  # the face where it is now and where the shot had it (no leftover old chin)
                dubbed_face = face_all[torch.as_tensor(np.searchsorted(needed, idx))]
                shot_face = rasterize_uv_and_region(face_model, shot_params[torch.as_tensor(src[idx])], camera,
                                                    paste_faces)[2]
                paste = expand_mask(torch.maximum(dubbed_face, shot_face), config.paste_grow_px)
            for b0 in range(0, len(idx), render_batch):
                part = slice(b0, b0 + render_batch)
                out_t = renderer(uv[part], alpha[part], frame[part],
                                 None if uv_window is None else uv_window[part],
                                 None if audio_win is None else audio_win[part])
                image = out_t["image"]
                if config.colour_match:
                    image = colour_match(image, frame[part], alpha[part])
                region = out_t["alpha_expanded"] if paste is None else out_t["alpha_expanded"] * paste[part]
                mask = feather(region, config.feather_px)
                image_np = (image.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
                mask_np = mask[:, 0].cpu().numpy()
                for k, i in enumerate(idx[part]):
                    plate = reader.get(int(src[i]))
                    writer.write(crop.paste(image_np[k], plate, mask_np[k]))
            report("render", int(idx[-1]) + 1, n_out, f"frame {int(idx[-1]) + 1}/{n_out}")
    render_s = time.perf_counter() - t_render
    result = {"video": str(out), "frames": int(n_out), "fps": fps, "duration_s": n_out / fps,
              "shot_frames": n_shot, "length": config.length, "end": config.end,
              "audio": str(audio), "audio_offset_s": audio_offset_s, "render": render_name,
              "seconds": time.perf_counter() - t_start, "render_fps": n_out / max(render_s, 1e-9),
              "peak_rss_mb": _peak_rss_mb(), "emotion_sources": emotion_sources,
              "paste_region": "face" if face_only else "head", "config": asdict(config)}
    result["report"] = str(write_report(render_dir, result, prediction, wave16, sr16, fps))
    ws.set_render(render_name, {"video": ws.rel(out) if out.resolve().is_relative_to(ws.root) else str(out),
                                "shot": shot, "actor": actor, "frames": int(n_out), "fps": fps,
                                "report": ws.rel(result["report"])})
    return result


def write_report(render_dir: Path, result: dict[str, Any], prediction: Any, wave16: np.ndarray, sr: int,
                 fps: float) -> Path:
    """report.json, report.md and emotions.png (emotion curves against predicted parameters)."""
    from core.expression.emotions import EMOTIONS

    emotion = prediction.emotion
    names = list(prediction.expr_names)
    jaw = prediction.jaw_pose[:, 0]
    from core.eval.lipsync import audio_envelope

    envelope = audio_envelope(wave16, sr, fps, len(jaw))
    sync = _lipsync(jaw, envelope)
    used = [e for j, e in enumerate(EMOTIONS) if np.any(emotion[:, j] > 0)]
    sources = result.get("emotion_sources", {})
    stats = {e: {"max": float(emotion[:, EMOTIONS.index(e)].max()),
                 "mean": float(emotion[:, EMOTIONS.index(e)].mean()), "source": sources.get(e, "footage")}
             for e in used}
    report = {**result, "emotions": stats, "lipsync_proxy": sync,
              "jaw_open_mean": float(jaw.mean()), "jaw_open_std": float(jaw.std())}
    plot = _plot(render_dir / "emotions.png", emotion, prediction.expression, names, jaw, fps, used)
    report["plot"] = str(plot)
    path = atomic_write_json(render_dir / "report.json", report)
    lines = ["# emodub dub report", "",
             f"- video: `{result['video']}` ({result['frames']} frames at {fps:g} fps, "
             f"{result['duration_s']:.2f} s; shot has {result['shot_frames']} frames, end = {result['end']})",
             f"- audio: `{result['audio']}` (offset {result['audio_offset_s']} s)",
             f"- rendering: {result['render_fps']:.1f} frames/s, peak memory {result['peak_rss_mb']:.0f} MB",
             f"- lip-sync proxy (jaw opening vs audio envelope): peak correlation "
             f"{sync['peak_corr']:.2f} at offset {sync['offset_frames']} frames", "",
             "| emotion | max | mean | from |", "| --- | --- | --- | --- |"]
    lines += [f"| {e} | {s['max']:.2f} | {s['mean']:.2f} | {s['source']} |" for e, s in stats.items()] or [
        "| neutral | 0 | 0 | |"]
    lines += ["", "*from*: `footage` = learned from the actor's labelled clips; `prior` = the face model's generic "
              "expression (no footage of that emotion); `ignored` = neither."]
    lines += ["", "![emotion curves and parameters](emotions.png)", ""]
    atomic_write_text(render_dir / "report.md", "\n".join(lines))
    return path


def _lipsync(opening: np.ndarray, envelope: np.ndarray, max_offset: int = 10) -> dict[str, Any]:
    """Cross-correlation of predicted mouth opening with audio loudness (positive offset = video lags)."""
    from core.eval.lipsync import lipsync_proxy

    result = dict(lipsync_proxy(opening, envelope, max_offset=max_offset))
    result.pop("curve", None)
    return result


def _plot(path: Path, emotion: np.ndarray, expression: np.ndarray, names: list[str], jaw: np.ndarray,
          fps: float, used: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.expression.emotions import EMOTIONS
    from core.workspace import atomic_path

    t = np.arange(len(jaw)) / fps
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), dpi=100, sharex=True)
    for e in used or []:
        axes[0].plot(t, emotion[:, EMOTIONS.index(e)], label=e)
    axes[0].set_ylabel("emotion intensity")
    axes[0].set_ylim(-0.05, 1.05)
    if used:
        axes[0].legend(loc="upper right", fontsize=8)
    axes[1].plot(t, jaw, label="jaw open (rad)", color="k", linewidth=1)
    for key in ("smile_left", "frown_left", "brow_up_left", "brow_down_left", "brow_inner_up"):
        if key in names:
            axes[1].plot(t, expression[:, names.index(key)], label=key, linewidth=1)
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("predicted parameters")
    axes[1].legend(loc="upper right", fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def read_report(render_dir: Path) -> dict[str, Any]:
    return json.loads((render_dir / "report.json").read_text())
