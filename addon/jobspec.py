"""Building job specs from what the editor set up: names, job params, the dub audio window.

Pure Python (no ``bpy``). The params follow the shared contract of job kinds (``shot.prepare``,
``train.actor``, ``dub``); the operators gather plain values from the scene and call these.

Time on the Blender side is in scene frames. A movie strip shows its file's frame ``k`` at scene
frame ``shot_start + k`` (``shot_start = frame_start - animation_offset_start``); the engine's shot
is the whole file, so the dub covers all of the file's frames and the new strip gets the source
strip's trims (see :mod:`.placement`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

from . import protocol

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
# The engine's delivery formats and mattes (``emodub dub --format/--matte``; core.delivery.formats).
FORMATS: tuple[tuple[str, str, str], ...] = (
    ("h264", "H.264 review", "MP4, yuv420p, AAC audio: the file every player reads (the default)"),
    ("prores422hq", "ProRes 422 HQ", "MOV, 10-bit 4:2:2, PCM audio at the dub audio's rate and depth"),
    ("prores4444", "ProRes 4444", "MOV, 10-bit 4:4:4 (matte as alpha possible), PCM audio"),
    ("png16", "PNG 16-bit sequence", "lossless image sequence: every plate pixel outside the matte exact"),
    ("exr", "OpenEXR sequence", "32-bit float image sequence, lossless"),
)
ALPHA_FORMATS = ("prores4444", "png16", "exr")
MATTES: tuple[tuple[str, str, str], ...] = (
    ("none", "No matte", "write no matte"),
    ("sequence", "Matte sequence", "the paste matte (feathered face region) as a 16-bit PNG sequence"),
    ("alpha", "Matte as alpha", "the paste matte as the output's alpha channel (ProRes 4444, PNG, EXR)"),
)

EMOTION_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("auto", "Actor's Takes", "each emotion from the actor's labelled takes where filmed, else the face model's "
                               "generic expression"),
    ("prior", "Generic", "the face model's generic expression for every emotion, filmed or not"),
)


class JobInputError(ValueError):
    """Something the editor must fix before a job can start; ``hint`` says what."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def sanitize_name(text: str, fallback: str = "shot") -> str:
    """A workspace name from ``text``: letters, digits, ``_ . -``, starting with a letter or digit,
    at most 64 characters (``fallback`` when nothing is left)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:64]
    return name if name and NAME_RE.match(name) else fallback


def shot_name_for(video_path: str) -> str:
    """Deterministic shot name for a movie file: its sanitized stem and a short hash of its absolute
    path, so the same file always maps to the same prepared shot and two files called ``take1.mp4``
    in different folders do not collide. A copy of ``core.workspace.shot_name_for`` (the app names shots with
    that one): a test keeps the two equal."""
    absolute = os.path.normcase(os.path.abspath(video_path))
    digest = hashlib.sha1(absolute.encode("utf-8")).hexdigest()[:6]
    stem = sanitize_name(os.path.splitext(os.path.basename(video_path))[0])[:57]
    return f"{stem}-{digest}"


def check_name(name: str, what: str) -> str:
    """``name`` when it is a valid workspace name, else :class:`JobInputError`."""
    if not name:
        raise JobInputError(f"no {what} is set", hint=f"pick the {what} in the Dubbing panel")
    if not NAME_RE.match(name):
        raise JobInputError(f"invalid {what} {name!r}",
                            hint="use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return name


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise JobInputError(f"unknown device {device!r}", hint=f"choose one of {', '.join(DEVICES)}")
    return device


# --------------------------------------------------------------------------------------------------
# Job params (the shared contract)
# --------------------------------------------------------------------------------------------------

def prepare_shot_params(video: str, shot: str, device: str = "auto", *, max_faces: int = 1,
                        face: int | None = None) -> dict[str, Any]:
    """``shot.prepare``: ingest + landmarks + tracking of the movie file behind the source strip.

    No frame rate is sent: the engine keeps the shot's own rate and every one of its frames (a resampled shot
    would not line up frame for frame with the strip it replaces, least of all at 23.976 or 29.97).
    ``max_faces`` > 1 looks for several faces; ``face`` is the one to track (after Pick Face).
    """
    if not video:
        raise JobInputError("the source strip has no movie file", hint="pick a movie strip as the source")
    params: dict[str, Any] = {"video": video, "shot": check_name(shot, "shot"),
                              "device": check_device(device)}
    if max_faces > 1:
        params["max_faces"] = int(max_faces)
    if face is not None and face >= 0:
        params["face"] = int(face)
    return params


def footage_params(video: str, actor: str, emotion: str = "neutral", intensity: float = 1.0,
                   sentence: str = "") -> dict[str, Any]:
    """``ingest``: a movie file as the actor's footage (a clip named like its file), labelled with one emotion
    (``neutral``, or e.g. ``happy`` at ``intensity``), landmarks included, and with what it says (``sentence``:
    takes of one sentence in different emotions pair up for the jean renderer). Train Actor tracks it."""
    if not video:
        raise JobInputError("the strip has no movie file", hint="select the actor's movie strips")
    if emotion not in ("neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised"):
        raise JobInputError(f"unknown emotion {emotion!r}", hint="choose one of the listed emotions")
    if not 0.0 < intensity <= 1.0:
        raise JobInputError(f"the footage's emotion intensity must be in (0, 1], got {intensity:g}")
    label = "neutral" if emotion == "neutral" else f"{emotion}:{intensity:g}"
    clip = sanitize_name(os.path.splitext(os.path.basename(video))[0], "clip")
    params = {"video": video, "actor": check_name(actor, "actor"), "clip": clip, "emotion": label}
    if sentence.strip():
        params["sentence"] = sentence.strip()
    return params


def consent_params(actor: str, consented_by: str, scope: str, document: str) -> dict[str, Any]:
    """``actor.consent``: the record every actor needs before a dub (who consented, to what, the signed document)."""
    missing = [label for label, value in (("Consented By", consented_by), ("Scope", scope),
                                          ("Signed Document", document)) if not value.strip()]
    if missing:
        raise JobInputError(f"the consent record needs {', '.join(missing)}",
                            hint="fill in the Consent fields in the Actor Footage box")
    return {"actor": check_name(actor, "actor"), "consented_by": consented_by.strip(), "scope": scope.strip(),
            "document": document.strip()}


def train_actor_params(actor: str, device: str = "auto", a2e_iterations: int = 0, renderer_iterations: int = 0,
                       track_iterations: float = 1.0) -> dict[str, Any]:
    """``train.actor``: track the footage not tracked yet, then train the actor's audio-to-expression model and
    renderer in turn. Iterations of 0 and a tracking effort of 1 keep the engine's defaults."""
    params: dict[str, Any] = {"actor": check_name(actor, "actor"), "device": check_device(device)}
    if a2e_iterations < 0 or renderer_iterations < 0 or track_iterations <= 0:
        raise JobInputError("iterations and tracking effort cannot be negative",
                            hint="use 0 iterations for the defaults, a tracking effort above 0")
    if a2e_iterations:
        params["a2e_iterations"] = int(a2e_iterations)
    if renderer_iterations:
        params["renderer_iterations"] = int(renderer_iterations)
    if abs(track_iterations - 1.0) > 1e-9:
        params["track_iterations"] = round(float(track_iterations), 3)
    return params


