"""``emodub worker`` / ``python -m core.worker``: run one job, events as JSON lines on stdout.

The spec comes from ``--job FILE`` or, without it, from stdin: the first JSON object or line, read
until its closing brace (a front-end that keeps stdin open without writing a newline is not waited
for) or end of file. While the job runs, stdin is watched for a ``cancel`` line, and SIGTERM (or
SIGINT) requests cancellation too: the job stops at its next progress step, saves what it has, emits
``cancelled`` and the process exits with :data:`~core.jobs.protocol.EXIT_CANCELLED`.

When stdin is a pipe, its closing also cancels: the front-end holding it died, and the job should not
run orphaned. That holds only for a pipe that was open when the job started: a caller that starts the
worker with ``--job FILE`` and stdin already closed (``< /dev/null``, ``true |``) has nothing to say on
it. The events answer in the spec's protocol version (see :mod:`core.jobs.protocol`). Logs for people
go to stderr.

``--serve`` keeps one engine warm for many jobs (previews while an editor works): it reads job specs from stdin,
one per line, and runs them one at a time in this process, so what a job loaded (torch, models, a preview's
set-up: :mod:`core.dub.preview`) is there for the next. A ``cancel`` line cancels the running job; a spec that
arrives while one runs is refused (``busy``). It stops on a ``quit`` line, when stdin closes (the front-end is
gone), on SIGTERM, or after ``--idle-exit`` seconds without a job (default 15 minutes), so a forgotten engine does
not hold memory for ever.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import stat
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import protocol as P
from .context import CancelToken
from .runner import run_job
from .threads import configure_cpu_threads

STDIN = 0
_CHUNK = 65536


class _LineSink:
    """Writes each event as one flushed line; thread-safe so a watchdog can emit too."""

    def __init__(self, stream: TextIO, version: int = P.PROTOCOL_VERSION) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.version = version

    def __call__(self, event: P.Event) -> None:
        line = P.encode_event(event, self.version)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def _stdin_is_pipe(fd: int = STDIN) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _stdin_open(fd: int = STDIN) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False  # the caller closed descriptor 0 itself
    return True


def read_spec(fd: int = STDIN) -> tuple[bytes, bytes, bool]:
    """The spec's bytes from ``fd``, the bytes that followed it (control lines already sent) and
    whether end of file was reached. Stops at the end of the spec (see :class:`core.jobs.protocol.SpecScanner`).

    Raises:
        ProtocolError: stdin is closed, or the spec is larger than :data:`P.MAX_SPEC_BYTES`.
    """
    if not _stdin_open(fd):
        raise P.ProtocolError("stdin is closed and no --job FILE was given")
    scanner = P.SpecScanner()
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return bytes(scanner.data), b"", True
        end = scanner.feed(chunk)
        if end is not None:
            return bytes(scanner.data[:end]), bytes(scanner.data[end:]), False
        if len(scanner.data) > P.MAX_SPEC_BYTES:
            raise P.ProtocolError(f"job spec is larger than {P.MAX_SPEC_BYTES // 2**20} MiB")


def _watch_stdin(cancel: CancelToken, pending: bytes = b"", fd: int = STDIN,
                 eof_cancels: bool = True) -> None:
    """Cancel on a ``cancel`` line; also at end of file when ``eof_cancels`` (a front-end's pipe
    closed: it died, don't run orphaned)."""
    buffer = bytearray(pending)
    while True:
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            if P.is_cancel_line(line.decode("utf-8", "replace")):
                cancel.cancel()
                return
        buffer = bytearray(rest[-_CHUNK:])  # a runaway line without newline is not kept whole
        try:
            chunk = os.read(fd, _CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            if P.is_cancel_line(buffer.decode("utf-8", "replace")):
                cancel.cancel()
            elif eof_cancels:
                logging.getLogger("emodub.worker").info("stdin closed: the front-end is gone, cancelling")
                cancel.cancel()
            return
        buffer += chunk


def _first_read(fd: int) -> tuple[bytes, bool]:
    """What ``fd`` holds right now without blocking: ``(data, at_eof)``."""
    try:
        ready, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return b"", True
    if not ready:
        return b"", False
    try:
        chunk = os.read(fd, _CHUNK)
    except OSError:
        return b"", True
    return chunk, not chunk


def main(argv: Sequence[str] | None = None) -> int:
    configure_cpu_threads()  # before the job imports torch
    parser = argparse.ArgumentParser(prog="emodub worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", type=Path, help="job spec JSON file (default: the spec on stdin)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    parser.add_argument("--serve", action="store_true", help="stay up: run the job specs that come on stdin, one "
                                                             "per line, keeping what they loaded")
    parser.add_argument("--idle-exit", type=float, default=900.0, dest="idle_exit",
                        help="with --serve: stop after this many seconds without a job")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    sink = _LineSink(sys.stdout)
    if args.serve:
        return serve(sink, idle_exit_s=args.idle_exit)
    pending, at_eof = b"", False
    try:
        if args.job:
            data = args.job.read_bytes()
            if len(data) > P.MAX_SPEC_BYTES:
                raise P.ProtocolError(f"job spec is larger than {P.MAX_SPEC_BYTES // 2**20} MiB")
        else:
            data, pending, at_eof = read_spec()
        spec = P.decode_spec(data)
    except (OSError, P.ProtocolError) as exc:
        sink(P.Error("unknown", code=P.BAD_SPEC, message=f"cannot read the job spec: {exc}",
                     hint="pass --job FILE with a JSON job spec, or write it on stdin as one line"))
        return P.EXIT_BAD_SPEC
    sink.version = spec.version  # an older front-end reads the answer in its own version

    cancel = CancelToken()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("emodub.worker").info("signal %d: cancelling at the next step", signum)
        cancel.cancel()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if _stdin_open() and not at_eof:
        if not pending:  # is stdin already closed (the caller has nothing to say on it)?
            pending, at_eof = _first_read(STDIN)
        if at_eof:
            if any(P.is_cancel_line(line) for line in pending.decode("utf-8", "replace").splitlines()):
                cancel.cancel()
        else:
            threading.Thread(target=_watch_stdin, args=(cancel, pending, STDIN, _stdin_is_pipe()),
                             daemon=True).start()
    return run_job(spec, sink, cancel)


class _ServedToken(CancelToken):
    """A served job's cancel token, with ``finished`` set when its terminal event is on its way out."""

    def __init__(self) -> None:
        super().__init__()
        self.finished = threading.Event()


def _ending_sink(sink: _LineSink, token: _ServedToken) -> Any:
    def forward(event: P.Event) -> None:
        if isinstance(event, P.Done | P.Error | P.Cancelled):
            token.finished.set()  # before the front-end reads it: its next spec is not "busy"
        sink(event)

    return forward


def serve(sink: _LineSink, idle_exit_s: float = 900.0, fd: int = STDIN) -> int:
    """Run job specs from ``fd`` (one per line) until ``quit``, end of file, SIGTERM or ``idle_exit_s`` idle."""
    import time

    log = logging.getLogger("emodub.worker")
    current: tuple[threading.Thread, _ServedToken] | None = None  # the job running now, one at a time
    stop = threading.Event()

    def cancel_current() -> None:
        if current is not None:
            current[1].cancel()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping the warm engine", signum)
        stop.set()
        cancel_current()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    buffer = b""
    last_active = time.monotonic()
    log.info("warm engine ready: one job spec per line on stdin; 'quit' or end of file stops it")
    while not stop.is_set():
        if current is not None and not current[0].is_alive():
            current = None
        if current is not None:
            last_active = time.monotonic()
        elif time.monotonic() - last_active > idle_exit_s:
            log.info("no job for %.0f s: stopping", idle_exit_s)
            break
        try:
            ready, _, _ = select.select([fd], [], [], 0.2)
        except (OSError, ValueError):
            break
        if not ready:
            continue
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            break  # the front-end is gone
        *lines, buffer = (buffer + chunk).split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            if line == "quit":
                stop.set()
                break
            if P.is_cancel_line(line):
                cancel_current()
                continue
            try:
                spec = P.decode_spec(line)
            except P.ProtocolError as exc:
                sink(P.Error("unknown", code=P.BAD_SPEC, message=f"cannot read the job spec: {exc}",
                             hint="send one JSON job spec per line"))
                continue
            if current is not None and not current[1].finished.is_set():
                sink(P.Error(spec.id, code=P.BUSY, message="the warm engine is running another job",
                             hint="wait for its done/error/cancelled event, or send 'cancel' first"))
                continue
            if current is not None:  # it has said its last word; let its thread end
                current[0].join()
            token = _ServedToken()
            thread = threading.Thread(target=run_job, args=(spec, _ending_sink(sink, token), token), daemon=True)
            thread.start()
            current = (thread, token)
    if current is not None:
        cancel_current()
        current[0].join(timeout=60)
    return P.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
