"""Dubbing: a tracked shot + new audio + per-frame emotion curves -> the dubbed shot, full resolution.

1. The new audio is loaded (any rate, mono mix), trimmed by ``audio_offset_s``/``audio_duration_s``.
2. The output length follows the audio (``length="audio"``) or the shot (``length="shot"``: the audio
   is cut or padded with silence). When the audio is longer than the shot, the shot's frames **loop**
   from its first frame (``end="loop"``, default) or its last frame is **held** (``end="hold"``).
3. The actor's a2e model predicts expression and jaw from the audio and the emotion curves. The shot's
   own head pose, neck, eye gaze, identity and blinks (blink/squint coefficients) are kept.
4. The actor's renderer (any variant, :mod:`core.renderers`) draws the face crops in chunks of frames
   (bounded memory for any length) over the shot's crops, at the crop size it was trained at.
5. Each crop is pasted back into the full-resolution plate through the inverse crop transform with a
   feathered mask, after a per-frame colour match of the face to the plate (mean shift inside the face),
   and the frames are encoded with the new audio (H.264 + AAC), at the shot's exact frame rate and with the
   source's timecode. With a delivery format (``config.format``: ProRes, 16-bit PNG or EXR sequences) or a
   matte (``config.matte``), the face is composited over the *source* plate at its own precision and
   resolution with the exact paste of :mod:`core.delivery` (every pixel outside the matte is the decoded
   plate's), written in that format, and the H.264 review file is made from the same frames.
6. ``report.json``/``report.md`` and ``emotions.png`` (emotion curves against predicted parameters), and
   ``params.npz``: the face parameters rendered on every output frame. The report and the outputs' metadata
   carry the provenance (:mod:`core.delivery.provenance`): engine version, actor, consent record, model hashes.

Nothing is dubbed without the actor's consent record (:mod:`core.consent`). A shot with several faces is dubbed
on the face the user chose (``face``; see :mod:`core.landmarks.faces`), the others keep the plate.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.workspace import Workspace, atomic_write_json, atomic_write_text

KEEP_FROM_SHOT = ("blink", "squint")  # expression coefficients the shot keeps (its own blinks)


@dataclass
class DubConfig:
    """Options of a dub.

    Attributes:
        length: ``"audio"`` (output as long as the new audio) or ``"shot"``.
        end: when the audio outlasts the shot: ``"loop"`` its frames from the start, or ``"hold"`` the last.
        chunk: frames handed to the renderer at once (memory bound).
        feather_px: width in crop pixels of the soft edge of the paste-back mask.
        colour_match: shift the rendered face's mean colour to the plate's, per frame.
        smooth: Savitzky-Golay smoothing of the predicted parameters (window 5, order 2).
        a2e_name: the actor's a2e model.
        renderer_name: the actor's renderer model (any variant; the dub job picks the actor's best when the
            user names none).
        emotion_prior: emotions the actor has no labelled footage of come from the face model's generic
            FACS prior (:mod:`core.expression.emotion_prior`) instead of the network's untrained inputs.
        emotion_source: ``"auto"``: each emotion from the actor's labelled footage where it was filmed, else from
            the generic prior; ``"prior"``: every emotion from the generic prior, filmed or not (the face model's
            stock expression, stronger than many actors' own takes; also the comparison for footage-learned
            emotions).
        paste_region: ``"face"``: only the face (:func:`core.render.masks.face_faces`: the mesh without scalp,
            ears and neck, or the model's face region, in the union of the dubbed and the shot's own geometry,
            grown by ``paste_grow_px``) replaces the plate, so hair, ears and neck keep the plate's sharp
            pixels; ``"head"``: everything the renderer draws.
        paste_grow_px: crop pixels by which the face region is grown before feathering.
        format: the delivery format (:data:`core.delivery.formats.FORMATS`; default ``h264``, the review file).
        matte: ``none``, ``sequence`` (the paste matte as a 16-bit PNG sequence) or ``alpha`` (the alpha channel
            of a ``prores4444``/``png16``/``exr`` output).
    """

    length: str = "audio"
    end: str = "loop"
    chunk: int = 16
    feather_px: int = 6
    colour_match: bool = True
    smooth: bool = True
    a2e_name: str = "a2e"
    renderer_name: str = "renderer"
    emotion_prior: bool = True
    emotion_source: str = "auto"
    paste_region: str = "face"
    paste_grow_px: int = 4
    format: str = "h264"
    matte: str = "none"

    def __post_init__(self) -> None:
        from core.delivery.formats import check_matte, get_format

        check_matte(get_format(self.format), self.matte)
        if self.length not in ("audio", "shot"):
            raise ValueError(f"length must be 'audio' or 'shot', got {self.length!r}")
        if self.paste_region not in ("face", "head"):
            raise ValueError(f"paste_region must be 'face' or 'head', got {self.paste_region!r}")
        if self.end not in ("loop", "hold"):
            raise ValueError(f"end must be 'loop' or 'hold', got {self.end!r}")
        from core.expression.emotion_prior import EMOTION_SOURCES

        if self.emotion_source not in EMOTION_SOURCES:
            raise ValueError(f"emotion_source must be one of {', '.join(EMOTION_SOURCES)}, "
                             f"got {self.emotion_source!r}")
        if self.emotion_source == "prior" and not self.emotion_prior:
            raise ValueError("emotion_source 'prior' needs the emotion prior (emotion_prior=True)")


def source_indices(n_out: int, n_shot: int, end: str) -> np.ndarray:
    """Which shot frame each output frame shows (loop from the start, or hold the last)."""
    i = np.arange(n_out)
    return i % n_shot if end == "loop" else np.minimum(i, n_shot - 1)


def audio_frames(samples: int, sample_rate: int, rate: Fraction) -> int:
    """Video frames at ``rate`` that ``samples`` of audio cover (the last one partly), at least 1: exact rational
    arithmetic, so a 24000/1001 shot never gains or loses a frame to rounding."""
    return max(1, math.ceil(Fraction(samples) * rate / sample_rate))


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """A uint16 frame rounded to uint8 (``v / 257``); uint8 frames as they are."""
    if frame.dtype == np.uint8:
        return frame
    return ((frame.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _delivery_audio(audio: Path, offset_s: float, duration_s: float | None, samples: int, length: str,
                    render_dir: Path) -> tuple[Path, str]:
    """The dub audio for a delivery: its own rate, channels and sample depth, trimmed (and, for ``length="shot"``,
    cut or padded) like the review's. Returns ``(wav, ffmpeg PCM codec)``."""
    import soundfile as sf

    from core.io.audio import load_wav, write_wav
    from core.io.video import PCM_CODECS

    subtype = sf.info(str(audio)).subtype
    if subtype not in ("PCM_16", "PCM_24", "PCM_32", "FLOAT"):
        subtype = "PCM_24"  # a compressed source (Vorbis...): decoded, kept at 24 bits
    wave, sr = load_wav(audio, mono=False)
    wave = trim_audio(wave, sr, offset_s, duration_s)
    if length == "shot":
        wave = np.pad(wave[:samples], ((0, max(0, samples - wave.shape[0])), (0, 0)))
    path = write_wav(render_dir / "audio_delivery.wav", wave, sr, subtype=subtype)
    return path, PCM_CODECS[subtype]


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


