"""Preview: a few frames of a dub, rendered exactly as the dub renders them, without the whole dub.

:func:`preview_frames` runs :func:`core.dub.pipeline.prepare_dub` (models, the a2e's prediction over the whole
audio: what the dub does first) and then :func:`~core.dub.pipeline.render_chunk` and
:func:`~core.dub.pipeline.paste_chunk` for the asked frames only, so a previewed frame is the dub's frame before
encoding. Nothing is written to the workspace but the PNGs (``previews/<shot>/``); no render is recorded.

A process that previews again keeps what it set up (:data:`SESSIONS`): the same shot, audio, curves and models
reuse the whole set-up (only the asked frames are rendered); new curves or audio make a new set-up (the models
are read again from disk, the a2e runs again), which is still fast in a process that already has Python and
torch loaded. That is what the warm engine (``emodub worker --serve``) is for: a front-end keeps one running while
the editor works and sends it ``preview`` jobs.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.workspace import Workspace

MAX_SESSIONS = 2  # set-ups kept warm (each holds a shot's crops and two models)


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def _models_key(ws: Workspace, actor: str, config: Any) -> tuple[Any, ...]:
    """The trained models' checkpoint files as they are now (a retrained model is loaded again)."""
    keys: list[Any] = []
    for name in (config.a2e_name, config.renderer_name):
        folder = ws.model_dir(actor, name)
        keys += [_file_key(f) for f in sorted(folder.glob("*.pt"))]
    return tuple(keys)


SESSIONS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def session_key(ws: Workspace, actor: str, shot: str, audio: Path, emotions: Any, config: Any, device: str,
                audio_offset_s: float, audio_duration_s: float | None, face: int | None) -> tuple[Any, ...]:
    curves = emotions.to_json() if hasattr(emotions, "to_json") else emotions
    curves_hash = hashlib.sha256(json.dumps(curves, sort_keys=True, default=str).encode()).hexdigest()
    return (str(ws.root), actor, shot, _file_key(audio), curves_hash, json.dumps(asdict(config), sort_keys=True),
            device, float(audio_offset_s), audio_duration_s, face, _models_key(ws, actor, config),
            _file_key(ws.shot_dir(shot) / "video.mp4"))


@dataclass
class PreviewResult:
    frames: list[np.ndarray]  # plate frames with the dub pasted in (the dub's frames before encoding)
    indices: list[int]  # their output frame numbers
    n_out: int  # frames of the whole dub
    warm: bool  # the set-up was reused (models and prediction already in memory)
    emotion_sources: Any


def preview_frames(ws: Workspace, actor: str, shot: str, audio: Path, emotions: Any, frames: Sequence[int],
                   config: Any, device: str = "cpu", audio_offset_s: float = 0.0,
                   audio_duration_s: float | None = None, face: int | None = None,
                   progress: Callable[[str, int, int, str], None] | None = None) -> PreviewResult:
    """Output frames ``frames`` of the dub these arguments describe (clipped to the dub's length).

    Raises:
        ValueError: no asked frame lies within the dub.
    """
    from .pipeline import open_plate, paste_chunk, prepare_dub, render_chunk

    report = progress or (lambda *a: None)
    key = session_key(ws, actor, shot, audio, emotions, config, device, audio_offset_s, audio_duration_s, face)
    setup = SESSIONS.get(key)
    warm = setup is not None
    if setup is None:
        setup = prepare_dub(ws, actor, shot, audio, emotions, audio_offset_s, audio_duration_s, config, device, report,
                            None, face)
        SESSIONS[key] = setup
        while len(SESSIONS) > MAX_SESSIONS:
            SESSIONS.popitem(last=False)
    else:
        SESSIONS.move_to_end(key)
    wanted = sorted({int(f) for f in frames if 0 <= int(f) < setup.n_out})
    if not wanted:
        raise ValueError(f"no asked frame lies within the dub's {setup.n_out} frames (0-{setup.n_out - 1})")
    reader, plate = open_plate(setup, seek=True)
    out: list[np.ndarray] = []
    try:
        for start in range(0, len(wanted), config.chunk):
            idx = np.asarray(wanted[start:start + config.chunk])
            chunk = render_chunk(setup, idx)  # without autograd, as in the dub
            out += [frame for frame, _ in paste_chunk(setup, chunk, reader, plate)]
            report("preview", min(len(wanted), start + config.chunk), len(wanted), "")
    finally:
        reader.close()
    return PreviewResult(out, wanted, setup.n_out, warm, setup.emotion_sources)
