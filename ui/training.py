"""The training view: live loss curves (pyqtgraph) and the latest sample image of a training job.

It follows the most recent training job (kinds ``train.*``; ``selftest`` too, which fits a tiny
network and reports ``loss`` in its progress messages). Feed it events with :meth:`TrainingView.feed`.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from core.jobs import protocol as P

from .losses import LossHistory, parse_loss_message

PALETTE = ("#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176", "#90a4ae", "#f06292")


def is_training_kind(kind: str) -> bool:
    return kind.startswith("train.") or kind == "selftest"


class TrainingView(QWidget):
    """Loss curves and sample images of one training job at a time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.job_id: str | None = None
        self.history = LossHistory()
        self.chart_stage = ""  # the step whose losses the chart shows
        self._last_stage = ""
        self.title_text = ""
        self.title = QLabel(
            "No training job yet. Start one with Jobs ▸ Train… " "(or run the engine self-test)."
        )
        self.title.setWordWrap(True)
        self.status = QLabel("")
        self.plot = pg.PlotWidget(background="#1e1f22")
        self.plot.setLogMode(y=True)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss (log)")
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.image = QLabel("sample images appear here while a model trains")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setWordWrap(True)
        self.image.setMinimumSize(220, 220)
        self.image.setStyleSheet("background: #111; color: #777;")
        self.image_caption = QLabel("")
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.image, 1)
        rv.addWidget(self.image_caption)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.plot)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.status)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(splitter, 1)

    def follow(self, job_id: str, title: str) -> None:
        """Show job ``job_id`` from now on (clears the plot)."""
        self.job_id = job_id
        self._clear_chart()
        self.title_text = f"<b>{title}</b> ({job_id})"
        self.title.setText(self.title_text)
        self.status.setText("")
        self.image.setPixmap(QPixmap())
        self.image.setText("sample images appear here while a model trains")

    def feed(self, job_id: str, event: P.Event) -> None:
        """Take an event of the followed job (others are ignored)."""
        if job_id != self.job_id:
            return
        if isinstance(event, P.Progress):
            self.status.setText(f"{event.stage} {event.done}/{event.total}")
            self._last_stage = event.stage
        # A job of several steps (train actor: tracking, audio-to-expression, renderer) gets a chart per step:
        # a step's losses replace the previous step's (other names, other scales).
        # (the stage is compared first: a message is parsed here only when a new step may have begun)
        if self._last_stage != self.chart_stage and (
                (isinstance(event, P.Progress) and parse_loss_message(event.message))
                or (isinstance(event, P.Artifact) and event.kind == "losses")):
            self._clear_chart()
            self.chart_stage = self._last_stage
            self.title.setText(f"{self.title_text}: {self.chart_stage}")
        try:
            changed = self.history.feed(event)
        except (OSError, ValueError) as exc:
            self.status.setText(f"could not read {getattr(event, 'path', '')}: {exc}")
            return
        if not changed:
            return
        if isinstance(event, P.Artifact) and event.kind == "image":
            self._show_image(event.path)
        else:
            self._redraw()
        if isinstance(event, P.Done | P.Error | P.Cancelled):
            self.status.setText(event.name)

    def _clear_chart(self) -> None:
        self.history = LossHistory()
        for item in self.curves.values():
            self.plot.removeItem(item)
        self.legend.clear()
        self.curves.clear()
        self.chart_stage = ""

    def _redraw(self) -> None:
        for i, (name, (steps, values)) in enumerate(sorted(self.history.series.items())):
            positive = [(s, v) for s, v in zip(steps, values, strict=True) if v > 0]  # log axis
            xs = [p[0] for p in positive]
            ys = [p[1] for p in positive]
            item = self.curves.get(name)
            if item is None:
                item = self.plot.plot(xs, ys, name=name, pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=2))
                self.curves[name] = item
            else:
                item.setData(xs, ys)

    def _show_image(self, path: str) -> None:
        pixmap = QPixmap(path)
        if pixmap.isNull():
            self.image.setText(f"cannot show {Path(path).name}")
            return
        self.image.setPixmap(
            pixmap.scaled(
                self.image.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        self.image_caption.setText(Path(path).name)

    def series(self) -> dict[str, tuple[list[float], list[float]]]:
        """What the plot shows, per loss name: (steps, values) as drawn."""
        out = {}
        for name, item in self.curves.items():
            xs, ys = item.getData()
            out[name] = ([] if xs is None else list(xs), [] if ys is None else list(ys))
        return out
