"""Renderer classes by name, and their checkpoints.

:func:`register_renderer` binds a :class:`~core.renderers.base.Renderer` subclass to the variant its
``variant.py`` declared (:mod:`core.renderers.spec`); :func:`build` makes one from options; :func:`load`
rebuilds a trained one from its folder, dispatching on the variant recorded in the checkpoint.

Checkpoint (``<model dir>/checkpoint.pt``, format version 2): tensors and plain data only, written and read
with :mod:`core.io.checkpoint` (``torch.load(weights_only=True)``: a file with anything else inside is refused
with code ``unsafe_file``, never executed)::

    {"format": "emodub-renderer", "format_version": 2, "variant": "lipnerf",
     "options": {...}, "setup": {...}, "model": state_dict, "train": {optimiser/criteria state, history,
     iteration, rng}}

A version-1 checkpoint (the neural-texture renderer before the registry: ``model_config``, ``disc``,
``opt_g``, ``opt_d``...) still loads as ``neural_texture``. ``renderer.json`` beside it repeats the header
(variant, options, setup) for readers without torch.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

import torch

from core.io.checkpoint import CheckpointError, load_checkpoint

from .base import Renderer, RendererSetup
from .spec import BadRendererOption, get_variant, resolve_options

FORMAT = "emodub-renderer"
FORMAT_VERSION = 2
CHECKPOINT = "checkpoint.pt"
HEADER = "renderer.json"

log = logging.getLogger("emodub.renderers")
R = TypeVar("R", bound=type[Renderer])
_CLASSES: dict[str, type[Renderer]] = {}


RETRAIN_HINT = "train the renderer again (emodub train renderer --restart), or restore the model folder"


def register_renderer(name: str) -> Any:
    """Class decorator: ``name``'s :class:`Renderer` (the name must be declared in a ``variant.py``)."""

    def bind(cls: R) -> R:
        spec = get_variant(name)
        if spec.model.split(":")[1] != cls.__name__:
            raise ValueError(f"variant {name!r} declares model {spec.model}, not {cls.__name__}")
        cls.variant = name
        _CLASSES[name] = cls
        return cls

    return bind


def renderer_class(name: str) -> type[Renderer]:
    """The Renderer subclass of variant ``name`` (imports its model module)."""
    spec = get_variant(name)
    if name not in _CLASSES:
        importlib.import_module(spec.model.split(":")[0])
    return _CLASSES[name]


def make_options(name: str, values: dict[str, Any]) -> Any:
    """The variant's options dataclass from a dict (names it does not know are dropped with a warning: a
    checkpoint written by another version)."""
    cls = get_variant(name).config_class()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        log.warning("renderer settings not known to this version ignored: %s", ", ".join(unknown))
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known})


def build(name: str, setup: RendererSetup, preset: str | None = None, options: dict[str, Any] | None = None
          ) -> Renderer:
    """A new (untrained) renderer of variant ``name``: defaults, then ``preset``, then ``options``."""
    resolved = resolve_options(name, preset, options)
    return renderer_class(name)(make_options(name, resolved), setup)


# ------------------------------------------------------------------------------------------ checkpoints

def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A renderer checkpoint as a dict in the current format (a version-1 file is upgraded in memory).

    Raises:
        FileNotFoundError: no checkpoint there.
        CheckpointError: (:mod:`core.io.checkpoint`) code ``unsafe_file`` when the file holds anything but
            tensors and plain data (nothing in it runs), ``incompatible_checkpoint`` when it is not a renderer
            checkpoint of a known version.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no renderer checkpoint at {path}: train the renderer first")
    state = load_checkpoint(path, map_location=device, what="renderer checkpoint")
    if state.get("format") == FORMAT:
        version = int(state.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise CheckpointError(f"{path} was written by a newer emodub (renderer format {version}; this "
                                  f"version reads up to {FORMAT_VERSION})", path=path, hint="update emodub")
        return state
    if "model_config" in state and "model" in state:
        return _upgrade_v1(state)
    raise CheckpointError(f"{path} is not a renderer checkpoint (no format header)", path=path, hint=RETRAIN_HINT)


def _upgrade_v1(state: dict[str, Any]) -> dict[str, Any]:
    """The version-1 neural-texture checkpoint in the version-2 layout."""
    train = {"optimizers": {"model": state.get("opt_g")},
             "criteria": {f"gan.discriminator.{k}": v for k, v in (state.get("disc") or {}).items()},
             "criteria_optimizers": {"gan": state.get("opt_d")},
             "history": state.get("history", {}), "iteration": int(state.get("iteration", 0)),
             "rng": state.get("rng")}
    return {"format": FORMAT, "format_version": 1, "variant": "neural_texture",
            "options": dict(state["model_config"]),
            "setup": {"image_size": 0, "face_model": {}},  # not recorded then: unknown
            "model": state["model"], "train": train}


def renderer_from_state(state: dict[str, Any], device: torch.device | str = "cpu",
                        path: Path | str = CHECKPOINT) -> Renderer:
    """Rebuild the renderer a checkpoint dict (read from ``path``) describes and load its weights."""
    name = str(state["variant"])
    setup_fields = {f.name for f in fields(RendererSetup)}
    setup = RendererSetup(**{k: v for k, v in dict(state.get("setup", {})).items() if k in setup_fields})
    try:
        # an option the checkpoint predates takes the value it was trained with, not today's default
        options = {**getattr(get_variant(name).config_class(), "PREDATING_VALUES", {}), **state.get("options", {})}
        renderer = renderer_class(name)(make_options(name, options), setup)
    except (TypeError, BadRendererOption) as exc:
        raise CheckpointError(f"cannot rebuild the {name} renderer from {path} ({exc})",
                              path=path, hint=RETRAIN_HINT) from None
    try:
        renderer.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"the {name} checkpoint {path} does not match this version's network "
                              f"({str(exc).splitlines()[0]})", path=path, hint=RETRAIN_HINT) from None
    return renderer.to(device)


def load(folder: Path, device: torch.device | str = "cpu") -> Renderer:
    """The trained renderer in ``folder`` (eval mode), whatever its variant."""
    path = Path(folder) / CHECKPOINT
    return renderer_from_state(read_checkpoint(path, device), device, path).eval()


def header(renderer: Renderer) -> dict[str, Any]:
    """The plain-data header of a renderer's checkpoint (also ``renderer.json``)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "variant": renderer.variant,
            "options": asdict(renderer.options), "setup": asdict(renderer.setup)}
