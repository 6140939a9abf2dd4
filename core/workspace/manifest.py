"""Workspace folder layout and its manifest (``emodub.json``).

Layout::

    W/emodub.json                       the manifest (schema below)
    W/actors/<actor>/clips/<clip>/      ingested footage, landmarks, tracking of one clip
    W/actors/<actor>/models/<model>/    trained models of that actor (a2e, renderer...)
    W/shots/<shot>/                     shots to be dubbed (ingested + tracked)
    W/renders/<render>/                 dub outputs
    W/.locks/                           stage locks of running jobs
    W/.staging/                         ingests in progress (see core.workspace.cleanup for leftovers)

The manifest records what exists; files are the truth for the bulk data. All paths in it are
relative to the workspace root, so a workspace can be moved.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import cleanup as _cleanup
from .atomic import atomic_write_json
from .lock import stage_lock

MANIFEST_NAME = "emodub.json"
FORMAT = "emodub-workspace"
SCHEMA_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SECTIONS = ("actors", "shots", "renders")


class WorkspaceError(Exception):
    """A workspace that cannot be used, or a record or name in it that is wrong; ``hint`` says what to
    do, ``code`` is the job protocol's error code (``bad_workspace``, ``bad_params`` for an invalid
    name, ``missing_input`` for an unknown clip/shot)."""

    def __init__(self, message: str, hint: str = "", code: str = "bad_workspace") -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


def validate_name(name: str, what: str = "name") -> str:
    """Actor/clip/shot/model names become folder names: letters, digits, ``_ . -``, <= 64 chars."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise WorkspaceError(
            f"invalid {what} {name!r}",
            hint="use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit", code="bad_params")
    return name


