"""The curve editor with real mouse events: add, drag, delete keys; the sampled curve follows; undo
restores; the curves are saved in the engine's JSON form, and a failed save loses nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from core.expression.emotions import EmotionCurves
from ui import curvedoc as cd
from ui.timeline import TimelineEditor

pytestmark = pytest.mark.qt


@pytest.fixture
def editor(qtbot, shot_workspace, notifier) -> TimelineEditor:
    widget = TimelineEditor(notifier)
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    assert widget.open_shot(shot_workspace, "scene12")
    qtbot.waitUntil(lambda: widget.media_loading == 0, timeout=20000)
    return widget


def _point(editor: TimelineEditor, emotion: str, frame: float, value: float) -> QPoint:
    canvas = editor.canvas
    return QPoint(round(float(canvas.frame_to_x(frame))), round(float(canvas.value_to_y(emotion, value))))


def test_mouse_adds_moves_and_deletes_keys_with_undo(qtbot, editor) -> None:
    canvas, doc = editor.canvas, editor.doc
    frames = np.arange(40)
    assert np.all(doc.sample("happy", frames) == 0)

    qtbot.mouseDClick(canvas, Qt.MouseButton.LeftButton, pos=_point(editor, "happy", 10, 0.2))
    qtbot.mouseDClick(canvas, Qt.MouseButton.LeftButton, pos=_point(editor, "happy", 30, 0.8))
    keys = doc.keys("happy")
    assert [k.frame for k in keys] == [10.0, 30.0]
    assert keys[0].value == pytest.approx(0.2, abs=0.04) and keys[1].value == pytest.approx(0.8, abs=0.04)
    added = doc.sample("happy", frames)
    assert added[35] == pytest.approx(keys[1].value) and added[0] == pytest.approx(keys[0].value)
    assert editor.undo_stack.count() == 2 and editor.is_dirty

    # Drag the second key to frame 20, value 0.5: one undo step.
    start, end = _point(editor, "happy", 30, keys[1].value), _point(editor, "happy", 20, 0.5)
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas, _point(editor, "happy", 25, 0.6))
    qtbot.mouseMove(canvas, end)
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=end)
    moved = doc.keys("happy")
    assert [k.frame for k in moved] == [10.0, 20.0] and moved[1].value == pytest.approx(0.5, abs=0.04)
    after_move = doc.sample("happy", frames)
    assert after_move[35] == pytest.approx(moved[1].value) and not np.allclose(after_move, added)
    assert editor.undo_stack.count() == 3

    # Select the first key by clicking it and delete it with the keyboard.
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=_point(editor, "happy", 10, moved[0].value))
    assert canvas.selection == ("happy", 0)
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert [k.frame for k in doc.keys("happy")] == [20.0]
    assert np.allclose(doc.sample("happy", frames), moved[1].value)  # one key: constant everywhere

    editor.undo_stack.undo()  # delete undone
    np.testing.assert_allclose(doc.sample("happy", frames), after_move)
    editor.undo_stack.undo()  # move undone
    np.testing.assert_allclose(doc.sample("happy", frames), added)
    editor.undo_stack.redo()
    np.testing.assert_allclose(doc.sample("happy", frames), after_move)
    editor.undo_stack.undo()
    editor.undo_stack.undo()
    editor.undo_stack.undo()
    assert doc.keys("happy") == () and not editor.is_dirty


def test_interpolation_buttons_presets_and_scrubbing(qtbot, editor) -> None:
    canvas, doc = editor.canvas, editor.doc
    editor.push_edit(cd.add_key(doc, "sad", 0, 0.0, "bezier"))
    editor.push_edit(cd.add_key(doc, "sad", 39, 1.0))
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=_point(editor, "sad", 0, 0.0))
    assert canvas.selection == ("sad", 0)
    eased = float(doc.sample("sad", 10))
    qtbot.mouseClick(editor.interp_buttons["linear"], Qt.MouseButton.LeftButton)
    assert doc.keys("sad")[0].interpolation == "linear"
    assert float(doc.sample("sad", 10)) == pytest.approx(10 / 39) and eased < 10 / 39
    qtbot.mouseClick(editor.interp_buttons["constant"], Qt.MouseButton.LeftButton)
    assert float(doc.sample("sad", 10)) == 0.0
    editor.undo_stack.undo()
    assert doc.keys("sad")[0].interpolation == "linear"

    editor.preset_kind.setCurrentText("pulse")
    editor.preset_emotion.setCurrentText("surprised")
    editor.preset_start.setValue(5)
    editor.preset_end.setValue(25)
    editor.preset_peak.setValue(0.6)
    qtbot.mouseClick(editor.preset_apply, Qt.MouseButton.LeftButton)
    values = doc.sample("surprised", np.arange(40))
    assert values[0] == 0 and values[15] == pytest.approx(0.6) and values[30] == 0

    # Right-click menu on a lane offers the presets at the playhead.
    canvas.set_playhead(2)
    menu = canvas.build_context_menu(_point(editor, "fear", 20, 0.5))
    ramp = next(a for a in menu.actions() if a.text().startswith("Ramp in"))
    ramp.trigger()
    assert [k.frame for k in doc.keys("fear")] == [2.0, 39.0]  # 2 s at 25 fps, clipped to the shot

    # Clicking in the waveform lane scrubs the playhead; the preview follows the source frame.
    moves: list[int] = []
    canvas.playhead_changed.connect(moves.append)
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(round(float(canvas.frame_to_x(15))), 40))
    assert moves == [15] and canvas.playhead == 15
    qtbot.waitUntil(lambda: "source frame 15" in editor.preview_info.text(), timeout=5000)
    assert editor.preview.pixmap() is not None and not editor.preview.pixmap().isNull()
    np.testing.assert_allclose(editor.values_at_playhead(), doc.sample_all(16)[15])


def test_waveform_and_thumbnails_loaded(editor) -> None:
    assert editor.canvas.envelope is not None and editor.canvas.envelope.duration_s == pytest.approx(
        1.6, abs=0.05
    )
    assert len(editor.canvas.thumbs) >= 4 and editor.canvas.thumbs[0][0] == 0
    image = editor.canvas.grab().toImage()
    assert image.width() > 400  # painting with all lanes does not raise


def test_save_writes_engine_json_and_failed_save_keeps_edits(
    editor, shot_workspace, notifier, monkeypatch, tmp_path: Path
) -> None:
    doc = editor.doc
    editor.push_edit(cd.apply_preset(doc, "happy", "ramp in", 5, 30, 0.7))
    assert editor.save() and not editor.is_dirty
    path = shot_workspace.shot_dir("scene12") / "emotions.json"
    loaded = EmotionCurves.load(path)
    np.testing.assert_allclose(loaded.sample(40), doc.sample_all(40))
    assert loaded.frame_end == 39 and loaded.fps == 25

    editor.push_edit(cd.add_key(doc, "angry", 12, 0.4))

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(EmotionCurves, "save", refuse)
    assert not editor.save()
    message = notifier.of_level("error")[-1]
    assert message.title == "Curves not saved" and "Export curves" in message.hint
    assert editor.is_dirty and doc.keys("angry")  # nothing lost
    monkeypatch.undo()
    assert editor.export_curves(tmp_path / "elsewhere.json")
    assert "angry" in EmotionCurves.load(tmp_path / "elsewhere.json").curves


def test_unreadable_curves_file_is_kept_and_moved_aside(qtbot, shot_workspace, notifier) -> None:
    path = shot_workspace.shot_dir("scene12") / "emotions.json"
    path.write_text('{"format": "something else"}')
    editor = TimelineEditor(notifier)
    qtbot.addWidget(editor)
    editor.open_shot(shot_workspace, "scene12")
    assert notifier.of_level("warning")[-1].title == "Emotion curves not loaded"
    assert path.read_text() == '{"format": "something else"}'  # untouched on open
    editor.push_edit(cd.add_key(editor.doc, "happy", 3, 0.5))
    assert editor.save()
    aside = list(path.parent.glob("emotions.json.invalid-*"))
    assert len(aside) == 1 and aside[0].read_text() == '{"format": "something else"}'
    assert "happy" in EmotionCurves.load(path).curves
    qtbot.waitUntil(lambda: editor.media_loading == 0, timeout=20000)
