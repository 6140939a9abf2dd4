"""``train.renderer`` / ``eval.renderer`` jobs on a tracked clip with a held-out tail."""

from __future__ import annotations

import json

import numpy as np
import torch

from core.jobs import protocol as P
from core.jobs.runner import run_job


def events_of(spec: P.JobSpec) -> list[P.Event]:
    events: list[P.Event] = []
    code = run_job(spec, events.append)
    assert code == P.EXIT_OK, events[-1]
    return events


def test_train_and_eval_renderer_jobs(tracked_workspace) -> None:
    torch.set_num_threads(1)
    ws = tracked_workspace(n_frames=20, size=64)
    events = events_of(P.JobSpec("train.renderer", {"actor": "a", "iterations": 12, "options": {"unet_base": 8},
                                                     "holdout": 0.25, "device": "cpu"}, str(ws.root)))
    done = events[-1]
    assert isinstance(done, P.Done) and done.outputs["train_frames"] == 15 and done.outputs["held_out_frames"] == 5
    steps = [e.done for e in events if isinstance(e, P.Progress) and e.stage == "train renderer"]
    assert steps[-1] == 12
    model_dir = ws.model_dir("a", "neural_texture")
    split = json.loads((model_dir / "split.json").read_text())
    assert split["clips"]["c0"] == {"train": [0, 15], "held_out": [15, 20], "size": 64, "train_frames": 15,
                                    "held_out_frames": 5}
    record = ws.read_manifest()["actors"]["a"]["models"]["neural_texture"]
    assert record["kind"] == "renderer" and record["variant"] == "neural_texture"
    assert set(record["held_out"]) >= {"face_psnr", "face_ssim", "mouth_psnr", "psnr", "ssim"}  # measured at once
    events = events_of(P.JobSpec("eval.renderer", {"actor": "a", "device": "cpu"}, str(ws.root)))
    result = events[-1].outputs
    assert result["frames"] == 5 and result["model"] == "neural_texture" and result["variant"] == "neural_texture"
    assert 0 < result["psnr"] < 60 and -1 <= result["ssim"] <= 1
    assert np.isfinite(result["mouth_psnr"]) and np.isfinite(result["face_psnr"])
    # The face figures are measured inside the face mask, the whole crop over the plate's background too: two
    # different readings (after 12 steps either may be the higher: the decoded ring around the face is still noise).
    assert abs(result["psnr"] - result["face_psnr"]) > 0.05


def test_bad_renderer_requests_fail_clearly(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=6, size=32)
    for params, needle in ((({"renderer": "lipnerv"}), "did you mean 'lipnerf'"),
                           ({"options": {"unet_bass": 8}}, "did you mean 'unet_base'"),
                           ({"options": ["unet_base"]}, "KEY=VALUE"),
                           ({"holdout": 1.5}, "--holdout")):
        events: list[P.Event] = []
        code = run_job(P.JobSpec("train.renderer", {"actor": "a", "iterations": 1, "device": "cpu", **params},
                                 str(ws.root)), events.append)
        assert code != P.EXIT_OK and isinstance(events[-1], P.Error), params
        assert events[-1].code == "bad_params" and needle in events[-1].message, (params, events[-1].message)
    events = []
    assert run_job(P.JobSpec("eval.renderer", {"actor": "a", "renderer": "lipnerf"}, str(ws.root)),
                   events.append) != P.EXIT_OK
    assert "no trained lipnerf renderer" in events[-1].message and "--renderer lipnerf" in events[-1].hint