def sanitize_name(text: str, fallback: str = "shot") -> str:
    """A workspace name from ``text``: letters, digits, ``_ . -``, starting with a letter or digit, at most 64
    characters (``fallback`` when nothing is left)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:64]
    return name if name and _NAME.match(name) else fallback


def shot_name_for(video: str | os.PathLike[str]) -> str:
    """The shot name of a movie file, the same in every front-end: its sanitized stem and a short hash of its
    absolute path (the same file is always the same shot; two ``take1.mp4`` in different folders are not).
    The Blender add-on carries a copy (``addon/jobspec.py``, which cannot import the engine); a test keeps them
    equal."""
    import hashlib

    absolute = os.path.normcase(os.path.abspath(os.fspath(video)))
    digest = hashlib.sha1(absolute.encode("utf-8")).hexdigest()[:6]
    stem = sanitize_name(os.path.splitext(os.path.basename(absolute))[0])[:57]
    return f"{stem}-{digest}"


def empty_manifest() -> dict[str, Any]:
    from core import __version__

    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "emodub_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "actors": {}, "shots": {}, "renders": {}}


def validate_manifest(manifest: Any) -> list[str]:
    """Problems with a manifest, each a sentence; empty when it is valid."""
    from core.expression.emotions import EMOTIONS

    if not isinstance(manifest, dict):
        return ["the manifest is not a JSON object"]
    problems: list[str] = []
    if manifest.get("format") != FORMAT:
        problems.append(f"'format' is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        problems.append("'schema_version' is missing or not an integer")
    for section in _SECTIONS:
        if not isinstance(manifest.get(section), dict):
            problems.append(f"section {section!r} is missing or not an object")
    for actor, record in (manifest.get("actors") or {}).items():
        if not _NAME.match(str(actor)):
            problems.append(f"actor name {actor!r} is not a valid name")
        if not isinstance(record, dict):
            problems.append(f"actor {actor!r} is not an object")
            continue
        for clip, clip_rec in (record.get("clips") or {}).items():
            if not isinstance(clip_rec, dict):
                problems.append(f"clip {actor}/{clip} is not an object")
                continue
            emotion = clip_rec.get("emotion", {})
            if not isinstance(emotion, dict):
                problems.append(f"clip {actor}/{clip}: 'emotion' must map emotion names to intensities")
                continue
            for name, value in emotion.items():
                if name not in EMOTIONS:
                    problems.append(f"clip {actor}/{clip}: unknown emotion {name!r} "
                                    f"(known: {', '.join(EMOTIONS)}; neutral is no entry)")
                elif not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                    problems.append(
                        f"clip {actor}/{clip}: intensity of {name} must be in [0, 1], got {value!r}")
    return problems


class Workspace:
    """An emodub project folder. Create with :meth:`create`, open with :meth:`open`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- creation / opening ------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike[str], exist_ok: bool = False) -> Workspace:
        root = Path(root).expanduser().resolve()
        if (root / MANIFEST_NAME).exists():
            if exist_ok:
                return cls.open(root)
            raise WorkspaceError(f"{root} is already an emodub workspace", hint="open it instead", code="exists")
        if root.exists() and any(p for p in root.iterdir() if not p.name.startswith(".")):
            raise WorkspaceError(f"{root} exists and is not empty",
                                 hint="choose an empty or new folder for the workspace")
        try:
            for sub in _SECTIONS:
                (root / sub).mkdir(parents=True, exist_ok=True)
            atomic_write_json(root / MANIFEST_NAME, empty_manifest())
        except PermissionError as exc:
            raise WorkspaceError(f"cannot write to {root}: {exc.strerror}",
                                 hint="choose a folder you can write to") from None
        return cls(root)

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Workspace:
        root = Path(root).expanduser().resolve()
        path = root / MANIFEST_NAME
        if not path.exists():
            raise WorkspaceError(f"{root} is not an emodub workspace (no {MANIFEST_NAME})",
                                 hint="create one with `emodub workspace init DIR`")
        ws = cls(root)
        manifest = ws.read_manifest()
        version = manifest.get("schema_version") if isinstance(manifest, dict) else None
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{root} was written by a newer emodub (workspace schema {version}; this emodub reads "
                f"up to {SCHEMA_VERSION})", hint="update emodub to open this workspace")
        problems = validate_manifest(manifest)
        if problems:
            raise WorkspaceError(f"invalid workspace manifest {path}: " + "; ".join(problems),
                                 hint="fix or restore emodub.json (it is plain JSON)")
        return ws

    # -- manifest --------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise WorkspaceError(f"{self.manifest_path} is not valid JSON ({exc.msg}, line {exc.lineno})",
                                 hint="restore emodub.json from a backup or fix it by hand") from None

    @property
    def manifest(self) -> dict[str, Any]:
        return self.read_manifest()

    def validate(self) -> list[str]:
        """Problems with the manifest and the files it names; empty when all is well."""
        manifest = self.read_manifest()
        problems = validate_manifest(manifest)
        for actor, record in manifest.get("actors", {}).items():
            for clip, clip_rec in record.get("clips", {}).items():
                for key in ("video", "audio"):
                    rel = clip_rec.get(key)
                    if rel and not (self.root / rel).exists():
                        problems.append(f"clip {actor}/{clip}: {key} file {rel} is missing")
        return problems

    @contextlib.contextmanager
    def _manifest_flock(self) -> Iterator[None]:
        lock_path = self.root / ".locks" / "manifest.flock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def update(self, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        """Read-modify-write the manifest under a file lock; ``change`` edits the dict in place.
        The result is validated before it is written, so a bad edit never reaches the disk."""
        with self._manifest_flock():
            manifest = self.read_manifest()
            edited = copy.deepcopy(manifest)
            change(edited)
            problems = validate_manifest(edited)
            if problems:
                raise WorkspaceError("refusing to write an invalid manifest: " + "; ".join(problems))
            atomic_write_json(self.manifest_path, edited)
            return edited

    # -- folders ---------------------------------------------------------------------------
    def actor_dir(self, actor: str) -> Path:
        return self.root / "actors" / validate_name(actor, "actor name")

    def clip_dir(self, actor: str, clip: str) -> Path:
        return self.actor_dir(actor) / "clips" / validate_name(clip, "clip name")

    def model_dir(self, actor: str, model: str) -> Path:
        return self.actor_dir(actor) / "models" / validate_name(model, "model name")

    def shot_dir(self, shot: str) -> Path:
        return self.root / "shots" / validate_name(shot, "shot name")

    def render_dir(self, render: str) -> Path:
        return self.root / "renders" / validate_name(render, "render name")

    def rel(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the workspace root (as stored in the manifest)."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    def lock(self, stage: str) -> contextlib.AbstractContextManager[Path]:
        """Exclusive lock for writing ``stage`` (e.g. ``"track/anna/take1"``)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "__", stage)
        return stage_lock(self.root / ".locks" / f"{safe}.lock", what=stage)

    def locks(self) -> list[_cleanup.LockInfo]:
        """Every stage lock in the workspace, live or stale."""
        return _cleanup.locks(self.root)

    def others_at_work(self) -> list[_cleanup.LockInfo]:
        """Locks held by live processes other than this one (jobs running now)."""
        return _cleanup.others_at_work(self.root)

    def leftovers(self, min_age_s: float = _cleanup.TMP_GRACE_S) -> _cleanup.Leftovers:
        """What interrupted jobs left behind (see :mod:`core.workspace.cleanup`)."""
        renders = self.read_manifest().get("renders") or {}
        return _cleanup.find_leftovers(self.root, set(renders), min_age_s)

    def cleanup(self, min_age_s: float = _cleanup.TMP_GRACE_S) -> _cleanup.Leftovers:
        """Remove the leftovers of interrupted jobs; returns what was removed.

        Stale locks always go. Temporary files, staging folders and partial renders go only while no
        other process holds a lock here: they might be a running job's work in progress.
        """
        found = self.leftovers(min_age_s)
        if self.others_at_work():
            found = _cleanup.Leftovers(stale_locks=found.stale_locks)
        return _cleanup.remove(found)

    # -- records ---------------------------------------------------------------------------
    def actors(self) -> list[str]:
        return sorted(self.read_manifest()["actors"])

    def add_actor(self, actor: str) -> None:
        validate_name(actor, "actor name")
        self.update(lambda m: m["actors"].setdefault(actor, {"clips": {}, "models": {}}))
        self.actor_dir(actor).mkdir(parents=True, exist_ok=True)

    def clip(self, actor: str, clip: str) -> dict[str, Any]:
        try:
            return self.read_manifest()["actors"][actor]["clips"][clip]
        except KeyError:
            raise WorkspaceError(f"no clip {clip!r} for actor {actor!r} in {self.root}",
                                 hint="ingest it first with `emodub ingest`", code="missing_input") from None

    def set_clip(self, actor: str, clip: str, record: dict[str, Any]) -> None:
        """Add or replace a clip record (``video``/``audio`` paths relative to the root, fps,
        frames, ``emotion`` label...)."""
        validate_name(clip, "clip name")
        record = {"emotion": {}, **record}

        def change(m: dict[str, Any]) -> None:
            actor_rec = m["actors"].setdefault(actor, {"clips": {}, "models": {}})
            actor_rec.setdefault("clips", {})[clip] = record

        self.add_actor(actor)
        self.update(change)

    def update_clip(self, actor: str, clip: str, **fields: Any) -> None:
        self.clip(actor, clip)
        self.update(lambda m: m["actors"][actor]["clips"][clip].update(fields))

    def set_clip_emotion(self, actor: str, clip: str, emotion: dict[str, float]) -> None:
        """Label a clip with emotion intensities (``{}`` is neutral)."""
        self.update_clip(actor, clip, emotion={k: float(v) for k, v in emotion.items() if float(v) > 0})

    def set_model(self, actor: str, model: str, record: dict[str, Any]) -> None:
        validate_name(model, "model name")
        self.update(lambda m: m["actors"][actor].setdefault("models", {}).__setitem__(model, record))

    def shot(self, shot: str) -> dict[str, Any]:
        try:
            return self.read_manifest()["shots"][shot]
        except KeyError:
            raise WorkspaceError(f"no shot {shot!r} in {self.root}",
                                 hint="prepare it first with `emodub shot prepare VIDEO --shot NAME`",
                                 code="missing_input") from None

    def set_shot(self, shot: str, record: dict[str, Any]) -> None:
        validate_name(shot, "shot name")
        self.update(lambda m: m["shots"].__setitem__(shot, record))

    def update_shot(self, shot: str, **fields: Any) -> None:
        self.shot(shot)
        self.update(lambda m: m["shots"][shot].update(fields))

    def set_render(self, render: str, record: dict[str, Any]) -> None:
        validate_name(render, "render name")
        self.update(lambda m: m["renders"].__setitem__(render, record))
