"""Studio delivery in the app: the Dub dialog's format, matte and face; picking a face by clicking it on a
frame; recording an actor's consent; every param the app sends is one the engine's strict spec takes."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPoint, Qt

from core.jobs.registry import get_kind

pytestmark = pytest.mark.qt


def two_faces(shot_workspace) -> dict:
    """A faces.json for shot scene12: face 0 on the left half, face 1 on the right, on every frame."""
    record = shot_workspace.shot("scene12")
    frames = int(record.get("frames") or 40)
    doc = {"format": "emodub-faces", "version": 1, "frames": frames, "width": 96, "height": 96,
           "faces": [{"id": 0, "first": 0, "last": frames - 1, "detected": frames, "box": [0.0, 0.1, 0.5, 0.9]},
                     {"id": 1, "first": 0, "last": frames - 1, "detected": frames, "box": [0.5, 0.1, 1.0, 0.9]}],
           "boxes": {"0": [[0.02, 0.1, 0.48, 0.9]] * frames, "1": [[0.52, 0.1, 0.98, 0.9]] * frames}}
    (shot_workspace.shot_dir("scene12") / "faces.json").write_text(json.dumps(doc))
    return doc


def test_dub_dialog_and_params_carry_format_matte_and_face(qtbot, window, shot_workspace) -> None:
    from ui.dialogs import DubDialog

    two_faces(shot_workspace)
    window.open_workspace(shot_workspace.root)
    assert window.open_shot("scene12")
    qtbot.waitUntil(lambda: window.timeline.media_loading == 0, timeout=20000)
    dialog = DubDialog(["anna"], "", 0.0, faces=[0, 1], pick_face=lambda: 1)
    qtbot.addWidget(dialog)
    values = dialog.values()
    assert (values["format"], values["matte"], values["face"]) == ("h264", "none", 0)
    dialog.format.setCurrentIndex(dialog.format.findData("prores4444"))
    dialog.matte.setCurrentIndex(dialog.matte.findData("alpha"))
    dialog.pick.click()  # "Pick on a frame…" -> the picker's answer
    assert (dialog.values()["format"], dialog.values()["matte"], dialog.values()["face"]) == ("prores4444",
                                                                                               "alpha", 1)
    single = DubDialog(["anna"], "", 0.0, faces=[])
    qtbot.addWidget(single)
    assert single.values()["face"] is None and not single.pick.isEnabled()

    job = window.render_dub("anna", format="png16", matte="sequence", face=1)
    window.jobs.cancel(job.id)
    assert (job.params["format"], job.params["matte"], job.params["face"]) == ("png16", "sequence", 1)
    assert get_kind("dub").check_params(job.params) == []
    plain = window.render_dub("anna")
    window.jobs.cancel(plain.id)
    assert not {"format", "matte", "face", "emotion_source"} & set(plain.params)  # the defaults are not sent
    assert dialog.values()["emotion_source"] == "auto"
    dialog.emotion_source.setCurrentIndex(dialog.emotion_source.findData("prior"))
    assert dialog.values()["emotion_source"] == "prior"
    generic = window.render_dub("anna", emotion_source="prior")
    window.jobs.cancel(generic.id)
    assert generic.params["emotion_source"] == "prior" and get_kind("dub").check_params(generic.params) == []
    assert window.dub_params("anna")["emotion_source"] == "prior"  # previews follow the last Render dub


def test_clicking_a_face_on_a_frame_picks_its_id(qtbot, window, shot_workspace) -> None:
    two_faces(shot_workspace)
    window.open_workspace(shot_workspace.root)
    picker = window.face_picker("scene12")
    qtbot.addWidget(picker)
    picker.show()
    pixmap = picker.view.pixmap()
    left = (picker.view.width() - pixmap.width()) // 2
    top = (picker.view.height() - pixmap.height()) // 2
    qtbot.mouseClick(picker.view, Qt.MouseButton.LeftButton,
                     pos=QPoint(left + int(pixmap.width() * 0.8), top + pixmap.height() // 2))
    assert picker.face == 1 and "Face 1" in picker.status.text()
    qtbot.mouseClick(picker.view, Qt.MouseButton.LeftButton,
                     pos=QPoint(left + int(pixmap.width() * 0.2), top + pixmap.height() // 2))
    assert picker.face == 0
    assert picker.pick(0.5, 0.02) is None and "No face there" in picker.status.text() and picker.face == 0
    assert window.face_picker("scene12") is not None
    (shot_workspace.shot_dir("scene12") / "faces.json").unlink()
    assert window.face_picker("scene12") is None  # a one-face shot has nothing to pick


def test_consent_is_recorded_through_the_engine_job(window, shot_workspace) -> None:
    window.open_workspace(shot_workspace.root)
    job = window.record_consent("anna", "Anna Example", "German dub of scene 12", "contracts/anna.pdf",
                                date="2026-11-30")
    window.jobs.cancel(job.id)
    assert job.kind == "actor.consent" and job.params == {
        "actor": "anna", "consented_by": "Anna Example", "scope": "German dub of scene 12",
        "document": "contracts/anna.pdf", "date": "2026-11-30"}
    assert get_kind("actor.consent").check_params(job.params) == []
