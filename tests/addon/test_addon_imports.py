"""The add-on's import rules: relative imports only; never torch, numpy or the engine (``core``);
``bpy`` only in the Blender-side modules, so the pure-logic modules load without Blender."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ADDON = Path(__file__).resolve().parents[2] / "addon"
BLENDER_MODULES = {"bpy", "bpy_extras", "mathutils", "aud"}
BLENDER_SIDE = {"__init__", "properties", "operators", "panels", "mixdown"}


def absolute_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_addon_imports_only_the_standard_library_blender_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | BLENDER_MODULES
    sources = sorted(ADDON.glob("*.py"))
    assert {p.stem for p in sources} >= {"emotions", "engine", "jobspec", "placement", "compat", "workspace"}
    for path in sources:
        imported = absolute_imports(path)
        assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)}"
        if path.stem not in BLENDER_SIDE:
            assert not imported & {"bpy", "bpy_extras", "aud"}, f"{path.name} must not need Blender"


def test_pure_modules_load_without_bpy() -> None:
    import subprocess

    code = ("import sys; import addon.emotions, addon.engine, addon.jobspec, addon.placement, "
            "addon.compat, addon.workspace; "
            "print(sorted(m for m in ('bpy', 'torch', 'numpy', 'core') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ADDON.parent, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
