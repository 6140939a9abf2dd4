"""The renderer variants the engine offers, as the add-on shows them (pure Python, no ``bpy``).

The list comes from the engine (``emodub renderers --json``, which answers without loading torch): the add-on
names no renderer itself. Blender calls an enum's item callback on every redraw, so the answer is cached per
engine command; Check Engine refreshes it. Which variants the chosen actor has trained comes from the
workspace manifest (model records of kind ``renderer``; a record without a variant is the engine's default).
"""

from __future__ import annotations

import json
import subprocess
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import workspace as workspace_info
from .engine import EngineCommand, EngineError, engine_environment

BEST = "BEST"  # the enum identifier of "the actor's best trained renderer" (the engine decides which)


@dataclass(frozen=True)
class RendererCatalog:
    """The engine's renderer variants: ``variants`` (name, description, presets...), its ``default`` and the
    variant of model records that name none (``legacy``)."""

    variants: tuple[dict[str, Any], ...] = ()
    default: str = ""
    error: str = ""
    legacy: str = ""

    @property
    def names(self) -> list[str]:
        return [str(v["name"]) for v in self.variants]

    def describe(self, name: str) -> str:
        return next((str(v.get("description", "")) for v in self.variants if v["name"] == name), "")


def parse_catalog(stdout: str) -> RendererCatalog:
    """``emodub renderers --json`` output -> :class:`RendererCatalog` (an ``error`` when it is not that)."""
    try:
        data = json.loads(stdout)
        variants = tuple(v for v in data["variants"] if isinstance(v, dict) and isinstance(v.get("name"), str))
        default = str(data.get("default") or "")
        return RendererCatalog(variants, default, legacy=str(data.get("legacy") or default))
    except (json.JSONDecodeError, KeyError, TypeError):
        return RendererCatalog(error="the engine did not list its renderers (update emodub)")


def fetch_catalog(command: EngineCommand, env: Mapping[str, str] | None = None,
                  timeout: float = 60.0) -> RendererCatalog:
    """Ask the engine for its renderer variants (a fraction of a second: no torch is loaded)."""
    try:
        out = subprocess.run(command.renderers(), capture_output=True, text=True, timeout=timeout,
                             env=engine_environment(env), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return RendererCatalog(error=f"cannot ask the engine for its renderers: {exc}")
    catalog = parse_catalog(out.stdout)
    if catalog.error and out.stderr.strip():
        return RendererCatalog(error=f"{catalog.error}: {out.stderr.strip().splitlines()[-1]}")
    return catalog


@dataclass
class CatalogCache:
    """One catalog per engine command (and environment), fetched once."""

    _entries: dict[tuple[Any, ...], RendererCatalog] = field(default_factory=dict)
    _by_setting: dict[tuple[str, str], RendererCatalog] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_setting(self, setting: str, env_text: str, resolve: Any) -> RendererCatalog:
        """The catalog of the engine the preferences name; ``resolve(setting, env_text)`` -> (command, env) runs
        only when that setting was not seen yet (resolving may start a probe process; enum callbacks run on
        every redraw)."""
        key = (setting, env_text)
        if key not in self._by_setting:
            try:
                command, env = resolve(setting, env_text)
                self._by_setting[key] = self.get(command, env)
            except EngineError as exc:  # remembered too: no probe process on every redraw (Check Engine retries)
                self._by_setting[key] = engine_error(exc)
        return self._by_setting[key]

    def get(self, command: EngineCommand, env: Mapping[str, str] | None = None) -> RendererCatalog:
        key = (command.prefix, command.style, tuple(sorted((env or {}).items())))
        with self._lock:
            if key not in self._entries:
                self._entries[key] = fetch_catalog(command, env)
            return self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_setting.clear()


CACHE = CatalogCache()


def trained_variants(root: str, actor: str, default: str) -> dict[str, list[str]]:
    """Variant -> the actor's trained model names of that variant (from the workspace manifest; a record without
    a variant, written before variants existed, counts as ``default``, the engine's legacy variant)."""
    try:
        actors = workspace_info.read_manifest(root).get("actors", {})
    except workspace_info.WorkspaceProblem:
        return {}
    models = (actors.get(actor) or {}).get("models") or {}
    out: dict[str, list[str]] = {}
    for name, record in sorted(models.items()):
        if isinstance(record, dict) and record.get("kind") == "renderer":
            out.setdefault(str(record.get("variant") or default), []).append(name)
    return out


def enum_number(name: str) -> int:
    """A stable enum number for a variant name. Blender stores a dynamic enum's choice by number: numbering by
    position would silently change the editor's pick when the engine's list changes."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF or 1


def enum_items(catalog: RendererCatalog, trained: Mapping[str, list[str]]) -> list[tuple[str, str, str, str, int]]:
    """Blender enum items (identifier, label, tooltip, icon, number): the actor's best first, then every
    variant, marked when the actor has trained it."""
    items = [(BEST, "Actor's Best", "The actor's trained renderer with the best held-out face quality", "NONE", 0)]
    for name in catalog.names:
        models = trained.get(name, [])
        label = name.replace("_", " ").title() + (" (Trained)" if models else "")
        tip = catalog.describe(name) + (f". Trained: {', '.join(models)}" if models else ". Not trained yet")
        items.append((name, label, tip, "NONE", enum_number(name)))
    return items


def engine_error(exc: EngineError) -> RendererCatalog:
    return RendererCatalog(error=exc.message)
