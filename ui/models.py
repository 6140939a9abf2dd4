"""Qt item models: the workspace tree and the job queue table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from core.expression.emotions import emotion_vector, format_emotion

from .jobstate import CANCELLING, DONE, ERROR, INTERRUPTED, RUNNING, JobQueue, JobRecord

Index = QModelIndex | QPersistentModelIndex

# Custom roles shared by the views.
KIND_ROLE = Qt.ItemDataRole.UserRole + 1  # node kind: section, actor, group, clip, model, shot, render
KEY_ROLE = Qt.ItemDataRole.UserRole + 2  # tuple identifying the node, e.g. ("clip", actor, clip)
RECORD_ROLE = Qt.ItemDataRole.UserRole + 3  # the manifest record (dict) of the node
FRACTION_ROLE = Qt.ItemDataRole.UserRole + 4  # job progress in [0, 1] or None
JOB_ID_ROLE = Qt.ItemDataRole.UserRole + 5


def column_header(headers: Sequence[str], section: int, orientation: Qt.Orientation, role: int) -> Any:
    """The horizontal header text of ``section`` (both item models label their columns this way)."""
    if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
            and 0 <= section < len(headers):
        return headers[section]
    return None


@dataclass(eq=False)
class Node:
    kind: str
    name: str
    detail: str = ""
    key: tuple[str, ...] = ()
    record: dict[str, Any] = field(default_factory=dict)
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    def add(self, child: Node) -> Node:
        child.parent = self
        self.children.append(child)
        return child

    def row(self) -> int:
        return 0 if self.parent is None else self.parent.children.index(self)


def emotion_label(record: dict[str, Any]) -> str:
    """A clip's emotion label for display: ``happy:0.66`` or ``neutral``."""
    try:
        return format_emotion(emotion_vector(record.get("emotion") or {}))
    except ValueError:
        return "invalid label"


def _clip_detail(record: dict[str, Any]) -> str:
    parts = [emotion_label(record)]
    if record.get("frames") and record.get("fps"):
        parts.append(f"{record['frames']} frames @ {record['fps']:g} fps")
    stages = [name for name, done in (record.get("stages") or {}).items() if done]
    if stages:
        parts.append("+".join(stages))
    return " · ".join(parts)


def _shot_detail(record: dict[str, Any]) -> str:
    parts = []
    if record.get("frames") and record.get("fps"):
        parts.append(f"{record['frames']} frames @ {record['fps']:g} fps")
    if record.get("width") and record.get("height"):
        parts.append(f"{record['width']}x{record['height']}")
    if not record.get("audio"):
        parts.append("no audio")
    return " · ".join(parts)


def _model_detail(record: dict[str, Any]) -> str:
    parts = []
    for key in ("steps", "iterations", "final_loss", "status"):
        if key in record:
            value = record[key]
            parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " · ".join(parts)


def _render_detail(record: dict[str, Any]) -> str:
    parts = [str(record[k]) for k in ("shot", "actor") if record.get(k)]
    if record.get("frames"):
        parts.append(f"{record['frames']} frames")
    return " · ".join(parts)


def build_tree(manifest: dict[str, Any]) -> Node:
    """The browser's tree: Actors (clips, models), Shots, Renders."""
    root = Node("root", "")
    actors = root.add(Node("section", "Actors", key=("section", "actors")))
    for actor, actor_rec in sorted((manifest.get("actors") or {}).items()):
        clips_rec = actor_rec.get("clips") or {}
        models_rec = actor_rec.get("models") or {}
        actor_node = actors.add(
            Node(
                "actor",
                actor,
                f"{len(clips_rec)} clips, {len(models_rec)} models",
                key=("actor", actor),
                record=actor_rec,
            )
        )
        clips = actor_node.add(Node("group", "Clips", key=("clips", actor)))
        for clip, clip_rec in sorted(clips_rec.items()):
            clips.add(Node("clip", clip, _clip_detail(clip_rec), key=("clip", actor, clip), record=clip_rec))
        models = actor_node.add(Node("group", "Trained models", key=("models", actor)))
        for model, model_rec in sorted(models_rec.items()):
            models.add(
                Node("model", model, _model_detail(model_rec), key=("model", actor, model), record=model_rec)
            )
    shots = root.add(Node("section", "Shots", key=("section", "shots")))
    for shot, shot_rec in sorted((manifest.get("shots") or {}).items()):
        shots.add(Node("shot", shot, _shot_detail(shot_rec), key=("shot", shot), record=shot_rec))
    renders = root.add(Node("section", "Renders", key=("section", "renders")))
    for render, render_rec in sorted((manifest.get("renders") or {}).items()):
        renders.add(
            Node("render", render, _render_detail(render_rec), key=("render", render), record=render_rec)
        )
    for section in root.children:
        section.detail = str(len(section.children))
    return root