@dataclass(frozen=True)
class AudioSpan:
    """The dub audio as the engine reads it: ``duration_s`` seconds (``None``: to the end of the file)
    of ``path`` from ``offset_s`` on; that audio starts at the shot's frame 0."""

    path: str
    offset_s: float = 0.0
    duration_s: float | None = None


def dub_params(*, actor: str, shot: str, audio: AudioSpan, emotions: dict[str, Any],
               renderer: str | None = None, renderers: list[str] | None = None, device: str = "auto",
               length: str = "shot", out: str | None = None, format: str = "h264", matte: str = "none",
               face: int | None = None, emotion_source: str = "auto") -> dict[str, Any]:
    """``dub``: re-render ``shot`` with ``audio`` and the per-frame ``emotions`` payload.

    ``renderer`` is a variant the engine offers (``renderers``, from ``emodub renderers --json``), or ``None``
    for the actor's best trained one (the engine decides). ``length`` is ``"shot"`` from the sequencer: the new
    strip must cover the source strip exactly. ``format``/``matte`` choose the delivery, ``emotion_source``
    (:data:`EMOTION_SOURCES`) where the emotions come from (each sent only when not the default, so an older
    engine still takes the spec); ``face`` the face of a shot with several.
    """
    if renderer and renderers is not None and renderer not in renderers:
        raise JobInputError(f"the engine has no renderer {renderer!r}",
                            hint=f"choose one of {', '.join(renderers) or 'none'} (Check Engine refreshes the list)")
    if length not in ("audio", "shot"):
        raise JobInputError(f"length must be 'audio' or 'shot', got {length!r}")
    if not audio.path:
        raise JobInputError("no dub audio", hint="pick the dub sound strip (or select sound strips to mix)")
    params: dict[str, Any] = {
        "actor": check_name(actor, "actor"), "shot": check_name(shot, "shot"), "audio": audio.path,
        "audio_offset_s": float(audio.offset_s), "audio_duration_s": audio.duration_s,
        "emotions": emotions, "length": length, "device": check_device(device)}
    if renderer:
        params["renderer"] = renderer
    if out:
        params["out"] = out
    if format not in [f[0] for f in FORMATS]:
        raise JobInputError(f"unknown delivery format {format!r}",
                            hint=f"choose one of {', '.join(f[0] for f in FORMATS)}")
    if matte not in [m[0] for m in MATTES]:
        raise JobInputError(f"unknown matte {matte!r}", hint="choose none, sequence or alpha")
    if matte == "alpha" and format not in ALPHA_FORMATS:
        raise JobInputError(f"{format} has no alpha channel for the matte",
                            hint=f"choose the matte sequence, or one of {', '.join(ALPHA_FORMATS)}")
    if format != "h264":
        params["format"] = format
    if matte != "none":
        params["matte"] = matte
    if face is not None and face >= 0:
        params["face"] = int(face)
    if emotion_source not in [e[0] for e in EMOTION_SOURCES]:
        raise JobInputError(f"unknown emotion source {emotion_source!r}", hint="choose auto or prior")
    if emotion_source != "auto":
        params["emotion_source"] = emotion_source
    return params


