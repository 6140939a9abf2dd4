"""Ingest: bring a video into a workspace as actor footage (a clip) or as a shot to be dubbed.

What ingest does, in order:

1. checks the names and the emotion label (``happy:0.66``; shots carry no label);
2. probes the file and refuses bad input with a message saying what is wrong and what to do:
   missing/unreadable file, not a video (e.g. a text file renamed .mp4), no video stream, no frames,
   fewer than ``min_frames`` frames (a still image or a 1-frame video), no audio stream (an error for
   actor footage, which needs its sound to learn audio-to-expression; a warning for a shot, which
   gets new audio anyway);
3. decodes the video once, streaming, and for each frame both encodes it into ``video.mp4`` (H.264)
   and, unless ``landmarks=False``, detects its landmarks; then extracts the sound to ``audio.wav``
   (16 kHz mono PCM16). **Timing**: a shot keeps its own frame rate and its own frames (every frame
   of the source, none dropped or repeated) unless ``fps`` asks for another rate; actor footage is
   normalised to 25 fps (the audio-to-expression features assume it) unless ``keep_fps``. Rates are
   exact rationals (``30000/1001``), stored as ``fps_num``/``fps_den`` beside the float ``fps`` in the
   record and ``probe.json``; the source's timecode is recorded as ``timecode``. Variable-rate video
   is resampled onto a constant grid (its nominal rate for a shot);
4. finishes the landmarks (gap filling, stable crop: ``landmarks.npz``, ``crop.json``), writes
   ``probe.json``, and only then moves the complete folder into place and records it in the manifest.

Nothing half-made: everything is written into ``W/.staging/<id>/`` and moved into
``actors/<actor>/clips/<clip>/`` (or ``shots/<shot>/``) by one rename at the end; a failure or a cancel
deletes the staging folder, so the workspace is exactly as before. A staging folder left by a killed
ingest is removed by the next job in the workspace (:mod:`core.workspace.cleanup`).

Large footage (longest side above ``max_side``, 1920 by default; e.g. a 4K plate)
-----------------------------------------------------------------------------------
The working copy is limited to ``max_side`` pixels. With ``large="crop"`` (default) ingest first finds
the face on a quick low-resolution pass (5 frames per second, MediaPipe in still-image mode) and keeps
a region around it at full resolution: the union of the face boxes, grown by ``crop_margin`` face sizes
on every side, clipped to the frame (scaled down as well if it is still larger than ``max_side``).
With ``large="downscale"``, or when no face is found on that pass, the whole frame is scaled down to
fit. Either way the record says how to go back to the original plate for compositing:
``source_region`` ``{"x", "y", "width", "height"}`` (in source pixels) and ``source_scale``
``[sx, sy]`` (working pixels per source pixel), i.e. a working pixel ``(u, v)`` (centres at integers)
is source pixel ``x + (u + 0.5) / sx - 0.5``, ``y + (v + 0.5) / sy - 0.5`` (:func:`working_to_source`);
``source`` keeps the original file's path. Odd sizes lose their last pixel row/column (H.264 yuv420p
needs even sides).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.jobs.context import JobFailed
from core.landmarks.crop import CropConfig, CropTransform, padded_boxes
from core.landmarks.faces import FACES_DIR, FACES_FILE, MultiTrackBuilder, faces_document
from core.landmarks.stage import NullReporter, Reporter, ThrottledProgress, save_stage, track_warnings
from core.landmarks.track import LandmarkConfig, LandmarkTrack, NoFaceError, TrackBuilder
from core.workspace.cleanup import STAGING_DIR

if TYPE_CHECKING:
    from core.io.video import VideoInfo
    from core.landmarks.detector import LandmarkDetector
    from core.workspace import Workspace

PROBE_FILE = "probe.json"
CLIP_FPS = 25  # actor footage's working rate (the audio-to-expression features assume it)
VIDEO_FILE = "video.mp4"
AUDIO_FILE = "audio.wav"


@dataclass
class IngestConfig:
    """Settings of :func:`ingest`.

    Attributes:
        fps: frame rate of the working copy; ``None`` (default): a shot keeps the source's own rate and
            frames, actor footage is normalised to 25 fps (READ and the audio features assume 25).
        keep_fps: keep the source's frame rate for actor footage too (its average rate when it is variable).
        sample_rate: sample rate of ``audio.wav``.
        min_frames: fewer frames than this (after fps normalisation) is refused: tracking's temporal
            terms and the audio window need a few frames; a still image is not footage.
        landmarks: run the landmark stage during ingest (one decode for both).
        max_side: longest side of the working copy; larger footage is cropped/downscaled (see above).
        large: ``"crop"`` (keep a full-resolution region around the face) or ``"downscale"``.
        crop_margin: with ``large="crop"``, margin around the union of face boxes, in face-box sizes.
        analysis_fps: frames per second looked at by the face-finding pass for ``large="crop"``.
        analysis_side: longest side of the frames of that pass.
        crf, preset: x264 quality and speed of ``video.mp4``.
        replace: replace an existing clip/shot of the same name (otherwise that is an error).
        max_faces: faces looked for per frame; above 1, every face gets its own track and id
            (:mod:`core.landmarks.faces`: ``faces.json``, ``faces/<id>/``).
        landmark: gap/confidence settings of the landmark track.
        crop: the stable square crop (READ §3.4) settings.
    """

    fps: float | None = None
    keep_fps: bool = False
    sample_rate: int = 16000
    min_frames: int = 5
    landmarks: bool = True
    max_side: int = 1920
    large: str = "crop"
    crop_margin: float = 1.0
    analysis_fps: float = 5.0
    analysis_side: int = 1280
    crf: int = 17
    preset: str = "veryfast"
    replace: bool = False
    max_faces: int = 1
    landmark: LandmarkConfig = field(default_factory=LandmarkConfig)
    crop: CropConfig = field(default_factory=CropConfig)


@dataclass
class IngestResult:
    """What :func:`ingest` made: the manifest record, its folder, warnings, and the landmark stage."""

    record: dict[str, Any]
    folder: Path
    warnings: list[str]
    track: LandmarkTrack | None = None
    crop: CropTransform | None = None


@dataclass(frozen=True)
class Geometry:
    """Where the working copy comes from: ``region`` (x, y, w, h) of the upright source frame, resized
    to ``size`` (w, h)."""

    region: tuple[int, int, int, int]
    size: tuple[int, int]
    how: str  # "full", "face_crop", "downscale"

    @property
    def scale(self) -> tuple[float, float]:
        return self.size[0] / self.region[2], self.size[1] / self.region[3]


def working_to_source(points: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """Map working-copy pixel coordinates (..., 2) of a clip/shot record to the original plate's pixels."""
    region = record.get("source_region") or {"x": 0, "y": 0}
    sx, sy = record.get("source_scale") or (1.0, 1.0)
    p = np.asarray(points, np.float64)
    out = np.empty_like(p)
    out[..., 0] = region["x"] + (p[..., 0] + 0.5) / sx - 0.5
    out[..., 1] = region["y"] + (p[..., 1] + 0.5) / sy - 0.5
    return out