def shot_context(idx: np.ndarray, window: int, n_out: int, params: Any, camera: Any) -> Any:
    """The :class:`~core.renderers.base.TemporalContext` of output frames ``idx`` (neighbours in output time,
    each needed frame once), or ``None`` when the renderer needs none."""
    from core.renderers.base import TemporalContext
    from core.renderers.data import context_rows

    if window <= 0:
        return None
    neighbours = context_rows(idx, window, n_out)
    needed = np.unique(np.concatenate([idx, neighbours.reshape(-1)]))
    rows = torch.as_tensor(np.searchsorted(needed, idx))
    near = torch.as_tensor(np.searchsorted(needed, neighbours))
    return TemporalContext(params[torch.as_tensor(needed)], camera.expand(len(needed)), rows, near)


def check_render_name(ws: Workspace, name: str, shot: str) -> None:
    """A render name already holding a dub of another shot is refused (two dubs must not overwrite each other)."""
    existing = ws.read_manifest().get("renders", {}).get(name)
    if existing and existing.get("shot") not in (None, shot):
        from core.jobs.context import JobFailed

        raise JobFailed(f"render {name!r} already holds a dub of shot {existing['shot']!r}", code="bad_params",
                        hint="choose another --name (or leave it out: a unique name is made for you)")


def unique_render_name(ws: Workspace, shot: str) -> str:
    """``<shot>-<date>-<time>``, with a counter when that name is taken."""
    base = f"{shot}-{time.strftime('%Y%m%d-%H%M%S')}"
    renders = ws.read_manifest().get("renders", {})
    name, k = base, 1
    while name in renders or ws.render_dir(name).exists():
        k += 1
        name = f"{base}-{k}"
    return name


