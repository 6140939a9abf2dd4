"""The timeline editor: dub audio waveform, shot thumbnails, one curve lane per emotion, a playhead.

Mouse (in a curve lane): double-click adds a key; drag a key to move it (whole frames, values in
[0, 1]); click empty space to move the playhead; right-click for interpolation, delete and presets.
Keys: Delete/Backspace deletes the selected key; Ctrl+Z / Ctrl+Shift+Z undo/redo (the Edit menu).
Every edit goes through a :class:`QUndoStack` as a :class:`~ui.curvedoc.CurveEdit`; the curves are
evaluated by core (:mod:`core.expression.emotions`) so what is drawn is what the engine renders.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
    QPolygonF,
    QUndoCommand,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.expression.emotions import EMOTIONS, INTERPOLATIONS, EmotionCurves

from . import curvedoc as cd
from .media import Envelope, FrameCache, MediaError, audio_envelope, thumbnails
from .notify import Notifier
from .qtutil import run_in_background, to_qpixmap

EMOTION_COLOURS: dict[str, str] = {
    "angry": "#e53935",
    "contempt": "#8d6e63",
    "disgusted": "#7cb342",
    "fear": "#8e24aa",
    "happy": "#fbc02d",
    "sad": "#1e88e5",
    "surprised": "#fb8c00",
}
LABEL_W, RULER_H, WAVE_H, THUMB_H, LANE_H, RIGHT_PAD, LANE_PAD = 92, 22, 54, 50, 42, 14, 5
KEY_HIT_PX = 7


class CurveCommand(QUndoCommand):
    """A :class:`~ui.curvedoc.CurveEdit` on the undo stack."""

    def __init__(self, doc: cd.CurveDocument, edit: cd.CurveEdit) -> None:
        super().__init__(edit.text)
        self.doc = doc
        self.edit = edit

    def redo(self) -> None:
        self.edit.redo(self.doc)

    def undo(self) -> None:
        self.edit.undo(self.doc)


@dataclass
class _Drag:
    emotion: str
    index: int
    before: cd.Keys


class TimelineCanvas(QWidget):
    """The painted lanes. Holds no undo logic: edits are emitted through :attr:`edit_requested`.

    Signals:
        playhead_changed(int): the playhead moved to a frame.
        edit_requested(object): a :class:`~ui.curvedoc.CurveEdit` to push on the undo stack.
        selection_changed(): the selected key changed.
    """

    playhead_changed = Signal(int)
    edit_requested = Signal(object)
    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: cd.CurveDocument | None = None
        self.n_frames = 1  # frames the timeline spans: the shot's, or the dub audio's when that is longer
        self.shot_frames = 1  # the shot's own frames; past them the dub loops the shot
        self.fps = 25.0
        self.playhead = 0
        self.envelope: Envelope | None = None
        self.audio_offset_s = 0.0
        self.thumbs: list[tuple[int, QPixmap]] = []
        self.selection: tuple[str, int] | None = None
        self._drag: _Drag | None = None
        self._scrubbing = False
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(False)
        self.setMinimumHeight(self.content_height())
        self.setMinimumWidth(420)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    # -- content -------------------------------------------------------------------------------
    def set_document(self, doc: cd.CurveDocument, n_frames: int) -> None:
        self.doc = doc
        self.fps = doc.fps
        self.n_frames = self.shot_frames = max(int(n_frames), 1)
        self.selection = None
        self.playhead = min(self.playhead, self.n_frames - 1)
        doc.subscribe(self._on_doc_change)
        self.update()

    def _on_doc_change(self, emotion: str) -> None:
        if (
            self.selection
            and self.selection[0] == emotion
            and self.selection[1] >= len(self.doc.keys(emotion))
        ):
            self.selection = None
            self.selection_changed.emit()
        self.update()

    def content_height(self) -> int:
        return RULER_H + WAVE_H + THUMB_H + LANE_H * len(EMOTIONS) + 2

    def sizeHint(self):
        from PySide6.QtCore import QSize

        return QSize(900, self.content_height())

    # -- geometry ------------------------------------------------------------------------------
    def track_width(self) -> float:
        return max(self.width() - LABEL_W - RIGHT_PAD, 10)

    def frame_to_x(self, frame: float | np.ndarray) -> Any:
        return LABEL_W + np.asarray(frame, np.float64) / max(self.n_frames - 1, 1) * self.track_width()

    def x_to_frame(self, x: float) -> float:
        frame = (x - LABEL_W) / self.track_width() * max(self.n_frames - 1, 1)
        return float(min(max(frame, 0.0), self.n_frames - 1))

    def lane_top(self, emotion: str) -> int:
        return RULER_H + WAVE_H + THUMB_H + EMOTIONS.index(emotion) * LANE_H

    def lane_rect(self, emotion: str) -> QRectF:
        return QRectF(LABEL_W, self.lane_top(emotion), self.track_width(), LANE_H)

    def value_to_y(self, emotion: str, value: float | np.ndarray) -> Any:
        top = self.lane_top(emotion) + LANE_PAD
        span = LANE_H - 2 * LANE_PAD
        return top + (1.0 - np.asarray(value, np.float64)) * span

    def y_to_value(self, emotion: str, y: float) -> float:
        top = self.lane_top(emotion) + LANE_PAD
        span = LANE_H - 2 * LANE_PAD
        return float(min(max(1.0 - (y - top) / span, 0.0), 1.0))

    def lane_at(self, y: float) -> str | None:
        first = RULER_H + WAVE_H + THUMB_H
        if y < first:
            return None
        row = int((y - first) // LANE_H)
        return EMOTIONS[row] if 0 <= row < len(EMOTIONS) else None

    def key_pos(self, emotion: str, index: int) -> QPointF:
        key = self.doc.keys(emotion)[index]
        return QPointF(float(self.frame_to_x(key.frame)), float(self.value_to_y(emotion, key.value)))

    def key_at(self, pos: QPointF) -> tuple[str, int] | None:
        emotion = self.lane_at(pos.y())
        if emotion is None or self.doc is None:
            return None
        best: tuple[float, int] | None = None
        for i in range(len(self.doc.keys(emotion))):
            p = self.key_pos(emotion, i)
            d = max(abs(p.x() - pos.x()), abs(p.y() - pos.y()))
            if d <= KEY_HIT_PX and (best is None or d < best[0]):
                best = (d, i)
        return None if best is None else (emotion, best[1])

    # -- playhead ------------------------------------------------------------------------------
    def set_playhead(self, frame: int) -> None:
        frame = int(min(max(frame, 0), self.n_frames - 1))
        if frame != self.playhead:
            self.playhead = frame
            self.update()
            self.playhead_changed.emit(frame)

    def select(self, selection: tuple[str, int] | None) -> None:
        if selection != self.selection:
            self.selection = selection
            self.selection_changed.emit()
            self.update()

    # -- mouse and keys ------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        pos = event.position()
        if event.button() == Qt.MouseButton.RightButton:
            return  # contextMenuEvent handles it
        if event.button() != Qt.MouseButton.LeftButton or self.doc is None:
            return
        hit = self.key_at(pos)
        if hit is not None:
            self.select(hit)
            self._drag = _Drag(hit[0], hit[1], self.doc.keys(hit[0]))
            return
        if self.lane_at(pos.y()) is not None:
            self.select(None)
        if pos.x() >= LABEL_W:
            self._scrubbing = True
            self.set_playhead(round(self.x_to_frame(pos.x())))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag is not None and self.doc is not None:
            drag = self._drag
            edit = cd.move_key(
                self.doc,
                drag.emotion,
                drag.index,
                self.x_to_frame(pos.x()),
                self.y_to_value(drag.emotion, pos.y()),
            )
            if edit is not None:
                moved = edit.after
                self.doc.set_keys(drag.emotion, moved)  # live preview; one undo step on release
                target = self._dragged_key_index(edit)
                drag.index = target
                self.selection = (drag.emotion, target)
                self.update()
        elif self._scrubbing:
            self.set_playhead(round(self.x_to_frame(pos.x())))

    @staticmethod
    def _dragged_key_index(edit: cd.CurveEdit) -> int:
        """Index in ``edit.after`` of the key that moved (the one not present in ``before``)."""
        before = set(edit.before)
        return next((i for i, k in enumerate(edit.after) if k not in before), 0)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None and self.doc is not None:
            drag, self._drag = self._drag, None
            after = self.doc.keys(drag.emotion)
            if after != drag.before:
                self.edit_requested.emit(
                    cd.CurveEdit(drag.emotion, drag.before, after, f"Move {drag.emotion} key")
                )
        self._scrubbing = False

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        emotion = self.lane_at(pos.y())
        if emotion is None or self.doc is None or pos.x() < LABEL_W or self.key_at(pos) is not None:
            return
        frame, value = self.x_to_frame(pos.x()), self.y_to_value(emotion, pos.y())
        self._request(lambda: cd.add_key(self.doc, emotion, frame, value))
        index = self.doc.find_key(emotion, round(frame))
        if index is not None:
            self.select((emotion, index))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selection is not None:
            self.delete_selected()
        elif event.key() == Qt.Key.Key_Left:
            self.set_playhead(self.playhead - 1)
        elif event.key() == Qt.Key.Key_Right:
            self.set_playhead(self.playhead + 1)
        else:
            super().keyPressEvent(event)

    def contextMenuEvent(self, event: Any) -> None:
        menu = self.build_context_menu(QPointF(event.pos()))
        if menu is not None:
            menu.exec(event.globalPos())

    def build_context_menu(self, pos: QPointF) -> QMenu | None:
        """The right-click menu at ``pos``: on a key, interpolation and delete; on a lane, presets."""
        if self.doc is None:
            return None
        menu = QMenu(self)
        hit = self.key_at(pos)
        if hit is not None:
            self.select(hit)
            emotion, index = hit
            current = self.doc.keys(emotion)[index].interpolation
            for mode in INTERPOLATIONS:
                action = menu.addAction(mode.capitalize())
                action.setCheckable(True)
                action.setChecked(mode == current)
                action.triggered.connect(lambda _=False, m=mode: self.set_selected_interpolation(m))
            menu.addSeparator()
            menu.addAction("Delete key").triggered.connect(self.delete_selected)
            return menu
        emotion = self.lane_at(pos.y())
        if emotion is None:
            return None
        start = self.playhead
        end = min(self.n_frames - 1, start + max(int(round(2 * self.fps)), 2))
        for preset in cd.PRESETS:
            action = menu.addAction(f"{preset.capitalize()} ({start}–{end})")
            action.triggered.connect(
                lambda _=False, p=preset, e=emotion: self._request(
                    lambda: cd.apply_preset(self.doc, e, p, start, end)
                )
            )
        menu.addSeparator()
        menu.addAction(f"Clear {emotion}").triggered.connect(
            lambda: self._request(lambda: cd.clear_curve(self.doc, emotion))
        )
        return menu

    # -- edits on the selection ----------------------------------------------------------------
    def _request(self, make: Any) -> None:
        try:
            edit = make()
        except ValueError as exc:
            self.window().statusBar().showMessage(str(exc), 6000) if hasattr(
                self.window(), "statusBar"
            ) else None
            return
        if edit is not None:
            self.edit_requested.emit(edit)

    def delete_selected(self) -> None:
        if self.selection is None or self.doc is None:
            return
        emotion, index = self.selection
        self.select(None)
        self._request(lambda: cd.delete_key(self.doc, emotion, index))

    def set_selected_interpolation(self, mode: str) -> None:
        if self.selection is None or self.doc is None:
            return
        emotion, index = self.selection
        self._request(lambda: cd.set_interpolation(self.doc, emotion, index, mode))

    def set_dub_frames(self, frames: int) -> None:
        """Span the dub's ``frames`` when the dub audio is longer than the shot (the dub loops the shot there, and
        its emotions can be keyed there too); never shorter than the shot."""
        self.n_frames = max(int(frames), self.shot_frames)
        self.playhead = min(self.playhead, self.n_frames - 1)
        self.update()

    # -- painting ------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#1e1f22"))
        small = QFont(self.font())
        small.setPointSizeF(max(small.pointSizeF() * 0.85, 7))
        painter.setFont(small)
        self._paint_ruler(painter)
        self._paint_waveform(painter)
        self._paint_thumbnails(painter)
        for emotion in EMOTIONS:
            self._paint_lane(painter, emotion)
        x = float(self.frame_to_x(self.playhead))
        painter.setPen(QPen(QColor("#ff5252"), 1.5))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.content_height()))
        painter.end()

    def _paint_ruler(self, painter: QPainter) -> None:
        painter.fillRect(QRectF(0, 0, self.width(), RULER_H), QColor("#2b2d31"))
        painter.setPen(QColor("#9aa0a6"))
        seconds = (self.n_frames - 1) / self.fps
        step = next(
            (s for s in (0.2, 0.5, 1, 2, 5, 10, 30, 60) if seconds / s <= self.track_width() / 70), 60
        )
        for t in np.arange(0, seconds + 1e-9, step):
            x = float(self.frame_to_x(t * self.fps))
            painter.drawLine(QPointF(x, RULER_H - 6), QPointF(x, RULER_H))
            painter.drawText(QPointF(x + 3, RULER_H - 8), f"{t:g}s")
        painter.drawText(
            QRectF(6, 0, LABEL_W - 8, RULER_H), Qt.AlignmentFlag.AlignVCenter, f"frame {self.playhead}"
        )

    def _paint_waveform(self, painter: QPainter) -> None:
        top = RULER_H
        painter.fillRect(QRectF(0, top, self.width(), WAVE_H), QColor("#23252a"))
        painter.setPen(QColor("#c7c7c7"))
        painter.drawText(QRectF(6, top, LABEL_W - 8, WAVE_H), Qt.AlignmentFlag.AlignVCenter, "dub audio")
        if self.envelope is None or self.envelope.duration_s <= 0:
            painter.setPen(QColor("#6b6f76"))
            painter.drawText(
                QRectF(LABEL_W, top, self.track_width(), WAVE_H), Qt.AlignmentFlag.AlignCenter, "no audio"
            )
            return
        columns = int(self.track_width())
        t0 = self.audio_offset_s
        lo, hi = self.envelope.window(t0, t0 + self.n_frames / self.fps, columns)
        mid = top + WAVE_H / 2
        half = WAVE_H / 2 - 3
        xs = LABEL_W + np.arange(columns, dtype=np.float64)
        upper = [QPointF(x, y) for x, y in zip(xs.tolist(), (mid - hi * half).tolist(), strict=True)]
        lower = [
            QPointF(x, y) for x, y in zip(xs[::-1].tolist(), (mid - lo[::-1] * half).tolist(), strict=True)
        ]
        path = QPainterPath()
        path.addPolygon(QPolygonF(upper + lower))
        painter.fillPath(path, QColor("#4fc3f7"))

    def _paint_thumbnails(self, painter: QPainter) -> None:
        top = RULER_H + WAVE_H
        painter.fillRect(QRectF(0, top, self.width(), THUMB_H), QColor("#18191c"))
        painter.setPen(QColor("#c7c7c7"))
        painter.drawText(QRectF(6, top, LABEL_W - 8, THUMB_H), Qt.AlignmentFlag.AlignVCenter, "shot")
        if not self.thumbs:
            return
        h = THUMB_H - 4
        first = self.thumbs[0][1]
        slot_w = max(first.width() * h / max(first.height(), 1), 8.0)
        slots = max(int(np.ceil(self.track_width() / slot_w)), 1)
        # Each slot shows the loaded thumbnail nearest to the frame at the slot's centre.
        thumb_frames = np.array([f for f, _ in self.thumbs], np.float64)
        centres = (np.arange(slots) + 0.5) * slot_w / self.track_width() * max(self.n_frames - 1, 1)
        centres = np.mod(centres, self.shot_frames)  # the looped part shows the frames the dub shows
        nearest = np.abs(centres[:, None] - thumb_frames[None, :]).argmin(axis=1)
        painter.save()
        painter.setClipRect(QRectF(LABEL_W, top, self.track_width(), THUMB_H))
        for slot, which in enumerate(nearest.tolist()):
            pixmap = self.thumbs[which][1]
            painter.drawPixmap(
                QRectF(LABEL_W + slot * slot_w, top + 2, slot_w, h), pixmap, QRectF(pixmap.rect())
            )
        if self.n_frames > self.shot_frames:  # past the shot's end the dub loops it: say so on the lane
            x = float(self.frame_to_x(self.shot_frames - 0.5))
            region = QRectF(x, top, LABEL_W + self.track_width() - x, THUMB_H)
            painter.fillRect(region, QColor(20, 20, 24, 170))
            painter.setPen(QColor("#ffb74d"))
            painter.drawText(region, Qt.AlignmentFlag.AlignCenter, "the dub loops the shot here")
        painter.restore()

    def _paint_lane(self, painter: QPainter, emotion: str) -> None:
        rect = self.lane_rect(emotion)
        row = EMOTIONS.index(emotion)
        painter.fillRect(
            QRectF(0, rect.top(), self.width(), LANE_H), QColor("#26282c" if row % 2 else "#222428")
        )
        colour = QColor(EMOTION_COLOURS[emotion])
        painter.setPen(colour)
        value_now = float(self.doc.sample(emotion, self.playhead)) if self.doc else 0.0
        painter.drawText(
            QRectF(6, rect.top(), LABEL_W - 8, LANE_H),
            Qt.AlignmentFlag.AlignVCenter,
            f"{emotion}\n{value_now:.2f}",
        )
        painter.setPen(QPen(QColor("#3a3d42"), 1, Qt.PenStyle.DotLine))
        for v in (0.0, 0.5, 1.0):
            y = float(self.value_to_y(emotion, v))
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
        if self.doc is None:
            return
        has_curve = bool(self.doc.keys(emotion)) or self.doc.is_sampled(emotion)
        if not has_curve:
            return
        columns = np.arange(int(rect.width()) + 1, dtype=np.float64)
        frames = columns / max(rect.width(), 1) * max(self.n_frames - 1, 1)
        values = self.doc.sample(emotion, frames)  # core's evaluation, clipped as the engine samples
        ys = self.value_to_y(emotion, values)
        points = [QPointF(LABEL_W + c, y) for c, y in zip(columns.tolist(), ys.tolist(), strict=True)]
        fill = QPainterPath()
        base = float(self.value_to_y(emotion, 0.0))
        fill.addPolygon(QPolygonF([QPointF(LABEL_W, base), *points, QPointF(LABEL_W + columns[-1], base)]))
        shade = QColor(colour)
        shade.setAlpha(45)
        painter.fillPath(fill, shade)
        painter.setPen(QPen(colour, 1.8))
        painter.drawPolyline(QPolygonF(points))
        for i, key in enumerate(self.doc.keys(emotion)):
            p = self.key_pos(emotion, i)
            selected = self.selection == (emotion, i)
            painter.setPen(QPen(QColor("#ffffff") if selected else QColor("#111111"), 1.5 if selected else 1))
            painter.setBrush(QColor("#ffffff") if selected else colour)
            r = 5.5 if selected else 4.5
            if key.interpolation == "constant":
                painter.drawRect(QRectF(p.x() - r + 1, p.y() - r + 1, 2 * r - 2, 2 * r - 2))
            elif key.interpolation == "linear":
                painter.drawPolygon(
                    QPolygonF(
                        [
                            QPointF(p.x(), p.y() - r),
                            QPointF(p.x() + r, p.y() + r * 0.8),
                            QPointF(p.x() - r, p.y() + r * 0.8),
                        ]
                    )
                )
            else:
                painter.drawPolygon(
                    QPolygonF(
                        [
                            QPointF(p.x(), p.y() - r),
                            QPointF(p.x() + r, p.y()),
                            QPointF(p.x(), p.y() + r),
                            QPointF(p.x() - r, p.y()),
                        ]
                    )
                )
        painter.setBrush(Qt.BrushStyle.NoBrush)


class TimelineEditor(QWidget):
    """The timeline tab: toolbar, canvas, frame preview. Open a shot with :meth:`open_shot`.

    Signals:
        dirty_changed(bool): unsaved curve edits appeared / were saved.
        render_requested(): the user asked to render the dub of the open shot.
    """

    dirty_changed = Signal(bool)
    render_requested = Signal()
    audio_requested = Signal()  # "Dub audio…": the window asks for the file (it owns the file chooser)
    preview_requested = Signal(int)  # "Preview frame": the window renders this frame of the dub (warm engine)

    def __init__(self, notifier: Notifier, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notifier = notifier
        self.undo_stack = QUndoStack(self)
        self.workspace: Any = None
        self.shot: str | None = None
        self.doc: cd.CurveDocument | None = None
        self.audio_path: Path | None = None
        self.audio_offset_s = 0.0
        self.length_note = ""  # what the timeline says when the dub audio is longer than the shot
        self.render_video: Path | None = None
        self.read_only = False
        self._frames: dict[str, FrameCache] = {}
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(40)  # debounce: decode once the scrubbing pauses
        self._preview_timer.timeout.connect(self._update_preview)
        self.media_loading = 0
        self._build()
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self._show_placeholder(True)

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.title = QLabel("No shot open")
        self.title.setStyleSheet("font-weight: bold;")
        self.save_button = QPushButton("Save curves")
        self.save_button.clicked.connect(self.save)
        self._undo_action = self.undo_stack.createUndoAction(self, "Undo")
        self._redo_action = self.undo_stack.createRedoAction(self, "Redo")
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo_stack.undo)
        self.redo_button = QPushButton("Redo")
        self.redo_button.clicked.connect(self.undo_stack.redo)
        self.undo_stack.canUndoChanged.connect(self._on_undo_state)
        self.undo_stack.canRedoChanged.connect(self._on_undo_state)
        self.undo_stack.undoTextChanged.connect(lambda text: self.undo_button.setToolTip(f"Undo {text}"))
        self.undo_stack.redoTextChanged.connect(lambda text: self.redo_button.setToolTip(f"Redo {text}"))
        self.interp_buttons: dict[str, QToolButton] = {}
        interp_row = QHBoxLayout()
        interp_row.addWidget(QLabel("Selected key:"))
        for mode in INTERPOLATIONS:
            button = QToolButton()
            button.setText(mode.capitalize())
            button.setToolTip(f"interpolate the segment after the selected key: {mode}")
            button.clicked.connect(lambda _=False, m=mode: self.canvas.set_selected_interpolation(m))
            self.interp_buttons[mode] = button
            interp_row.addWidget(button)
        self.delete_button = QToolButton()
        self.delete_button.setText("Delete")
        self.delete_button.clicked.connect(lambda: self.canvas.delete_selected())
        interp_row.addWidget(self.delete_button)

        self.preset_emotion = QComboBox()
        self.preset_emotion.addItems(EMOTIONS)
        self.preset_emotion.setCurrentText("happy")
        self.preset_kind = QComboBox()
        self.preset_kind.addItems(list(cd.PRESETS))
        self.preset_start = QSpinBox()
        self.preset_end = QSpinBox()
        for box in (self.preset_start, self.preset_end):
            box.setRange(0, 10**6)
            box.setPrefix("f ")
        self.preset_peak = QDoubleSpinBox()
        self.preset_peak.setRange(0.0, 1.0)
        self.preset_peak.setSingleStep(0.05)
        self.preset_peak.setValue(0.8)
        self.preset_apply = QPushButton("Apply preset")
        self.preset_apply.clicked.connect(self.apply_preset_from_controls)
        preset_row = QHBoxLayout()
        for w in (
            QLabel("Preset:"),
            self.preset_kind,
            self.preset_emotion,
            QLabel("from"),
            self.preset_start,
            QLabel("to"),
            self.preset_end,
            QLabel("peak"),
            self.preset_peak,
            self.preset_apply,
        ):
            preset_row.addWidget(w)
        preset_row.addStretch(1)
        preset_row.addLayout(interp_row)

        self.audio_button = QPushButton("Dub audio…")
        self.audio_button.clicked.connect(self.audio_requested.emit)
        self.audio_label = QLabel("")
        self.audio_label.setStyleSheet("color: #888;")
        self.render_button = QPushButton("Render dub…")
        self.render_button.clicked.connect(self.render_requested.emit)

        top_row = QHBoxLayout()
        for w in (self.title, self.save_button, self.undo_button, self.redo_button):
            top_row.addWidget(w)
        top_row.addStretch(1)
        top_row.addWidget(self.audio_button)
        top_row.addWidget(self.audio_label)
        top_row.addWidget(self.render_button)

        self.canvas = TimelineCanvas()
        self.canvas.edit_requested.connect(lambda edit: self.undo_stack.push(CurveCommand(self.doc, edit)))
        self.canvas.playhead_changed.connect(lambda _f: self._preview_timer.start())
        self.canvas.selection_changed.connect(self._sync_buttons)
        scroll = QScrollArea()
        scroll.setWidget(self.canvas)
        scroll.setWidgetResizable(True)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.scroll = scroll

        self.preview = QLabel("")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(200, 160)
        self.preview.setStyleSheet("background: #111; color: #777;")
        self.preview_source = QRadioButton("Source")
        self.preview_render = QRadioButton("Render")
        self.preview_dub = QRadioButton("Dub preview")
        self.preview_dub.setToolTip("The dub's frame at the playhead with the current curves (Preview frame)")
        self.preview_source.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.preview_source)
        group.addButton(self.preview_render)
        group.addButton(self.preview_dub)
        self.preview_source.toggled.connect(lambda _: self._preview_timer.start())
        self.preview_dub.toggled.connect(lambda _: self._preview_timer.start())
        self.preview_button = QPushButton("Preview frame")
        self.preview_button.setToolTip("Render the dub's frame at the playhead with the current curves, in seconds")
        self.preview_button.clicked.connect(lambda: self.preview_requested.emit(self.canvas.playhead))
        self._dub_frames: dict[int, Path] = {}
        self.undo_stack.indexChanged.connect(self._forget_dub_frames)  # the curves changed
        self.preview_info = QLabel("")
        self.preview_info.setWordWrap(True)
        preview_box = QWidget()
        pv = QVBoxLayout(preview_box)
        pv.setContentsMargins(0, 0, 0, 0)
        toggles = QHBoxLayout()
        toggles.addWidget(QLabel("Preview:"))
        toggles.addWidget(self.preview_source)
        toggles.addWidget(self.preview_render)
        toggles.addWidget(self.preview_dub)
        toggles.addStretch(1)
        toggles.addWidget(self.preview_button)
        pv.addLayout(toggles)
        pv.addWidget(self.preview, 1)
        pv.addWidget(self.preview_info)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(preview_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        self.splitter = splitter

        self.placeholder = QLabel(
            "Open a shot from the workspace browser (double-click it) to keyframe its "
            "emotions.\nImport one with File ▸ Import footage… (as a shot to dub)."
        )
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #888; font-size: 14px;")

        layout = QVBoxLayout(self)
        layout.addLayout(top_row)
        layout.addLayout(preset_row)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.placeholder, 1)
        self._controls = [
            self.save_button,
            self.undo_button,
            self.redo_button,
            self.preset_apply,
            self.audio_button,
            self.render_button,
            self.preview_button,
            *self.interp_buttons.values(),
            self.delete_button,
            self.preset_kind,
            self.preset_emotion,
            self.preset_start,
            self.preset_end,
            self.preset_peak,
        ]

    def _on_clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean)

    def _show_placeholder(self, show: bool) -> None:
        self.placeholder.setVisible(show)
        self.splitter.setVisible(not show)
        for w in self._controls:
            w.setEnabled(not show)
        if not show:
            self._sync_buttons()

    def _on_undo_state(self, _available: bool) -> None:
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        has_key = self.canvas.selection is not None
        for button in (*self.interp_buttons.values(), self.delete_button):
            button.setEnabled(has_key)
        self.save_button.setEnabled(self.doc is not None and not self.read_only)
        self.undo_button.setEnabled(self.doc is not None and self.undo_stack.canUndo())
        self.redo_button.setEnabled(self.doc is not None and self.undo_stack.canRedo())

    # -- opening and saving --------------------------------------------------------------------
    @property
    def curves_path(self) -> Path | None:
        if self.workspace is None or self.shot is None:
            return None
        return self.workspace.shot_dir(self.shot) / cd.CURVES_FILE

    @property
    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def open_shot(self, workspace: Any, shot: str, read_only: bool = False) -> bool:
        """Show a shot's curves, waveform and thumbnails. Returns ``False`` if it could not be opened."""
        record = workspace.shot(shot)
        fps = float(record.get("fps") or 25.0)
        n_frames = int(record.get("frames") or 0)
        self.workspace, self.shot, self.read_only = workspace, shot, read_only
        self._frames.clear()
        path = workspace.shot_dir(shot) / cd.CURVES_FILE
        doc: cd.CurveDocument | None = None
        if path.exists():
            try:
                doc = cd.CurveDocument(EmotionCurves.load(path))
            except ValueError as exc:
                self.notifier.warning(
                    "Emotion curves not loaded",
                    f"{path} could not be read: {exc}",
                    "the file is kept; the editor starts empty and, when you save, the old file is moved "
                    "aside to emotions.json.invalid-<time> so nothing is lost",
                )
        if doc is None:
            doc = cd.CurveDocument.empty(fps, n_frames or None)
        if doc.frame_end is None and n_frames:
            doc.frame_end = float(n_frames - 1)
        self.doc = doc
        self.undo_stack.clear()
        self.canvas.thumbs = []
        self.canvas.envelope = None
        self.canvas.set_document(doc, n_frames or int(round(fps * 10)))
        self.preset_start.setMaximum(max(n_frames - 1, 0))
        self.preset_end.setMaximum(max(n_frames - 1, 0))
        self.preset_start.setValue(0)
        self.preset_end.setValue(min(max(n_frames - 1, 0), int(round(2 * fps))))
        self.title.setText(f"Shot {shot}" + (" (read-only)" if read_only else ""))
        state = self._load_state().get(shot, {})
        audio = state.get("audio") or (record.get("audio") and str(workspace.root / record["audio"]))
        self.audio_offset_s = float(state.get("audio_offset_s", 0.0))
        self.set_audio(Path(audio) if audio else None, remember=False)
        self.render_video = self._latest_render(workspace, shot)
        self.preview_render.setEnabled(self.render_video is not None)
        self._show_placeholder(False)
        self._load_thumbnails(workspace.root / record["video"] if record.get("video") else None, n_frames)
        self._preview_timer.start()
        return True

    def close_shot(self) -> None:
        self.workspace = self.shot = self.doc = None
        self.undo_stack.clear()
        self._show_placeholder(True)

    @staticmethod
    def _latest_render(workspace: Any, shot: str) -> Path | None:
        renders = workspace.read_manifest().get("renders", {})
        mine = [r for r in renders.values() if r.get("shot") == shot and r.get("video")]
        if not mine:
            return None
        path = workspace.root / mine[-1]["video"]
        return path if path.exists() else None

    def save(self) -> bool:
        """Write the curves to ``<shot>/emotions.json`` (core's JSON form, atomically). On failure the
        edits stay in the editor (and unsaved) and the user is told how to keep them."""
        path = self.curves_path
        if path is None or self.doc is None:
            return False
        try:
            if path.exists():
                try:
                    EmotionCurves.load(path)
                except ValueError:  # never overwrite a file we could not read: move it aside first
                    path.rename(path.with_name(f"{path.name}.invalid-{time.strftime('%Y%m%d-%H%M%S')}"))
            self.doc.save(path)
        except OSError as exc:
            self.notifier.error(
                "Curves not saved",
                f"cannot write {path}: {exc.strerror or exc}",
                "the workspace folder is read-only or full. Your edits are still in the editor: use "
                "File ▸ Export curves… to save them to another folder",
            )
            return False
        self.undo_stack.setClean()
        return True

    def export_curves(self, path: str | Path) -> bool:
        if self.doc is None:
            return False
        try:
            self.doc.save(path)
        except OSError as exc:
            self.notifier.error(
                "Curves not exported",
                f"cannot write {path}: {exc.strerror or exc}",
                "choose a folder you can write to",
            )
            return False
        return True

    # -- state kept by the app per shot (dub audio choice) --------------------------------------
    def _state_path(self) -> Path | None:
        from .jobstate import STUDIO_DIR

        return None if self.workspace is None else self.workspace.root / STUDIO_DIR / "shots.json"

    def _load_state(self) -> dict[str, Any]:
        path = self._state_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path and path.exists() else {}
        except (OSError, json.JSONDecodeError):
            data = {}
        return data if isinstance(data, dict) else {}

    def set_audio(self, path: Path | None, offset_s: float | None = None, remember: bool = True) -> None:
        """Use ``path`` as the dub audio (waveform and the ``dub`` job's ``audio`` param)."""
        self.audio_path = path
        self._dub_frames.clear()  # previews of the old audio
        if offset_s is not None:
            self.audio_offset_s = float(offset_s)
        self.canvas.audio_offset_s = self.audio_offset_s
        self.audio_label.setText(path.name if path else "no audio")
        self.canvas.envelope = None
        if path is not None:
            self.media_loading += 1
            run_in_background(
                lambda: audio_envelope(path, bins=8192), self._on_envelope, self._on_media_error
            )
        if remember and self.shot and not self.read_only:
            from core.workspace import atomic_write_json

            state = self._load_state()
            state[self.shot] = {"audio": str(path) if path else None, "audio_offset_s": self.audio_offset_s}
            try:
                atomic_write_json(self._state_path(), state)
            except OSError:
                pass  # a preference only; the choice still holds for this session
        self.canvas.update()

    def _on_envelope(self, envelope: Envelope) -> None:
        self.media_loading -= 1
        self.canvas.envelope = envelope
        dub_frames = int(round(max(envelope.duration_s - self.audio_offset_s, 0.0) * self.canvas.fps))
        self.canvas.set_dub_frames(dub_frames)
        shot = self.canvas.shot_frames
        self.length_note = (
            f"The dub audio is {dub_frames / self.canvas.fps:.2f} s, the shot {shot / self.canvas.fps:.2f} s: "
            f"frames {shot}-{dub_frames - 1} of the dub loop the shot (Render dub > Length 'as long as the shot' "
            "cuts the audio instead)" if dub_frames > shot else "")
        self.preview_info.setText(self.length_note)
        self.canvas.update()

    def _on_media_error(self, exc: Exception) -> None:
        self.media_loading -= 1
        hint = getattr(exc, "hint", "")
        self.preview_info.setText(f"{exc}" + (f" ({hint})" if hint else ""))

    def _load_thumbnails(self, video: Path | None, n_frames: int) -> None:
        if video is None or not video.exists():
            return
        info_aspect = 1.0
        record = self.workspace.shot(self.shot) if self.workspace is not None and self.shot else {}
        if record.get("width") and record.get("height"):
            info_aspect = float(record["width"]) / float(record["height"])
        slot_w = (THUMB_H - 4) * info_aspect
        count = max(4, min(40, int(np.ceil(max(self.canvas.track_width(), 600) / slot_w))))
        self.media_loading += 1
        run_in_background(
            lambda: thumbnails(video, count, height=THUMB_H - 4, n_frames=n_frames or None),
            self._on_thumbnails,
            self._on_media_error,
        )

    def _on_thumbnails(self, result: tuple[list[int], list[np.ndarray]]) -> None:
        self.media_loading -= 1
        indices, images = result
        self.canvas.thumbs = [(i, to_qpixmap(img)) for i, img in zip(indices, images, strict=True)]
        self.canvas.update()

    # -- preview -------------------------------------------------------------------------------
    def preview_path(self) -> Path | None:
        if self.workspace is None or self.shot is None:
            return None
        if self.preview_render.isChecked() and self.render_video is not None:
            return self.render_video
        record = self.workspace.shot(self.shot)
        return self.workspace.root / record["video"] if record.get("video") else None

    def _forget_dub_frames(self, *_args: object) -> None:
        self._dub_frames.clear()
        if self.preview_dub.isChecked():
            self._update_preview()

    def show_dub_frame(self, frame: int, path: Path) -> None:
        """Show a previewed dub frame (a PNG from the engine) and keep it for the playhead's return."""
        self._dub_frames[int(frame)] = Path(path)
        self.preview_dub.setChecked(True)
        self._update_preview()

    def _update_preview(self) -> None:
        if self.preview_dub.isChecked():
            shown = self._dub_frames.get(self.canvas.playhead)
            if shown is None:
                self.preview.setPixmap(QPixmap())
                self.preview.setText("Press Preview frame to see the dub here")
                self.preview_info.setText(f"dub preview · frame {self.canvas.playhead} not rendered yet")
                return
            pixmap = QPixmap(str(shown))
            self.preview.setPixmap(pixmap.scaled(self.preview.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))
            self.preview_info.setText(f"dub preview frame {self.canvas.playhead}")
            return
        path = self.preview_path()
        if path is None:
            return
        try:
            cache = self._frames.get(str(path))
            if cache is None:
                cache = self._frames[str(path)] = FrameCache(path, max_side=480)
            frame = self.canvas.playhead
            if path != self.render_video:
                frame %= self.canvas.shot_frames  # past the shot's end the dub loops it
            image = cache.frame(frame)
        except MediaError as exc:
            self.preview.setText(str(exc))
            return
        pixmap = to_qpixmap(image)
        target = self.preview.size()
        self.preview.setPixmap(
            pixmap.scaled(
                target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
        )
        which = "render" if path == self.render_video else "source"
        values = (
            ", ".join(
                f"{e} {v:.2f}" for e, v in zip(EMOTIONS, self.values_at_playhead(), strict=True) if v > 0.005
            )
            or "neutral"
        )
        self.preview_info.setText(f"{which} frame {self.canvas.playhead} · {values}")

    def values_at_playhead(self) -> np.ndarray:
        """(7,) emotion label at the playhead, as the engine samples it."""
        if self.doc is None:
            return np.zeros(len(EMOTIONS))
        return self.doc.sample_all(self.canvas.playhead + 1)[-1]

    # -- presets -------------------------------------------------------------------------------
    def apply_preset_from_controls(self) -> None:
        if self.doc is None:
            return
        try:
            edit = cd.apply_preset(
                self.doc,
                self.preset_emotion.currentText(),
                self.preset_kind.currentText(),
                self.preset_start.value(),
                self.preset_end.value(),
                self.preset_peak.value(),
            )
        except ValueError as exc:
            self.notifier.warning("Preset not applied", str(exc), "set 'to' after 'from'")
            return
        self.undo_stack.push(CurveCommand(self.doc, edit))

    def push_edit(self, edit: cd.CurveEdit | None) -> None:
        """Push an edit made in code (scripts, tests) on the undo stack."""
        if edit is not None and self.doc is not None:
            self.undo_stack.push(CurveCommand(self.doc, edit))

    def undo_action(self) -> QAction:
        return self._undo_action

    def redo_action(self) -> QAction:
        return self._redo_action