def default_clip_name(video: str | Path) -> str:
    """A valid clip name from a file name: ``"Take 3 (final).mov"`` -> ``"Take_3_final"``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(video).stem).strip("_.-")
    return (stem or "clip")[:64]


def _even(v: float) -> int:
    return max(2, int(v) - int(v) % 2)


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return _even(round(width * scale)), _even(round(height * scale))


def _fail_media(exc: Exception) -> JobFailed:
    return JobFailed(getattr(exc, "message", str(exc)), hint=getattr(exc, "hint", ""),
                     code=getattr(exc, "code", "bad_input"))


def parse_emotion(spec: str | dict[str, float] | None) -> dict[str, float]:
    """``"happy:0.66"`` (or a mapping) -> ``{"happy": 0.66}``; ``None``/``"neutral"`` -> ``{}``."""
    from core.expression.emotions import EMOTIONS, emotion_vector

    if spec is None or spec == "" or spec == {}:
        return {}
    try:
        vec = emotion_vector(spec)
    except ValueError as exc:
        raise JobFailed(f"bad emotion label {spec!r}: {exc}",
                        hint=f"write e.g. happy:0.66 or sad:0.33,angry:0.2; emotions: {', '.join(EMOTIONS)}",
                        code="bad_params") from None
    return {name: round(float(v), 4) for name, v in zip(EMOTIONS, vec, strict=True) if v > 0}


def _find_face_region(info: VideoInfo, config: IngestConfig, detector: LandmarkDetector | None,
                      reporter: Reporter) -> tuple[int, int, int, int] | None:
    """Region (x, y, w, h) of the source around the face over the whole clip, from a quick pass."""
    from core.io.video import iter_frames

    if detector is None:
        try:
            from core.landmarks.detector import MediaPipeConfig, MediaPipeDetector

            detector = MediaPipeDetector(MediaPipeConfig(static_image_mode=True, face_detector_model="full"))
        except ImportError as exc:
            reporter.log(f"cannot look for the face to crop large footage ({exc}); downscaling instead",
                         "warning")
            return None
    width, height = info.size
    small = _fit(width, height, config.analysis_side)
    scale = np.array([width / small[0], height / small[1]])
    rate = min(config.analysis_fps, info.fps or config.analysis_fps)
    total = max(1, math.ceil(info.duration_s * rate))
    tick = ThrottledProgress(reporter, "find face", total)
    boxes = []
    detector.reset()
    frames = iter_frames(info.path, fps=rate, size=small, info=info)
    try:
        for i, frame in enumerate(frames, 1):
            det = detector.detect(frame)
            if det.lmk68 is not None and det.confidence >= config.landmark.min_confidence:
                boxes.append(padded_boxes(det.lmk68[None] * scale, config.crop.pad, config.crop.pad_top)[0])
            tick(i)
    finally:
        frames.close()
    tick.finish(f"face in {len(boxes)} of {tick.done} frames")
    if not boxes:
        return None
    b = np.array(boxes)
    x0, y0 = b[:, 0].min(), b[:, 1].min()
    x1, y1 = b[:, 2].max(), b[:, 3].max()
    margin = config.crop_margin * max(x1 - x0, y1 - y0)
    x0, y0 = max(0, math.floor(x0 - margin)), max(0, math.floor(y0 - margin))
    x1, y1 = min(width, math.ceil(x1 + margin)), min(height, math.ceil(y1 + margin))
    w, h = _even(x1 - x0), _even(y1 - y0)
    if w < 16 or h < 16:
        return None
    return int(x0), int(y0), w, h


def plan_geometry(info: VideoInfo, config: IngestConfig, reporter: Reporter,
                  region_detector: LandmarkDetector | None = None) -> Geometry:
    """Decide the working copy's region and size (see the module docstring on large footage)."""
    width, height = info.size
    if max(width, height) <= config.max_side:
        region = (0, 0, _even(width), _even(height))
        return Geometry(region, (region[2], region[3]), "full")
    if config.large not in ("crop", "downscale"):
        raise JobFailed(f"unknown large-footage policy {config.large!r}", hint="use 'crop' or 'downscale'",
                        code="bad_params")
    if config.large == "crop" and config.max_faces > 1:  # the face-finding pass follows one face: keep them all
        reporter.log(f"{width}x{height} footage with up to {config.max_faces} faces: the whole frame is downscaled "
                     "(a region around one face could cut the others off)")
    elif config.large == "crop":
        region = _find_face_region(info, config, region_detector, reporter)
        if region is not None:
            size = _fit(region[2], region[3], config.max_side)
            reporter.log(f"{width}x{height} footage is larger than {config.max_side} px: working on the face "
                         f"region {region[2]}x{region[3]} at ({region[0]}, {region[1]})"
                         + (f", scaled to {size[0]}x{size[1]}" if size != region[2:] else ""))
            return Geometry(region, size, "face_crop")
        reporter.log(f"no face found in the {width}x{height} footage to crop around; downscaling the whole "
                     "frame instead", "warning")
    size = _fit(width, height, config.max_side)
    reporter.log(f"{width}x{height} footage is larger than {config.max_side} px: the working copy is "
                 f"downscaled to {size[0]}x{size[1]} (the original stays at {info.path})")
    return Geometry((0, 0, width, height), size, "downscale")


