"""FLAME loading without chumpy, from files the tests write in FLAME's layout, and pickle safety."""

from __future__ import annotations

import importlib.util
import os
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from core.morphable.data import REGION_NAMES
from core.morphable.flame import (
    FlameFileMissing,
    RestrictedUnpickler,
    find_flame_model,
    load_flame,
    load_npy,
    load_pickle,
)
from core.morphable.model import MorphableModel

N_EXPR_FILE = 12  # the test files hold FLAME's 300 identity modes, then 12 expression modes


# ---------------------------------------------------------------- chumpy-style pickles


class _FakeChumpy:
    """Classes named like chumpy's, registered in sys.modules only while pickling."""

    def __init__(self) -> None:
        class Ch:
            def __init__(self, x: np.ndarray) -> None:
                self.x = np.asarray(x, dtype=np.float64)
                self._dirty_vars = set()
                self._itr = None
                self._depends_on_deps = {}
                self._make_dense = False
                self._make_sparse = False

            def __getstate__(self) -> dict:
                return dict(self.__dict__)  # chumpy drops its weak-reference caches; we have none

        class Reshape(Ch):
            def __init__(self, a: Ch, newshape: tuple[int, ...]) -> None:
                self.a = a
                self.newshape = newshape
                self._dirty_vars = set()

        Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
        Reshape.__module__, Reshape.__qualname__ = "chumpy.reordering", "Reshape"
        self.Ch, self.Reshape = Ch, Reshape
        self.modules = {name: types.ModuleType(name) for name in ("chumpy", "chumpy.ch", "chumpy.reordering")}
        self.modules["chumpy.ch"].Ch = Ch
        self.modules["chumpy.reordering"].Reshape = Reshape

    def dump(self, obj: object, path: Path, protocol: int) -> None:
        sys.modules.update(self.modules)
        try:
            path.write_bytes(pickle.dumps(obj, protocol=protocol))
        finally:
            for name in self.modules:
                sys.modules.pop(name, None)


def _chumpy_dict(arrays: dict[str, object], fake: _FakeChumpy) -> dict[str, object]:
    """FLAME 2020's mix: chumpy arrays, a chumpy reshape expression, numpy and sparse values."""
    out = dict(arrays)
    out["v_template"] = fake.Ch(arrays["v_template"])
    out["shapedirs"] = fake.Ch(arrays["shapedirs"])
    weights = np.asarray(arrays["weights"])
    out["weights"] = fake.Reshape(fake.Ch(weights.ravel()), weights.shape)
    out["J"] = fake.Ch(np.zeros((5, 3)))
    return out