def check_face_model(renderer: Any, name: str, clip: Any, face_model: Any, shot: str) -> None:
    """The renderer must have been trained on clips tracked with the shot's face model (the same file and
    resolution, the same expression count): another mesh would put its UVs or its canonical space elsewhere."""
    from core.jobs.context import JobFailed

    trained_on = {k: v for k, v in renderer.setup.face_model.items() if v is not None}
    if not trained_on:  # a version-1 checkpoint did not record it
        return
    shot_model = {k: v for k, v in clip.model_spec.items() if v is not None}
    n_expr = renderer.setup.n_expression
    if trained_on != shot_model or (n_expr and n_expr != face_model.n_expr):
        raise JobFailed(f"the {renderer.variant} renderer {name!r} was trained on clips tracked with {trained_on}, "
                        f"but shot {shot!r} was tracked with {shot_model}", code="bad_input",
                        hint="track the shot with the face model the actor was tracked with (emodub track --model "
                             "...), or train the renderer on clips tracked like the shot")


@dataclass
class DubSetup:
    """What rendering any frame of a dub needs, computed once: the loaded models, the shot, the audio and the
    a2e's prediction over all of it. The dub renders every frame from it; a preview renders a few, the same way."""

    config: DubConfig
    consent: dict[str, Any]
    shot_dir: Path
    shot_record: dict[str, Any]
    clip: Any
    crop: Any
    face_model: Any
    renderer: Any
    rate: Fraction
    n_out: int
    n_shot: int
    want: int
    native: np.ndarray
    native_sr: int
    wave16: np.ndarray
    sr16: int
    prediction: Any
    emotion_sources: Any
    src: np.ndarray
    params: Any
    audio_feats: Any
    size: int
    crops: Any
    camera: Any
    shot_params: Any
    emotion: np.ndarray
    paste_faces: Any
    device: str
    audio_cut_s: float = 0.0  # dub audio past the shot's end that the dub leaves out (``length="shot"``)

    @property
    def legacy(self) -> bool:
        """The review file alone (h264, no matte), pasted into the working copy as it always was."""
        return self.config.format == "h264" and self.config.matte == "none"


@dataclass
class RenderedChunk:
    """Frames ``idx`` of a dub rendered at the shot's crop size, before they are pasted into the plate."""

    idx: np.ndarray
    image: torch.Tensor  # (n, 3, S, S) in [0, 1]
    mask: np.ndarray  # (n, S, S) feathered paste weights
    gaps: list[float]
    faceless: int


