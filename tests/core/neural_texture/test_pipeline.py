"""Renderer on a workspace: UV rasterization, train/eval jobs on a tracked clip with a held-out tail."""

from __future__ import annotations

import json

import numpy as np
import torch

from core.jobs import protocol as P
from core.jobs.runner import run_job
from core.neural_texture.data import ClipFrames, TrackedClip, rasterize_uv, temporal_neighbours


def test_temporal_neighbours_are_clamped() -> None:
    assert temporal_neighbours(np.array([0, 5, 9]), 2, 10).tolist() == [[0, 1], [4, 6], [8, 9]]
    assert temporal_neighbours(np.array([3]), 4, 10).tolist() == [[1, 2, 4, 5]]


def test_clip_frames_line_up_with_the_video(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=12, size=64)
    folder = ws.clip_dir("a", "c0")
    clip = TrackedClip.load(folder)
    from core.morphable.registry import load_model

    model = load_model("procedural")
    frames = ClipFrames(clip, model, None, temporal_window=2)
    sample = frames[5]
    assert sample["frame"].shape == (3, 64, 64) and sample["uv_window"].shape == (4, 64, 64)
    # The rendered head covers exactly where the rasterized alpha says (background is a flat ramp).
    uv, alpha = rasterize_uv(model, clip.params[5], clip.camera)
    assert torch.equal(alpha[0], sample["alpha"])
    inside = sample["alpha"][0] > 0
    ramp = torch.linspace(0.2, 0.5, 64).view(64, 1).expand(64, 64)
    off = (sample["frame"][0] - ramp).abs()
    assert off[~inside].mean() < 0.03 and off[inside].mean() > 0.05


def events_of(spec: P.JobSpec) -> list[P.Event]:
    events: list[P.Event] = []
    code = run_job(spec, events.append)
    assert code == P.EXIT_OK, events[-1]
    return events


def test_train_and_eval_renderer_jobs(tracked_workspace) -> None:
    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=20, size=64)
    events = events_of(P.JobSpec("train.renderer", {"actor": "a", "iterations": 12, "unet_base": 8,
                                                     "holdout": 0.25, "device": "cpu"}, str(ws.root)))
    done = events[-1]
    assert isinstance(done, P.Done) and done.outputs["train_frames"] == 15 and done.outputs["held_out_frames"] == 5
    steps = [e.done for e in events if isinstance(e, P.Progress)]
    assert steps[-1] == 12
    split = json.loads((ws.model_dir("a", "renderer") / "split.json").read_text())
    assert split["clips"]["c0"] == {"train": [0, 15], "held_out": [15, 20], "size": 64}
    assert ws.read_manifest()["actors"]["a"]["models"]["renderer"]["kind"] == "renderer"
    events = events_of(P.JobSpec("eval.renderer", {"actor": "a", "device": "cpu"}, str(ws.root)))
    result = events[-1].outputs
    assert result["frames"] == 5 and 0 < result["psnr"] < 60 and -1 <= result["ssim"] <= 1
    assert np.isfinite(result["mouth_psnr"])
