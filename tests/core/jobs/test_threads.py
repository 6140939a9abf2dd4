import os
import subprocess
import sys
from pathlib import Path

from core.jobs.threads import configure_cpu_threads

ROOT = Path(__file__).resolve().parents[3]


def test_passive_waiting_only_on_a_busy_machine_and_never_over_the_user() -> None:
    env: dict[str, str] = {}
    assert configure_cpu_threads(env, busy=0.1) == {} and env == {}  # idle: OpenMP's default
    assert configure_cpu_threads(env, busy=1.0) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert configure_cpu_threads(mine, busy=2.0) == {}
    assert mine == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_busy_cores_sees_a_busy_loop() -> None:
    from core.jobs.threads import busy_cores

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        busy = busy_cores(0.3)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is None or busy >= 0.5  # None off Linux


def test_entry_points_load_no_torch_before_main_sets_the_policy() -> None:
    # configure_cpu_threads() runs first thing in main(); it only works if importing the entry points
    # has not already loaded torch's OpenMP runtime.
    code = "import sys, core.cli, core.jobs.worker; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