def prepare_dub(ws: Workspace, actor: str, shot: str, audio: Path, emotions: Any, audio_offset_s: float,
                audio_duration_s: float | None, config: DubConfig, device: str,
                report: Callable[[str, int, int, str], None], render_name: str | None = None,
                face: int | None = None) -> DubSetup:
    """Load what a dub of ``shot`` with ``audio`` and ``emotions`` needs and predict its face parameters."""
    from core.audio.features import AudioFeatureConfig
    from core.consent import require_consent
    from core.expression.a2e import A2EModel
    from core.expression.emotion_prior import (
        EmotionPrior,
        actor_emotion_coverage,
        apply_prior,
        network_gate,
        route_emotions,
    )
    from core.io.audio import load_wav
    from core.landmarks.crop import CropTransform
    from core.landmarks.faces import face_folder
    from core.render.masks import face_faces
    from core.renderers.data import audio_features
    from core.renderers.registry import load as load_renderer
    from core.tracking.result import TrackedClip

    consent = require_consent(ws, actor)  # before anything is loaded or written
    shot_dir = ws.shot_dir(shot)
    shot_record = ws.shot(shot)  # clear error if the shot is unknown
    if render_name:
        check_render_name(ws, render_name, shot)
    folder = face_folder(shot_dir, face)  # the shot itself, or the chosen face of a shot with several
    clip = TrackedClip.load(folder)
    rate = clip.rate  # the shot's exact frame rate (24000/1001...): the output keeps it
    fps = float(rate)
    crop = CropTransform.load(folder / "crop.json")
    face_model = clip.face_model(device)
    a2e = A2EModel.load(ws.model_dir(actor, config.a2e_name), device)
    renderer = load_renderer(ws.model_dir(actor, config.renderer_name), device)
    check_face_model(renderer, config.renderer_name, clip, face_model, shot)

    native, native_sr = load_wav(audio)
    native = trim_audio(native, native_sr, audio_offset_s, audio_duration_s)
    if native.size == 0:
        raise ValueError(f"the dub audio {audio} is empty after offset {audio_offset_s}s; check the offset")
    n_shot = clip.n_frames
    n_out = (audio_frames(native.size, native_sr, rate) if config.length == "audio" else n_shot)
    want = round(Fraction(n_out * native_sr) / rate)  # samples of n_out frames, exactly
    audio_cut_s = max(0, native.size - want) / native_sr if config.length == "shot" else 0.0
    if config.length == "shot":  # cut or pad the audio to the shot
        native = np.pad(native[:want], (0, max(0, want - native.size)))
    sr16 = AudioFeatureConfig().sample_rate
    wave16, _ = load_wav(audio, sr16)
    wave16 = trim_audio(wave16, sr16, audio_offset_s, audio_duration_s)

    report("predict", 0, 1, "audio to expression")
    # Emotions the actor was never filmed with come from the face model's generic prior (emotion_prior).
    coverage = actor_emotion_coverage(ws.read_manifest(), actor)
    if config.emotion_source == "prior":  # as if no emotion had been filmed
        coverage = np.zeros_like(coverage)
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
    needs = renderer.needs
    audio_feats = (audio_features(wave16, sr16, needs.audio, fps, n_out) if needs.audio is not None else None)
    # The renderer works at the crop size it was trained at (unknown for version-1 checkpoints: the shot's own).
    size = renderer.setup.image_size or clip.size
    camera = (clip.camera if size == clip.size else clip.camera.scaled(size, size)).to(device)
    return DubSetup(config=config, consent=consent, shot_dir=shot_dir, shot_record=shot_record, clip=clip, crop=crop,
                    face_model=face_model, renderer=renderer, rate=rate, n_out=n_out, n_shot=n_shot, want=want,
                    native=native, native_sr=native_sr, wave16=wave16, sr16=sr16, prediction=prediction,
                    emotion_sources=emotion_sources, src=src, params=params, audio_feats=audio_feats, size=size,
                    crops=clip.crops(size), camera=camera, shot_params=clip.params.to(device),
                    emotion=np.asarray(prediction.emotion, np.float32),
                    paste_faces=face_faces(face_model) if config.paste_region == "face" else None, device=device,
                    audio_cut_s=audio_cut_s)


