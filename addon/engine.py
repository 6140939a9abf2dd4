"""The engine client: find the engine, run a job in a subprocess, follow its events without blocking.

Pure Python (standard library only, no ``bpy``): the add-on's timer calls :func:`poll_job`, and so do
the tests (timers never fire in bpy-as-a-module).

* :func:`resolve_engine` turns the "Engine command" preference into an :class:`EngineCommand`: a
  Python with emodub installed runs ``<python> -m core.worker``, the ``emodub`` executable runs
  ``emodub worker``; an empty setting looks for ``emodub`` on ``PATH``.
* :class:`EngineJob` writes the job spec to a file, starts ``worker --job FILE`` with pipes, and a
  reader thread decodes the event lines into a queue. The engine's stderr goes to a log file beside
  the spec (a pipe nobody reads could fill up and stall the engine).
* :func:`poll_job` drains the queue into the job's :class:`JobState` (progress, status text, outcome)
  and escalates a cancel that the engine ignores (cancel line, then SIGTERM, then SIGKILL). A job is
  finished only once its process has exited, so no engine process is left behind.
* :class:`JobRegistry` refuses a second job on the same shot (or actor) while one runs.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import hints, protocol

PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)*)?w?(\.exe)?$", re.IGNORECASE)
EMODUB_NAME = re.compile(r"^emodub(\.exe|\.cmd|\.bat)?$", re.IGNORECASE)
# Seconds a cancelled engine gets to save and exit before SIGTERM, then before SIGKILL.
CANCEL_GRACE_S = 15.0
KILL_GRACE_S = 5.0
# Seconds an engine may linger after its terminal event before it is killed.
EXIT_GRACE_S = 10.0
# Environment variables of Blender's own Python that must not leak into the engine's Python.
DROPPED_ENV = ("PYTHONHOME", "PYTHONEXECUTABLE")

ENGINE_HINT = ("set Preferences > Add-ons > emodub > Engine command to the Python that has emodub installed "
               "(e.g. /path/to/venv/bin/python) or to its emodub executable")


class EngineError(Exception):
    """The engine cannot be found or started; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class JobConflict(EngineError):
    """Another job is running on the same shot or actor."""


# --------------------------------------------------------------------------------------------------
# Finding the engine
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EngineCommand:
    """How to start the engine: ``prefix`` (the executable and any leading arguments) and its ``style``:
    ``"python"`` (a Python with emodub installed) or ``"emodub"`` (the emodub executable)."""

    prefix: tuple[str, ...]
    style: str

    def worker(self, job_file: str | os.PathLike[str]) -> list[str]:
        entry = ["-m", "core.worker"] if self.style == "python" else ["worker"]
        return [*self.prefix, *entry, "--job", str(job_file)]

    def serve(self, idle_exit_s: float) -> list[str]:
        """A warm engine: job specs on stdin, one per line (``worker --serve``)."""
        entry = ["-m", "core.worker"] if self.style == "python" else ["worker"]
        return [*self.prefix, *entry, "--serve", "--idle-exit", f"{idle_exit_s:g}"]

    def doctor(self, workspace: str | None = None) -> list[str]:
        entry = ["-m", "core.cli", "doctor"] if self.style == "python" else ["doctor"]
        return [*self.prefix, *entry, "--json", *(["--workspace", workspace] if workspace else [])]

    def renderers(self) -> list[str]:
        entry = ["-m", "core.cli", "renderers"] if self.style == "python" else ["renderers"]
        return [*self.prefix, *entry, "--json"]

    def describe(self) -> str:
        return shlex.join(self.prefix)


def style_from_name(executable: str) -> str | None:
    """``"python"`` or ``"emodub"`` when the executable's file name says which, else ``None``."""
    name = os.path.basename(executable)
    if PYTHON_NAME.match(name):
        return "python"
    if EMODUB_NAME.match(name):
        return "emodub"
    return None


def probe_style(prefix: tuple[str, ...], timeout: float = 30.0) -> str | None:
    """Ask an executable with an unhelpful name what it is: ``--version`` prints "Python 3.x" or
    "emodub x.y". Runs only for such names (a short, one-off wait)."""
    try:
        out = subprocess.run([*prefix, "--version"], capture_output=True, text=True, timeout=timeout,
                             env=engine_environment(None), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout + out.stderr).strip().lower()
    if text.startswith("emodub"):
        return "emodub"
    if text.startswith("python"):
        return "python"
    return None


