"""Geometry for tracking: a fast exact evaluation of the model's landmarks, the clip camera, similarity
alignment and a jaw-opening measure that compares any two parameterisations.

:class:`SubsetModel` evaluates the posed positions of a few vertices (the 68 landmarks need at most
204) with exactly the formulas of :class:`~core.morphable.model.MorphableModel` but without skinning the
whole mesh: the joints, which depend on the full shaped mesh, come from the joint regressor folded into
the template and bases once (``J = Jr T + (Jr S) beta + (Jr E) psi``). The landmark stages run on it.

The clip camera (crop space, OpenCV convention) sits on the world +z axis looking at the origin:
``R = diag(1, -1, -1)``, ``t = (0, 0, distance)``, ``fx = fy = exp(log_focal)``, principal point at the
crop centre. Per-frame head motion lives in the parameters (rotation, translation), as in the ground truth
of the synthetic actor, whose head sits near the origin.
"""

from __future__ import annotations

import torch

from core.morphable.data import FaceParams
from core.morphable.lbs import axis_angle_to_matrix, pose_feature
from core.morphable.model import MorphableModel
from core.render.camera import PerspectiveCamera

Tensor = torch.Tensor

# Pairs (upper lid, lower lid) of iBUG-68 points: right eye 37-41, 38-40; left eye 43-47, 44-46.
EYELID_PAIRS: tuple[tuple[int, int], ...] = ((37, 41), (38, 40), (43, 47), (44, 46))


class SubsetModel:
    """Posed positions of a vertex subset, equal to ``model(params).vertices[:, ids]``.

    Args:
        model: the morphable model.
        vertex_ids: (K,) vertex indices.
    """

    def __init__(self, model: MorphableModel, vertex_ids: Tensor) -> None:
        ids = torch.as_tensor(vertex_ids, dtype=torch.long, device=model.device)
        self.model = model
        self.ids = ids
        self.v_template = model.v_template[ids]
        self.shapedirs = model.shapedirs[ids]
        self.exprdirs = model.exprdirs[ids]
        self.lbs_weights = model.lbs_weights[ids]
        self.posedirs = None if model.posedirs is None else model.posedirs[ids]
        jr = model.joint_regressor
        self.j_template = jr @ model.v_template  # (J, 3)
        self.j_shapedirs = torch.einsum("jv,vck->jck", jr, model.shapedirs)  # (J, 3, S)
        self.j_exprdirs = torch.einsum("jv,vck->jck", jr, model.exprdirs)  # (J, 3, E)
        self.parents = model._parents_list

    @staticmethod
    def _blend(coeffs: Tensor, dirs: Tensor) -> Tensor:
        """(B, K') coefficients x (N, 3, K) directions (K' <= K) -> (B, N, 3), as one plain matmul."""
        k = coeffs.shape[1]
        n = dirs.shape[0]
        if k == 0:
            return coeffs.new_zeros(coeffs.shape[0], n, 3)
        return (coeffs @ dirs[..., :k].reshape(n * 3, k).T).view(-1, n, 3)

    def __call__(self, params: FaceParams) -> Tensor:
        """(B, K, 3) posed positions of the subset.

        Same maths as :func:`core.morphable.lbs.lbs`, written with element-wise products instead of
        batches of 3 x 3 / 4 x 4 matrix products, which are slow on a CPU at these sizes."""
        batch = params.batch_size
        shaped = (self.v_template + self._blend(params.shape, self.shapedirs)
                  + self._blend(params.expression, self.exprdirs)).expand(batch, -1, -1)
        joints = (self.j_template + self._blend(params.shape, self.j_shapedirs)
                  + self._blend(params.expression, self.j_exprdirs)).expand(batch, -1, -1)
        rot_mats = axis_angle_to_matrix(self.model.pose_vector(params))  # (B, J, 3, 3)
        if self.posedirs is not None:
            n = self.posedirs.shape[0]
            shaped = shaped + (pose_feature(rot_mats) @ self.posedirs.reshape(n * 3, -1).T).view(batch, n, 3)
        # forward kinematics: world rotation and posed position of every joint
        world_r = [rot_mats[:, 0]]
        posed = [joints[:, 0]]
        for j in range(1, len(self.parents)):
            p = self.parents[j]
            world_r.append(_mm3(world_r[p], rot_mats[:, j]))
            posed.append(posed[p] + _mv3(world_r[p], joints[:, j] - joints[:, p]))
        rot = torch.stack(world_r, 1)  # (B, J, 3, 3)
        offset = torch.stack(posed, 1) - _mv3(rot, joints)  # (B, J, 3): posed = R rest + offset
        flat = torch.cat([rot.reshape(batch, -1, 9), offset], -1)  # (B, J, 12)
        n_joints = flat.shape[1]
        blended = (self.lbs_weights @ flat.transpose(0, 1).reshape(n_joints, -1)).view(-1, batch, 12)
        blended = blended.transpose(0, 1)  # (B, K, 12)
        skinned = (blended[..., :9].reshape(batch, -1, 3, 3) * shaped[:, :, None, :]).sum(-1) + blended[..., 9:]
        return skinned + params.translation[:, None, :]


