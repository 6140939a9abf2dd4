"""The job queue view: a table with progress bars, the selected job's log, its error and hint, and
Cancel / Retry / Remove buttons. A batch (``batch.dub``) is one job; its items are listed under it, each with
its status, time and output or error (:mod:`ui.batchview`)."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .batchview import batch_items, batch_plan_path
from .engine import JobManager
from .jobstate import CANCELLED, ERROR, INTERRUPTED, QUEUED, RUNNING, JobRecord
from .models import FRACTION_ROLE, JobListModel


class ProgressDelegate(QStyledItemDelegate):
    """Paints the Progress column as a progress bar (busy indicator when the total is unknown)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        fraction = index.data(FRACTION_ROLE)
        state = index.siblingAtColumn(1).data()
        if fraction is None and state not in (RUNNING, "cancelling"):
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum = 0, 0 if fraction is None else 1000
        bar.progress = 0 if fraction is None else int(round(fraction * 1000))
        bar.text = "" if fraction is None else f"{round(100 * fraction)}%"
        if fraction is not None and state in (ERROR, CANCELLED, INTERRUPTED):
            bar.text = f"{state} at {round(100 * fraction)}%"  # where it stopped, never a full bar
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        # Qt 6 draws a vertical bar unless State_Horizontal is set.
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        style = option.widget.style() if option.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class JobsPanel(QWidget):
    """Shows a :class:`~ui.engine.JobManager`'s queue."""

    def __init__(self, manager: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.model = JobListModel(manager.queue, self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(2, ProgressDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(2, 160)
        header.setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())

        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.retry_button = QPushButton("Run again")
        self.retry_button.clicked.connect(self.retry_selected)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(lambda: self.manager.queue.clear_finished())
        buttons = QHBoxLayout()
        for b in (self.cancel_button, self.retry_button, self.remove_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setTextFormat(Qt.TextFormat.RichText)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setVisible(False)
        self.items_table = QTableWidget(0, 4)
        self.items_table.setHorizontalHeaderLabels(["Item", "Status", "Time", "Output or error"])
        self.items_table.verticalHeader().setVisible(False)
        self.items_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.items_table.horizontalHeader().setStretchLastSection(True)
        self.items_table.setVisible(False)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setPlaceholderText("the selected job's log")

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.table, 1)
        lv.addLayout(buttons)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.error_label)
        rv.addWidget(self.items_table, 1)
        rv.addWidget(self.log_view, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        manager.job_added.connect(self._on_added)
        manager.job_changed.connect(self._on_changed)
        manager.job_removed.connect(lambda _id: self._show_selected())
        self._show_selected()

    # -- selection -----------------------------------------------------------------------------
    def selected(self) -> JobRecord | None:
        index = self.table.currentIndex()
        if not index.isValid() or index.row() >= self.model.rowCount():
            return None
        return self.model.record(index.row())

    def select(self, job_id: str) -> None:
        self.table.selectRow(self.model.row_of(job_id))
        self.table.setCurrentIndex(self.model.index(self.model.row_of(job_id), 0))
        self._show_selected()

    def _on_added(self, job_id: str) -> None:
        self.select(job_id)  # follow the newest job

    def _on_changed(self, job_id: str) -> None:
        record = self.selected()
        if record is not None and record.id == job_id:
            self._show_selected(keep_scroll=True)

    def _show_selected(self, keep_scroll: bool = False) -> None:
        record = self.selected()
        self.cancel_button.setEnabled(
            record is not None
            and (record.is_active or record.state == QUEUED)
            and record.state != "cancelling"
        )
        self.retry_button.setEnabled(record is not None and record.is_finished)
        self.remove_button.setEnabled(record is not None and record.is_finished)
        if record is None:
            self.error_label.setVisible(False)
            self.items_table.setVisible(False)
            self.log_view.setPlainText("")
            return
        self._show_items(record)
        if record.state == ERROR:
            text = f"<b style='color:#c62828'>{html.escape(record.error_message)}</b>"
            if record.is_bug:  # only then: a user's mistake is not emodub's bug
                text += "<br>This is a bug in emodub: please report it with the log below."
            elif record.error_hint:
                text += f"<br>What to do: {html.escape(record.error_hint)}"
            self.error_label.setText(text)
            self.error_label.setVisible(True)
        else:
            self.error_label.setVisible(False)
        lines = list(record.log)
        if record.traceback:
            lines += ["", record.traceback]
        text = "\n".join(lines)
        if self.log_view.toPlainText() != text:
            bar = self.log_view.verticalScrollBar()
            at_end = bar.value() >= bar.maximum() - 2
            self.log_view.setPlainText(text)
            if at_end or not keep_scroll:
                bar.setValue(bar.maximum())

    def _show_items(self, record: JobRecord) -> None:
        plan = batch_plan_path(record.artifacts) if record.kind == "batch.dub" else None
        self.items_table.setVisible(plan is not None)
        if plan is None:
            return
        rows = batch_items(plan, job_finished=record.is_finished)
        self.items_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            status = row.status if row.fraction is None else f"{row.status} {round(100 * row.fraction)}%"
            seconds = f"{row.seconds:.1f} s" if row.seconds is not None else ""
            for c, text in enumerate((row.id, status, seconds, row.detail)):
                cell = self.items_table.item(r, c)
                if cell is None:
                    self.items_table.setItem(r, c, QTableWidgetItem(text))
                elif cell.text() != text:
                    cell.setText(text)
            self.items_table.item(r, 3).setToolTip(row.detail)

    # -- actions -------------------------------------------------------------------------------
    def cancel_selected(self) -> None:
        record = self.selected()
        if record is not None:
            self.manager.cancel(record.id)

    def retry_selected(self) -> Any:
        record = self.selected()
        if record is not None and record.is_finished:
            return self.manager.retry(record.id)
        return None

    def remove_selected(self) -> None:
        record = self.selected()
        if record is not None and record.is_finished:
            self.manager.remove(record.id)
