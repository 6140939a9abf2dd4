"""The renderer variants the engine offers, for the app's Train and Dub dialogs.

The list comes from the engine the settings name (``<engine python> -m core.cli renderers --json``, answered in
a fraction of a second without torch); the app names no renderer itself. It is fetched once per engine setting
and cached; which variants an actor has trained comes from the workspace manifest
(:func:`core.renderers.catalog.trained_renderers`, standard library only).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from .settings import StudioSettings


@dataclass(frozen=True)
class RendererCatalog:
    """The engine's variants (dicts with name, description, presets, default_preset) and its default."""

    variants: tuple[dict[str, Any], ...] = ()
    default: str = ""
    error: str = ""

    @property
    def names(self) -> list[str]:
        return [str(v["name"]) for v in self.variants]

    def variant(self, name: str) -> dict[str, Any]:
        return next((v for v in self.variants if v["name"] == name), {})


_CACHE: dict[tuple[str, str], RendererCatalog] = {}


def engine_env(settings: StudioSettings) -> dict[str, str]:
    env = dict(os.environ)
    if settings.engine_pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (settings.engine_pythonpath, env.get("PYTHONPATH", "")) if p)
    return env


def renderer_catalog(settings: StudioSettings, refresh: bool = False) -> RendererCatalog:
    """The engine's renderer variants (cached per engine setting)."""
    key = (settings.engine_python, settings.engine_pythonpath)
    if refresh or key not in _CACHE:
        _CACHE[key] = _fetch(settings)
    return _CACHE[key]


def _fetch(settings: StudioSettings) -> RendererCatalog:
    try:
        out = subprocess.run([settings.engine_python, "-m", "core.cli", "renderers", "--json"], capture_output=True,
                             text=True, timeout=60, env=engine_env(settings), stdin=subprocess.DEVNULL)
        data = json.loads(out.stdout)
        variants = tuple(v for v in data["variants"] if isinstance(v, dict) and isinstance(v.get("name"), str))
        return RendererCatalog(variants, str(data.get("default") or ""))
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError, KeyError, TypeError) as exc:
        return RendererCatalog(error=f"the engine did not list its renderers ({exc}); check Settings > Engine")


def trained_variants(workspace: Any, actor: str) -> dict[str, list[str]]:
    """Variant -> the actor's trained renderer models (empty without a workspace)."""
    from core.renderers.catalog import trained_renderers

    if workspace is None or not actor:
        return {}
    out: dict[str, list[str]] = {}
    for name, record in sorted(trained_renderers(workspace.read_manifest(), actor).items()):
        out.setdefault(record["variant"], []).append(name)
    return out
