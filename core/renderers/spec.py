"""What renderer variants exist and which options they take, known without importing torch.

Each variant is a package ``core/renderers/<name>/`` with

* ``variant.py`` — one :func:`declare_variant` call (standard library only);
* ``config.py`` — its options: a dataclass whose fields and ``Attributes:`` docstring are the options the
  CLI, the add-on and the app show, plus ``PRESETS`` (named option sets, e.g. ``paper`` and ``cpu``),
  ``TRAIN_DEFAULTS`` (the shared trainer's settings this variant prefers) and ``DEMO`` (its training at the
  demo's scales, with ``DEMO_ABLATIONS``); standard library only;
* ``model.py`` — the :class:`core.renderers.base.Renderer` subclass, registered with
  :func:`core.renderers.registry.register_renderer` (imports torch; loaded only when a model is built).

``emodub renderers --json`` and the front-ends read :func:`describe_variants`, which imports only the
first two, so it answers in a fraction of a second. Adding a renderer means adding one such folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "core.renderers"


class UnknownRenderer(ValueError):
    """A renderer name that is not registered; the message names the closest one and lists all."""


class BadRendererOption(ValueError):
    """An option that the variant does not have, or a value of the wrong type."""


@dataclass(frozen=True)
class VariantSpec:
    """A renderer variant as the registry knows it before anything heavy is imported.

    Attributes:
        name: the ``--renderer`` name (``neural_texture``, ``lipnerf``...).
        description: one line for lists and tooltips.
        config: ``"module:Class"`` of its options dataclass (standard-library module).
        model: ``"module:Class"`` of its :class:`~core.renderers.base.Renderer` (imports torch).
        paper: the method's source, for the README and ``--help``.
    """

    name: str
    description: str
    config: str
    model: str
    paper: str = ""

    def config_module(self) -> Any:
        return importlib.import_module(self.config.split(":")[0])

    def config_class(self) -> type:
        module, name = self.config.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def presets(self) -> dict[str, dict[str, Any]]:
        return dict(getattr(self.config_module(), "PRESETS", {}))

    @property
    def train_defaults(self) -> dict[str, Any]:
        return dict(getattr(self.config_module(), "TRAIN_DEFAULTS", {}))

    @property
    def default_preset(self) -> str | None:
        return getattr(self.config_module(), "DEFAULT_PRESET", None)

    def demo_params(self, scale: str) -> dict[str, Any]:
        """``train.renderer`` params of this variant at a demo scale (``smoke``, ``quick``, ``full``)."""
        return dict(getattr(self.config_module(), "DEMO", {}).get(scale, {}))

    @property
    def demo_ablations(self) -> tuple[str, ...]:
        """Presets a demo with ablations also trains and evaluates beside the variant (e.g. ``static``)."""
        return tuple(getattr(self.config_module(), "DEMO_ABLATIONS", ()))


_VARIANTS: dict[str, VariantSpec] = {}


def declare_variant(name: str, description: str, config: str, model: str, paper: str = "") -> VariantSpec:
    """Declare a variant (called by its ``variant.py``)."""
    spec = VariantSpec(name, description, config, model, paper)
    if name in _VARIANTS and _VARIANTS[name] != spec:
        raise ValueError(f"renderer variant {name!r} declared twice")
    _VARIANTS[name] = spec
    return spec


def _discover() -> None:
    root = Path(__file__).parent
    for path in sorted(root.glob("*/variant.py")):
        importlib.import_module(f"{PACKAGE}.{path.parent.name}.variant")


def variants() -> dict[str, VariantSpec]:
    """Every declared variant by name (sorted)."""
    _discover()
    return dict(sorted(_VARIANTS.items()))


def get_variant(name: str) -> VariantSpec:
    """The variant called ``name``.

    Raises:
        UnknownRenderer: no such variant (the message suggests the closest name).
    """
    known = variants()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(str(name), list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownRenderer(f"unknown renderer {name!r}{hint} (available: {', '.join(known)})")


# ---------------------------------------------------------------------------------------------- options

def _attribute_docs(cls: type) -> dict[str, str]:
    """``name: text`` entries of the ``Attributes:`` docstring sections of a dataclass and its bases (an entry's
    indented continuation lines joined)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__doc__ or ""
        if "Attributes:" not in doc:
            continue
        name: str | None = None
        parts: list[str] = []
        indent = 0
        for line in doc.split("Attributes:", 1)[1].splitlines() + [""]:
            match = re.match(r"^(\s*)([a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)*):\s+(.*)$", line)
            if match and (name is None or len(match.group(1)) <= indent):
                if name:
                    for key in name.split(", "):
                        out[key] = " ".join(parts)
                name, parts, indent = match.group(2), [match.group(3).strip()], len(match.group(1))
            elif name and line.strip():
                parts.append(line.strip())
            elif name and not line.strip():
                for key in name.split(", "):
                    out[key] = " ".join(parts)
                name, parts = None, []
    return out


