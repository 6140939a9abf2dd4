"""The emodub job protocol: job specs in, JSON-lines events out.

This module is the contract between the engine (``core``) and its two front-ends, the Blender
add-on and the desktop app. It uses the standard library only, because the add-on runs inside
Blender's Python (no torch, no numpy) and carries a byte-identical copy of this file
(``addon/protocol.py``, written by ``build.py``; a test checks the copy).

Wire format
-----------
* A job spec is one JSON object: ``{"v": 3, "id": ..., "kind": ..., "params": {...},
  "workspace": ...}``, on one line (or in a file). Nesting deeper than :data:`MAX_JSON_DEPTH` is
  refused.
* The engine writes one event per line on stdout: ``{"v": 3, "event": "progress", "job_id": ...,
  "t": <unix seconds>, ...fields}``. Logs for people go to stderr.
* The front-end may write control lines on the engine's stdin: ``cancel`` or
  ``{"v": 3, "control": "cancel"}``.

Anything else is rejected by :func:`decode_event` / :func:`decode_spec` with a
:class:`ProtocolError` that says what is wrong, never with a crash.

Versions
--------
* 1: the first protocol. The engine ignored params a job kind does not have.
* 2: params are strict: a param the kind does not have is refused (error code ``bad_spec``, with the
  closest valid name), and so is a param of the wrong type (``bad_params``). Error codes are
  :data:`ERROR_CODES`.
* 3: ``progress`` events carry the whole job's position, ``overall`` (0..1 across all its stages and the
  jobs it runs as steps, monotone, below 1 until ``done``) and ``overall_eta_s``, so that a front-end shows
  one bar per job; ``stage``/``done``/``total`` still say what the current stage is doing.

The engine still answers a version-1 spec (an add-on or app older than the engine): the job runs as
before, unknown params are ignored with a ``warning`` log that names them and asks for the front-end
to be updated, and the job's events are written in version 1 so that the old front-end can read them.
Likewise a version-2 spec gets version-2 events (without the fields version 3 added).
A spec of a version newer than :data:`PROTOCOL_VERSION` is refused (update the engine).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

PROTOCOL_VERSION = 3
# Spec versions this side answers (see "Versions" above); events of any of them decode too, so a
# front-end reads the refusal of an engine one version older than itself.
SUPPORTED_VERSIONS = (1, 2, 3)
STRICT_PARAMS_SINCE = 2
# Event fields added after version 1, and the version that added them: events answering an older spec
# leave them out (its front-end refuses fields it does not know).
FIELDS_SINCE: dict[str, int] = {"overall": 3, "overall_eta_s": 3}
# A job's bar stops short of full until its ``done`` event: a job is never shown finished while it runs.
BAR_BEFORE_DONE = 0.99
# Deeper nesting is refused before json.loads, which would die of a RecursionError on it.
MAX_JSON_DEPTH = 64
# A spec larger than this is refused (long per-frame curves are a few MB).
MAX_SPEC_BYTES = 64 * 1024 * 1024

# Exit codes of the worker process (the front-ends read them when the event stream ends early).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_SPEC = 2
EXIT_CANCELLED = 3

LOG_LEVELS = ("debug", "info", "warning", "error")

# Error codes (``Error.code``). Every code but INTERNAL is something the user can act on: front-ends
# show those as user errors (message and hint, no traceback); only INTERNAL is a bug in emodub. Job
# kinds use more specific codes too (``missing_input``, ``exists``, ``no_face``...): front-ends treat
# any code they do not know as a user error as well (:func:`is_user_error`).
BAD_INPUT = "bad_input"
BAD_PARAMS = "bad_params"
BAD_SPEC = "bad_spec"
BUSY = "busy"
READ_ONLY = "read_only"
DISK_FULL = "disk_full"
INCOMPATIBLE_CHECKPOINT = "incompatible_checkpoint"
UNSAFE_FILE = "unsafe_file"
CANCELLED = "cancelled"
NO_CONSENT = "no_consent"
FACE_CHOICE = "face_choice"
INTERNAL = "internal"
ERROR_CODES: dict[str, str] = {
    BAD_INPUT: "a file given to the job (audio, video, curves) cannot be used",
    BAD_PARAMS: "a job parameter has a wrong type or value",
    BAD_SPEC: "the job spec does not follow the protocol (unknown param, malformed JSON...)",
    BUSY: "another job is writing the same part of the workspace",
    READ_ONLY: "the workspace or the output folder cannot be written",
    DISK_FULL: "no space left on the disk",
    INCOMPATIBLE_CHECKPOINT: "a saved model was made with other settings or cannot be read",
    UNSAFE_FILE: "a workspace file holds more than tensors and plain data; it was not loaded",
    CANCELLED: "the job was cancelled (the 'cancelled' event, exit code 3)",
    NO_CONSENT: "the actor has no consent record; `emodub actor consent` adds one (the hint gives the command)",
    FACE_CHOICE: "the shot shows several faces: choose which one (by id; the message lists them and where they are)",
    INTERNAL: "a bug in emodub",
}


def is_user_error(code: str) -> bool:
    """True for every error the user can fix (all codes but :data:`INTERNAL`)."""
    return code != INTERNAL


# A hint that names a command line (``emodub track ...``, ``--shot``, a backticked command) is for the CLI; a
# front-end says what to do in its own buttons and menus instead (:func:`hint_in_own_words`).
_COMMAND_LINE = re.compile(r"`|\bemodub [a-z]|(?<![\w-])--[a-z]|\b[a-z_]+\.[a-z_]+\(")


def names_a_command(hint: str) -> bool:
    """True when ``hint`` speaks of a command, a flag or a function rather than of what a user clicks."""
    return bool(_COMMAND_LINE.search(hint))


def hint_in_own_words(code: str, kind: str, engine_hint: str, words: dict[str, str]) -> str:
    """What a front-end tells its user to do about an error: its own words for the error ``code`` of a job of
    ``kind`` (key ``"code@kind"``, then ``"code"``), else the engine's hint when it names no command, else
    the front-end's general advice (key ``"*"``)."""
    for key in (f"{code}@{kind}", code):
        if key in words:
            return words[key]
    if engine_hint and not names_a_command(engine_hint):
        return engine_hint
    return words.get("*", "")


