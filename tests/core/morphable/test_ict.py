"""ICT FaceKit: the OBJ reader, a tiny folder the test writes, and the real subset in ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.morphable.data import REGION_NAMES, ModelData
from core.morphable.ict import ObjFormatError, load_ict, read_obj, read_obj_vertices
from core.morphable.model import MorphableModel, embedding_points, heuristic_landmark_embedding

# ---------------------------------------------------------------- OBJ reader


def test_read_obj_formats_and_fan_triangulation(tmp_path: Path) -> None:
    path = tmp_path / "m.obj"
    path.write_text("\n".join([
        "# comment", "o thing", "v 0 0 0", "v 1 0 0", "v 1 1 0", "v 0 1 0", "v 2 0.5 0 1.0",  # w ignored
        "vt 0 0", "vt 1 0", "vt 1 1", "vt 0 1", "vt 0.5 0.5", "vn 0 0 1",
        "usemtl A", "f 1/1/1 2/2/1 3/3/1 4/4/1",  # quad -> 2 triangles
        "usemtl B", "f 2/2/1 5/5/1 3/3/1",
        "usemtl A", "f 1/1/1 2/2/1 5/5/1 3/3/1 4/4/1",  # pentagon -> 3 triangles
    ]) + "\n")
    mesh = read_obj(path)
    assert mesh.vertices.shape == (5, 3) and mesh.uvs.shape == (5, 2)
    expected = [[0, 1, 2], [0, 2, 3], [1, 4, 2], [0, 1, 4], [0, 4, 2], [0, 2, 3]]
    np.testing.assert_array_equal(mesh.faces, expected)
    np.testing.assert_array_equal(mesh.uv_faces, mesh.faces)
    assert mesh.materials == ["A", "B"]
    np.testing.assert_array_equal(mesh.face_material, [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(mesh.face_polygon, [0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(read_obj_vertices(path), mesh.vertices)


def test_read_obj_without_uvs_and_with_normals_only(tmp_path: Path) -> None:
    path = tmp_path / "m.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1//1 2//1 3//1\n")
    mesh = read_obj(path)
    assert mesh.uv_faces is None and mesh.uvs.shape == (0, 2)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    np.testing.assert_array_equal(read_obj(path).faces, [[0, 1, 2]])


def test_read_obj_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nf 1 2 7\n")
    with pytest.raises(ObjFormatError, match="bad.obj: a face references vertex 7 of 2"):
        read_obj(path)
    path.write_text("v 0 0 0\n")
    with pytest.raises(ObjFormatError, match="no faces"):
        read_obj(path)
    with pytest.raises(FileNotFoundError, match="missing.obj"):
        read_obj(tmp_path / "missing.obj")


# ---------------------------------------------------------------- a tiny folder


def test_tiny_folder_loads(ict_folder: Path) -> None:
    data = load_ict(ict_folder)
    data.validate()
    neutral = read_obj_vertices(ict_folder / "generic_neutral_mesh.obj")
    np.testing.assert_allclose(data.v_template, neutral * 0.01)  # centimetres -> metres
    assert data.faces.shape == (12 * 20 * 2 + 40, 3)  # quads split in two, pole fans kept
    assert data.expr_names == ["jawOpen", "mouthPucker"]  # no JSON: every other OBJ, sorted
    assert data.shape_names == ["identity000", "identity001"]
    for k, name in enumerate(data.expr_names):
        expected = (read_obj_vertices(ict_folder / f"{name}.obj") - neutral) * 0.01
        np.testing.assert_allclose(data.exprdirs[:, :, k], expected, atol=1e-12)
    expected = (read_obj_vertices(ict_folder / "identity001.obj") - neutral) * 0.01
    np.testing.assert_allclose(data.shapedirs[:, :, 1], expected, atol=1e-12)
    assert data.uvs.min() >= 0 and data.uvs.max() <= 1
    assert data.expr_aliases["mouth_open"] == ("jawOpen",) and "smile_left" not in data.expr_aliases
    np.testing.assert_allclose(data.lbs_weights.sum(1), 1.0)
    np.testing.assert_allclose(data.joint_regressor.sum(1), 1.0)


def test_tiny_folder_model_runs_and_landmarks_are_on_the_face(ict_folder: Path) -> None:
    model = MorphableModel(load_ict(ict_folder), dtype=torch.float64)
    assert model.expression_index("mouth_open") == model.expression_index("jawOpen") == 0
    params = model.zero_params(2)
    params.expression[1, 0] = 1.0
    out = model(params)
    assert torch.isfinite(out.vertices).all()
    landmarks = out.landmarks[0]
    assert (landmarks[:, 2] > 0).all()  # all 68 on the front of the head
    assert landmarks[:, 2].argmax() == 30  # the nose tip is the frontmost


def test_tiny_folder_options(ict_folder: Path) -> None:
    assert load_ict(ict_folder, expressions=["mouthPucker"]).expr_names == ["mouthPucker"]
    assert load_ict(ict_folder, n_identity=1).n_shape == 1
    with pytest.raises(FileNotFoundError, match="browDown_L.obj"):
        load_ict(ict_folder, expressions=["browDown_L"])
    with pytest.raises(ValueError, match="only 2 identity"):
        load_ict(ict_folder, n_identity=5)
    (ict_folder / "vertex_indices.json").write_text(json.dumps({"expressions": ["mouthPucker", "eyeBlink_L",
                                                                                "jawOpen"]}))
    assert load_ict(ict_folder).expr_names == ["mouthPucker", "jawOpen"]  # the JSON's order, present ones


def test_missing_folder_names_the_template(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="generic_neutral_mesh.obj.*ICT-FaceKit"):
        load_ict(tmp_path)


def test_mismatched_blendshape_is_refused(ict_folder: Path) -> None:
    (ict_folder / "jawOpen.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="jawOpen.obj: 3 vertices"):
        load_ict(ict_folder)


# ---------------------------------------------------------------- the real subset


@pytest.fixture(scope="module")
def real_ict() -> tuple[Path, ModelData]:
    import os

    env = os.environ.get("EMODUB_SHARED_DATA")
    shared = Path(env) if env else Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    folder = shared / "assets" / "ict-facekit-subset"
    if not (folder / "generic_neutral_mesh.obj").is_file():
        pytest.skip("../shared/data/assets/ict-facekit-subset is not present")
    return folder, load_ict(folder)


def test_real_subset_loads_in_metres(real_ict) -> None:
    folder, data = real_ict
    data.validate()
    assert data.n_vertices == 24591  # 26,719 minus the 2,128 overlay/eyelash vertices
    assert data.expr_names == ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker"]
    assert data.n_shape == 1
    assert 0.2 < np.ptp(data.v_template[:, 0]) < 0.3  # a head and shoulders, in metres
    assert set(REGION_NAMES) <= set(data.regions)
    for name in REGION_NAMES:
        assert data.regions[name].sum() > 100, name
    assert not (data.regions["lips"] & ~data.regions["face_part"]).any()
    # The embedding reproduces ICT's own landmark vertices.
    ids = json.loads((folder / "vertex_indices.json").read_text())["idx_to_landmark_verts"]
    landmarks = embedding_points(data.v_template, data.faces, data.landmark_faces, data.landmark_bary)
    np.testing.assert_allclose(landmarks, read_obj_vertices(folder / "generic_neutral_mesh.obj")[ids] * 0.01)


def test_real_subset_uv_charts_do_not_overlap(real_ict) -> None:
    _, data = real_ict
    assert data.uvs.min() >= 0 and data.uvs.max() <= 1
    # ICT's charts (one per material and UDIM tile) are packed into a 4 x 4 grid whose top-left 3 x 3 block
    # holds the face: every triangle stays in one cell (or the block), and no cell mixes parts (in the
    # original file the face and the eyeballs share UDIM tile 0).
    corners = data.uvs[data.uv_faces]  # (F, 3, 2)

    def cell_of(uv: np.ndarray) -> np.ndarray:
        grid = np.floor(uv * 4 - 1e-7).clip(0, 3).astype(int)
        cell = grid[..., 0] * 4 + grid[..., 1]
        return np.where((grid[..., 0] < 3) & (grid[..., 1] > 0), -1, cell)  # -1: the face block

    centre_cell = cell_of(corners.mean(1))
    assert (cell_of(corners) == centre_cell[:, None]).mean() > 0.9999
    label = np.zeros(data.n_vertices, dtype=int)
    for value, part in enumerate(("gums_tongue", "teeth", "eyeball_left", "eyeball_right"), start=1):
        label[data.regions[part]] = value
    face_label = label[data.faces[:, 0]]
    for cell in np.unique(centre_cell):
        assert len(np.unique(face_label[centre_cell == cell])) == 1, cell
    # The face keeps the 3 x 3 block: most of the texture.
    face = data.regions["face_part"][data.faces].all(1)
    edge1, edge2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    area = 0.5 * np.abs(edge1[:, 0] * edge2[:, 1] - edge1[:, 1] * edge2[:, 0])
    assert area[face].sum() > 0.35


def test_real_subset_overlays_on_request(real_ict) -> None:
    folder, _ = real_ict
    data = load_ict(folder, include_overlays=True, expressions=["jawOpen"])
    assert data.n_vertices == 26719 and data.regions["eyelashes"].sum() == 1368


def test_real_subset_expressions_and_rig(real_ict) -> None:
    _, data = real_ict
    model = MorphableModel(data, dtype=torch.float64)
    params = model.zero_params(4)
    params.expression[1, model.expression_index("jawOpen")] = 1.0
    params.expression[2, model.expression_index("mouthPucker")] = 1.0
    params.jaw_pose[3, 0] = 0.25
    out = model(params)
    chin = out.landmarks[:, 8]
    assert chin[1, 1] < chin[0, 1] - 0.01  # jawOpen drops the chin by more than a centimetre
    assert out.landmarks[2, 51, 2] > out.landmarks[0, 51, 2] + 0.002  # a pucker pushes the lips forward
    assert chin[3, 1] < chin[0, 1] - 0.01  # so does the jaw joint
    brow = out.landmarks[:, 19]
    torch.testing.assert_close(brow[3], brow[0])  # while the upper face stays put
    # The eyes turn rigidly about their joints.
    params = model.zero_params(1)
    params.eye_pose[0] = torch.tensor([0.0, 0.3, 0.0, 0.2, 0.0, 0.0], dtype=torch.float64)
    out = model(params)
    for joint, part in ((3, "eyeball_left"), (4, "eyeball_right")):
        mask = model.regions[part]
        rest = (model.v_template[mask] - out.joints[0, joint]).norm(dim=1)
        posed = (out.vertices[0, mask] - out.joints[0, joint]).norm(dim=1)
        torch.testing.assert_close(posed, rest)
        assert (out.vertices[0, mask] - model.v_template[mask]).norm(dim=1).max() > 1e-3


def test_heuristic_landmarks_are_close_on_a_real_face(real_ict) -> None:
    """The fallback embedding (used when a model ships none) against ICT's landmark vertices."""
    _, data = real_ict
    truth = embedding_points(data.v_template, data.faces, data.landmark_faces, data.landmark_bary)
    tri, bary = heuristic_landmark_embedding(data.v_template, data.faces,
                                             data.regions["face_part"][data.faces].all(1))
    guess = embedding_points(data.v_template, data.faces, tri, bary)
    error = np.linalg.norm(guess - truth, axis=1)
    assert error.mean() < 0.01 and np.median(error) < 0.008  # metres
