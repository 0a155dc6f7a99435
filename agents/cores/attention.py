"""A causal transformer over a sliding window of past steps, run as a recurrent core.

The layer is the pre-norm transformer layer (Vaswani et al. 2017, "Attention Is All You Need",
arXiv:1706.03762, with the norm before each sublayer as in Xiong et al. 2020, "On Layer Normalization
in the Transformer Architecture", arXiv:2002.04745). On the residual stream u_t of width D, with
H ``heads`` of width d = D / H and the window of the ``context`` C latest steps W_t = {t-C+1, ..., t}:

    z_s = LayerNorm_1(u_s)                                   (BlockCore's pre-norm)
    q_t = W_q z_t + b_q,   k_s = W_k z_s + b_k,   v_s = W_v z_s + b_v      (split into H heads)
    alpha^h_{t,s} = softmax_{s in W_t} (q^h_t . k^h_s / sqrt(d) + r^h_{t-s})
    x_t = u_t + W_o concat_h (sum_{s in W_t} alpha^h_{t,s} v^h_s) + b_o
    u'_t = x_t + W_2 GELU(W_1 LayerNorm_2(x_t) + b_1) + b_2        (feed-forward, width 4 D)

Positions enter only as a learned bias r^h_o per head and offset o = t - s in 0..C-1 (relative
positions, as T5's bias without buckets), so the computation is the same at every step and the window
slides forever. r is initialised to ALiBi's linear penalty r^h_o = -m_h o with the geometric slopes
m_h = 2^(-8 h / H) (Press et al. 2022, "Train Short, Test Long", arXiv:2108.12409): at the start every
head already prefers recent steps at its own range, and training reshapes the profile per offset.
For H not a power of two the slopes follow ALiBi's reference code (ofirpress/attention_with_linear_biases,
``get_slopes``), not the paper's text (which names only the power-of-two sequence): the slopes of the
largest power of two P below H, then every other slope of 2P (``alibi_slopes``).
Where this differs from the papers: no sinusoidal or absolute position embedding (a core runs forever,
absolute positions would make it non-stationary); no dropout (the trainer draws no dropout noise).

The attention runs on its own kernel (``attention``), the same softmax in the same float type: on
the CPU in tiles of 64 query rows over the keys their window holds and of a piece of the batch that
keeps the tile's scores in cache, with the probabilities kept for the backward. SDPA's math path,
which a float mask that needs a gradient selects on the CPU, writes and reads the full [B, H, T, S]
scores several times: its forward+backward took 1.3x (T = 30) to 2.5x (T = 120) as long at batch 256.
One step without a gradient (a rollout's) still runs SDPA, whose fused kernel is faster there.

The recurrent state of each layer is its window of the past C - 1 normed inputs z_s [C-1, D] (keys
and values are recomputed from them: half the size of storing k and v) and their validity mask [C-1]
(1 = a real past step, oldest first). The all-zeros state is an empty history, so a reset is zeros;
a step attends only to itself and the valid past, so ``step``, a run in two halves and one pass agree.

Memory is the window alone: an input more than ``layers * (C - 1)`` steps back cannot reach the output
(``context_length``), and a window shorter than N makes N-parity and N-DMS unsolvable. A run that
targets N_max should size ``context`` to at least 4 N_max + 2, the longest trial (default 128: every trial
whole up to N_max = 31; beyond, ``memory-envs train --core-option context=...``), so the window holds
every trial whole as a recurrent core sees it. The core has no timescale of its own nor
an input-dependent decay (``own_timescales`` and ``decays`` are None; agents.cores.NO_OWN_TIMESCALE).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from .._validate import positive_int
from .blocks import Block, BlockCore, BlockState, check_divides, linear, split_heads
from .selective import MLP

MLP_RATIO = 4
"""The feed-forward width over D, as in Vaswani et al. (d_ff = 4 d_model)."""


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's slopes, as its reference code draws them (Press et al. 2022): for P = heads a power of
    two, the geometric m_h = 2^(-8 h / P), h = 1..P; otherwise those of the largest power of two P
    below ``heads``, then the first heads - P of every other slope of 2P, 2^(-8 (2j - 1) / (2P)),
    j = 1..heads - P."""
    power = 1 << (heads.bit_length() - 1)
    base = torch.arange(1, power + 1, dtype=torch.float64) / power
    extra = (2 * torch.arange(heads - power, dtype=torch.float64) + 1) / (2 * power)
    return torch.pow(2.0, -8.0 * torch.cat((base, extra)))