def preview_frame_index(span: Any, scene_frame: int) -> int:
    """The dub's output frame shown at ``scene_frame`` over the source strip (the dub covers the whole file:
    output frame ``k`` is at scene frame ``shot_start + k``).

    Raises:
        JobInputError: the playhead is not over the source strip's visible part.
    """
    if not span.final_start <= scene_frame < span.final_end:
        raise JobInputError(f"the playhead (frame {scene_frame}) is not over the source strip "
                            f"(frames {span.final_start:g}-{span.final_end - 1:g})",
                            hint="move the playhead over the strip to preview")
    return int(round(scene_frame - span.shot_start))


def preview_params(dub: dict[str, Any], frame: int, count: int = 1) -> dict[str, Any]:
    """``preview``: the dub's params (the same dub) and the output frames to render."""
    params = {k: v for k, v in dub.items() if k not in ("out", "name")}
    params.update(frame=int(frame), count=int(count))
    return params


def make_spec(kind: str, params: dict[str, Any], workspace: str | None) -> protocol.JobSpec:
    return protocol.JobSpec(kind=kind, params=params, workspace=workspace or None)


def job_keys(*, shot: str | None = None, actor: str | None = None, clip: str | None = None,
             consent: str | None = None, workspace: str | None = None) -> frozenset[str]:
    """What a job works on; two jobs with a common key may not run at once (one shot, one actor; one clip
    ``actor/clip`` being imported, so that an actor's takes import side by side; one actor's consent record; one
    workspace folder being created)."""
    named = (("shot", shot), ("actor", actor), ("clip", clip), ("consent", consent), ("workspace", workspace))
    return frozenset(f"{kind}:{value}" for kind, value in named if value)


# --------------------------------------------------------------------------------------------------
# Dub audio from sound strips
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SoundStripInfo:
    """What the audio math needs from a sound strip (all times in scene frames unless named ``_s``).

    Attributes:
        name: strip name (for messages).
        filepath: absolute path of the sound file.
        frame_start: scene frame where the strip's (trimmed) content starts.
        final_start, final_end: the audible range ``[final_start, final_end)`` after the handles.
        trim_start: frames cut from the start of the file (``animation_offset_start``).
        sound_offset_s: Blender's extra sub-frame offset of the sound, in seconds.
        volume: the strip's volume (used by the mixdown).
    """

    name: str
    filepath: str
    frame_start: float
    final_start: float
    final_end: float
    trim_start: float = 0.0
    sound_offset_s: float = 0.0
    volume: float = 1.0

    def file_time_at(self, frame: float, fps: float) -> float:
        """Time in the sound file (seconds) heard at scene ``frame``."""
        return (frame - self.frame_start + self.trim_start) / fps + self.sound_offset_s


def direct_audio_span(strip: SoundStripInfo, shot_start: float, shot_frames: int,
                      fps: float) -> AudioSpan | None:
    """The file window of ``strip`` that plays over the shot, or ``None`` when it cannot be expressed
    as one window (the strip starts after the shot does: it needs leading silence, i.e. a mixdown).

    Raises:
        JobInputError: the strip is not heard at all during the shot.
    """
    shot_end = shot_start + shot_frames
    if strip.final_end <= shot_start or strip.final_start >= shot_end:
        raise JobInputError(f"the dub sound strip {strip.name!r} does not overlap the source strip",
                            hint="move the sound strip under the movie strip it dubs")
    offset = strip.file_time_at(shot_start, fps)
    if strip.final_start > shot_start or offset < 0:
        return None
    duration = (min(strip.final_end, shot_end) - shot_start) / fps
    return AudioSpan(strip.filepath, round(offset, 6), round(duration, 6))


@dataclass(frozen=True)
class MixPiece:
    """One strip's part of a mixdown: ``duration_s`` of ``path`` from ``file_start_s``, placed
    ``delay_s`` after the shot's frame 0, at ``volume``."""

    path: str
    file_start_s: float
    delay_s: float
    duration_s: float
    volume: float = 1.0


