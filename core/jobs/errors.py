"""What a failure means for the user: the one place that turns exceptions into protocol error codes.

A job raises :class:`~core.jobs.context.JobFailed` for what it knows to be the user's doing. Other
exceptions reach :func:`classify` in the runner: the families below are user mistakes or conditions
of the machine (bad media, a busy or read-only workspace, a full disk, an unsafe or incompatible
checkpoint...) and become a :class:`JobFailed` with their code and a hint that says what to do. Only
what is left is a bug in emodub (code ``internal``, with a traceback).

The engine's lower layers keep their own exception types (``MediaError``, ``AudioError``,
``LockBusy``...) and do not import this module; it imports them lazily so ``emodub --help`` stays fast.
"""

from __future__ import annotations

import errno
from pathlib import Path

from . import protocol as P
from .context import JobFailed

READ_ONLY_HINT = ("make the folder writable (chmod -R u+w), or copy the workspace to a disk you can write to "
                  "and run the job there")


def classify(exc: BaseException, workspace: str | None = None) -> JobFailed | None:
    """``exc`` as a user error, or ``None`` when it is a bug in emodub.

    Args:
        exc: what a job raised.
        workspace: the job's workspace folder (a permission error inside it means a read-only workspace).
    """
    from core.io.checkpoint import CheckpointError, is_state_dict_mismatch
    from core.io.ffmpeg import MediaError
    from core.workspace import LockBusy, WorkspaceError

    if isinstance(exc, JobFailed):
        return exc
    if isinstance(exc, P.ProtocolError):
        return JobFailed(str(exc), code=P.BAD_SPEC, hint="fix the job spec; see core/jobs/protocol.py")
    if isinstance(exc, LockBusy):
        return JobFailed(str(exc), code=P.BUSY,
                         hint="wait for that job to finish or cancel it; if it is gone, "
                              "`emodub workspace check` lists stale locks and `emodub workspace clean` removes them")
    if isinstance(exc, CheckpointError):
        return JobFailed(exc.message, code=exc.code, hint=exc.hint)
    if is_state_dict_mismatch(exc):
        return JobFailed(f"a saved model does not fit the network this job builds: {str(exc).splitlines()[0]}",
                         code=P.INCOMPATIBLE_CHECKPOINT,
                         hint="the model folder holds weights trained with other settings (e.g. --unet-base); "
                              "resume with the settings it was trained with, or train under another --name")
    if isinstance(exc, WorkspaceError):
        return JobFailed(str(exc), code=exc.code, hint=exc.hint)
    if isinstance(exc, MediaError):
        return JobFailed(exc.message, code=P.BAD_INPUT, hint=exc.hint or "check the file")
    bad_input = _bad_input_types()
    if isinstance(exc, bad_input):
        return JobFailed(str(exc), code=P.BAD_INPUT,
                         hint=getattr(exc, "hint", "") or "check the file named above, or export it again")
    if isinstance(exc, OSError):
        return _os_error(exc, workspace)
    return None


def _bad_input_types() -> tuple[type[BaseException], ...]:
    from core.audio.io import AudioError
    from core.landmarks.track import NoFaceError

    return (AudioError, NoFaceError)


def _os_error(exc: OSError, workspace: str | None) -> JobFailed | None:
    where = exc.filename or ""
    if exc.errno == errno.EROFS:
        return JobFailed(f"cannot write {where}: the file system is read-only", code=P.READ_ONLY,
                         hint=READ_ONLY_HINT)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return JobFailed(f"cannot write {where}: no space left on the disk", code=P.DISK_FULL,
                         hint="free some space (old renders, caches) or move the workspace to a larger disk")
    if exc.errno in (errno.EACCES, errno.EPERM):
        if workspace and where and _inside(where, workspace):
            return JobFailed(f"cannot write {where}: permission denied (the workspace is read-only for you)",
                             code=P.READ_ONLY, hint=READ_ONLY_HINT)
        return JobFailed(f"cannot access {where or 'a file'}: permission denied", code=P.BAD_INPUT,
                         hint="check the file's and its folder's permissions, or choose another path")
    return None


def _inside(path: str | bytes, folder: str) -> bool:
    try:
        target = Path(path if isinstance(path, str) else path.decode(errors="replace")).expanduser().resolve()
        return target.is_relative_to(Path(folder).expanduser().resolve())
    except (OSError, ValueError):
        return False