class WorkspaceModel(QAbstractItemModel):
    """The workspace manifest as a two-column tree (name, details); read-only.

    Call :meth:`set_manifest` after the manifest changed (it resets the model).
    """

    HEADERS = ("Name", "Details")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._root = Node("root", "")

    def set_manifest(self, manifest: dict[str, Any] | None) -> None:
        """Show ``manifest`` (``None``: no workspace, an empty tree)."""
        self.beginResetModel()
        self._root = build_tree(manifest) if manifest is not None else Node("root", "")
        self.endResetModel()

    def _node(self, index: Index) -> Node:
        if index.isValid():
            node = index.internalPointer()
            if isinstance(node, Node):
                return node
        return self._root

    # -- QAbstractItemModel --------------------------------------------------------------------
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        node = self._node(parent)
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        node = self._node(index)
        parent = node.parent
        if parent is None or parent is self._root:
            return QModelIndex()
        return self.createIndex(parent.row(), 0, parent)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(self.HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        node = self._node(index)
        if role == Qt.ItemDataRole.DisplayRole:
            return node.name if index.column() == 0 else node.detail
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{node.name}: {node.detail}" if node.detail else node.name
        if role == KIND_ROLE:
            return node.kind
        if role == KEY_ROLE:
            return node.key
        if role == RECORD_ROLE:
            return node.record
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return column_header(self.HEADERS, section, orientation, role)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # -- helpers -------------------------------------------------------------------------------
    def find(self, key: tuple[str, ...]) -> QModelIndex:
        """Index (column 0) of the node with ``key``, or an invalid index."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.key == key and node is not self._root:
                return self.createIndex(node.row(), 0, node)
            stack.extend(node.children)
        return QModelIndex()


class JobListModel(QAbstractTableModel):
    """The job queue as a table: Job, State, Progress, Status. Rows follow the queue's order."""

    HEADERS = ("Job", "State", "Progress", "Status")

    def __init__(self, queue: JobQueue, parent: Any = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self._ids: list[str] = [r.id for r in queue.records()]
        queue.subscribe(self._on_change, first=True)

    def _on_change(self, record: JobRecord, what: str) -> None:
        if what == "added":
            row = len(self._ids)
            self.beginInsertRows(QModelIndex(), row, row)
            self._ids.append(record.id)
            self.endInsertRows()
        elif what == "removed":
            row = self._ids.index(record.id)
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._ids[row]
            self.endRemoveRows()
        else:
            row = self._ids.index(record.id)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))

    def record(self, row: int) -> JobRecord:
        return self.queue[self._ids[row]]

    def row_of(self, job_id: str) -> int:
        return self._ids.index(job_id)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._ids):
            return None
        record = self.record(index.row())
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return record.title
            if column == 1:
                return record.state
            if column == 2:
                fraction = record.fraction
                return "" if fraction is None else f"{round(100 * fraction)}%"
            return record.status_text()
        if role == Qt.ItemDataRole.ToolTipRole:
            if record.state == ERROR and record.error_hint:
                return f"{record.error_message}\nWhat to do: {record.error_hint}"
            return f"{record.kind} {record.id}"
        if role == Qt.ItemDataRole.ForegroundRole and column == 1:
            from PySide6.QtGui import QColor

            colours = {
                DONE: "#2e7d32",
                ERROR: "#c62828",
                INTERRUPTED: "#ef6c00",
                RUNNING: "#1565c0",
                CANCELLING: "#6a1b9a",
            }
            return QColor(colours[record.state]) if record.state in colours else None
        if role == FRACTION_ROLE:
            return record.fraction
        if role == JOB_ID_ROLE:
            return record.id
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        return column_header(self.HEADERS, section, orientation, role)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren
