"""A NeRF whose field is one conditioned MLP over an encoding of the canonical position (LipNeRF, JEAN).

A variant subclasses :class:`MLPFieldNeRF`, calls :meth:`MLPFieldNeRF.build_field` with the size of its
per-frame condition and provides :meth:`~core.renderers.nerf.head.HeadNeRF.conditions`; the field, the coarse
field of hierarchical sampling and the optimiser groups (grids at ``grid_lr_scale`` times the rate, encoders the
variant trained before and froze left out) come from here. Options: :class:`~.config.MLPFieldOptions`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .encodings import position_encoding
from .fields import ConditionedDeformation, ConditionedMLP
from .head import HeadNeRF


class MLPFieldNeRF(HeadNeRF):
    """:class:`HeadNeRF` with F(condition, d, x) = ConditionedMLP(encoding(x), condition, d)."""

    def build_field(self, condition_dim: int) -> None:
        """Make the encoding, the field MLP and, with hierarchical sampling, the coarse MLP."""
        from core.renderers.spec import BadRendererOption

        o = self.options
        if o.deform_width < 0 or not o.deform_scale > 0:
            raise BadRendererOption(f"deform_width must be >= 0 (0: no deformation) and deform_scale > 0, got "
                                    f"{o.deform_width} and {o.deform_scale}")
        self.encoding = position_encoding(o)
        self.condition_dim = condition_dim

        def field_mlp() -> ConditionedMLP:
            return ConditionedMLP(self.encoding.out_dim, condition_dim, self.direction_encoding.out_dim, o.width,
                                  o.depth, skips=(o.depth // 2,) if o.depth > 4 else (), colour_width=o.colour_width)

        self.mlp = field_mlp()
        self.coarse_mlp = field_mlp() if o.hierarchical else None
        self.deformation = (ConditionedDeformation(condition_dim, o.deform_width, o.deform_scale)
                            if o.deform_width > 0 else None)

    def _deformed(self, points: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return points if self.deformation is None else self.deformation(points, condition)

    def field(self, points: torch.Tensor, condition: torch.Tensor, directions: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mlp(self.encoding(self._deformed(points, condition)), condition, directions)

    def coarse_field(self, points: torch.Tensor, condition: torch.Tensor, directions: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        mlp = self.coarse_mlp if self.coarse_mlp is not None else self.mlp
        return mlp(self.encoding(self._deformed(points, condition)), condition, directions)

    def frozen_modules(self) -> list[nn.Module]:
        """Modules trained before the NeRF and kept out of its optimiser (default none)."""
        return []

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        frozen = {id(p) for module in self.frozen_modules() for p in module.parameters()}
        grid = list(self.encoding.parameters())
        grid_ids = {id(p) for p in grid}
        rest = [p for p in self.parameters() if id(p) not in grid_ids and id(p) not in frozen and p.requires_grad]
        groups = [{"params": rest, "lr": lr}]
        if grid:
            groups.append({"params": grid, "lr": lr * self.options.grid_lr_scale})
        return groups