def mixdown_plan(strips: list[SoundStripInfo], shot_start: float, shot_frames: int,
                 fps: float) -> list[MixPiece]:
    """How to mix ``strips`` into one file whose time 0 is the shot's frame 0.

    Raises:
        JobInputError: no strip is heard during the shot.
    """
    shot_end = shot_start + shot_frames
    pieces: list[MixPiece] = []
    for strip in strips:
        begin, end = max(strip.final_start, shot_start), min(strip.final_end, shot_end)
        if end <= begin:
            continue
        file_start = strip.file_time_at(begin, fps)
        delay = (begin - shot_start) / fps
        duration = (end - begin) / fps
        if file_start < 0:  # a negative sound offset: the file starts later than the strip
            delay, duration, file_start = delay - file_start, duration + file_start, 0.0
        if duration > 0:
            pieces.append(MixPiece(strip.filepath, round(file_start, 6), round(delay, 6), round(duration, 6),
                                   strip.volume))
    if not pieces:
        names = ", ".join(repr(s.name) for s in strips) or "none"
        raise JobInputError(f"no sound strip is heard during the source strip (strips: {names})",
                            hint="place the dub sound strip under the source movie strip")
    return pieces


# --------------------------------------------------------------------------------------------------
# Batches: every selected movie strip in every dub language (job kind ``batch.dub``)
# --------------------------------------------------------------------------------------------------

PLAN_FORMAT = "emodub-plan/1"  # core/batch/plan.py
_LANGUAGE_RE = re.compile(r"^[A-Za-z0-9]+([_-][A-Za-z0-9]+)*$")


def parse_languages(text: str) -> list[tuple[str, int]]:
    """``"de:5, fr:6"`` -> ``[("de", 5), ("fr", 6)]``: each dub language and the sequencer channel holding its
    sound strips.

    Raises:
        JobInputError: an entry is not ``language:channel``, a channel is outside 1-128, or is used twice.
    """
    pairs: list[tuple[str, int]] = []
    for entry in filter(None, (part.strip() for part in text.replace(";", ",").split(","))):
        language, sep, channel = entry.partition(":")
        language = language.strip()
        if not sep or not _LANGUAGE_RE.match(language) or not channel.strip().isdigit() \
                or not 1 <= int(channel) <= 128:
            raise JobInputError(f"dub language {entry!r} is not LANGUAGE:CHANNEL",
                                hint="write e.g. de:5, fr:6 (the language's sound strips lie in that channel)")
        pairs.append((language, int(channel)))
    if not pairs:
        raise JobInputError("no dub languages are set",
                            hint="set Dub Languages, e.g. de:5, fr:6 (each language's sound strips in a channel)")
    channels = [c for _, c in pairs]
    languages = [lang for lang, _ in pairs]
    if len(set(channels)) != len(channels) or len(set(languages)) != len(languages):
        raise JobInputError("each dub language needs its own channel, and each language may appear once",
                            hint="e.g. de:5, fr:6")
    return pairs


@dataclass(frozen=True)
class BatchItem:
    """One dub of a batch: the source movie strip ``strip`` (its prepared ``shot``) in ``language`` with
    ``audio``, and the strip's emotion curves (a JSON file the engine reads)."""

    strip: str
    shot: str
    language: str
    audio: AudioSpan
    curves: str

    @property
    def id(self) -> str:
        return f"{sanitize_name(self.strip, 'strip').replace('.', '_')}-{self.language}"


def batch_plan(*, name: str, actor: str, items: list[BatchItem], renderer: str | None = None,
               format: str = "h264", matte: str = "none") -> dict[str, Any]:
    """The plan of ``batch.dub`` (its JSON form, core/batch/plan.py) for ``items``: one explicit item each, the
    dub covering the whole shot (``length`` ``shot``) like Render Dub does."""
    if not items:
        raise JobInputError("nothing to dub", hint="select the movie strips to dub")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise JobInputError("two selected strips have the same name", hint="rename one of them")
    plan_items = []
    for item in items:
        options: dict[str, Any] = {"length": "shot", "audio_offset_s": float(item.audio.offset_s)}
        if item.audio.duration_s is not None:
            options["audio_duration_s"] = float(item.audio.duration_s)
        if format != "h264":
            options["format"] = format
        if matte != "none":
            options["matte"] = matte
        entry: dict[str, Any] = {"id": item.id, "shot": check_name(item.shot, "shot"), "audio": item.audio.path,
                                 "language": item.language, "emotion_name": "curves", "emotions": item.curves,
                                 "options": options}
        if renderer:
            entry["renderer"] = renderer
        plan_items.append(entry)
    return {"format": PLAN_FORMAT, "name": sanitize_name(name, "batch"), "actor": check_name(actor, "actor"),
            "items": plan_items}
