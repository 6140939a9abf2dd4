"""build.py: the extension zip, Blender's own validator, the protocol copy in the add-on."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_build() -> object:
    spec = importlib.util.spec_from_file_location("emodub_build", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_addon_protocol_copy_is_identical() -> None:
    build = load_build()
    copy = (ROOT / "addon" / "protocol.py").read_text()
    original = (ROOT / "core" / "jobs" / "protocol.py").read_text()
    assert copy == build.PROTOCOL_HEADER + original, "run `python build.py extension` to refresh the copy"


def test_extension_zip_builds_and_blender_validates_it() -> None:
    build = load_build()
    out = build.build_extension()
    assert out.name == f"emodub-{build.extension_version()}.zip" and out.parent.name == "dist"
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names and "protocol.py" in names
    assert not any("__pycache__" in n for n in names)
    bpy_spec = importlib.util.find_spec("bpy")
    if bpy_spec is None or bpy_spec.origin is None:
        pytest.skip("bpy is not installed; cannot run Blender's validator")
    tool = next(Path(bpy_spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    result = subprocess.run([sys.executable, str(tool), "validate", str(out)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower()