def _type_name(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return text.replace("typing.", "")


def option_fields(cls: type) -> list[dict[str, Any]]:
    """The options of a config dataclass: name, type, default, help (plain data, JSON-ready)."""
    docs = _attribute_docs(cls)
    hints = typing.get_type_hints(cls) if not any(isinstance(f.type, str) for f in dataclasses.fields(cls)) \
        else {f.name: f.type for f in dataclasses.fields(cls)}
    out = []
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out.append({"name": f.name, "type": _type_name(hints.get(f.name, f.type)), "default": default,
                    "help": docs.get(f.name, "")})
    return out


def _coerce(option: dict[str, Any], value: Any) -> Any:
    """``value`` (possibly a CLI string) as the option's type."""
    kind = option["type"].split("|")[0].strip()
    name = option["name"]
    if value is None and "None" in option["type"]:
        return None
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            inner = "int" if "int" in kind else "float"
            return tuple(int(v) if inner == "int" else float(v) for v in items)
    except (TypeError, ValueError):
        raise BadRendererOption(f"option {name} takes a {option['type']}, got {value!r}") from None
    return value


def resolve_options(variant: str, preset: str | None = None, options: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """A variant's full option dict: defaults, then the preset (the variant's default preset when ``None``),
    then ``options`` (checked: unknown names get the closest valid one; values are coerced to the type).

    Raises:
        UnknownRenderer, BadRendererOption.
    """
    spec = get_variant(variant)
    fields = {o["name"]: o for o in option_fields(spec.config_class())}
    values = {name: o["default"] for name, o in fields.items()}
    presets = spec.presets
    chosen = preset or spec.default_preset
    if chosen is not None:
        if chosen not in presets:
            raise BadRendererOption(f"renderer {variant} has no preset {chosen!r} "
                                    f"(presets: {', '.join(presets) or 'none'})")
        values.update(presets[chosen].get("options", {}))
    for key, value in (options or {}).items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BadRendererOption(f"renderer {variant} has no option {key!r}{hint}")
        values[key] = _coerce(fields[key], value)
    return values


def preset_train_settings(variant: str, preset: str | None = None) -> dict[str, Any]:
    """The shared trainer's settings a variant prefers (its ``TRAIN_DEFAULTS`` then the preset's ``train``)."""
    spec = get_variant(variant)
    settings = spec.train_defaults
    chosen = preset or spec.default_preset
    if chosen is not None and chosen in spec.presets:
        settings.update(spec.presets[chosen].get("train", {}))
    return settings


def describe_variants() -> list[dict[str, Any]]:
    """Every variant as plain data: name, description, paper, options (name, type, default, help), presets
    (name -> description) and the default preset. What ``emodub renderers --json`` prints."""
    out = []
    for name, spec in variants().items():
        out.append({"name": name, "description": spec.description, "paper": spec.paper,
                    "options": option_fields(spec.config_class()),
                    "presets": {k: v.get("description", "") for k, v in spec.presets.items()},
                    "default_preset": spec.default_preset,
                    "train_defaults": spec.train_defaults})
    return out
