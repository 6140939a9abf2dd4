"""FLAME loader: the user's own FLAME 2020 / 2023 model files, read without chumpy.

FLAME (https://flame.is.tue.mpg.de) is licensed by its authors and cannot be shipped: users register,
download it, and put the files in ``~/.emodub/flame/`` (:data:`DEFAULT_FLAME_DIR`) or point the
``EMODUB_FLAME_DIR`` environment variable (or an explicit path) at them.

Files read (all optional except the model):

- ``generic_model.pkl`` / ``female_model.pkl`` / ``male_model.pkl`` (FLAME 2020) — Python-2 pickles whose
  arrays are partly ``chumpy.ch.Ch`` objects. They are read with :class:`RestrictedUnpickler`, which maps
  chumpy classes onto a stand-in that keeps the pickled state, rebuilds numpy arrays and scipy sparse
  matrices, and refuses every other global (a pickle can run arbitrary code; this one cannot).
- ``flame2023.pkl`` (same keys, plain arrays) or any of these as ``.npz`` (``flame2023.npz``...).
- landmarks: ``landmark_embedding.npy`` (DECA layout, with ``full_lmk_faces_idx`` /
  ``full_lmk_bary_coords`` for all 68 points) or ``flame_static_embedding.pkl`` (51 inner points) +
  ``flame_dynamic_embedding.npy`` (the jaw contour per yaw angle; the frontal row, index 0 in the
  RingNet/DECA convention, is used). Without them the 68 points are placed by
  :func:`core.morphable.model.heuristic_landmark_embedding` (approximate).
- ``head_template_mesh.obj`` (FLAME's texture-space mesh) for UVs; otherwise a spherical projection
  (:func:`core.morphable.model.spherical_uvs`, face undistorted, seam at the back).
- ``FLAME_masks.pkl`` for regions (``face``, ``lips``, ``forehead``, ``eye_region``...; all are kept);
  otherwise regions are derived from the landmarks and the mesh (eyeballs = the small connected
  components, lips/brows/face from landmark contours). FLAME has no mouth cavity, so ``mouth_interior``
  is the rim of the hole between the lips.

Layout of the model file (FLAME 2020 and 2023): ``v_template`` (5023, 3) metres, ``f`` (9976, 3),
``shapedirs`` (5023, 3, 400) = 300 identity then 100 expression modes, ``posedirs`` (5023, 3, 36),
``J_regressor`` (5, 5023) sparse, ``weights`` (5023, 5), ``kintree_table`` (2, 5).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.morphable.data import JOINT_NAMES, ModelData
from core.morphable.model import (
    boundary_vertices,
    check_regions,
    connected_components,
    embedding_points,
    heuristic_landmark_embedding,
    landmark_regions,
    spherical_uvs,
)

DEFAULT_FLAME_DIR = Path.home() / ".emodub" / "flame"
FLAME_DIR_ENV = "EMODUB_FLAME_DIR"
FLAME_URL = "https://flame.is.tue.mpg.de"
# Model files searched in a FLAME folder, in order of preference.
FLAME_MODEL_FILES: tuple[str, ...] = (
    "flame2023.pkl", "flame2023.npz", "generic_model.pkl", "generic_model.npz",
    "female_model.pkl", "male_model.pkl", "flame2023_no_jaw.pkl",
)
FLAME_SHAPE_MODES = 300  # shapedirs holds 300 identity modes, then the expression modes
FLAME_REQUIRED_KEYS: tuple[str, ...] = (
    "v_template", "f", "shapedirs", "J_regressor", "weights", "kintree_table",
)


class FlameFileMissing(FileNotFoundError):
    """A FLAME file the user must provide is absent; the message says which and where to get it."""


def flame_dir() -> Path:
    """The folder searched for FLAME files: ``$EMODUB_FLAME_DIR`` or :data:`DEFAULT_FLAME_DIR`."""
    env = os.environ.get(FLAME_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_FLAME_DIR


def _missing(what: str, where: Path) -> FlameFileMissing:
    return FlameFileMissing(
        f"FLAME model file not found: {what} (looked in {where}). FLAME cannot be shipped with emodub: "
        f"register and download it from {FLAME_URL} (FLAME 2020 'generic_model.pkl' or FLAME 2023 "
        f"'flame2023.pkl'), then put it in {DEFAULT_FLAME_DIR}/ or set {FLAME_DIR_ENV} (or the model path "
        f"in the config) to its folder.")


def find_flame_model(path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a FLAME model file: an explicit file, a folder to search, or (``None``) :func:`flame_dir`."""
    target = Path(path).expanduser() if path is not None else flame_dir()
    if target.is_file():
        return target
    if target.is_dir():
        for name in FLAME_MODEL_FILES:
            if (target / name).is_file():
                return target / name
    elif target.suffix:  # an explicit file that is not there
        raise _missing(target.name, target.parent)
    raise _missing(" or ".join(FLAME_MODEL_FILES[:3]), target)


