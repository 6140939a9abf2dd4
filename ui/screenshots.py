"""Screenshots of emodub studio's main states, for the README and for review.

    python -m ui.screenshots --out docs/screenshots/
    xvfb-run -s "-screen 0 1400x900x24" python -m ui.screenshots --workflow --out docs/screenshots/workflow/

``--workflow`` runs the whole job of an editor (:mod:`ui.workflow`) with the real engine on a small synthetic
actor and pictures the screen at each step (with ``import -window root`` under X, the whole screen with its
dialogs; offscreen, the window or dialog alone).

Writes ``empty.png`` (a new, empty workspace), ``curves.png`` (emotion curves being edited on a shot),
``job-running.png`` (the engine self-test running for real, live loss curve and progress bar) and
``render.png`` (a finished render in the review tab beside its source). Runs offscreen.

The media are synthetic cartoon faces (:mod:`ui.demo_media`). Until the engine's ``dub`` job exists
the "finished render" is a STAND-IN video made by :func:`ui.demo_media.make_stand_in_render` (the
face with the keyframed smile), and the review tab says so in its title.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]


def wait_until(app: object, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)
    app.processEvents()  # type: ignore[attr-defined]


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
    parser.add_argument("--workflow", action="store_true", help="picture every step of the whole workflow")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.workflow:
        return workflow_screenshots(out, args.width, args.height)

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from ui import curvedoc as cd
    from ui.app import MainWindow
    from ui.demo_media import make_demo_workspace, make_stand_in_render
    from ui.notify import RecordingNotifier
    from ui.settings import StudioSettings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    settings = StudioSettings(engine_python=sys.executable, engine_pythonpath=str(ROOT), cancel_grace_s=5.0)
    notifier = RecordingNotifier()
    window = MainWindow(settings, notifier)
    window.resize(args.width, args.height)
    window.show()
    window.resizeDocks([window.jobs_dock], [170], Qt.Orientation.Vertical)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="emodub-shots-") as tmp:
        # 1. A new, empty workspace.
        window.create_workspace(Path(tmp) / "new-workspace")
        app.processEvents()
        written.append(grab(window, out / "empty.png"))

        # 2. Curves being edited on a shot.
        ws = make_demo_workspace(Path(tmp) / "studio", frames=125, size=192)
        window.open_workspace(ws.root)
        window.browser.tree.expandAll()
        window.open_shot("scene12")
        wait_until(app, lambda: window.timeline.media_loading == 0, 60, "waveform and thumbnails")
        timeline, doc = window.timeline, window.timeline.doc
        timeline.push_edit(cd.apply_preset(doc, "happy", "ramp in", 12, 55, 0.8))
        timeline.push_edit(cd.apply_preset(doc, "surprised", "pulse", 60, 100, 0.7))
        timeline.push_edit(cd.apply_preset(doc, "sad", "ramp out", 0, 30, 0.4))
        timeline.push_edit(cd.add_key(doc, "angry", 85, 0.25, "linear"))
        timeline.push_edit(cd.add_key(doc, "angry", 115, 0.5, "constant"))
        timeline.canvas.select(("happy", 1))
        timeline.canvas.set_playhead(48)
        timeline._update_preview()
        app.processEvents()
        written.append(grab(window, out / "curves.png"))
        timeline.save()

        # 3. A job running: the real engine self-test, live loss curve, progress bar.
        record = window.run_selftest(steps=400, step_delay=0.02)
        window.tabs.setCurrentWidget(window.training)
        wait_until(app, lambda: record.done >= 160, 120, "self-test progress")
        written.append(grab(window, out / "job-running.png"))
        window.jobs.cancel(record.id)
        wait_until(app, lambda: record.is_finished, 60, "self-test cancel")

        # 4. A finished render in review (stand-in video until the dub job exists).
        smile = doc.sample("happy", range(125))
        make_stand_in_render(ws, "scene12", "scene12-dub", smile)
        window.refresh_workspace()
        window.tabs.setCurrentWidget(window.review)
        window.review.open_render_named("scene12-dub")
        app.processEvents()
        window.review.show_frame(60)
        app.processEvents()
        written.append(grab(window, out / "render.png"))
        window.jobs.shutdown()
    for path in written:
        print(f"{path} {path.stat().st_size // 1024} KB")
    problems = [m.text for m in notifier.messages if m.level in ("error", "warning")]
    for text in problems:
        print(f"notifier: {text}", file=sys.stderr)
    return 0


def workflow_screenshots(out: Path, width: int, height: int) -> int:
    """Run :func:`ui.workflow.run_workflow` on a small synthetic actor, a picture per step in ``out``."""
    import shutil
    import subprocess

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from core.jobs import protocol as P
    from core.jobs.runner import run_job
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
            subprocess.run(["import", "-window", "root", "-crop", f"{width}x{height}+0+0", str(path)], check=True)
        else:
            grab(widget, path)
        written.append(path)

    with tempfile.TemporaryDirectory(prefix="emodub-workflow-") as tmp:
        events: list[P.Event] = []
        corpus = Path(tmp) / "corpus"
        spec = P.JobSpec("synth", {"out": str(corpus), "sentences": 2, "emotions": ["neutral", "happy"],
                                   "intensities": [3], "size": 128, "seed": 0})
        if run_job(spec, events.append) != P.EXIT_OK:
            print(f"synth failed: {events[-1]}", file=sys.stderr)
            return 1
        clips = corpus / "actors" / "synthetic" / "clips"
        takes: dict[str, list[Path]] = {"neutral": [], "happy": []}
        for name in ("s000_neutral", "s000_happy_3", "s001_happy_3"):
            take = Path(tmp) / "camera" / f"{name}.mp4"
            take.parent.mkdir(exist_ok=True)
            take.write_bytes((clips / name / "video.mp4").read_bytes())
            takes[name.split("_")[1]].append(take)
        inputs = WorkflowInputs(takes=takes, shot_video=clips / "s001_neutral" / "video.mp4",
                                dub_audio=clips / "s001_happy_3" / "audio.wav", workspace=Path(tmp) / "studio",
                                a2e_iterations=300, renderer_iterations=200, track_iterations=0.5)
        run_workflow(window, inputs, snap)
        window.jobs.shutdown()
        window.warm.stop()
    for path in written:
        print(f"{path} {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
