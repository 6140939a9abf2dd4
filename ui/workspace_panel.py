"""The workspace browser: actors (clips with emotion labels, trained models), shots and renders."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Signal
from PySide6.QtWidgets import QHBoxLayout, QHeaderView, QLabel, QPushButton, QTreeView, QVBoxLayout, QWidget

from .models import KEY_ROLE, KIND_ROLE, WorkspaceModel


class WorkspacePanel(QWidget):
    """Tree of the open workspace with buttons for the common actions.

    Signals:
        activated(tuple): a node was double-clicked (its key, e.g. ``("shot", "scene12")``).
        import_requested(), label_requested(tuple), create_requested(), open_requested()
    """

    activated = Signal(tuple)
    import_requested = Signal()
    label_requested = Signal(tuple)
    create_requested = Signal()
    open_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = WorkspaceModel(self)
        self.title = QLabel("No workspace open")
        self.title.setWordWrap(True)
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.doubleClicked.connect(self._on_double_click)
        self.tree.selectionModel().currentChanged.connect(lambda *_: self._sync())
        self.new_button = QPushButton("New…")
        self.new_button.clicked.connect(self.create_requested.emit)
        self.open_button = QPushButton("Open…")
        self.open_button.clicked.connect(self.open_requested.emit)
        self.import_button = QPushButton("Import footage…")
        self.import_button.clicked.connect(self.import_requested.emit)
        self.label_button = QPushButton("Label emotion…")
        self.label_button.clicked.connect(lambda: self.label_requested.emit(self.current_key()))
        row1 = QHBoxLayout()
        row1.addWidget(self.new_button)
        row1.addWidget(self.open_button)
        row2 = QHBoxLayout()
        row2.addWidget(self.import_button)
        row2.addWidget(self.label_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addLayout(row1)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row2)
        self.read_only = False
        self._sync()

    def set_workspace(self, root: Any, manifest: dict[str, Any] | None, read_only: bool = False) -> None:
        self.read_only = read_only
        self.title.setText(
            "No workspace open"
            if root is None
            else f"<b>{root}</b>" + (" <span style='color:#e0a040'>(read-only)</span>" if read_only else "")
        )
        self.refresh(manifest)

    def refresh(self, manifest: dict[str, Any] | None) -> None:
        expanded = self._expanded_keys()
        self.model.set_manifest(manifest)
        self.tree.expandToDepth(0)
        for key in expanded:
            index = self.model.find(key)
            if index.isValid():
                self.tree.expand(index)
        self._sync()

    def _expanded_keys(self) -> list[tuple]:
        keys = []
        stack = [QModelIndex()]
        while stack:
            parent = stack.pop()
            for row in range(self.model.rowCount(parent)):
                index = self.model.index(row, 0, parent)
                if self.tree.isExpanded(index):
                    keys.append(index.data(KEY_ROLE))
                    stack.append(index)
        return keys

    def current_key(self) -> tuple:
        index = self.tree.currentIndex()
        return tuple(index.siblingAtColumn(0).data(KEY_ROLE) or ()) if index.isValid() else ()

    def select(self, key: tuple) -> None:
        index = self.model.find(key)
        if index.isValid():
            self.tree.setCurrentIndex(index)

    def _on_double_click(self, index: QModelIndex) -> None:
        key = index.siblingAtColumn(0).data(KEY_ROLE)
        if key:
            self.activated.emit(tuple(key))

    def _sync(self) -> None:
        index = self.tree.currentIndex()
        kind = index.siblingAtColumn(0).data(KIND_ROLE) if index.isValid() else None
        has_ws = self.model.rowCount() > 0
        self.import_button.setEnabled(has_ws and not self.read_only)
        self.label_button.setEnabled(kind == "clip" and not self.read_only)
