"""``emodub worker`` / ``python -m core.worker``: run one job, events as JSON lines on stdout.

The spec comes from ``--job FILE`` or, without it, from the first line of stdin. While the job runs,
stdin is watched for a ``cancel`` line (and, when stdin is a pipe, its closing: the front-end died),
and SIGTERM (or SIGINT) requests cancellation too: the job
stops at its next progress step, saves what it has, emits ``cancelled`` and the process exits with
:data:`~core.jobs.protocol.EXIT_CANCELLED`. Logs for people go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import protocol as P
from .context import CancelToken
from .runner import run_job
from .threads import configure_cpu_threads


class _LineSink:
    """Writes each event as one flushed line; thread-safe so a watchdog can emit too."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: P.Event) -> None:
        line = P.encode_event(event)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


def _stdin_is_pipe(stream: TextIO) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def _watch_stdin(stream: TextIO, cancel: CancelToken) -> None:
    """Cancel on a ``cancel`` line; also when a front-end's pipe closes (it died: don't run orphaned)."""
    pipe = _stdin_is_pipe(stream)
    for line in stream:
        if P.is_cancel_line(line):
            cancel.cancel()
            return
    if pipe:
        logging.getLogger("emodub.worker").info("stdin closed: the front-end is gone, cancelling")
        cancel.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    configure_cpu_threads()  # before the job imports torch
    parser = argparse.ArgumentParser(prog="emodub worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", type=Path, help="job spec JSON file (default: first line of stdin)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    sink = _LineSink(sys.stdout)
    try:
        text = args.job.read_text(encoding="utf-8") if args.job else sys.stdin.readline()
        spec = P.decode_spec(text)
    except (OSError, P.ProtocolError) as exc:
        sink(P.Error("unknown", code="bad_spec", message=f"cannot read the job spec: {exc}",
                     hint="pass --job FILE with a JSON job spec, or write it as the first line of stdin"))
        return P.EXIT_BAD_SPEC

    cancel = CancelToken()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("emodub.worker").info("signal %d: cancelling at the next step", signum)
        cancel.cancel()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=_watch_stdin, args=(sys.stdin, cancel), daemon=True).start()
    return run_job(spec, sink, cancel)


if __name__ == "__main__":
    sys.exit(main())
