"""The built-in procedural head: determinism, topology, UVs, rig, landmarks, blendshapes, albedo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.morphable.data import PROCEDURAL_EXPRESSIONS, REGION_NAMES, ModelData
from core.morphable.procedural import (
    PROCEDURAL_RESOLUTIONS,
    _build_cached,
    build_procedural_head,
    build_procedural_mesh,
)
from core.morphable.procedural_geometry import SKIN, signed_volume
from core.morphable.procedural_texture import rasterize_uv, uv_overlap_texels

MOUTH_Y = -0.052


@pytest.fixture(scope="module")
def head() -> ModelData:
    return build_procedural_head()


@pytest.fixture(scope="module")
def small() -> ModelData:
    return build_procedural_head("small")


def landmarks(data: ModelData, vertices: np.ndarray | None = None) -> np.ndarray:
    v = data.v_template if vertices is None else vertices
    return (v[data.faces[data.landmark_faces]] * data.landmark_bary[:, :, None]).sum(1)


def directed_edges(faces: np.ndarray) -> np.ndarray:
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def components(faces: np.ndarray, n: int) -> np.ndarray:
    """Connected-component label per vertex (union-find by repeated label propagation, vectorised)."""
    label = np.arange(n)
    edges = directed_edges(faces)
    while True:
        low = np.minimum(label[edges[:, 0]], label[edges[:, 1]])
        new = label.copy()
        np.minimum.at(new, edges[:, 0], low)
        np.minimum.at(new, edges[:, 1], low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


# ---------------------------------------------------------------------------------------------------
# construction
# ---------------------------------------------------------------------------------------------------


def test_builds_are_deterministic_and_cached_copies(head: ModelData) -> None:
    _build_cached.cache_clear()
    again = build_procedural_head()
    for name in ("v_template", "faces", "shapedirs", "exprdirs", "lbs_weights", "joint_regressor", "uvs",
                 "uv_faces", "landmark_faces", "landmark_bary", "albedo"):
        np.testing.assert_array_equal(getattr(head, name), getattr(again, name), err_msg=name)
    for name, mask in head.regions.items():
        np.testing.assert_array_equal(mask, again.regions[name], err_msg=name)
    # callers get copies: mutating one does not leak into the cache
    again.v_template[:] = 0.0
    assert np.abs(build_procedural_head().v_template).max() > 0.1
    # the seed only varies the albedo's fine detail
    other = build_procedural_head(seed=3)
    np.testing.assert_array_equal(other.v_template, head.v_template)
    assert not np.array_equal(other.albedo, head.albedo)


def test_counts_and_contract(head: ModelData, small: ModelData) -> None:
    assert 4500 <= head.n_vertices <= 5600
    assert 1300 <= small.n_vertices <= 2200
    for data in (head, small):
        data.validate()
        assert data.name == "procedural"
        assert data.expr_names == list(PROCEDURAL_EXPRESSIONS) and data.n_expr == 37
        assert data.n_shape >= 20 and data.shape_names is not None
        assert len(set(data.shape_names)) == data.n_shape
        assert data.v_template.dtype == np.float32 and data.faces.dtype == np.int64
        assert data.albedo is not None and data.albedo.dtype == np.float32
        assert all(name in data.regions for name in REGION_NAMES)
        np.testing.assert_allclose(data.joint_regressor.sum(1), 1.0, atol=1e-5)
        assert (data.lbs_weights >= -1e-6).all()
        np.testing.assert_array_equal(data.parents, [-1, 0, 1, 1, 1])
    assert head.albedo.shape == (512, 512, 3)
    assert 0.14 < np.ptp(head.v_template[:, 0]) < 0.19  # about 16 cm wide (ears included)
    with pytest.raises(ValueError, match="unknown procedural head resolution"):
        build_procedural_head("huge")


def test_surface_is_closed_and_outward(head: ModelData, small: ModelData) -> None:
    for data in (head, small):
        faces = data.faces
        n = data.n_vertices
        edges = directed_edges(faces)
        keys = edges[:, 0] * n + edges[:, 1]
        assert len(np.unique(keys)) == len(keys), "an edge is used twice in the same direction"
        assert np.isin(edges[:, 1] * n + edges[:, 0], keys).all(), "open boundary"
        labels = components(faces, n)
        roots = np.unique(labels)
        # skin + mouth bag + eye pouches, two eyeballs, two dental arches, tongue
        assert len(roots) == 6
        for root in roots:
            members = labels[faces[:, 0]] == root
            assert signed_volume(data.v_template.astype(np.float64), faces[members]) > 0
    # the skin alone is open only at the lips and the two lid margins, where the bag and pouches attach
    mesh = build_procedural_mesh(PROCEDURAL_RESOLUTIONS["default"].geometry)
    skin_faces = mesh.faces[mesh.face_part == SKIN]
    edges = directed_edges(skin_faces)
    n = len(mesh.vertices)
    keys = edges[:, 0] * n + edges[:, 1]
    boundary = edges[~np.isin(edges[:, 1] * n + edges[:, 0], keys)]
    expected = set(mesh.mouth_loop) | set(mesh.eye_loops["left"]) | set(mesh.eye_loops["right"])
    assert set(boundary.reshape(-1)) == expected
    assert len(boundary) == len(mesh.mouth_loop) + len(mesh.eye_loops["left"]) + len(mesh.eye_loops["right"])


def test_uv_layout_is_overlap_free(head: ModelData, small: ModelData) -> None:
    for data, size in ((head, 768), (small, 512)):
        assert data.uvs.min() >= 0.0 and data.uvs.max() <= 1.0
        assert uv_overlap_texels(data.uvs.astype(np.float64), data.uv_faces, size) == 0
        tri = data.uvs[data.uv_faces].astype(np.float64)
        area = 0.5 * np.abs(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
        assert (area > 1e-9).all()
    # the detector does see an overlap
    shifted = head.uvs.astype(np.float64).copy()
    island = np.unique(head.uv_faces[head.regions["tongue"][head.faces].all(1)])
    shifted[island] += [-0.4, 0.0]
    assert uv_overlap_texels(shifted, head.uv_faces, 256) > 20


def test_uv_seam_duplicates_texture_coordinates(head: ModelData) -> None:
    # vertices on the seam at the back of the head carry two texture coordinates
    corners = np.stack([head.faces.reshape(-1), head.uv_faces.reshape(-1)], -1)
    pairs = np.unique(corners, axis=0)
    per_vertex = np.bincount(pairs[:, 0], minlength=head.n_vertices)
    back = (head.v_template[:, 2] < -0.05) & (np.abs(head.v_template[:, 0]) < 1e-6)
    assert back.sum() > 10 and (per_vertex[back] >= 2).all()


# ---------------------------------------------------------------------------------------------------
# rig and landmarks
# ---------------------------------------------------------------------------------------------------


def test_joints_sit_at_anatomical_positions(head: ModelData) -> None:
    v = head.v_template.astype(np.float64)
    joints = head.joint_regressor @ v
    global_, neck, jaw, eye_l, eye_r = joints
    for name in ("eyeball_left", "eyeball_right"):
        ids = np.flatnonzero(head.regions[name])
        centre = 0.5 * (v[ids].max(0) + v[ids].min(0))
        centre[2] = v[ids, 2].min() + 0.012  # the front carries a slight cornea bulge
        joint = eye_l if name.endswith("left") else eye_r
        np.testing.assert_allclose(joint, centre, atol=3e-4)
    assert eye_l[0] > 0.02 and eye_r[0] < -0.02  # the subject's left eye is at +x
    assert abs(jaw[0]) < 1e-6 and -0.03 < jaw[1] < 0.01 and -0.01 < jaw[2] < 0.02
    assert abs(neck[0]) < 1e-6 and -0.09 < neck[1] < -0.03
    assert abs(global_[0]) < 1e-6 and global_[1] < neck[1] - 0.03


def test_skinning_weights(head: ModelData) -> None:
    w = head.lbs_weights
    r = head.regions
    assert np.allclose(w[r["teeth_lower"], 2], 1.0) and np.allclose(w[r["tongue"], 2], 1.0)
    assert np.allclose(w[r["teeth_upper"], 2], 0.0)
    assert np.allclose(w[r["eyeball_left"], 3], 1.0) and np.allclose(w[r["eyeball_right"], 4], 1.0)
    assert np.allclose(w[~r["eyeballs"]][:, 3:], 0.0)
    central = np.abs(head.v_template[:, 0]) < 0.017
    assert w[r["lips_lower"] & central, 2].min() > 0.9 and w[r["lips_upper"] & central, 2].max() < 0.05
    assert w[r["chin"], 2].mean() > 0.85 and np.allclose(w[r["forehead"] | r["nose"], 2], 0.0, atol=1e-6)
    # smooth falloff through the cheeks rather than a hard cut
    cheek = w[r["cheeks"], 2]
    assert ((cheek > 0.1) & (cheek < 0.9)).sum() > 20
    # the lower neck follows the root, the head the neck joint
    lower_neck = head.v_template[:, 1] < -0.15
    assert w[lower_neck, 0].min() > 0.95 and w[r["scalp"], 1].min() > 0.99


def test_landmarks_follow_ibug_layout(head: ModelData) -> None:
    lm = landmarks(head)
    skin = head.regions["skin"]
    assert lm[30, 2] >= head.v_template[skin, 2].max() - 1e-6  # nose tip: most forward point
    assert np.argmin(lm[:17, 1]) == 8 and abs(lm[8, 0]) < 1e-4  # chin: lowest point of the jaw line
    assert (lm[:8, 0] < 0).all() and (lm[9:17, 0] > 0).all()  # point 0 on the subject's right (-x)
    assert lm[36, 0] < lm[39, 0] < 0 < lm[42, 0] < lm[45, 0]  # eye corners, outer to inner to outer
    assert lm[17, 0] < lm[21, 0] < 0 < lm[22, 0] < lm[26, 0]
    assert lm[48, 0] < lm[51, 0] < lm[54, 0] and lm[48, 0] < lm[60, 0] and lm[64, 0] < lm[54, 0]
    assert (np.diff(lm[27:31, 1]) < 0).all()  # nose bridge runs downwards to the tip
    assert lm[17:27, 1].min() > lm[36:48, 1].max() > lm[27:36, 1].min() > lm[48:68, 1].max()
    assert lm[51, 1] > MOUTH_Y > lm[57, 1]
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        assert lm[upper, 1] - lm[lower, 1] > 0.005  # open eyes at rest
    for upper, lower in ((61, 67), (62, 66), (63, 65)):
        np.testing.assert_allclose(lm[upper], lm[lower], atol=1e-6)  # closed lips at rest
    # left/right mirror pairs
    for a, b in ((0, 16), (4, 12), (17, 26), (36, 45), (39, 42), (31, 35), (48, 54), (61, 63)):
        np.testing.assert_allclose(lm[a] * [-1, 1, 1], lm[b], atol=1e-4)


# ---------------------------------------------------------------------------------------------------
# blendshapes
# ---------------------------------------------------------------------------------------------------


def test_shape_modes_are_well_conditioned_smooth_and_plausible(head: ModelData) -> None:
    s = head.shapedirs.astype(np.float64)
    flat = s.reshape(-1, head.n_shape)
    sv = np.linalg.svd(flat / np.linalg.norm(flat, axis=0), compute_uv=False)
    assert sv[0] / sv[-1] < 8.0
    peak = np.linalg.norm(s, axis=1).max(0)
    assert (peak > 0.0015).all() and (peak < 0.007).all()  # +-1..3 gives millimetres to about a centimetre
    # smooth: neighbouring vertices move alike
    edges = directed_edges(head.faces)
    length = np.linalg.norm(head.v_template[edges[:, 0]] - head.v_template[edges[:, 1]], axis=1)
    diff = np.linalg.norm(s[edges[:, 0]] - s[edges[:, 1]], axis=1)  # (E, S)
    assert (diff / np.maximum(length, 1e-4)[:, None]).max() < 0.7
    # eyeballs translate rigidly
    for name in ("eyeball_left", "eyeball_right"):
        d = s[head.regions[name]]
        assert np.abs(d - d[:1]).max() < 1e-7
    # modes mean what they say
    names = head.shape_names
    v = head.v_template
    width = s[:, 0, names.index("head_width")]
    assert width[v[:, 0] > 0.06].min() > 0 and width[v[:, 0] < -0.06].max() < 0
    lm = landmarks(head)
    nose_len = landmarks(head, v + s[:, :, names.index("nose_length")])
    assert nose_len[30, 1] < lm[30, 1]
    spacing = landmarks(head, v + s[:, :, names.index("eye_spacing")])
    assert spacing[45, 0] - spacing[36, 0] > lm[45, 0] - lm[36, 0] + 0.002


def _energy_share(d: np.ndarray, mask: np.ndarray) -> float:
    e = (d ** 2).sum(1)
    return float(e[mask].sum() / e.sum())


def test_expressions_are_local(head: ModelData) -> None:
    v = head.v_template.astype(np.float64)
    x, y = v[:, 0], v[:, 1]
    r = head.regions
    mouth_area = (np.hypot(x / 0.045, (y - MOUTH_Y) / 0.04) < 1.0) | r["mouth_interior"] | r["chin"]
    lower_face = mouth_area | (y < -0.02) & r["face"] | r["mouth_interior"]
    brow_area = (y > 0.02) & r["face"] | r["forehead"]
    eye_area = {"left": r["eye_left"], "right": r["eye_right"]}
    expected: dict[str, np.ndarray] = {}
    for name in PROCEDURAL_EXPRESSIONS:
        side = "left" if name.endswith("_left") else "right" if name.endswith("_right") else None
        region = lower_face
        if name.startswith(("brow",)):
            region = brow_area
        elif name.startswith(("squint", "blink", "eye_wide")):
            region = eye_area[side] | (r["cheeks"] if name.startswith("squint") else False)
        elif name.startswith(("cheek_raise", "sneer")):
            region = (y < 0.02) & (y > -0.07) & r["face"] | r["mouth_interior"]
        if side is not None and name not in ("mouth_left", "mouth_right"):
            region = region & ((x > -0.004) if side == "left" else (x < 0.004))
        expected[name] = region
    for k, name in enumerate(head.expr_names):
        d = head.exprdirs[:, :, k].astype(np.float64)
        peak = np.linalg.norm(d, axis=1).max()
        assert 0.002 < peak < 0.015, (name, peak)
        assert _energy_share(d, expected[name]) > 0.93, name
        assert np.abs(d[r["eyeballs"] | r["teeth_upper"]]).max() == 0.0, name


def test_expressions_do_what_their_names_say(head: ModelData) -> None:
    v = head.v_template.astype(np.float64)
    lm0 = landmarks(head)

    def lm(name: str, amount: float = 1.0) -> np.ndarray:
        k = head.expr_names.index(name)
        return landmarks(head, v + amount * head.exprdirs[:, :, k])

    opened = lm("mouth_open")
    assert 0.007 < np.linalg.norm(opened[62] - opened[66]) < 0.013  # lips part about a centimetre
    smile = lm("smile_left")
    assert smile[54, 1] - lm0[54, 1] > 0.006 and smile[54, 0] > lm0[54, 0]  # left corner up and out
    assert np.linalg.norm(smile[48] - lm0[48]) < 0.001  # the right corner stays
    assert lm("frown_right")[48, 1] < lm0[48, 1] - 0.004
    blink = lm("blink_left")
    for upper, lower in ((43, 47), (44, 46)):
        assert np.linalg.norm(blink[upper] - lm0[lower]) < 5e-4  # the upper lid closes onto the lower one
    assert np.linalg.norm(blink[37] - lm0[37]) < 1e-6  # the right eye stays open
    half = lm("blink_right", 0.5)
    assert lm0[38, 1] > half[38, 1] > lm0[40, 1]
    wide = lm("eye_wide_right")
    assert wide[37, 1] > lm0[37, 1] + 0.0015
    brow_up = lm("brow_up_left")
    assert brow_up[24, 1] > lm0[24, 1] + 0.006 and abs(brow_up[19, 1] - lm0[19, 1]) < 1e-3
    assert lm("brow_down_right")[19, 1] < lm0[19, 1] - 0.004
    inner = lm("brow_inner_up")
    assert inner[21, 1] - lm0[21, 1] > inner[17, 1] - lm0[17, 1] + 0.003
    pucker = lm("lips_pucker")
    assert pucker[54, 0] - pucker[48, 0] < lm0[54, 0] - lm0[48, 0] - 0.012  # narrower
    assert pucker[51, 2] > lm0[51, 2] + 0.004  # and pushed forward
    assert lm("mouth_wide")[54, 0] > lm0[54, 0] + 0.004
    assert lm("mouth_left")[62, 0] > lm0[62, 0] + 0.004 and lm("mouth_right")[62, 0] < lm0[62, 0] - 0.004
    assert lm("jaw_forward")[8, 2] > lm0[8, 2] + 0.004
    assert lm("upper_lip_raise")[62, 1] > lm0[62, 1] + 0.004
    assert lm("lower_lip_depress")[66, 1] < lm0[66, 1] - 0.004
    assert lm("sneer_left")[35, 1] > lm0[35, 1] + 0.002
    puff = head.exprdirs[:, :, head.expr_names.index("cheek_puff")]
    cheek = head.regions["cheeks"]
    assert (puff[cheek, 0] * np.sign(v[cheek, 0])).mean() > 0.001  # cheeks bulge outwards


def test_interior_stays_hidden_and_lids_clear_the_eyeballs(head: ModelData) -> None:
    """For random plausible identities and every expression at full strength, the mouth bag, teeth and
    tongue stay behind the skin (except through the lip opening) and no skin enters an eyeball."""
    from core.morphable.procedural_rig import _project_hits

    mesh = build_procedural_mesh(PROCEDURAL_RESOLUTIONS["default"].geometry)
    r = head.regions
    inner = np.flatnonzero(r["mouth_interior"])
    skin = r["skin"]
    eye_rings = [mesh.eyeball_equator[n] for n in ("left", "right")]

    def check(v: np.ndarray) -> tuple[float, float]:
        tri = v[head.faces]
        near_mouth = ((np.abs(tri[:, :, 0]).max(1) < 0.045) & (tri[:, :, 1].min(1) > -0.1)
                      & (tri[:, :, 1].max(1) < -0.015) & (tri[:, :, 2].min(1) > 0.04))
        front_skin = np.flatnonzero((mesh.face_part == SKIN) & near_mouth)
        lips = v[mesh.mouth_loop]
        opening = ((np.abs(v[inner, 0]) < np.abs(lips[:, 0]).max() + 0.002)
                   & (v[inner, 1] > lips[:, 1].min() - 0.003) & (v[inner, 1] < lips[:, 1].max() + 0.003))
        probe = inner[~opening]
        faces, bary = _project_hits(v[:, :2], v[:, 2], head.faces, front_skin, v[probe, :2])
        skin_z = (v[head.faces[faces]] * bary[:, :, None]).sum(1)[:, 2]
        clearance = min(np.linalg.norm(v[skin] - v[ring].mean(0), axis=1).min() for ring in eye_rings)
        return float((skin_z - v[probe, 2]).min()), float(clearance)

    rng = np.random.default_rng(7)
    base = head.v_template.astype(np.float64)
    for _ in range(4):
        beta = np.clip(rng.normal(size=head.n_shape), -2.0, 2.0)
        gap, clearance = check(base + head.shapedirs.astype(np.float64) @ beta)
        assert gap > 0.003 and clearance > 0.012
    for k, name in enumerate(head.expr_names):
        gap, clearance = check(base + head.exprdirs[:, :, k].astype(np.float64))
        assert gap > 0.001 and clearance > 0.012, name


# ---------------------------------------------------------------------------------------------------
# texture
# ---------------------------------------------------------------------------------------------------


def test_albedo_paints_the_features(head: ModelData) -> None:
    a = head.albedo
    assert 0.0 <= a.min() and a.max() <= 1.0
    face, _, _ = rasterize_uv(head.uvs.astype(np.float64), head.uv_faces, a.shape[0])

    def _albedo_at(data: ModelData, mask: np.ndarray) -> np.ndarray:
        """Mean albedo over the texels of the triangles whose vertices are all in ``mask``."""
        return data.albedo[np.isin(face, np.flatnonzero(mask[data.faces].all(1)))].mean(0)

    r = head.regions
    v = head.v_template
    skin = _albedo_at(head, r["cheeks"])
    lips = _albedo_at(head, r["lips"] & (np.abs(v[:, 1] - MOUTH_Y) > 0.0025))
    assert lips[0] - lips[1] > skin[0] - skin[1] + 0.1  # lips redder than the cheeks
    assert _albedo_at(head, r["brows"] & (np.abs(v[:, 0]) > 0.02)).mean() < skin.mean() - 0.1
    assert _albedo_at(head, r["teeth"]).mean() > 0.75
    deep = r["mouth_bag"] & (v[:, 2] < v[r["mouth_bag"], 2].max() - 0.03)
    assert _albedo_at(head, deep).mean() < 0.15  # dark mouth interior
    front = r["eyeballs"] & (v[:, 2] > 0.081)
    back = r["eyeballs"] & (v[:, 2] < 0.072)
    assert _albedo_at(head, front).mean() < 0.3 < 0.7 < _albedo_at(head, back).mean()  # iris/pupil vs sclera


# ---------------------------------------------------------------------------------------------------
# with the torch model and the renderer
# ---------------------------------------------------------------------------------------------------


def test_forward_pass_opens_the_jaw_and_turns_the_eyes(small: ModelData) -> None:
    from core.morphable.model import MorphableModel

    model = MorphableModel(small)
    params = model.zero_params(3)
    params.jaw_pose[1, 0] = 0.2
    params.eye_pose[2, 1] = 0.3
    params.eye_pose[2, 4] = 0.3
    out = model(params)
    lm = out.landmarks.detach().numpy()
    verts = out.vertices.detach().numpy()
    rest = small.v_template
    np.testing.assert_allclose(verts[0], rest, atol=1e-6)
    assert np.linalg.norm(lm[1, 62] - lm[1, 66]) > 0.012  # the mouth opens
    assert np.linalg.norm(lm[1, 62] - lm[0, 62]) < 5e-4  # the upper lip stays
    r = small.regions
    np.testing.assert_allclose(verts[1][r["teeth_upper"]], rest[r["teeth_upper"]], atol=1e-6)
    assert np.linalg.norm(verts[1][r["teeth_lower"]] - rest[r["teeth_lower"]], axis=1).min() > 0.004
    # eyes: only the eyeballs move, rigidly about their joints
    moved = np.linalg.norm(verts[2] - rest, axis=1) > 1e-6
    assert moved[r["eyeballs"]].mean() > 0.8 and not moved[~r["eyeballs"]].any()
    joints = out.joints.detach().numpy()[2]
    for name, j in (("eyeball_left", 3), ("eyeball_right", 4)):
        ids = r[name]
        np.testing.assert_allclose(np.linalg.norm(verts[2][ids] - joints[j], axis=1),
                                   np.linalg.norm(rest[ids] - joints[j], axis=1), atol=1e-6)
        front = np.argmax(rest[ids, 2])
        assert verts[2][ids][front, 0] > rest[ids][front, 0] + 0.003  # turned towards +x


def test_open_mouth_renders_dark_interior_and_teeth(small: ModelData) -> None:
    from core.morphable.model import MorphableModel
    from core.render.camera import PerspectiveCamera
    from core.render.shading import render_mesh, sh_directional

    model = MorphableModel(small)
    params = model.zero_params(2)
    params.jaw_pose[1, 0] = 0.3
    out = model(params)
    size = 96
    eye = torch.tensor([[0.0, -0.06, 0.45]] * 2)
    target = torch.tensor([0.0, -0.06, 0.0])
    cam = PerspectiveCamera.from_look_at(eye, target, (size, size), fx=180.0 / 36.0 * size)
    texture = model.albedo.permute(2, 0, 1)[None]
    sh = sh_directional((0.0, 0.3, 1.0), intensity=0.8, ambient=0.4, batch=2)
    image, _ = render_mesh(out.vertices, model.faces, cam, model.uvs, model.uv_faces, texture, sh)
    xy, _ = cam.project(out.landmarks)
    img = image.detach().numpy()
    lm = xy.detach().numpy()
    for b in (0, 1):
        top, bottom = lm[b, 62], lm[b, 66]
        column = int(round(0.5 * (top[0] + bottom[0])))
        rows = np.arange(int(np.ceil(top[1])) + 1, int(np.floor(bottom[1])))
        assert 0 <= column < size and (rows.size == 0 or (rows.min() >= 0 and rows.max() < size))
        strip = img[b, rows, column] if len(rows) else np.zeros((0, 3))
        if b == 0:
            assert len(rows) <= 1  # closed lips: no gap between the inner lip points
            continue
        assert len(rows) >= 4
        brightness = strip.mean(1)
        skin_like = (strip[:, 0] > 0.45) & (strip[:, 0] - strip[:, 2] > 0.12)
        assert brightness.min() < 0.15  # the dark cavity shows
        assert (brightness > 0.6).any() or (strip.min(1) > 0.5).any()  # and some teeth
        assert skin_like.mean() < 0.5
