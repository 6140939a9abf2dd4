"""The named energies of the tracker. Each is an :class:`Energy`: a name, a base weight, and
``energy(view, batch) -> scalar`` over a :class:`~core.tracking.problem.FitView` of one mini-batch.

A stage's total is ``sum(stage_weight[name] * energy.weight * energy(view, batch))``. Units: the landmark
energies are in squared crop pixels (robust above ``huber_px``), the photometric one in mean absolute
RGB error ([0, 1] scale), priors in squared coefficients / radians.
"""

from __future__ import annotations

import torch

from core.tracking.geometry import EYELID_PAIRS
from core.tracking.problem import FitView, FrameBatch

Tensor = torch.Tensor


class Energy:
    """Base class: ``name`` (what stages refer to) and ``weight`` (a base multiplier)."""

    name: str = "energy"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weight={self.weight})"


def pseudo_huber(squared: Tensor, delta: float) -> Tensor:
    """Smooth robust cost of residuals given their squared norms: ``r^2`` near 0, ``2 delta |r|`` far
    (``2 delta^2 (sqrt(1 + r^2 / delta^2) - 1)``)."""
    d2 = delta * delta
    x = squared / d2
    return 2.0 * squared / (torch.sqrt(1.0 + x) + 1.0)  # = 2 d2 (sqrt(1 + x) - 1), exact near 0


class LandmarkEnergy(Energy):
    """Robust 2D reprojection error of the model's 68 landmarks, weighted per landmark and frame:
    ``sum(w * rho(|proj - target|^2)) / sum(w)`` in squared crop pixels."""

    name = "landmarks"

    def __init__(self, weight: float = 1.0, huber_px: float = 4.0) -> None:
        super().__init__(weight)
        self.huber_px = float(huber_px)

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        squared = ((view.landmarks_2d - batch.landmarks) ** 2).sum(-1)  # (B, 68)
        w = batch.landmark_weight
        return (w * pseudo_huber(squared, self.huber_px)).sum() / w.sum().clamp_min(1e-8)


class EyelidEnergy(Energy):
    """Upper-to-lower lid vectors of both eyes matched to the targets' (squared pixels), so the blink
    coefficients follow the eye opening even when the whole eye is a pixel off."""

    name = "eyelids"

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        upper = [a for a, _ in EYELID_PAIRS]
        lower = [b for _, b in EYELID_PAIRS]
        pred = view.landmarks_2d[:, upper] - view.landmarks_2d[:, lower]
        target = batch.landmarks[:, upper] - batch.landmarks[:, lower]
        w = batch.frame_weight
        return (w * ((pred - target) ** 2).sum(-1).mean(1)).sum() / w.sum().clamp_min(1e-8)


class PhotometricEnergy(Energy):
    """Mean absolute RGB difference between the rendered face (albedo texture x SH shading) and the frame,
    over the face pixels (no eyes, no mouth interior, no grazing angles), frames weighted."""

    name = "photometric"

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        if batch.images is None:
            raise ValueError("the photometric energy needs frames; this batch has none")
        rgb, mask = view.render
        w = batch.frame_weight.view(-1, 1, 1) * mask  # (B, S, S)
        diff = (rgb - batch.images).abs().sum(-1)  # (B, S, S)
        return (w * diff).sum() / (3.0 * w.sum().clamp_min(1.0))


class ShapePrior(Energy):
    """``|beta|^2``: identity coefficients stay near the mean head (the model's modes are unit-scaled)."""

    name = "shape_prior"

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        return (view.values["shape"] ** 2).sum()


class ExpressionPrior(Energy):
    """``mean_frames |psi|^2``: the simplest expression that explains the targets."""

    name = "expression_prior"

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        return (view.values["expression"] ** 2).sum(1).mean()


class PosePrior(Energy):
    """Jaw, neck and eye rotations stay small: the jaw opens about x freely (weight ``jaw[0]``) but hardly
    twists (``jaw[1:]``); head motion belongs to the global rotation, not the neck."""

    name = "pose_prior"

    def __init__(self, weight: float = 1.0, jaw: Tensor | None = None, neck: float = 10.0,
                 eyes: float = 1.0) -> None:
        super().__init__(weight)
        self.jaw = jaw
        self.neck = float(neck)
        self.eyes = float(eyes)

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        v = view.values
        jaw_w = self.jaw if self.jaw is not None else torch.ones(3, dtype=v["jaw_pose"].dtype)
        per_frame = ((v["jaw_pose"] ** 2) * jaw_w.to(v["jaw_pose"])).sum(1) \
            + self.neck * (v["neck_pose"] ** 2).sum(1) + self.eyes * (v["eye_pose"] ** 2).sum(1)
        return per_frame.mean()


class FocalPrior(Energy):
    """``(log f - log f0)^2``: the focal length moves only as far as the landmarks' perspective demands."""

    name = "focal_prior"

    def __init__(self, log_focal0: float, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.log_focal0 = float(log_focal0)

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        return (view.values["focal"] - self.log_focal0) ** 2


class SmoothnessEnergy(Energy):
    """First differences of per-frame variables over consecutive frames (including the frames just
    outside the batch), mean over frame pairs of the summed squares; translation is scaled by
    ``translation_scale`` (1/m) to weigh like radians."""

    def __init__(self, name: str, variables: tuple[str, ...], weight: float = 1.0,
                 translation_scale: float = 20.0) -> None:
        super().__init__(weight)
        self.name = name
        self.variables = variables
        self.translation_scale = float(translation_scale)

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        if not batch.contiguous:
            return view.values[self.variables[0]].new_zeros(())
        total = view.values[self.variables[0]].new_zeros(())
        for name in self.variables:
            seq = view.sequence(name)
            if seq.shape[0] < 2:
                continue
            step = seq[1:] - seq[:-1]
            if name == "translation":
                step = step * self.translation_scale
            total = total + (step ** 2).sum(1).mean()
        return total


class AlbedoSmoothness(Energy):
    """Squared differences of neighbouring texels of the albedo (keeps texels seen in few frames tidy)."""

    name = "albedo_smooth"

    def __call__(self, view: FitView, batch: FrameBatch) -> Tensor:
        a = view.values["albedo"]
        return ((a[:, 1:] - a[:, :-1]) ** 2).mean() + ((a[:, :, 1:] - a[:, :, :-1]) ** 2).mean()


def build_energies(*, landmark_weight: float, huber_px: float, log_focal0: float, jaw_prior: Tensor,
                   translation_scale: float) -> dict[str, Energy]:
    """The energies a stage can name, by name."""
    energies: list[Energy] = [
        LandmarkEnergy(landmark_weight, huber_px),
        EyelidEnergy(landmark_weight),
        PhotometricEnergy(),
        ShapePrior(),
        ExpressionPrior(),
        PosePrior(jaw=jaw_prior),
        FocalPrior(log_focal0),
        SmoothnessEnergy("smooth_expression", ("expression",), translation_scale=translation_scale),
        SmoothnessEnergy("smooth_pose", ("jaw_pose", "rotation", "translation"),
                         translation_scale=translation_scale),
        AlbedoSmoothness(),
    ]
    return {e.name: e for e in energies}
