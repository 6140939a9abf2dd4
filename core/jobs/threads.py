"""CPU thread policy of engine processes, set before torch (and its OpenMP runtime) is loaded.

OpenMP's default is to spin-wait between parallel regions. When another process keeps a core busy
(Blender, the studio app, a second job), a spinning thread keeps stealing time from the thread doing
the work: on the 2-core reference machine the renderer ran 2x *slower* with two threads than with one.
``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep: under load two threads then match one, and
on an idle machine they still beat one (``bench/renderer.py`` docstring has the figures). Users keep
the last word: variables already set in the environment are not touched.
"""

from __future__ import annotations

import os
import sys

DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def configure_cpu_threads(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Fill in the thread policy variables the user has not set; returns those that were set here.

    Has no effect on an OpenMP runtime already loaded, so it is called first thing in the entry points.
    """
    env = os.environ if environ is None else environ
    applied = {key: value for key, value in DEFAULTS.items() if key not in env}
    env.update(applied)
    if applied and environ is None and "torch" in sys.modules:  # too late for this process
        import logging

        logging.getLogger("emodub").debug("torch already loaded: %s applies to child processes only", applied)
    return applied
