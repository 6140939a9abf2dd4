"""MorphableModel on a small synthetic head, and the loaders' mesh helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.morphable.data import REGION_NAMES, FaceParams, ModelData
from core.morphable.lbs import axis_angle_to_matrix
from core.morphable.model import (
    MorphableModel,
    boundary_vertices,
    canonical_landmarks_2d,
    distance_to_polyline,
    embedding_points,
    points_in_polygon,
    project_to_surface,
    spherical_uvs,
    vertex_embedding,
)


def _random_params(model: MorphableModel, batch: int, seed: int = 0, scale: float = 0.3) -> FaceParams:
    generator = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=model.dtype) * scale

    return FaceParams(r(batch, model.n_shape), r(batch, model.n_expr), r(batch, 3), r(batch, 3), r(batch, 6),
                      r(batch, 3), r(batch, 3))


def test_forward_shapes_and_neutral_template(model_data: ModelData) -> None:
    model = MorphableModel(model_data)
    out = model(model.zero_params(2))
    assert out.vertices.shape == (2, model.n_vertices, 3)
    assert out.landmarks.shape == (2, 68, 3)
    assert out.joints.shape == (2, 5, 3)
    assert out.transforms.shape == (2, 5, 4, 4)
    np.testing.assert_allclose(out.vertices[0], model_data.v_template, atol=1e-6)
    np.testing.assert_allclose(out.joints[0], model_data.joint_regressor @ model_data.v_template, atol=1e-6)
    assert model.n_shape == 4 and model.n_expr == 3 and model.expr_names == ["e0", "e1", "e2"]
    assert set(REGION_NAMES) <= set(model.regions)
    assert all(mask.dtype == torch.bool for mask in model.regions.values())


def test_landmarks_lie_on_the_posed_surface(model_data: ModelData) -> None:
    model = MorphableModel(model_data, dtype=torch.float64)
    assert (model.landmark_bary >= 0).all()
    np.testing.assert_allclose(model.landmark_bary.sum(1), 1.0, atol=1e-12)
    out = model(_random_params(model, 3))
    corners = out.vertices[:, model.faces[model.landmark_faces]]  # (B, 68, 3, 3)
    for b in range(3):
        for k in (0, 8, 30, 36, 48, 67):
            expected = (model.landmark_bary[k, :, None] * corners[b, k]).sum(0)
            np.testing.assert_allclose(out.landmarks[b, k], expected, atol=1e-12)
            # The point is inside its triangle: its barycentric coordinates solve the triangle's plane.
            a, p, q = corners[b, k]
            solution = torch.linalg.lstsq(torch.stack([p - a, q - a], 1), (out.landmarks[b, k] - a)[:, None])
            residual = torch.stack([p - a, q - a], 1) @ solution.solution - (out.landmarks[b, k] - a)[:, None]
            assert residual.abs().max() < 1e-12
            assert (solution.solution >= -1e-9).all() and solution.solution.sum() <= 1 + 1e-9


def test_fewer_coefficients_are_zero_padded_and_more_refused(model_data: ModelData) -> None:
    model = MorphableModel(model_data, dtype=torch.float64)
    params = _random_params(model, 2)
    short = FaceParams(params.shape[:, :2], params.expression[:, :1], params.jaw_pose, params.neck_pose,
                       params.eye_pose, params.rotation, params.translation)
    zeros = torch.zeros(2, 2, dtype=torch.float64)
    padded = FaceParams(torch.cat([params.shape[:, :2], zeros], 1),
                        torch.cat([params.expression[:, :1], zeros], 1), params.jaw_pose, params.neck_pose,
                        params.eye_pose, params.rotation, params.translation)
    np.testing.assert_allclose(model(short).vertices, model(padded).vertices, atol=1e-14)
    too_many = FaceParams(torch.zeros(2, 5, dtype=torch.float64), params.expression, params.jaw_pose,
                          params.neck_pose, params.eye_pose, params.rotation, params.translation)
    with pytest.raises(ValueError, match="5 shape coefficients but model 'test_head' has only 4"):
        model(too_many)


def test_bad_params_get_clear_errors(model_data: ModelData) -> None:
    model = MorphableModel(model_data)
    with pytest.raises(ValueError, match="params.to\\(model.device, model.dtype\\)"):
        model(model.zero_params(1, dtype=torch.float64))
    params = model.zero_params(2)
    params.eye_pose = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="eye_pose must be \\(2, 6\\)"):
        model(params)


def test_translation_and_rotation_move_everything_rigidly(model_data: ModelData) -> None:
    model = MorphableModel(model_data, dtype=torch.float64)
    params = model.zero_params(1)
    params.translation[:] = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    out = model(params)
    offset = np.tile([0.1, -0.2, 0.3], (model.n_vertices, 1))
    np.testing.assert_allclose(out.vertices[0] - model.v_template, offset, atol=1e-12)
    # A global rotation turns the whole head rigidly about the root joint.
    params = model.zero_params(1)
    params.rotation[0] = torch.tensor([0.0, 0.7, 0.0], dtype=torch.float64)
    out = model(params)
    root = model.joint_regressor[0] @ model.v_template
    rotation = axis_angle_to_matrix(params.rotation[0])
    np.testing.assert_allclose(out.vertices[0], (model.v_template - root) @ rotation.T + root, atol=1e-12)


def test_eye_pose_turns_the_eyeball_about_its_joint(model_data: ModelData) -> None:
    model_data.posedirs = None  # pose correctives would add (random) offsets everywhere
    model = MorphableModel(model_data, dtype=torch.float64)
    params = model.zero_params(1)
    params.eye_pose[0, :3] = torch.tensor([0.0, 0.4, 0.0], dtype=torch.float64)  # left eye looks to its left
    out = model(params)
    left = model.lbs_weights[:, 3] == 1
    centre = out.joints[0, 3]
    rest_centre = model.joint_regressor[3] @ model.v_template
    np.testing.assert_allclose(centre, rest_centre, atol=1e-12)
    rotation = axis_angle_to_matrix(params.eye_pose[0, :3])
    expected = (model.v_template[left] - rest_centre) @ rotation.T + rest_centre
    np.testing.assert_allclose(out.vertices[0, left], expected, atol=1e-12)
    # The joint's world transform carries the same rotation, located at the joint.
    np.testing.assert_allclose(out.transforms[0, 3, :3, :3], rotation, atol=1e-12)
    np.testing.assert_allclose(out.transforms[0, 3, :3, 3], centre, atol=1e-12)
    right = model.lbs_weights[:, 4] == 1
    np.testing.assert_allclose(out.vertices[0, right], model.v_template[right], atol=1e-12)


def test_model_gradients_reach_all_parameters(model_data: ModelData) -> None:
    model = MorphableModel(model_data, dtype=torch.float64)
    params = _random_params(model, 2, seed=1)
    names = list(params.tensors())
    tensors = tuple(t.clone().requires_grad_(True) for t in params.tensors().values())
    chosen = torch.arange(0, model.n_vertices, 97)

    def run(*args: torch.Tensor) -> torch.Tensor:
        out = model(FaceParams(**dict(zip(names, args, strict=True))))
        return torch.cat([out.vertices[:, chosen].reshape(-1), out.landmarks.reshape(-1)])

    assert torch.autograd.gradcheck(run, tensors, fast_mode=True)
    run(*tensors).sum().backward()
    for name, tensor in zip(names, tensors, strict=True):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all(), name
        assert tensor.grad.abs().sum() > 0, name


def test_dtype_and_device_moves(model_data: ModelData) -> None:
    model = MorphableModel(model_data)
    assert model.dtype == torch.float32
    model = model.to(torch.float64)
    assert model.v_template.dtype == torch.float64 and model.faces.dtype == torch.int64
    assert model.regions["face"].dtype == torch.bool
    out = model(model.zero_params(1))
    assert out.vertices.dtype == torch.float64
    assert model.state_dict() == {}  # buffers are rebuilt from the model files, not saved with a tracker


def test_buffers_do_not_alias_the_model_data(model_data: ModelData) -> None:
    template = model_data.v_template.copy()
    model = MorphableModel(model_data, dtype=torch.float64)
    model.v_template += 1.0
    np.testing.assert_array_equal(model_data.v_template, template)


def test_expression_lookup_and_aliases(model_data: ModelData) -> None:
    model = MorphableModel(model_data)
    assert model.expression_index("e2") == 2
    assert model.expression_index("smile") == 0
    assert model.expression_index("both") is None  # two modes: not a single index
    assert model.expression_indices("both") == [1, 2]
    assert model.expression_index("nonexistent") is None and model.expression_indices("nonexistent") == []


def test_region_faces_and_head_width(model_data: ModelData) -> None:
    model = MorphableModel(model_data)
    eyes = model.region_faces("eyes")
    assert len(eyes) > 0 and model.regions["eyes"][eyes].all()
    full = model.regions["eyes"][model.faces].all(1).sum()
    assert len(eyes) == int(full)
    with pytest.raises(KeyError, match="no region 'hair'"):
        model.region_faces("hair")
    assert model.head_width() == pytest.approx(np.ptp(model_data.v_template[:, 0]), rel=1e-6)


def test_params_save_load_round_trip(model_data: ModelData, tmp_path) -> None:
    model = MorphableModel(model_data)
    params = _random_params(model, 3, seed=2)
    path = params.save(tmp_path / "params.npz")
    loaded = FaceParams.load(path)
    for name, tensor in params.tensors().items():
        torch.testing.assert_close(getattr(loaded, name), tensor, rtol=0, atol=0)
    torch.testing.assert_close(model(loaded).vertices, model(params).vertices, rtol=0, atol=0)


def test_model_refuses_wrong_joint_count(model_data: ModelData) -> None:
    model_data.parents = np.array([-1, 0, 1, 1])
    model_data.joint_regressor = model_data.joint_regressor[:4]
    weights = model_data.lbs_weights[:, :4].copy()
    weights[:, 1] += model_data.lbs_weights[:, 4]
    model_data.lbs_weights = weights
    with pytest.raises(ValueError, match="exactly 5"):
        MorphableModel(model_data)


# ---------------------------------------------------------------- mesh helpers


def test_points_in_polygon_and_polyline_distance() -> None:
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    points = np.array([[0.5, 0.5], [1.5, 0.5], [-0.1, 0.2], [0.99, 0.01]])
    assert points_in_polygon(points, square).tolist() == [True, False, False, True]
    line = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(distance_to_polyline(np.array([[0.5, 0.3], [2.0, 0.5], [-1.0, 0.0]]), line),
                               [0.3, 1.0, 1.0])


def test_vertex_embedding_reproduces_vertices(head_mesh) -> None:
    vertices, faces = head_mesh
    ids = np.array([0, 5, 100, len(vertices) - 1])
    tri, bary = vertex_embedding(faces, ids)
    np.testing.assert_allclose(embedding_points(vertices, faces, tri, bary), vertices[ids])


def test_projection_hits_the_front_surface(head_mesh) -> None:
    vertices, faces = head_mesh
    xy = np.array([[0.0, 0.05], [0.03, -0.06], [0.5, 0.5]])  # the last one misses the head
    tri, bary, hit = project_to_surface(vertices, faces, xy)
    points = embedding_points(vertices, faces, tri, bary)
    assert hit.tolist() == [True, True, False]
    np.testing.assert_allclose(points[:2, :2], xy[:2], atol=1e-12)
    assert (points[:2, 2] > 0.05).all()  # the front of the head, not the back
    assert (bary >= 0).all()


def test_canonical_layout_is_a_plausible_face() -> None:
    points = canonical_landmarks_2d()
    assert points.shape == (68, 2)
    np.testing.assert_allclose(points[30], [0.0, 0.0])  # nose tip at the origin
    # Mirror symmetry of the iBUG numbering: right/left pairs have opposite x and equal y.
    pairs = [(0, 16), (4, 12), (17, 26), (21, 22), (36, 45), (39, 42), (37, 44), (41, 46), (48, 54), (49, 53),
             (59, 55), (60, 64), (67, 65), (31, 35)]
    for right, left in pairs:
        np.testing.assert_allclose(points[right], points[left] * [-1.0, 1.0], atol=1e-12)
        assert points[right, 0] < 0
    assert points[8, 1] < points[57, 1] < points[51, 1] < points[33, 1] < points[30, 1] < points[27, 1]
    assert points[27, 1] < points[19, 1]


def test_spherical_uvs_and_boundary(head_mesh) -> None:
    vertices, faces = head_mesh
    uvs, uv_faces = spherical_uvs(vertices, faces)
    assert uvs.min() >= 0 and uvs.max() <= 1 and uv_faces.shape == faces.shape
    # Away from the poles (where longitude is singular) no triangle spans the seam at the back.
    corners = uvs[uv_faces]
    away_from_poles = (corners[..., 1] > 0.05).all(1) & (corners[..., 1] < 0.95).all(1)
    assert np.ptp(corners[away_from_poles, :, 0], axis=1).max() < 0.1
    back = vertices[faces].mean(1)[:, 2] < -0.05
    assert (away_from_poles & back).sum() > 50
    rim = boundary_vertices(faces, len(vertices))
    assert rim.any()  # the mouth hole
    assert np.abs(vertices[rim, 1] + 0.037).max() < 0.02 and (vertices[rim, 2] > 0).all()
