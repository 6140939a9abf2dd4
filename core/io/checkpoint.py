"""Checkpoints that hold only tensors and plain data, so that loading one can never run code.

Workspaces travel between artists and vendors. A full (not weights-only) ``torch.load`` of a file
in one unpickles arbitrary objects, and an object's ``__reduce__`` can call ``os.system``: opening a
crafted ``checkpoint.pt`` would run its author's code. Every emodub checkpoint is therefore read with
:func:`load_checkpoint` (``torch.load(weights_only=True)``: tensors, dicts, lists, tuples, strings,
numbers, booleans, ``None``), and written with :func:`save_checkpoint`, which refuses anything else
*before* writing, so that emodub never writes a file it would refuse to read.

Importing this module has no side effects; torch is imported when a function is called.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

UNSAFE_HINT = ("delete it and train or track again, or restore it from a copy you trust; emodub never runs "
               "what a workspace file holds, and emodub's own checkpoints hold only tensors and plain data")


class CheckpointError(Exception):
    """A checkpoint emodub will not or cannot use. ``code`` is the job protocol's error code,
    ``path`` the file, ``message``/``hint`` are for people."""

    code = "incompatible_checkpoint"

    def __init__(self, message: str, *, path: str | os.PathLike[str], hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path)
        self.hint = hint


class UnsafeCheckpoint(CheckpointError):
    """The file holds something other than tensors and plain data (a pickled object that could run
    code when loaded). Nothing in it was executed."""

    code = "unsafe_file"


class UnreadableCheckpoint(CheckpointError):
    """Not a checkpoint torch can read at all: truncated, damaged, or another kind of file."""

    code = "incompatible_checkpoint"


def load_checkpoint(path: str | os.PathLike[str], *, map_location: Any = "cpu",
                    what: str = "checkpoint") -> dict[str, Any]:
    """Load ``path`` with ``torch.load(weights_only=True)``.

    Args:
        path: the ``.pt`` file.
        map_location: as for ``torch.load``.
        what: what the file is, for messages ("a2e checkpoint", "tracking state").

    Returns:
        The saved dict.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpoint: (code ``unsafe_file``) it holds anything but tensors and plain data; the
            message names the file and what torch refused.
        UnreadableCheckpoint: (code ``incompatible_checkpoint``) truncated, damaged, not a torch file,
            or not a dict.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler refuses every global it does not allow ("Unsupported global:
        # GLOBAL posix.system ..."): the file was refused, nothing in it ran.
        reason = _refusal(str(exc))
        raise UnsafeCheckpoint(f"refusing to load the {what} {path}: it holds more than tensors and plain "
                               f"data ({reason})", path=path, hint=UNSAFE_HINT) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise UnreadableCheckpoint(f"cannot read the {what} {path}: {exc}", path=path,
                                   hint="the file is damaged or is not an emodub checkpoint (an interrupted "
                                        "copy?); restore it, or delete it and train or track again") from None
    if not isinstance(state, dict):
        raise UnreadableCheckpoint(f"the {what} {path} holds a {type(state).__name__}, not a checkpoint dict",
                                   path=path, hint="delete it and train or track again")
    return state


def is_state_dict_mismatch(exc: BaseException) -> bool:
    """True for torch's error when saved weights do not fit the network built to receive them (a model
    folder trained with other settings, e.g. another ``--unet-base``)."""
    return isinstance(exc, RuntimeError) and str(exc).startswith("Error(s) in loading state_dict")


def incompatible(path: str | os.PathLike[str], what: str, reason: object) -> CheckpointError:
    """The error for a readable checkpoint made with other settings or by another version."""
    return CheckpointError(f"the {what} {path} does not fit: {reason}", path=path,
                           hint="it was made with other settings or by another emodub version: use the same "
                                "settings to resume, start over (--restart, where the job has it) or train under "
                                "another --name")


def _refusal(message: str) -> str:
    """The line of torch's long weights-only message that says what was refused."""
    for line in message.splitlines():
        line = line.strip()
        if line.startswith(("Unsupported global", "Unsupported operand", "Trying to", "Can only")):
            return line.split(". ")[0]
    return "torch's weights-only loader refused it"


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` atomically with ``torch.save`` after checking that :func:`load_checkpoint` will
    read it back (tensors and plain data only).

    Raises:
        TypeError: ``state`` holds another type (a numpy array, a dataclass...); the message gives its
            place, e.g. ``state['stats']['mean']``. Nothing is written. Convert it first
            (``torch.as_tensor``, ``.tolist()``, ``asdict``).
    """
    import torch

    from core.workspace import atomic_path

    _check_plain(state, "state")
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)
    return Path(path)


_PLAIN = (str, int, float, bool, bytes, type(None))


def _check_plain(value: Any, where: str) -> None:
    import torch

    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor | torch.Size | torch.dtype | torch.device):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _PLAIN):
                raise TypeError(f"checkpoint key {where}[{key!r}] is a {type(key).__name__}; use str or int keys")
            _check_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, list | tuple):
        if type(value) not in (list, tuple):  # a namedtuple unpickles as its class: refused on load
            raise TypeError(f"checkpoint value {where} is a {type(value).__name__}; use a plain tuple or list")
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    raise TypeError(f"checkpoint value {where} is a {type(value).__module__}.{type(value).__name__}, which "
                    "weights_only loading refuses; store tensors, numbers, strings, lists and dicts only")
