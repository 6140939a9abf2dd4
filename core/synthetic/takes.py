"""A small synthetic shoot as a camera hands it over: the actor's takes as movie files by emotion, a shot to dub
and a dub audio track. The workflow tests (app and Blender), the screenshots and ``bench/progress.py`` start from
it, then do what an editor does. Standard library only at import (the Blender test imports it beside ``bpy``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Clips of the synth corpus below (core.synthetic.corpus.clip_name): the takes by emotion, the shot, the audio.
TAKES = {"neutral": ("s000_neutral",), "happy": ("s000_happy_3", "s001_happy_3")}
SHOT_CLIP, AUDIO_CLIP = "s001_neutral", "s001_happy_3"


@dataclass(frozen=True)
class CameraTakes:
    """``takes``: emotion -> movie files named as the camera named them; ``shot_video``; ``dub_audio``."""

    takes: dict[str, list[Path]]
    shot_video: Path
    dub_audio: Path


def synth_params(corpus: Path, size: int, seed: int = 0) -> dict[str, Any]:
    """The ``synth`` job that writes the corpus :func:`takes_from_corpus` reads: two sentences, neutral and happy."""
    return {"out": str(corpus), "sentences": 2, "emotions": ["neutral", "happy"], "intensities": [3],
            "size": int(size), "seed": int(seed)}


def takes_from_corpus(corpus: Path, folder: Path) -> CameraTakes:
    """Copy the takes of a :func:`synth_params` corpus into ``folder`` as ``<clip>.mp4`` (a corpus names every
    video ``video.mp4``; a camera does not)."""
    clips = corpus / "actors" / "synthetic" / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    takes: dict[str, list[Path]] = {}
    for emotion, names in TAKES.items():
        for name in names:
            take = folder / f"{name}.mp4"
            shutil.copyfile(clips / name / "video.mp4", take)
            takes.setdefault(emotion, []).append(take)
    return CameraTakes(takes, clips / SHOT_CLIP / "video.mp4", clips / AUDIO_CLIP / "audio.wav")


def camera_takes(folder: Path, size: int = 64, seed: int = 0) -> CameraTakes:
    """Render the corpus in this process (the ``synth`` job) and hand over its takes (in ``folder/camera``)."""
    from core.jobs import protocol as P
    from core.jobs.runner import run_job

    events: list[P.Event] = []
    if run_job(P.JobSpec("synth", synth_params(folder / "corpus", size, seed)), events.append) != P.EXIT_OK:
        raise RuntimeError(f"the synth job failed: {events[-1]}")
    return takes_from_corpus(folder / "corpus", folder / "camera")
