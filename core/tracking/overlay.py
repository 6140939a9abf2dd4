"""The overlay video of a tracked clip (``tracking/overlay.mp4``), for checking the fit by eye.

Each frame is the square crop (enlarged ``scale`` times) with the tracked mesh's visible face edges as a
thin wireframe, the target landmarks (green: detected, yellow: interpolated, red: flagged) and the model's
projected landmarks (magenta), plus the frame number and its landmark RMSE. Frames are decoded, drawn and
encoded one at a time (bounded memory).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.morphable.data import FaceParams
from core.morphable.model import MorphableModel
from core.render.camera import PerspectiveCamera
from core.tracking.data import ClipTargets

WIREFRAME = (90, 200, 255)
MODEL_POINTS = (255, 60, 220)
TARGET_COLORS = {"detected": (40, 230, 60), "interpolated": (255, 200, 0), "flagged": (255, 40, 40)}


def overlay_faces(model: MorphableModel) -> torch.Tensor:
    """(F', 3) triangles drawn in the overlay: the face region and lips, not eyeballs or mouth interior."""
    regions = model.regions
    keep = regions["face"] | regions["lips"]
    hidden = regions["eyes"] | regions["mouth_interior"]
    return model.faces[keep[model.faces].all(1) & ~hidden[model.faces].any(1)]


@torch.no_grad()
def _project_batch(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera, faces: torch.Tensor
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected vertices (B, V, 2) and landmarks (B, 68, 2) in landmark convention, and (B, F') facing flags."""
    p = params.to(model.device, model.dtype)
    out = model(p)
    cam = camera.to(model.device, model.dtype).expand(p.batch_size)
    verts_xy, _ = cam.project(out.vertices)
    lmk_xy, _ = cam.project(out.landmarks)
    corners = out.vertices[:, faces]
    normal = torch.linalg.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0], dim=-1)
    to_camera = cam.center[:, None] - corners.mean(2)
    facing = (normal * to_camera).sum(-1) > 0
    return (verts_xy - 0.5).cpu().numpy(), (lmk_xy - 0.5).cpu().numpy(), facing.cpu().numpy()


def draw_overlay_frame(crop_frame: np.ndarray, vertices_xy: np.ndarray, faces: np.ndarray, landmarks_xy: np.ndarray,
                       target_xy: np.ndarray, target_state: str, scale: int, label: str) -> np.ndarray:
    """One overlay frame: (S, S, 3) uint8 crop -> (S * scale, S * scale, 3) uint8 with the drawings.

    Coordinates are crop pixels in the landmark convention (centres at integers)."""
    from PIL import Image, ImageDraw

    from core.render.shading import draw_points, draw_wireframe

    size = crop_frame.shape[0] * scale
    img = np.asarray(Image.fromarray(crop_frame).resize((size, size), Image.Resampling.BICUBIC))

    def up(points: np.ndarray) -> np.ndarray:  # crop pixel centres -> enlarged pixel centres
        return (points + 0.5) * scale

    img = draw_wireframe(img, up(vertices_xy), faces=faces, color=WIREFRAME, thickness=1.0, alpha=0.3)
    radius = max(1.0, scale * 0.9)
    img = draw_points(img, up(target_xy), TARGET_COLORS[target_state], radius=radius + 0.5)
    img = draw_points(img, up(landmarks_xy), MODEL_POINTS, radius=radius - 0.2)
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    draw.rectangle((0, 0, 8 + 7 * len(label), 16), fill=(0, 0, 0))
    draw.text((4, 2), label, fill=(255, 255, 255))
    return np.asarray(pil)


def write_overlay_video(path: Path, video: Path, model: MorphableModel, params: FaceParams,
                        camera: PerspectiveCamera, targets: ClipTargets, quality: dict[str, Any], fps: float,
                        scale: int = 2, batch_size: int = 32, reporter: Any = None) -> Path:
    """Stream ``video`` through the crop and write the overlay video to ``path`` (atomically)."""
    from core.io.video import VideoWriter, iter_frames

    faces = overlay_faces(model)
    faces_np = faces.cpu().numpy()
    per_frame = quality.get("landmark_rmse_px_per_frame") or []
    flagged = set(quality.get("flagged_frames") or [])
    lmk_targets = targets.landmarks - 0.5  # camera convention -> landmark convention
    n = params.batch_size
    cached: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
    frames = iter_frames(video)
    try:
        with VideoWriter(path, fps, crf=20) as writer:
            for i, frame in enumerate(frames):
                if i >= n:
                    break
                if cached is None or i >= cached[0] + len(cached[1]):
                    stop = min(n, i + batch_size)
                    cached = (i, *_project_batch(model, params[i:stop], camera, faces))
                j = i - cached[0]
                state = "flagged" if targets.flagged[i] else (
                    "interpolated" if 0 < targets.frame_weight[i] < 1 else "detected")
                rmse = per_frame[i] if i < len(per_frame) else float("nan")
                label = f"frame {i}  rmse {rmse:.2f}px" + ("  FLAGGED" if i in flagged else "")
                visible = faces_np[cached[3][j]]
                writer.write(draw_overlay_frame(targets.crop.crop_image(frame), cached[1][j], visible, cached[2][j],
                                                lmk_targets[i], state, scale, label))
                if reporter is not None and (i % 25 == 0 or i == n - 1):
                    reporter.progress("overlay", i + 1, n)
    finally:
        frames.close()
    return path
