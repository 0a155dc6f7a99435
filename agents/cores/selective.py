"""Recurrences whose diagonal decay is chosen by the input at every step ("selective").

minGRU (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201), per unit:

    z_t = sigmoid(W_z u_t + b_z),   h~_t = W_h u_t + b_h,   a_t = 1 - z_t
    h_t = a_t * h_{t-1} + z_t * h~_t

The gates see only the input, not h_{t-1}, so the recurrence is linear in h and runs as a parallel
scan. With ``eigenvalues="signed"`` the transition is 2 a_t - 1 in [-1, 1] (Grazzi et al., ICLR 2025).
The block's mixing after the recurrence is a two-layer GELU MLP (width ``MLP_RATIO`` * D), as in
the residual blocks of Feng et al.'s language models.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import Block, BlockCore, BlockState, linear, linear_scan, signed

MLP_RATIO = 2


class MLP(nn.Module):
    """out = W_2 GELU(W_1 h + b_1) + b_2: the mixing after a recurrence."""

    def __init__(self, width: int, generator: torch.Generator | None, ratio: int = MLP_RATIO) -> None:
        super().__init__()
        self.inner = linear(width, ratio * width, generator)
        self.outer = linear(ratio * width, width, generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.outer(F.gelu(self.inner(h)))


class MinGRUBlock(Block):
    """A minGRU recurrence of width D followed by an MLP."""

    def __init__(self, width: int, *, eigenvalues: str = "positive", generator: torch.Generator | None = None
                 ) -> None:
        super().__init__()
        self.width = width
        self.eigenvalues = eigenvalues
        self.gates = linear(width, 2 * width, generator)  # z and h~ in one product
        self.mlp = MLP(width, generator)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.width,),)

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, torch.Tensor]:
        gate, candidate = self.gates(u).chunk(2, dim=-1)
        z = torch.sigmoid(gate)
        a = signed(1.0 - z, self.eigenvalues)
        h = linear_scan(a, z * candidate, state[0])
        return self.mlp(h), (h[-1],), a.abs()


class MinGRU(BlockCore):
    """minGRU core (Feng et al. 2024): options ``layers`` (default 1) and ``eigenvalues``."""

    kind = "mingru"
    block_type = MinGRUBlock
    block_options = {"eigenvalues": "positive"}


__all__ = ["MLP", "MinGRU", "MinGRUBlock"]