def resolve_engine(setting: str | None, *, which: Callable[[str], str | None] = shutil.which,
                   probe: Callable[[tuple[str, ...]], str | None] = probe_style) -> EngineCommand:
    """The engine command from the preference text (empty: ``emodub`` on ``PATH``).

    The setting may hold leading arguments (``conda run -n emodub python``); its last word decides
    the style by name (``python3.11``, ``emodub``), else :func:`probe_style` asks the program.

    Raises:
        EngineError: nothing configured and no ``emodub`` on PATH, a missing file, or a program that
            is neither a Python nor emodub.
    """
    text = (setting or "").strip()
    if not text:
        found = which("emodub")
        if not found:
            raise EngineError("no engine is configured and there is no `emodub` on PATH", hint=ENGINE_HINT)
        return EngineCommand((found,), "emodub")
    try:
        # A whole path to a file is one program even with spaces in it (a file browser's pick).
        whole = os.path.expandvars(os.path.expanduser(text))
        words = [whole] if os.path.isfile(whole) else shlex.split(text, posix=os.name != "nt")
    except ValueError as exc:
        raise EngineError(f"cannot read the engine command {text!r}: {exc}", hint=ENGINE_HINT) from None
    if not words:
        raise EngineError("the engine command is empty", hint=ENGINE_HINT)
    first = os.path.expandvars(os.path.expanduser(words[0]))
    if os.sep in first or (os.altsep and os.altsep in first):
        if not os.path.isfile(first):
            raise EngineError(f"the engine command {first} does not exist", hint=ENGINE_HINT)
        if not os.access(first, os.X_OK):
            raise EngineError(f"the engine command {first} is not executable", hint=ENGINE_HINT)
    else:
        located = which(first)
        if not located:
            raise EngineError(f"the engine command {first!r} is not on PATH", hint=ENGINE_HINT)
        first = located
    prefix = (first, *words[1:])
    style = style_from_name(prefix[-1]) or probe(prefix)
    if style is None:
        raise EngineError(f"{shlex.join(prefix)} is neither a Python nor the emodub executable",
                          hint=ENGINE_HINT)
    return EngineCommand(prefix, style)


def parse_env_text(text: str) -> dict[str, str]:
    """Extra environment for the engine from ``KEY=VALUE`` entries separated by ``;`` or new lines.

    Raises:
        EngineError: an entry without ``=`` or with an invalid name.
    """
    env: dict[str, str] = {}
    for entry in re.split(r"[;\n]", text or ""):
        entry = entry.strip()
        if not entry:
            continue
        key, sep, value = entry.partition("=")
        key = key.strip()
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise EngineError(f"bad engine environment entry {entry!r}",
                              hint="write entries as KEY=VALUE separated by ';', e.g. PYTHONPATH=/src/emodub")
        env[key] = value.strip()
    return env


