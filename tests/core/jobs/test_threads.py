import os
import subprocess
import sys
from pathlib import Path

from core.jobs.threads import configure_cpu_threads

ROOT = Path(__file__).resolve().parents[3]


def test_fills_only_what_the_user_left_unset() -> None:
    env: dict[str, str] = {}
    assert configure_cpu_threads(env) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert configure_cpu_threads(mine) == {}
    assert mine == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_entry_points_load_no_torch_before_main_sets_the_policy() -> None:
    # configure_cpu_threads() runs first thing in main(); it only works if importing the entry points
    # has not already loaded torch's OpenMP runtime.
    code = "import sys, core.cli, core.jobs.worker; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
