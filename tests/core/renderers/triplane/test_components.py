"""The tri-plane NeRF's pieces on their own: the tri-plane hash encoding against a slow reference and a gradient
check, the attention-gated field, eye openness from landmarks, the landmark transformer on a toy mapping, and the
patch perceptual term."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.landmarks.mapping import IBUG68_EYES, eye_aspect_ratio
from core.renderers.losses import PatchPerceptual
from core.renderers.nerf.encodings import PLANE_AXES, HashGridEncoding, TriPlaneHashEncoding
from core.renderers.nerf.fields import AttentionGatedField
from core.renderers.triplane.eyes import eye_balanced_weights, eye_openness
from core.renderers.triplane.landmarks import DynamicLandmarkTransformer, audio_slots, landmark_l1


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_triplane_hash_matches_three_2d_hash_grids_and_the_per_point_reference() -> None:
    torch.manual_seed(0)
    enc = TriPlaneHashEncoding(levels=3, features=2, log2_table=6, base=4, finest=24)  # dense and hashed levels
    grid = enc.grid
    assert grid.dense[:3].any() and not grid.dense[:3].all()
    with torch.no_grad():
        grid.table.normal_()
    x = torch.rand(16, 3)
    x[0] = 1.0  # the far corner
    x[1] = 0.0
    out = enc(x).view(16, 3, 3, 2)  # (points, planes, levels, features): Eq. 4's concatenation
    assert enc.out_dim == 18
    for i in range(len(x)):
        planes = torch.stack([x[i, list(axes)] for axes in PLANE_AXES])  # (3, 2): XY, YZ, XZ
        assert torch.allclose(out[i].flatten(), grid.reference(planes), atol=1e-5), i
    # each plane is an ordinary 2D hash grid with that plane's tables
    single = HashGridEncoding(2, levels=3, features=2, log2_table=6, base=4, finest=24)
    for k, (a, b) in enumerate(PLANE_AXES):
        with torch.no_grad():
            single.table.copy_(grid.table[3 * k:3 * k + 3])
        assert torch.allclose(out[:, k].flatten(1), single(x[:, [a, b]]), atol=1e-5)


def test_triplane_hash_passes_a_gradient_check() -> None:
    torch.manual_seed(1)
    enc = TriPlaneHashEncoding(levels=2, features=2, log2_table=5, base=4, finest=9).double()  # 9^2 > 2^5: hashed
    x = (torch.rand(5, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(enc, (x,))
    table = enc.grid.table.detach().clone().requires_grad_()

    def through_table(t: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(enc, {"grid.table": t}, (x.detach(),))

    assert torch.autograd.gradcheck(through_table, (table,))


def test_attention_gates_each_condition_channel_per_point() -> None:
    torch.manual_seed(2)
    field = AttentionGatedField(position_dim=6, condition_dim=4, direction_dim=3, width=8, depth=2, geo_dim=5,
                                colour_width=8)
    position, direction = torch.randn(10, 6), torch.randn(10, 3)
    condition = torch.randn(10, 4)
    gates = field.gates(position)
    assert gates.shape == (10, 4) and (gates > 0).all() and (gates < 1).all()
    sigma, rgb = field(position, condition, direction)
    assert sigma.shape == (10,) and rgb.shape == (10, 3) and (sigma >= 0).all()
    with torch.no_grad():  # a channel whose gate is closed everywhere has no effect
        field.attention.bias[2] = -1e4
    moved = condition.clone()
    moved[:, 2] += 5.0
    assert torch.allclose(field(position, moved, direction)[0], field(position, condition, direction)[0])
    moved[:, 1] += 5.0
    assert not torch.allclose(field(position, moved, direction)[0], field(position, condition, direction)[0])


def _eyes(opening: float) -> np.ndarray:
    """68 points with both eyes 3 wide and ``opening`` tall (lids at +-opening/2)."""
    points = np.zeros((68, 2), np.float32)
    for dx, eye in ((0.0, IBUG68_EYES[0]), (5.0, IBUG68_EYES[1])):
        ring = [(0, 0), (1, -opening / 2), (2, -opening / 2), (3, 0), (2, opening / 2), (1, opening / 2)]
        for i, (x, y) in zip(eye, ring, strict=True):
            points[i] = (x + dx, y)
    return points


def test_eye_openness_tells_a_closed_eye_from_an_open_one() -> None:
    open_, closed = _eyes(1.0), _eyes(0.02)
    assert eye_aspect_ratio(open_) == pytest.approx([1 / 3, 1 / 3], rel=1e-4)  # (1 + 1) / (2 * 3)
    assert (eye_aspect_ratio(closed) < 0.01).all()
    both = torch.from_numpy(np.stack([open_, closed]))
    depth = torch.cat([both, torch.full((2, 68, 1), 0.5)], -1)  # 3D points: the same ratios
    openness = eye_openness(depth, torch.tensor([1 / 3, 1 / 3]))
    assert openness.shape == (2, 2)
    assert torch.allclose(openness[0], torch.ones(2), atol=1e-4) and (openness[1] < 0.03).all()


def test_a_blink_of_the_face_model_closes_its_eye_landmarks() -> None:
    from core.morphable.registry import load_model
    from core.renderers.nerf.rays import canonical_landmarks

    model = load_model("procedural")
    params = model.zero_params(2)
    params.expression[1, model.expr_names.index("blink_left")] = 1.0
    params.rotation[1, 1] = 0.4  # a turned head: canonical landmarks take the pose out
    ratio = eye_aspect_ratio(canonical_landmarks(model, params))
    left = 1  # blink_left closes the subject's left eye (iBUG 42-47, the second ratio)
    assert ratio[1, left] < 0.2 * ratio[0, left]
    assert ratio[1, 1 - left] == pytest.approx(float(ratio[0, 1 - left]), rel=1e-3)


def test_audio_window_splits_into_centred_sub_windows() -> None:
    window = torch.arange(24.0).view(1, 24, 1)  # 3 slots of 16 audio frames, 4 apart
    slots = audio_slots(window, 3, 16)
    assert slots.shape == (1, 3, 16, 1)
    assert slots[0, 1, 0, 0] == 4 and slots[0, 1, -1, 0] == 19  # the middle slot is centred on the window
    assert slots[0, 0, 0, 0] == 0 and slots[0, 2, -1, 0] == 23
    with pytest.raises(ValueError, match="does not split"):
        audio_slots(torch.zeros(1, 25, 1), 3, 16)


def test_the_landmark_transformer_learns_a_toy_mapping() -> None:
    """Audio loudness -> a jaw-like offset of the lower landmarks, emotion -> a corner offset."""
    torch.manual_seed(3)
    net = DynamicLandmarkTransformer(audio_dim=3, slots=3, slot_frames=8, width=16, layers=1, heads=2, latent=4)
    B, T = 32, 16
    loud = torch.rand(B)
    audio = torch.randn(B, T, 3) * 0.1 + loud[:, None, None]
    emotion = torch.zeros(B, 7)
    emotion[:, 1] = torch.rand(B)
    target = torch.zeros(B, 68, 3)
    target[:, 5:12, 1] = 2.0 * loud[:, None]       # jaw
    target[:, [48, 54], 1] = -emotion[:, 1:2]       # mouth corners
    eyes = torch.ones(B, 2)
    out = net(audio, emotion, eyes)
    assert out["offsets"].shape == (B, 68, 3) and out["smoothed"].shape == (B, 16)
    assert out["reconstruction"].shape == out["target_audio"].shape == (B, 8 * 3)
    unit = torch.tensor(0.01)
    first = landmark_l1(out["offsets"], target, unit).item()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(250):
        loss = landmark_l1(net(audio, emotion, eyes, sample=True)["offsets"], target, unit)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = landmark_l1(net(audio, emotion, eyes)["offsets"], target, unit).item()
    # predicting every frame's mean offsets would leave 5.9 (jaw and corners not following audio and emotion)
    assert last < 0.35 * first < 5.0


def test_patch_perceptual_substitute() -> None:
    term = PatchPerceptual("ssim")
    assert term.kind == "ssim+gradient"
    torch.manual_seed(4)
    a = torch.rand(2, 3, 8, 8)
    assert term(a, a).item() == pytest.approx(0.0, abs=1e-5)
    blurred = torch.nn.functional.avg_pool2d(a, 3, 1, 1)
    assert term(blurred, a).item() > 0.05
    with pytest.raises(ValueError):
        PatchPerceptual("vgg")


def test_eye_openness_levels_get_an_even_share_of_the_draws() -> None:
    openness = np.ones((100, 2))
    openness[[10, 11, 50], 0] = 0.05  # three blinks (the more closed eye counts)
    openness[60:70] = 0.5  # ten frames of drooping lids
    weights = eye_balanced_weights(openness, 0.3, bins=4)
    assert weights is not None and weights.shape == (100,)
    blink, droop = np.zeros(100, bool), np.zeros(100, bool)
    blink[[10, 11, 50]], droop[60:70] = True, True
    share = lambda m: weights[m].sum() / weights.sum()  # noqa: E731
    # three occupied bins: each gets 0.3 / 3 on top of its uniform 0.7 x (its frames / 100)
    assert np.isclose(share(blink), 0.1 + 0.7 * 0.03) and np.isclose(share(droop), 0.1 + 0.7 * 0.1)
    assert np.ptp(weights[blink]) == 0 and np.ptp(weights[~blink & ~droop]) == 0  # equal within a bin
    assert eye_balanced_weights(openness, 0.0) is None
    assert eye_balanced_weights(np.ones((10, 2)), 0.3) is None  # one level: nothing to balance
