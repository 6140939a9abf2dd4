"""``emodub-studio``: the desktop authoring app (placeholder window until the app issue lands)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

COMING = ("emodub studio is coming: workspace browser, job queue, emotion-curve timeline editor, "
          "training view and render review. Until then, use the `emodub` command line or the "
          "Blender add-on.")


def build_window() -> object:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel, QMainWindow

    window = QMainWindow()
    window.setWindowTitle("emodub studio")
    label = QLabel(COMING)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setMargin(24)
    window.setCentralWidget(label)
    window.resize(640, 360)
    return window


def main(argv: Sequence[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication(list(argv if argv is not None else sys.argv))
    window = build_window()
    window.show()  # type: ignore[attr-defined]
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