class _Py2Pickler:
    """Writes the opcodes Python 2's cPickle (protocol 2) emits for FLAME's generic_model.pkl: byte strings
    as BINSTRING (so the loader must use latin1), ``__builtin__``/``copy_reg`` module names, numpy arrays
    through ``numpy.core.multiarray._reconstruct`` and chumpy/scipy objects through NEWOBJ + BUILD."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")

    def glob(self, module: str, name: str) -> None:
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def string(self, data: bytes) -> None:
        if len(data) < 256:
            self.out += b"U" + bytes([len(data)]) + data  # SHORT_BINSTRING
        else:
            self.out += b"T" + struct.pack("<i", len(data)) + data  # BINSTRING

    def save(self, obj: object) -> None:
        if obj is None:
            self.out += b"N"
        elif isinstance(obj, bool):
            self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, int):
            self.out += b"J" + struct.pack("<i", obj)
        elif isinstance(obj, float):
            self.out += b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):
            self.string(obj.encode("latin1"))
        elif isinstance(obj, tuple):
            self.out += b"("
            for item in obj:
                self.save(item)
            self.out += b"t"
        elif isinstance(obj, set):
            self.glob("__builtin__", "set")
            self.out += b"]("
            for item in obj:
                self.save(item)
            self.out += b"e\x85R"
        elif isinstance(obj, dict):
            self.out += b"}("
            for key, value in obj.items():
                self.save(key)
                self.save(value)
            self.out += b"u"
        elif isinstance(obj, np.ndarray):
            array = np.ascontiguousarray(obj)
            self.glob("numpy.core.multiarray", "_reconstruct")
            self.glob("numpy", "ndarray")
            self.out += b"K\x00\x85"
            self.string(b"b")
            self.out += b"\x87R("  # _reconstruct(ndarray, (0,), 'b'), then the state tuple
            self.save(1)
            self.save(tuple(int(s) for s in array.shape))
            self.glob("numpy", "dtype")
            self.save((array.dtype.str[1:], 0, 1))
            self.out += b"R"
            order = array.dtype.str[0] if array.dtype.str[0] in "<>" else "|"
            self.save((3, order, None, None, None, -1, -1, 0))
            self.out += b"b"  # BUILD the dtype
            self.save(False)
            self.string(array.tobytes())
            self.out += b"tb"  # BUILD the array
        elif sp.issparse(obj):
            matrix = sp.csc_matrix(obj)
            self.glob("scipy.sparse.csc", "csc_matrix")
            self.out += b")\x81"
            self.save({"_shape": tuple(int(s) for s in matrix.shape), "maxprint": 50, "format": "csc",
                       "indices": matrix.indices, "indptr": matrix.indptr, "data": matrix.data})
            self.out += b"b"
        elif type(obj).__module__.startswith("chumpy"):
            self.glob(type(obj).__module__, type(obj).__qualname__)
            self.out += b")\x81"
            self.save(obj.__getstate__())
            self.out += b"b"
        else:
            raise TypeError(type(obj))

    def dumps(self, obj: object) -> bytes:
        self.save(obj)
        return bytes(self.out + b".")


def _assert_loaded_matches(data, arrays: dict[str, object], n_shape: int, n_expr: int) -> None:
    np.testing.assert_allclose(data.v_template, arrays["v_template"])
    np.testing.assert_array_equal(data.faces, np.asarray(arrays["f"]).astype(np.int64))
    np.testing.assert_allclose(data.shapedirs, np.asarray(arrays["shapedirs"])[:, :, :n_shape])
    np.testing.assert_allclose(data.exprdirs, np.asarray(arrays["shapedirs"])[:, :, 300:300 + n_expr])
    np.testing.assert_allclose(data.posedirs, arrays["posedirs"])
    np.testing.assert_allclose(data.joint_regressor, arrays["J_regressor"].toarray())
    np.testing.assert_allclose(data.lbs_weights, arrays["weights"])
    np.testing.assert_array_equal(data.parents, [-1, 0, 1, 1, 1])
    assert data.expr_names[:2] == ["expr_00", "expr_01"] and len(data.expr_names) == n_expr


def test_chumpy_is_not_installed() -> None:
    assert importlib.util.find_spec("chumpy") is None  # the loader must work without it


@pytest.mark.parametrize("protocol", [0, 2])
def test_loads_flame2020_with_chumpy_objects(flame_arrays: dict, tmp_path: Path, protocol: int) -> None:
    arrays = flame_arrays
    fake = _FakeChumpy()
    fake.dump(_chumpy_dict(arrays, fake), tmp_path / "generic_model.pkl", protocol)
    assert "chumpy.ch" not in sys.modules
    payload = (tmp_path / "generic_model.pkl").read_bytes()
    assert b"chumpy.reordering" in payload and (protocol > 0 or b"copy_reg" in payload)
    data = load_flame(tmp_path, n_shape=20, n_expr=10)
    _assert_loaded_matches(data, arrays, 20, 10)
    assert data.name == "flame"


def test_loads_a_python2_style_pickle(flame_arrays: dict, tmp_path: Path) -> None:
    arrays = flame_arrays
    fake = _FakeChumpy()
    payload = _Py2Pickler().dumps(_chumpy_dict(arrays, fake))
    assert b"__builtin__\nset" in payload and b"scipy.sparse.csc\ncsc_matrix" in payload
    assert b"T" + struct.pack("<i", arrays["shapedirs"].nbytes) in payload  # the big array as a py2 str
    (tmp_path / "generic_model.pkl").write_bytes(payload)
    data = load_flame(tmp_path / "generic_model.pkl", n_shape=300, n_expr=N_EXPR_FILE)
    _assert_loaded_matches(data, arrays, 300, N_EXPR_FILE)


def test_flame2023_pickle_and_npz_agree(flame_arrays: dict, tmp_path: Path) -> None:
    arrays = flame_arrays
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "flame2023.pkl").write_bytes(pickle.dumps(arrays, protocol=4))
    dense = {k: (v.toarray() if sp.issparse(v) else v) for k, v in arrays.items()}
    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "b" / "flame2023.npz", **dense)
    from_pkl = load_flame(tmp_path / "a", n_shape=10, n_expr=5)
    from_npz = load_flame(tmp_path / "b" / "flame2023.npz", n_shape=10, n_expr=5)
    _assert_loaded_matches(from_pkl, arrays, 10, 5)
    names = ("v_template", "faces", "shapedirs", "exprdirs", "posedirs", "joint_regressor", "lbs_weights")
    for name in names:
        np.testing.assert_array_equal(getattr(from_pkl, name), getattr(from_npz, name))


def test_too_many_modes_requested(flame_arrays: dict, tmp_path: Path) -> None:
    (tmp_path / "flame2023.pkl").write_bytes(pickle.dumps(flame_arrays))
    with pytest.raises(ValueError, match="n_expr=50: flame2023.pkl has 12 expression modes"):
        load_flame(tmp_path, n_expr=50)
    with pytest.raises(ValueError, match="n_shape=301"):
        load_flame(tmp_path, n_shape=301, n_expr=5)


def test_flame_model_evaluates_with_pose_correctives(flame_arrays: dict, tmp_path: Path) -> None:
    arrays = flame_arrays
    (tmp_path / "flame2023.pkl").write_bytes(pickle.dumps(arrays))
    model = MorphableModel(load_flame(tmp_path, n_shape=5, n_expr=5), dtype=torch.float64)
    params = model.zero_params(1)
    params.jaw_pose[0, 0] = 0.2
    params.neck_pose[0, 1] = -0.3
    out = model(params)
    posedirs = model.posedirs
    model.posedirs = None
    without = model(params).vertices
    # Skinning is affine per vertex, so the difference is the correctives posedirs · vec(R_j - I) of the
    # non-root joints (FLAME's pose feature), turned by each vertex's blended rotation.
    rotations = out.transforms[0, :, :3, :3]
    local = torch.stack([torch.eye(3, dtype=torch.float64), *[
        torch.linalg.solve(rotations[model.parents[j]], rotations[j]) for j in range(1, 5)]])
    feature = (local[1:] - torch.eye(3, dtype=torch.float64)).reshape(-1)
    correctives = torch.einsum("vck,k->vc", posedirs, feature)
    blended = torch.einsum("vj,jab->vab", model.lbs_weights, rotations)
    expected = torch.einsum("vab,vb->va", blended, correctives)
    assert expected.abs().max() > 1e-5
    torch.testing.assert_close(out.vertices[0] - without[0], expected, atol=1e-12, rtol=0)


# ---------------------------------------------------------------- landmarks, UVs, masks beside the model


def test_side_files_landmarks_uvs_masks(head_mesh, flame_arrays: dict, tmp_path: Path) -> None:
    arrays = flame_arrays
    vertices, faces = head_mesh
    (tmp_path / "generic_model.pkl").write_bytes(pickle.dumps(arrays, protocol=2))
    rng = np.random.default_rng(1)
    lmk_faces = rng.integers(0, len(faces), 68)
    lmk_bary = rng.dirichlet(np.ones(3), 68)
    np.save(tmp_path / "landmark_embedding.npy", {
        "full_lmk_faces_idx": lmk_faces[None], "full_lmk_bary_coords": lmk_bary[None],
        "static_lmk_faces_idx": lmk_faces[17:], "static_lmk_bary_coords": lmk_bary[17:]}, allow_pickle=True)
    # A texture-space OBJ whose triangles are shuffled and rotated relative to the model's.
    order = rng.permutation(len(faces))
    shift = rng.integers(0, 3, len(faces))
    obj_faces = np.stack([np.roll(f, s) for f, s in zip(faces[order], shift, strict=True)])
    uvs = rng.uniform(size=(len(faces) * 3, 2))
    obj_uv_faces = np.arange(len(faces) * 3).reshape(-1, 3)
    lines = [f"v {x} {y} {z}" for x, y, z in vertices] + [f"vt {u} {v}" for u, v in uvs]
    lines += [f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}"
              for (a, b, c), (ta, tb, tc) in zip(obj_faces, obj_uv_faces, strict=True)]
    (tmp_path / "head_template_mesh.obj").write_text("\n".join(lines) + "\n")
    masks = {"face": np.arange(0, 100), "lips": np.arange(100, 120), "forehead": np.arange(200, 230),
             "left_eyeball": np.arange(len(vertices) - 84, len(vertices) - 42),
             "right_eyeball": np.arange(len(vertices) - 42, len(vertices))}
    (tmp_path / "FLAME_masks.pkl").write_bytes(pickle.dumps(masks, protocol=2))

    data = load_flame(tmp_path, n_shape=3, n_expr=3)
    np.testing.assert_array_equal(data.landmark_faces, lmk_faces)
    np.testing.assert_allclose(data.landmark_bary, lmk_bary)
    # Every model corner got the UV the OBJ gave the same vertex of the same triangle.
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    obj_of_model = obj_faces[inverse]
    for k in range(3):
        corner_in_obj = (obj_of_model == faces[:, k:k + 1]).argmax(1)
        expected = uvs[obj_uv_faces[inverse][np.arange(len(faces)), corner_in_obj]]
        np.testing.assert_allclose(data.uvs[data.uv_faces[:, k]], expected)
    assert data.regions["face"].sum() == 100 and data.regions["forehead"].sum() == 30
    assert data.regions["eyes"].sum() == 84
    assert set(REGION_NAMES) <= set(data.regions)


def test_static_plus_dynamic_embedding(head_mesh, flame_arrays: dict, tmp_path: Path) -> None:
    (tmp_path / "generic_model.pkl").write_bytes(pickle.dumps(flame_arrays))
    rng = np.random.default_rng(2)
    n_faces = len(head_mesh[1])
    static = {"lmk_face_idx": rng.integers(0, n_faces, 51), "lmk_b_coords": rng.dirichlet(np.ones(3), 51)}
    (tmp_path / "flame_static_embedding.pkl").write_bytes(pickle.dumps(static, protocol=2))
    dynamic = {"lmk_face_idx": rng.integers(0, n_faces, (79, 17)),
               "lmk_b_coords": rng.dirichlet(np.ones(3), (79, 17))}
    np.save(tmp_path / "flame_dynamic_embedding.npy", dynamic, allow_pickle=True)
    data = load_flame(tmp_path, n_shape=3, n_expr=3)
    np.testing.assert_array_equal(data.landmark_faces[:17], dynamic["lmk_face_idx"][0])  # frontal row
    np.testing.assert_array_equal(data.landmark_faces[17:], static["lmk_face_idx"])
    np.testing.assert_allclose(data.landmark_bary[17:], static["lmk_b_coords"])


def test_without_side_files_everything_is_derived(flame_arrays: dict, tmp_path: Path) -> None:
    (tmp_path / "generic_model.pkl").write_bytes(pickle.dumps(flame_arrays))
    data = load_flame(tmp_path, n_shape=3, n_expr=3)
    data.validate()
    vertices = data.v_template
    assert data.uvs.min() >= 0 and data.uvs.max() <= 1
    # The eyeballs are found as separate shells; the mouth interior is the rim of the mouth hole.
    assert data.regions["eyes"].sum() == 84
    rim = data.regions["mouth_interior"]
    assert rim.any() and np.abs(vertices[rim, 1] + 0.037).max() < 0.02
    assert data.regions["face"].sum() > 50
    # Heuristic landmarks sit on the front of the face, the nose tip (30) frontmost of them.
    points = (vertices[data.faces[data.landmark_faces]] * data.landmark_bary[..., None]).sum(1)
    assert (points[:, 2] > 0).all() and points[:, 2].argmax() == 30


# ---------------------------------------------------------------- safety and errors


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickles_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    for payload in ({"v_template": _Evil(marker)}, [eval], {"x": np.load}):
        path.write_bytes(pickle.dumps(payload, protocol=2))
        with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
            load_pickle(path)
    # Not even through load_flame / npy side files.
    path.write_bytes(pickle.dumps({"v_template": _Evil(marker)}))
    with pytest.raises(pickle.UnpicklingError):
        load_flame(path)
    evil_npy = tmp_path / "landmark_embedding.npy"
    np.save(evil_npy, np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(pickle.UnpicklingError):
        load_npy(evil_npy)
    assert not marker.exists()


def test_restricted_unpickler_allows_plain_data() -> None:
    import io

    value = {"a": np.arange(4, dtype=np.int32), "b": (1, 2.5, "s", None), "c": {1, 2}, "d": np.float32(3)}
    loaded = RestrictedUnpickler(io.BytesIO(pickle.dumps(value, protocol=2)), encoding="latin1").load()
    np.testing.assert_array_equal(loaded["a"], value["a"])
    assert loaded["b"] == value["b"] and loaded["c"] == {1, 2} and loaded["d"] == np.float32(3)


def test_missing_file_names_it_and_where_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FlameFileMissing) as info:
        load_flame(tmp_path / "generic_model.pkl")
    message = str(info.value)
    assert "generic_model.pkl" in message and "https://flame.is.tue.mpg.de" in message
    assert ".emodub/flame" in message and "EMODUB_FLAME_DIR" in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(FlameFileMissing, match="flame2023.pkl"):
        load_flame(tmp_path)  # an empty folder: the message lists the file names looked for
    monkeypatch.setenv("EMODUB_FLAME_DIR", str(tmp_path))
    with pytest.raises(FlameFileMissing, match=str(tmp_path)):
        find_flame_model()


def test_env_var_locates_the_model(flame_arrays: dict, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "generic_model.pkl").write_bytes(pickle.dumps(flame_arrays))
    monkeypatch.setenv("EMODUB_FLAME_DIR", str(tmp_path))
    assert find_flame_model() == tmp_path / "generic_model.pkl"


def test_not_a_flame_file(tmp_path: Path) -> None:
    (tmp_path / "generic_model.pkl").write_bytes(pickle.dumps({"v_template": np.zeros((3, 3))}))
    with pytest.raises(ValueError, match="not a FLAME model file .*missing f, shapedirs"):
        load_flame(tmp_path)
