"""The renderer's and the dub loop's faster formulations compute what the plain torch ops compute."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.render.masks import expand_mask, feather
from core.renderers.neural_texture.model import SineLayer, max_pool_2x2


def test_max_pool_2x2_matches_max_pool2d_values_and_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16, 24, requires_grad=True)
    weights = torch.randn(2, 5, 8, 12)
    assert torch.equal(max_pool_2x2(x), F.max_pool2d(x, 2))
    fast = torch.autograd.grad((max_pool_2x2(x) * weights).sum(), x)[0]
    plain = torch.autograd.grad((F.max_pool2d(x, 2) * weights).sum(), x)[0]
    assert torch.equal(fast, plain)


def test_separable_mask_filters_match_the_square_ones() -> None:
    torch.manual_seed(1)
    mask = (torch.rand(3, 1, 40, 33) > 0.8).float()
    for pixels in (1, 3, 6):
        k = 2 * pixels + 1
        assert torch.equal(expand_mask(mask, pixels), F.max_pool2d(mask, k, stride=1, padding=pixels))
        eroded = -F.max_pool2d(-mask, k, stride=1, padding=pixels)
        square = F.avg_pool2d(eroded, k, stride=1, padding=pixels, count_include_pad=False)
        assert torch.allclose(feather(mask, pixels), square, atol=1e-6)
    assert torch.equal(expand_mask(mask, 0), mask)


def test_sine_layer_is_sin_of_w0_times_linear() -> None:
    torch.manual_seed(2)
    layer = SineLayer(6, 9, 30.0, first=True)
    x = torch.randn(50, 6, requires_grad=True)
    assert torch.equal(layer(x), torch.sin(30.0 * layer.linear(x)))
    layer(x).sum().backward()  # the in-place scaling keeps autograd working
    assert x.grad is not None and torch.isfinite(x.grad).all()
