"""A recurrence whose state is a matrix written by the delta rule: DeltaNet.

DeltaNet (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over Sequence Length",
arXiv:2406.06484; the delta rule of Schlag et al. 2021, "Linear Transformers Are Secretly Fast Weight
Programmers", arXiv:2102.11174), per head of width d = D / heads, as in the paper's layer (the
flash-linear-attention DeltaNet defaults: short conv, SiLU feature map, L2-normalised q and k, RMSNorm
on the output, no output gate):

    q_t, k_t, v_t = SiLU(conv_K(W_q u, W_k u, W_v u)_t)   (depthwise causal conv, kernel K = ``conv``)
    q_t, k_t = q_t / ||q_t||, k_t / ||k_t||
    beta_t = sigmoid(w_beta u_t)                           (one writing strength per head)
    S_t = S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T     S_t in R^{d x d}
    o_t = S_t q_t
    out_t = W_o RMSNorm(o_t)                                (per head, one learnt scale of width d)

The step is S_t = S_{t-1} + beta_t (v_t - S_{t-1} k_t) k_t^T: the value stored at key k_t moves a
fraction beta_t of the way to v_t. The transition I - beta_t k_t k_t^T has eigenvalue 1 - beta_t ||k_t||^2
along k_t (1 on its complement); ``decays`` reports |1 - beta_t ||k_t||^2| per head, [T, B, heads] per
layer. With ``eigenvalues="signed"``, beta_t = 2 sigmoid(w_beta u_t) in [0, 2], so that eigenvalue lies in
[-1, 1] (Grazzi et al., ICLR 2025: a reflection, which lets one layer track parity).

Where we differ: the recurrence runs as a sequential loop over T of batched matrix products (all heads
at once) rather than the paper's chunkwise-parallel WY form (same numbers; at our lengths, T <= 130, the
loop is cheap and needs no [T, d, d] intermediates beyond the states autograd keeps); the conv's last
K - 1 inputs are part of the state so that split runs equal one pass. The block ends at the layer's
normed output projection: the paper's language models add a SwiGLU MLP in a second residual sublayer,
which the zoo's one-sublayer blocks leave out (the SiLU features, the normalisations and the
query-dependent read already make the output non-linear in the inputs).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import Block, BlockCore, BlockState, CausalConv, check_divides, conv_kernel, linear, split_heads

#: The head width the default number of heads aims at.
HEAD_DIM = 16
#: The epsilon of the L2 normalisation of q and k and of the output RMSNorm.
EPS = 1e-6


def default_heads(width: int) -> int:
    """The most heads of width >= HEAD_DIM that divide ``width`` (1 for widths below 2 * HEAD_DIM)."""
    return next(h for h in range(max(1, width // HEAD_DIM), 0, -1) if width % h == 0)


class DeltaNetBlock(Block):
    """A DeltaNet layer on width D: q, k, v projections, short conv, delta-rule recurrence, norm, output."""

    def __init__(self, width: int, *, heads: int | None = None, conv: int | None = 4, eigenvalues: str = "positive",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.heads = default_heads(width) if heads is None else check_divides("heads", heads, width)
        self.head_dim = width // self.heads
        self.eigenvalues = eigenvalues
        self.qkv = linear(width, 3 * width, generator, bias=False)
        kernel = conv_kernel(conv)
        self.conv = CausalConv(3 * width, kernel, generator) if kernel else None  # q's, k's and v's convs in one
        self.beta = linear(width, self.heads, generator, bias=False)
        self.norm = nn.Parameter(torch.ones(self.head_dim))
        self.out_proj = linear(width, width, generator, bias=False)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        memory = (self.heads, self.head_dim, self.head_dim)
        return (self.conv.state_shape(), memory) if self.conv is not None else (memory,)

    def features(self, u: torch.Tensor, past: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """q, k (unit norm), v [T, B, heads, d], beta [T, B, heads] and the conv's new state from u [T, B, D]."""
        qkv = self.qkv(u)
        if self.conv is not None:
            qkv, past = self.conv(qkv, past)
        q, k, v = (split_heads(part, self.heads) for part in F.silu(qkv).chunk(3, dim=-1))
        beta = torch.sigmoid(self.beta(u))
        if self.eigenvalues == "signed":
            beta = 2.0 * beta
        return F.normalize(q, dim=-1, eps=EPS), F.normalize(k, dim=-1, eps=EPS), v, beta, past

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, torch.Tensor]:
        q, k, v, beta, past = self.features(u, state[0] if self.conv is not None else None)
        memory, outs = state[-1], []
        # S_t is read twice, o_t = S_t q_t and S_t k_{t+1} for the next write: one product with [q_t, k_{t+1}]
        reads = torch.stack((q, torch.cat((k[1:], torch.zeros_like(k[:1])))), dim=-1)  # [T, B, heads, d, 2]
        recalled = memory @ k[0].unsqueeze(-1)
        for key, value, strength, read in zip(k.unbind(0), v.unbind(0), beta.unbind(0), reads.unbind(0)):
            error = strength[..., None, None] * (value.unsqueeze(-1) - recalled)
            memory = torch.addcmul(memory, error, key.unsqueeze(-2))
            out, recalled = (memory @ read).split(1, dim=-1)
            outs.append(out)
        o = F.rms_norm(torch.stack(outs).squeeze(-1), (self.head_dim,), self.norm, EPS)
        out = self.out_proj(o.flatten(-2))
        decay = (1.0 - beta * (k * k).sum(-1)).abs()
        return out, (*((past,) if self.conv is not None else ()), memory), decay


class DeltaNet(BlockCore):
    """DeltaNet core (Yang et al. 2024): options ``layers``, ``heads`` (None: head width about 16; must
    divide hidden_size), ``conv`` (kernel size, 0/None for none) and ``eigenvalues``."""

    kind = "deltanet"
    block_type = DeltaNetBlock
    block_options = {"heads": None, "conv": 4, "eigenvalues": "positive"}


__all__ = ["DeltaNet", "DeltaNetBlock", "default_heads"]
