"""Parameter errors against ground truth: groups by expression name, jaw correlation, truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.eval.params_metrics import MOUTH_EXPRESSIONS, UPPER_FACE_EXPRESSIONS, param_errors
from core.morphable.data import PROCEDURAL_EXPRESSIONS, FaceParams

E = len(PROCEDURAL_EXPRESSIONS)
IDX = {n: i for i, n in enumerate(PROCEDURAL_EXPRESSIONS)}


def truth(n: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 25.0
    jaw = np.zeros((n, 3))
    jaw[:, 0] = 0.15 + 0.1 * np.sin(2 * np.pi * 3 * t)
    return {"expression": rng.uniform(0, 1, (n, E)), "jaw_pose": jaw}


def test_group_names_exist_and_do_not_overlap() -> None:
    assert set(MOUTH_EXPRESSIONS) <= set(PROCEDURAL_EXPRESSIONS)
    assert set(UPPER_FACE_EXPRESSIONS) <= set(PROCEDURAL_EXPRESSIONS)
    assert not set(MOUTH_EXPRESSIONS) & set(UPPER_FACE_EXPRESSIONS)


def test_identical_parameters_score_zero_and_full_correlation() -> None:
    gt = truth()
    result = param_errors(gt, gt)
    assert result["expression_l1"] == 0.0 and result["mouth_l1"] == 0.0 and result["upper_face_l1"] == 0.0
    assert result["jaw_l1"] == 0.0 and result["jaw_corr"] == pytest.approx(1.0)
    assert result["truncated"] is False and result["note"] is None and result["frames"] == 50


def test_errors_land_in_the_right_groups() -> None:
    gt = truth()
    pred = {k: v.copy() for k, v in gt.items()}
    pred["expression"][:, IDX["mouth_open"]] += 0.2
    result = param_errors(pred, gt)
    assert result["expression_l1"] == pytest.approx(0.2 / E)
    assert result["mouth_l1"] == pytest.approx(0.2 / (len(MOUTH_EXPRESSIONS) + 1))  # + the jaw column
    assert result["upper_face_l1"] == 0.0 and result["jaw_l1"] == 0.0

    pred = {k: v.copy() for k, v in gt.items()}
    pred["expression"][:, IDX["blink_left"]] -= 0.5
    result = param_errors(pred, gt)
    assert result["upper_face_l1"] == pytest.approx(0.5 / len(UPPER_FACE_EXPRESSIONS))
    assert result["mouth_l1"] == 0.0


def test_jaw_error_and_correlation() -> None:
    gt = truth()
    pred = {k: v.copy() for k, v in gt.items()}
    pred["jaw_pose"][:, 0] = 2.0 * gt["jaw_pose"][:, 0] + 0.05  # wrong scale, right timing
    result = param_errors(pred, gt)
    assert result["jaw_corr"] == pytest.approx(1.0)
    assert result["jaw_l1"] == pytest.approx(np.abs(gt["jaw_pose"][:, 0] + 0.05).mean())
    assert result["mouth_l1"] == pytest.approx(result["jaw_l1"] / (len(MOUTH_EXPRESSIONS) + 1))
    pred["jaw_pose"][:, 0] = -gt["jaw_pose"][:, 0]  # opens when it should close
    assert param_errors(pred, gt)["jaw_corr"] == pytest.approx(-1.0)


def test_constant_jaw_gives_zero_correlation_with_a_note() -> None:
    gt = truth()
    pred = {k: v.copy() for k, v in gt.items()}
    pred["jaw_pose"][:] = 0.1
    result = param_errors(pred, gt)
    assert result["jaw_corr"] == 0.0 and "constant" in result["note"]


def test_length_mismatch_truncates_and_reports() -> None:
    gt = truth(50)
    pred = {k: v[:40].copy() for k, v in gt.items()}
    pred["expression"][:, 0] += 0.1
    result = param_errors(pred, gt)
    assert result["frames"] == 40 and result["frames_pred"] == 40 and result["frames_gt"] == 50
    assert result["truncated"] is True and "40" in result["note"]
    assert result["expression_l1"] == pytest.approx(0.1 / E)


def test_face_params_and_npz_inputs(tmp_path: Path) -> None:
    gt = truth(20)
    arrays = {"shape": np.zeros((20, 4)), "neck_pose": np.zeros((20, 3)), "eye_pose": np.zeros((20, 6)),
              "rotation": np.zeros((20, 3)), "translation": np.zeros((20, 3)), **gt}
    params = FaceParams.from_numpy(arrays)
    path = params.save(tmp_path / "params.npz")
    tensors = {k: torch.as_tensor(v) for k, v in gt.items()}
    for pred in (params, path, tensors):
        result = param_errors(pred, gt)
        assert result["expression_l1"] < 1e-6 and result["jaw_corr"] == pytest.approx(1.0)


def test_other_models_need_names_or_indices() -> None:
    rng = np.random.default_rng(1)
    gt = {"expression": rng.normal(size=(30, 5)), "jaw_pose": rng.normal(size=(30, 3))}
    pred = {"expression": gt["expression"] + 1.0, "jaw_pose": gt["jaw_pose"]}
    result = param_errors(pred, gt)
    assert result["upper_face_l1"] is None and result["mouth_l1"] == 0.0  # jaw only
    assert "names unknown" in result["note"]
    named = param_errors(pred, gt, expr_names=["mouth_open", "a", "b", "blink_left", "c"])
    assert named["mouth_l1"] == pytest.approx(0.5) and named["upper_face_l1"] == pytest.approx(1.0)
    explicit = param_errors(pred, gt, mouth_dims=[0, 1], upper_dims=[4])
    assert explicit["mouth_l1"] == pytest.approx(2 / 3) and explicit["upper_face_l1"] == pytest.approx(1.0)


def test_bad_inputs_are_refused() -> None:
    gt = truth(10)
    with pytest.raises(ValueError, match="expression dims"):
        param_errors({"expression": np.zeros((10, 3)), "jaw_pose": np.zeros((10, 3))}, gt)
    with pytest.raises(ValueError, match="jaw_pose"):
        param_errors({"expression": gt["expression"]}, gt)
    with pytest.raises(ValueError, match="names"):
        param_errors(gt, gt, expr_names=["a", "b"])
    with pytest.raises(TypeError):
        param_errors(42, gt)
