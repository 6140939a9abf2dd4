"""Dialogs: import footage, label a clip's emotion, train, render a dub, settings.

Each dialog only collects values (``values()``); the main window validates them and acts, so the
same checks run when tests call the window's methods directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.expression.emotions import EMOTIONS

VIDEO_FILTER = "Video files (*.mp4 *.mov *.mkv *.avi *.m4v *.webm);;All files (*)"
AUDIO_FILTER = "Audio or video files (*.wav *.flac *.mp3 *.ogg *.m4a *.aac *.mp4 *.mov *.mkv);;All files (*)"


def _buttons(dialog: QDialog, ok_text: str = "OK") -> QDialogButtonBox:
    box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    box.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box


class PathField(QWidget):
    """A line edit with a Browse… button."""

    def __init__(self, caption: str, file_filter: str, save: bool = False, folder: bool = False) -> None:
        super().__init__()
        self.edit = QLineEdit()
        browse = QPushButton("Browse…")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

        def pick() -> None:
            if folder:
                path = QFileDialog.getExistingDirectory(self, caption)
            elif save:
                path, _ = QFileDialog.getSaveFileName(self, caption, self.edit.text(), file_filter)
            else:
                path, _ = QFileDialog.getOpenFileName(self, caption, self.edit.text(), file_filter)
            if path:
                self.edit.setText(path)

        browse.clicked.connect(pick)

    def text(self) -> str:
        return self.edit.text().strip()


class EmotionSliders(QWidget):
    """Seven intensity sliders (0..1); all at 0 is neutral."""

    def __init__(self, initial: dict[str, float] | None = None) -> None:
        super().__init__()
        grid = QGridLayout(self)
        self.sliders: dict[str, QSlider] = {}
        self.readouts: dict[str, QLabel] = {}
        for row, name in enumerate(EMOTIONS):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, 100)
            slider.setValue(int(round(100 * float((initial or {}).get(name, 0.0)))))
            readout = QLabel(f"{slider.value() / 100:.2f}")
            slider.valueChanged.connect(lambda v, r=readout: r.setText(f"{v / 100:.2f}"))
            grid.addWidget(QLabel(name), row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(readout, row, 2)
            self.sliders[name], self.readouts[name] = slider, readout
        presets = QHBoxLayout()
        neutral = QPushButton("Neutral")
        neutral.clicked.connect(lambda: [s.setValue(0) for s in self.sliders.values()])
        presets.addWidget(neutral)
        for level, value in (("MEAD 1", 33), ("MEAD 2", 66), ("MEAD 3", 100)):
            button = QPushButton(level)
            button.setToolTip(f"set the strongest emotion to intensity {value / 100:.2f}")
            button.clicked.connect(lambda _=False, v=value: self._set_level(v))
            presets.addWidget(button)
        grid.addLayout(presets, len(EMOTIONS), 0, 1, 3)

    def _set_level(self, value: int) -> None:
        strongest = max(self.sliders, key=lambda n: self.sliders[n].value())
        if self.sliders[strongest].value() > 0:
            self.sliders[strongest].setValue(value)

    def values(self) -> dict[str, float]:
        return {name: s.value() / 100 for name, s in self.sliders.items() if s.value() > 0}


class IngestDialog(QDialog):
    """Import footage: a training clip of an actor (with its emotion label) or a shot to dub."""

    def __init__(self, actors: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import footage")
        self.video = PathField("Choose a video", VIDEO_FILTER)
        self.as_clip = QRadioButton("Training footage of an actor (a clip)")
        self.as_shot = QRadioButton("A shot to dub")
        self.as_clip.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.as_clip)
        group.addButton(self.as_shot)
        self.actor = QComboBox()
        self.actor.setEditable(True)
        self.actor.addItems(actors)
        self.clip = QLineEdit()
        self.shot = QLineEdit()
        self.fps = QSpinBox()
        self.fps.setRange(1, 120)
        self.fps.setValue(25)
        self.fps.setToolTip("Frame rate of a training clip (a shot to dub keeps its own rate and frames)")
        self.max_faces = QSpinBox()
        self.max_faces.setRange(1, 8)
        self.max_faces.setValue(1)
        self.max_faces.setToolTip("Faces to look for in the shot: 2 or more gives each face an id; the dub then "
                                  "needs the face you pick")
        self.emotion = EmotionSliders()
        self.sentence = QLineEdit()
        self.sentence.setPlaceholderText("optional: an id or the words")
        self.sentence.setToolTip("What the take says. Takes of one sentence in different emotions teach the jean "
                                 "renderer how this actor's emotions look apart from speech")
        form = QFormLayout()
        form.addRow("Video", self.video)
        form.addRow(self.as_clip)
        form.addRow("Actor", self.actor)
        form.addRow("Clip name", self.clip)
        form.addRow("Emotion label", self.emotion)
        form.addRow("Sentence", self.sentence)
        form.addRow(self.as_shot)
        form.addRow("Shot name", self.shot)
        form.addRow("Faces to look for", self.max_faces)
        form.addRow("Clip frame rate", self.fps)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(_buttons(self, "Import"))
        self.as_clip.toggled.connect(self._sync)
        self.video.edit.textChanged.connect(self._suggest_names)
        self._sync()

    def _sync(self) -> None:
        clip = self.as_clip.isChecked()
        for w in (self.actor, self.clip, self.emotion, self.sentence, self.fps):
            w.setEnabled(clip)
        self.shot.setEnabled(not clip)
        self.max_faces.setEnabled(not clip)

    def _suggest_names(self, text: str) -> None:
        from core.workspace import shot_name_for

        stem = "".join(c if c.isalnum() or c in "_.-" else "_" for c in Path(text).stem)[:64]
        if not self.clip.text():
            self.clip.setPlaceholderText(stem)
        if not self.shot.text():  # the engine's name for this file: Blender names it the same
            self.shot.setPlaceholderText(shot_name_for(text) if text.strip() else stem)

    def values(self) -> dict[str, Any]:
        clip = self.clip.text() or self.clip.placeholderText()
        shot = self.shot.text() or self.shot.placeholderText()
        return {
            "video": self.video.text(),
            "target": "clip" if self.as_clip.isChecked() else "shot",
            "actor": self.actor.currentText().strip(),
            "clip": clip,
            "shot": shot,
            "emotion": self.emotion.values(),
            "sentence": self.sentence.text().strip(),
            "fps": self.fps.value(),
            "max_faces": self.max_faces.value(),
        }


class EmotionLabelDialog(QDialog):
    def __init__(
        self, actor: str, clip: str, current: dict[str, float], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Emotion of {actor}/{clip}")
        self.sliders = EmotionSliders(current)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Intensity of each emotion in this clip (all 0 = neutral):"))
        layout.addWidget(self.sliders)
        layout.addWidget(_buttons(self, "Label"))

    def values(self) -> dict[str, float]:
        return self.sliders.values()


class TrainDialog(QDialog):
    KINDS = {
        "train.actor": "Everything (audio-to-expression, then renderer)",
        "train.a2e": "Audio-to-expression only",
        "train.renderer": "Renderer only",
    }

    def __init__(self, actors: list[str], catalog: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train an actor")
        self.catalog = catalog
        self.actor = QComboBox()
        self.actor.addItems(actors)
        self.kind = QComboBox()
        for kind, text in self.KINDS.items():
            self.kind.addItem(text, kind)
        self.renderer = QComboBox()
        self.preset = QComboBox()
        for variant in catalog.variants if catalog is not None else ():
            self.renderer.addItem(variant["name"], variant["name"])
            self.renderer.setItemData(self.renderer.count() - 1, variant.get("description", ""),
                                      Qt.ItemDataRole.ToolTipRole)
        if catalog is not None and catalog.default in catalog.names:
            self.renderer.setCurrentIndex(catalog.names.index(catalog.default))
        self.renderer.currentIndexChanged.connect(self._fill_presets)
        self._fill_presets()
        # How long to train: 0 keeps the engine's defaults (a draft actor for a first look trains in minutes).
        self.a2e_iterations = QSpinBox()
        self.renderer_iterations = QSpinBox()
        for spin in (self.a2e_iterations, self.renderer_iterations):
            spin.setRange(0, 1_000_000)
            spin.setSpecialValueText("default")
        self.track_iterations = QDoubleSpinBox()
        self.track_iterations.setRange(0.05, 4.0)
        self.track_iterations.setSingleStep(0.1)
        self.track_iterations.setValue(1.0)
        self.track_iterations.setToolTip("Tracking effort for footage not tracked yet (1: the default; less is "
                                         "faster and coarser)")
        form = QFormLayout()
        form.addRow("Actor", self.actor)
        form.addRow("What", self.kind)
        form.addRow("Renderer", self.renderer)
        form.addRow("Preset", self.preset)
        form.addRow("Audio-to-expression iterations", self.a2e_iterations)
        form.addRow("Renderer iterations", self.renderer_iterations)
        form.addRow("Tracking effort", self.track_iterations)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        if catalog is not None and catalog.error:
            layout.addWidget(QLabel(catalog.error))
        layout.addWidget(_buttons(self, "Train"))

    def _fill_presets(self) -> None:
        self.preset.clear()
        variant = self.catalog.variant(self.renderer.currentData()) if self.catalog is not None else {}
        for name, text in (variant.get("presets") or {}).items():
            self.preset.addItem(name, name)
            self.preset.setItemData(self.preset.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        default = variant.get("default_preset")
        if default is not None and self.preset.findData(default) >= 0:
            self.preset.setCurrentIndex(self.preset.findData(default))

    def values(self) -> dict[str, Any]:
        return {"actor": self.actor.currentText(), "kind": self.kind.currentData(),
                "renderer": self.renderer.currentData(), "preset": self.preset.currentData(),
                "a2e_iterations": self.a2e_iterations.value() or None,
                "renderer_iterations": self.renderer_iterations.value() or None,
                "track_iterations": round(self.track_iterations.value(), 3)}


class DubDialog(QDialog):
    """Parameters of the ``dub`` job that the timeline does not hold.

    ``catalog`` is the engine's renderer list (:mod:`ui.renderers`); ``trained(actor)`` says which variants an actor
    has trained (they are marked in the list, which is refreshed when the actor changes)."""

    BEST = "The actor's best (highest held-out face quality)"

    def __init__(self, actors: list[str], audio: str, offset_s: float, parent: QWidget | None = None,
                 catalog: Any = None, trained: Any = None, faces: list[int] | None = None,
                 pick_face: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Render dub")
        from core.delivery.formats import FORMATS, MATTES

        self.format = QComboBox()
        for fmt in FORMATS.values():
            self.format.addItem(fmt.description, fmt.name)
        self.matte = QComboBox()
        for matte, text in zip(MATTES, ("no matte", "matte as a 16-bit PNG sequence",
                                         "matte as the output's alpha (ProRes 4444, PNG, EXR)"), strict=True):
            self.matte.addItem(text, matte)
        self.emotion_source = QComboBox()
        self.emotion_source.addItem("the actor's labelled takes where filmed, else generic", "auto")
        self.emotion_source.addItem("the face model's generic expression for every emotion", "prior")
        self.face = QComboBox()
        if faces and len(faces) > 1:
            for face in faces:
                self.face.addItem(f"face {face}", face)
        else:
            self.face.addItem("the shot's only face", None)
            self.face.setEnabled(False)
        self.pick = QPushButton("Pick on a frame…")
        self.pick.setEnabled(bool(faces and len(faces) > 1 and pick_face is not None))
        self._pick_face = pick_face
        self.pick.clicked.connect(self._on_pick)
        self.catalog = catalog
        self.trained = trained or (lambda actor: {})
        self.actor = QComboBox()
        self.actor.addItems(actors)
        self.renderer = QComboBox()
        self.actor.currentTextChanged.connect(self._fill_renderers)
        self._fill_renderers()
        self.audio = PathField("Dub audio", AUDIO_FILTER)
        self.audio.edit.setText(audio)
        self.offset = QDoubleSpinBox()
        self.offset.setRange(0.0, 3600.0)
        self.offset.setDecimals(3)
        self.offset.setSuffix(" s")
        self.offset.setValue(offset_s)
        self.length = QComboBox()
        self.length.addItem("as long as the audio", "audio")
        self.length.addItem("as long as the shot", "shot")
        form = QFormLayout()
        form.addRow("Actor (trained models)", self.actor)
        form.addRow("Renderer", self.renderer)
        form.addRow("Dub audio", self.audio)
        form.addRow("Audio starts at", self.offset)
        form.addRow("Length", self.length)
        form.addRow("Delivery", self.format)
        form.addRow("Matte", self.matte)
        form.addRow("Emotions from", self.emotion_source)
        face_row = QHBoxLayout()
        face_row.addWidget(self.face, 1)
        face_row.addWidget(self.pick)
        form.addRow("Face to dub", face_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("The emotion curves of the timeline are sent with the job; the H.264 review file "
                                "is always written."))
        layout.addWidget(_buttons(self, "Render"))

    def values(self) -> dict[str, Any]:
        return {
            "actor": self.actor.currentText(),
            "audio": self.audio.text(),
            "audio_offset_s": self.offset.value(),
            "length": self.length.currentData(),
            "renderer": self.renderer.currentData(),
            "format": self.format.currentData(),
            "matte": self.matte.currentData(),
            "face": self.face.currentData(),
            "emotion_source": self.emotion_source.currentData(),
        }

    def set_face(self, face: int | None) -> None:
        index = self.face.findData(face)
        if index >= 0:
            self.face.setCurrentIndex(index)

    def _on_pick(self) -> None:
        if self._pick_face is not None:
            face = self._pick_face()
            if face is not None:
                self.set_face(face)

    def _fill_renderers(self) -> None:
        chosen = self.renderer.currentData()
        self.renderer.clear()
        self.renderer.addItem(self.BEST, None)
        trained = self.trained(self.actor.currentText())
        for variant in self.catalog.variants if self.catalog is not None else ():
            models = trained.get(variant["name"], [])
            self.renderer.addItem(variant["name"] + (" (trained)" if models else " (not trained)"), variant["name"])
            self.renderer.setItemData(self.renderer.count() - 1, variant.get("description", ""),
                                      Qt.ItemDataRole.ToolTipRole)
        if chosen is not None and self.renderer.findData(chosen) >= 0:
            self.renderer.setCurrentIndex(self.renderer.findData(chosen))


class ConsentDialog(QDialog):
    """An actor's consent record (``emodub actor consent``): required before any dub of the actor."""

    def __init__(self, actors: list[str], parent: QWidget | None = None) -> None:
        import datetime

        super().__init__(parent)
        self.setWindowTitle("Record actor consent")
        self.actor = QComboBox()
        self.actor.setEditable(True)
        self.actor.addItems(actors)
        self.by = QLineEdit()
        self.by.setPlaceholderText("the person who consented (or their legal representative)")
        self.scope = QLineEdit()
        self.scope.setPlaceholderText("what they agreed to: productions, languages, uses")
        self.document = QLineEdit()
        self.document.setPlaceholderText("reference of the signed document (file, archive or e-signature id)")
        self.date = QLineEdit(datetime.date.today().isoformat())
        self.replace = QRadioButton("Replace an existing record (it is kept in the history)")
        form = QFormLayout()
        form.addRow("Actor", self.actor)
        form.addRow("Consented by", self.by)
        form.addRow("Scope", self.scope)
        form.addRow("Signed document", self.document)
        form.addRow("Date (YYYY-MM-DD)", self.date)
        form.addRow(self.replace)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(_buttons(self, "Record"))

    def values(self) -> dict[str, Any]:
        return {"actor": self.actor.currentText().strip(), "consented_by": self.by.text().strip(),
                "scope": self.scope.text().strip(), "document": self.document.text().strip(),
                "date": self.date.text().strip() or None, "replace": self.replace.isChecked()}