def open_plate(setup: DubSetup, report: Callable[[str, int, int, str], None] | None = None,
               seek: bool = False) -> tuple[Any, Any]:
    """``(reader, plate)``: the frames the dub is pasted into (the working copy for the review file alone, the
    source plate at its own depth for a delivery; ``plate`` is ``None`` for the former). ``seek``: the reader
    seeks to far frames (a preview) instead of decoding every frame from the first (the dub)."""
    from core.delivery.plate import resolve_plate
    from core.io.video import FrameReader

    fps = float(setup.rate) if seek else None
    if setup.legacy:
        return FrameReader(setup.shot_dir / "video.mp4", fps=fps), None
    plate = resolve_plate(setup.shot_dir, setup.shot_record, setup.crop, setup.n_shot)
    if plate.note and report is not None:
        report("render", 0, setup.n_out, plate.note)
    return FrameReader(plate.path, plate.depth, fps), plate


@torch.no_grad()
def render_chunk(setup: DubSetup, idx: np.ndarray) -> RenderedChunk:
    """Render output frames ``idx`` (the face and its feathered paste mask at the shot's crop size)."""
    from core.render.masks import expand_mask, feather, rasterize_uv_and_region
    from core.renderers.data import assemble_batch

    config, clip, src = setup.config, setup.clip, setup.src
    rows = torch.as_tensor(idx)
    plate_rows = torch.as_tensor(src[idx])
    needs = setup.renderer.needs
    batch = assemble_batch(np.stack([setup.crops[int(s)] for s in src[idx]]), setup.params[rows],
                           setup.shot_params[plate_rows], setup.camera, setup.face_model,
                           None if setup.audio_feats is None else setup.audio_feats[idx], setup.emotion[idx],
                           np.full(len(idx), -1), shot_context(idx, needs.context_frames, setup.n_out, setup.params,
                                                               setup.camera), setup.device, driven=True)
    rendered = setup.renderer(batch)
    assert rendered.image is not None and rendered.alpha is not None
    image, alpha = rendered.image.float(), rendered.alpha.float()
    gaps = [float(g) for g in rendered.extras["gap_px"]] if "gap_px" in rendered.extras else []
    # The face where it is now and where the shot had it (no leftover old chin), grown a little.
    _, coverage, dubbed_face = rasterize_uv_and_region(setup.face_model, batch.params, batch.camera, setup.paste_faces)
    if config.colour_match:
        image = colour_match(image, batch.frames, coverage)
    if config.paste_region == "face":
        shot_face = rasterize_uv_and_region(setup.face_model, batch.plate_params, batch.camera, setup.paste_faces)[2]
        region = alpha * expand_mask(torch.maximum(dubbed_face, shot_face), config.paste_grow_px)
    else:
        region = alpha
    # A frame where the shot shows no face (it left the picture) keeps the plate.
    present = torch.as_tensor(clip.face_present[src[idx]], device=region.device, dtype=region.dtype)
    mask = feather(region, config.feather_px) * present[:, None, None, None]
    if setup.size != clip.size:  # back to the shot's crop size for the paste
        image = torch.nn.functional.interpolate(image, size=(clip.size, clip.size), mode="bilinear",
                                                align_corners=False)
        mask = torch.nn.functional.interpolate(mask, size=(clip.size, clip.size), mode="bilinear",
                                               align_corners=False)
    return RenderedChunk(idx, image, mask[:, 0].cpu().numpy(), gaps, int((present == 0).sum()))


