"""The tracker's energies: zero at the truth, positive away from it, gradients that lead back."""

from __future__ import annotations

import math

import pytest
import torch

from core.tracking.energies import (
    AlbedoSmoothness,
    ExpressionPrior,
    EyelidEnergy,
    FocalPrior,
    LandmarkEnergy,
    PhotometricEnergy,
    PosePrior,
    ShapePrior,
    SmoothnessEnergy,
    pseudo_huber,
)
from core.tracking.problem import FitView, FrameBatch, TrackingProblem

CROP = 128
LOG_FOCAL = math.log(260.0)


def _truth_values(model, batch: int = 3) -> dict[str, torch.Tensor]:
    p = model.zero_params(batch)
    p.jaw_pose[:, 0] = torch.linspace(0.0, 0.15, batch)
    p.expression[:, model.expression_index("smile_left")] = 0.5
    p.rotation[:, 1] = torch.linspace(-0.1, 0.1, batch)
    sh = torch.zeros(9, 3)
    sh[0] = 3.0
    sh[2] = 1.0
    values = {k: v.clone() for k, v in p.tensors().items()}
    values.update(shape=torch.zeros(model.n_shape), focal=torch.tensor(LOG_FOCAL), sh=sh,
                  albedo=model.albedo.permute(2, 0, 1)[:, ::4, ::4].contiguous())
    return values


def _problem(model) -> TrackingProblem:
    return TrackingProblem(model, CROP, distance=0.5, photometric_size=64)


def _batch(problem: TrackingProblem, values: dict[str, torch.Tensor], images: bool = False) -> FrameBatch:
    B = values["expression"].shape[0]
    blank = FrameBatch(index=torch.arange(B), contiguous=True, landmarks=torch.zeros(B, 68, 2),
                       landmark_weight=torch.ones(B, 68), frame_weight=torch.ones(B))
    view = FitView(problem, values, blank)
    with torch.no_grad():
        blank.landmarks = view.landmarks_2d.clone()
        if images:
            blank.images = view.render[0].clone()
    return blank


def test_landmark_energies_vanish_at_the_truth_and_lead_back(small_model) -> None:
    problem = _problem(small_model)
    truth = _truth_values(small_model)
    batch = _batch(problem, truth)
    for energy in (LandmarkEnergy(huber_px=3.0), EyelidEnergy()):
        assert float(energy(FitView(problem, truth, batch), batch)) < 1e-8
    # move the head 5 mm to the side and open the jaw: the energy rises, a gradient step lowers it
    moved = {k: v.clone() for k, v in truth.items()}
    moved["translation"][:, 0] += 0.005
    moved["jaw_pose"][:, 0] += 0.05
    leaves = {k: moved[k].requires_grad_(True) for k in ("translation", "jaw_pose")}
    energy = LandmarkEnergy(huber_px=3.0)
    value = energy(FitView(problem, moved, batch), batch)
    assert float(value.detach()) > 1.0
    value.backward()
    assert bool((leaves["translation"].grad[:, 0] > 0).all())  # descent moves x back
    assert bool((leaves["jaw_pose"].grad[:, 0] > 0).all())  # and closes the jaw
    with torch.no_grad():
        stepped = {k: v.detach().clone() for k, v in moved.items()}
        stepped["translation"] -= 1e-7 * leaves["translation"].grad
        stepped["jaw_pose"] -= 1e-6 * leaves["jaw_pose"].grad
        assert float(energy(FitView(problem, stepped, batch), batch)) < float(value.detach())


def test_eyelid_energy_sees_a_blink(small_model) -> None:
    problem = _problem(small_model)
    truth = _truth_values(small_model)
    batch = _batch(problem, truth)
    blink = {k: v.clone() for k, v in truth.items()}
    blink["expression"][:, small_model.expression_index("blink_left")] = 0.8
    leaf = blink["expression"].requires_grad_(True)
    value = EyelidEnergy()(FitView(problem, blink, batch), batch)
    assert float(value.detach()) > 0.1
    value.backward()
    assert bool((leaf.grad[:, small_model.expression_index("blink_left")] > 0).all())


def test_photometric_energy_is_zero_on_its_own_render(small_model) -> None:
    problem = _problem(small_model)
    truth = _truth_values(small_model)
    batch = _batch(problem, truth, images=True)
    view = FitView(problem, truth, batch)
    assert float(view.render[1].sum()) > 200  # the face covers the error mask
    assert float(PhotometricEnergy()(view, batch)) < 1e-6
    darker = {k: v.clone() for k, v in truth.items()}
    darker["albedo"] = (truth["albedo"] * 0.8).requires_grad_(True)
    darker["sh"] = truth["sh"].clone().requires_grad_(True)
    value = PhotometricEnergy()(FitView(problem, darker, batch), batch)
    assert float(value.detach()) > 0.01
    value.backward()
    assert float(darker["sh"].grad[0].sum()) < 0  # brighter light reduces the error
    assert float((darker["albedo"].grad < 0).float().mean()) > 0.01


def test_photometric_energy_needs_frames(small_model) -> None:
    problem = _problem(small_model)
    truth = _truth_values(small_model)
    batch = _batch(problem, truth)
    with pytest.raises(ValueError, match="needs frames"):
        PhotometricEnergy()(FitView(problem, truth, batch), batch)


def test_priors_and_smoothness(small_model) -> None:
    problem = _problem(small_model)
    zero = {k: torch.zeros_like(v) for k, v in _truth_values(small_model).items()}
    zero["focal"] = torch.tensor(LOG_FOCAL)
    batch = _batch(problem, zero)
    view = FitView(problem, zero, batch)
    for energy in (ShapePrior(), ExpressionPrior(), PosePrior(), FocalPrior(LOG_FOCAL), AlbedoSmoothness(),
                   SmoothnessEnergy("smooth_pose", ("jaw_pose", "rotation", "translation"))):
        assert float(energy(view, batch)) == pytest.approx(0.0, abs=1e-12)
    moved = dict(zero)
    moved["jaw_pose"] = torch.tensor([[0.1, 0.0, 0.0], [0.1, 0.0, 0.0], [0.1, 0.0, 0.0]])
    pose = PosePrior(jaw=torch.tensor([1.0, 10.0, 10.0]))
    assert float(pose(FitView(problem, moved, batch), batch)) == pytest.approx(0.01)
    twisted = dict(zero)
    twisted["jaw_pose"] = torch.tensor([[0.0, 0.1, 0.0]] * 3)
    assert float(pose(FitView(problem, twisted, batch), batch)) == pytest.approx(0.1)
    # a constant sequence is smooth; a frame outside the batch that differs is not
    smooth = SmoothnessEnergy("smooth_pose", ("jaw_pose",))
    assert float(smooth(FitView(problem, moved, batch), batch)) == pytest.approx(0.0)
    batch.before = {"jaw_pose": torch.zeros(1, 3)}
    assert float(smooth(FitView(problem, moved, batch), batch)) == pytest.approx(0.01 / 3)
    batch.contiguous = False  # keyframes are not neighbours
    assert float(smooth(FitView(problem, moved, batch), batch)) == 0.0


def test_pseudo_huber_is_quadratic_near_zero_and_linear_far() -> None:
    r = torch.tensor([0.01, 100.0])
    value = pseudo_huber(r ** 2, delta=2.0)
    assert float(value[0]) == pytest.approx(1e-4, rel=1e-3)
    assert float(value[1]) == pytest.approx(2 * 2.0 * 100.0, rel=0.03)
