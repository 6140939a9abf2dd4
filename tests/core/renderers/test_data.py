"""The one data layer: batches line up with the video, training ids, temporal context, the face model a clip
was tracked with (a non-default one included), and the one crop cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.render.masks import rasterize_uv_and_region
from core.renderers.base import AudioNeed, RendererNeeds
from core.renderers.data import actor_sources, context_rows
from core.tracking.result import TrackedClip


def test_context_rows_are_clamped() -> None:
    assert context_rows(np.array([0, 5, 9]), 2, 10).tolist() == [[0, 1], [4, 6], [8, 9]]
    assert context_rows(np.array([3]), 4, 10).tolist() == [[1, 2, 4, 5]]
    assert context_rows(np.array([3]), 0, 10).shape == (1, 0)


def test_batches_line_up_with_the_video_and_number_training_frames(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=12, size=64, clips=2)
    needs = RendererNeeds(audio=AudioNeed("mfcc", {"n_mfcc": 5, "window_video_frames": 2}), context_frames=2)
    train, held, split = actor_sources(ws, "a", needs, holdout=0.25)
    assert len(train) == 18 and len(held) == 6 and train.train_frames == 18 and held.train_frames == 0
    assert split["c1"] == {"train": [0, 9], "held_out": [9, 12], "size": 64, "train_frames": 9, "held_out_frames": 3}
    batch = train.batch([5, 9, 10])  # clip c0 frame 5, clip c1 frames 0 and 1
    assert batch.frames.shape == (3, 3, 64, 64) and batch.frame_ids.tolist() == [5, 9, 10]
    assert batch.audio is not None and batch.audio.shape == (3, 8, 5)
    assert held.batch([0]).frame_ids.tolist() == [-1]
    # the rendered head covers exactly where the rasterized coverage says (the background is a flat ramp)
    _, alpha, _ = rasterize_uv_and_region(batch.face_model, batch.params[0:1], batch.camera[0])
    inside = alpha[0, 0] > 0
    ramp = torch.linspace(0.2, 0.5, 64).view(64, 1).expand(64, 64)
    off = (batch.frames[0, 0] - ramp).abs()
    assert off[~inside].mean() < 0.03 and off[inside].mean() > 0.05
    # temporal context: frames 9 and 10 of the source are c1's frames 0 and 1; their neighbours are shared rows
    ctx = batch.context
    assert ctx is not None and ctx.neighbours.shape == (3, 2)
    assert ctx.params.batch_size == len({(0, 4), (0, 5), (0, 6), (1, 0), (1, 1), (1, 2)})
    c1 = TrackedClip.load(ws.clip_dir("a", "c1"))
    got = ctx.params[ctx.neighbours[2]].jaw_pose
    assert torch.allclose(got, c1.params[torch.tensor([0, 2])].jaw_pose)


def test_a_clip_tracked_with_a_non_default_model_renders_with_that_model(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=6, size=32)
    folder = ws.clip_dir("a", "c0")
    (folder / "tracking" / "config.json").write_text(json.dumps({"model": "procedural",
                                                                 "model_resolution": "small"}))
    clip = TrackedClip.load(folder)
    model = clip.face_model()
    from core.morphable.registry import load_model

    assert model.n_vertices == load_model("procedural", resolution="small").n_vertices
    assert model.n_vertices < load_model("procedural").n_vertices
    train, _, _ = actor_sources(ws, "a", RendererNeeds(), holdout=0.0)
    assert train.face_model().n_vertices == model.n_vertices
    assert train.face_model_spec == {"model": "procedural", "model_path": None, "model_resolution": "small"}


def test_the_crop_cache_is_rebuilt_when_the_video_changes(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=6, size=32)
    folder = ws.clip_dir("a", "c0")
    clip = TrackedClip.load(folder)
    first = np.array(clip.crops())
    assert first.shape == (6, 32, 32, 3) and (folder / "cache" / "crops_32.npy").is_file()
    from core.io.video import VideoWriter

    with VideoWriter(folder / "video.mp4", 25, crf=12) as writer:  # another take replaces the video
        for _ in range(6):
            writer.write(np.full((32, 32, 3), 200, np.uint8))
    again = np.array(TrackedClip.load(folder).crops())
    assert np.abs(again.astype(int) - 200).max() <= 3 and not np.array_equal(first, again)


def test_clips_of_different_models_are_refused(tracked_workspace) -> None:
    ws = tracked_workspace(n_frames=4, size=32, clips=2)
    (ws.clip_dir("a", "c1") / "tracking" / "config.json").write_text(json.dumps({"model_resolution": "small"}))
    with pytest.raises(ValueError, match="different face models"):
        actor_sources(ws, "a", RendererNeeds(), holdout=0.0)