def engine_environment(extra: Mapping[str, str] | None,
                       base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The engine's environment: ours without Blender-Python-only variables, plus ``extra``."""
    env = dict(os.environ if base is None else base)
    for key in DROPPED_ENV:
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"  # events must arrive as they happen, not when a buffer fills
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------------------------------
# A running job
# --------------------------------------------------------------------------------------------------

@dataclass
class JobState:
    """What the UI shows about a job; updated only by :func:`poll_job`.

    ``status`` is ``starting`` -> ``running`` -> one of ``done``/``error``/``cancelled``; ``finished``
    turns true once the engine process has exited as well.
    """

    job_id: str
    kind: str
    label: str = ""
    status: str = "starting"
    stage: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    eta_s: float | None = None
    overall: float | None = None
    overall_eta_s: float | None = None
    text: str = "starting the engine"
    outputs: dict[str, Any] = field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    error_hint: str = ""
    traceback: str = ""
    report: str = ""
    artifacts: list[tuple[str, str]] = field(default_factory=list)
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    exit_code: int | None = None
    cancel_requested: bool = False
    finished: bool = False

    @property
    def fraction(self) -> float:
        """The job's bar in [0, 1]: the whole job across its stages (the current stage alone from an engine
        older than protocol 3; 0 while unknown). Full only once the job is done; a failed or cancelled job
        keeps where it stopped."""
        return protocol.bar_fraction(self.status == "done", self.overall, self.done, self.total) or 0.0

    @property
    def outcome_known(self) -> bool:
        return self.status in ("done", "error", "cancelled")

    @property
    def is_bug(self) -> bool:
        """A failure that is a bug in emodub (code ``internal``); any other error is the user's to fix."""
        return self.status == "error" and not protocol.is_user_error(self.error_code)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def apply_event(state: JobState, event: protocol.Event) -> None:
    """Fold one protocol event into ``state`` (pure; :func:`poll_job` calls it for each event)."""
    if isinstance(event, protocol.Started):
        state.status = "running"
        state.text = f"{event.kind or state.kind}: started"
    elif isinstance(event, protocol.Progress):
        if state.status == "starting":
            state.status = "running"
        state.stage, state.done, state.total = event.stage, event.done, event.total
        state.message, state.eta_s = event.message, event.eta_s
        if event.overall is not None:  # the bar never goes back
            state.overall = max(state.overall or 0.0, event.overall)
        state.overall_eta_s = event.overall_eta_s
        count = f" {event.done}/{event.total}" if event.total else ""
        left = event.overall_eta_s if event.overall is not None else event.eta_s
        eta = f" (about {format_eta(left)} left)" if left is not None else ""
        detail = f": {event.message}" if event.message else ""
        state.text = f"{event.stage}{count}{detail}{eta}"
    elif isinstance(event, protocol.Log):
        state.logs.append(f"[{event.level}] {event.message}")
    elif isinstance(event, protocol.Artifact):
        state.artifacts.append((event.kind, event.path))
        if event.kind == "report":
            state.report = event.path
    elif isinstance(event, protocol.Error):
        state.status = "error"
        state.error_code, state.error_message = event.code, event.message
        state.error_hint = protocol.hint_in_own_words(event.code, state.kind, event.hint, hints.WORDS)
        if event.hint and event.hint != state.error_hint:
            state.logs.append(f"[hint] engine: {event.hint}")
        state.traceback = event.traceback
        at = f" at {round(100 * state.fraction)}%" if state.fraction > 0 else ""
        state.text = f"emodub bug: {event.message}" if state.is_bug else f"failed{at}: {event.message}"
    elif isinstance(event, protocol.Done):
        state.status = "done"
        state.outputs = dict(event.outputs)
        report = event.outputs.get("report")
        if isinstance(report, str) and report:
            state.report = report
        state.text = "done"
    elif isinstance(event, protocol.Cancelled):
        state.status = "cancelled"
        at = f" at {round(100 * state.fraction)}%" if state.fraction > 0 else ""
        state.text = f"cancelled{at}: {event.message}" if event.message else f"cancelled{at}"


def log_tail(path: Path, lines: int = 8) -> str:
    """The last ``lines`` lines of an engine's stderr log ("" when it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def popen_engine(argv: list[str], log_file: Any, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start an engine process: pipes for its stdin/stdout, stderr to ``log_file``, in its own process group (so
    that SIGTERM/SIGKILL reach its children too)."""
    kwargs: dict[str, Any] = {}
    if os.name == "nt":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    else:
        kwargs["start_new_session"] = True
    try:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, cwd=str(cwd),
                                env=engine_environment(env), **kwargs)
    except OSError as exc:
        log_file.close()
        raise EngineError(f"cannot start the engine ({shlex.join(argv)}): {exc}", hint=ENGINE_HINT) from None


def pump_events(proc: subprocess.Popen[bytes], out: queue.Queue[tuple[str, Any]]) -> None:
    """Reader thread of an engine process: its stdout lines decoded into ``out`` as ``("event", Event)`` (or
    ``("noise", why)`` for a line that is not one), then ``("exit", code)``."""
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            if not raw.strip():
                continue
            try:
                out.put(("event", protocol.decode_event(raw)))
            except protocol.ProtocolError as exc:
                out.put(("noise", str(exc)))
    except (OSError, ValueError) as exc:  # the pipe closed under us (killed engine)
        out.put(("noise", f"reading the engine's output failed: {exc}"))
    out.put(("exit", proc.wait()))


def write_line(proc: subprocess.Popen[bytes], line: str) -> bool:
    """Write one line on an engine's stdin; ``False`` when it is gone."""
    if proc.stdin is None:
        return False
    try:
        proc.stdin.write((line + "\n").encode("utf-8"))
        proc.stdin.flush()
        return True
    except (OSError, ValueError):
        return False


