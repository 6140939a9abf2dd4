"""The whole job of an editor in emodub studio, step by step, through the app's own menus, dialogs and buttons.

New workspace -> import the actor's takes (each labelled with its emotion) -> record consent -> train (tracking
first, one job) -> import the shot -> open it, choose the dub audio -> key an emotion -> preview a frame in the
warm engine -> render the dub -> review it with its report. Each dialog is filled in as a person would and
accepted; the jobs run in the real engine.

Used by the workflow test (``tests/ui/test_workflow.py``, a tiny actor) and by ``python -m ui.screenshots
--workflow`` (a picture of the window, and of each dialog, at every step, for ``docs/screenshots/``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication, QDialog, QWidget

from . import curvedoc as cd
from .jobstate import DONE, JobRecord

Snap = Callable[[str, QWidget], None]


@dataclass(frozen=True)
class WorkflowInputs:
    """What the editor brings: the actor's takes by emotion, the shot to dub, the dub audio, how long to train."""

    takes: dict[str, list[Path]]
    shot_video: Path
    dub_audio: Path
    workspace: Path
    actor: str = "anna"
    a2e_iterations: int = 0
    renderer_iterations: int = 0
    track_iterations: float = 1.0
    timeout_s: float = 1800.0


@dataclass
class WorkflowResult:
    """What each step left: the jobs (with every bar value the Jobs panel showed), the shot, the preview."""

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    bars: dict[str, list[float]] = field(default_factory=dict)
    shot: str = ""
    preview_frame: int = -1
    steps: list[str] = field(default_factory=list)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    app = QApplication.instance()
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()  # type: ignore[union-attr]
        time.sleep(0.02)
    app.processEvents()  # type: ignore[union-attr]


@contextlib.contextmanager
def answering(dialog_cls: type[QDialog], fill: Callable[[Any], None], snap: Snap, name: str) -> Iterator[None]:
    """While inside, the app's ``dialog_cls`` dialogs are filled in by ``fill``, pictured and accepted."""
    original = dialog_cls.exec

    def exec_(dialog: Any) -> QDialog.DialogCode:
        fill(dialog)
        dialog.show()
        QApplication.processEvents()
        snap(name, dialog)
        dialog.hide()
        return QDialog.DialogCode.Accepted

    dialog_cls.exec = exec_  # type: ignore[method-assign]
    try:
        yield
    finally:
        dialog_cls.exec = original  # type: ignore[method-assign]


def _newest_job(window: Any, before: set[str]) -> JobRecord:
    new = [record for record in window.jobs.queue.records() if record.id not in before]
    if not new:
        raise AssertionError(f"no job was queued; the app said: {[m.text for m in window.notifier.messages][-3:]}")
    return new[-1]


def _follow(window: Any, result: WorkflowResult, step: str, start: Callable[[], None], timeout_s: float,
            snap: Snap, picture_midway: str = "") -> JobRecord:
    """Run ``start`` (a menu or button), then follow the job it queued to its end, keeping the bar it showed;
    ``picture_midway``: the name of a picture taken once the job is past 60 %."""
    before = {record.id for record in window.jobs.queue.records()}
    start()
    record = _newest_job(window, before)
    bars: list[float] = []
    pictured = not picture_midway
    deadline = time.monotonic() + timeout_s
    while not record.is_finished:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{step}: the job did not finish in {timeout_s:.0f} s")
        QApplication.processEvents()
        if record.fraction is not None and record.state == "running":
            bars.append(record.fraction)
            if not pictured and record.fraction > 0.6:
                snap(picture_midway, window)
                pictured = True
        time.sleep(0.05)
    QApplication.processEvents()
    if record.state != DONE:
        log = "\n".join(list(record.log)[-20:])
        raise AssertionError(f"{step}: {record.state}: {record.error_message} ({record.error_hint})\n{log}")
    result.jobs[step], result.bars[step] = record, bars
    return record