def paste_chunk(setup: DubSetup, chunk: RenderedChunk, reader: Any, plate: Any
                ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The plate frames of ``chunk`` with its face pasted in: ``(frame, matte)`` (matte ``None`` for the review
    file alone, whose uint8 frames come from the working copy)."""
    from core.delivery.composite import composite

    if setup.legacy:
        image_np = (chunk.image.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        for k, i in enumerate(chunk.idx):
            frame = reader.get(int(setup.src[i]))
            yield (setup.crop.paste(image_np[k], frame, chunk.mask[k]) if chunk.mask[k].any() else frame), None
        return
    face_np = chunk.image.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
    for k, i in enumerate(chunk.idx):
        frame = reader.get(int(setup.src[i]))
        if chunk.mask[k].any():
            yield composite(plate.crop, face_np[k], chunk.mask[k], frame)
        else:  # no face on this frame: the plate as it is, an empty matte
            yield frame, np.zeros(frame.shape[:2], np.uint16)


def dub(ws: Workspace, actor: str, shot: str, audio: Path, emotions: Any, out: Path | None = None,
        audio_offset_s: float = 0.0, audio_duration_s: float | None = None,
        config: DubConfig | None = None, device: str = "cpu",
        progress: Callable[[str, int, int, str], None] | None = None,
        render_name: str | None = None, face: int | None = None) -> dict[str, Any]:
    """Dub ``shot`` with ``audio`` and ``emotions`` (any form core.expression.a2e accepts), rendering with the
    actor's renderer model ``config.renderer_name`` (any variant: :mod:`core.renderers`).

    ``out`` is the output of ``config.format`` (a movie file, or a sequence's folder); ``face`` the face id to dub
    in a shot with several faces.

    Raises:
        core.consent.ConsentError: the actor has no valid consent record (nothing is loaded or written).
        core.landmarks.faces.FaceChoiceError: the shot has several faces and ``face`` does not name a tracked one.
    """
    from core.delivery.formats import get_format
    from core.delivery.provenance import metadata_tags, model_entry, provenance
    from core.delivery.writer import DeliveryWriter
    from core.io.audio import write_wav
    from core.io.video import VideoWriter

    config = config or DubConfig()
    report = progress or (lambda *a: None)
    t_start = time.perf_counter()
    setup = prepare_dub(ws, actor, shot, audio, emotions, audio_offset_s, audio_duration_s, config, device, report,
                        render_name, face)
    clip, renderer, n_out, rate, fps = setup.clip, setup.renderer, setup.n_out, setup.rate, float(setup.rate)
    consent, prediction, emotion_sources = setup.consent, setup.prediction, setup.emotion_sources
    wave16, sr16, shot_dir = setup.wave16, setup.sr16, setup.shot_dir
    render_name = render_name or unique_render_name(ws, shot)
    render_dir = ws.render_dir(render_name)
    render_dir.mkdir(parents=True, exist_ok=True)
    # What was rendered, frame by frame (for review and re-tracking): the a2e's face on the shot's pose.
    setup.params.save(render_dir / "params.npz")
    dub_wav = write_wav(render_dir / "audio.wav", setup.native, setup.native_sr)
    models = {"a2e": model_entry(ws.model_dir(actor, config.a2e_name), config.a2e_name),
              "renderer": model_entry(ws.model_dir(actor, config.renderer_name), config.renderer_name,
                                      variant=renderer.variant)}
    record = provenance(actor, consent, models, renderer.variant)
    tags = metadata_tags(record)
    legacy = setup.legacy
    fmt = get_format(config.format)
    if out:
        out = Path(out)
    elif legacy or fmt.name == "h264":
        out = render_dir / "dubbed.mp4"
    else:
        out = render_dir / ("dubbed" if fmt.sequence else f"dubbed{fmt.ext}")
    review = out if fmt.name == "h264" else render_dir / "dubbed.mp4"
    reader, plate = open_plate(setup, report)
    faceless = 0
    gaps: list[float] = []
    t_render = time.perf_counter()
    delivered: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.no_grad())
        writer = stack.enter_context(VideoWriter(review, rate, audio=dub_wav, timecode=clip.timecode,
                                                 metadata=tags)) if review != out or legacy else None
        delivery = None
        if not legacy:
            if fmt.name == "h264":  # the review file is the delivery (with a matte sequence beside it)
                delivery_wav, audio_codec = dub_wav, None
            else:  # the dub audio at its own rate, channels and depth (PCM in MOV, a WAV beside a sequence)
                delivery_wav, audio_codec = _delivery_audio(audio, audio_offset_s, audio_duration_s, setup.want,
                                                            config.length, render_dir)
            delivery = stack.enter_context(DeliveryWriter(
                fmt, out, rate, audio=delivery_wav, audio_codec=audio_codec, timecode=clip.timecode, metadata=tags,
                sidecar={"provenance": record}, matte=config.matte))
        for start in range(0, n_out, config.chunk):
            idx = np.arange(start, min(n_out, start + config.chunk))
            chunk = render_chunk(setup, idx)
            gaps += chunk.gaps
            faceless += chunk.faceless
            for frame, matte in paste_chunk(setup, chunk, reader, plate):
                if legacy:
                    writer.write(frame)
                else:
                    assert delivery is not None
                    delivery.write(frame, matte)
                    if writer is not None:
                        writer.write(to_uint8(frame))
            report("render", int(idx[-1]) + 1, n_out, f"frame {int(idx[-1]) + 1}/{n_out}")
        if delivery is not None:
            delivered = delivery.close()
    reader.close()
    render_s = time.perf_counter() - t_render
    model_record = ws.read_manifest()["actors"].get(actor, {}).get("models", {}).get(config.renderer_name, {})
    result = {"video": str(review), "frames": int(n_out), "fps": fps, "fps_num": rate.numerator,
              "fps_den": rate.denominator, "timecode": clip.timecode, "duration_s": float(n_out / rate),
              "format": fmt.name, "delivery": delivered.get("delivery", str(out)), "matte": delivered.get("matte"),
              "plate": plate.to_json() if plate is not None else {"path": str(shot_dir / "video.mp4"),
                                                                  "kind": "working", "depth": 8},
              "face": face, "provenance": record,
              "shot_frames": setup.n_shot, "length": config.length, "end": config.end,
              "audio_cut_s": round(setup.audio_cut_s, 3),
              "audio": str(audio), "audio_offset_s": audio_offset_s, "render": render_name,
              "renderer": {"model": config.renderer_name, "variant": renderer.variant,
                           "held_out": model_record.get("held_out")},
              "faceless_frames": faceless,
              "seconds": time.perf_counter() - t_start, "render_fps": n_out / max(render_s, 1e-9),
              "peak_rss_mb": _peak_rss_mb(), "emotion_sources": emotion_sources,
              "paste_region": config.paste_region, "config": asdict(config)}
    if gaps:
        result["chin_neck_gap_px"] = {"max": max(gaps), "mean": float(np.mean(gaps))}
    from core.expression.emotions import EMOTIONS

    used = [e for j, e in enumerate(EMOTIONS) if np.any(np.asarray(prediction.emotion)[:, j] > 0)]
    result["warnings"] = dub_warnings(result, used)
    result["report"] = str(write_report(render_dir, result, prediction, wave16, sr16, fps))
    delivery_path = Path(result["delivery"])

    def stored(path: Path) -> str:
        return ws.rel(path) if path.resolve().is_relative_to(ws.root) else str(path)

    ws.set_render(render_name, {"video": stored(review), "delivery": stored(delivery_path), "format": fmt.name,
                                "shot": shot, "actor": actor, "frames": int(n_out), "fps": fps,
                                "fps_num": rate.numerator, "fps_den": rate.denominator, "face": face,
                                "consent": consent.get("id"), "renderer": config.renderer_name,
                                "variant": renderer.variant,
                                "report": ws.rel(result["report"])})
    return result


UNDERTRAINED_FACE_PSNR = 22.0  # dB held out: below this the face is visibly wrong (a grey mask after a few steps)


def dub_warnings(result: dict[str, Any], emotions_used: list[str]) -> list[str]:
    """What an editor should know before using the dub: an undertrained renderer (by its own held-out figures),
    emotions that come from the generic prior, a dub longer than its shot, dub audio cut to the shot."""
    warnings = []
    held_out = (result.get("renderer") or {}).get("held_out") or {}
    psnr = held_out.get("face_psnr")
    model = (result.get("renderer") or {}).get("model")
    if psnr is not None and psnr < UNDERTRAINED_FACE_PSNR:
        warnings.append(f"the renderer {model!r} looks undertrained: {psnr:.1f} dB face PSNR on its held-out frames "
                        f"(below {UNDERTRAINED_FACE_PSNR:g} dB the face is visibly wrong); train it longer")
    elif psnr is None:
        warnings.append(f"the renderer {model!r} was never measured on held-out frames, so nobody knows how good its "
                        "face is; train it with held-out frames (--holdout) or run eval renderer")
    prior = [e for e in emotions_used if (result.get("emotion_sources") or {}).get(e) == "prior"]
    if prior:
        warnings.append(f"{', '.join(prior)} come{'s' if len(prior) == 1 else ''} from the face model's generic "
                        "expression, not from this actor's footage (ingest labelled takes with --emotion to learn "
                        "the actor's own)")
    frames, shot_frames = int(result["frames"]), int(result["shot_frames"])
    cut = float(result.get("audio_cut_s") or 0.0)
    if cut * float(result.get("fps") or 25.0) >= 1.0:  # at least a frame's worth of speech left out
        warnings.append(f"the dub audio runs {cut:.2f} s past the end of the shot: the dub stops with the shot, "
                        "so that audio is not dubbed (lengthen the shot, or trim the audio)")
    if frames > shot_frames:
        how = "loop the shot from its start" if result.get("end") == "loop" else "hold the shot's last frame"
        warnings.append(f"the dub is {frames} frames long and its shot {shot_frames}: frames {shot_frames}-"
                        f"{frames - 1} {how} (--length shot cuts the audio to the shot)")
    return warnings


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
             *_delivery_lines(result),
             f"- rendering: {result['render_fps']:.1f} frames/s, peak memory {result['peak_rss_mb']:.0f} MB",
             f"- lip-sync proxy (jaw opening vs audio envelope): peak correlation "
             f"{sync['peak_corr']:.2f} at offset {sync['offset_frames']} frames", "",
             *([f"**Warning:** {w}" for w in result.get("warnings", [])] + [""] if result.get("warnings") else []),
             "| emotion | max | mean | from |", "| --- | --- | --- | --- |"]
    lines += [f"| {e} | {s['max']:.2f} | {s['mean']:.2f} | {s['source']} |" for e, s in stats.items()] or [
        "| neutral | 0 | 0 | |"]
    lines += ["", "*from*: `footage` = learned from the actor's labelled clips; `prior` = the face model's generic "
              "expression (no footage of that emotion); `ignored` = neither."]
    lines += ["", "![emotion curves and parameters](emotions.png)", ""]
    atomic_write_text(render_dir / "report.md", "\n".join(lines))
    return path


def _delivery_lines(result: dict[str, Any]) -> list[str]:
    """Report lines on the delivery, its plate and the provenance."""
    lines = []
    rate = f"{result.get('fps_num')}/{result.get('fps_den')}" if result.get("fps_num") else f"{result['fps']:g}"
    lines.append(f"- delivery: `{result.get('delivery', result['video'])}` ({result.get('format', 'h264')}, "
                 f"{rate} fps, timecode {result.get('timecode') or 'none'})"
                 + (f", matte `{result['matte']}`" if result.get("matte") else ""))
    plate = result.get("plate") or {}
    if plate:
        lines.append(f"- plate: {plate.get('kind')} `{plate.get('path')}` at {plate.get('depth')} bits"
                     + (f" ({plate['note']})" if plate.get("note") else ""))
    prov = result.get("provenance")
    if prov:
        consent = prov.get("consent") or {}
        lines.append(f"- provenance: emodub {prov.get('engine_version')}, actor `{prov.get('actor')}`, consent "
                     f"`{consent.get('id')}` ({consent.get('consented_by')}, {consent.get('date')}; scope: "
                     f"{consent.get('scope')}; document: {consent.get('document')})")
        for role, entry in (prov.get("models") or {}).items():
            lines.append(f"  - {role} model `{entry.get('name')}`: sha256 `{entry.get('sha256')}`")
    return lines


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