def signal_engine(proc: subprocess.Popen[bytes], name: str) -> None:
    """Send ``SIGTERM`` or ``SIGKILL`` to an engine's process group (its children too); never raises."""
    try:
        if os.name == "nt":
            proc.terminate() if name == "SIGTERM" else proc.kill()
        else:
            os.killpg(proc.pid, getattr(signal, name))
    except (ProcessLookupError, PermissionError, OSError):
        pass


class _Followed:
    """What the add-on's timer and the tests need of a job: :meth:`poll` (in the subclass) and :meth:`wait`."""

    state: JobState

    def poll(self, now: float | None = None) -> JobState:
        raise NotImplementedError

    def wait(self, timeout: float, interval: float = 0.05) -> JobState:
        """Poll until finished or ``timeout`` seconds (for scripts and tests; the add-on never waits)."""
        deadline = time.monotonic() + timeout
        while not self.poll().finished and time.monotonic() < deadline:
            time.sleep(interval)
        return self.state


class EngineJob(_Followed):
    """One job in one engine subprocess.

    Args:
        spec: the job spec.
        command: how to start the engine.
        job_dir: where the spec (``<id>.json``) and the engine's log (``<id>.log``) are written; never
            the add-on's folder (the add-on passes ``extension_path_user(...)/jobs``).
        env: extra environment variables for the engine.
        keys: what the job works on (see :func:`.jobspec.job_keys`).
        label: a short description for the UI ("Render dub of take1").
        meta: anything the front-end needs when the job finishes (scene name, strip names...).
    """

    def __init__(self, spec: protocol.JobSpec, command: EngineCommand, job_dir: str | os.PathLike[str], *,
                 env: Mapping[str, str] | None = None, keys: Iterable[str] = (), label: str = "",
                 meta: Mapping[str, Any] | None = None, cancel_grace_s: float = CANCEL_GRACE_S,
                 kill_grace_s: float = KILL_GRACE_S, exit_grace_s: float = EXIT_GRACE_S) -> None:
        self.spec = spec
        self.command = command
        self.job_dir = Path(job_dir)
        self.spec_path = self.job_dir / f"{spec.id}.json"
        self.log_path = self.job_dir / f"{spec.id}.log"
        self.env = dict(env or {})
        self.keys = frozenset(keys)
        self.label = label or spec.kind
        self.meta = dict(meta or {})
        self.state = JobState(spec.id, spec.kind, label=self.label)
        self.cancel_grace_s, self.kill_grace_s, self.exit_grace_s = cancel_grace_s, kill_grace_s, exit_grace_s
        self.handled = False  # set by the front-end once it has acted on the outcome
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._cancel_at: float | None = None
        self._terminal_at: float | None = None
        self._signals_sent: set[str] = set()
        self._exited = False

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    def start(self) -> None:
        """Write the spec and start the engine; returns at once.

        Raises:
            EngineError: the job folder cannot be written or the program cannot be started.
        """
        try:
            self.job_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.spec_path.with_name(f".{self.spec_path.name}.tmp")
            tmp.write_text(self.spec.to_json() + "\n", encoding="utf-8")
            os.replace(tmp, self.spec_path)
            self._log_file = open(self.log_path, "wb")
        except OSError as exc:
            raise EngineError(f"cannot write the job files in {self.job_dir}: {exc}",
                              hint="check that the folder is writable") from None
        argv = self.command.worker(self.spec_path)
        self._proc = popen_engine(argv, self._log_file, self.job_dir, self.env)
        self._log(f"started: {shlex.join(argv)} (pid {self._proc.pid})")
        threading.Thread(target=pump_events, args=(self._proc, self._queue), name=f"emodub-events-{self.id}",
                         daemon=True).start()

    def _log(self, text: str) -> None:
        self.state.logs.append(f"[add-on] {text}")

    # -- control -----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the engine to stop (a ``cancel`` line on its stdin); :func:`poll_job` escalates to
        SIGTERM and SIGKILL when it does not exit in time. Never blocks."""
        if self.state.finished or self.state.cancel_requested:
            return
        self.state.cancel_requested = True
        self._cancel_at = time.monotonic()
        self.state.text = "cancelling..."
        if self._proc is not None and not write_line(self._proc, protocol.encode_cancel()):
            self._send("SIGTERM")  # stdin is gone: fall back to the signal right away

    def _send(self, name: str) -> None:
        proc = self._proc
        if proc is None or self._exited or proc.poll() is not None:
            return
        self._signals_sent.add(name)
        self._log(f"sending {name} to the engine (pid {proc.pid})")
        signal_engine(proc, name)

    def kill(self) -> None:
        """Stop the engine now (used when Blender quits or the add-on is disabled)."""
        self.state.cancel_requested = True
        self._send("SIGKILL")

    def _close(self) -> None:
        proc = self._proc
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.close()

    def log_tail(self, lines: int = 8) -> str:
        """The last lines of the engine's stderr log."""
        return log_tail(self.log_path, lines)

    # -- polling -----------------------------------------------------------------------------
    def _on_exit(self, code: int) -> None:
        state = self.state
        self._exited = True
        state.exit_code = code
        state.finished = True
        self._close()
        if state.outcome_known:
            return
        if state.cancel_requested:
            state.status = "cancelled"
            state.text = "cancelled (the engine was stopped)"
            return
        tail = self.log_tail()
        last = tail.splitlines()[-1] if tail else ""
        state.status = "error"
        state.error_code = "engine_crashed"
        state.error_message = (f"the engine stopped unexpectedly (exit code {code}) without reporting "
                               "a result" + (f": {last}" if last else ""))
        state.error_hint = (f"see the engine log {self.log_path}; run 'Check engine' in the add-on "
                            "preferences to test the installation")
        state.text = f"failed: {state.error_message}"

    def poll(self, now: float | None = None) -> JobState:
        """Drain the events that arrived and advance the job's state; never blocks."""
        now = time.monotonic() if now is None else now
        state = self.state
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind == "event":
                apply_event(state, payload)
                if state.outcome_known and self._terminal_at is None:
                    self._terminal_at = now
            elif kind == "noise":
                self._log(f"ignored a line that is not a protocol event: {payload}")
            elif kind == "exit":
                self._on_exit(int(payload))
        if state.finished or self._proc is None:
            return state
        if self._cancel_at is not None:
            waited = now - self._cancel_at
            if waited >= self.cancel_grace_s and "SIGTERM" not in self._signals_sent:
                self._send("SIGTERM")
            if waited >= self.cancel_grace_s + self.kill_grace_s and "SIGKILL" not in self._signals_sent:
                self._send("SIGKILL")
        if self._terminal_at is not None and now - self._terminal_at >= self.exit_grace_s:
            # It reported its outcome but does not exit: it must not stay behind.
            self._send("SIGTERM" if "SIGTERM" not in self._signals_sent else "SIGKILL")
        return state

