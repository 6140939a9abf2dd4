"""``emodub-studio``: the desktop authoring app.

Layout: the workspace browser (left), tabs Timeline / Training / Review (centre), the job queue
(bottom). Every engine job runs in its own process through the job protocol (:mod:`ui.engine`); the
window only reacts to events, so it stays responsive while jobs run.

Testable entry points (no dialogs): :meth:`MainWindow.create_workspace`, :meth:`open_workspace`,
:meth:`import_footage`, :meth:`label_clip`, :meth:`open_shot`, :meth:`run_selftest`, :meth:`train`,
:meth:`render_dub`. The menu actions ask for their inputs with dialogs, then call these.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QTabWidget,
    QWidget,
)

from core.expression.emotions import emotion_vector, format_emotion
from core.jobs import protocol as P

from . import hints
from .engine import JobManager
from .jobs_panel import JobsPanel
from .jobstate import ERROR, JobRecord
from .media import MediaError, probe_video
from .notify import Notifier, QtNotifier
from .renderers import renderer_catalog, trained_variants
from .review import ReviewView
from .settings import StudioSettings
from .timeline import TimelineEditor
from .training import TrainingView, is_training_kind
from .workspace_panel import WorkspacePanel


def workspace_writable(root: Path) -> bool:
    """Whether files can be created in ``root`` (tried for real: permission bits lie on some mounts)."""
    try:
        with tempfile.NamedTemporaryFile(dir=root, prefix=".emodub-write-test-"):
            return True
    except OSError:
        return False


def engine_has_kind(kind: str) -> bool:
    """Whether the engine code beside this app registers job kind ``kind`` (the registry's modules
    keep their imports light, so asking is cheap). ``True`` when the registry cannot be read: then the
    engine itself answers with an error event and a hint."""
    try:
        from core.jobs.registry import get_kind

        return get_kind(kind) is not None
    except Exception:  # noqa: BLE001 - a broken engine module must not stop the app
        return True


class FileChooser:
    """Asks the user for paths (QFileDialog); tests replace it."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def existing_dir(self, title: str) -> str | None:
        return QFileDialog.getExistingDirectory(self.parent, title) or None

    def open_file(self, title: str, file_filter: str) -> str | None:
        return QFileDialog.getOpenFileName(self.parent, title, "", file_filter)[0] or None

    def save_file(self, title: str, name: str, file_filter: str) -> str | None:
        return QFileDialog.getSaveFileName(self.parent, title, name, file_filter)[0] or None


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: StudioSettings | None = None,
        notifier: Notifier | None = None,
        chooser: FileChooser | None = None,
        persist_settings: bool = False,
    ) -> None:
        super().__init__()
        self.settings = settings or StudioSettings()
        self.notifier: Notifier = notifier or QtNotifier(self)
        self.chooser = chooser or FileChooser(self)
        self.persist_settings = persist_settings
        self.workspace: Any = None
        self.read_only = False
        self.setWindowTitle("emodub studio")
        self.jobs = JobManager(self.settings, self.notifier, self)

        self.browser = WorkspacePanel()
        self.timeline = TimelineEditor(self.notifier)
        self.training = TrainingView()
        self.review = ReviewView(
            self.notifier, lambda name: self.chooser.save_file("Export the dub", name, "MP4 video (*.mp4)")
        )
        self.jobs_panel = JobsPanel(self.jobs)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.timeline, "Timeline")
        self.tabs.addTab(self.training, "Training")
        self.tabs.addTab(self.review, "Review")
        self.setCentralWidget(self.tabs)
        self.browser_dock = self._dock("Workspace", self.browser, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.jobs_dock = self._dock("Jobs", self.jobs_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.statusBar().showMessage("Create or open a workspace to start (File menu).")
        self.ws_status = QLabel("")
        self.statusBar().addPermanentWidget(self.ws_status)

        self.browser.activated.connect(self._on_activated)
        self.browser.import_requested.connect(self.ask_import)
        self.browser.label_requested.connect(self.ask_label)
        self.browser.create_requested.connect(self.ask_create_workspace)
        self.browser.open_requested.connect(self.ask_open_workspace)
        self.timeline.render_requested.connect(self.ask_render)
        self.timeline.audio_requested.connect(self.ask_dub_audio)
        self.timeline.preview_requested.connect(self.preview_frame)
        from .warm import WarmEngine

        self.warm = WarmEngine(self.settings, self)
        self.warm.answered.connect(self._on_preview_answer)
        self._previews: dict[str, int] = {}
        self.dub_actor: str | None = None  # the actor of the last Render dub: previews use them too
        self.dub_emotion_source = "auto"  # likewise its emotion source
        self.timeline.dirty_changed.connect(self._update_title)
        self.jobs.job_added.connect(self._on_job_added)
        self.jobs.job_event.connect(self._on_job_event)
        self.jobs.job_finished.connect(self._on_job_finished)
        self._build_menus()
        self.resize(1360, 860)
        self.resizeDocks([self.browser_dock], [300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.jobs_dock], [190], Qt.Orientation.Vertical)
        self._sync_actions()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        def action(menu: Any, text: str, slot: Any, shortcut: Any = None) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(shortcut)
            act.triggered.connect(lambda _=False: slot())
            menu.addAction(act)
            return act

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        action(file_menu, "New workspace…", self.ask_create_workspace, QKeySequence.StandardKey.New)
        action(file_menu, "Open workspace…", self.ask_open_workspace, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self.import_action = action(file_menu, "Import footage…", self.ask_import, "Ctrl+I")
        self.save_action = action(file_menu, "Save curves", self.timeline.save, QKeySequence.StandardKey.Save)
        self.export_curves_action = action(file_menu, "Export curves…", self.ask_export_curves)
        file_menu.addSeparator()
        action(file_menu, "Settings…", self.ask_settings)
        action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        edit_menu = bar.addMenu("&Edit")
        undo = self.timeline.undo_action()
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.timeline.redo_action()
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)
        jobs_menu = bar.addMenu("&Jobs")
        self.consent_action = action(jobs_menu, "Record actor consent…", self.ask_consent)
        self.train_action = action(jobs_menu, "Train…", self.ask_train)
        self.render_action = action(jobs_menu, "Render dub…", self.ask_render)
        self.batch_action = action(jobs_menu, "Run batch plan…", self.ask_batch)
        action(jobs_menu, "Run engine self-test", lambda: self.run_selftest())
        help_menu = bar.addMenu("&Help")
        action(
            help_menu,
            "About",
            lambda: self.notifier.info(
                "About emodub studio",
                "emodub studio: keyframe emotions on a shot, train the actor, render "
                "and review the dub. The engine runs as `<engine Python> -m core.worker`.",
            ),
        )

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_workspaces:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_workspace(p))

    def _sync_actions(self) -> None:
        writable = self.workspace is not None and not self.read_only
        self.import_action.setEnabled(writable)
        self.train_action.setEnabled(writable)
        self.consent_action.setEnabled(writable)
        self.render_action.setEnabled(writable)
        self.save_action.setEnabled(writable)

    def _update_title(self, *_: Any) -> None:
        title = "emodub studio"
        if self.workspace is not None:
            title += f" — {self.workspace.root.name}"
        if self.timeline.shot:
            title += f" — {self.timeline.shot}"
        if self.timeline.is_dirty:
            title += " *"
        self.setWindowTitle(title)

    # -- workspace -----------------------------------------------------------------------------
    def create_workspace(self, path: str | Path) -> bool:
        from core.workspace import Workspace, WorkspaceError

        try:
            ws = Workspace.create(path)
        except WorkspaceError as exc:
            self.notifier.error("Cannot create the workspace", str(exc), exc.hint)
            return False
        except OSError as exc:
            self.notifier.error(
                "Cannot create the workspace",
                f"{path}: {exc.strerror or exc}",
                "choose a folder you can write to",
            )
            return False
        return self.open_workspace(ws.root)

    def open_workspace(self, path: str | Path) -> bool:
        """Open a workspace: a newer-version, invalid or missing one is refused with a dialog; a
        read-only one opens read-only (browse, preview, export only)."""
        from core.workspace import Workspace, WorkspaceError

        if not self._close_shot_asking():
            return False
        try:
            ws = Workspace.open(path)
        except WorkspaceError as exc:
            self.notifier.error("Cannot open the workspace", str(exc), exc.hint)
            return False
        except OSError as exc:
            self.notifier.error(
                "Cannot open the workspace",
                f"{path}: {exc.strerror or exc}",
                "check that the folder exists and that you may read it",
            )
            return False
        self.workspace = ws
        self.read_only = not workspace_writable(ws.root)
        if self.read_only:
            self.notifier.warning(
                "Workspace is read-only",
                f"{ws.root} cannot be written to.",
                "you can browse it, preview shots and export renders; to import, label, edit curves or "
                "run jobs, copy the workspace to a folder you can write to, or fix its permissions",
            )
        self.browser.set_workspace(ws.root, ws.read_manifest(), self.read_only)
        self.review.set_workspace(ws)
        self.timeline.close_shot()
        self.jobs.load_journal(str(ws.root))
        self.settings.add_recent(ws.root)
        if self.persist_settings:
            self.settings.save()
        self.ws_status.setText(str(ws.root) + (" (read-only)" if self.read_only else ""))
        self.statusBar().showMessage("Workspace opened. Import footage or open a shot.", 5000)
        self._sync_actions()
        self._update_title()
        return True

    def refresh_workspace(self) -> None:
        if self.workspace is None:
            return
        try:
            manifest = self.workspace.read_manifest()
        except Exception as exc:  # noqa: BLE001 - a broken manifest must not close the app
            self.notifier.error("Workspace manifest unreadable", str(exc), getattr(exc, "hint", ""))
            return
        self.browser.refresh(manifest)
        self.review.refresh_list()

    def _require_writable(self, what: str) -> bool:
        if self.workspace is None:
            self.notifier.warning(f"Cannot {what}", "no workspace is open", "create or open one (File menu)")
            return False
        if self.read_only:
            self.notifier.warning(
                f"Cannot {what}",
                f"the workspace {self.workspace.root} is read-only",
                "copy it to a folder you can write to, or fix its permissions",
            )
            return False
        return True

    # -- import and labels ---------------------------------------------------------------------
    def import_footage(
        self,
        video: str | Path,
        target: str = "clip",
        actor: str = "",
        clip: str = "",
        shot: str = "",
        emotion: dict[str, float] | str | None = None,
        fps: int = 25,
        max_faces: int = 1,
        sentence: str = "",
    ) -> JobRecord | None:
        """Check the inputs, then queue ``ingest`` (a clip) or ``shot.prepare`` (a shot to dub). ``sentence``: what
        a clip says (takes of one sentence pair up for the jean renderer)."""
        from core.workspace import WorkspaceError, validate_name

        if not self._require_writable("import footage"):
            return None
        try:
            info = probe_video(video)
        except MediaError as exc:
            self.notifier.error("Not a video", str(exc), exc.hint)
            return None
        try:
            if target == "clip":
                validate_name(actor, "actor name")
                validate_name(clip, "clip name")
                label = format_emotion(emotion_vector(emotion or {}))
            else:
                validate_name(shot, "shot name")
        except WorkspaceError as exc:
            self.notifier.error("Invalid name", str(exc), exc.hint)
            return None
        except ValueError as exc:
            self.notifier.error("Invalid emotion label", str(exc), "intensities lie in [0, 1]")
            return None
        root = str(self.workspace.root)
        if target == "clip":
            params: dict[str, Any] = {
                "video": str(Path(video).resolve()),
                "actor": actor,
                "clip": clip,
                "fps": int(fps),
            }
            if label != "neutral":
                params["emotion"] = label
            if sentence.strip():
                params["sentence"] = sentence.strip()
            title = f"Import {actor}/{clip}"
            kind = "ingest"
        else:
            # a shot keeps its own frame rate and frames (no fps is sent)
            params = {"video": str(Path(video).resolve()), "shot": shot}
            if max_faces > 1:
                params["max_faces"] = int(max_faces)
            title = f"Prepare shot {shot}"
            kind = "shot.prepare"
            if not engine_has_kind(kind):  # until shot.prepare lands: ingest (with landmarks) as a shot
                kind, params["fps"] = "ingest", int(fps)
                title = f"Import shot {shot}"
        self.statusBar().showMessage(
            f"{Path(video).name}: {info.width}x{info.height}, {info.fps:g} fps, "
            f"{info.duration_s:.1f} s — queued",
            6000,
        )
        return self.jobs.submit(kind, params, root, title=title)

    def label_clip(self, actor: str, clip: str, emotion: dict[str, float]) -> bool:
        from core.workspace import WorkspaceError

        if not self._require_writable("label the clip"):
            return False
        try:
            emotion_vector(emotion)  # validates names and ranges with a clear message
            self.workspace.set_clip_emotion(actor, clip, emotion)
        except (ValueError, WorkspaceError) as exc:
            self.notifier.error("Label not saved", str(exc), getattr(exc, "hint", "") or "check the values")
            return False
        except OSError as exc:
            self.notifier.error(
                "Label not saved",
                f"cannot write the manifest: {exc.strerror or exc}",
                "the workspace may be read-only; nothing was changed",
            )
            return False
        self.refresh_workspace()
        self.browser.select(("clip", actor, clip))
        return True

    # -- shots and curves ----------------------------------------------------------------------
    def open_shot(self, shot: str) -> bool:
        if self.workspace is None or not self._close_shot_asking():
            return False
        from core.workspace import WorkspaceError

        try:
            opened = self.timeline.open_shot(self.workspace, shot, read_only=self.read_only)
        except (WorkspaceError, KeyError, ValueError) as exc:
            self.notifier.error("Cannot open the shot", str(exc), getattr(exc, "hint", ""))
            return False
        self.tabs.setCurrentWidget(self.timeline)
        self._update_title()
        return opened

    def _close_shot_asking(self) -> bool:
        """Before the open shot is replaced: offer to save unsaved curve edits. ``False`` = stay."""
        if not self.timeline.is_dirty or self.timeline.shot is None:
            return True
        if self.notifier.confirm(
            "Unsaved curve edits",
            f"Save the emotion curves of shot " f"{self.timeline.shot} before closing it?",
        ):
            return self.timeline.save()
        return True

    def ask_export_curves(self) -> None:
        if self.timeline.doc is None:
            return
        path = self.chooser.save_file("Export emotion curves", "emotions.json", "JSON (*.json)")
        if path:
            self.timeline.export_curves(path)

    def _on_activated(self, key: tuple) -> None:
        if key and key[0] == "shot":
            self.open_shot(key[1])
        elif key and key[0] == "clip":
            self.ask_label(key)
        elif key and key[0] == "render":
            self.tabs.setCurrentWidget(self.review)
            self.review.open_render_named(key[1])

    # -- jobs ----------------------------------------------------------------------------------
    def run_selftest(self, steps: int = 200, step_delay: float = 0.01) -> JobRecord:
        home = str(self.workspace.root) if self.workspace is not None and not self.read_only else None
        out_dir = str(Path(tempfile.gettempdir()) / "emodub-studio-selftest")
        return self.jobs.submit(
            "selftest",
            {"steps": int(steps), "step_delay": float(step_delay), "out_dir": out_dir},
            None,
            home=home,
        )

    def train(self, actor: str, kind: str = "train.actor", renderer: str | None = None,
              preset: str | None = None, a2e_iterations: int | None = None, renderer_iterations: int | None = None,
              track_iterations: float | None = None) -> JobRecord | None:
        """Train an actor; ``renderer``/``preset`` choose the renderer variant (from the engine's list); the
        iterations (``None``: the engine's defaults) and the tracking effort set how long it trains."""
        if not self._require_writable("train"):
            return None
        if kind not in ("train.actor", "train.a2e", "train.renderer"):
            raise ValueError(f"unknown training kind {kind!r}")
        params: dict[str, Any] = {"actor": actor}
        if kind != "train.a2e":
            params.update({k: v for k, v in (("renderer", renderer), ("preset", preset)) if v})
        if kind == "train.actor":
            params.update({k: v for k, v in (("a2e_iterations", a2e_iterations),
                                              ("renderer_iterations", renderer_iterations)) if v})
            if track_iterations is not None and track_iterations != 1.0:
                params["track_iterations"] = float(track_iterations)
        elif kind == "train.a2e" and a2e_iterations:
            params["iterations"] = int(a2e_iterations)
        elif kind == "train.renderer" and renderer_iterations:
            params["iterations"] = int(renderer_iterations)
        what = f"{kind}, {renderer}" if renderer and kind != "train.a2e" else kind
        return self.jobs.submit(kind, params, str(self.workspace.root), title=f"Train {actor} ({what})")

    def dub_params(
        self, actor: str, audio: str | None = None, audio_offset_s: float | None = None, length: str = "audio",
        renderer: str | None = None, format: str = "h264", matte: str = "none", face: int | None = None,
        emotion_source: str | None = None,
    ) -> dict[str, Any]:
        """The ``dub`` job's params from the open shot and its curves (the shared contract). ``renderer``: a
        variant from the engine's list, or ``None`` for the actor's best (the engine decides). ``format``,
        ``matte``, ``face`` and ``emotion_source`` (``None``: the last Render dub's) are sent only when not the
        defaults."""
        emotion_source = emotion_source or self.dub_emotion_source
        if self.timeline.doc is None or self.timeline.shot is None:
            raise ValueError("open a shot in the timeline first")
        audio_path = audio or (str(self.timeline.audio_path) if self.timeline.audio_path else "")
        if not audio_path:
            raise ValueError("choose the dub audio first (Dub audio… in the timeline)")
        return {
            "actor": actor,
            "shot": self.timeline.shot,
            "audio": str(Path(audio_path).resolve()),
            "audio_offset_s": float(
                self.timeline.audio_offset_s if audio_offset_s is None else audio_offset_s
            ),
            "audio_duration_s": None,
            "emotions": self.timeline.doc.to_json(),
            "length": length,
            **({"renderer": renderer} if renderer else {}),
            **({"format": format} if format and format != "h264" else {}),
            **({"matte": matte} if matte and matte != "none" else {}),
            **({"face": int(face)} if face is not None else {}),
            **({"emotion_source": emotion_source} if emotion_source != "auto" else {}),
        }

    def render_dub(
        self, actor: str, audio: str | None = None, audio_offset_s: float | None = None, length: str = "audio",
        renderer: str | None = None, format: str = "h264", matte: str = "none", face: int | None = None,
        emotion_source: str = "auto",
    ) -> JobRecord | None:
        if not self._require_writable("render"):
            return None
        try:
            params = self.dub_params(actor, audio, audio_offset_s, length, renderer, format, matte, face,
                                     emotion_source)
        except ValueError as exc:
            self.notifier.warning("Cannot render yet", str(exc), "")
            return None
        if self.timeline.is_dirty:
            self.timeline.save()  # the workspace copy should match what is rendered
        self.dub_actor, self.dub_emotion_source = actor, emotion_source
        return self.jobs.submit(
            "dub", params, str(self.workspace.root), title=f"Render dub of {params['shot']}"
        )

    def _on_job_added(self, job_id: str) -> None:
        record = self.jobs.queue[job_id]
        if is_training_kind(record.kind):
            self.training.follow(job_id, record.title)

    def _on_job_event(self, job_id: str, event: P.Event) -> None:
        self.training.feed(job_id, event)

    def _on_job_finished(self, job_id: str) -> None:
        record = self.jobs.queue[job_id]
        if record.state == ERROR:
            self.statusBar().showMessage(f"{record.title} failed: {record.error_message} (see Jobs)", 10000)
        else:
            self.statusBar().showMessage(f"{record.title}: {record.state}", 6000)
        if record.workspace and self.workspace is not None and Path(record.workspace) == self.workspace.root:
            self.refresh_workspace()
        if record.kind == "dub" and record.state == "done" and record.outputs.get("video"):
            source = None
            with contextlib.suppress(Exception):
                shot_rec = self.workspace.shot(record.params["shot"])
                source = self.workspace.root / shot_rec["video"]
            frames = record.outputs.get("frames") if isinstance(record.outputs.get("frames"), int) else None
            self.review.open(
                Path(record.outputs["video"]), source, f"dub of {record.params.get('shot')}", frames
            )
            report = record.outputs.get("report")
            self.review.show_report(Path(report) if isinstance(report, str) and report else None)
            self.tabs.setCurrentWidget(self.review)

    # -- dialogs -------------------------------------------------------------------------------
    def ask_create_workspace(self) -> None:
        path = self.chooser.existing_dir("Choose an empty folder for the new workspace")
        if path:
            self.create_workspace(path)

    def ask_open_workspace(self) -> None:
        path = self.chooser.existing_dir("Open an emodub workspace")
        if path:
            self.open_workspace(path)

    def ask_import(self) -> None:
        from .dialogs import IngestDialog

        if not self._require_writable("import footage"):
            return
        dialog = IngestDialog(self.workspace.actors(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.import_footage(**dialog.values())

    def ask_label(self, key: tuple = ()) -> None:
        from .dialogs import EmotionLabelDialog

        if len(key) != 3 or key[0] != "clip" or not self._require_writable("label the clip"):
            return
        _, actor, clip = key
        dialog = EmotionLabelDialog(actor, clip, self.workspace.clip(actor, clip).get("emotion", {}), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.label_clip(actor, clip, dialog.values())

    def ask_train(self) -> None:
        from .dialogs import TrainDialog

        if not self._require_writable("train"):
            return
        dialog = TrainDialog(self.workspace.actors(), renderer_catalog(self.settings), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.train(**dialog.values())

    def ask_render(self) -> None:
        from .dialogs import DubDialog

        if not self._require_writable("render") or self.timeline.doc is None:
            if self.timeline.doc is None and self.workspace is not None:
                self.notifier.warning("Cannot render yet", "no shot is open", "double-click a shot first")
            return
        audio = str(self.timeline.audio_path) if self.timeline.audio_path else ""
        from core.landmarks.faces import face_ids, read_faces

        shot = self.timeline.shot
        faces = face_ids(read_faces(self.workspace.shot_dir(shot))) if shot else []
        dialog = DubDialog(self.workspace.actors(), audio, self.timeline.audio_offset_s, self,
                           catalog=renderer_catalog(self.settings),
                           trained=lambda actor: trained_variants(self.workspace, actor), faces=faces,
                           pick_face=lambda: self.ask_pick_face(shot))
        if dialog.exec() == QDialog.DialogCode.Accepted:
            values = dialog.values()
            if values["audio"] and Path(values["audio"]) != self.timeline.audio_path:
                self.timeline.set_audio(Path(values["audio"]), values["audio_offset_s"])
            self.render_dub(
                values["actor"], values["audio"] or None, values["audio_offset_s"], values["length"],
                values["renderer"], values["format"], values["matte"], values["face"],
                values["emotion_source"],
            )

    def preview_frame(self, frame: int, actor: str | None = None) -> P.JobSpec | None:
        """Render output frame ``frame`` of the dub the timeline describes (the same params as Render dub) in the
        warm engine; the timeline shows it when it comes."""
        if not self._require_writable("preview"):
            return None
        actors = self.workspace.actors()
        actor = actor or self.dub_actor or (actors[0] if len(actors) == 1 else None)
        if actor is None:
            self.notifier.warning("Cannot preview yet", "which actor plays in this shot?",
                                  "render a dub once (Render dub…) to choose the actor")
            return None
        try:
            params = self.dub_params(actor)
        except ValueError as exc:
            self.notifier.warning("Cannot preview yet", str(exc), "")
            return None
        spec = P.JobSpec("preview", {**params, "frame": int(frame), "count": 1}, str(self.workspace.root))
        self._previews[spec.id] = int(frame)
        self.timeline.preview_info.setText(f"rendering the dub's frame {frame}…")
        self.warm.request(spec)
        return spec

    def _on_preview_answer(self, job_id: str, event: P.Event) -> None:
        frame = self._previews.pop(job_id, None)
        if frame is None:
            return
        if isinstance(event, P.Done) and event.outputs.get("frames"):
            self.timeline.show_dub_frame(frame, Path(event.outputs["frames"][0]))
        elif isinstance(event, P.Error):
            self.notifier.error("Preview failed", event.message,
                                P.hint_in_own_words(event.code, "preview", event.hint, hints.WORDS))

    def ask_dub_audio(self) -> None:
        """Choose the dub audio of the open shot (the timeline shows its waveform; Render dub takes it)."""
        from .dialogs import AUDIO_FILTER

        if self.timeline.doc is None:
            self.notifier.warning("No shot is open", "the dub audio belongs to a shot", "double-click a shot first")
            return
        path = self.chooser.open_file("Dub audio", AUDIO_FILTER)
        if path:
            self.timeline.set_audio(Path(path), 0.0)

    def ask_batch(self) -> None:
        """Run a dubbing plan (JSON or TOML: core/batch/plan.py) as one batch job of the queue."""
        if not self._require_writable("run a batch"):
            return
        path = self.chooser.open_file("Run batch plan", "Dubbing plans (*.json *.toml)")
        if path:
            self.run_batch(Path(path))

    def run_batch(self, plan: Path) -> Any:
        """Submit ``batch.dub`` for ``plan`` (a rerun skips the items that finished)."""
        return self.jobs.submit("batch.dub", {"plan": str(plan)}, str(self.workspace.root),
                                title=f"Batch {plan.stem}")

    def face_picker(self, shot: str) -> Any:
        """The :class:`~ui.dialogs.FacePickerDialog` of a shot with several faces (``None`` without a face list)."""
        from core.jobs.protocol import describe_faces
        from core.landmarks.faces import face_at_working, read_faces

        from .dialogs import FacePickerDialog
        from .media import read_frame

        doc = read_faces(self.workspace.shot_dir(shot))
        if doc is None:
            return None
        record = self.workspace.shot(shot)
        video = self.workspace.root / record["video"]
        return FacePickerDialog(int(record.get("frames") or doc.get("frames") or 1),
                                lambda k: read_frame(video, k),
                                lambda k, u, v: face_at_working(doc, record, k, u, v), describe_faces(doc), self)

    def ask_pick_face(self, shot: str) -> int | None:
        dialog = self.face_picker(shot)
        if dialog is None:
            self.notifier.warning("No faces to pick", f"shot {shot} was prepared for one face", "")
            return None
        if dialog.exec() == QDialog.DialogCode.Accepted:
            return dialog.face
        return None

    def record_consent(self, actor: str, consented_by: str, scope: str, document: str,
                       date: str | None = None, replace: bool = False) -> JobRecord | None:
        """Queue ``actor.consent``: the record every actor needs before a dub (who consented, to what, when, the
        signed document)."""
        if not self._require_writable("record consent"):
            return None
        params: dict[str, Any] = {"actor": actor, "consented_by": consented_by, "scope": scope,
                                  "document": document}
        if date:
            params["date"] = date
        if replace:
            params["replace"] = True
        return self.jobs.submit("actor.consent", params, str(self.workspace.root),
                                title=f"Record consent of {actor}")

    def ask_consent(self) -> None:
        from .dialogs import ConsentDialog

        if not self._require_writable("record consent"):
            return
        dialog = ConsentDialog(self.workspace.actors(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.record_consent(**dialog.values())

    def ask_settings(self) -> None:
        from .dialogs import SettingsDialog

        dialog = SettingsDialog(
            self.settings.engine_python, self.settings.engine_pythonpath, self.settings.cancel_grace_s, self
        )
        if dialog.exec() == QDialog.DialogCode.Accepted:
            values = dialog.values()
            self.settings.engine_python = values["engine_python"] or sys.executable
            self.settings.engine_pythonpath = values["engine_pythonpath"]
            self.settings.cancel_grace_s = values["cancel_grace_s"]
            renderer_catalog(self.settings, refresh=True)  # another engine may offer other renderers
            if self.persist_settings:
                self.settings.save()

    # -- closing -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        running = self.jobs.running()
        if running and not self.notifier.confirm(
            "Jobs are running",
            f"{len(running)} job(s) are running. Quit anyway? They are asked to "
            "stop (saving what they have) and are listed as interrupted next time.",
        ):
            event.ignore()
            return
        if not self._close_shot_asking():
            event.ignore()
            return
        self.jobs.shutdown()
        self.warm.stop()
        event.accept()


def build_window(settings: StudioSettings | None = None, notifier: Notifier | None = None) -> MainWindow:
    return MainWindow(settings, notifier)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv)
    app = QApplication.instance() or QApplication(args)
    app.setStyle("Fusion")
    app.setApplicationName("emodub studio")
    app.setOrganizationName("emodub")
    window = MainWindow(StudioSettings.load(), persist_settings=True)
    window.show()
    # `emodub-studio PATH` opens that workspace.
    paths = [a for a in args[1:] if not a.startswith("-")]
    if paths and os.path.isdir(paths[0]):
        window.open_workspace(paths[0])
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