CACHED_SCORES = 2 ** 19
"""Scores [b, H, rows, keys] the CPU attention computes at once: b sequences at a time, so that each
tile (about 2 MB in float32) stays in cache across its matmul, softmax and backward instead of round
trips to memory, which dominated SDPA's math path (its float-mask kernel on the CPU)."""

QUERY_BLOCK = 64
"""Query rows per tile on the CPU: each block of rows attends only to the keys its bias holds finite
(a causal window: the keys up to its last row), which skips most of the masked triangle."""

Tile = tuple[slice, slice, slice]


def _tiles(bias: torch.Tensor, batch: int) -> list[Tile]:
    """(query rows, keys, sequences) per tile: on the CPU blocks of ``QUERY_BLOCK`` rows over the span of
    keys where any head's bias is finite (the keys outside get weight exactly zero), each over pieces of
    the batch of about ``CACHED_SCORES`` scores; elsewhere one tile (the whole problem at once)."""
    steps, keys = bias.shape[1:]
    if bias.device.type != "cpu":
        return [(slice(0, steps), slice(0, keys), slice(0, batch))]
    if steps <= QUERY_BLOCK:  # one block of rows over every key
        blocks = [(slice(0, steps), slice(0, keys))]
    else:
        finite = torch.isfinite(bias).any(dim=0).to(torch.int8)  # [T, S]
        first = finite.argmax(dim=1).tolist()
        last = (keys - finite.flip(1).argmax(dim=1)).tolist()  # one past each row's last finite key
        blocks = [(slice(top, min(top + QUERY_BLOCK, steps)), slice(min(first[top: top + QUERY_BLOCK]),
                                                                    max(last[top: top + QUERY_BLOCK])))
                  for top in range(0, steps, QUERY_BLOCK)]
    tiles = []
    for rows, span in blocks:
        chunk = max(1, CACHED_SCORES // (bias.shape[0] * (rows.stop - rows.start) * (span.stop - span.start)))
        tiles += [(rows, span, slice(b, b + chunk)) for b in range(0, batch, chunk)]
    return tiles


class _Attention(torch.autograd.Function):
    """softmax(q k^T / sqrt(d) + bias + key_mask) v for q [B, H, T, d], k and v [B, H, S, d], a bias
    [H, T, S] shared by the batch (the only one of the two that gets a gradient) and a key mask [B, S]
    or None (0 or -inf), tile by tile (``_tiles``; a key outside a tile's span has weight exactly
    zero for its rows). It keeps the probabilities (as autograd through the math path would), and
    their gradient is the softmax's, dS = P (dP - rowsum(dO o)), summed over the batch for the bias."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                key_mask: torch.Tensor | None, tiles: list[Tile]) -> torch.Tensor:
        # contiguous [B, H, *, d] copies: the tiles' matmuls on the callers' strided views went through
        # torch's slow per-matrix path
        q, k, v = q.contiguous() * q.shape[-1] ** -0.5, k.contiguous(), v.contiguous()
        out = q.new_empty(q.shape[:-1] + v.shape[-1:])
        probs = []
        for rows, keys, part in tiles:
            scores = torch.matmul(q[part, :, rows], k[part, :, keys].transpose(-1, -2)).add_(bias[:, rows, keys])
            if key_mask is not None:
                scores.add_(key_mask[part, None, None, keys])
            probs.append(torch.softmax(scores, dim=-1))
            out[part, :, rows] = torch.matmul(probs[-1], v[part, :, keys])
        ctx.save_for_backward(q, k, v, out, *probs)
        ctx.tiles, ctx.bias_shape = tiles, bias.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v, out, *probs = ctx.saved_tensors
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        grad_bias = q.new_zeros(ctx.bias_shape)
        sums = (grad * out).sum(-1, keepdim=True)  # rowsum(dO o) = sum_s P dP
        for (rows, keys, part), p in zip(ctx.tiles, probs):
            grad_out = grad[part, :, rows]
            grad_v[part, :, keys] += torch.matmul(p.transpose(-1, -2), grad_out)
            scores = torch.matmul(grad_out, v[part, :, keys].transpose(-1, -2)).sub_(sums[part, :, rows]).mul_(p)
            grad_bias[:, rows, keys] += scores.sum(0)
            grad_q[part, :, rows] = torch.matmul(scores, k[part, :, keys])
            grad_k[part, :, keys] += torch.matmul(scores.transpose(-1, -2), q[part, :, rows])
        return grad_q.mul_(q.shape[-1] ** -0.5), grad_k, grad_v, grad_bias, None, None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
              key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias + key_mask) v over the last two dimensions: q [B, H, T, d], k and
    v [B, H, S, d], bias [H, T, S] (-inf where a query may not look), key_mask [B, S] of 0 and -inf or
    None; every row must hold a finite score. On the CPU it runs in cache-sized tiles (``_tiles``); one
    step without a gradient (a rollout's) runs SDPA's fused kernel, which is faster there."""
    if q.shape[2] == 1 and not (torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, bias))):
        mask = bias if key_mask is None else bias + key_mask[:, None, None, :]
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return _Attention.apply(q, k, v, bias, key_mask, _tiles(bias, q.shape[0]))


