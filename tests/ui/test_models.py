"""The item models pass Qt's model tester and show what the manifest holds."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt

from core.jobs import protocol as P
from ui.jobstate import JobQueue
from ui.models import FRACTION_ROLE, KEY_ROLE, JobListModel, WorkspaceModel

pytestmark = pytest.mark.qt


def _rows(model: WorkspaceModel, parent: QModelIndex = QModelIndex()) -> dict[str, str]:
    out = {}
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        out[index.data()] = model.index(row, 1, parent).data()
        out.update(_rows(model, index))
    return out


def test_workspace_model_passes_modeltester(qtmodeltester, shot_workspace) -> None:
    shot_workspace.set_render(
        "scene12-v1", {"video": "renders/scene12-v1/video.mp4", "shot": "scene12", "frames": 40}
    )
    model = WorkspaceModel()
    model.set_manifest(shot_workspace.read_manifest())
    qtmodeltester.check(model, force_py=True)
    rows = _rows(model)
    assert rows["take1"].startswith("happy:0.66") and rows["take2"].startswith("neutral")
    assert rows["scene12"].startswith("40 frames @ 25 fps") and "steps 2000" in rows["a2e"]
    assert rows["scene12-v1"].startswith("scene12")
    index = model.find(("clip", "anna", "take1"))
    assert index.isValid() and index.data(KEY_ROLE) == ("clip", "anna", "take1")
    assert model.parent(index).data() == "Clips"
    # A relabel shows up after a refresh (the tester, still connected, checks the reset signals).
    shot_workspace.set_clip_emotion("anna", "take2", {"sad": 0.33})
    model.set_manifest(shot_workspace.read_manifest())
    assert _rows(model)["take2"].startswith("sad:0.33")
    model.set_manifest(None)
    assert model.rowCount() == 0


def test_job_list_model_passes_modeltester_while_jobs_change(qtmodeltester) -> None:
    queue = JobQueue()
    model = JobListModel(queue)
    ids = [queue.submit(P.JobSpec(kind="selftest")).id for _ in range(3)]
    queue.mark_running(ids[0])
    queue.apply(ids[0], P.Progress(ids[0], stage="fit", done=3, total=12, message="loss 0.2"))
    qtmodeltester.check(model, force_py=True)
    assert model.rowCount() == 3 and model.index(0, 1).data() == "running"
    assert model.index(0, 2).data() == "25%" and model.index(0, 2).data(FRACTION_ROLE) == 0.25
    assert "fit 3/12" in model.index(0, 3).data()
    queue.apply(ids[0], P.Error(ids[0], code="x", message="it broke", hint="do this"))
    assert model.index(0, 3).data() == "it broke" and "do this" in model.index(0, 0).data(
        Qt.ItemDataRole.ToolTipRole
    )
    queue.request_cancel(ids[1])
    queue.remove(ids[1])
    assert model.rowCount() == 2 and model.index(1, 0).data(Qt.ItemDataRole.UserRole + 5) == ids[2]