class WarmEngine:
    """One engine process kept warm (``worker --serve``) for short jobs such as previews: torch, the models and a
    preview's set-up stay loaded from one job to the next, so the second preview of a shot takes a fraction of the
    first.

    It runs one job at a time. It stops on :meth:`stop` (a ``quit`` line; the add-on sends it when it is disabled
    and when Blender quits), when its stdin closes (Blender died), or by itself after ``idle_exit_s`` seconds
    without a job; the next job then starts a new one.
    """

    def __init__(self, command: EngineCommand, job_dir: str | os.PathLike[str], *,
                 env: Mapping[str, str] | None = None, idle_exit_s: float = 600.0) -> None:
        self.command = command
        self.env = dict(env or {})
        self.job_dir = Path(job_dir)
        self.log_path = self.job_dir / "warm-engine.log"
        self.idle_exit_s = idle_exit_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._job: WarmJob | None = None  # the job it runs or ran last (one at a time)

    def serves(self, command: EngineCommand, env: Mapping[str, str]) -> bool:
        """Whether this engine is the one the preferences name now (else a new one is started)."""
        return command == self.command and dict(env) == self.env

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.alive and self._proc is not None else None

    def _start(self) -> None:
        try:
            self.job_dir.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")
        except OSError as exc:
            raise EngineError(f"cannot write the engine log in {self.job_dir}: {exc}",
                              hint="check that the folder is writable") from None
        self._proc = popen_engine(self.command.serve(self.idle_exit_s), self._log_file, self.job_dir, self.env)
        self._queue = queue.Queue()
        threading.Thread(target=pump_events, args=(self._proc, self._queue), name="emodub-warm-events",
                         daemon=True).start()

    def _write(self, line: str) -> bool:
        return self._proc is not None and write_line(self._proc, line)

    def submit(self, spec: protocol.JobSpec, *, keys: Iterable[str] = (), label: str = "",
               meta: Mapping[str, Any] | None = None) -> WarmJob:
        """Send ``spec`` to the warm engine (started first when there is none); returns at once."""
        if self._job is not None and not self._job.state.finished:
            raise JobConflict(f"{self._job.label} is still running in the preview engine",
                              hint="wait for it to finish or cancel it first")
        if not self.alive:
            self._start()
        job = self._job = WarmJob(self, spec, keys=keys, label=label, meta=meta)
        if not self._write(spec.to_json()):
            job.state.status, job.state.finished = "error", True
            job.state.error_code, job.state.error_message = "engine_stopped", "the preview engine is not running"
            job.state.error_hint = "try again (a new engine starts)"
        return job

    def drain(self) -> None:
        """Hand the events that arrived to their jobs; a job whose engine ended under it fails."""
        while True:
            try:
                kind, payload = self._queue.get_nowait()
            except queue.Empty:
                return
            job = self._job
            if kind == "event" and job is not None and payload.job_id == job.id:
                job.apply(payload)
            elif kind == "exit":
                if job is not None:
                    job.engine_ended(int(payload))
                if self._log_file is not None and not self._log_file.closed:
                    self._log_file.close()

    def cancel(self) -> None:
        self._write(protocol.encode_cancel())

    def stop(self, grace_s: float = 2.0) -> None:
        """Ask it to quit (a ``quit`` line), then end it if it does not; never raises."""
        proc = self._proc
        if proc is None:
            return
        self._write("quit")
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self._proc = None

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            signal_engine(self._proc, "SIGKILL")

    def log_tail(self, lines: int = 8) -> str:
        return log_tail(self.log_path, lines)


