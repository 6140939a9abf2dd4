"""Dubbing plans: many dubs (shots x audio tracks x emotion passes x renderers) described in one file.

A plan is a JSON or TOML file. Relative paths in it are relative to the plan file's folder. Example (TOML)::

    format = "emodub-plan/1"          # optional; the only format so far
    name = "s01-german"               # the batch's name (default: the plan file's stem)
    actor = "anna"                    # default actor of every shot
    renderers = ["neural_texture"]    # default [the actor's best trained renderer]

    [options]                         # any `emodub dub` param, applied to every item
    format = "h264"
    end = "loop"

    [tracks]                          # language -> audio, for shots that do not list their own
    de = "audio/de.wav"

    [emotions]                        # emotion pass -> curves JSON file, or a constant spec ("" = neutral)
    neutral = ""
    happy = "curves/happy.json"

    [[shots]]
    shot = "ep01_012"                 # a prepared shot of the workspace
    [shots.tracks]                    # this shot's own audio per language (overrides [tracks])
    de = "audio/ep01_012_de.wav"
    fr = "audio/ep01_012_fr.wav"

    [[items]]                         # explicit items, beside the product above
    shot = "ep01_013"
    audio = "audio/ep01_013_pickup.wav"
    language = "de"
    emotions = "sad:0.4"

A shot may also be just its name (``shots = ["ep01_012", "ep01_013"]``). Every item is one ``dub`` job; its
params are checked against the ``dub`` job kind when the plan is read (a wrong param or value is refused with
the item named), not when the item runs. A missing audio file is not a plan error: that item fails with its
message and the others go on.

Items have stable ids (``<shot>.<language>.<emotion pass>[.<renderer>]``), so a plan that is run again finds
the items it finished and runs only the others.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLAN_FORMAT = "emodub-plan/1"
_TOP_KEYS = {"format", "name", "actor", "renderer", "renderers", "options", "tracks", "emotions", "shots", "items"}
_SHOT_KEYS = {"shot", "actor", "tracks", "face", "renderers", "emotions"}
_ITEM_KEYS = {"id", "shot", "audio", "language", "emotion_name", "emotions", "renderer", "actor", "options"}
_ID_PART = re.compile(r"[^A-Za-z0-9_-]+")
# dub params a plan may not set per item: the batch owns the render name and the device
_BATCH_OWNED = {"name", "out", "device"}
MAX_NAME = 64


class PlanError(ValueError):
    """A plan that cannot be run: ``problems`` lists every mistake found (each names where it is)."""

    def __init__(self, path: Path | None, problems: list[str]) -> None:
        where = f"plan {path}" if path else "plan"
        super().__init__(f"{where}: " + "; ".join(problems[:8]) + (f" (and {len(problems) - 8} more)"
                                                                   if len(problems) > 8 else ""))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class PlanItem:
    """One dub of a plan.

    Attributes:
        id: stable id within the plan (the name of its state file and its log).
        shot / language / emotion / renderer: what the item dubs, for reports and front-ends.
        params: the ``dub`` job's params (audio path absolute; render name set by the batch).
    """

    id: str
    shot: str
    language: str
    emotion: str
    renderer: str | None
    params: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "shot": self.shot, "language": self.language, "emotion": self.emotion,
                "renderer": self.renderer, "params": self.params}


@dataclass
class Plan:
    name: str
    items: list[PlanItem] = field(default_factory=list)
    source: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "name": self.name, "source": str(self.source) if self.source else None,
                "items": [item.to_json() for item in self.items]}

    def digest(self) -> str:
        """A hash of what the items do (a finished item is only skipped when its params are the same)."""
        return hashlib.sha256(json.dumps([i.to_json() for i in self.items], sort_keys=True).encode()).hexdigest()


def _id_part(text: str) -> str:
    return _ID_PART.sub("_", text).strip("_") or "x"


def render_name_for(plan_name: str, item_id: str) -> str:
    """The workspace render name of an item: ``<plan>-<item id>``, shortened with a hash when too long."""
    name = f"{_id_part(plan_name)}-{item_id}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - 9]}-{digest}"


def read_plan_file(path: Path) -> dict[str, Any]:
    """The raw plan object of a ``.json`` or ``.toml`` file.

    Raises:
        PlanError: the file is missing, unreadable, or not valid JSON/TOML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(path, [f"cannot read it ({exc})"]) from None
    try:
        raw = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, RecursionError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise PlanError(path, [f"not valid {kind} ({exc})"]) from None
    if not isinstance(raw, dict):
        raise PlanError(path, ["the plan must be an object (a table)"])
    return raw


