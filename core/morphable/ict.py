"""ICT FaceKit loader (the ICT-VGL/ICT-FaceKit model, MIT licence), and a vectorised OBJ reader.

The user's copy of ICT FaceKit's ``FaceXModel`` folder holds:

- ``generic_neutral_mesh.obj`` — the template: 26,719 vertices (face, head and neck, mouth socket, eye
  sockets, gums and tongue, teeth, eyeballs, and transparent eye overlays/eyelashes), quads + triangles
  (fan-triangulated here), UVs spread over several UDIM tiles (one per material).
- ``identityNNN.obj`` — identity modes; the shape basis is ``identity - neutral``.
- ``<ARKit name>.obj`` (``jawOpen.obj``, ``mouthClose.obj``...) — expression modes, ``shape - neutral``.
- ``vertex_indices.json`` — the expression list and ``idx_to_landmark_verts``, the 68 iBUG landmarks as
  vertex ids (used as the landmark embedding).

Conversions and approximations (ICT has no skeleton, no single UV square and no region masks):

- Units: ICT is in centimetres; positions are scaled to metres (``scale=0.01``).
- Parts: the full mesh's vertex ranges (ICT FaceKit README; they coincide with the OBJ's material groups)
  name face, head/neck, mouth socket, eye sockets, gums/tongue, teeth, eyeballs and overlays. The overlays
  (lacrimal fluid, eye blend, eye occlusion, eyelashes) are transparent in ICT's renders, so they are
  dropped unless ``include_overlays=True`` (they are the last vertices, so other ids are unchanged).
- UVs: each (material, UDIM tile) chart gets its own cell of a g x g grid; the largest chart (the face)
  takes the (g-1) x (g-1) block at the top left, the others the L-shaped border, so nothing overlaps and
  every coordinate lies in [0, 1].
- Skeleton (FLAME's five joints, rigid weights): ``global`` at the base of the neck and ``neck`` in the
  middle of the neck (means of horizontal rings of skin vertices 0.4 and 0.3 face heights below the
  chin); ``jaw`` midway between the jaw-contour landmarks 1 and 15 (the hinge axis' mid-point, a little
  in front of the true TMJ); each eye at the bounding-box centre of its eyeball (mean of its six extreme
  vertices). Weights: eyeballs to their eye; the lower lip, chin and lower teeth/gums/tongue to the jaw
  (split at the mouth line, fading out behind the jaw angle and down the throat); the neck blends from
  ``global`` to ``neck``; everything else to ``neck``. ``jawOpen`` is already an expression mode, so the
  jaw joint is an extra rigid control (trackers may leave it at zero for ICT).
- Regions: ``face``/``lips``/``brows`` from the landmark contours restricted to the face part,
  ``mouth_interior`` = mouth socket + gums/tongue + teeth, ``eyes`` = the eyeballs; the parts are kept
  as extra regions.
- Landmarks without ``vertex_indices.json``: :func:`core.morphable.model.heuristic_landmark_embedding`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.morphable.data import JOINT_NAMES, ModelData
from core.morphable.model import (
    check_regions,
    connected_components,
    embedding_points,
    heuristic_landmark_embedding,
    landmark_regions,
    vertex_embedding,
)

ICT_URL = "https://github.com/ICT-VGL/ICT-FaceKit (folder FaceXModel)"
ICT_DIR_ENV = "EMODUB_ICT_DIR"
DEFAULT_ICT_DIR = Path.home() / ".emodub" / "ict"
ICT_NEUTRAL = "generic_neutral_mesh.obj"
ICT_VERTEX_INDICES = "vertex_indices.json"
ICT_VERTEX_COUNT = 26719
# Vertex ranges of the full ICT FaceKit mesh (inclusive, from its README; they match the material groups).
ICT_PARTS: dict[str, tuple[int, int]] = {
    "face_part": (0, 9408), "head_neck": (9409, 11247), "mouth_socket": (11248, 13293),
    "eye_socket_left": (13294, 13677), "eye_socket_right": (13678, 14061), "gums_tongue": (14062, 17038),
    "teeth": (17039, 21450), "eyeball_left": (21451, 23020), "eyeball_right": (23021, 24590),
    "lacrimal_fluid": (24591, 24998), "eye_blend": (24999, 25046), "eye_occlusion": (25047, 25350),
    "eyelashes": (25351, 26718),
}
ICT_OVERLAYS: tuple[str, ...] = ("lacrimal_fluid", "eye_blend", "eye_occlusion", "eyelashes")
# Names of core.morphable.data.PROCEDURAL_EXPRESSIONS realised by ICT's ARKit-style modes.
ICT_ALIASES: dict[str, tuple[str, ...]] = {
    "mouth_open": ("jawOpen",), "mouth_wide": ("mouthStretch_L", "mouthStretch_R"),
    "mouth_round": ("mouthFunnel", "mouthPucker"), "lips_pucker": ("mouthPucker",),
    "lips_funnel": ("mouthFunnel",), "lips_press": ("mouthPress_L", "mouthPress_R"),
    "upper_lip_raise": ("mouthUpperUp_L", "mouthUpperUp_R"),
    "lower_lip_depress": ("mouthLowerDown_L", "mouthLowerDown_R"),
    "lips_stretch": ("mouthStretch_L", "mouthStretch_R"), "mouth_left": ("mouthLeft",),
    "mouth_right": ("mouthRight",), "lower_lip_roll": ("mouthRollLower",),
    "upper_lip_roll": ("mouthRollUpper",), "chin_raise": ("mouthShrugLower",), "jaw_forward": ("jawForward",),
    "smile_left": ("mouthSmile_L",), "smile_right": ("mouthSmile_R",), "frown_left": ("mouthFrown_L",),
    "frown_right": ("mouthFrown_R",), "dimple_left": ("mouthDimple_L",), "dimple_right": ("mouthDimple_R",),
    "brow_up_left": ("browOuterUp_L",), "brow_up_right": ("browOuterUp_R",),
    "brow_down_left": ("browDown_L",), "brow_down_right": ("browDown_R",),
    "brow_inner_up": ("browInnerUp_L", "browInnerUp_R"), "squint_left": ("eyeSquint_L",),
    "squint_right": ("eyeSquint_R",), "blink_left": ("eyeBlink_L",), "blink_right": ("eyeBlink_R",),
    "eye_wide_left": ("eyeWide_L",), "eye_wide_right": ("eyeWide_R",),
    "cheek_puff": ("cheekPuff_L", "cheekPuff_R"), "cheek_raise_left": ("cheekSquint_L",),
    "cheek_raise_right": ("cheekSquint_R",), "sneer_left": ("noseSneer_L",), "sneer_right": ("noseSneer_R",),
}


@dataclass
class ObjMesh:
    """A Wavefront OBJ mesh, polygons fan-triangulated.

    Attributes:
        vertices: (V, 3) float64 positions as stored.
        faces: (F, 3) int64 0-based vertex indices.
        uvs: (T, 2) float64 texture coordinates (``(0, 2)`` when the file has none).
        uv_faces: (F, 3) int64 indices into ``uvs`` or ``None`` when faces carry no ``vt`` index.
        face_material: (F,) int64 index into ``materials`` of each triangle (-1 before any ``usemtl``).
        materials: material names in order of first use.
        face_polygon: (F,) int64 index of the source polygon of each triangle.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    uv_faces: np.ndarray | None
    face_material: np.ndarray
    materials: list[str]
    face_polygon: np.ndarray


