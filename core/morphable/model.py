"""The morphable model as a torch module, and mesh helpers shared by the model loaders.

:class:`MorphableModel` turns a :class:`~core.morphable.data.ModelData` into buffers (so ``.to(device)``
and ``.double()`` work) and evaluates FLAME-style parameters with :func:`core.morphable.lbs.lbs`.

The helpers below (surface embeddings, landmark heuristics, region masks, UV projection) are used by the
FLAME and ICT loaders when a model file lacks some piece (landmark embedding, masks, UVs); every
heuristic is approximate and says so.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from core.morphable.data import JOINT_NAMES, REGION_NAMES, FaceOutput, FaceParams, ModelData
from core.morphable.lbs import lbs


class MorphableModel(nn.Module):
    """A linear morphable head with linear blend skinning (FLAME, ICT FaceKit, the procedural head).

    Buffers (not saved in ``state_dict``: they are rebuilt from the model files):
        v_template (V, 3), shapedirs (V, 3, S), exprdirs (V, 3, E), posedirs (V, 3, P) or ``None``,
        joint_regressor (J, V), lbs_weights (V, J), parents (J,) int64, faces (F, 3) int64,
        uvs (T, 2), uv_faces (F, 3) int64, landmark_faces (68,) int64, landmark_bary (68, 3),
        albedo (H, W, 3) or ``None``, and one bool (V,) mask per region.

    Args:
        data: the model arrays (validated here).
        dtype: floating dtype of the buffers.
        device: where to put the buffers.
    """

    def __init__(self, data: ModelData, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        data.validate()
        if len(data.parents) != len(JOINT_NAMES):
            raise ValueError(f"model {data.name!r} has {len(data.parents)} joints; FaceParams drives exactly "
                             f"{len(JOINT_NAMES)} ({', '.join(JOINT_NAMES)})")
        self.name = data.name
        self._expr_names = list(data.expr_names)
        self._shape_names = list(data.shape_names) if data.shape_names is not None else None
        self._expr_aliases = {k: tuple(v) for k, v in (data.expr_aliases or {}).items()}
        self._region_buffer_names: dict[str, str] = {}

        def as_float(array: np.ndarray) -> torch.Tensor:
            return torch.tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

        def as_long(array: np.ndarray) -> torch.Tensor:
            return torch.tensor(np.ascontiguousarray(array), dtype=torch.int64, device=device)

        self.register_buffer("v_template", as_float(data.v_template), persistent=False)
        self.register_buffer("shapedirs", as_float(data.shapedirs), persistent=False)
        self.register_buffer("exprdirs", as_float(data.exprdirs), persistent=False)
        self.register_buffer("posedirs", None if data.posedirs is None else as_float(data.posedirs),
                             persistent=False)
        self.register_buffer("joint_regressor", as_float(data.joint_regressor), persistent=False)
        self.register_buffer("lbs_weights", as_float(data.lbs_weights), persistent=False)
        self.register_buffer("parents", as_long(data.parents), persistent=False)
        self.register_buffer("faces_buffer", as_long(data.faces), persistent=False)
        self.register_buffer("uvs_buffer", as_float(data.uvs), persistent=False)
        self.register_buffer("uv_faces_buffer", as_long(data.uv_faces), persistent=False)
        self.register_buffer("landmark_faces_buffer", as_long(data.landmark_faces), persistent=False)
        self.register_buffer("landmark_bary_buffer", as_float(data.landmark_bary), persistent=False)
        albedo = None if data.albedo is None else as_float(data.albedo)
        self.register_buffer("albedo", albedo, persistent=False)
        for index, (region, mask) in enumerate(data.regions.items()):
            buffer_name = f"region_{index}"
            self._region_buffer_names[region] = buffer_name
            self.register_buffer(buffer_name, torch.as_tensor(np.asarray(mask, dtype=bool), device=device),
                                 persistent=False)
        self._parents_list = [int(p) for p in data.parents]

    # ------------------------------------------------------------------ description
    @property
    def faces(self) -> torch.Tensor:
        """(F, 3) int64 triangles, counter-clockwise seen from outside."""
        return self.faces_buffer

    @property
    def uvs(self) -> torch.Tensor:
        """(T, 2) texture coordinates in [0, 1], v up."""
        return self.uvs_buffer

    @property
    def uv_faces(self) -> torch.Tensor:
        """(F, 3) int64 indices into :attr:`uvs`."""
        return self.uv_faces_buffer

    @property
    def landmark_faces(self) -> torch.Tensor:
        """(68,) int64 triangle of each iBUG-68 landmark."""
        return self.landmark_faces_buffer

    @property
    def landmark_bary(self) -> torch.Tensor:
        """(68, 3) barycentric coordinates of each landmark in its triangle."""
        return self.landmark_bary_buffer

    @property
    def regions(self) -> dict[str, torch.Tensor]:
        """Region name -> (V,) bool vertex mask (at least :data:`REGION_NAMES`)."""
        return {name: getattr(self, buffer) for name, buffer in self._region_buffer_names.items()}

    @property
    def region_names(self) -> list[str]:
        return list(self._region_buffer_names)

    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def n_expr(self) -> int:
        return int(self.exprdirs.shape[2])

    @property
    def expr_names(self) -> list[str]:
        return list(self._expr_names)

    @property
    def shape_names(self) -> list[str] | None:
        return None if self._shape_names is None else list(self._shape_names)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return JOINT_NAMES

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, vertices={self.n_vertices}, faces={int(self.faces.shape[0])}, "
                f"shape={self.n_shape}, expression={self.n_expr}, posedirs={self.posedirs is not None}")

    def expression_indices(self, name: str) -> list[int]:
        """Indices of the expression modes a name drives: the mode of that exact name, else the modes of
        its alias (e.g. ICT maps ``"lips_press"`` onto ``mouthPress_L`` and ``mouthPress_R``); ``[]`` when
        the model has nothing for it."""
        if name in self._expr_names:
            return [self._expr_names.index(name)]
        return [self._expr_names.index(n) for n in self._expr_aliases.get(name, ()) if n in self._expr_names]

    def expression_index(self, name: str) -> int | None:
        """Index of the expression mode called ``name`` (or aliased to exactly one mode); ``None`` if none."""
        indices = self.expression_indices(name)
        return indices[0] if len(indices) == 1 else None

    def region_faces(self, name: str) -> torch.Tensor:
        """(F_r, 3) int64 triangles whose three vertices are all in region ``name``."""
        regions = self.regions
        if name not in regions:
            raise KeyError(f"model {self.name!r} has no region {name!r}; it has {', '.join(regions)}")
        return self.faces[regions[name][self.faces].all(1)]

    def head_width(self) -> float:
        """x extent of the template's bounding box in metres (a scale for normalising errors)."""
        x = self.v_template[:, 0]
        return float(x.max() - x.min())

    # ------------------------------------------------------------------ evaluation
    def zero_params(self, batch: int, device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> FaceParams:
        """Neutral parameters with this model's coefficient counts (default: the model's device/dtype)."""
        return FaceParams.zeros(batch, self.n_shape, self.n_expr, device=device or self.device,
                                dtype=dtype or self.dtype)

    def _check_params(self, params: FaceParams) -> None:
        for label, tensor, available in (("shape", params.shape, self.n_shape),
                                         ("expression", params.expression, self.n_expr)):
            if tensor.dim() != 2:
                raise ValueError(f"FaceParams.{label} must be (B, K), got shape {tuple(tensor.shape)}")
            if tensor.shape[1] > available:
                raise ValueError(f"FaceParams has {tensor.shape[1]} {label} coefficients but model "
                                 f"{self.name!r} has only {available}; slice them to [:, :{available}]")
        batch = params.batch_size
        for label, tensor in params.tensors().items():
            if tensor.device != self.device or tensor.dtype != self.dtype:
                raise ValueError(f"FaceParams.{label} is {tensor.dtype} on {tensor.device} but the model is "
                                 f"{self.dtype} on {self.device}; use params.to(model.device, model.dtype)")
            width = {"jaw_pose": 3, "neck_pose": 3, "eye_pose": 6, "rotation": 3, "translation": 3}.get(label)
            if width is not None and tuple(tensor.shape) != (batch, width):
                raise ValueError(f"FaceParams.{label} must be ({batch}, {width}), got {tuple(tensor.shape)}")
            if label == "shape" and tensor.shape[0] not in (1, batch):
                raise ValueError(f"FaceParams.shape batch {tensor.shape[0]} must be 1 or {batch}")

    def pose_vector(self, params: FaceParams) -> torch.Tensor:
        """(B, 5, 3) axis-angles in joint order: rotation (root), neck, jaw, left eye, right eye."""
        eyes = params.eye_pose.view(-1, 2, 3)
        single = [params.rotation[:, None], params.neck_pose[:, None], params.jaw_pose[:, None]]
        return torch.cat([*single, eyes], 1)

    def forward(self, params: FaceParams) -> FaceOutput:
        """Evaluate the model for a batch of B parameter sets.

        Fewer shape/expression coefficients than the model has count as zero-padded; more is an error.

        Returns:
            :class:`FaceOutput` with vertices (B, V, 3), landmarks (B, 68, 3), joints (B, J, 3) and the
            joints' world transforms (B, J, 4, 4).
        """
        self._check_params(params)
        result = lbs(params.shape, params.expression, self.pose_vector(params), self.v_template,
                     self.shapedirs, self.exprdirs, self.joint_regressor, self._parents_list,
                     self.lbs_weights, posedirs=self.posedirs, translation=params.translation)
        landmarks = self.landmarks_from_vertices(result.vertices)
        return FaceOutput(result.vertices, landmarks, result.joints, result.world_transforms)

    def landmarks_from_vertices(self, vertices: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) vertices -> (B, 68, 3) landmarks by barycentric interpolation in their triangles."""
        corners = vertices[:, self.faces[self.landmark_faces]]  # (B, 68, 3, 3)
        return (corners * self.landmark_bary[None, :, :, None]).sum(2)


# ====================================================================== mesh helpers for the loaders


def vertex_embedding(faces: np.ndarray, vertex_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Express mesh vertices as surface points: (N,) vertex ids -> (N,) triangle ids, (N, 3) one-hot
    barycentric coordinates (the first triangle that uses each vertex)."""
    vertex_ids = np.asarray(vertex_ids, dtype=np.int64)
    n_faces = len(faces)
    first = np.full(int(max(faces.max(), vertex_ids.max())) + 1, -1, dtype=np.int64)
    # Reverse assignment so that the lowest triangle index wins for every vertex.
    first[faces.ravel()[::-1]] = np.repeat(np.arange(n_faces), 3)[::-1]
    tri = first[vertex_ids]
    if (tri < 0).any():
        raise ValueError(f"vertices {vertex_ids[tri < 0].tolist()} belong to no triangle")
    bary = (faces[tri] == vertex_ids[:, None]).astype(np.float64)
    return tri, bary


def project_to_surface(vertices: np.ndarray, faces: np.ndarray, xy: np.ndarray,
                       face_mask: np.ndarray | None = None, chunk: int = 8192
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shoot rays along -z at points (N, 2) and return the frontmost hit on a front-facing triangle.

    Only triangles facing +z count (a ray through a hole must not land on the inside of the back of the
    head). A ray that hits nothing lands on the front-facing triangle whose centroid is nearest in xy, at
    the clamped barycentric coordinates of the point, so the result is always on the surface.

    Returns:
        triangle ids (N,), barycentric coordinates (N, 3), hit flags (N,) bool.
    """
    candidates = np.flatnonzero(face_mask) if face_mask is not None else np.arange(len(faces))
    a, b, c = (vertices[faces[candidates, k]] for k in range(3))
    facing = ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])) > 0
    candidates = candidates[facing]
    if len(candidates) == 0:
        raise ValueError("no triangle faces +z: is the model oriented with the head facing +z?")
    n = len(xy)
    best_z = np.full(n, -np.inf)
    best_tri = np.full(n, -1, dtype=np.int64)
    best_bary = np.zeros((n, 3))

    def barycentric(ids: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(N, C, 3) barycentric coordinates of points (N, 2) in the xy projections of triangles ids (C,)."""
        a, b, c = (vertices[faces[ids, k], :2] for k in range(3))
        v0, v1 = b - a, c - a
        det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]  # > 0: front-facing
        p = points[:, None, :] - a[None]
        l1 = (p[..., 0] * v1[:, 1] - p[..., 1] * v1[:, 0]) / det
        l2 = (v0[:, 0] * p[..., 1] - v0[:, 1] * p[..., 0]) / det
        return np.stack([1.0 - l1 - l2, l1, l2], -1)

    rows = np.arange(n)
    for start in range(0, len(candidates), chunk):  # bounded memory: (N, chunk) work per step
        ids = candidates[start:start + chunk]
        bary = barycentric(ids, xy)
        inside = (bary >= -1e-9).all(-1)
        z = (bary * vertices[faces[ids], 2][None]).sum(-1)
        z = np.where(inside, z, -np.inf)
        pick = z.argmax(1)
        better = z[rows, pick] > best_z
        best_z = np.where(better, z[rows, pick], best_z)
        best_tri = np.where(better, ids[pick], best_tri)
        best_bary = np.where(better[:, None], bary[rows, pick], best_bary)
    hit = best_tri >= 0
    if not hit.all():
        miss = np.flatnonzero(~hit)
        centroids = vertices[faces[candidates], :2].mean(1)
        nearest = candidates[((centroids[None] - xy[miss, None]) ** 2).sum(-1).argmin(1)]
        best_tri[miss] = nearest
        best_bary[miss] = barycentric(nearest, xy[miss])[np.arange(len(miss)), np.arange(len(miss))]
    best_bary = np.clip(best_bary, 0.0, None)
    best_bary /= best_bary.sum(1, keepdims=True)
    return best_tri, best_bary, hit


def canonical_landmarks_2d() -> np.ndarray:
    """(68, 2) iBUG-68 layout of an average adult face in metres, nose tip at the origin, x = the face's
    left, y up. Built from rough anthropometric proportions (eye line ~3 cm above the nose tip, mouth
    ~3.7 cm below, chin ~8 cm below, face ~15 cm wide); only used when a model has no landmark embedding.
    """
    points = np.zeros((68, 2))
    # Jaw contour 0..16, from the face's right (-x) round the chin to its left: an elliptic arc.
    t = np.linspace(0.0, math.pi, 17)
    points[:17, 0] = -0.074 * np.cos(t)
    points[:17, 1] = 0.033 - 0.113 * np.sin(t)
    # Brows: right 17..21 outer -> inner, left 22..26 inner -> outer; a low arch.
    u = np.linspace(0.0, 1.0, 5)
    brow_x = 0.058 - 0.046 * u
    brow_y = 0.047 + 0.011 * np.sin(math.pi * (0.25 + 0.6 * u))
    points[17:22] = np.stack([-brow_x, brow_y], 1)
    points[22:27] = np.stack([brow_x[::-1], brow_y[::-1]], 1)
    # Nose bridge 27..30 down to the tip, nostril base 31..35 right -> left.
    points[27:31] = np.stack([np.zeros(4), [0.033, 0.022, 0.011, 0.0]], 1)
    points[31:36] = np.stack([[-0.0125, -0.006, 0.0, 0.006, 0.0125], [-0.0155, -0.0155, -0.016, -0.0155,
                                                                      -0.0155]], 1)
    # Eyes: 36..41 right eye (outer corner first, clockwise in the image), 42..47 left eye (inner first).
    angles = np.radians([0.0, 60.0, 120.0, 180.0, 240.0, 300.0])
    for start, sign in ((36, -1.0), (42, 1.0)):
        # Angle 0 is the corner nearer -x: the right eye's outer corner (36), the left eye's inner one (42).
        xs = sign * 0.031 - 0.013 * np.cos(angles)
        ys = 0.030 + np.where(np.sin(angles) >= 0, 0.0037, 0.0032) * np.sin(angles)
        points[start:start + 6] = np.stack([xs, ys], 1)
    # Mouth: outer 48..59 (right corner, over the top to the left corner, back along the bottom),
    # inner 60..67 likewise.
    outer_top = np.array([[-0.0253, -0.0393], [-0.017, -0.0319], [-0.0073, -0.0283], [0.0, -0.0289]])
    outer_bottom = np.array([[0.018, -0.0447], [0.0103, -0.0471], [0.0, -0.0479]])
    points[48:52] = outer_top
    points[52:55] = outer_top[2::-1] * [-1.0, 1.0]
    points[55:58] = outer_bottom
    points[58:60] = outer_bottom[1::-1] * [-1.0, 1.0]
    inner_top = np.array([[-0.0221, -0.039], [-0.010, -0.0371], [0.0, -0.0373]])
    points[60:63] = inner_top
    points[63:65] = inner_top[1::-1] * [-1.0, 1.0]
    points[65:68] = np.array([[0.0107, -0.0379], [0.0, -0.0381], [-0.0107, -0.0379]])
    return points


def heuristic_landmark_embedding(vertices: np.ndarray, faces: np.ndarray, face_mask: np.ndarray | None = None,
                                 face_width: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate iBUG-68 embedding for a head facing +z without one: the :func:`canonical_landmarks_2d`
    layout is scaled to the face, centred on the nose tip (the frontmost vertex) and projected onto the
    surface along -z. Accurate to roughly a centimetre on an average face; documented as approximate.

    Args:
        vertices: (V, 3) template; faces: (F, 3); face_mask: optional (F,) triangles eligible for hits.
        face_width: width between the jaw contour's top points in model units (default: 0.85 times the
            head's x extent at the height of the nose tip).

    Returns:
        (68,) triangle ids and (68, 3) barycentric coordinates.
    """
    used = np.unique(faces if face_mask is None else faces[face_mask])
    tip = vertices[used[np.argmax(vertices[used, 2])]]
    if face_width is None:
        # The head's width at the nose-tip height includes the ears; the jaw contour spans ~85 % of it.
        height = float(np.ptp(vertices[used, 1]))
        band = used[np.abs(vertices[used, 1] - tip[1]) < 0.03 * height]
        face_width = 0.85 * float(np.ptp(vertices[band if len(band) >= 2 else used, 0]))
    scale = face_width / 0.148
    xy = tip[:2] + scale * canonical_landmarks_2d()
    tri, bary, _ = project_to_surface(vertices, faces, xy, face_mask)
    return tri, bary


def embedding_points(vertices: np.ndarray, faces: np.ndarray, tri: np.ndarray,
                     bary: np.ndarray) -> np.ndarray:
    """(N, 3) positions of surface points given as triangle ids + barycentric coordinates."""
    return (vertices[faces[tri]] * bary[..., None]).sum(1)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised: (N, 2) points, (P, 2) closed polygon -> (N,) bool."""
    x, y = points[:, 0:1], points[:, 1:2]
    xi, yi = polygon[:, 0][None], polygon[:, 1][None]
    xj, yj = np.roll(polygon[:, 0], -1)[None], np.roll(polygon[:, 1], -1)[None]
    crosses = (yi > y) != (yj > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = (xj - xi) * (y - yi) / np.where(yj == yi, 1.0, yj - yi) + xi
    return ((crosses & (x < x_cross)).sum(1) % 2) == 1


def distance_to_polyline(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """(N, 2) points, (P, 2) open polyline -> (N,) Euclidean distance."""
    a, b = polyline[:-1][None], polyline[1:][None]  # (1, S, 2)
    ab = b - a
    t = (((points[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-30)).clip(0.0, 1.0)
    closest = a + t[..., None] * ab
    return np.sqrt(((points[:, None] - closest) ** 2).sum(-1)).min(1)


def landmark_regions(vertices: np.ndarray, landmarks: np.ndarray,
                     candidates: np.ndarray) -> dict[str, np.ndarray]:
    """Region masks derived from landmark positions (a documented approximation).

    Args:
        vertices: (V, 3) template; landmarks: (68, 3) on it; candidates: (V,) bool skin vertices.

    Returns:
        ``face`` (inside the jaw contour closed over a forehead raised 2.5 brow-to-eye distances above the
        brows, in front of the contour's top points), ``lips`` (inside the outer lip contour, within reach of
        the lip surface), ``mouth_opening`` (inside the inner lip contour), ``brows`` (within 0.07
        inter-ocular distances of the brow lines), ``eye_openings`` (inside the eyelid contours).
    """
    xy = vertices[:, :2]
    z = vertices[:, 2]
    lm = landmarks
    iod = float(np.linalg.norm(lm[45, :2] - lm[36, :2]))  # outer eye corners
    mouth_width = float(np.linalg.norm(lm[54, :2] - lm[48, :2]))
    brow_lift = 2.5 * float(lm[17:27, 1].mean() - lm[36:48, 1].mean())
    outline = np.concatenate([lm[0:17, :2], lm[26:16:-1, :2] + [0.0, brow_lift]])
    face = candidates & points_in_polygon(xy, outline) & (z > min(lm[0, 2], lm[16, 2]) - 0.05 * iod)
    lips = candidates & points_in_polygon(xy, lm[48:60, :2]) & (z > lm[48:60, 2].min() - 0.3 * mouth_width)
    opening = points_in_polygon(xy, lm[60:68, :2]) & (z > lm[48:60, 2].min() - 0.3 * mouth_width)
    brow_distance = np.minimum(distance_to_polyline(xy, lm[17:22, :2]),
                               distance_to_polyline(xy, lm[22:27, :2]))
    brows = candidates & (brow_distance < 0.07 * iod) & (z > lm[17:27, 2].min() - 0.15 * iod)
    eyes = (points_in_polygon(xy, lm[36:42, :2]) | points_in_polygon(xy, lm[42:48, :2])) & (
        z > lm[36:48, 2].min() - 0.1 * iod)
    return {"face": face, "lips": lips, "mouth_opening": opening, "brows": brows, "eye_openings": eyes}


def connected_components(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """(V,) component label of each vertex (isolated vertices get their own labels)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components as components

    rows = faces.ravel()
    cols = np.roll(faces, 1, axis=1).ravel()
    graph = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))
    return components(graph, directed=False)[1]


def boundary_vertices(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """(V,) bool: vertices on an edge used by exactly one triangle (mesh holes and borders)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    keys = edges[:, 0] * n_vertices + edges[:, 1]
    unique, counts = np.unique(keys, return_counts=True)
    single = unique[counts == 1]
    mask = np.zeros(n_vertices, dtype=bool)
    mask[single // n_vertices] = True
    mask[single % n_vertices] = True
    return mask


def spherical_uvs(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fallback UV layout when a model has none: longitude/latitude around the bounding-box centre, the
    seam at the back of the head (u = 0 / 1 behind, the face in the middle of the image).

    Triangles that straddle the seam get their wrapped corners on the same side, clipped into [0, 1]: the
    few triangles at the back seam are distorted, the face is not.

    Returns:
        uvs (T, 2) in [0, 1] and uv_faces (F, 3).
    """
    centre = 0.5 * (vertices.min(0) + vertices.max(0))
    d = vertices - centre
    radius = np.maximum(np.linalg.norm(d, axis=1), 1e-12)
    u = 0.5 + np.arctan2(d[:, 0], d[:, 2]) / (2.0 * math.pi)  # face (+z) at u = 0.5
    v = 0.5 + np.arcsin(np.clip(d[:, 1] / radius, -1.0, 1.0)) / math.pi
    # Vertices on the vertical axis (poles) have no longitude: they take their triangle's mean.
    pole = (d[:, 0] ** 2 + d[:, 2] ** 2) < (1e-6 * radius) ** 2
    corner_u = u[faces]  # (F, 3)
    corner_pole = pole[faces]
    span = (np.where(corner_pole, -np.inf, corner_u).max(1, keepdims=True)
            - np.where(corner_pole, np.inf, corner_u).min(1, keepdims=True))
    wrap = (span > 0.5) & (corner_u < 0.5)
    corner_u = np.where(wrap, corner_u + 1.0, corner_u)
    real = (~corner_pole).sum(1, keepdims=True)
    mean_u = np.where(corner_pole, 0.0, corner_u).sum(1, keepdims=True) / np.maximum(real, 1)
    corner_u = np.clip(np.where(corner_pole, mean_u, corner_u), 0.0, 1.0)
    corners = np.stack([corner_u, v[faces]], -1).reshape(-1, 2)
    uvs, inverse = np.unique(np.round(corners, 9), axis=0, return_inverse=True)
    return uvs, inverse.reshape(-1, 3).astype(np.int64)


def check_regions(regions: dict[str, np.ndarray], n_vertices: int) -> dict[str, np.ndarray]:
    """Ensure every :data:`REGION_NAMES` entry exists as a (V,) bool mask (missing ones are empty)."""
    out = {name: np.asarray(mask, dtype=bool).reshape(n_vertices) for name, mask in regions.items()}
    for name in REGION_NAMES:
        out.setdefault(name, np.zeros(n_vertices, dtype=bool))
    return out
