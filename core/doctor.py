"""``emodub doctor``: what the engine has to work with, and a hint for each problem."""

from __future__ import annotations

import importlib
import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core import __version__


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    required: bool = True


def _module_version(name: str) -> tuple[bool, str]:
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure is a finding
        return False, f"not importable ({type(exc).__name__}: {exc})"
    return True, str(getattr(module, "__version__", "installed"))


def flame_file() -> Path | None:
    """The configured FLAME model file, if any (``EMODUB_FLAME_DIR`` or ``~/.emodub/flame``)."""
    folder = Path(os.environ.get("EMODUB_FLAME_DIR", Path.home() / ".emodub" / "flame")).expanduser()
    for name in ("generic_model.pkl", "flame2023.pkl", "flame2023_no_jaw.pkl"):
        if (folder / name).exists():
            return folder / name
    return None


def run_checks(workspace: str | None = None) -> list[Check]:
    checks = [Check("python", sys.version_info[:2] >= (3, 11), platform.python_version(),
                    "emodub needs Python 3.11 or newer")]
    ok, version = _module_version("torch")
    checks.append(Check("torch", ok, version, "install the pinned torch: pip install torch==2.13.0"))
    if ok:
        import torch

        cuda = torch.cuda.is_available()
        detail = (f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})" if cuda
                  else "no CUDA device; running on CPU")
        # ok: a GPU is there (front-ends offer the cuda device only then); not required: the CPU works
        checks.append(Check("cuda", cuda, detail, "" if cuda else "training is slow on CPU; a GPU helps",
                            required=False))
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        checks.append(Check("ffmpeg", Path(exe).exists(), exe, "reinstall imageio-ffmpeg"))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("ffmpeg", False, str(exc), "pip install imageio-ffmpeg"))
    ok, version = _module_version("mediapipe")
    checks.append(Check("mediapipe", ok, version,
                        "pip install mediapipe==0.10.21 (the landmark detector for real footage)"))
    flame = flame_file()
    checks.append(Check("flame", flame is not None,
                        str(flame) if flame else "no FLAME model configured (the procedural head is used)",
                        "optional: register at https://flame.is.tue.mpg.de, download FLAME 2020 and put "
                        "generic_model.pkl in ~/.emodub/flame (or set EMODUB_FLAME_DIR)", required=False))
    target = Path(workspace or ".").expanduser()
    while not target.exists() and target != target.parent:
        target = target.parent
    free_gb = shutil.disk_usage(target).free / 1e9
    checks.append(Check("disk", free_gb >= 5.0, f"{free_gb:.1f} GB free at {target.resolve()}",
                        "free some disk space: training and renders need several GB"))
    if workspace:
        from core.workspace import Workspace, WorkspaceError

        try:
            problems = Workspace.open(workspace).validate()
            checks.append(Check("workspace", not problems, "; ".join(problems) or f"{workspace} is valid",
                                "fix the listed problems or re-ingest the clips"))
        except WorkspaceError as exc:
            checks.append(Check("workspace", False, str(exc), exc.hint))
    return checks


def report(workspace: str | None = None) -> dict[str, Any]:
    checks = run_checks(workspace)
    return {"emodub": __version__, "ok": all(c.ok for c in checks if c.required),
            "checks": [asdict(c) for c in checks]}


def main(as_json: bool = False, workspace: str | None = None) -> int:
    result = report(workspace)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"emodub {result['emodub']}")
        for check in result["checks"]:
            mark = "ok " if check["ok"] else ("!! " if check["required"] else "-- ")
            print(f"  {mark}{check['name']:<10} {check['detail']}")
            if not check["ok"] and check["hint"]:
                print(f"     hint: {check['hint']}")
        print("all required checks passed" if result["ok"] else "some required checks failed")
    return 0 if result["ok"] else 1