class ProtocolError(ValueError):
    """A line or spec that does not follow the protocol. The message says what is wrong."""


@dataclass(frozen=True)
class JobSpec:
    """One job for the engine to run.

    Attributes:
        kind: registered job kind, e.g. ``"selftest"`` or ``"dub"``.
        params: JSON-serialisable parameters of that kind.
        workspace: path of the emodub workspace folder, or ``None`` for kinds that need none.
        id: unique job id; generated when omitted.
        version: the protocol version the spec was written in (:data:`PROTOCOL_VERSION` for new
            specs; a decoded spec keeps its own, so the engine can answer an older front-end).
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    workspace: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    version: int = PROTOCOL_VERSION

    @property
    def strict(self) -> bool:
        """Whether params this kind does not have are refused (from version 2 on) or ignored."""
        return self.version >= STRICT_PARAMS_SINCE

    def to_dict(self) -> dict[str, Any]:
        return {"v": self.version, "id": self.id, "kind": self.kind, "params": self.params,
                "workspace": self.workspace}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class Event:
    """Base of all events. ``job_id`` and ``t`` (unix time) are on every event."""

    name: ClassVar[str] = ""
    job_id: str
    t: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self, version: int = PROTOCOL_VERSION) -> dict[str, Any]:
        payload = {key: value for key, value in asdict(self).items() if FIELDS_SINCE.get(key, 1) <= version}
        return {"v": version, "event": self.name, **payload}


@dataclass(frozen=True)
class Started(Event):
    name: ClassVar[str] = "started"
    kind: str = ""


@dataclass(frozen=True)
class Progress(Event):
    """``done`` of ``total`` steps of ``stage``; ``eta_s`` (that stage's time left) is ``None`` until it can be
    estimated. ``overall`` is the whole job's position in [0, 1) (``None``: the engine does not say, version
    < 3) and ``overall_eta_s`` the whole job's time left."""

    name: ClassVar[str] = "progress"
    stage: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    eta_s: float | None = None
    overall: float | None = None
    overall_eta_s: float | None = None