class ClickableImage(QLabel):
    """A picture that reports clicks as points normalised to the picture (0..1, origin top-left)."""

    def __init__(self, on_click: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.on_click = on_click
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 120)

    def show_frame(self, frame: Any, max_side: int = 480) -> None:
        import numpy as np
        from PySide6.QtGui import QImage, QPixmap

        arr = np.ascontiguousarray(frame)
        height, width = arr.shape[:2]
        image = QImage(arr.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
        scale = min(1.0, max_side / max(width, height)) if max(width, height) > max_side else max(
            1.0, 240 / max(width, height))
        self.setPixmap(QPixmap.fromImage(image).scaled(int(width * scale), int(height * scale)))

    def mousePressEvent(self, event: Any) -> None:
        pixmap = self.pixmap()
        if pixmap is None or pixmap.isNull():
            return
        left = (self.width() - pixmap.width()) / 2
        top = (self.height() - pixmap.height()) / 2
        pos = event.position()
        u, v = (pos.x() - left) / pixmap.width(), (pos.y() - top) / pixmap.height()
        if 0 <= u <= 1 and 0 <= v <= 1:
            self.on_click(u, v)


class FacePickerDialog(QDialog):
    """Choose the face to dub by clicking it on a frame of the shot (a shot with several faces).

    ``frame_at(index)`` gives the shot's working-copy frame ``index``; ``face_at(frame, u, v)`` the face id under a
    normalised click (:func:`core.landmarks.faces.face_at_working`), or ``None``."""

    def __init__(self, frames: int, frame_at: Any, face_at: Any, describe: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pick the face to dub")
        self.frame_at, self.face_at = frame_at, face_at
        self.face: int | None = None
        self.frame = QSpinBox()
        self.frame.setRange(0, max(0, frames - 1))
        self.view = ClickableImage(self.pick)
        self.status = QLabel(describe or "Click a face.")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("Frame"))
        row.addWidget(self.frame)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        layout.addWidget(_buttons(self, "Use this face"))
        self.frame.valueChanged.connect(self._show)
        self._show()

    def _show(self, *_: Any) -> None:
        self.view.show_frame(self.frame_at(self.frame.value()))

    def pick(self, u: float, v: float) -> int | None:
        """The face under the normalised point ``(u, v)`` of the frame shown (kept as :attr:`face`)."""
        found = self.face_at(self.frame.value(), u, v)
        if found is None:
            self.status.setText(f"No face there (frame {self.frame.value()}); click inside a face.")
        else:
            self.face = found
            self.status.setText(f"Face {found} will be dubbed.")
        return found


class SettingsDialog(QDialog):
    def __init__(
        self, engine_python: str, engine_pythonpath: str, grace_s: float, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.python = PathField("Engine Python", "All files (*)")
        self.python.edit.setText(engine_python)
        self.pythonpath = QLineEdit(engine_pythonpath)
        self.grace = QDoubleSpinBox()
        self.grace.setRange(0.5, 600.0)
        self.grace.setSuffix(" s")
        self.grace.setValue(grace_s)
        form = QFormLayout()
        form.addRow("Engine Python", self.python)
        form.addRow("Engine PYTHONPATH", self.pythonpath)
        form.addRow("Cancel grace period", self.grace)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "The engine runs as `<engine Python> -m core.worker`. Use the Python of the "
                "emodub environment (e.g. a CUDA one)."
            )
        )
        layout.addLayout(form)
        layout.addWidget(_buttons(self, "Save"))

    def values(self) -> dict[str, Any]:
        return {
            "engine_python": self.python.text(),
            "engine_pythonpath": self.pythonpath.text().strip(),
            "cancel_grace_s": self.grace.value(),
        }
