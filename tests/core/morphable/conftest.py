"""Small synthetic heads shared by the morphable-model tests (fixtures only: tests use importlib mode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.morphable.data import ModelData
from core.morphable.model import (
    check_regions,
    connected_components,
    embedding_points,
    heuristic_landmark_embedding,
    landmark_regions,
    spherical_uvs,
)


def ellipsoid(n_lat: int, n_lon: int, radii: tuple[float, float, float],
              centre: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A closed latitude/longitude ellipsoid, triangles counter-clockwise seen from outside."""
    lat = np.linspace(0.0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0.0, 2.0 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ring = np.stack([np.sin(la) * np.sin(lo), np.cos(la), np.sin(la) * np.cos(lo)], -1).reshape(-1, 3)
    unit = np.concatenate([ring, [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]])
    top, bottom = len(ring), len(ring) + 1
    faces = []
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = (i + 1) * n_lon + (j + 1) % n_lon, (i + 1) * n_lon + j
            faces += [(a, b, c), (a, c, d)]
    last = (n_lat - 2) * n_lon
    for j in range(n_lon):
        faces.append((top, (j + 1) % n_lon, j))
        faces.append((bottom, last + j, last + (j + 1) % n_lon))
    faces = np.array(faces, dtype=np.int64)
    # Orient every triangle outwards (normal along the position on a convex shape).
    normal = np.cross(unit[faces[:, 1]] - unit[faces[:, 0]], unit[faces[:, 2]] - unit[faces[:, 0]])
    flip = (normal * unit[faces].mean(1)).sum(1) < 0
    faces[flip] = faces[flip][:, ::-1]
    return unit * np.asarray(radii) + np.asarray(centre), faces


def make_head() -> tuple[np.ndarray, np.ndarray]:
    """A head-like test mesh facing +z (metres): an ellipsoid with a nose bump, a mouth hole and two
    separate eyeball shells. About 850 vertices."""
    vertices, faces = ellipsoid(24, 32, (0.075, 0.11, 0.095), (0.0, 0.0, 0.0))
    nose = np.exp(-(vertices[:, 0] ** 2 + (vertices[:, 1] + 0.005) ** 2) / (2 * 0.012**2))
    vertices[:, 2] += 0.02 * nose * (vertices[:, 2] > 0)
    centroid = vertices[faces].mean(1)
    mouth = (np.abs(centroid[:, 0]) < 0.02) & (np.abs(centroid[:, 1] + 0.037) < 0.006) & (centroid[:, 2] > 0)
    faces = faces[~mouth]
    parts = [(vertices, faces)]
    for side in (1.0, -1.0):
        parts.append(ellipsoid(6, 8, (0.012,) * 3, (side * 0.031, 0.03, 0.075)))
    all_v, all_f, offset = [], [], 0
    for v, f in parts:
        all_v.append(v)
        all_f.append(f + offset)
        offset += len(v)
    return np.concatenate(all_v), np.concatenate(all_f)


def make_model_data(seed: int = 0, n_shape: int = 4, n_expr: int = 3, posedirs: bool = True) -> ModelData:
    """A complete small ModelData on :func:`make_head` with random smooth bases and a FLAME-like rig."""
    rng = np.random.default_rng(seed)
    vertices, faces = make_head()
    n = len(vertices)
    labels = connected_components(faces, n)
    head = labels == np.bincount(labels).argmax()

    def smooth_dirs(k: int, scale: float) -> np.ndarray:
        centres = rng.normal(size=(k, 3)) * 0.05
        amplitude = rng.normal(size=(k, 3)) * scale
        d2 = ((vertices[:, None, :] - centres[None]) ** 2).sum(-1)  # (V, k)
        return np.exp(-d2 / (2 * 0.04**2))[:, None, :] * amplitude.T[None]  # (V, 3, k)

    regressor = np.zeros((5, n))
    bottom = np.flatnonzero(head & (vertices[:, 1] < -0.09))
    regressor[0, bottom] = 1.0 / len(bottom)
    ring = np.flatnonzero(head & (np.abs(vertices[:, 1] + 0.06) < 0.008))
    regressor[1, ring] = 1.0 / len(ring)
    sides = np.flatnonzero(head & (np.abs(vertices[:, 1] + 0.01) < 0.01) & (np.abs(vertices[:, 0]) > 0.06))
    regressor[2, sides] = 1.0 / len(sides)
    eye_labels = [labels[np.argmin(((vertices - [s * 0.031, 0.03, 0.075]) ** 2).sum(1))] for s in (1.0, -1.0)]
    for joint, label in zip((3, 4), eye_labels, strict=True):
        members = np.flatnonzero(labels == label)
        regressor[joint, members] = 1.0 / len(members)
    weights = np.zeros((n, 5))
    weights[:, 1] = 1.0
    jaw = head & (vertices[:, 1] < -0.035) & (vertices[:, 2] > 0.02)
    weights[jaw] = [0.0, 0.3, 0.7, 0.0, 0.0]
    low = head & (vertices[:, 1] < -0.08)
    weights[low] = [0.6, 0.4, 0.0, 0.0, 0.0]
    for joint, label in zip((3, 4), eye_labels, strict=True):
        weights[labels == label] = np.eye(5)[joint]
    tri, bary = heuristic_landmark_embedding(vertices, faces, head[faces].all(1))
    landmarks = embedding_points(vertices, faces, tri, bary)
    derived = landmark_regions(vertices, landmarks, head)
    regions = check_regions({"face": derived["face"], "lips": derived["lips"], "brows": derived["brows"],
                             "eyes": ~head, "mouth_interior": derived["mouth_opening"]}, n)
    uvs, uv_faces = spherical_uvs(vertices, faces)
    return ModelData(
        name="test_head", v_template=vertices, faces=faces, shapedirs=smooth_dirs(n_shape, 0.01),
        exprdirs=smooth_dirs(n_expr, 0.005), expr_names=[f"e{i}" for i in range(n_expr)],
        joint_regressor=regressor, parents=np.array([-1, 0, 1, 1, 1]), lbs_weights=weights, uvs=uvs,
        uv_faces=uv_faces, landmark_faces=tri, landmark_bary=bary, regions=regions,
        posedirs=rng.normal(size=(n, 3, 36)) * 1e-3 if posedirs else None,
        expr_aliases={"smile": ("e0",), "both": ("e1", "e2")},
    )


def make_flame_arrays(vertices: np.ndarray, faces: np.ndarray, n_expr: int = 12,
                      seed: int = 0) -> dict[str, object]:
    """A FLAME-layout dictionary on a mesh: 300 identity + ``n_expr`` expression modes, posedirs,
    a sparse J_regressor, skinning weights and FLAME's kinematic tree (root parent stored as 2^32 - 1)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n = len(vertices)
    regressor = np.zeros((5, n))
    centres = [(0, -0.1, 0), (0, -0.06, 0), (0, -0.02, 0.03), (0.031, 0.03, 0.075), (-0.031, 0.03, 0.075)]
    for joint, centre in enumerate(centres):
        regressor[joint, np.argsort(((vertices - centre) ** 2).sum(1))[:4]] = 0.25
    weights = rng.uniform(size=(n, 5))
    return {
        "v_template": vertices, "f": faces.astype(np.uint32),
        "shapedirs": rng.normal(size=(n, 3, 300 + n_expr)) * 1e-3,
        "posedirs": rng.normal(size=(n, 3, 36)) * 1e-3, "J_regressor": sp.csc_matrix(regressor),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.uint32),
        "bs_style": "lbs", "bs_type": "lrotmin",
    }


def write_ict_folder(folder: Path, with_json: bool = False) -> dict[str, np.ndarray]:
    """A tiny ICT-FaceKit-like folder (centimetres, quads + triangles, v/vt/vn corners, two materials):
    generic_neutral_mesh.obj, identity000/001.obj, jawOpen.obj, mouthPucker.obj. Returns the positions
    written, by file stem."""
    n_lat, n_lon = 14, 20
    lat = np.linspace(0.0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0.0, 2.0 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    unit = np.stack([np.sin(la) * np.sin(lo), np.cos(la), np.sin(la) * np.cos(lo)], -1).reshape(-1, 3)
    unit = np.concatenate([unit, [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]])
    neutral = unit * [7.5, 11.0, 9.5]
    neutral[:, 2] += 2.0 * np.exp(-(neutral[:, 0] ** 2 + neutral[:, 1] ** 2) / 2.0) * (neutral[:, 2] > 0)
    top, bottom = len(unit) - 2, len(unit) - 1
    quads = [(i * n_lon + (j + 1) % n_lon, i * n_lon + j, (i + 1) * n_lon + j,
              (i + 1) * n_lon + (j + 1) % n_lon) for i in range(n_lat - 2) for j in range(n_lon)]
    last = (n_lat - 2) * n_lon
    tris = [(top, j, (j + 1) % n_lon) for j in range(n_lon)]
    tris += [(bottom, last + (j + 1) % n_lon, last + j) for j in range(n_lon)]
    uv = np.stack([(np.arctan2(unit[:, 0], unit[:, 2]) / (2 * np.pi)) % 1.0, 0.5 + 0.5 * unit[:, 1]], 1)
    rng = np.random.default_rng(0)
    shapes = {"generic_neutral_mesh": neutral}
    for name in ("identity000", "identity001", "jawOpen", "mouthPucker"):
        shapes[name] = neutral + rng.normal(size=neutral.shape) * 0.2

    def corner(v: int) -> str:
        return f"{v + 1}/{v + 1}/{v + 1}"

    for name, positions in shapes.items():
        lines = ["# tiny ICT-like test mesh", "mtllib test.mtl"]
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in positions]
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in uv] + [f"vn {x:.4f} {y:.4f} {z:.4f}" for x, y, z in unit]
        lines.append("usemtl M_Face")
        lines += ["f " + " ".join(corner(v) for v in quad) for quad in quads]
        lines.append("usemtl M_BackHead")
        lines += ["f " + " ".join(corner(v) for v in tri) for tri in tris]
        (folder / f"{name}.obj").write_text("\n".join(lines) + "\n")
    if with_json:
        import json

        (folder / "vertex_indices.json").write_text(json.dumps({"expressions": ["mouthPucker", "jawOpen"]}))
    return shapes


@pytest.fixture
def flame_arrays(head_mesh: tuple[np.ndarray, np.ndarray]) -> dict[str, object]:
    return make_flame_arrays(*head_mesh)


@pytest.fixture
def ict_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "FaceXModel"
    folder.mkdir()
    write_ict_folder(folder)
    return folder


@pytest.fixture
def head_mesh() -> tuple[np.ndarray, np.ndarray]:
    return make_head()


@pytest.fixture
def model_data() -> ModelData:
    return make_model_data()