@dataclass(frozen=True)
class Log(Event):
    name: ClassVar[str] = "log"
    level: str = "info"
    message: str = ""


@dataclass(frozen=True)
class Artifact(Event):
    """A file the job wrote completely (atomically); ``kind`` is e.g. ``video``, ``image``, ``report``."""

    name: ClassVar[str] = "artifact"
    path: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Error(Event):
    """The job failed. ``hint`` tells the user what to do about it."""

    name: ClassVar[str] = "error"
    code: str = "internal"
    message: str = ""
    hint: str = ""
    traceback: str = ""


@dataclass(frozen=True)
class Done(Event):
    name: ClassVar[str] = "done"
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancelled(Event):
    name: ClassVar[str] = "cancelled"
    message: str = ""


def bar_fraction(done: bool, overall: float | None, stage_done: int, stage_total: int) -> float | None:
    """What a front-end's bar shows for a job: 1 once it is ``done``; else the whole job's ``overall`` (protocol
    3), or the current stage's count from an older engine, both below :data:`BAR_BEFORE_DONE`; ``None`` when
    nothing is known. A failed or cancelled job keeps where it stopped."""
    if done:
        return 1.0
    if overall is not None:
        return min(max(overall, 0.0), BAR_BEFORE_DONE)
    if stage_total <= 0:
        return None
    return min(max(stage_done / stage_total, 0.0), BAR_BEFORE_DONE)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls for cls in (Started, Progress, Log, Artifact, Error, Done, Cancelled)
}
TERMINAL_EVENTS = frozenset({"done", "error", "cancelled"})

# Field name -> accepted JSON types, checked on decode so a front-end never sees a wrong type.
_NUMBER = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "job_id": (str,), "t": _NUMBER, "kind": (str,), "stage": (str,), "done": (int,),
    "total": (int,), "message": (str,), "eta_s": _NUMBER + (type(None),), "level": (str,),
    "overall": _NUMBER + (type(None),), "overall_eta_s": _NUMBER + (type(None),),
    "path": (str,), "code": (str,), "hint": (str,), "traceback": (str,), "outputs": (dict,),
}


def encode_event(event: Event, version: int = PROTOCOL_VERSION) -> str:
    """One JSON line (no trailing newline) for ``event``, in protocol ``version`` (that of the spec
    being answered; the event fields are the same in every supported version)."""
    return json.dumps(event.to_dict(version), sort_keys=True, allow_nan=False)


class SpecScanner:
    """Finds where a job spec ends in a byte stream, without parsing it (so a spec whose sender
    keeps the stream open without writing a newline is still read).

    Feed it the bytes as they arrive; :meth:`feed` returns the index in :attr:`data` just after the
    spec: after the closing brace of the first JSON object, or after the first newline outside a
    string (one spec per line), or at once when the text does not start with ``{`` or nests deeper
    than :data:`MAX_JSON_DEPTH` (it will be refused, no need to wait for more). ``None``: not yet.
    Only brackets, quotes, backslashes and newlines are looked at, so long number lists scan fast.
    """

    _SPECIAL = re.compile(rb'[][{}"\\\n]')

    def __init__(self) -> None:
        self.data = bytearray()
        self.deepest = 0
        self._pos = 0
        self._depth = 0
        self._started = False
        self._in_string = False
        self._skip_to = 0  # the byte after a backslash inside a string is not looked at

    def feed(self, chunk: bytes) -> int | None:
        self.data += chunk
        data = self.data
        if not self._started:
            start = len(data) - len(data.lstrip())
            if start == len(data):
                return None  # only whitespace so far
            self._started, self._pos = True, start
            if data[start] != ord("{"):
                newline = data.find(b"\n", start)
                return newline + 1 if newline >= 0 else len(data)
        for match in self._SPECIAL.finditer(data, self._pos):
            j = match.start()
            if j < self._skip_to:
                continue
            c = data[j]
            if c == 0x0A:  # a newline ends the spec line (JSON strings cannot hold a raw one)
                return j + 1
            if self._in_string:
                if c == 0x5C:
                    self._skip_to = j + 2
                elif c == 0x22:
                    self._in_string = False
            elif c == 0x22:
                self._in_string = True
            elif c in b"{[":
                self._depth += 1
                self.deepest = max(self.deepest, self._depth)
                if self._depth > MAX_JSON_DEPTH:
                    return j + 1
            elif c in b"}]":
                self._depth -= 1
                if self._depth <= 0:
                    return j + 1
        self._pos = len(data)
        return None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[][{}]")


