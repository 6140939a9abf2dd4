"""What the energies see: the fixed parts of a tracking problem, one mini-batch of frames with its targets,
and a :class:`FitView` of the current variable values that computes (once per step, lazily) the model's
landmarks and the rendered face the energies compare with the targets."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.morphable.data import FaceParams
from core.morphable.model import MorphableModel
from core.render.camera import PerspectiveCamera
from core.render.raster import interpolate_vertex_attrs, rasterize
from core.render.shading import sample_texture, sh_irradiance, vertex_normals
from core.tracking.geometry import LandmarkModel, SubsetModel, clip_camera

Tensor = torch.Tensor

# Pixels whose surface is seen at a grazing angle (normal . view direction below this) are left out of
# the photometric error: near the silhouette the model's cheek and the real one rarely coincide, and
# the error there is background against skin.
MIN_FACING = 0.3


@dataclass
class FrameBatch:
    """Targets of B frames.

    Attributes:
        index: (B,) int64 frame indices into the clip.
        contiguous: the frames are consecutive (temporal energies apply).
        landmarks: (B, 68, 2) target landmarks in crop pixels, camera convention (centres at +0.5).
        landmark_weight: (B, 68) per-landmark weights (group weight x frame weight; 0 = ignore).
        frame_weight: (B,) 1 for a trusted frame, less for interpolated, 0 for flagged frames.
        images: optional (B, S, S, 3) float frames in [0, 1] at the photometric size.
        before: per-frame values of the frame just before the batch (1, ...) or ``None`` at the start.
        after: the same for the frame just after the batch, or ``None`` at the end.
    """

    index: Tensor
    contiguous: bool
    landmarks: Tensor
    landmark_weight: Tensor
    frame_weight: Tensor
    images: Tensor | None = None
    before: dict[str, Tensor] | None = None
    after: dict[str, Tensor] | None = None

    @property
    def size(self) -> int:
        return int(self.index.shape[0])


class TrackingProblem:
    """The fixed parts: model, camera placement, render faces and masks.

    Args:
        model: the morphable model.
        crop_size: side of the crop the landmarks live in.
        distance: the camera's distance from the world origin (metres).
        photometric_size: render side of the photometric energy.
        translation_scale: see :class:`~core.tracking.config.TrackerConfig`.
        jaw_prior_weights: see :class:`~core.tracking.config.TrackerConfig`.
    """

    def __init__(self, model: MorphableModel, crop_size: int, distance: float, photometric_size: int,
                 translation_scale: float = 20.0,
                 jaw_prior_weights: tuple[float, float, float] = (0.2, 10.0, 10.0)) -> None:
        self.model = model
        self.crop_size = int(crop_size)
        self.distance = float(distance)
        self.photometric_size = int(photometric_size)
        self.translation_scale = float(translation_scale)
        self.jaw_prior_weights = torch.tensor(jaw_prior_weights, device=model.device, dtype=model.dtype)
        self.landmark_model = LandmarkModel(model)
        regions = model.regions
        faces = model.faces
        face = regions["face"]
        hidden = regions["eyes"] | regions["mouth_interior"]
        # Rendered: the face and what can cover it or show through it (eyes, mouth interior, lips).
        drawn = face | regions["lips"] | hidden | regions.get("nose", torch.zeros_like(face))
        keep = drawn[faces].all(1)
        render_faces = faces[keep]
        self.render_uv_faces = model.uv_faces[keep]
        # Compared with the image: face skin (eyelids included: they show blinks), not the eyeballs, whose
        # gaze is not tracked, nor the inside of the mouth. Models without an eyeball region lose the eyes.
        unseen = regions.get("eyeballs", regions["eyes"]) | regions["mouth_interior"]
        self.loss_face = (face[render_faces].all(1) & ~unseen[render_faces].any(1))
        # Only the rendered vertices are posed (about half the head), by the fast subset evaluator.
        used, local = torch.unique(render_faces.reshape(-1), return_inverse=True)
        self.render_model = SubsetModel(model, used)
        self.render_faces = local.view(-1, 3)  # indices into the posed subset

    def camera(self, log_focal: Tensor, size: int | None = None, batch: int = 1) -> PerspectiveCamera:
        cam = clip_camera(log_focal, self.distance, self.crop_size, batch)
        if size is not None and size != self.crop_size:
            cam = cam.scaled(size, size)
        return cam


class FitView:
    """The current values of all variables for one batch, and what the energies derive from them.

    Args:
        problem: the fixed parts.
        values: per-frame variables (B, ...) and shared ones (``shape`` (S,), ``focal`` (0-d log focal),
            ``sh`` (9, 3), ``albedo`` (3, T, T)); tensors being optimised carry gradients.
        batch: the frames.
        surface_cache: the batch's rasterized surface when the geometry is not being optimised.
    """

    def __init__(self, problem: TrackingProblem, values: dict[str, Tensor], batch: FrameBatch,
                 surface_cache: RenderedSurface | None = None) -> None:
        self.problem = problem
        self.values = values
        self.batch = batch
        self.surface_cache = surface_cache

    @functools.cached_property
    def params(self) -> FaceParams:
        v = self.values
        B = self.batch.size
        return FaceParams(shape=v["shape"].reshape(1, -1).expand(B, -1), expression=v["expression"],
                          jaw_pose=v["jaw_pose"], neck_pose=v["neck_pose"], eye_pose=v["eye_pose"],
                          rotation=v["rotation"], translation=v["translation"])

    @functools.cached_property
    def crop_camera(self) -> PerspectiveCamera:
        return self.problem.camera(self.values["focal"], batch=self.batch.size)

    @functools.cached_property
    def landmarks_3d(self) -> Tensor:
        """(B, 68, 3) world landmarks."""
        return self.problem.landmark_model(self.params)

    @functools.cached_property
    def landmarks_2d(self) -> Tensor:
        """(B, 68, 2) projected landmarks, crop pixels in the camera convention (centres at +0.5)."""
        xy, _ = self.crop_camera.project(self.landmarks_3d)
        return xy

    def sequence(self, name: str) -> Tensor:
        """(B', ...) a per-frame variable with the neighbouring frames' (constant) values around the batch."""
        parts = []
        if self.batch.before is not None:
            parts.append(self.batch.before[name])
        parts.append(self.values[name])
        if self.batch.after is not None:
            parts.append(self.batch.after[name])
        return torch.cat(parts, 0)

    @functools.cached_property
    def surface(self) -> RenderedSurface:
        """What the rasterizer sees at the photometric size: texture coordinates, normals and the error mask
        per pixel. Reused from ``surface_cache`` when the geometry is held (texture/lighting stages)."""
        if self.surface_cache is not None:
            return self.surface_cache
        return render_surface(self.problem, self.params, self.values["focal"])

    @functools.cached_property
    def render(self) -> tuple[Tensor, Tensor]:
        """The shaded, textured face at the photometric size and the pixels the error uses.

        Returns:
            rgb (B, S, S, 3) (zero off the face) and mask (B, S, S) float in {0, 1}.
        """
        surface = self.surface
        B = self.batch.size
        albedo = sample_texture(self.values["albedo"].unsqueeze(0), surface.uv)  # (B, S, S, 3)
        shading = sh_irradiance(surface.normals, self.values["sh"].unsqueeze(0).expand(B, -1, -1))
        return albedo * shading * surface.coverage[..., None], surface.mask


@dataclass
class RenderedSurface:
    """Per-pixel surface attributes of a batch (B, S, S, ...); differentiable in the geometry unless cached.

    Attributes:
        uv: (B, S, S, 2) texture coordinates (0 off the mesh).
        normals: (B, S, S, 3) unit world normals.
        coverage: (B, S, S) 1 where any rendered triangle is visible.
        mask: (B, S, S) 1 where the photometric error counts (face skin seen head-on).
    """

    uv: Tensor
    normals: Tensor
    coverage: Tensor
    mask: Tensor

    def detach(self) -> RenderedSurface:
        return RenderedSurface(self.uv.detach(), self.normals.detach(), self.coverage, self.mask)


def render_surface(problem: TrackingProblem, params: FaceParams, log_focal: Tensor) -> RenderedSurface:
    """Rasterize the render faces of ``params`` at the photometric size (see :class:`RenderedSurface`)."""
    size = problem.photometric_size
    B = params.batch_size
    verts = problem.render_model(params)  # (B, K, 3): the rendered vertices only
    camera = problem.camera(log_focal, size=size, batch=B)
    fragments = rasterize(camera.to_screen(verts), problem.render_faces, (size, size), cull_backfaces=True)
    uv = interpolate_vertex_attrs(fragments, problem.render_uv_faces, problem.model.uvs)
    normals = interpolate_vertex_attrs(fragments, problem.render_faces, vertex_normals(verts, problem.render_faces))
    normals = F.normalize(normals, dim=-1, eps=1e-12)
    with torch.no_grad():
        _, rays = camera.rays()  # (B, S, S, 3) unit directions from the camera into the scene
        facing = -(normals.detach() * rays).sum(-1) > MIN_FACING
        pix = fragments.pix_to_face
        skin = problem.loss_face[pix.clamp_min(0)] & (pix >= 0)
        mask = (skin & facing).to(verts.dtype)
    return RenderedSurface(uv, normals, fragments.mask.to(verts.dtype), mask)
