"""Screenshots of emodub studio at every step of an editor's whole job, for the README and for review.

    QT_QPA_PLATFORM=xcb xvfb-run -s "-screen 0 1400x900x24" python -m ui.screenshots --out docs/screenshots/

Runs the whole workflow (:mod:`ui.workflow`) with the real engine on a small synthetic actor (a few minutes on a
laptop CPU) and pictures the screen at each step: under X with ``import -window root`` (the real window with its
dialogs, as a user sees them), offscreen with the window's or the dialog's own ``grab()``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]


def grab(window: object, path: Path) -> Path:
    """Save ``window.grab()`` as PNG; palette-reduced when that keeps it under 200 KB."""
    from PySide6.QtGui import QImage

    image = window.grab().toImage()  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(path), "PNG")
    if path.stat().st_size > 200_000:
        image.convertToFormat(QImage.Format.Format_Indexed8).save(str(path), "PNG")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="docs/screenshots", help="folder for the PNGs")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args(argv)
    return workflow_screenshots(Path(args.out), args.width, args.height)


def workflow_screenshots(out: Path, width: int, height: int) -> int:
    """Run :func:`ui.workflow.run_workflow` on a small synthetic actor, a picture per step in ``out``."""
    import shutil
    import subprocess

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from core.synthetic.takes import camera_takes
    from ui.app import MainWindow
    from ui.notify import RecordingNotifier
    from ui.settings import StudioSettings
    from ui.workflow import WorkflowInputs, run_workflow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    on_x = app.platformName() == "xcb" and shutil.which("import") is not None
    settings = StudioSettings(engine_python=sys.executable, engine_pythonpath=str(ROOT), cancel_grace_s=5.0)
    window = MainWindow(settings, RecordingNotifier())
    window.resize(width, height)
    window.move(0, 0)
    window.show()
    window.resizeDocks([window.jobs_dock], [170], Qt.Orientation.Vertical)
    written: list[Path] = []

    def snap(name: str, widget: object) -> None:
        path = out / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if on_x:  # the real screen: the window and any dialog over it
            app.processEvents()
            time.sleep(0.3)
            app.processEvents()
            subprocess.run(["import", "-window", "root", "-crop", f"{width}x{height}+0+0", str(path)],
                           check=True)
        else:
            grab(widget, path)
        written.append(path)

    with tempfile.TemporaryDirectory(prefix="emodub-workflow-") as tmp:
        camera = camera_takes(Path(tmp), size=128)
        inputs = WorkflowInputs(takes=camera.takes, shot_video=camera.shot_video, dub_audio=camera.dub_audio,
                                workspace=Path(tmp) / "studio",
                                a2e_iterations=300, renderer_iterations=200, track_iterations=0.5)
        run_workflow(window, inputs, snap)
        window.jobs.shutdown()
        window.warm.stop()
    for path in written:
        print(f"{path} {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