class ObjFormatError(ValueError):
    """The OBJ file cannot be parsed; the message names the file and the problem."""


def _floats(lines: list[str], width: int, path: Path, tag: str) -> np.ndarray:
    """Parse ``tag x y z ...`` lines into (N, width), ignoring optional extra columns (w, colours)."""
    if not lines:
        return np.zeros((0, width))
    cut = len(tag) + 1
    joined = " ".join(line[cut:] for line in lines).split()
    if len(joined) == width * len(lines):
        return np.array(joined, dtype=np.float64).reshape(-1, width)
    try:  # some lines carry extra columns: fall back to one split per line
        return np.array([line.split()[1:1 + width] for line in lines], dtype=np.float64)
    except ValueError as error:
        raise ObjFormatError(f"{path}: malformed '{tag}' line ({error})") from None


def read_obj_vertices(path: str | Path) -> np.ndarray:
    """Only the (V, 3) float64 vertex positions of an OBJ (fast path for blendshape files)."""
    path = Path(path)
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.startswith("v ")]
    return _floats(lines, 3, path, "v")


def read_obj(path: str | Path) -> ObjMesh:
    """Parse an OBJ with ``v``, ``vt``, ``f`` (``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn`` corners, any
    polygon size) and ``usemtl`` lines; polygons are fan-triangulated in their stored winding."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OBJ file not found: {path}")
    lines = path.read_text(errors="replace").splitlines()
    vertex_lines: list[str] = []
    uv_lines: list[str] = []
    face_lines: list[str] = []
    face_material_ids: list[int] = []
    materials: list[str] = []
    current = -1
    for line in lines:  # OBJ is line based; one cheap dispatch per line, the numbers are parsed in bulk
        head = line[:2]
        if head == "v ":
            vertex_lines.append(line)
        elif head == "vt":
            uv_lines.append(line)
        elif head == "f ":
            face_lines.append(line)
            face_material_ids.append(current)
        elif line.startswith("usemtl"):
            name = line[6:].strip()
            if name not in materials:
                materials.append(name)
            current = materials.index(name)
    vertices = _floats(vertex_lines, 3, path, "v")
    uvs = _floats(uv_lines, 2, path, "vt")
    if not face_lines:
        raise ObjFormatError(f"{path}: no faces ('f' lines)")

    corners = [line.split()[1:] for line in face_lines]
    counts = np.array([len(c) for c in corners])
    if counts.min() < 3:
        raise ObjFormatError(f"{path}: a face has fewer than 3 corners")
    has_uv = "/" in corners[0][0] and corners[0][0].split("/")[1] != ""
    faces_out: list[np.ndarray] = []
    uv_faces_out: list[np.ndarray] = []
    polygon_out: list[np.ndarray] = []
    for n in np.unique(counts):
        rows = np.flatnonzero(counts == n)
        tokens = " ".join(" ".join(corners[r]) for r in rows)
        # v//vn has an empty texture slot: make it explicit so every corner has the same field count.
        fields = tokens.replace("//", "/0/").replace("/", " ").split()
        per_corner = len(fields) // (len(rows) * n)
        if per_corner * len(rows) * n != len(fields):
            raise ObjFormatError(f"{path}: faces of {n} corners mix corner formats (v, v/vt, v/vt/vn)")
        table = np.array(fields, dtype=np.int64).reshape(len(rows), n, per_corner)
        if (table[..., 0] < 0).any():
            raise ObjFormatError(f"{path}: negative (relative) vertex indices are not supported")
        fan = np.stack([np.zeros(n - 2, dtype=np.int64), np.arange(1, n - 1), np.arange(2, n)], 1)  # (n-2, 3)
        faces_out.append(table[:, fan, 0].reshape(-1, 3) - 1)
        if has_uv:
            if per_corner < 2:
                raise ObjFormatError(f"{path}: some faces lack texture-coordinate indices")
            uv_faces_out.append(table[:, fan, 1].reshape(-1, 3) - 1)
        polygon_out.append(np.repeat(rows, n - 2))
    order = np.argsort(np.concatenate(polygon_out), kind="stable")  # back to file order
    faces = np.concatenate(faces_out)[order]
    polygon = np.concatenate(polygon_out)[order]
    uv_faces = np.concatenate(uv_faces_out)[order] if has_uv else None
    if faces.max() >= len(vertices):
        raise ObjFormatError(f"{path}: a face references vertex {faces.max() + 1} of {len(vertices)}")
    if uv_faces is not None and (uv_faces.max() >= len(uvs) or uv_faces.min() < 0):
        raise ObjFormatError(f"{path}: a face references a missing texture coordinate")
    face_material = np.asarray(face_material_ids, dtype=np.int64)[polygon]
    return ObjMesh(vertices, faces, uvs, uv_faces, face_material, materials, polygon)


# ====================================================================== the ICT FaceKit model


def ict_dir() -> Path:
    """The folder searched for ICT FaceKit: ``$EMODUB_ICT_DIR`` or :data:`DEFAULT_ICT_DIR`."""
    env = os.environ.get(ICT_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_ICT_DIR


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _parts(mesh: ObjMesh) -> dict[str, np.ndarray]:
    """Named (V,) vertex masks: ICT's ranges for the full mesh, otherwise the whole mesh as face skin."""
    n = len(mesh.vertices)
    if n != ICT_VERTEX_COUNT:
        return {"face_part": np.ones(n, dtype=bool)}
    parts = {}
    for name, (first, last) in ICT_PARTS.items():
        mask = np.zeros(n, dtype=bool)
        mask[first:last + 1] = True
        parts[name] = mask
    return parts


