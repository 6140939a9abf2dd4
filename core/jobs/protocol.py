"""The emodub job protocol: job specs in, JSON-lines events out.

This module is the contract between the engine (``core``) and its two front-ends, the Blender
add-on and the desktop app. It uses the standard library only, because the add-on runs inside
Blender's Python (no torch, no numpy) and carries a byte-identical copy of this file
(``addon/protocol.py``, written by ``build.py``; a test checks the copy).

Wire format
-----------
* A job spec is one JSON object: ``{"v": 1, "id": ..., "kind": ..., "params": {...},
  "workspace": ...}``.
* The engine writes one event per line on stdout: ``{"v": 1, "event": "progress", "job_id": ...,
  "t": <unix seconds>, ...fields}``. Logs for people go to stderr.
* The front-end may write control lines on the engine's stdin: ``cancel`` or
  ``{"v": 1, "control": "cancel"}``.

Anything else is rejected by :func:`decode_event` / :func:`decode_spec` with a
:class:`ProtocolError` that says what is wrong, never with a crash.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

PROTOCOL_VERSION = 1

# Exit codes of the worker process (the front-ends read them when the event stream ends early).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_SPEC = 2
EXIT_CANCELLED = 3

LOG_LEVELS = ("debug", "info", "warning", "error")


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
    """

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    workspace: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def to_dict(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "id": self.id, "kind": self.kind, "params": self.params,
                "workspace": self.workspace}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class Event:
    """Base of all events. ``job_id`` and ``t`` (unix time) are on every event."""

    name: ClassVar[str] = ""
    job_id: str
    t: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        return {"v": PROTOCOL_VERSION, "event": self.name, **payload}


@dataclass(frozen=True)
class Started(Event):
    name: ClassVar[str] = "started"
    kind: str = ""


@dataclass(frozen=True)
class Progress(Event):
    """``done`` of ``total`` steps of ``stage``; ``eta_s`` is ``None`` until it can be estimated."""

    name: ClassVar[str] = "progress"
    stage: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    eta_s: float | None = None


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


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls for cls in (Started, Progress, Log, Artifact, Error, Done, Cancelled)
}
TERMINAL_EVENTS = frozenset({"done", "error", "cancelled"})

# Field name -> accepted JSON types, checked on decode so a front-end never sees a wrong type.
_NUMBER = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "job_id": (str,), "t": _NUMBER, "kind": (str,), "stage": (str,), "done": (int,),
    "total": (int,), "message": (str,), "eta_s": _NUMBER + (type(None),), "level": (str,),
    "path": (str,), "code": (str,), "hint": (str,), "traceback": (str,), "outputs": (dict,),
}


def encode_event(event: Event) -> str:
    """One JSON line (no trailing newline) for ``event``."""
    return json.dumps(event.to_dict(), sort_keys=True, allow_nan=False)


def _parse_object(line: str | bytes, what: str) -> dict[str, Any]:
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"{what} is not UTF-8 text: {exc}") from None
    text = line.strip()
    if not text:
        raise ProtocolError(f"empty {what}")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"malformed {what} (not JSON: {exc.msg} at column {exc.colno}): "
                            f"{text[:120]!r}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"malformed {what}: expected a JSON object, got {type(obj).__name__}")
    version = obj.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"{what} uses protocol version {version!r}, this side speaks version {PROTOCOL_VERSION}; "
            "update the add-on/app and the engine together")
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
    """Parse a job spec (one JSON object).

    Raises:
        ProtocolError: malformed JSON, another protocol version, missing/ill-typed fields.
    """
    obj = _parse_object(text, "job spec")
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
    return JobSpec(kind=kind, params=params, workspace=workspace, id=job_id)


CANCEL_LINE = "cancel"


def encode_cancel() -> str:
    """The control line a front-end writes on the engine's stdin to cancel the job."""
    return json.dumps({"v": PROTOCOL_VERSION, "control": "cancel"})


def is_cancel_line(line: str) -> bool:
    """True when a stdin line asks the running job to cancel (``cancel`` or the JSON form)."""
    text = line.strip()
    if text == CANCEL_LINE:
        return True
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("control") == "cancel"
