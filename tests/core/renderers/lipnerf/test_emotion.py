"""Emotion reaches the picture through LipNeRF, at small scale: a dub of a tiny synthetic actor with happy
0 -> 1, re-tracked in the happy direction, moves along it monotonically.

The actor's clips (64 px, known parameters) vary only in how happy they look (the FACS happy prototype scaled by
s(t) in [0, 1]) with a small jaw motion; LipNeRF trains on them for a few hundred CPU steps. The dub drives it
with the a2e's expression plus the happy prior along a linear ramp. "Re-tracking" here is analysis by synthesis
along the happy direction with the clips' own renderer: per dubbed frame, the happy amount h that best explains
the face pixels, everything else held at the parameters the dub rendered (a least-squares fit, linearised
between h = 0 and h = 1). The full re-tracking (MediaPipe landmarks + the tracker) at demo scale is
``bench/emotion_retrack.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.eval.emotion_transfer import binned_projection, emotion_direction
from core.jobs import protocol as P
from core.jobs.runner import run_job

N_FRAMES, SIZE = 40, 64


def _run(ws, kind: str, params: dict) -> dict:
    events: list[P.Event] = []
    assert run_job(P.JobSpec(kind, {**params, "device": "cpu"}, str(ws.root)), events.append) == P.EXIT_OK, events[-1]
    return events[-1].outputs


@pytest.mark.slow
def test_a_happy_ramp_through_lipnerf_moves_the_retracked_face_along_happy(tmp_path: Path) -> None:
    from core.io.audio import write_wav
    from core.io.video import iter_frames
    from core.morphable.data import FaceParams
    from core.morphable.registry import load_model
    from core.render.masks import face_mask
    from core.synthetic.known_clip import known_clip_camera, known_clip_workspace, render_known_frames

    torch.manual_seed(0)
    torch.set_num_threads(1)  # the same numbers whichever tests ran before (several set one thread)
    model = load_model("procedural")
    happy = emotion_direction(model.expr_names, "happy")
    t = np.arange(N_FRAMES) / 25
    s = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t + 1.0)  # how happy each training frame is
    expression = {name: (s * happy[i]).astype(np.float32) for i, name in enumerate(model.expr_names) if happy[i]}
    ws = known_clip_workspace(tmp_path / "ws", n_frames=N_FRAMES, size=SIZE, clips=2, expression=expression,
                              jaw=0.05, turn=0.0)
    # The a2e is a 6-iteration stand-in: its output is noise on top of the ramp this test is about. Trained with the
    # voice copies and normalised features (the defaults since stop 31) on this test's steady tone, its noise put
    # one 8-frame bin out of order (rho 0.7); the plain settings keep the stand-in as quiet as the test assumes.
    _run(ws, "train.a2e", {"actor": "a", "iterations": 6, "batch_size": 4, "seq_len": 8, "checkpoint_every": 3,
                           "voice_warps": "none", "no_utterance_norm": True})
    _run(ws, "train.renderer", {"actor": "a", "renderer": "lipnerf", "iterations": 600, "holdout": 0.1,
                                "evaluate": False, "options": {"render_size": SIZE, "rays_per_step": 512,
                                                               "samples": 16}})
    shutil.copytree(ws.clip_dir("a", "c1"), ws.shot_dir("s"))
    ws.set_shot("s", {"video": "shots/s/video.mp4", "fps": 25, "frames": N_FRAMES})
    write_wav(tmp_path / "a.wav", (0.2 * np.sin(np.arange(int(N_FRAMES / 25 * 16000)) / 5.0)).astype(np.float32),
              16000)
    ramp = np.linspace(0.0, 1.0, N_FRAMES)
    curves = {"format": "emodub-emotion-curves", "version": 1, "fps": 25, "frame_start": 0,
              "per_frame": {"happy": ramp.round(4).tolist()}}
    dub = _run(ws, "dub", {"actor": "a", "shot": "s", "audio": str(tmp_path / "a.wav"), "emotions": curves,
                           "length": "shot", "name": "ramp", "renderer": "lipnerf"})
    assert dub["renderer"]["variant"] == "lipnerf" and dub["emotion_sources"] == {"happy": "prior"}

    rendered = FaceParams.load(Path(dub["report"]).parent / "params.npz")  # what the dub asked LipNeRF for
    frames = torch.from_numpy(np.stack(list(iter_frames(dub["video"])))).float() / 255
    face = face_mask(model, rendered, known_clip_camera(SIZE).expand(N_FRAMES))[:, 0, :, :, None] > 0
    unit = torch.as_tensor(happy, dtype=torch.float32)
    asked = (rendered.expression @ unit / (unit @ unit)).numpy()

    def with_happy(amount: float) -> torch.Tensor:
        p = rendered.map(lambda x: x.clone())
        p.expression = p.expression + torch.as_tensor(amount - asked, dtype=torch.float32)[:, None] * unit
        return render_known_frames(model, p, SIZE)

    zero, one = with_happy(0.0), with_happy(1.0)
    direction = (one - zero) * face
    fitted = (((frames - zero) * direction).sum((1, 2, 3)) / (direction**2).sum((1, 2, 3)).clamp_min(1e-9)).numpy()
    result = binned_projection(fitted[:, None], ramp, np.ones(1), bins=5)
    assert result["rho"] >= 0.9 - 1e-9, result  # one adjacent pair of bins out of order is rho 0.9
    assert result["bin_projection"][-1] - result["bin_projection"][0] > 0.03, result  # a visible change
    assert binned_projection(asked[:, None], ramp, np.ones(1), bins=5)["rho"] >= 0.9  # the ramp reached e