def _json_depth(text: str) -> int:
    """Deepest bracket nesting of ``text`` outside its strings."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub("", text)):
        if match.group() in "{[":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _check_version(version: Any, what: str) -> int:
    if isinstance(version, int) and not isinstance(version, bool) and version in SUPPORTED_VERSIONS:
        return version
    if isinstance(version, int) and not isinstance(version, bool) and version > PROTOCOL_VERSION:
        raise ProtocolError(
            f"{what} uses protocol version {version}, this side speaks versions "
            f"{SUPPORTED_VERSIONS[0]} to {PROTOCOL_VERSION}; update emodub (the engine) to the front-end's release")
    raise ProtocolError(
        f"{what} uses protocol version {version!r}, this side speaks versions "
        f"{SUPPORTED_VERSIONS[0]} to {PROTOCOL_VERSION}; update the add-on/app and the engine together")


def _parse_object(line: str | bytes, what: str) -> dict[str, Any]:
    if isinstance(line, bytes | bytearray):
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"{what} is not UTF-8 text: {exc}") from None
    text = line.strip()
    if not text:
        raise ProtocolError(f"empty {what}")
    if len(text) > MAX_SPEC_BYTES:
        raise ProtocolError(f"{what} is larger than {MAX_SPEC_BYTES // 2**20} MiB")
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ProtocolError(f"malformed {what}: nested {depth} levels deep (at most {MAX_JSON_DEPTH})")
    try:
        obj = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and an integer of more than 4300 digits
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ProtocolError(f"malformed {what} (not JSON: {detail}): {text[:120]!r}") from None
    except RecursionError:  # the depth check above should make this unreachable
        raise ProtocolError(f"malformed {what}: nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"malformed {what}: expected a JSON object, got {type(obj).__name__}")
    obj["v"] = _check_version(obj.get("v"), what)
    return obj


def decode_event(line: str | bytes) -> Event:
    """Parse one line of the engine's stdout into an :class:`Event`.

    Raises:
        ProtocolError: malformed JSON, another protocol version, an unknown event name, a missing
            ``job_id``, an unexpected field or a field of the wrong type.
    """
    obj = _parse_object(line, "event line")
    name = obj.pop("event", None)
    obj.pop("v")
    if not isinstance(name, str):
        raise ProtocolError("event line has no 'event' name")
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise ProtocolError(f"unknown event {name!r}; known events: {', '.join(sorted(EVENT_TYPES))}")
    allowed = {f.name for f in fields(cls)}
    unknown = set(obj) - allowed
    if unknown:
        raise ProtocolError(f"event {name!r} has unexpected field(s): {', '.join(sorted(unknown))}")
    if "job_id" not in obj:
        raise ProtocolError(f"event {name!r} has no 'job_id'")
    for key, value in obj.items():
        expected = _FIELD_TYPES[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            raise ProtocolError(f"event {name!r}: field {key!r} has the wrong type "
                                f"({type(value).__name__})")
    if name == "log" and obj.get("level", "info") not in LOG_LEVELS:
        raise ProtocolError(f"log level {obj['level']!r} is not one of {', '.join(LOG_LEVELS)}")
    return cls(**obj)


def decode_spec(text: str | bytes) -> JobSpec:
    """Parse a job spec (one JSON object) of any supported version; it keeps its version.

    Only the envelope is checked here; the params are checked against the job kind by the engine
    (``JobKind.check_params``).

    Raises:
        ProtocolError: malformed JSON, too deep, an unsupported protocol version, missing or
            ill-typed fields.
    """
    obj = _parse_object(text, "job spec")
    version = obj["v"]
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError("job spec has no 'kind' (a job kind name such as 'selftest')")
    params = obj.get("params", {})
    if not isinstance(params, dict):
        raise ProtocolError("job spec 'params' must be a JSON object")
    workspace = obj.get("workspace")
    if workspace is not None and not isinstance(workspace, str):
        raise ProtocolError("job spec 'workspace' must be a path string or null")
    job_id = obj.get("id") or uuid.uuid4().hex[:12]
    if not isinstance(job_id, str):
        raise ProtocolError("job spec 'id' must be a string")
    unknown = set(obj) - {"v", "id", "kind", "params", "workspace"}
    if unknown:
        raise ProtocolError(f"job spec has unexpected field(s): {', '.join(sorted(unknown))}")
    return JobSpec(kind=kind, params=params, workspace=workspace, id=job_id, version=version)


CANCEL_LINE = "cancel"


def encode_cancel() -> str:
    """The control line a front-end writes on the engine's stdin to cancel the job."""
    return json.dumps({"v": PROTOCOL_VERSION, "control": "cancel"})


