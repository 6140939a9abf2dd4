"""The registry of job kinds shared by the worker and the CLI.

A job kind is a function ``run(ctx: JobContext) -> dict`` (its outputs) registered with
:func:`job_kind`. Kinds live in modules named ``jobs.py`` in any package under ``core`` (found by
:func:`kind_modules`, e.g. ``core/tracking/jobs.py``) plus :data:`KIND_MODULES`; those modules must
keep their top-level imports light (import torch inside the function) so ``emodub --help`` stays fast.
Dotted names become nested CLI subcommands: ``train.a2e`` -> ``emodub train a2e``.

A kind's :class:`Arg` list is also the schema of its job-spec params: :meth:`JobKind.check_params`
refuses a param the kind does not have (from protocol version 2 on), a value of the wrong JSON type
(derived from the argument's ``type``/``action``/``nargs``, or given as ``spec_types``), a value
outside its ``choices`` or its :class:`Bounds`. The CLI goes through the same check, so a bound holds
for ``emodub dub --fps 0`` as much as for a spec from the add-on.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import protocol as P
from .context import JobContext, JobFailed

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
class Bounds:
    """The range a numeric param must lie in: ``low``/``high`` (``None``: unbounded), ``low_open``
    for a strict lower bound (``> 0``). NaN and infinities never pass."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"<= {self.high:g}" if self.high is not None else "a finite number"

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high


POSITIVE = Bounds(0.0, low_open=True)
NON_NEGATIVE = Bounds(0.0)
FRAME_RATE = Bounds(1.0, 240.0)  # below 1 fps or above 240 fps is a typo, not footage


@dataclass(frozen=True)
class Arg:
    """One CLI argument of a job kind: ``argparse`` flags and keyword arguments. Its ``dest`` is
    the name of the job param it fills.

    ``bounds`` limits a numeric value (checked for the CLI and for job specs alike); ``spec_types``
    are the JSON types a job spec may give when they differ from what the CLI parses (e.g. emotion
    curves: a path string on the CLI, a JSON object from a front-end).
    """

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    bounds: Bounds | None = None
    spec_types: tuple[type, ...] | None = None

    def __init__(self, *flags: str, bounds: Bounds | None = None, spec_types: tuple[type, ...] | None = None,
                 **kwargs: Any) -> None:
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "kwargs", kwargs)
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "spec_types", spec_types)

    def dest(self) -> str:
        if "dest" in self.kwargs:
            return str(self.kwargs["dest"])
        name = next((f for f in self.flags if f.startswith("--")), self.flags[0])
        return name.lstrip("-").replace("-", "_")

    @property
    def required(self) -> bool:
        if not self.flags[0].startswith("-"):  # positional: required unless optional by nargs
            return self.kwargs.get("nargs") not in ("?", "*") and "default" not in self.kwargs
        return bool(self.kwargs.get("required", False))

    def argparse_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.kwargs)
        if self.bounds is not None:
            kwargs["help"] = f"{kwargs.get('help', '')} (must be {self.bounds.describe()})".lstrip()
        return kwargs

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not a valid value of this param (a sentence), or ``None`` when it is."""
        nargs = self.kwargs.get("nargs")
        if self.spec_types is not None:  # the job parses such a value itself: only its JSON type is checked
            items, types = [value], self.spec_types
        elif nargs in ("+", "*"):
            if not isinstance(value, list) or (nargs == "+" and not value):
                return f"must be a {'non-empty ' if nargs == '+' else ''}list, got {_short(value)}"
            items, types = value, self._item_types()
        else:
            items, types = [value], self._item_types()
        for item in items:
            if not isinstance(item, types) or (isinstance(item, bool) and bool not in types):
                return f"must be {' or '.join(_TYPE_NAMES.get(t, t.__name__) for t in types)}, got {_short(item)}"
            if isinstance(item, str) and "\0" in item:
                return "must not contain a NUL character"
            if isinstance(item, float) and not math.isfinite(item):
                return f"must be a finite number, got {item}"
            choices = self.kwargs.get("choices")
            if choices is not None and item not in choices:
                return f"must be one of {', '.join(map(str, choices))}, got {_short(item)}"
            if self.bounds is not None and isinstance(item, int | float) and not isinstance(item, bool) \
                    and not self.bounds.contains(float(item)):
                return f"must be {self.bounds.describe()}, got {_short(item)}"
        return None

    def _item_types(self) -> tuple[type, ...]:
        if self.kwargs.get("action") in ("store_true", "store_false", argparse.BooleanOptionalAction):
            return (bool,)
        return {int: (int,), float: (int, float)}.get(self.kwargs.get("type"), (str,))  # type: ignore[arg-type]


_TYPE_NAMES: dict[type, str] = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
                                dict: "a JSON object", list: "a list"}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[[JobContext], dict[str, Any]]
    help: str
    args: Sequence[Arg] = ()
    needs_workspace: bool = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        for arg in self.args:
            parser.add_argument(*arg.flags, **arg.argparse_kwargs())

    def params_from_args(self, ns: argparse.Namespace) -> dict[str, Any]:
        return {a.dest(): getattr(ns, a.dest()) for a in self.args if hasattr(ns, a.dest())}

    def check_params(self, params: Mapping[str, Any], strict: bool = True) -> list[str]:
        """Check a job's params against this kind's arguments.

        A ``None`` value means "not given" (the default applies). Returns warnings: params this kind
        does not have, when not ``strict`` (a protocol-1 spec; they are ignored as they always were).

        Raises:
            JobFailed: ``bad_spec`` for a param this kind does not have (``strict``; the message names
                the closest valid one); ``bad_params`` for a missing required param or a value of the
                wrong type, outside its choices or its bounds.
        """
        known = {arg.dest(): arg for arg in self.args}
        valid = ", ".join(sorted(known)) or "none"
        warnings: list[str] = []
        for name in params:
            if name in known:
                continue
            close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
            message = f"job kind {self.name!r} has no param {name!r}" + (f"; did you mean {close[0]!r}?" if close
                                                                          else "")
            if strict:
                raise JobFailed(message, code=P.BAD_SPEC, hint=f"the params of {self.name!r} are: {valid}")
            warnings.append(f"{message} (ignored)")
        for name, arg in known.items():
            value = params.get(name)
            if value is None:
                if arg.required:
                    raise JobFailed(f"job kind {self.name!r} needs the param {name!r}", code=P.BAD_PARAMS,
                                    hint=f"give {name!r} (CLI: {arg.flags[0]})")
                continue
            problem = arg.problem(value)
            if problem is not None:
                raise JobFailed(f"param {name!r} of {self.name!r} {problem}", code=P.BAD_PARAMS,
                                hint=f"fix {name!r} in the job spec (CLI: {arg.flags[0]}); "
                                     f"`emodub {self.name.replace('.', ' ')} --help` describes it")
        return warnings


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