# ====================================================================== safe unpickling


class ChumpyStandIn:
    """Holds the pickled state of a chumpy object (``Ch`` keeps its array in ``x``; operations keep their
    operands in ``a``/``b``...) so it can be turned into a numpy array without chumpy."""

    chumpy_class = "chumpy.ch.Ch"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.to_numpy()
        return array if dtype is None else array.astype(dtype)

    def to_numpy(self) -> np.ndarray:
        """Evaluate: ``Ch`` -> its ``x``; reshape/transpose/select/concatenate and + - * / of operands."""
        kind = self.chumpy_class.rsplit(".", 1)[-1].lower()
        state = self.__dict__
        if "x" in state and kind in ("ch", "chhandle", "atleastnd", ""):
            return to_array(state["x"])
        if kind in ("reshape", "ravel"):
            return to_array(state["a"]).reshape(state.get("newshape", -1))
        if kind == "transpose":
            return np.transpose(to_array(state["a"]), state.get("axes"))
        if kind == "select":
            out = to_array(state["a"]).ravel()[np.asarray(state["idxs"])]
            return out.reshape(state["preferred_shape"]) if "preferred_shape" in state else out
        if kind == "concatenate":
            operands = sorted((k for k in state if k[:1] == "m" and k[1:].isdigit()),
                              key=lambda k: int(k[1:]))
            parts = [to_array(state[k]) for k in operands]
            return np.concatenate(parts, axis=state.get("axis", 0))
        binary = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide}
        if kind in binary and "a" in state and "b" in state:
            return binary[kind](to_array(state["a"]), to_array(state["b"]))
        if "x" in state:
            return to_array(state["x"])
        raise ValueError(f"cannot evaluate a pickled {self.chumpy_class} object without chumpy; re-save the "
                         f"model with plain numpy arrays (or use FLAME 2023, which has no chumpy objects)")


class SparseStandIn:
    """Holds the pickled state of a scipy sparse matrix and rebuilds it from its arrays (the pickled
    private layout changed across scipy versions; only ``data``/``indices``/``indptr``/``row``/``col`` and
    the shape are read)."""

    sparse_format = "csc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)

    def to_scipy(self) -> Any:
        import scipy.sparse as sp

        state = self.__dict__
        shape = tuple(int(s) for s in state.get("_shape", state.get("shape", ())))
        if self.sparse_format in ("csc", "csr"):
            build = sp.csc_matrix if self.sparse_format == "csc" else sp.csr_matrix
            arrays = (np.asarray(state["data"]), np.asarray(state["indices"]), np.asarray(state["indptr"]))
            return build(arrays, shape=shape)
        if self.sparse_format == "coo":
            row = state.get("row", state.get("_row"))
            col = state.get("col", state.get("_col"))
            if row is None and "coords" in state:
                row, col = state["coords"]
            return sp.coo_matrix((np.asarray(state["data"]), (np.asarray(row), np.asarray(col))), shape=shape)
        raise ValueError(f"unsupported pickled sparse format {self.sparse_format!r}")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = np.asarray(self.to_scipy().toarray())
        return array if dtype is None else array.astype(dtype)