def is_cancel_line(line: str) -> bool:
    """True when a stdin line asks the running job to cancel (``cancel`` or the JSON form)."""
    text = line.strip()
    if text == CANCEL_LINE:
        return True
    if not text.startswith("{") or _json_depth(text) > MAX_JSON_DEPTH:
        return False
    try:
        obj = json.loads(text)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("control") == "cancel"


# --------------------------------------------------------------------------------------------------
# Faces of a shot (``shots/<shot>/faces.json``): which face a front-end's click is on
# --------------------------------------------------------------------------------------------------
# A shot with several faces is ingested with one landmark track per face (stable ids 0, 1, ... from left to
# right where they first appear). ``faces.json`` says where each face is on every frame, in coordinates
# normalised to the *source* picture (0..1, origin top-left), so a front-end can hit-test a click on the frame it
# shows (the movie strip in Blender, a frame in the app) without knowing the engine's working copy:
#
#   {"format": "emodub-faces", "version": 1, "frames": N, "width": W, "height": H,   # the source picture
#    "faces": [{"id": 0, "first": 0, "last": N-1, "detected": 48, "box": [x0, y0, x1, y1]}, ...],
#    "boxes": {"0": [[x0, y0, x1, y1] or null, ...one per frame], "1": [...]}}
#
# ``box`` is the face's box over the whole shot; ``boxes`` per frame (null: that face is not in that frame).

FACES_FORMAT = "emodub-faces"


def face_at(faces: dict[str, Any], frame: int, x: float, y: float) -> int | None:
    """The id of the face whose box contains the normalised point ``(x, y)`` on ``frame`` of a ``faces.json``
    document, or ``None``. Overlapping boxes: the one whose centre is nearest. A frame outside the shot is clamped
    to its first or last frame."""
    boxes = faces.get("boxes") or {}
    n = int(faces.get("frames") or 0)
    k = min(max(int(frame), 0), max(n - 1, 0))
    best: tuple[float, int] | None = None
    for key, per_frame in boxes.items():
        if not isinstance(per_frame, list) or k >= len(per_frame) or not per_frame[k]:
            continue
        x0, y0, x1, y1 = (float(v) for v in per_frame[k])
        if x0 <= x <= x1 and y0 <= y <= y1:
            distance = (x - (x0 + x1) / 2) ** 2 + (y - (y0 + y1) / 2) ** 2
            if best is None or distance < best[0]:
                best = (distance, int(key))
    return None if best is None else best[1]


def describe_faces(faces: dict[str, Any]) -> str:
    """One line per face for people: its id, where it is (left/centre/right, in source pixels) and its frames."""
    width, height = float(faces.get("width") or 1), float(faces.get("height") or 1)
    lines = []
    for face in faces.get("faces") or []:
        x0, y0, x1, y1 = (float(v) for v in face.get("box") or (0, 0, 0, 0))
        centre = (x0 + x1) / 2
        side = "left" if centre < 1 / 3 else "right" if centre > 2 / 3 else "centre"
        lines.append(f"face {face.get('id')}: {side} of the picture, x {x0 * width:.0f}-{x1 * width:.0f} px, "
                     f"y {y0 * height:.0f}-{y1 * height:.0f} px, frames {face.get('first')}-{face.get('last')}")
    return "; ".join(lines)
