"""Image-space masks of the tracked mesh: UV coverage, named regions (face, mouth, head...), and the
morphological operations the renderers and the dub apply to them.

The face, mouth and head masks of every renderer's training, evaluation and dub come from the tracked
mesh's vertex regions (``MorphableModel.regions``), not from a face-parsing network: the mesh is known
per frame, and its regions are the same for the synthetic actor and real footage.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.morphable.data import FaceParams
from core.morphable.model import MorphableModel
from core.render.camera import PerspectiveCamera
from core.render.raster import Fragments, interpolate, interpolate_vertex_attrs, rasterize
from core.render.shading import vertex_normals

# Regions whose plate pixels a face-only dub keeps (hair, ears and neck stay the plate's).
NON_FACE_REGIONS: tuple[str, ...] = ("scalp", "ears", "neck")
MOUTH_REGIONS: tuple[str, ...] = ("lips", "mouth_interior")


def region_faces(model: MorphableModel, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
                 ) -> torch.Tensor:
    """(F,) bool: triangles whose vertices all lie in the ``include`` regions (any vertex when empty) and
    none in the ``exclude`` regions (``model.regions`` names; names the model lacks are ignored)."""
    device = model.faces.device
    inside = torch.zeros(model.n_vertices, dtype=torch.bool, device=device)
    for name in include:
        if name in model.regions:
            inside |= model.regions[name].to(device)
    if not include:
        inside = ~inside
    for name in exclude:
        if name in model.regions:
            inside &= ~model.regions[name].to(device)
    return inside[model.faces].all(1)


def face_faces(model: MorphableModel) -> torch.Tensor:
    """(F,) bool: the face: the mesh without scalp, ears and neck, or the model's ``face`` region when it does
    not name those (every model has one)."""
    if not all(r in model.regions for r in NON_FACE_REGIONS):
        return region_faces(model, include=("face",))
    return region_faces(model, exclude=NON_FACE_REGIONS)


def _rasterize_posed(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera
                     ) -> tuple[PerspectiveCamera, torch.Tensor, Fragments, torch.Tensor, torch.Tensor]:
    """Pose the mesh and rasterize it: the batch's cameras, vertices (B, V, 3), fragments, uv (B, 2, H, W)
    in [0, 1] (0 off the mesh) and coverage alpha (B, 1, H, W)."""
    B = params.batch_size
    cam = camera.expand(B) if camera.batch_size == 1 and B > 1 else camera
    verts = model(params).vertices
    fragments = rasterize(cam.to_screen(verts), model.faces, cam.image_size, cull_backfaces=True)
    face_uvs = model.uvs[model.uv_faces][None]                      # (1, F, 3, 2)
    uv = interpolate(fragments, face_uvs.to(verts.dtype))           # (B, H, W, 2)
    alpha = fragments.mask.to(verts.dtype)[:, None]
    return cam, verts, fragments, uv.permute(0, 3, 1, 2) * alpha, alpha


def rasterize_uv_and_region(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera,
                            selected_faces: torch.Tensor | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Rasterize the posed mesh once to UV coordinates, coverage and (optionally) a region's coverage.

    Args:
        model: the face model (its ``uvs``/``uv_faces`` give the texture layout).
        params: B frames of parameters.
        camera: one camera (broadcast) or B cameras.
        selected_faces: (F,) bool triangles of a region (e.g. from :func:`region_faces`).

    Returns:
        uv (B, 2, H, W) in [0, 1] (0 off the mesh), alpha (B, 1, H, W) coverage in {0, 1}, and the
        coverage of ``selected_faces`` (B, 1, H, W) (``None`` when not asked for).
    """
    _, verts, fragments, uv, alpha = _rasterize_posed(model, params, camera)
    region = None
    if selected_faces is not None:
        hit = fragments.pix_to_face.clamp_min(0)
        region = (selected_faces.to(hit.device)[hit] & fragments.mask)[:, None].to(verts.dtype)
    return uv, alpha, region


def rasterize_uv_and_normals(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """UVs and coverage as :func:`rasterize_uv_and_region`, and the posed mesh's unit vertex normals in
    camera space interpolated per pixel (B, 3, H, W; 0 off the mesh), from one rasterization.

    Light and view are fixed in camera space, so the normals tell a screen-space decoder how each surface
    patch faces them whatever the head pose; UVs alone say that only through their gradients.
    """
    cam, verts, fragments, uv, alpha = _rasterize_posed(model, params, camera)
    normals = torch.einsum("bij,bvj->bvi", cam.R.to(verts.dtype), vertex_normals(verts, model.faces))
    pixels = F.normalize(interpolate_vertex_attrs(fragments, model.faces, normals), dim=-1, eps=1e-12)
    return uv, alpha, pixels.permute(0, 3, 1, 2) * alpha


def region_mask(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera,
                include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> torch.Tensor:
    """(B, 1, H, W) pixels covered by mesh triangles whose vertices all lie in the ``include`` regions
    (any vertex when empty) and none in the ``exclude`` regions."""
    return rasterize_uv_and_region(model, params, camera, region_faces(model, include, exclude))[2]


def face_mask(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera) -> torch.Tensor:
    """(B, 1, H, W) the face (:func:`face_faces`)."""
    region = rasterize_uv_and_region(model, params, camera, face_faces(model))[2]
    assert region is not None
    return region


def mouth_mask(model: MorphableModel, params: FaceParams, camera: PerspectiveCamera) -> torch.Tensor:
    """(B, 1, H, W) pixels covered by the lips and the mouth interior."""
    return region_mask(model, params, camera, include=MOUTH_REGIONS)


def expand_mask(alpha: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grow a (B, 1, H, W) mask by ``pixels`` (square dilation via max-pooling).

    A square max filter is separable: a row pass then a column pass give exactly the 2D result, ~3x faster.
    """
    if pixels <= 0:
        return alpha
    k = 2 * pixels + 1
    rows = F.max_pool2d(alpha, (1, k), stride=1, padding=(0, pixels))
    return F.max_pool2d(rows, (k, 1), stride=1, padding=(pixels, 0))


def feather(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Soft edge: (B,1,H,W) mask blurred by a box filter of ``2 * pixels + 1`` inside its own support."""
    if pixels <= 0:
        return mask
    # Both square filters are separable (row pass, then column pass): same result, ~3x faster.
    k = 2 * pixels + 1
    eroded = -expand_mask(-mask, pixels)
    rows = F.avg_pool2d(eroded, (1, k), stride=1, padding=(0, pixels), count_include_pad=False)
    return F.avg_pool2d(rows, (k, 1), stride=1, padding=(pixels, 0), count_include_pad=False)