def ingest(ws: Workspace, video: str | Path, *, actor: str | None = None, clip: str | None = None,
           shot: str | None = None, emotion: str | dict[str, float] | None = None, sentence: str | None = None,
           config: IngestConfig | None = None, detector: LandmarkDetector | None = None,
           region_detector: LandmarkDetector | None = None, synthetic: bool = False,
           reporter: Reporter | None = None) -> IngestResult:
    """Ingest ``video`` as clip ``clip`` of ``actor`` or as shot ``shot`` (exactly one of the two).

    Args:
        ws: the workspace.
        video: the source file (any container/codec ffmpeg reads).
        actor, clip: actor footage; ``clip`` defaults to the file name (cleaned up).
        shot: a shot to be dubbed.
        emotion: the clip's emotion label (``"happy:0.66"``, ``"neutral"``...); actor clips only.
        sentence: what the clip says (an id or the words); actor clips only. Takes of one sentence in different
            emotions are what the ``jean`` renderer's expression transformer learns from.
        config: see :class:`IngestConfig`.
        detector: landmark detector (default MediaPipe); e.g. a ``GroundTruthDetector`` for synthetic clips.
        region_detector: detector of the face-finding pass for large footage (default MediaPipe).
        synthetic: mark the record as synthetic footage (the synthetic actor's clips).
        reporter: progress/log/cancel (a ``JobContext``); default silent.

    Returns:
        :class:`IngestResult`.

    Raises:
        JobFailed: bad input or parameters (``code``: ``bad_params``, ``not_found``, ``not_media``,
            ``unreadable``, ``no_video_stream``, ``no_frames``, ``too_short``, ``no_audio_stream``,
            ``no_face``, ``exists``, ``decode_failed``...), the workspace untouched.
        JobCancelled: cancelled through the reporter; the workspace untouched.
    """
    from core.io.ffmpeg import MediaError, fps_fraction
    from core.io.video import probe
    from core.workspace import LockBusy, WorkspaceError, atomic_write_json, validate_name

    config = config or IngestConfig()
    reporter = reporter or NullReporter()

    # -- 1. names ------------------------------------------------------------------------------
    if (actor is None) == (shot is None):
        raise JobFailed("give either an actor (actor footage) or a shot (footage to dub), not "
                        + ("both" if actor else "neither"),
                        hint="emodub ingest VIDEO --actor NAME [--clip NAME], or: emodub ingest VIDEO "
                             "--shot NAME",
                        code="bad_params")
    if shot is not None and clip is not None:
        raise JobFailed("--clip names an actor's clip; a shot is named by --shot alone", code="bad_params")
    if shot is not None and emotion not in (None, "", {}):
        raise JobFailed("a shot to be dubbed carries no emotion label (emotions are keyframed at dub time)",
                        hint="drop --emotion, or ingest the footage as an actor clip", code="bad_params")
    if shot is not None and sentence:
        raise JobFailed("a shot to be dubbed carries no sentence label (it labels an actor's takes)",
                        hint="drop --sentence, or ingest the footage as an actor clip", code="bad_params")
    if clip is None and actor is not None:
        clip = default_clip_name(video)
    try:
        if actor is not None:
            validate_name(actor, "actor name")
            validate_name(clip, "clip name")  # type: ignore[arg-type]
            final = ws.clip_dir(actor, clip)  # type: ignore[arg-type]
            label = f"clip {actor}/{clip}"
        else:
            validate_name(shot, "shot name")  # type: ignore[arg-type]
            final = ws.shot_dir(shot)  # type: ignore[arg-type]
            label = f"shot {shot}"
    except WorkspaceError as exc:
        raise JobFailed(str(exc), hint=exc.hint, code="bad_params") from None
    emotion_label = parse_emotion(emotion) if actor is not None else {}
    if config.fps is not None and (config.fps <= 0 or not math.isfinite(config.fps)):
        raise JobFailed(f"fps must be a positive number, got {config.fps}", hint="e.g. --fps 25",
                        code="bad_params")

    # -- 2. probe and refuse bad input -----------------------------------------------------------
    try:
        info = probe(video)
    except MediaError as exc:
        raise _fail_media(exc) from None
    src = Path(info.path)
    if info.frames == 0:
        raise JobFailed(f"{src} has a video stream but no frames", hint="the file is empty or damaged",
                        code="no_frames")
    if info.frames < config.min_frames:
        plural = "s" if info.frames != 1 else ""
        raise JobFailed(f"{src} has only {info.frames} frame{plural}; emodub needs a video of at least "
                        f"{config.min_frames} frames", hint="give footage, not a still image",
                        code="too_short")
    warnings: list[str] = []
    if not info.has_audio:
        if actor is not None:
            raise JobFailed(f"{src} has no audio stream; actor footage needs its sound (the "
                            "audio-to-expression model learns from it)",
                            hint="use the original recording with sound, or mux the sound in: ffmpeg -i "
                                 "video.mp4 -i sound.wav -map 0:v -map 1:a -c:v copy -c:a aac with_sound.mp4",
                            code="no_audio_stream")
        warnings.append(f"{src.name} has no audio stream; the shot is ingested without sound (dubbing brings "
                        "the new audio)")
    native = config.fps is None and (shot is not None or config.keep_fps)
    if native and info.variable_fps:  # a constant grid: the average rate (keep_fps), else a shot's base rate (tbr)
        out_rate = fps_fraction(info.average_fps if config.keep_fps or not info.tbr else info.tbr)
    elif native:
        out_rate = info.rate
    else:
        out_rate = fps_fraction(config.fps if config.fps is not None else CLIP_FPS)
    if out_rate <= 0:
        raise JobFailed(f"{src} does not say its frame rate", hint="give the rate with --fps", code="bad_input")
    # Frames pass through untouched (no fps filter): the working copy's frame k is the source's frame k.
    passthrough = native and not info.variable_fps
    out_fps = float(out_rate)
    if info.variable_fps:
        lo, hi = info.fps_range or (0.0, 0.0)
        reporter.log(f"{src.name} has a variable frame rate ({lo:g}-{hi:g} fps); it is resampled to a "
                     f"constant {out_fps:g} fps")
    for message in warnings:
        reporter.log(message, "warning")

    # -- 3. where it goes (checked under the lock, so two ingests of one name cannot both proceed) ----
    lock_name = f"ingest/{actor}/{clip}" if actor is not None else f"ingest/shot/{shot}"
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(ws.lock(lock_name))
        except LockBusy as exc:
            raise JobFailed(str(exc), hint="wait for the other job to finish", code="busy") from None
        existing = ws.read_manifest()
        if actor is not None:
            exists = clip in existing.get("actors", {}).get(actor, {}).get("clips", {})
        else:
            exists = shot in existing.get("shots", {})
        if exists and not config.replace:
            raise JobFailed(f"{label} already exists in {ws.root}",
                            hint="choose another name (--clip / --shot) or pass --replace to ingest it again",
                            code="exists")
        geometry = plan_geometry(info, config, reporter, region_detector)
        staging = ws.root / STAGING_DIR / f"{final.name}-{uuid.uuid4().hex[:10]}"
        staging.mkdir(parents=True)
        stack.callback(shutil.rmtree, staging, ignore_errors=True)  # whatever happens, no staging is left
        result = _build(info, geometry, out_rate, passthrough, staging, config, detector, reporter, label,
                        warnings)
        record = _record(ws, info, geometry, out_rate, passthrough, final, result, emotion_label, synthetic,
                         warnings, actor is not None)
        if sentence:
            record["sentence"] = str(sentence)
        atomic_write_json(staging / PROBE_FILE, {
            "source": info.to_json(), "working": {k: record[k] for k in (
                "fps", "fps_num", "fps_den", "frames", "width", "height", "duration_s", "source_region",
                "source_scale", "source_size", "geometry", "timecode", "source_frames")},
            "ingest": {k: v for k, v in asdict(config).items() if k not in ("landmark", "crop")},
            "warnings": warnings})
        _publish(ws, staging, final, actor, clip, shot, record, reporter)
    return IngestResult(record=record, folder=final, warnings=warnings, track=result.get("track"),
                        crop=result.get("crop"))


