"""How the app tells the user about problems: an injectable notifier.

Widgets never call ``QMessageBox`` directly; they call ``notifier.error(...)``. The app uses
:class:`QtNotifier` (modal message boxes); tests and the screenshot script use
:class:`RecordingNotifier`, which records the messages and answers questions with preset replies, so no
modal dialog ever blocks an offscreen run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Notifier(Protocol):
    def error(self, title: str, message: str, hint: str = "") -> None: ...
    def warning(self, title: str, message: str, hint: str = "") -> None: ...
    def info(self, title: str, message: str) -> None: ...
    def confirm(self, title: str, message: str) -> bool: ...


def _compose(message: str, hint: str) -> str:
    return f"{message}\n\nWhat to do: {hint}" if hint else message


class QtNotifier:
    """Message boxes parented to ``parent`` (a QWidget or ``None``)."""

    def __init__(self, parent: object = None) -> None:
        self.parent = parent

    def error(self, title: str, message: str, hint: str = "") -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(self.parent, title, _compose(message, hint))

    def warning(self, title: str, message: str, hint: str = "") -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.warning(self.parent, title, _compose(message, hint))

    def info(self, title: str, message: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.information(self.parent, title, message)

    def confirm(self, title: str, message: str) -> bool:
        from PySide6.QtWidgets import QMessageBox

        answer = QMessageBox.question(
            self.parent, title, message, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        )
        return answer == QMessageBox.StandardButton.Yes


@dataclass
class Message:
    level: str
    title: str
    message: str
    hint: str = ""

    @property
    def text(self) -> str:
        return _compose(self.message, self.hint)


@dataclass
class RecordingNotifier:
    """Records messages instead of showing them; ``confirm`` answers ``answer``."""

    answer: bool = True
    messages: list[Message] = field(default_factory=list)

    def error(self, title: str, message: str, hint: str = "") -> None:
        self.messages.append(Message("error", title, message, hint))

    def warning(self, title: str, message: str, hint: str = "") -> None:
        self.messages.append(Message("warning", title, message, hint))

    def info(self, title: str, message: str) -> None:
        self.messages.append(Message("info", title, message))

    def confirm(self, title: str, message: str) -> bool:
        self.messages.append(Message("confirm", title, message))
        return self.answer

    def of_level(self, level: str) -> list[Message]:
        return [m for m in self.messages if m.level == level]
