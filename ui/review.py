"""Render and review: play a dub beside its source shot, with its audio where the platform allows, and
export the mp4.

Video frames are decoded by ffmpeg (``ui.media.iter_frames``) and shown at the video's frame rate.
Audio needs an audio backend: Qt Multimedia (in the full ``PySide6`` wheel, not in
``PySide6-Essentials``) or ``sounddevice`` with the system's PortAudio library. Without either the
view says so and plays the pictures silently; "Open in system player" plays the file with sound.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .media import MediaError, VideoInfo, decode_audio, iter_frames, probe_video
from .notify import Notifier
from .qtutil import to_qpixmap

AUDIO_MISSING = (
    "Audio playback is not available here: it needs Qt Multimedia (install the full PySide6 "
    "instead of PySide6-Essentials) or the PortAudio library for sounddevice "
    "(apt install libportaudio2). Pictures play silently; use “Open in system player” to hear it."
)


class AudioOut:
    """Plays one file's audio from a time offset; ``position_s()`` is the playback clock.

    Backends, in order: Qt Multimedia, sounddevice (PortAudio), none (``available`` is False).
    """

    def __init__(self) -> None:
        self.backend = "none"
        self._player: Any = None
        self._sd: Any = None
        self._samples: np.ndarray | None = None
        self._rate = 44100
        self._started_at = 0.0
        self._start_s = 0.0
        self._path: Path | None = None
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer

            self._player = QMediaPlayer()
            self._output = QAudioOutput()
            self._player.setAudioOutput(self._output)
            self.backend = "qtmultimedia"
            return
        except ImportError:
            pass
        try:
            import sounddevice

            sounddevice.query_devices(kind="output")
            self._sd = sounddevice
            self.backend = "sounddevice"
        except (ImportError, OSError, ValueError, RuntimeError):
            # No PortAudio library, or no output device (e.g. offscreen CI): no audio.
            self.backend = "none"

    @property
    def available(self) -> bool:
        return self.backend != "none"

    def load(self, path: Path) -> None:
        self._path = path
        self._samples = None
        if self.backend == "qtmultimedia":
            self._player.setSource(QUrl.fromLocalFile(str(path)))

    def play(self, start_s: float) -> None:
        self._start_s, self._started_at = start_s, time.monotonic()
        if self.backend == "qtmultimedia":
            self._player.setPosition(int(start_s * 1000))
            self._player.play()
        elif self.backend == "sounddevice" and self._path is not None:
            if self._samples is None:
                try:
                    self._samples, self._rate = decode_audio(self._path, 44100)
                except MediaError:
                    self._samples = np.zeros(0, np.float32)
            first = int(start_s * self._rate)
            if first < self._samples.shape[0]:
                self._sd.play(self._samples[first:], self._rate)

    def stop(self) -> None:
        if self.backend == "qtmultimedia":
            self._player.pause()
        elif self.backend == "sounddevice":
            self._sd.stop()

    def position_s(self) -> float | None:
        """Seconds into the file while playing (the audio clock), ``None`` without audio."""
        if self.backend == "qtmultimedia":
            return self._player.position() / 1000.0
        if self.backend == "sounddevice":
            return self._start_s + time.monotonic() - self._started_at
        return None


class _Stream:
    """Sequential frames of one video from a start frame (restarted on seek)."""

    def __init__(self, path: Path, max_side: int) -> None:
        self.path, self.max_side = path, max_side
        self.info: VideoInfo = probe_video(path)
        self._iter: Iterator[np.ndarray] | None = None
        self.position = -1
        self.last: np.ndarray | None = None

    def seek(self, frame: int) -> None:
        if self._iter is not None:
            self._iter.close()  # type: ignore[attr-defined]
        self._iter = iter_frames(self.path, max(frame, 0), self.max_side)
        self.position = frame - 1

    def frame(self, index: int) -> np.ndarray | None:
        """Frame ``index``; sequential reads are cheap, backward or far jumps reseek."""
        if self._iter is None or index <= self.position - 1 or index > self.position + 30:
            self.seek(index)
        while self.position < index:
            try:
                self.last = next(self._iter)  # type: ignore[arg-type]
            except StopIteration:
                break
            self.position += 1
        return self.last

    def close(self) -> None:
        if self._iter is not None:
            self._iter.close()  # type: ignore[attr-defined]
            self._iter = None


class ReviewView(QWidget):
    """Source and render side by side with a transport, audio status and export.

    Signals:
        frame_shown(int): a frame index was displayed.
    """

    frame_shown = Signal(int)

    def __init__(
        self,
        notifier: Notifier,
        choose_save_path: Callable[[str], str | None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.notifier = notifier
        self.choose_save_path = choose_save_path
        self.workspace: Any = None
        self.render_path: Path | None = None
        self.source_path: Path | None = None
        self._render: _Stream | None = None
        self._source: _Stream | None = None
        self.fps = 25.0
        self.n_frames = 0
        self.current = 0
        self.audio = AudioOut()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._play_started: tuple[float, int] | None = None

        self.render_list = QComboBox()
        self.render_list.setMinimumWidth(220)
        self.render_list.activated.connect(lambda i: self.open_render_named(self.render_list.itemText(i)))
        self.info = QLabel("No render yet: render a dub from the Timeline tab (Render dub…).")
        self.info.setWordWrap(True)
        self.source_view = self._pane("source shot")
        self.render_view = self._pane("render")
        self.source_caption = QLabel("Source")
        self.render_caption = QLabel("Render")
        for caption in (self.source_caption, self.render_caption):
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.toggle_play)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self._on_slider)
        self.frame_label = QLabel("0 / 0")
        self.export_button = QPushButton("Export mp4…")
        self.export_button.clicked.connect(lambda: self.export())
        self.system_button = QPushButton("Open in system player")
        self.system_button.clicked.connect(self.open_in_system_player)
        self.audio_note = QLabel("" if self.audio.available else AUDIO_MISSING)
        self.audio_note.setWordWrap(True)
        self.audio_note.setStyleSheet("color: #e0a040;")
        self.audio_note.setVisible(not self.audio.available)
        # The dub report: warnings, lip-sync, where each emotion came from, and the emotion plot.
        self.report_text = QLabel("")
        self.report_text.setWordWrap(True)
        self.report_text.setTextFormat(Qt.TextFormat.RichText)
        self.report_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.report_plot = QLabel("")
        self.report_plot.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.report_box = QWidget()
        report_layout = QHBoxLayout(self.report_box)
        report_layout.setContentsMargins(0, 0, 0, 0)
        report_layout.addWidget(self.report_text, 1)
        report_layout.addWidget(self.report_plot, 1)
        self.report_box.setVisible(False)

        top = QHBoxLayout()
        top.addWidget(QLabel("Render:"))
        top.addWidget(self.render_list)
        top.addWidget(self.info, 1)
        panes = QHBoxLayout()
        for view, caption in (
            (self.source_view, self.source_caption),
            (self.render_view, self.render_caption),
        ):
            box = QVBoxLayout()
            box.addWidget(caption)
            box.addWidget(view, 1)
            panes.addLayout(box, 1)
        transport = QHBoxLayout()
        transport.addWidget(self.play_button)
        transport.addWidget(self.slider, 1)
        transport.addWidget(self.frame_label)
        transport.addWidget(self.export_button)
        transport.addWidget(self.system_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(panes, 1)
        layout.addLayout(transport)
        layout.addWidget(self.report_box)
        layout.addWidget(self.audio_note)
        self._set_enabled(False)

    @staticmethod
    def _pane(text: str) -> QLabel:
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setMinimumSize(240, 200)
        label.setStyleSheet("background: #111; color: #777;")
        return label

    def _set_enabled(self, enabled: bool) -> None:
        for w in (self.play_button, self.slider, self.export_button, self.system_button):
            w.setEnabled(enabled)

    # -- content -------------------------------------------------------------------------------
    def set_workspace(self, workspace: Any) -> None:
        self.workspace = workspace
        self.refresh_list()

    def refresh_list(self) -> None:
        current = self.render_list.currentText()
        self.render_list.clear()
        if self.workspace is None:
            return
        renders = self.workspace.read_manifest().get("renders", {})
        self.render_list.addItems(sorted(renders))
        if current in renders:
            self.render_list.setCurrentText(current)

    def open_render_named(self, name: str) -> bool:
        if self.workspace is None or not name:
            return False
        record = self.workspace.read_manifest().get("renders", {}).get(name)
        if not record or not record.get("video"):
            self.notifier.warning(
                "Render not found",
                f"the render {name!r} has no video in the manifest",
                "render the dub again",
            )
            return False
        source = None
        shot = record.get("shot")
        if shot:
            shot_rec = self.workspace.read_manifest().get("shots", {}).get(shot, {})
            if shot_rec.get("video"):
                source = self.workspace.root / shot_rec["video"]
        self.render_list.setCurrentText(name)
        note = " — stand-in video, not an engine render" if record.get("stand_in") else ""
        frames = record.get("frames") if isinstance(record.get("frames"), int) else None
        opened = self.open(self.workspace.root / record["video"], source, f"{name}{note}", frames)
        self.show_report(self.workspace.root / record["report"] if record.get("report") else None)
        return opened

    def show_report(self, path: Path | None) -> None:
        """Show the dub's report (``report.json`` of its render): warnings first, then lip-sync and emotions."""
        import html
        import json

        try:
            report = json.loads(Path(path).read_text(encoding="utf-8")) if path else None
        except (OSError, ValueError):
            report = None
        if not isinstance(report, dict):
            self.report_box.setVisible(False)
            return
        lines = [f"<p style='color:#e0a040'><b>Warning:</b> {html.escape(str(w))}</p>"
                 for w in report.get("warnings") or []]
        sync = report.get("lipsync_proxy") or {}
        if "peak_corr" in sync:
            lines.append(f"<p>Lip-sync proxy (jaw opening against the audio): r = {float(sync['peak_corr']):.2f} "
                         f"at offset {sync.get('offset_frames', 0)} frames</p>")
        emotions = report.get("emotions") or {}
        if emotions:
            rows = "".join(f"<tr><td>{html.escape(e)}</td><td>{float(s.get('max', 0)):.2f}</td>"
                           f"<td>{html.escape(str(s.get('source', '')))}</td></tr>" for e, s in emotions.items())
            lines.append("<table cellspacing='6'><tr><th align='left'>emotion</th><th>max</th>"
                         f"<th align='left'>from</th></tr>{rows}</table>")
        else:
            lines.append("<p>Emotions: neutral throughout</p>")
        self.report_text.setText("".join(lines))
        plot = report.get("plot")
        pixmap = QPixmap(str(plot)) if plot and Path(plot).is_file() else QPixmap()
        self.report_plot.setPixmap(pixmap.scaledToHeight(220, Qt.TransformationMode.SmoothTransformation)
                                   if not pixmap.isNull() else pixmap)
        self.report_box.setVisible(True)

    def open(self, render: Path, source: Path | None, title: str = "", frames: int | None = None) -> bool:
        """Show ``render`` (and ``source`` beside it, when given); ``frames`` is its frame count when
        known (the container's duration can include a longer audio track)."""
        self.stop()
        for stream in (self._render, self._source):
            if stream is not None:
                stream.close()
        try:
            self._render = _Stream(Path(render), 480)
            self._source = (
                _Stream(Path(source), 480) if source is not None and Path(source).exists() else None
            )
        except MediaError as exc:
            self.notifier.error("Cannot play the render", str(exc), exc.hint)
            return False
        self.render_path, self.source_path = Path(render), source
        self.fps = self._render.info.fps
        self.n_frames = max(frames or self._render.info.frames, 1)
        self.audio.load(Path(render))
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.n_frames - 1)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        info = self._render.info
        self.info.setText(
            f"{title or Path(render).name}: {info.width}x{info.height}, {info.fps:g} fps, "
            f"{info.duration_s:.2f} s" + ("" if info.audio_codec else ", no audio track")
        )
        self.source_caption.setText("Source" if self._source else "Source (not found)")
        self._set_enabled(True)
        self.show_frame(0)
        return True

    # -- playback ------------------------------------------------------------------------------
    def show_frame(self, index: int) -> None:
        index = int(min(max(index, 0), self.n_frames - 1))
        self.current = index
        for stream, view in ((self._render, self.render_view), (self._source, self.source_view)):
            if stream is None:
                continue
            image = stream.frame(index)
            if image is not None:
                view.setPixmap(
                    to_qpixmap(image).scaled(
                        view.size(),
                        Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation,
                    )
                )
        self.frame_label.setText(f"{index + 1} / {self.n_frames}")
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self.frame_shown.emit(index)

    def _on_slider(self, value: int) -> None:
        was_playing = self.is_playing
        self.stop()
        self.show_frame(value)
        if was_playing:
            self.play()

    @property
    def is_playing(self) -> bool:
        return self._timer.isActive()

    def play(self) -> None:
        if self._render is None:
            return
        if self.current >= self.n_frames - 1:
            self.show_frame(0)
        self._play_started = (time.monotonic(), self.current)
        self.audio.play(self.current / self.fps)
        self._timer.start(max(int(1000 / self.fps / 2), 5))  # tick at twice the frame rate, show by clock
        self.play_button.setText("Pause")

    def stop(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.audio.stop()
        self.play_button.setText("Play")

    def toggle_play(self) -> None:
        self.stop() if self.is_playing else self.play()

    def _tick(self) -> None:
        clock = self.audio.position_s()
        if clock is None and self._play_started is not None:
            t0, f0 = self._play_started
            clock = f0 / self.fps + time.monotonic() - t0
        target = int((clock or 0.0) * self.fps)
        if target >= self.n_frames:
            self.show_frame(self.n_frames - 1)
            self.stop()
            return
        if target != self.current:
            self.show_frame(target)

    # -- export --------------------------------------------------------------------------------
    def export(self, target: str | Path | None = None) -> Path | None:
        """Copy the render's mp4 to ``target`` (asked for when ``None``), atomically."""
        if self.render_path is None:
            return None
        if target is None:
            if self.choose_save_path is None:
                return None
            chosen = self.choose_save_path(self.render_path.name)
            if not chosen:
                return None
            target = chosen
        target = Path(target)
        if target.suffix.lower() != ".mp4":
            target = target.with_suffix(".mp4")
        from core.workspace import atomic_path

        try:
            with atomic_path(target) as tmp:
                shutil.copyfile(self.render_path, tmp)
        except OSError as exc:
            self.notifier.error(
                "Export failed",
                f"cannot write {target}: {exc.strerror or exc}",
                "choose a folder you can write to with enough free space",
            )
            return None
        return target

    def open_in_system_player(self) -> None:
        if self.render_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.render_path)))