class AttentionBlock(Block):
    """One transformer layer: windowed causal self-attention (the block's ``run``, on the BlockCore's
    pre-norm) and its feed-forward sublayer with its own pre-norm and residual (``residual``)."""

    def __init__(self, width: int, *, heads: int = 4, context: int = 128,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.width = width
        self.heads = check_divides("heads", heads, width)
        if positive_int("context", context) < 2:
            raise ValueError(f"context must be an int >= 2 (the current step and at least one past one), "
                             f"got {context}")
        self.context = context
        self.query = linear(width, width, generator)
        self.key_value = linear(width, 2 * width, generator)
        self.out = linear(width, width, generator)
        alibi = -alibi_slopes(heads)[:, None] * torch.arange(context, dtype=torch.float64)
        self.position_bias = nn.Parameter(alibi.to(torch.get_default_dtype()))  # r [H, C], by offset
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = MLP(width, generator, MLP_RATIO)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.context - 1, self.width), (self.context - 1,))

    def _bias(self, steps: int, keys: int) -> torch.Tensor:
        """The additive score bias [H, T, S] of the T newest of S steps over all S: r at offset t - s
        inside the window, -inf outside it."""
        bias = self.position_bias
        query_index = torch.arange(steps, device=bias.device)[:, None] + (keys - steps)
        offset = query_index - torch.arange(keys, device=bias.device)[None, :]  # [T, S]
        outside = (offset < 0) | (offset >= self.context)
        return bias[:, offset.clamp(0, self.context - 1)].masked_fill(outside, float("-inf"))

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, None]:
        past, valid = state  # [B, C-1, D], [B, C-1]
        steps, batch = u.shape[:2]
        window = torch.cat((past.transpose(0, 1), u))  # [C-1+T, B, D]
        seen = torch.cat((valid > 0.5, valid.new_ones(batch, steps, dtype=torch.bool)), dim=1)
        # attend over the window from its oldest slot that any sequence holds: the slots before it
        # would get weight exactly zero (a fresh start, as in training, attends over the new steps only)
        first = int(seen.any(dim=0).to(torch.int8).argmax())
        keys, values = self.key_value(window[first:]).chunk(2, dim=-1)
        q, k, v = (split_heads(t, self.heads).permute(1, 2, 0, 3) for t in (self.query(u), keys, values))
        held = seen[:, first:]
        key_mask = None if bool(held.all()) else u.new_zeros(held.shape).masked_fill_(~held, float("-inf"))
        attended = attention(q, k, v, self._bias(steps, window.shape[0] - first), key_mask)  # [B, H, T, d]
        out = self.out(attended.permute(2, 0, 1, 3).reshape(steps, batch, self.width))
        final = (window[-(self.context - 1):].transpose(0, 1), seen[:, -(self.context - 1):].to(past.dtype))
        return out, final, None

    def residual(self, u: torch.Tensor, norm: nn.Module, state: BlockState) -> tuple[torch.Tensor, BlockState, None]:
        x, final, _ = super().residual(u, norm, state)
        return x + self.mlp(self.norm_mlp(x)), final, None


class Transformer(BlockCore):
    """A causal sliding-window transformer core: options ``layers`` (default 1), ``heads`` (default 4,
    dividing hidden_size) and ``context`` (default 128 steps, the current one included)."""

    kind = "transformer"
    block_type = AttentionBlock
    block_options = {"heads": 4, "context": 128}

    def context_length(self) -> int:
        """The most steps back (the current one counted) an input can reach the output from:
        layers * (context - 1) + 1, the core's memory in place of a timescale."""
        return self.layers * (self._options["context"] - 1) + 1


__all__ = ["AttentionBlock", "MLP_RATIO", "Transformer", "alibi_slopes", "attention"]