class WarmJob(_Followed):
    """A job of a :class:`WarmEngine`; it looks like an :class:`EngineJob` to the registry and the timer. It is
    finished when its outcome event comes (the engine stays up for the next one)."""

    def __init__(self, engine: WarmEngine, spec: protocol.JobSpec, *, keys: Iterable[str] = (), label: str = "",
                 meta: Mapping[str, Any] | None = None, cancel_grace_s: float = CANCEL_GRACE_S) -> None:
        self.engine = engine
        self.spec = spec
        self.keys = frozenset(keys)
        self.label = label or spec.kind
        self.meta = dict(meta or {})
        self.state = JobState(spec.id, spec.kind, label=self.label)
        self.state.status, self.state.text = "running", "sent to the warm engine"
        self.handled = False
        self.log_path = engine.log_path
        self.cancel_grace_s = cancel_grace_s
        self._cancel_at: float | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    def apply(self, event: protocol.Event) -> None:
        apply_event(self.state, event)
        if self.state.outcome_known:
            self.state.finished = True

    def engine_ended(self, code: int) -> None:
        if self.state.finished:
            return
        self.state.exit_code, self.state.finished = code, True
        if self.state.cancel_requested:
            self.state.status, self.state.text = "cancelled", "cancelled (the preview engine was stopped)"
            return
        self.state.status, self.state.error_code = "error", "engine_stopped"
        self.state.error_message = f"the preview engine stopped (exit code {code}) before answering"
        self.state.error_hint = f"try again (a new engine starts); its log is {self.log_path}"
        self.state.text = f"failed: {self.state.error_message}"

    def poll(self, now: float | None = None) -> JobState:
        now = time.monotonic() if now is None else now
        self.engine.drain()
        if not self.state.finished and self._cancel_at is not None and now - self._cancel_at >= self.cancel_grace_s:
            self.engine.kill()  # it does not listen: the next preview starts a new one
        return self.state

    def cancel(self) -> None:
        if self.state.finished or self.state.cancel_requested:
            return
        self.state.cancel_requested, self._cancel_at = True, time.monotonic()
        self.state.text = "cancelling..."
        self.engine.cancel()

    def kill(self) -> None:
        self.state.cancel_requested = True
        self.engine.kill()

    def log_tail(self, lines: int = 8) -> str:
        return self.engine.log_tail(lines)


def poll_job(job: EngineJob, now: float | None = None) -> JobState:
    """What the add-on's timer calls for each running job (and the tests call directly)."""
    return job.poll(now)


