"""The registry of job kinds shared by the worker and the CLI.

A job kind is a function ``run(ctx: JobContext) -> dict`` (its outputs) registered with
:func:`job_kind`. Kinds live in modules named ``jobs.py`` in any package under ``core`` (found by
:func:`kind_modules`, e.g. ``core/tracking/jobs.py``) plus :data:`KIND_MODULES`; those modules must
keep their top-level imports light (import torch inside the function) so ``emodub --help`` stays fast.
Dotted names become nested CLI subcommands: ``train.a2e`` -> ``emodub train a2e``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .context import JobContext

KIND_MODULES: tuple[str, ...] = (
    "core.jobs.selftest",
    "core.demo",
)


def kind_modules() -> list[str]:
    """:data:`KIND_MODULES` plus every ``core.<package>[.<sub>].jobs`` module on disk."""
    import core

    root = Path(core.__file__).parent
    found = sorted(".".join(("core", *p.relative_to(root).with_suffix("").parts))
                   for p in root.rglob("jobs.py") if "__pycache__" not in p.parts)
    return [*KIND_MODULES, *found]


@dataclass(frozen=True)
class Arg:
    """One CLI argument of a job kind: ``argparse`` flags and keyword arguments. Its ``dest`` is
    the name of the job param it fills."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, *flags: str, **kwargs: Any) -> None:
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "kwargs", kwargs)

    def dest(self) -> str:
        if "dest" in self.kwargs:
            return str(self.kwargs["dest"])
        name = next((f for f in self.flags if f.startswith("--")), self.flags[0])
        return name.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[[JobContext], dict[str, Any]]
    help: str
    args: Sequence[Arg] = ()
    needs_workspace: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        for arg in self.args:
            parser.add_argument(*arg.flags, **arg.kwargs)

    def params_from_args(self, ns: argparse.Namespace) -> dict[str, Any]:
        return {a.dest(): getattr(ns, a.dest()) for a in self.args if hasattr(ns, a.dest())}


_REGISTRY: dict[str, JobKind] = {}


def job_kind(name: str, help: str, args: Sequence[Arg] = (),
             needs_workspace: bool = True) -> Callable[[Callable[[JobContext], dict[str, Any]]],
                                                       Callable[[JobContext], dict[str, Any]]]:
    """Decorator registering ``fn`` as the job kind ``name``."""

    def register(fn: Callable[[JobContext], dict[str, Any]]) -> Callable[[JobContext], dict[str, Any]]:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"job kind {name!r} registered twice")
        _REGISTRY[name] = JobKind(name, fn, help, tuple(args), needs_workspace)
        return fn

    return register


def all_kinds() -> dict[str, JobKind]:
    """Every registered kind (imports the modules of :func:`kind_modules` on first call)."""
    for module in kind_modules():
        importlib.import_module(module)
    return dict(sorted(_REGISTRY.items()))


def get_kind(name: str) -> JobKind | None:
    return all_kinds().get(name)
