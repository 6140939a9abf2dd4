"""CPU thread policy of engine processes, set before torch (and its OpenMP runtime) is loaded.

OpenMP's default is to spin-wait between parallel regions. When another process keeps a core busy
(Blender rendering, a second job, a test suite), the spinning threads steal time from the thread doing
the work: on the 2-core reference machine the renderer ran 2x *slower* with two threads than with one
(1.95 vs 3.9 frames/s). ``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep: under load two threads
then match one (3.8 frames/s). On an idle machine, though, sleeping and waking costs more than it saves
when the work comes in many small pieces: the a2e network trained 2.1x slower, the 256 px renderer ran
~20% slower. So the policy is chosen at start from what the other processes use *now* (two samples of
``/proc/stat`` 0.2 s apart; the 1-minute load average lags a finished job by minutes): PASSIVE when they
keep at least half a core busy, the default otherwise. Variables the user has set are never touched.
"""

from __future__ import annotations

import os
import sys

BUSY_CORES = 0.5  # cores' worth of other work from which waiting threads should sleep


def busy_cores(interval: float = 0.2) -> float | None:
    """Cores kept busy by all processes over ``interval`` seconds (Linux ``/proc/stat``), else None."""
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values) - idle, sum(values)

    try:
        busy0, total0 = sample()
        time.sleep(interval)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return 0.0
    return (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1)


def configure_cpu_threads(environ: dict[str, str] | None = None, busy: float | None = None) -> dict[str, str]:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when other work keeps >= ``BUSY_CORES`` busy (``busy``: measured
    by :func:`busy_cores` when not given) and the user has not chosen a policy; returns what was set here.
    Has no effect on an OpenMP runtime already loaded, so it is called first thing in the entry points."""
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env:
        return {}
    if busy is None:
        busy = busy_cores()
    if busy is None or busy < BUSY_CORES:
        return {}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    if environ is None and "torch" in sys.modules:  # too late for this process
        import logging

        logging.getLogger("emodub").debug("torch already loaded: OMP_WAIT_POLICY applies to child processes only")
    return {"OMP_WAIT_POLICY": "PASSIVE"}
