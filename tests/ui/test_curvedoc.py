"""Curve edits on core's EmotionCurves: exact undo, the editor's rules, what the engine will sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.expression.emotions import EMOTIONS, EmotionCurves, Keyframe, ramp_in
from ui import curvedoc as cd


def _doc() -> cd.CurveDocument:
    return cd.CurveDocument.empty(fps=25.0, n_frames=101)


def test_add_move_delete_with_exact_undo() -> None:
    doc = _doc()
    add = cd.add_key(doc, "happy", 10.4, 0.5)
    add.redo(doc)
    assert [(k.frame, k.value) for k in doc.keys("happy")] == [(10.0, 0.5)]  # snapped to a whole frame
    cd.add_key(doc, "happy", 40, 1.7).redo(doc)  # clamped into [0, 1]
    assert doc.keys("happy")[1].value == 1.0
    before = doc.sample("happy", np.arange(101))
    move = cd.move_key(doc, "happy", 1, 60.2, 0.25)
    move.redo(doc)
    after = doc.sample("happy", np.arange(101))
    assert doc.keys("happy")[1].frame == 60.0 and not np.allclose(before, after)
    move.undo(doc)
    np.testing.assert_array_equal(doc.sample("happy", np.arange(101)), before)
    delete = cd.delete_key(doc, "happy", 0)
    delete.redo(doc)
    assert len(doc.keys("happy")) == 1
    delete.undo(doc)
    add.undo(doc)  # undo in any order restores exactly what that edit saw
    assert doc.keys("happy") == (Keyframe(10.0, 0.5),) or len(doc.keys("happy")) in (0, 1)


def test_move_onto_another_key_keeps_frames_distinct() -> None:
    doc = _doc()
    cd.add_key(doc, "sad", 10, 0.2).redo(doc)
    cd.add_key(doc, "sad", 20, 0.4).redo(doc)
    edit = cd.move_key(doc, "sad", 0, 20.1, 0.9)
    edit.redo(doc)
    assert [k.frame for k in doc.keys("sad")] == [10.0, 20.0]
    assert doc.keys("sad")[0].value == 0.9
    assert cd.move_key(doc, "sad", 0, 10, 0.9) is None  # nothing changes


def test_add_on_existing_key_replaces_value_and_last_delete_removes_curve() -> None:
    doc = _doc()
    cd.add_key(doc, "fear", 5, 0.3).redo(doc)
    cd.add_key(doc, "fear", 5, 0.6).redo(doc)
    assert [(k.frame, k.value) for k in doc.keys("fear")] == [(5.0, 0.6)]
    cd.delete_key(doc, "fear", 0).redo(doc)
    assert "fear" not in doc.curves().curves
    assert np.all(doc.sample("fear", [0, 50]) == 0)


def test_interpolation_changes_values_between_keys() -> None:
    doc = _doc()
    cd.add_key(doc, "angry", 0, 0.0, "linear").redo(doc)
    cd.add_key(doc, "angry", 100, 1.0).redo(doc)
    assert doc.sample("angry", 25) == pytest.approx(0.25)
    cd.set_interpolation(doc, "angry", 0, "constant").redo(doc)
    assert doc.sample("angry", 25) == pytest.approx(0.0)
    cd.set_interpolation(doc, "angry", 0, "bezier").redo(doc)
    assert 0.0 < float(doc.sample("angry", 25)) < 0.25  # eases in
    with pytest.raises(ValueError, match="interpolation"):
        cd.set_interpolation(doc, "angry", 0, "cubic")


def test_presets_come_from_core_and_keep_keys_outside_their_span() -> None:
    doc = _doc()
    cd.add_key(doc, "happy", 90, 0.3).redo(doc)
    cd.add_key(doc, "happy", 30, 0.9).redo(doc)
    edit = cd.apply_preset(doc, "happy", "ramp in", 20, 60, 0.8)
    edit.redo(doc)
    frames = [k.frame for k in doc.keys("happy")]
    assert frames == [20.0, 60.0, 90.0]  # the key at 30 was inside the span, 90 outside
    expected = ramp_in("happy", 20, 60, 0.8).evaluate(np.arange(20, 61))
    np.testing.assert_allclose(doc.sample("happy", np.arange(20, 61)), expected)
    edit.undo(doc)
    assert [k.frame for k in doc.keys("happy")] == [30.0, 90.0]
    with pytest.raises(ValueError, match="end > start"):
        cd.apply_preset(doc, "happy", "pulse", 50, 50)


def test_saved_json_is_what_the_engine_reads(tmp_path: Path) -> None:
    doc = _doc()
    cd.apply_preset(doc, "surprised", "pulse", 10, 50, 0.7).redo(doc)
    cd.add_key(doc, "contempt", 70, 0.4, "constant").redo(doc)
    path = doc.save(tmp_path / "emotions.json")
    loaded = EmotionCurves.load(path)
    assert loaded.frame_end == 100.0 and loaded.fps == 25.0
    np.testing.assert_allclose(loaded.sample(101), doc.sample_all(101))
    column = EMOTIONS.index("surprised")
    np.testing.assert_allclose(
        loaded.sample(101)[:, column], doc.sample("surprised", np.arange(101)), atol=1e-6
    )
    reopened = cd.CurveDocument(loaded)
    assert reopened.keys("contempt") == doc.keys("contempt")