_STANDIN_CACHE: dict[tuple[str, str], type] = {}


def _chumpy_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STANDIN_CACHE:
        _STANDIN_CACHE[key] = type(name, (ChumpyStandIn,), {"chumpy_class": f"{module}.{name}"})
    return _STANDIN_CACHE[key]


def _sparse_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STANDIN_CACHE:
        _STANDIN_CACHE[key] = type(name, (SparseStandIn,), {"sparse_format": name[:3]})
    return _STANDIN_CACHE[key]


# Python 2 names found in old pickles, mapped to their Python 3 homes.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}
# Containers old pickles build by calling them (``set([...])``), ``object`` for copy_reg._reconstructor.
_SAFE_BUILTINS = frozenset({"object", "set", "frozenset", "slice", "complex", "list", "dict", "tuple"})
_SPARSE_CLASSES = frozenset({"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for model files that only reconstructs data.

    Allowed: numpy arrays, dtypes and scalars; scipy sparse matrices (rebuilt by :class:`SparseStandIn`);
    chumpy objects (as :class:`ChumpyStandIn` subclasses); and harmless builtins. Any other global
    (``os.system``, ``builtins.eval``, ``subprocess.Popen``...) raises ``pickle.UnpicklingError``.
    """

    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)
        if module == "chumpy" or module.startswith("chumpy."):
            return _chumpy_class(module, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
            return _sparse_class(module, name)
        if module == "builtins" and name in _SAFE_BUILTINS:
            import builtins

            return getattr(builtins, name)
        if module == "copyreg" and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor
        if module == "_codecs" and name == "encode":  # how Python 3 pickles bytes at protocol < 3
            import codecs

            return codecs.encode
        if module.split(".")[0] == "numpy":
            found = _numpy_global(module, name)
            if found is not None:
                return found
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: model files may only contain arrays (numpy, scipy.sparse, "
            f"chumpy); this file tries to import something else, which could run code")


def _numpy_global(module: str, name: str) -> Any:
    """The few numpy globals array pickles use (numpy 1.x ``numpy.core`` or 2.x ``numpy._core`` names)."""
    if module == "numpy":
        if name in ("dtype", "ndarray"):
            return getattr(np, name)
        scalar = getattr(np, name, None)
        return scalar if isinstance(scalar, type) and issubclass(scalar, np.generic) else None
    submodule = module.replace("numpy._core.", "").replace("numpy.core.", "")
    if (submodule, name) not in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                                 ("numeric", "_frombuffer")):
        return None
    import importlib

    for base in ("numpy._core", "numpy.core"):
        try:
            found = getattr(importlib.import_module(f"{base}.{submodule}"), name, None)
        except ImportError:
            continue
        if found is not None:
            return found
    return None


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Load a model pickle (Python 2 or 3) with :class:`RestrictedUnpickler` and ``latin1`` strings."""
    with open(path, "rb") as handle:
        return RestrictedUnpickler(handle, encoding="latin1").load()


def _read_npy(handle: BinaryIO) -> np.ndarray:
    """Read one ``.npy`` stream; object arrays (pickled) go through :class:`RestrictedUnpickler`."""
    fmt = np.lib.format
    version = fmt.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(handle)
    else:
        shape, fortran, dtype = fmt._read_array_header(handle, version)  # (3, 0): utf-8 field names
    if dtype.hasobject:
        return RestrictedUnpickler(handle, encoding="latin1").load()
    count = int(np.prod(shape))
    data = np.frombuffer(handle.read(count * dtype.itemsize), dtype=dtype, count=count)
    return data.reshape(shape[::-1]).T if fortran else data.reshape(shape)


def load_npy(path: str | os.PathLike[str]) -> Any:
    """``np.load`` of a ``.npy`` that may hold a pickled object (a dict of embeddings), safely.
    A 0-d object array is unwrapped to the object it holds."""
    with open(path, "rb") as handle:
        value = _read_npy(handle)
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        return value.item()
    return value


def load_npz(path: str | os.PathLike[str]) -> dict[str, Any]:
    """All members of an ``.npz``, object members unpickled safely."""
    out: dict[str, Any] = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as raw:
                    value = _read_npy(io.BytesIO(raw.read()))
                if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
                    value = value.item()
                out[member[:-4]] = value
    return out


def to_array(value: Any) -> np.ndarray:
    """A numpy array from a numpy array, a chumpy stand-in, a (stand-in) sparse matrix or a list."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, ChumpyStandIn):
        return value.to_numpy()
    if isinstance(value, SparseStandIn):
        return np.asarray(value)
    if hasattr(value, "toarray"):  # a real scipy sparse matrix
        return np.asarray(value.toarray())
    return np.asarray(value)


# ====================================================================== the model


def read_flame_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw dictionary of a FLAME ``.pkl`` or ``.npz`` (values not yet converted)."""
    path = Path(path)
    data = load_npz(path) if path.suffix == ".npz" else load_pickle(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dictionary of FLAME arrays, found {type(data).__name__}")
    missing = [key for key in FLAME_REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path}: not a FLAME model file (missing {', '.join(missing)})")
    return data


def _parents_from_kintree(kintree: np.ndarray) -> np.ndarray:
    parents = np.asarray(kintree)[0].astype(np.int64)
    parents[(parents < 0) | (parents >= len(parents)) | (np.arange(len(parents)) == 0)] = -1
    return parents


def _first(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None


def read_landmark_embedding(folder: Path, faces: np.ndarray,
                            vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """The 68-point embedding from the files beside the model (see the module docstring).

    Returns:
        (68,) triangle ids, (68, 3) barycentric coordinates, and a word naming the source.
    """
    static_faces = static_bary = contour_faces = contour_bary = None
    deca = folder / "landmark_embedding.npy"
    if deca.is_file():
        emb = load_npy(deca)
        full_faces = _first(emb, "full_lmk_faces_idx")
        if full_faces is not None:
            tri = np.asarray(full_faces).reshape(-1).astype(np.int64)
            bary = np.asarray(_first(emb, "full_lmk_bary_coords")).reshape(-1, 3).astype(np.float64)
            if len(tri) == 68:
                return tri, bary, "landmark_embedding.npy"
        static_faces = _first(emb, "static_lmk_faces_idx", "lmk_faces_idx", "lmk_face_idx")
        static_bary = _first(emb, "static_lmk_bary_coords", "lmk_bary_coords", "lmk_b_coords")
        contour_faces = _first(emb, "dynamic_lmk_faces_idx")
        contour_bary = _first(emb, "dynamic_lmk_bary_coords")
    static_file = folder / "flame_static_embedding.pkl"
    if static_faces is None and static_file.is_file():
        emb = load_pickle(static_file)
        static_faces = _first(emb, "lmk_face_idx", "lmk_faces_idx", "static_lmk_faces_idx")
        static_bary = _first(emb, "lmk_b_coords", "lmk_bary_coords", "static_lmk_bary_coords")
    dynamic_file = folder / "flame_dynamic_embedding.npy"
    if contour_faces is None and dynamic_file.is_file():
        emb = load_npy(dynamic_file)
        contour_faces = _first(emb, "lmk_face_idx", "lmk_faces_idx", "dynamic_lmk_faces_idx")
        contour_bary = _first(emb, "lmk_b_coords", "lmk_bary_coords", "dynamic_lmk_bary_coords")
    if static_faces is None:
        tri, bary = heuristic_landmark_embedding(vertices, faces)
        return tri, bary, "heuristic"
    static_tri = np.asarray(to_array(static_faces)).reshape(-1).astype(np.int64)
    static_b = np.asarray(to_array(static_bary), dtype=np.float64).reshape(-1, 3)
    if len(static_tri) == 68:
        return static_tri, static_b, "static embedding"
    if len(static_tri) != 51:
        raise ValueError(f"{folder}: landmark embedding has {len(static_tri)} points; expected 51 or 68")
    if contour_faces is not None:
        # One row of 17 contour points per yaw bin; row 0 is the frontal face (RingNet/DECA convention).
        contour_tri = np.asarray(to_array(contour_faces)).reshape(-1, 17)[0].astype(np.int64)
        contour_b = np.asarray(to_array(contour_bary), dtype=np.float64).reshape(-1, 17, 3)[0]
        source = "static + dynamic embedding"
    else:
        tri, bary = heuristic_landmark_embedding(vertices, faces)
        contour_tri, contour_b = tri[:17], bary[:17]
        source = "static embedding + heuristic contour"
    return np.concatenate([contour_tri, static_tri]), np.concatenate([contour_b, static_b]), source


def _match_uv_faces(faces: np.ndarray, obj_faces: np.ndarray, obj_uv_faces: np.ndarray,
                    n_vertices: int) -> np.ndarray | None:
    """UV indices per corner of ``faces`` taken from an OBJ with the same triangles in any order/rotation."""
    if obj_faces.shape == faces.shape and np.array_equal(obj_faces, faces):
        return obj_uv_faces
    n = np.int64(n_vertices)

    def keys(f: np.ndarray) -> np.ndarray:
        s = np.sort(f, axis=1).astype(np.int64)
        return (s[:, 0] * n + s[:, 1]) * n + s[:, 2]

    obj_keys = keys(obj_faces)
    order = np.argsort(obj_keys)
    model_keys = keys(faces)
    pos = np.searchsorted(obj_keys[order], model_keys)
    pos = np.clip(pos, 0, len(order) - 1)
    match = order[pos]
    if not np.array_equal(obj_keys[match], model_keys):
        return None
    # Corner k of a model face sits at the position of the same vertex in the OBJ face.
    same = faces[:, :, None] == obj_faces[match][:, None, :]  # (F, 3, 3)
    return np.take_along_axis(obj_uv_faces[match], same.argmax(2), axis=1)


def _read_uvs(folder: Path, faces: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    from core.morphable.ict import read_obj

    for name in ("head_template_mesh.obj", "head_template.obj"):
        path = folder / name
        if path.is_file():
            mesh = read_obj(path)
            if mesh.uv_faces is not None and len(mesh.vertices) == len(vertices):
                uv_faces = _match_uv_faces(faces, mesh.faces, mesh.uv_faces, len(vertices))
                if uv_faces is not None:
                    return np.clip(mesh.uvs, 0.0, 1.0), uv_faces, name
    uvs, uv_faces = spherical_uvs(vertices, faces)
    return uvs, uv_faces, "spherical projection"


def _flame_regions(folder: Path, vertices: np.ndarray, faces: np.ndarray,
                   landmarks: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
    n = len(vertices)
    labels = connected_components(faces, n)
    sizes = np.bincount(labels)
    main = labels == sizes.argmax()
    derived = landmark_regions(vertices, landmarks, main)
    rim = boundary_vertices(faces, n) & main
    regions: dict[str, np.ndarray] = {}
    masks_file = folder / "FLAME_masks.pkl"
    source = "derived from landmarks and geometry"
    if masks_file.is_file():
        masks = load_pickle(masks_file)
        for name, ids in masks.items():
            mask = np.zeros(n, dtype=bool)
            mask[np.asarray(to_array(ids)).astype(np.int64).ravel()] = True
            regions[str(name)] = mask
        source = "FLAME_masks.pkl"
    if "left_eyeball" in regions and "right_eyeball" in regions:
        eyes = regions["left_eyeball"] | regions["right_eyeball"]
    else:
        # FLAME's eyeballs are separate shells: every component but the head itself.
        eyes = ~main
    lips = regions.get("lips", derived["lips"])
    mouth_interior = rim & (lips | derived["mouth_opening"])
    if not mouth_interior.any():
        mouth_interior = derived["mouth_opening"] & main
    brows = derived["brows"] & regions.get("face", derived["face"])
    regions.setdefault("face", derived["face"])
    regions.setdefault("lips", derived["lips"])
    regions["eyes"] = eyes
    regions["mouth_interior"] = mouth_interior
    regions["brows"] = brows
    return check_regions(regions, n), source


def load_flame(path: str | os.PathLike[str] | None = None, n_shape: int = 100, n_expr: int = 50,
               with_pose_correctives: bool = True) -> ModelData:
    """Load FLAME as :class:`ModelData`.

    Args:
        path: a model file (``generic_model.pkl``, ``flame2023.pkl``, ``.npz``...) or a folder holding one;
            ``None`` searches ``$EMODUB_FLAME_DIR`` then ``~/.emodub/flame``. Landmark, UV and mask files
            are looked for beside the model file.
        n_shape: identity modes kept (at most 300).
        n_expr: expression modes kept (at most the file's, 100 for FLAME 2020/2023).
        with_pose_correctives: keep ``posedirs``.

    Raises:
        FlameFileMissing: no model file (the message names it and where to get it).
        pickle.UnpicklingError: the file tries to import anything but array types.
    """
    model_path = find_flame_model(path)
    folder = model_path.parent
    raw = read_flame_file(model_path)
    v_template = to_array(raw["v_template"]).astype(np.float64)
    faces = to_array(raw["f"]).astype(np.int64)
    n_vertices = len(v_template)
    dirs = to_array(raw["shapedirs"]).astype(np.float64)
    if dirs.ndim == 2:
        dirs = dirs.reshape(n_vertices, 3, -1)
    total = dirs.shape[2]
    shape_total = min(FLAME_SHAPE_MODES, total)
    expr_total = total - shape_total
    if not 0 <= n_shape <= shape_total:
        raise ValueError(f"n_shape={n_shape}: {model_path.name} has {shape_total} identity modes")
    if not 0 <= n_expr <= expr_total:
        raise ValueError(f"n_expr={n_expr}: {model_path.name} has {expr_total} expression modes")
    shapedirs = dirs[:, :, :n_shape]
    exprdirs = dirs[:, :, shape_total:shape_total + n_expr]
    posedirs = None
    if with_pose_correctives and "posedirs" in raw:
        posedirs = to_array(raw["posedirs"]).astype(np.float64)
        n_pose = 9 * (len(JOINT_NAMES) - 1)
        if posedirs.shape == (n_pose, n_vertices * 3):  # the transposed (P, 3V) layout some tools save
            posedirs = posedirs.T
        posedirs = posedirs.reshape(n_vertices, 3, n_pose)
    regressor = to_array(raw["J_regressor"]).astype(np.float64)
    weights = to_array(raw["weights"]).astype(np.float64)
    parents = _parents_from_kintree(to_array(raw["kintree_table"]))
    if len(parents) != len(JOINT_NAMES):
        raise ValueError(f"{model_path}: {len(parents)} joints, expected FLAME's {len(JOINT_NAMES)}")

    lmk_tri, lmk_bary, _ = read_landmark_embedding(folder, faces, v_template)
    uvs, uv_faces, _ = _read_uvs(folder, faces, v_template)
    landmarks = embedding_points(v_template, faces, lmk_tri, lmk_bary)
    regions, _ = _flame_regions(folder, v_template, faces, landmarks)
    data = ModelData(
        name="flame", v_template=v_template, faces=faces, shapedirs=shapedirs, exprdirs=exprdirs,
        expr_names=[f"expr_{i:02d}" for i in range(n_expr)], joint_regressor=regressor, parents=parents,
        lbs_weights=weights, uvs=uvs, uv_faces=uv_faces, landmark_faces=lmk_tri, landmark_bary=lmk_bary,
        regions=regions, posedirs=posedirs, shape_names=[f"shape_{i:03d}" for i in range(n_shape)],
    )
    data.validate()
    return data
