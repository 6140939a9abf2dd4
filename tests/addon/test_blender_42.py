"""The same Blender tests on the Blender 4.2 LTS API (``sequences``, ``action.fcurves``).

Needs a second Python 3.11 with the bpy 4.2 wheel (``pip install bpy==4.2.0``; it must also reach
pytest, numpy, imageio-ffmpeg and ``core``). Point ``EMODUB_BPY42_PYTHON`` at it; without it this test
is skipped and the 4.2 API shapes are covered by ``test_compat.py``'s fakes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.blender
def test_addon_tests_pass_on_blender_42() -> None:
    python = os.environ.get("EMODUB_BPY42_PYTHON")
    if not python:
        pytest.skip("EMODUB_BPY42_PYTHON is not set (a Python with bpy 4.2 installed)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "BLENDER_USER_RESOURCES": tempfile.mkdtemp(prefix="emodub-blender42-")}
    version = subprocess.run([python, "-c", "import bpy; print(bpy.app.version_string)"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip().startswith("4.2"), f"{python} has bpy {version.stdout.strip()}, not 4.2"
    out = subprocess.run([python, "-m", "pytest", "tests/addon/test_blender_addon.py", "-q", "-rs",
                          "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and " failed" not in out.stdout