# --------------------------------------------------------------------------------------------------
# Running jobs
# --------------------------------------------------------------------------------------------------

class JobRegistry:
    """The jobs the add-on started, in start order. One shot (or actor) runs one job at a time."""

    def __init__(self) -> None:
        self._jobs: dict[str, EngineJob] = {}
        self._lock = threading.Lock()

    def check_free(self, keys: Iterable[str]) -> None:
        """Raises :class:`JobConflict` when a running job shares one of ``keys``."""
        wanted = frozenset(keys)
        for other in self.running():
            common = wanted & other.keys
            if common:
                what = ", ".join(sorted(k.replace(":", " ") for k in common))
                raise JobConflict(f"{other.label} is still running on {what}",
                                  hint="wait for it to finish or cancel it first")

    def add(self, job: EngineJob) -> None:
        with self._lock:
            self.check_free(job.keys)
            self._jobs[job.id] = job

    def get(self, job_id: str) -> EngineJob | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[EngineJob]:
        return list(self._jobs.values())

    def running(self) -> list[EngineJob]:
        return [job for job in self._jobs.values() if not job.state.finished]

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def prune(self, keep_finished: int = 20) -> None:
        """Forget old finished (and handled) jobs so the list stays short."""
        with self._lock:
            done = [j for j in self._jobs.values() if j.state.finished and j.handled]
            for job in done[:-keep_finished] if keep_finished else done:
                self._jobs.pop(job.id, None)

    def kill_all(self) -> None:
        for job in self.running():
            job.kill()


# --------------------------------------------------------------------------------------------------
# Check engine (emodub doctor --json)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DoctorResult:
    """The engine check for the preferences: ``ok``, a one-line ``summary`` and one line per check."""

    ok: bool
    summary: str
    lines: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()  # what the engine can run on ("auto", "cpu", and "cuda" with a GPU); () unknown


def summarize_doctor(stdout: str, stderr: str, returncode: int, command: str = "") -> DoctorResult:
    """Turn ``emodub doctor --json`` output into lines for people."""
    try:
        report = json.loads(stdout)
        checks = report["checks"]
    except (json.JSONDecodeError, KeyError, TypeError):
        last = (stderr.strip().splitlines() or stdout.strip().splitlines() or [""])[-1]
        return DoctorResult(False, f"the engine did not answer the check (exit code {returncode})"
                            + (f": {last}" if last else ""),
                            (f"command: {command}",) if command else ())
    lines = []
    for check in checks:
        mark = "ok" if check.get("ok") else ("FAIL" if check.get("required", True) else "note")
        line = f"{mark}: {check.get('name')} - {check.get('detail', '')}"
        if not check.get("ok") and check.get("hint"):
            line += f" (hint: {check['hint']})"
        lines.append(line)
    ok = bool(report.get("ok"))
    summary = (f"emodub {report.get('emodub', '?')}: " +
               ("all required checks passed" if ok else "some required checks failed"))
    gpu = any(check.get("name") == "cuda" and check.get("ok") for check in checks)
    return DoctorResult(ok, summary, tuple(lines), ("auto", "cpu", "cuda") if gpu else ("auto", "cpu"))


class DoctorRun:
    """``doctor --json`` in a background thread; :meth:`poll` returns the result once it is there."""

    def __init__(self, command: EngineCommand, workspace: str | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = 300.0) -> None:
        self.argv = command.doctor(workspace)
        self.env = dict(env or {})
        self.timeout = timeout
        self.result: DoctorResult | None = None
        self._thread = threading.Thread(target=self._run, name="emodub-doctor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        command = shlex.join(self.argv)
        try:
            out = subprocess.run(self.argv, capture_output=True, text=True, timeout=self.timeout,
                                 env=engine_environment(self.env), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.result = DoctorResult(False, f"the engine check did not finish in {self.timeout:.0f} s",
                                       (f"command: {command}",))
            return
        except OSError as exc:
            self.result = DoctorResult(False, f"cannot run the engine: {exc}", (f"command: {command}",))
            return
        self.result = summarize_doctor(out.stdout, out.stderr, out.returncode, command)

    def poll(self) -> DoctorResult | None:
        return self.result

    def wait(self, timeout: float) -> DoctorResult | None:
        self._thread.join(timeout)
        return self.result