def load_plan(path: str | Path, default_name: str | None = None) -> Plan:
    """Read and check the plan file ``path`` (see the module docstring for its form)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise PlanError(path, ["the file does not exist"])
    return parse_plan(read_plan_file(path), base=path.parent, name=default_name or path.stem, source=path)


def _string_map(value: Any, where: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        problems.append(f"{where} must map names to strings")
        return {}
    return dict(value)


def _table_list(raw: dict[str, Any], key: str, problems: list[str]) -> list[Any]:
    value = raw.get(key) or []
    if not isinstance(value, list):
        problems.append(f"{key} must be a list")
        return []
    return value


def _unknown_keys(entry: dict[str, Any], known: set[str], where: str, problems: list[str]) -> None:
    bad = sorted(set(entry) - known)
    if bad:
        problems.append(f"{where}: unknown key(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")


def _resolve(base: Path, text: str) -> str:
    return str((base / Path(text).expanduser()).resolve()) if text else text


def _emotion_value(base: Path, value: str) -> str | None:
    """A curves file (resolved against the plan's folder), a constant spec, or None for neutral."""
    value = value.strip()
    if not value or value.lower() == "neutral":
        return None
    return _resolve(base, value) if value.lower().endswith(".json") else value


def parse_plan(raw: dict[str, Any], base: Path, name: str, source: Path | None = None) -> Plan:
    """Expand a plan object into its items and check each against the ``dub`` job kind.

    Raises:
        PlanError: every problem found (unknown keys, wrong types, duplicate ids, params ``dub`` refuses).
    """
    from core.jobs.context import JobFailed
    from core.jobs.registry import get_kind

    problems: list[str] = []
    _unknown_keys(raw, _TOP_KEYS, "the plan", problems)
    if raw.get("format", PLAN_FORMAT) != PLAN_FORMAT:
        problems.append(f"format {raw.get('format')!r} is not {PLAN_FORMAT!r} (a newer emodub wrote it?)")
    plan_name = raw.get("name", name)
    if not isinstance(plan_name, str) or not plan_name.strip():
        problems.append("name must be a non-empty string")
        plan_name = name
    actor = raw.get("actor")
    renderers_raw = raw.get("renderers", [raw["renderer"]] if raw.get("renderer") else [None])
    if not isinstance(renderers_raw, list) or not all(r is None or isinstance(r, str) for r in renderers_raw) \
            or not renderers_raw:
        problems.append("renderers must be a non-empty list of renderer names")
        renderers_raw = [None]
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        problems.append("options must be a table of dub params")
        options = {}
    owned = sorted(_BATCH_OWNED & set(options))
    if owned:
        problems.append(f"options may not set {', '.join(owned)} (the batch sets them per item)")
    tracks = _string_map(raw.get("tracks"), "tracks", problems)
    emotions = _string_map(raw.get("emotions"), "emotions", problems) or {"neutral": ""}

    items: list[PlanItem] = []

    def add(shot: str, language: str, audio: str, emotion_name: str, emotion: str | None, renderer: str | None,
            item_actor: Any, extra: dict[str, Any], where: str, item_id: str | None = None) -> None:
        if not isinstance(item_actor, str) or not item_actor:
            problems.append(f"{where}: no actor (set 'actor' in the plan or the shot)")
            return
        parts = [shot, language, emotion_name] + ([renderer] if len(renderers_raw) > 1 and renderer else [])
        iid = item_id or ".".join(_id_part(p) for p in parts)
        params: dict[str, Any] = {**options, **extra, "actor": item_actor, "shot": shot,
                                  "audio": _resolve(base, audio), "name": render_name_for(plan_name, iid)}
        if emotion is not None:
            params["emotions"] = emotion
        if renderer:
            params["renderer"] = renderer
        items.append(PlanItem(iid, shot, language, emotion_name, renderer, params))

    for index, entry in enumerate(_table_list(raw, "shots", problems)):
        where = f"shots[{index}]"
        if isinstance(entry, str):
            entry = {"shot": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("shot"), str):
            problems.append(f"{where} must be a shot name or a table with 'shot'")
            continue
        _unknown_keys(entry, _SHOT_KEYS, where, problems)
        shot_tracks = _string_map(entry.get("tracks"), f"{where}.tracks", problems) or tracks
        if not shot_tracks:
            problems.append(f"{where} ({entry['shot']}): no audio tracks (give [tracks] or the shot's own)")
        shot_emotions = _string_map(entry.get("emotions"), f"{where}.emotions", problems) or emotions
        extra = {"face": entry["face"]} if entry.get("face") is not None else {}
        for language, audio in shot_tracks.items():
            for emotion_name, emotion in shot_emotions.items():
                for renderer in entry.get("renderers") or renderers_raw:
                    add(entry["shot"], language, audio, emotion_name, _emotion_value(base, emotion), renderer,
                        entry.get("actor", actor), extra, where)

    for index, entry in enumerate(_table_list(raw, "items", problems)):
        where = f"items[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("shot"), str) \
                or not isinstance(entry.get("audio"), str):
            problems.append(f"{where} must be a table with 'shot' and 'audio'")
            continue
        _unknown_keys(entry, _ITEM_KEYS, where, problems)
        extra = entry.get("options") or {}
        if not isinstance(extra, dict) or _BATCH_OWNED & set(extra):
            problems.append(f"{where}.options must be a table of dub params without {', '.join(sorted(_BATCH_OWNED))}")
            extra = {}
        emotion = entry.get("emotions")
        emotion_name = entry.get("emotion_name") or (_id_part(emotion) if isinstance(emotion, str) and emotion
                                                     and not emotion.endswith(".json") else "neutral")
        item_id = entry.get("id")
        if item_id is not None and (not isinstance(item_id, str) or _id_part(item_id) != item_id):
            problems.append(f"{where}.id must use letters, digits, '_' or '-' only")
            item_id = None
        add(entry["shot"], str(entry.get("language") or "dub"), entry["audio"], str(emotion_name),
            _emotion_value(base, emotion) if isinstance(emotion, str) else emotion, entry.get("renderer"),
            entry.get("actor", actor), extra, where, item_id)

    if not items and not problems:
        problems.append("the plan has no items (give shots with tracks, or items)")
    seen: dict[str, int] = {}
    for item in items:
        seen[item.id] = seen.get(item.id, 0) + 1
    duplicates = sorted(i for i, n in seen.items() if n > 1)
    if duplicates:
        problems.append(f"duplicate item id(s) {', '.join(duplicates)} (give items an 'id', or an emotion_name)")

    dub_kind = get_kind("dub")
    assert dub_kind is not None
    for item in items:
        try:
            dub_kind.check_params(item.params)
        except JobFailed as exc:
            problems.append(f"item {item.id}: {exc.message}")
    if problems:
        raise PlanError(source, problems)
    return Plan(name=_id_part(plan_name), items=items, source=source)
