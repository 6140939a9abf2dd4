"""The main window: bad input handled with clear dialogs and nothing lost; labels; the job params the
app sends; the training view fed with synthetic training events; render review and export."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from core.expression.emotions import EmotionCurves
from core.jobs import protocol as P
from core.workspace import Workspace
from ui import curvedoc as cd
from ui.app import MainWindow
from ui.jobstate import CANCELLED, INTERRUPTED, JobQueue, journal_path

pytestmark = pytest.mark.qt


def _settle(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.timeline.media_loading == 0, timeout=20000)


def test_non_video_import_is_refused_and_nothing_changes(window, shot_workspace, notifier, tmp_path) -> None:
    assert window.open_workspace(shot_workspace.root)
    before = shot_workspace.manifest_path.read_bytes()
    notes = tmp_path / "notes.txt"
    notes.write_text("meeting notes, not footage")
    assert window.import_footage(notes, "clip", actor="anna", clip="take3") is None
    error = notifier.of_level("error")[-1]
    assert error.title == "Not a video" and "notes.txt is a text file" in error.message
    assert "choose a video file" in error.hint
    assert len(window.jobs.queue) == 0 and shot_workspace.manifest_path.read_bytes() == before
    # Bad names and labels are refused before anything runs, too.
    video = shot_workspace.shot_dir("scene12") / "video.mp4"
    assert window.import_footage(video, "clip", actor="anna", clip="bad name!") is None
    assert notifier.of_level("error")[-1].title == "Invalid name"
    assert window.import_footage(video, "clip", actor="anna", clip="t3", emotion={"joy": 0.5}) is None
    assert "unknown emotion" in notifier.of_level("error")[-1].message
    assert len(window.jobs.queue) == 0


def test_valid_imports_send_the_contract_params(window, shot_workspace) -> None:
    window.open_workspace(shot_workspace.root)
    video = shot_workspace.shot_dir("scene12") / "video.mp4"
    clip_job = window.import_footage(
        video, "clip", actor="bob", clip="take1", emotion={"happy": 0.66}, fps=25, sentence=" s07 "
    )
    shot_job = window.import_footage(video, "shot", shot="scene13")
    for job in (clip_job, shot_job):
        window.jobs.cancel(job.id)  # still queued: cancelled before any engine starts
        assert job.state == CANCELLED and job.exit_code is None
    assert clip_job.kind == "ingest" and clip_job.workspace == str(shot_workspace.root)
    assert clip_job.params == {
        "video": str(video.resolve()),
        "actor": "bob",
        "clip": "take1",
        "fps": 25,
        "emotion": "happy:0.66",
        "sentence": "s07",
    }
    from core.jobs.registry import get_kind

    for job in (clip_job, shot_job):  # the engine takes them under the strict protocol
        assert job.spec.version == P.PROTOCOL_VERSION and get_kind(job.kind).check_params(job.params) == []
    if get_kind("shot.prepare") is not None:
        assert shot_job.kind == "shot.prepare"
        assert shot_job.params == {"video": str(video.resolve()), "shot": "scene13"}
    else:  # until shot.prepare exists the app ingests the shot (the engine's ingest takes --shot)
        assert shot_job.kind == "ingest"
        assert shot_job.params == {"video": str(video.resolve()), "shot": "scene13", "fps": 25}


def test_newer_or_broken_workspace_is_refused_and_left_untouched(window, shot_workspace, notifier, tmp_path):
    manifest = json.loads(shot_workspace.manifest_path.read_text())
    manifest["schema_version"] = 99
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "emodub.json").write_text(json.dumps(manifest))
    before = (newer / "emodub.json").read_bytes()
    assert not window.open_workspace(newer)
    error = notifier.of_level("error")[-1]
    assert error.title == "Cannot open the workspace" and "newer emodub" in error.message
    assert "update emodub" in error.hint
    assert window.workspace is None and (newer / "emodub.json").read_bytes() == before
    assert not window.open_workspace(tmp_path / "not-a-workspace")
    assert "not an emodub workspace" in notifier.of_level("error")[-1].message
    assert not window.create_workspace(shot_workspace.root)  # already a workspace: refused, untouched
    assert notifier.of_level("error")[-1].hint == "open it instead"


def test_read_only_workspace_opens_read_only(window, shot_workspace, notifier, monkeypatch) -> None:
    root = shot_workspace.root
    before = shot_workspace.manifest_path.read_bytes()
    modes = {p: p.stat().st_mode for p in (root, shot_workspace.manifest_path)}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        if os.geteuid() == 0:  # root ignores permission bits: simulate what a read-only mount does
            monkeypatch.setattr("ui.app.workspace_writable", lambda _root: False)
        assert window.open_workspace(root)
        warning = notifier.of_level("warning")[-1]
        assert warning.title == "Workspace is read-only" and "copy the workspace" in warning.hint
        assert window.read_only and not window.import_action.isEnabled()
        assert not window.browser.import_button.isEnabled()
        assert not window.label_clip("anna", "take1", {"sad": 1.0})
        assert "read-only" in notifier.of_level("warning")[-1].message
        video = shot_workspace.shot_dir("scene12") / "video.mp4"
        assert window.import_footage(video, "shot", shot="x") is None
        assert window.open_shot("scene12")  # browsing and previewing still work
        assert not window.timeline.save_button.isEnabled()
        assert shot_workspace.manifest_path.read_bytes() == before
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def test_label_clip_updates_manifest_and_tree(window, shot_workspace) -> None:
    window.open_workspace(shot_workspace.root)
    assert window.label_clip("anna", "take2", {"surprised": 0.33, "fear": 0.0})
    assert Workspace.open(shot_workspace.root).clip("anna", "take2")["emotion"] == {"surprised": 0.33}
    index = window.browser.model.find(("clip", "anna", "take2"))
    assert index.siblingAtColumn(1).data().startswith("surprised:0.33")
    assert window.browser.current_key() == ("clip", "anna", "take2")


def test_render_dub_sends_curves_in_the_engine_form(qtbot, window, shot_workspace) -> None:
    window.open_workspace(shot_workspace.root)
    assert window.open_shot("scene12")
    _settle(qtbot, window)
    doc = window.timeline.doc
    window.timeline.push_edit(cd.apply_preset(doc, "happy", "ramp in", 5, 25, 0.8))
    job = window.render_dub("anna")
    window.jobs.cancel(job.id)
    assert job.kind == "dub" and job.workspace == str(shot_workspace.root)
    params = job.params
    assert params["actor"] == "anna" and params["shot"] == "scene12" and params["length"] == "audio"
    assert params["audio"] == str((shot_workspace.shot_dir("scene12") / "audio.wav").resolve())
    assert params["audio_offset_s"] == 0.0 and params["audio_duration_s"] is None
    assert "renderer" not in params  # the actor's best: the engine decides
    from core.jobs.registry import get_kind

    assert job.spec.version == P.PROTOCOL_VERSION and get_kind("dub").check_params(params) == []
    sent = EmotionCurves.from_json(params["emotions"])
    np.testing.assert_allclose(sent.sample(40), doc.sample_all(40))
    # Rendering saved the curves first, so the workspace copy matches what was sent.
    assert (
        EmotionCurves.load(shot_workspace.shot_dir("scene12") / "emotions.json").to_json()
        == params["emotions"]
    )
    assert not window.timeline.is_dirty


def test_reopening_a_workspace_shows_interrupted_jobs(window, shot_workspace, tmp_path) -> None:
    queue = JobQueue()
    record = queue.submit(
        P.JobSpec(kind="train.a2e", params={"actor": "anna"}, workspace=str(shot_workspace.root))
    )
    queue.mark_running(record.id)
    queue.save(str(shot_workspace.root))  # as if the app had crashed here
    window.open_workspace(shot_workspace.root)
    shown = window.jobs.queue[record.id]
    assert shown.state == INTERRUPTED
    row = window.jobs_panel.model.row_of(record.id)
    assert window.jobs_panel.model.index(row, 1).data() == INTERRUPTED
    assert json.loads(journal_path(shot_workspace.root).read_text())["jobs"][0]["state"] == INTERRUPTED


@pytest.mark.parametrize("code, bug", [("bad_input", False), ("read_only", False), ("internal", True)])
def test_jobs_panel_shows_user_errors_with_their_hint_and_bugs_as_bugs(window, code: str, bug: bool) -> None:
    queue = window.jobs.queue
    record = queue.submit(P.JobSpec(kind="selftest", params={"steps": 1}))
    queue.mark_running(record.id)
    queue.apply(record.id, P.Error(record.id, code=code, message="the dub audio is empty", hint="export it again"))
    window.jobs_panel.select(record.id)
    text = window.jobs_panel.error_label.text()
    assert "the dub audio is empty" in text
    assert ("bug in emodub" in text) is bug and ("What to do: export it again" in text) is not bug


def test_training_view_draws_losses_and_samples_from_events(window, tmp_path) -> None:
    from PySide6.QtGui import QImage

    view = window.training
    record = window.jobs.queue.submit(P.JobSpec(kind="train.a2e", params={"actor": "anna"}))
    window._on_job_added(record.id)  # what the manager's signal does
    assert view.job_id == record.id
    for step, (g, d) in enumerate([(0.9, 0.7), (0.6, 0.69), (0.4, 0.71)], start=1):
        view.feed(
            record.id,
            P.Progress(
                record.id, stage="a2e", done=step, total=3, message=f"step {step} g_l1 {g} d_lsgan {d}"
            ),
        )
    view.feed("other-job", P.Progress("other-job", stage="x", done=9, total=9, message="g_l1 5.0"))
    drawn = view.series()
    assert set(drawn) == {"g_l1", "d_lsgan"} and len(drawn["g_l1"][0]) == 3
    assert view.history.series["g_l1"] == ([1.0, 2.0, 3.0], [0.9, 0.6, 0.4])
    losses = tmp_path / "losses.json"
    losses.write_text(json.dumps({"step": [100, 200], "l1": [0.3, 0.2], "velocity": [0.05, 0.04]}))
    view.feed(record.id, P.Artifact(record.id, path=str(losses), kind="losses"))
    assert set(view.history.series) == {"l1", "velocity"}
    assert set(view.series()) >= {"l1", "velocity"}
    sample = tmp_path / "sample.png"
    image = QImage(64, 48, QImage.Format.Format_RGB888)
    image.fill(0x336699)
    image.save(str(sample))
    view.feed(record.id, P.Artifact(record.id, path=str(sample), kind="image"))
    assert view.image.pixmap() is not None and not view.image.pixmap().isNull()
    assert view.image_caption.text() == "sample.png"
    # A job of several steps: the next step's losses replace the chart (other names, other scales).
    view.feed(record.id, P.Progress(record.id, stage="train renderer", done=1, total=9, message="l1 0.2 style 0.5"))
    assert set(view.series()) == {"l1", "style"} and "train renderer" in view.title.text()
    view.feed(record.id, P.Progress(record.id, stage="eval renderer", done=0, total=1, message="clip anna/s000_3"))
    assert set(view.series()) == {"l1", "style"}  # a step without losses leaves the chart as it is


def test_review_plays_compares_and_exports(qtbot, window, shot_workspace, tmp_path) -> None:
    from ui.demo_media import make_stand_in_render

    video = make_stand_in_render(shot_workspace, "scene12", "scene12-dub", np.linspace(0, 1, 40))
    window.open_workspace(shot_workspace.root)
    review = window.review
    assert review.render_list.findText("scene12-dub") >= 0
    assert review.open_render_named("scene12-dub")
    assert "stand-in" in review.info.text() and review.n_frames == 40
    assert not review.source_view.pixmap().isNull() and not review.render_view.pixmap().isNull()
    review.show_frame(30)
    assert review.frame_label.text() == "31 / 40"
    review.show_frame(0)
    review.play()
    qtbot.waitUntil(lambda: review.current >= 5, timeout=10000)  # frames advance on the clock
    review.stop()
    assert not review.is_playing
    if not review.audio.available:
        assert review.audio_note.isVisibleTo(review) and "Qt Multimedia" in review.audio_note.text()
    out = review.export(tmp_path / "exported")
    assert out == tmp_path / "exported.mp4" and out.read_bytes() == video.read_bytes()


def test_closing_with_unsaved_curves_offers_to_save(qtbot, window, shot_workspace, notifier) -> None:
    window.open_workspace(shot_workspace.root)
    window.open_shot("scene12")
    _settle(qtbot, window)
    window.timeline.push_edit(cd.add_key(window.timeline.doc, "sad", 4, 0.5))
    notifier.answer = True
    window.close()
    assert notifier.of_level("confirm")[-1].title == "Unsaved curve edits"
    assert "sad" in EmotionCurves.load(shot_workspace.shot_dir("scene12") / "emotions.json").curves


def test_renderer_choices_come_from_the_engine(qtbot, window, shot_workspace, tmp_path) -> None:
    """The Train and Dub dialogs list the variants the engine answers (a stand-in engine that offers a variant the
    real one lacks), mark what the actor has trained, and the pick reaches the job."""
    import json
    import stat

    from ui.dialogs import DubDialog, TrainDialog
    from ui.renderers import renderer_catalog, trained_variants

    variants = [{"name": "neural_texture", "description": "nt", "presets": {"default": "", "static": "ablation"},
                 "default_preset": "default"},
                {"name": "other_nerf", "description": "only this engine has it", "presets": {"cpu": "small"},
                 "default_preset": "cpu"}]
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho '" + json.dumps({"default": "neural_texture", "variants": variants}) + "'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    window.settings.engine_python = str(fake)
    catalog = renderer_catalog(window.settings, refresh=True)
    assert catalog.names == ["neural_texture", "other_nerf"] and not catalog.error
    window.open_workspace(shot_workspace.root)
    shot_workspace.set_model("anna", "other_nerf", {"kind": "renderer", "variant": "other_nerf"})
    train = TrainDialog(["anna"], catalog)
    qtbot.addWidget(train)
    train.renderer.setCurrentIndex(train.renderer.findData("other_nerf"))
    assert train.values() == {"actor": "anna", "kind": "train.actor", "renderer": "other_nerf", "preset": "cpu",
                              "a2e_iterations": None, "renderer_iterations": None, "track_iterations": 1.0}
    dub = DubDialog(["anna"], "", 0.0, catalog=catalog, trained=lambda a: trained_variants(window.workspace, a))
    qtbot.addWidget(dub)
    labels = [dub.renderer.itemText(i) for i in range(dub.renderer.count())]
    assert labels[0] == DubDialog.BEST and labels[1:] == ["neural_texture (not trained)", "other_nerf (trained)"]
    assert dub.values()["renderer"] is None
    dub.renderer.setCurrentIndex(2)
    assert dub.values()["renderer"] == "other_nerf"
    job = window.train("anna", "train.renderer", "other_nerf", "cpu")
    window.jobs.cancel(job.id)
    assert job.params == {"actor": "anna", "renderer": "other_nerf", "preset": "cpu"}


def test_a_batch_is_one_job_with_a_row_per_item(window, tmp_path) -> None:
    from core.batch.plan import parse_plan
    from core.workspace import atomic_write_json

    plan = parse_plan({"actor": "a", "shots": ["s"], "tracks": {k: f"{k}.wav" for k in ("de", "fr", "es", "it")}},
                      base=tmp_path, name="season")
    folder = tmp_path / "batches" / "season"
    atomic_write_json(folder / "plan.json", plan.to_json())
    atomic_write_json(folder / "items" / "s.de.neutral.json",
                      {"id": "s.de.neutral", "status": "done", "seconds": 4.25, "outputs": {"video": "/r/de.mp4"}})
    atomic_write_json(folder / "items" / "s.fr.neutral.json",
                      {"id": "s.fr.neutral", "status": "failed", "error": {"message": "audio file fr.wav does not "
                                                                                      "exist"}})
    atomic_write_json(folder / "items" / "s.es.neutral.json", {"id": "s.es.neutral", "status": "running"})
    atomic_write_json(folder / "items" / "s.es.neutral.progress.json", {"stage": "render", "done": 5, "total": 20})
    queue = window.jobs.queue
    record = queue.submit(P.JobSpec(kind="batch.dub", params={"plan": "p.json"}, workspace=str(tmp_path)))
    queue.mark_running(record.id)
    queue.apply(record.id, P.Artifact(record.id, path=str(folder / "plan.json"), kind="batch_plan"))
    window.jobs_panel.select(record.id)
    table = window.jobs_panel.items_table
    assert table.isVisible() and table.rowCount() == 4
    rows = {table.item(r, 0).text(): [table.item(r, c).text() for c in range(1, 4)] for r in range(4)}
    assert rows["s.de.neutral"] == ["done", "4.2 s", "/r/de.mp4"]
    assert rows["s.fr.neutral"][0] == "failed" and "does not exist" in rows["s.fr.neutral"][2]
    assert rows["s.es.neutral"][0] == "running 25%"
    assert rows["s.it.neutral"][0] == "pending"
    queue.apply(record.id, P.Cancelled(record.id, message="cancel requested"))
    window.jobs_panel.select(record.id)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(4)}
    assert rows["s.es.neutral"] == "unfinished"
    other = queue.submit(P.JobSpec(kind="selftest", params={"steps": 1}))
    window.jobs_panel.select(other.id)
    assert not table.isVisible()  # only batches have items


def test_the_import_dialog_names_a_shot_as_the_engine_and_blender_do(qtbot, tmp_path) -> None:
    from core.workspace import shot_name_for
    from ui.dialogs import IngestDialog

    dialog = IngestDialog(["anna"])
    qtbot.addWidget(dialog)
    dialog.as_shot.setChecked(True)
    video = str(tmp_path / "shot_2s.mp4")
    dialog.video.edit.setText(video)
    assert dialog.values()["shot"] == shot_name_for(video) and dialog.values()["shot"].startswith("shot_2s-")
    assert not dialog.sentence.isEnabled()  # what a take says belongs to clips only
    dialog.as_clip.setChecked(True)
    dialog.sentence.setText("s07")
    assert dialog.sentence.isEnabled() and dialog.values()["sentence"] == "s07"


def test_the_dub_audio_button_sets_the_audio_the_dub_sends(qtbot, window, shot_workspace, tmp_path,
                                                          monkeypatch) -> None:
    from pathlib import Path

    from core.io.audio import write_wav

    wav = write_wav(tmp_path / "german.wav", np.zeros(16000, np.float32) + 0.1, 16000)
    window.open_workspace(shot_workspace.root)
    assert window.open_shot("scene12")
    _settle(qtbot, window)
    monkeypatch.setattr(window.chooser, "open_file", lambda title, file_filter: str(wav))
    window.timeline.audio_button.click()
    assert window.timeline.audio_path == wav
    job = window.render_dub("anna")
    window.jobs.cancel(job.id)
    assert Path(job.params["audio"]).resolve() == wav.resolve()


def test_dub_audio_longer_than_the_shot_extends_the_timeline_and_says_it_loops(qtbot, window, shot_workspace,
                                                                               tmp_path, monkeypatch) -> None:
    from core.expression.emotions import EMOTIONS, EmotionCurves
    from core.io.audio import write_wav

    wav = write_wav(tmp_path / "long.wav", np.zeros(48000, np.float32) + 0.1, 16000)  # 3 s on a 1.6 s shot
    window.open_workspace(shot_workspace.root)
    assert window.open_shot("scene12")
    _settle(qtbot, window)
    timeline, canvas = window.timeline, window.timeline.canvas
    assert canvas.n_frames == canvas.shot_frames == 40
    monkeypatch.setattr(window.chooser, "open_file", lambda title, file_filter: str(wav))
    timeline.audio_button.click()
    _settle(qtbot, window)
    assert (canvas.shot_frames, canvas.n_frames) == (40, 75)
    assert "frames 40-74 of the dub loop the shot" in timeline.length_note
    timeline.push_edit(cd.add_key(timeline.doc, "happy", 70, 0.6, "linear"))  # a key in the looped part
    job = window.render_dub("anna")
    window.jobs.cancel(job.id)
    happy = EmotionCurves.from_json(job.params["emotions"]).sample(75)[:, EMOTIONS.index("happy")]
    assert happy[70] == pytest.approx(0.6, abs=1e-3)


def test_preview_frame_shows_the_dub_from_a_warm_engine(qtbot, window, tmp_path, tiny_trained_shot) -> None:
    from pathlib import Path

    ws = tiny_trained_shot(tmp_path / "ws", "a", "s", renderer_iterations=2)
    window.open_workspace(ws.root)
    assert window.open_shot("s")
    _settle(qtbot, window)
    timeline = window.timeline
    timeline.canvas.set_playhead(7)
    with qtbot.waitSignal(window.warm.answered, timeout=120_000):
        timeline.preview_button.click()
    assert timeline.preview_dub.isChecked() and "dub preview frame 7" in timeline.preview_info.text()
    shown = timeline._dub_frames[7]
    assert shown.is_file() and shown.parent == Path(ws.root) / "previews" / "s"
    assert timeline.preview.pixmap() is not None and not timeline.preview.pixmap().isNull()
    timeline.push_edit(cd.apply_preset(timeline.doc, "happy", "ramp in", 0, 20, 0.9))  # new curves: old frame gone
    assert 7 not in timeline._dub_frames and "not rendered yet" in timeline.preview_info.text()


def test_review_shows_the_dub_report_with_its_warnings(qtbot, window, shot_workspace) -> None:
    import json

    from ui.demo_media import make_stand_in_render

    make_stand_in_render(shot_workspace, "scene12", "scene12-dub", np.linspace(0, 1, 40))
    folder = shot_workspace.render_dir("scene12-dub")
    (folder / "report.json").write_text(json.dumps({
        "warnings": ["the renderer 'nt' looks undertrained: 12.5 dB face PSNR on its held-out frames"],
        "lipsync_proxy": {"peak_corr": 0.71, "offset_frames": 1},
        "emotions": {"happy": {"max": 0.8, "mean": 0.4, "source": "prior"}}}))
    shot_workspace.update(lambda m: m["renders"]["scene12-dub"].update(report="renders/scene12-dub/report.json"))
    window.open_workspace(shot_workspace.root)
    assert window.review.open_render_named("scene12-dub")
    text = window.review.report_text.text()
    assert window.review.report_box.isVisibleTo(window.review)
    assert "undertrained" in text and "r = 0.71" in text and "prior" in text