def run_workflow(window: Any, inputs: WorkflowInputs, snap: Snap = lambda name, widget: None) -> WorkflowResult:
    """Do the whole job in ``window`` (a shown :class:`ui.app.MainWindow` whose engine is set up)."""
    from .dialogs import ConsentDialog, DubDialog, IngestDialog, TrainDialog

    result = WorkflowResult()
    timeout = inputs.timeout_s
    chooser = window.chooser

    # 1. File > New workspace…
    chooser.existing_dir = lambda title: str(inputs.workspace)
    window.ask_create_workspace()
    assert window.workspace is not None and window.workspace.root == inputs.workspace.resolve()
    snap("01-new-workspace", window)
    result.steps.append("new workspace")

    # 2. File > Import footage…: each take as a clip of the actor, labelled with its emotion
    for emotion, videos in inputs.takes.items():
        for video in videos:
            def fill_take(dialog: Any, video: Path = video, emotion: str = emotion) -> None:
                dialog.video.edit.setText(str(video))
                dialog.as_clip.setChecked(True)
                dialog.actor.setCurrentText(inputs.actor)
                if emotion != "neutral":
                    dialog.emotion.sliders[emotion].setValue(100)

            with answering(IngestDialog, fill_take, snap, "02-import-take"):
                _follow(window, result, f"import {video.stem}", window.ask_import, timeout, snap)
    window.browser.tree.expandAll()
    snap("03-footage-imported", window)
    result.steps.append("import footage")

    # 3. Jobs > Record actor consent…
    def fill_consent(dialog: Any) -> None:
        dialog.actor.setCurrentText(inputs.actor)
        dialog.by.setText("the actor (synthetic: nobody)")
        dialog.scope.setText("this production, every language")
        dialog.document.setText("contracts/anna-consent.pdf")

    with answering(ConsentDialog, fill_consent, snap, "04-consent"):
        _follow(window, result, "consent", window.ask_consent, timeout, snap)
    result.steps.append("consent")

    # 4. Jobs > Train…: tracking first, then audio-to-expression and the renderer, one job
    def fill_train(dialog: Any) -> None:
        dialog.actor.setCurrentText(inputs.actor)
        dialog.kind.setCurrentIndex(dialog.kind.findData("train.actor"))
        dialog.a2e_iterations.setValue(inputs.a2e_iterations)
        dialog.renderer_iterations.setValue(inputs.renderer_iterations)
        dialog.track_iterations.setValue(inputs.track_iterations)

    with answering(TrainDialog, fill_train, snap, "05-train"):
        window.tabs.setCurrentWidget(window.training)
        _follow(window, result, "train", window.ask_train, timeout, snap, picture_midway="05b-training")
    snap("06-trained", window)
    result.steps.append("track + train")

    # 5. File > Import footage… as a shot to dub (the engine ingests and tracks it)
    def fill_shot(dialog: Any) -> None:
        dialog.video.edit.setText(str(inputs.shot_video))
        dialog.as_shot.setChecked(True)

    shot_names: list[str] = []
    with answering(IngestDialog, lambda d: (fill_shot(d), shot_names.append(d.values()["shot"])), snap,
                   "07-import-shot"):
        _follow(window, result, "prepare shot", window.ask_import, timeout, snap)
    result.shot = shot_names[-1]
    result.steps.append("prepare shot")

    # 6. open the shot, Dub audio…, key an emotion
    assert window.open_shot(result.shot), f"the app cannot open shot {result.shot!r}"
    timeline = window.timeline
    wait_until(lambda: timeline.media_loading == 0, 120, "the shot's waveform and thumbnails")
    chooser.open_file = lambda title, file_filter: str(inputs.dub_audio)
    timeline.audio_button.click()
    frames = timeline.canvas.n_frames
    timeline.push_edit(cd.apply_preset(timeline.doc, "happy", "ramp in", 0, max(frames // 2, 1), 0.9))
    timeline.canvas.set_playhead(max(frames // 2, 1))
    QApplication.processEvents()
    snap("08-curves", window)
    result.steps.append("dub audio + curves")

    # 7. Preview frame (the warm engine), shown in the timeline's Dub preview
    frame = timeline.canvas.playhead
    timeline.preview_button.click()
    wait_until(lambda: frame in timeline._dub_frames, timeout, "the previewed frame")
    result.preview_frame = frame
    snap("09-preview", window)
    result.steps.append("preview")

    # 8. Jobs > Render dub…
    def fill_dub(dialog: Any) -> None:
        dialog.actor.setCurrentText(inputs.actor)

    with answering(DubDialog, fill_dub, snap, "10-render"):
        _follow(window, result, "render", window.ask_render, timeout, snap, picture_midway="10b-rendering")
    # 9. Review: the dub beside its source, with its report
    wait_until(lambda: window.review.report_box.isVisibleTo(window.review), 30, "the dub report in Review")
    window.review.show_frame(max(frames // 2, 0))
    QApplication.processEvents()
    snap("11-review", window)
    result.steps.append("render + review")
    return result
