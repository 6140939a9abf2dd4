"""Mesh rasterization for the renderers: camera-space normals beside the UVs."""

from __future__ import annotations

import dataclasses

import torch

from core.render.masks import rasterize_uv_and_normals, rasterize_uv_and_region


def test_normals_are_unit_on_the_mesh_and_follow_the_head_turn(tracked_workspace) -> None:
    from core.renderers.base import RendererNeeds
    from core.renderers.data import actor_sources

    ws = tracked_workspace(n_frames=4, size=64)
    source, _, _ = actor_sources(ws, "a", RendererNeeds(), holdout=0.0)
    batch = source.batch([0])
    uv, alpha, normals = rasterize_uv_and_normals(batch.face_model, batch.params, batch.camera)
    uv_ref, alpha_ref, _ = rasterize_uv_and_region(batch.face_model, batch.params, batch.camera)
    assert torch.allclose(uv, uv_ref) and torch.equal(alpha, alpha_ref)  # one rasterization, same UVs
    covered = alpha[0, 0] > 0
    length = normals[0].norm(dim=0)
    assert torch.allclose(length[covered], torch.ones(()), atol=1e-4) and (length[~covered] == 0).all()

    def mean_x(yaw: float) -> float:
        rotation = batch.params.rotation.clone()
        rotation[:, 1] += yaw
        turned = dataclasses.replace(batch.params, rotation=rotation)
        _, a, n = rasterize_uv_and_normals(batch.face_model, turned, batch.camera)
        return float(n[0, 0][a[0, 0] > 0].mean())

    # turning the head about its vertical axis swings the normals sideways in the camera's frame, both ways
    left, right = mean_x(-0.5), mean_x(0.5)
    assert left * right < 0 and abs(left - right) > 0.3