def _pack_uvs(mesh: ObjMesh, faces_keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping UV layout in [0, 1] (see the module docstring): uvs (T, 2), uv_faces (F, 3)."""
    uvs, uv_faces = mesh.uvs, mesh.uv_faces[faces_keep]
    material = mesh.face_material[faces_keep]
    tile = np.floor(uvs[uv_faces, 0].mean(1)).clip(0).astype(np.int64)
    chart_key = (material + 1) * 1000 + tile
    charts, chart_of_face, chart_sizes = np.unique(chart_key, return_inverse=True, return_counts=True)
    if len(charts) == 1 and uvs.min() >= 0.0 and uvs.max() <= 1.0:
        used, inverse = np.unique(uv_faces, return_inverse=True)
        return uvs[used], inverse.reshape(-1, 3)
    primary = int(chart_sizes.argmax())
    others = [c for c in range(len(charts)) if c != primary]
    grid = 2
    while 2 * grid - 1 < len(others):
        grid += 1
    # Cell (column, row) of each chart, row 0 at the bottom (v up); scale of each chart.
    origin = np.zeros((len(charts), 2))
    size = np.full(len(charts), 1.0 / grid)
    origin[primary] = (0.0, 1.0 / grid)
    size[primary] = (grid - 1) / grid
    border = [(grid - 1, row) for row in range(grid - 1, -1, -1)] + [(col, 0) for col in range(grid - 1)]
    for chart, (col, row) in zip(others, border, strict=False):
        origin[chart] = (col / grid, row / grid)
    # One new UV per (chart, old UV) pair: a UV shared across charts is split.
    corner_chart = np.repeat(chart_of_face, 3)
    corner_uv = uv_faces.ravel()
    pairs, inverse = np.unique(corner_chart * len(uvs) + corner_uv, return_inverse=True)
    pair_chart, pair_uv = pairs // len(uvs), pairs % len(uvs)
    local = uvs[pair_uv] - np.stack([(charts[pair_chart] % 1000).astype(np.float64), np.zeros(len(pairs))], 1)
    local = local.clip(0.0, 1.0)
    packed = origin[pair_chart] + local * size[pair_chart, None]
    return packed, inverse.reshape(-1, 3).astype(np.int64)


def _ring_mean(vertices: np.ndarray, candidates: np.ndarray, height: float, half_band: float) -> np.ndarray:
    """(V,) regressor weights averaging the candidate vertices within ``half_band`` of ``height`` in y (the
    lowest 5 % of candidates when the mesh does not reach that low)."""
    ids = np.flatnonzero(candidates & (np.abs(vertices[:, 1] - height) < half_band))
    if len(ids) < 3:
        ys = vertices[candidates, 1]
        ids = np.flatnonzero(candidates & (vertices[:, 1] <= np.quantile(ys, 0.05)))
    row = np.zeros(len(vertices))
    row[ids] = 1.0 / len(ids)
    return row


def _skeleton(vertices: np.ndarray, faces: np.ndarray, parts: dict[str, np.ndarray], lmk_tri: np.ndarray,
              lmk_bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint regressor (J, V) and skinning weights (V, J) of the approximate ICT skeleton."""
    n = len(vertices)
    landmarks = embedding_points(vertices, faces, lmk_tri, lmk_bary)
    x, y, z = vertices.T
    chin_y = landmarks[8, 1]
    face_height = landmarks[27, 1] - chin_y
    skin_names = ("face_part", "head_neck", "mouth_socket", "eye_socket_left", "eye_socket_right")
    skin = np.zeros(n, dtype=bool)
    for name in skin_names:
        skin |= parts.get(name, np.zeros(n, dtype=bool))
    regressor = np.zeros((len(JOINT_NAMES), n))
    band = 0.04 * face_height
    regressor[0] = _ring_mean(vertices, skin, chin_y - 0.4 * face_height, band)
    regressor[1] = _ring_mean(vertices, skin, chin_y - 0.3 * face_height, band)
    for landmark in (1, 15):  # the jaw hinge's mid-point: half of each landmark's barycentric weights
        np.add.at(regressor[2], faces[lmk_tri[landmark]], 0.5 * lmk_bary[landmark])
    for joint, (part, eye_landmarks) in enumerate((("eyeball_left", slice(42, 48)),
                                                    ("eyeball_right", slice(36, 42))), start=3):
        ids = np.flatnonzero(parts.get(part, np.zeros(n, dtype=bool)))
        if len(ids):
            extremes = np.concatenate([ids[vertices[ids].argmin(0)], ids[vertices[ids].argmax(0)]])
            np.add.at(regressor[joint], extremes, 1.0 / 6.0)
        else:  # no eyeball geometry: the centre of the eyelid landmarks (nothing is skinned to it)
            for landmark in range(eye_landmarks.start, eye_landmarks.stop):
                np.add.at(regressor[joint], faces[lmk_tri[landmark]], lmk_bary[landmark] / 6.0)
    joints = regressor @ vertices
    global_y, neck_y = joints[0, 1], joints[1, 1]

    weights = np.zeros((n, len(JOINT_NAMES)))
    # Neck: global at its base, neck from the neck joint up (a smooth blend between the two rings).
    to_neck = _smoothstep((y - global_y) / max(neck_y - global_y, 1e-9))
    weights[:, 0] = 1.0 - to_neck
    weights[:, 1] = to_neck
    # Jaw on the skin: below the mouth line (sharp between the lips, wider across the cheeks), in front of
    # the jaw angle, fading out down the throat.
    mouth_y = landmarks[60:68, 1].mean()
    mouth_half_width = 0.5 * abs(landmarks[54, 0] - landmarks[48, 0])
    ramp = 0.005 * face_height + 1.0 * np.maximum(np.abs(x) - mouth_half_width, 0.0)
    below_mouth = _smoothstep((mouth_y - y) / ramp + 0.5)
    back_z = 0.5 * (landmarks[2, 2] + landmarks[14, 2])
    in_front = _smoothstep((z - (back_z - 0.1 * face_height)) / (0.15 * face_height))
    above_throat = _smoothstep((y - (chin_y - 0.3 * face_height)) / (0.2 * face_height))
    jaw = np.where(skin, below_mouth * in_front * above_throat, 0.0)
    # Mouth interior: lower teeth rigidly with the jaw, gums/tongue/socket split at the bite.
    teeth = parts.get("teeth", np.zeros(n, dtype=bool))
    occlusal_y = mouth_y
    if teeth.any():
        labels = connected_components(faces[teeth[faces].all(1)], n)
        tooth_labels = labels[teeth]
        centroid_y = np.bincount(tooth_labels, weights=y[teeth]) / np.maximum(np.bincount(tooth_labels), 1)
        present = np.unique(tooth_labels)
        occlusal_y = 0.5 * (centroid_y[present].max() + centroid_y[present].min())
        jaw[teeth] = (centroid_y[tooth_labels] < occlusal_y).astype(np.float64)
    none = np.zeros(n, dtype=bool)
    interior = parts.get("gums_tongue", none) | parts.get("mouth_socket", none)
    jaw[interior] = _smoothstep((occlusal_y - y[interior]) / (0.02 * face_height) + 0.5)
    weights[:, :2] *= (1.0 - jaw)[:, None]
    weights[:, 2] = jaw
    for joint, part in ((3, "eyeball_left"), (4, "eyeball_right")):
        mask = parts.get(part, np.zeros(n, dtype=bool))
        weights[mask] = 0.0
        weights[mask, joint] = 1.0
    weights /= weights.sum(1, keepdims=True)
    return regressor, weights


def _expression_files(folder: Path, names: list[str] | None, listed: list[str] | None) -> list[str]:
    if names is not None:
        missing = [n for n in names if not (folder / f"{n}.obj").is_file()]
        if missing:
            raise FileNotFoundError(f"ICT expression shapes not found in {folder}: "
                                    f"{', '.join(n + '.obj' for n in missing)}")
        return list(names)
    if listed is not None:
        return [n for n in listed if (folder / f"{n}.obj").is_file()]
    skip = {Path(ICT_NEUTRAL).stem}
    return sorted(p.stem for p in folder.glob("*.obj")
                  if p.stem not in skip and not p.stem.startswith("identity"))


def load_ict(folder: str | os.PathLike[str] | None = None, n_identity: int | None = None,
             expressions: list[str] | None = None, include_overlays: bool = False,
             scale: float = 0.01) -> ModelData:
    """Load ICT FaceKit as :class:`ModelData` (see the module docstring for every approximation).

    Args:
        folder: the ``FaceXModel`` folder (``None``: ``$EMODUB_ICT_DIR`` or ``~/.emodub/ict``).
        n_identity: identity modes to load (``identity000.obj`` upwards; ``None``: all present).
        expressions: expression mode names (``None``: those listed in ``vertex_indices.json`` that are
            present, or every other OBJ in the folder when there is no JSON).
        include_overlays: keep the transparent eye overlays and eyelashes.
        scale: factor from file units to metres (ICT is in centimetres).

    Raises:
        FileNotFoundError: the folder or ``generic_neutral_mesh.obj`` (or a requested expression) is absent.
    """
    folder = Path(folder).expanduser() if folder is not None else ict_dir()
    neutral_path = folder / ICT_NEUTRAL
    if not neutral_path.is_file():
        raise FileNotFoundError(f"ICT FaceKit template not found: {neutral_path}. Download ICT FaceKit from "
                                f"{ICT_URL} (MIT licence) and point the model path (or {ICT_DIR_ENV}) at "
                                f"its FaceXModel folder.")
    mesh = read_obj(neutral_path)
    n_all = len(mesh.vertices)
    info = json.loads((folder / ICT_VERTEX_INDICES).read_text()) if (folder / ICT_VERTEX_INDICES).is_file() \
        else {}

    identity_paths = sorted(folder.glob("identity*.obj"))
    if n_identity is not None:
        if n_identity > len(identity_paths):
            raise ValueError(f"n_identity={n_identity} but {folder} holds only {len(identity_paths)} "
                             f"identity*.obj files")
        identity_paths = identity_paths[:n_identity]
    expr_names = _expression_files(folder, expressions, info.get("expressions"))

    def deltas(paths: list[Path]) -> np.ndarray:
        out = np.zeros((n_all, 3, len(paths)))
        for k, path in enumerate(paths):
            shape = read_obj_vertices(path)
            if shape.shape != mesh.vertices.shape:
                raise ValueError(f"{path}: {len(shape)} vertices, the neutral mesh has {n_all}")
            out[:, :, k] = shape - mesh.vertices
        return out * scale

    shapedirs = deltas(identity_paths)
    exprdirs = deltas([folder / f"{name}.obj" for name in expr_names])

    parts = _parts(mesh)
    keep = np.ones(n_all, dtype=bool)
    if not include_overlays:
        for name in ICT_OVERLAYS:
            keep &= ~parts.pop(name, np.zeros(n_all, dtype=bool))
    new_index = np.cumsum(keep) - 1
    faces_keep = keep[mesh.faces].all(1)
    faces = new_index[mesh.faces[faces_keep]]
    vertices = mesh.vertices[keep] * scale
    shapedirs, exprdirs = shapedirs[keep], exprdirs[keep]
    parts = {name: mask[keep] for name, mask in parts.items()}

    if mesh.uv_faces is not None and len(mesh.uvs):
        uvs, uv_faces = _pack_uvs(mesh, faces_keep)
    else:
        from core.morphable.model import spherical_uvs

        uvs, uv_faces = spherical_uvs(vertices, faces)

    landmark_ids = info.get("idx_to_landmark_verts")
    if landmark_ids is not None and len(landmark_ids) == 68 and keep[np.asarray(landmark_ids)].all():
        lmk_tri, lmk_bary = vertex_embedding(faces, new_index[np.asarray(landmark_ids)])
    else:
        skin_faces = parts["face_part"][faces].all(1)
        lmk_tri, lmk_bary = heuristic_landmark_embedding(vertices, faces, skin_faces)
    landmarks = embedding_points(vertices, faces, lmk_tri, lmk_bary)
    regressor, weights = _skeleton(vertices, faces, parts, lmk_tri, lmk_bary)

    n = len(vertices)
    none = np.zeros(n, dtype=bool)
    face_part = parts["face_part"]
    derived = landmark_regions(vertices, landmarks, face_part)
    interior = parts.get("mouth_socket", none) | parts.get("gums_tongue", none) | parts.get("teeth", none)
    eyes = parts.get("eyeball_left", none) | parts.get("eyeball_right", none)
    regions = {
        "face": derived["face"], "lips": derived["lips"], "brows": derived["brows"],
        "mouth_interior": interior if interior.any() else derived["mouth_opening"],
        "eyes": eyes if eyes.any() else derived["eye_openings"],
    }
    regions.update(parts)
    aliases = {k: tuple(v for v in names if v in expr_names) for k, names in ICT_ALIASES.items()}
    data = ModelData(
        name="ict", v_template=vertices, faces=faces, shapedirs=shapedirs, exprdirs=exprdirs,
        expr_names=expr_names, joint_regressor=regressor, parents=np.array([-1, 0, 1, 1, 1]),
        lbs_weights=weights, uvs=uvs, uv_faces=uv_faces, landmark_faces=lmk_tri, landmark_bary=lmk_bary,
        regions=check_regions(regions, n), shape_names=[p.stem for p in identity_paths],
        expr_aliases={k: v for k, v in aliases.items() if v},
    )
    data.validate()
    return data
