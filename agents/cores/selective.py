"""Recurrences whose diagonal decay is chosen by the input at every step ("selective"): minGRU and Mamba.

minGRU (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201), per unit:

    z_t = sigmoid(W_z u_t + b_z),   h~_t = W_h u_t + b_h,   a_t = 1 - z_t
    h_t = a_t * h_{t-1} + z_t * h~_t

The gates see only the input, not h_{t-1}, so the recurrence is linear in h and runs as a parallel
scan. With ``eigenvalues="signed"`` the transition is 2 a_t - 1 in [-1, 1] (Grazzi et al., ICLR 2025).
The block's mixing after the recurrence is a two-layer GELU MLP (width ``MLP_RATIO`` * D), as in
the residual blocks of Feng et al.'s language models.

Mamba-1 (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
arXiv:2312.00752), on u_t of width D with E = expand * D channels and N = d_state states per channel:

    x_t, z_t = W_in u_t                      (in_proj, no bias)
    x_t = SiLU(conv_K(x)_t)                  (depthwise causal conv, kernel K = ``conv``; skipped if 0/None)
    dt_t, B_t, C_t = W_x x_t                 (x_proj: dt_t of rank R = ceil(D / 16), B_t, C_t in R^N)
    Delta_t = softplus(W_dt dt_t + b_dt)     (one step size per channel)
    A = -exp(A_log),  Abar_t = exp(Delta_t A)   (per channel and state; S4D-real init A_{e,n} = -(n + 1))
    h_t = Abar_t * h_{t-1} + (Delta_t * x_t) B_t     h_t in R^{E x N}
    y_t = h_t C_t + D * x_t
    out_t = W_out (y_t * SiLU(z_t))          (Mamba's gated output projection, no bias)

initialised as in the reference code (mamba_simple.py): W_dt ~ U(+-R^-1/2), softplus(b_dt) = dt with
log dt ~ U(log 1e-3, log 1e-1), D = 1, the linear maps U(+-1/sqrt(fan_in)) like nn.Linear, out_proj then
divided by sqrt(layers) (mamba-ssm's rescale of the residual branches); the core's pre-norms and final
norm are RMSNorms (eps 1e-5) as in mamba-ssm's MixerModel. The scan (mamba_scan.selective_scan) is an
autograd Function whose forward is a step loop on [B, N, E] buffers and whose backward is the adjoint
recurrence, recomputing the states between the ones it keeps every ``CHUNK`` steps: the role of the
paper's fused CUDA kernel, which also recomputes h in the backward. ``transitions`` reports the signed
Abar_t per channel and state, [T, B, E * N] per layer, and ``decays`` |Abar_t| averaged over the N states
of each channel, [T, B, E]: analysis quantities without a graph, computed from Delta_t only when asked
(the scan never stores [T, B, E, N]).

Where we differ from the paper and mamba-ssm: B_t x_t is discretised by Euler (Delta B x), as the paper's
own implementation does (the paper's ZOH formula for B would be (Delta A)^-1 (exp(Delta A) - 1) Delta B);
the conv's last K - 1 inputs are part of the state so that split runs equal one pass (the paper only keeps
them for inference); the input is a linear embedding of x (bias included) where the language models have
a token embedding; there is no fused add-and-norm or float32 residual option. With
``eigenvalues="signed"`` the transition is 2 exp(Delta_t A) - 1 in (-1, 1) (Grazzi et al., ICLR 2025);
B_t's input term is unchanged.

minGRU runs the main-text form above on blocks.linear_scan (a doubling scan on the values), not the
appendix's log-space scan with g(h) = h + 0.5 for h >= 0, else sigmoid(h), which keeps h~ positive for a
log-space parallel scan: the doubling scan only multiplies and adds values, so it needs neither.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .._validate import positive_int, uniform_
from .blocks import Block, BlockCore, BlockState, CausalConv, conv_kernel, linear, linear_scan, signed
from .mamba_scan import selective_scan

MLP_RATIO = 2
#: Steps between the states Mamba's scan keeps for its backward (which recomputes the steps between them).
CHUNK = 16
#: Mamba's initial step sizes: softplus(b_dt) log-uniform in [DT_MIN, DT_MAX].
DT_MIN, DT_MAX = 1e-3, 1e-1
#: The epsilon of Mamba's RMSNorms (mamba-ssm's norm_epsilon).
RMS_EPS = 1e-5


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
        """Transitions: a_t = 1 - z_t (2 (1 - z_t) - 1 "signed") per unit, [T, B, D]."""
        gate, candidate = self.gates(u).chunk(2, dim=-1)
        z = torch.sigmoid(gate)
        a = signed(1.0 - z, self.eigenvalues)
        h = linear_scan(a, z * candidate, state[0])
        return self.mlp(h), (h[-1],), a


class MinGRU(BlockCore):
    """minGRU core (Feng et al. 2024): options ``layers`` (default 1) and ``eigenvalues``."""

    kind = "mingru"
    block_type = MinGRUBlock
    block_options = {"eigenvalues": "positive"}


class MambaBlock(Block):
    """A Mamba-1 selective SSM on width D: in_proj, causal conv, selective scan, gated out_proj."""

    def __init__(self, width: int, *, expand: int = 2, d_state: int = 16, conv: int | None = 4,
                 eigenvalues: str = "positive", generator: torch.Generator | None = None) -> None:
        super().__init__()
        inner = width * positive_int("expand", expand)
        self.d_state = positive_int("d_state", d_state)
        self.eigenvalues = eigenvalues
        self.rank = math.ceil(width / 16)
        self.in_proj = linear(width, 2 * inner, generator, bias=False)
        kernel = conv_kernel(conv)
        self.conv = CausalConv(inner, kernel, generator) if kernel else None
        self.x_proj = linear(inner, self.rank + 2 * d_state, generator, bias=False)
        self.dt_proj = linear(self.rank, inner, generator)
        uniform_(self.dt_proj.weight, -self.rank ** -0.5, self.rank ** -0.5, generator)
        with torch.no_grad():
            uniform_(self.dt_proj.bias, math.log(DT_MIN), math.log(DT_MAX), generator)
            dt = self.dt_proj.bias.exp()
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # the inverse of softplus
        self.a_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.skip = nn.Parameter(torch.ones(inner))  # the paper's D
        self.out_proj = linear(inner, width, generator, bias=False)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        ssm = (self.skip.shape[0], self.d_state)
        return (self.conv.state_shape(), ssm) if self.conv is not None else (ssm,)

    def transition(self, delta: torch.Tensor) -> torch.Tensor:
        """Abar = exp(Delta A) (or 2 exp(Delta A) - 1 "signed") for Delta [..., E] -> [..., E, N], as the scan
        (mamba_scan.selective_scan) computes it."""
        return signed(torch.exp(delta.unsqueeze(-1) * -torch.exp(self.a_log)), self.eigenvalues)

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, torch.Tensor | None]:
        """Transitions (only while ``recording``, else None): Abar_t per channel and state, [T, B, E * N]
        channel by channel, without a graph."""
        x, z = self.in_proj(u).chunk(2, dim=-1)
        conv_state: BlockState = ()
        if self.conv is not None:
            x, past = self.conv(x, state[0])
            conv_state = (past,)
        x = F.silu(x)
        dt, b, c = self.x_proj(x).split([self.rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        y, h = selective_scan(delta, delta * x, b, c, -torch.exp(self.a_log), state[-1],
                              signed=self.eigenvalues == "signed", chunk=CHUNK)
        out = self.out_proj((y + self.skip * x) * F.silu(z))
        transitions = None
        if self.recording:
            with torch.no_grad():
                transitions = self.transition(delta).flatten(2)
        return out, (*conv_state, h), transitions

    def decays(self, transitions: torch.Tensor) -> torch.Tensor:
        """|Abar_t| averaged over the N states of each channel, [T, B, E]: the channel is the unit."""
        return transitions.abs().unflatten(2, (-1, self.d_state)).mean(-1)


class Mamba(BlockCore):
    """Mamba-1 core (Gu & Dao 2023): options ``layers``, ``expand`` (E = expand * hidden_size), ``d_state``
    (N), ``conv`` (kernel size, 0/None for none) and ``eigenvalues``. RMSNorm (eps 1e-5) as its pre-norms and
    final norm, and every out_proj divided by sqrt(layers) at initialisation, as mamba-ssm's defaults."""

    kind = "mamba"
    block_type = MambaBlock
    block_options = {"expand": 2, "d_state": 16, "conv": 4, "eigenvalues": "positive"}
    norm_layer = functools.partial(nn.RMSNorm, eps=RMS_EPS)

    def __init__(self, input_size: int, hidden_size: int, *, layers: int = 1,
                 generator: torch.Generator | None = None, **options: Any) -> None:
        super().__init__(input_size, hidden_size, layers=layers, generator=generator, **options)
        with torch.no_grad():  # mamba-ssm's rescale of the residual branches' output projections
            for block in self.blocks:
                block.out_proj.weight.div_(math.sqrt(self.layers))


__all__ = ["MLP", "Mamba", "MambaBlock", "MinGRU", "MinGRUBlock"]