def _mm3(a: Tensor, b: Tensor) -> Tensor:
    """(..., 3, 3) @ (..., 3, 3) element-wise (no batched matmul)."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)


def _mv3(a: Tensor, v: Tensor) -> Tensor:
    """(..., 3, 3) @ (..., 3) element-wise."""
    return (a * v[..., None, :]).sum(-1)


class LandmarkModel:
    """The model's 68 landmarks from the 3 corners of each landmark's triangle only (fast, exact)."""

    def __init__(self, model: MorphableModel) -> None:
        corners = model.faces[model.landmark_faces]  # (68, 3) vertex ids
        unique, inverse = torch.unique(corners.reshape(-1), return_inverse=True)
        self.subset = SubsetModel(model, unique)
        self.corner_index = inverse.view(68, 3)
        self.bary = model.landmark_bary

    def __call__(self, params: FaceParams) -> Tensor:
        """(B, 68, 3) world-space landmarks."""
        verts = self.subset(params)  # (B, K, 3)
        corners = verts[:, self.corner_index]  # (B, 68, 3, 3)
        return (corners * self.bary[None, :, :, None]).sum(2)


# ------------------------------------------------------------------------------------------ camera
CAMERA_R = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))


def clip_camera(log_focal: Tensor, distance: float, size: int, batch: int = 1) -> PerspectiveCamera:
    """The clip's crop-space camera (see the module docstring), differentiable in ``log_focal`` (0-d)."""
    focal = torch.exp(log_focal).reshape(1).expand(batch)
    device, dtype = log_focal.device, log_focal.dtype
    R = torch.tensor(CAMERA_R, device=device, dtype=dtype).expand(batch, 3, 3)
    t = torch.tensor([0.0, 0.0, distance], device=device, dtype=dtype).expand(batch, 3)
    centre = torch.full((batch,), size / 2.0, device=device, dtype=dtype)
    return PerspectiveCamera(fx=focal, fy=focal, cx=centre, cy=centre, R=R, t=t, image_size=(size, size))


def initial_focal(frame_width: int, crop_scale: float, focal_mm: float) -> float:
    """Focal length in crop pixels of a ``focal_mm`` (35 mm-equivalent) lens on a frame ``frame_width``
    pixels wide, after the crop's resize by ``crop_scale`` (crop pixels per frame pixel)."""
    return focal_mm / 36.0 * frame_width * crop_scale


def initial_placement(model_landmarks: Tensor, targets: Tensor, weights: Tensor, focal: float,
                      size: int) -> tuple[float, Tensor]:
    """Camera distance and per-frame translations that put the neutral head's landmarks over the targets.

    A weak-perspective estimate: the scale from the spread of the points, the offset from their weighted
    centroids. Good enough to start the rigid stage.

    Args:
        model_landmarks: (68, 3) neutral landmarks (world, head at the origin).
        targets: (K, 68, 2) crop-pixel landmarks of K frames (camera pixel convention).
        weights: (K, 68) landmark weights.
        focal: focal length in crop pixels.
        size: crop side.

    Returns:
        distance (the camera's distance to the origin) and translations (K, 3) (z = 0).
    """
    w = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
    centre_2d = (targets * w[..., None]).sum(1)  # (K, 2)
    spread_2d = (((targets - centre_2d[:, None]) ** 2).sum(-1) * w).sum(1).sqrt()  # (K,)
    model_xy = model_landmarks[:, :2]
    centre_m = (model_xy[None] * w[..., None]).sum(1)
    spread_m = (((model_xy[None] - centre_m[:, None]) ** 2).sum(-1) * w).sum(1).sqrt()
    depth = focal * spread_m / spread_2d.clamp_min(1e-6)  # camera depth of the landmarks' plane
    mean_z = float(model_landmarks[:, 2].mean())
    distance = float(depth.median()) + mean_z
    # pixel offset -> metres at that depth; camera y points down, world y up
    dx = (centre_2d[:, 0] - size / 2.0) * depth / focal
    dy = -(centre_2d[:, 1] - size / 2.0) * depth / focal
    translation = torch.stack([dx - centre_m[:, 0], dy - centre_m[:, 1], torch.zeros_like(dx)], 1)
    return distance, translation


