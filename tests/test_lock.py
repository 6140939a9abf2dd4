"""requirements/lock.txt: the whole dependency set, pinned and hashed, is what is installed."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
# Not dependencies: the installer itself and the project (installed editable from the source tree).
NOT_LOCKED = {"pip", "emodub"}
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)",
                    re.MULTILINE)


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    text = LOCK.read_text(encoding="utf-8")
    entries = {norm(m.group(1)): m.group(2) for m in _ENTRY.finditer(text)}
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert len(entries) == len(requirement_lines), "every line of the lock must be name==version with its hash"
    return entries


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not an exact pin"
            out[norm(name)] = version
    return out


def test_every_locked_package_is_installed_at_its_version() -> None:
    wrong = {}
    for name, version in locked().items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"locked vs installed: {wrong}; run `python build.py env` to rebuild .venv"


def test_nothing_installed_is_missing_from_the_lock() -> None:
    import sysconfig

    lock = locked()
    # What pip installed into the environment; not what a package vendors on sys.path once imported (ray puts its
    # own copies of psutil and colorama there).
    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    installed = {norm(d.metadata["Name"]) for d in md.distributions(path=sorted(site))}
    assert not installed - set(lock) - NOT_LOCKED, "installed but not locked: run `python build.py lock`"


def test_the_lock_follows_the_pins_and_the_project() -> None:
    lock = locked()
    for pin_file in ("runtime.txt", "dev.txt", "constraints.txt"):
        for name, version in pins(ROOT / "requirements" / pin_file).items():
            # torch is pinned as 2.13.0 and locked as the local CPU build's 2.13.0+cpu
            assert lock.get(name, "").split("+")[0] == version, (
                f"{pin_file} pins {name}=={version}, the lock has {lock.get(name)}: run `python build.py lock`")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert norm(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]) in lock, requirement
    assert lock["torch"] == "2.13.0+cpu"  # the machine's local CPU build, never a registry's CUDA one


def test_build_installs_from_the_lock_with_hashes_and_rebuilds_when_it_changes(tmp_path: Path,
                                                                               monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("emodub_build_lock", ROOT / "build.py")
    build = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(build)
    assert build.LOCK == LOCK and build.LOCK in build.SPEC_FILES
    source = (ROOT / "build.py").read_text()
    assert '"--require-hashes", "--no-deps", "-r", LOCK' in source
    before = build.spec_hash()
    copy = tmp_path / "lock.txt"
    copy.write_text(LOCK.read_text() + "# changed\n")
    monkeypatch.setattr(build, "SPEC_FILES", [copy])
    assert build.spec_hash() != before
