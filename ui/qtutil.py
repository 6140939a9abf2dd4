"""Small Qt helpers: numpy images to QImage/QPixmap, and running pure functions off the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap


def to_qimage(image: np.ndarray) -> QImage:
    """(h, w, 3) uint8 RGB -> a QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def to_qpixmap(image: np.ndarray) -> QPixmap:
    return QPixmap.fromImage(to_qimage(image))


class _Bridge(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], bridge: _Bridge) -> None:
        super().__init__()
        self.fn = fn
        self.bridge = bridge

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # noqa: BLE001 - delivered to the GUI thread as a failure
            self.bridge.failed.emit(exc)
        else:
            self.bridge.done.emit(result)


_live_bridges: set[_Bridge] = set()


def run_in_background(
    fn: Callable[[], Any], on_done: Callable[[Any], None], on_error: Callable[[Exception], None] | None = None
) -> None:
    """Run ``fn()`` on the global thread pool; ``on_done(result)`` / ``on_error(exc)`` run on the GUI
    thread (queued signal delivery)."""
    bridge = _Bridge()
    _live_bridges.add(bridge)

    def finish(callback: Callable[[Any], None] | None, value: Any) -> None:
        _live_bridges.discard(bridge)
        if callback is not None:
            callback(value)

    bridge.done.connect(lambda result: finish(on_done, result))
    bridge.failed.connect(lambda exc: finish(on_error, exc))
    QThreadPool.globalInstance().start(_Task(fn, bridge))
