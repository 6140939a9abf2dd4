"""load_model / available_models dispatch to the procedural head, FLAME and ICT FaceKit."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import pytest
import torch

from core.morphable import MODEL_NAMES, MorphableModel, available_models, load_model
from core.morphable.flame import FlameFileMissing


def test_flame_and_ict_through_the_registry(flame_arrays: dict, ict_folder: Path, tmp_path: Path) -> None:
    flame_dir = tmp_path / "flame"
    flame_dir.mkdir()
    (flame_dir / "generic_model.pkl").write_bytes(pickle.dumps(flame_arrays, protocol=2))
    flame = load_model("flame", flame_dir, n_shape=10, n_expr=5, dtype=torch.float64)
    assert isinstance(flame, MorphableModel) and flame.name == "flame" and flame.dtype == torch.float64
    assert (flame.n_shape, flame.n_expr) == (10, 5)
    ict = load_model("ICT", ict_folder)
    assert ict.name == "ict" and ict.expr_names == ["jawOpen", "mouthPucker"]
    assert ict(ict.zero_params(1)).vertices.shape == (1, ict.n_vertices, 3)


def test_unknown_and_misused_names() -> None:
    with pytest.raises(ValueError, match="unknown morphable model 'bfm'.*procedural, flame, ict"):
        load_model("bfm")
    with pytest.raises(ValueError, match="takes no path"):
        load_model("procedural", "/some/where")
    assert MODEL_NAMES == ("procedural", "flame", "ict")


def test_missing_user_files_raise_the_loaders_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMODUB_FLAME_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("EMODUB_ICT_DIR", str(tmp_path / "nothing"))
    with pytest.raises(FlameFileMissing):
        load_model("flame")
    with pytest.raises(FileNotFoundError, match="generic_neutral_mesh.obj"):
        load_model("ict")


def test_available_models_follows_the_files(flame_arrays: dict, ict_folder: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    has_procedural = importlib.util.find_spec("core.morphable.procedural") is not None
    monkeypatch.setenv("EMODUB_FLAME_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("EMODUB_ICT_DIR", str(tmp_path / "none"))
    assert available_models() == (["procedural"] if has_procedural else [])
    (tmp_path / "flame2023.pkl").write_bytes(pickle.dumps(flame_arrays))
    monkeypatch.setenv("EMODUB_FLAME_DIR", str(tmp_path))
    monkeypatch.setenv("EMODUB_ICT_DIR", str(ict_folder))
    assert available_models() == ["procedural", "flame", "ict"][0 if has_procedural else 1:]


def test_procedural_head_through_the_registry() -> None:
    if importlib.util.find_spec("core.morphable.procedural") is None:
        pytest.skip("core.morphable.procedural is not written yet")
    model = load_model("procedural")
    assert model.name == "procedural"
    out = model(model.zero_params(1))
    assert out.landmarks.shape == (1, 68, 3) and torch.isfinite(out.vertices).all()