def _build(info: VideoInfo, geometry: Geometry, out_rate: Fraction, passthrough: bool, staging: Path,
           config: IngestConfig, detector: LandmarkDetector | None, reporter: Reporter, label: str,
           warnings: list[str]) -> dict[str, Any]:
    """Decode once into ``staging``: video.mp4 (+ landmarks), audio.wav, landmarks.npz, crop.json."""
    from core.io.audio import extract_audio
    from core.io.ffmpeg import MediaError
    from core.io.video import VideoWriter, frame_count_for, iter_frames
    from core.workspace import atomic_write_json

    builder: TrackBuilder | MultiTrackBuilder | None = None
    if config.landmarks:
        if detector is None:
            try:
                from core.landmarks.detector import MediaPipeConfig, MediaPipeDetector

                detector = MediaPipeDetector(MediaPipeConfig(max_num_faces=max(1, config.max_faces)))
            except ImportError as exc:
                raise JobFailed(str(exc), hint="or ingest without landmarks (--no-landmarks)",
                                code="no_detector") from None
        builder = (MultiTrackBuilder(detector, config.landmark, max_faces=config.max_faces) if config.max_faces > 1
                   else TrackBuilder(detector, config.landmark))
    full_region = geometry.region == (0, 0, info.width, info.height)
    crop = None if full_region else geometry.region
    size = None if geometry.size == geometry.region[2:] else geometry.size
    out_fps = float(out_rate)
    total = info.frames if passthrough else frame_count_for(info.duration_s, out_rate)
    stage = "ingest+landmarks" if builder else "ingest"
    tick = ThrottledProgress(reporter, stage, total)
    frames = iter_frames(info.path, fps=None if passthrough else out_rate, crop=crop, size=size, info=info)
    n = 0
    try:
        with VideoWriter(staging / VIDEO_FILE, out_rate, crf=config.crf, preset=config.preset,
                         timecode=info.timecode) as writer:
            for frame in frames:
                writer.write(frame)
                if builder is not None:
                    builder.add(frame)
                n += 1
                tick(n)
            if n == 0:
                raise JobFailed(f"no frame of {info.path} could be decoded", hint="the file may be damaged",
                                code="no_frames")
            if n < config.min_frames:
                plural = "s" if n != 1 else ""
                raise JobFailed(f"{info.path} gives only {n} frame{plural} at {out_fps:g} fps; emodub needs "
                                f"at least {config.min_frames}", hint="give longer footage",
                                code="too_short")
    except MediaError as exc:
        raise _fail_media(exc) from None
    finally:
        frames.close()
    tick.finish(f"{n} frames")
    out: dict[str, Any] = {"frames": n, "audio": None}
    if info.has_audio:
        reporter.progress("audio", 0, 1, "extracting the sound")
        try:
            out["audio"] = extract_audio(info.path, staging / AUDIO_FILE, sr=config.sample_rate)
        except MediaError as exc:
            if label.startswith("clip"):
                raise JobFailed(f"cannot extract the sound of {info.path}: {exc.message}", hint=exc.hint,
                                code="bad_audio") from None
            warnings.append(f"the sound of the shot could not be extracted ({exc.message}); ingested "
                            "without it")
            reporter.log(warnings[-1], "warning")
        reporter.progress("audio", 1, 1)
    if builder is not None:
        try:
            tracks = builder.finish() if isinstance(builder, MultiTrackBuilder) else [builder.finish()]
        except NoFaceError as exc:
            raise JobFailed(f"{label}: {exc.message}", hint=exc.hint + "; or ingest without landmarks "
                            "(--no-landmarks)", code="no_face") from None
        track = tracks[0]
        if isinstance(builder, MultiTrackBuilder):
            mapping = {"source_region": dict(zip(("x", "y", "width", "height"), geometry.region, strict=True)),
                       "source_scale": list(geometry.scale)}
            doc = faces_document(tracks, mapping, (info.width, info.height), config.crop.pad, config.crop.pad_top)
            atomic_write_json(staging / FACES_FILE, doc)
            out["faces"] = doc["faces"]
            if len(tracks) > 1:
                from core.jobs.protocol import describe_faces

                for face_id, face_track in enumerate(tracks):
                    face_dir = staging / FACES_DIR / str(face_id)
                    face_dir.mkdir(parents=True)
                    save_stage(face_dir, face_track, config.crop, config.landmark)
                reporter.log(f"{len(tracks)} faces: {describe_faces(doc)}; track and dub one with --face ID")
                out.update(track=track, crop=None, summary=track.summary(float(out_rate)), multi=True)
                return out
        crop_t, _ = save_stage(staging, track, config.crop, config.landmark)
        for message in track_warnings(track, out_fps):
            warnings.append(message)
            reporter.log(message, "warning")
        summary = track.summary(out_fps)
        reporter.log(f"landmarks: face detected in {summary['detected']}/{summary['frames']} frames "
                     f"(mean confidence {summary['mean_confidence']:.2f}); crop {crop_t.size} px at "
                     f"({crop_t.x0}, {crop_t.y0}) -> {crop_t.out_size}")
        out.update(track=track, crop=crop_t, summary=summary)
    return out