def project_points(camera: PerspectiveCamera, points: Tensor) -> Tensor:
    """(B, N, 3) world points -> (B, N, 2) pixels in the *landmark* convention (pixel centres at integers,
    as ``landmarks.npz`` and ``crop.json`` use), i.e. the camera's projection minus 0.5."""
    xy, _ = camera.project(points)
    return xy - 0.5


# ------------------------------------------------------------------------------------------ measures
def umeyama(source: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares similarity transform (Umeyama 1991) mapping ``source`` onto ``target``.

    Args:
        source, target: (B, N, 3) corresponding points.

    Returns:
        scale (B,), rotation (B, 3, 3), translation (B, 3) with ``target ~ scale * source @ R^T + t``.
    """
    mu_s, mu_t = source.mean(1, keepdim=True), target.mean(1, keepdim=True)
    xs, xt = source - mu_s, target - mu_t
    cov = xt.transpose(1, 2) @ xs / source.shape[1]  # (B, 3, 3)
    u, sigma, vh = torch.linalg.svd(cov)
    d = torch.ones_like(sigma)
    d[:, 2] = torch.sign(torch.linalg.det(u @ vh))
    rotation = u @ torch.diag_embed(d) @ vh
    var_s = (xs ** 2).sum(-1).mean(1)
    scale = (sigma * d).sum(1) / var_s.clamp_min(1e-20)
    translation = mu_t[:, 0] - scale[:, None] * (rotation @ mu_s[:, 0, :, None])[..., 0]
    return scale, rotation, translation


def aligned_vertex_error(tracked: Tensor, truth: Tensor) -> Tensor:
    """(B,) mean vertex distance after aligning ``tracked`` (B, V, 3) to ``truth`` by a similarity."""
    s, R, t = umeyama(tracked.double(), truth.double())
    aligned = s[:, None, None] * tracked.double() @ R.transpose(1, 2) + t[:, None]
    return (aligned - truth.double()).norm(dim=-1).mean(1).to(tracked.dtype)


def jaw_opening(model: MorphableModel, params: FaceParams, batch_size: int = 256) -> Tensor:
    """(B,) jaw opening angle in radians, measured on the mesh so any parameterisation compares.

    The head is posed without its global rotation and translation (its own frame); the opening is the
    angle, in the head's sagittal (y, z) plane and about the jaw joint, between the chin landmark (8) of
    these parameters and of the same identity with no expression and a closed jaw. For the procedural head
    both ``jaw_pose`` and the ``mouth_open`` blendshape (which bakes in a 0.075 rad jaw turn) open it, so
    the angle counts both, as a person watching would.
    """
    jaw_index = 2  # FLAME joint order: global, neck, jaw, eyes
    out = []
    for start in range(0, params.batch_size, batch_size):
        p = params[start:start + batch_size]
        own = FaceParams(shape=p.shape, expression=p.expression, jaw_pose=p.jaw_pose, neck_pose=p.neck_pose,
                         eye_pose=p.eye_pose, rotation=torch.zeros_like(p.rotation),
                         translation=torch.zeros_like(p.translation))
        rest = FaceParams(shape=p.shape, expression=torch.zeros_like(p.expression),
                          jaw_pose=torch.zeros_like(p.jaw_pose), neck_pose=p.neck_pose, eye_pose=p.eye_pose,
                          rotation=torch.zeros_like(p.rotation), translation=torch.zeros_like(p.translation))
        posed, neutral = model(own), model(rest)
        pivot = neutral.joints[:, jaw_index, 1:]  # (B, 2) (y, z) of the closed jaw's joint
        a = posed.landmarks[:, 8, 1:] - pivot
        b = neutral.landmarks[:, 8, 1:] - pivot
        # positive when the chin swings down-and-back (opening), about the x axis
        cross = b[:, 1] * a[:, 0] - b[:, 0] * a[:, 1]
        out.append(torch.atan2(-cross, (a * b).sum(1)))
    return torch.cat(out)