def _record(ws: Workspace, info: VideoInfo, geometry: Geometry, out_rate: Fraction, passthrough: bool,
            final: Path, result: dict[str, Any], emotion: dict[str, float], synthetic: bool, warnings: list[str],
            is_clip: bool) -> dict[str, Any]:
    from core.io.ffmpeg import fps_record

    rel = final.relative_to(ws.root).as_posix()
    n = int(result["frames"])
    summary = result.get("summary")
    record: dict[str, Any] = {
        "video": f"{rel}/{VIDEO_FILE}", "audio": f"{rel}/{AUDIO_FILE}" if result["audio"] else None,
        **fps_record(out_rate), "frames": n, "width": geometry.size[0], "height": geometry.size[1],
        "duration_s": round(float(n / out_rate), 6), "timecode": info.timecode,
        # frame k of the working copy is frame k of the source (no resampling): the source is the plate
        "source_frames": bool(passthrough and n == info.frames),
        "source": info.path, "synthetic": bool(synthetic),
        "stages": {"ingest": True, "landmarks": summary is not None},
        "probe": f"{rel}/{PROBE_FILE}", "source_size": [info.width, info.height],
        "source_region": dict(zip(("x", "y", "width", "height"), geometry.region, strict=True)),
        "source_scale": [round(s, 8) for s in geometry.scale], "geometry": geometry.how,
        "ingested_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "warnings": list(warnings)}
    if is_clip:
        record["emotion"] = emotion
    if result.get("faces") is not None:
        record["faces"] = result["faces"]
        record["faces_file"] = f"{rel}/{FACES_FILE}"
    if summary is not None and not result.get("multi"):
        record["landmarks"] = f"{rel}/landmarks.npz"
        record["crop"] = f"{rel}/crop.json"
    if summary is not None:
        record["landmark_stats"] = {k: summary[k] for k in ("detection_rate", "interpolated", "flagged",
                                                            "mean_confidence", "detector")}
    return record


def _publish(ws: Workspace, staging: Path, final: Path, actor: str | None, clip: str | None, shot: str | None,
             record: dict[str, Any], reporter: Reporter) -> None:
    """Move the complete staging folder into place and record it (undone if the manifest update fails)."""
    reporter.check_cancelled()  # last point where a cancel leaves nothing behind
    final.parent.mkdir(parents=True, exist_ok=True)
    old: Path | None = None
    if final.exists():
        old = staging.parent / f"{staging.name}-old"
        os.replace(final, old)
    os.replace(staging, final)
    try:
        if actor is not None:
            ws.set_clip(actor, clip, record)  # type: ignore[arg-type]
        else:
            ws.set_shot(shot, record)  # type: ignore[arg-type]
    except BaseException:
        os.replace(final, staging)
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
