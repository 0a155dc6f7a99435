"""xLSTM's two cells with exponential gating: sLSTM (scalar memory, memory mixing) and mLSTM (matrix memory).

Beck et al., NeurIPS 2024, "xLSTM: Extended Long Short-Term Memory", arXiv:2405.04517; reference code
NX-AI/xlstm (pip package ``xlstm``). Both cells keep a stabilizer state m_t so that the exponential input
gate never overflows: the stored states are the true ones times exp(-m_t), and every output is the same
as without it.

sLSTM, per unit (``heads`` heads; R_* block-diagonal, one [d, d] block per head, d = D / heads, so memory
mixes within a head and not across heads):

    i~_t, f~_t = W_{i,f} x^c_t + R_{i,f} h_{t-1} + b_{i,f}     x^c = SiLU(conv_K(u)) (K = ``conv``; u if 0/None)
    z~_t, o~_t = W_{z,o} u_t + R_{z,o} h_{t-1} + b_{z,o}
    m_t = max(log sigmoid(f~_t) + m_{t-1}, i~_t)              (m_t = i~_t while the memory is empty: n_{t-1} = 0)
    i_t = exp(i~_t - m_t),   f_t = exp(log sigmoid(f~_t) + m_{t-1} - m_t)     (both <= 1)
    c_t = f_t c_{t-1} + i_t tanh(z~_t),   n_t = f_t n_{t-1} + i_t,   h_t = sigmoid(o~_t) c_t / n_t
    out_t = W_down (GELU(W_gate g_t) * W_up g_t),   g_t = GroupNorm_heads(h_t)

The forget gate is the sigmoid (the reference code's sLSTM default, ``logsigmoid`` in its vanilla
backend; the paper allows sigmoid or exp). The recurrence is non-linear (h_{t-1} enters the gates), so it
runs as a step loop and ``run`` reports no transitions (None). The state is the conv's last K - 1 inputs
and c, n, m, h [D]; zeros are the empty memory. The mixing is the sLSTM block's post-up-projection: a
GELU-gated feed-forward of width ceil(4 D / 3) (the paper's factor 4/3).

mLSTM, per head of width d (E = ``expand`` * D channels, ``heads`` heads, d = E / heads), the
pre-up-projection block:

    x_t, z_t = W_up u_t                                          (E channels each, no bias)
    x^c_t = SiLU(conv_K(x)_t)                                    (SiLU(x_t) without conv)
    q_t = W_q x^c_t,   k_t = W_k x^c_t / sqrt(d),   v_t = W_v x_t   (block-diagonal, blocks of 4 channels)
    i~_t, f~_t = W_{i,f} [q_t; sqrt(d) k_t; v_t] + b_{i,f}       (one of each per head)
    m_t = max(log sigmoid(f~_t) + m_{t-1}, i~_t),   i_t = exp(i~_t - m_t),   f_t = exp(log sigmoid(f~_t) + m_{t-1} - m_t)
    C_t = f_t C_{t-1} + i_t v_t k_t^T,   n_t = f_t n_{t-1} + i_t k_t
    h~_t = C_t q_t / max(|n_t^T q_t|, exp(-m_t))
    out_t = W_down ((GroupNorm_heads(h~_t) + s * x^c_t) * SiLU(z_t))    (s: learnable skip, init 1)

Without the stabilizer the unnormalised memory is C^_t = sigmoid(f~_t) C^_{t-1} + exp(i~_t) v_t k_t^T:
``run`` reports its transition sigmoid(f~_t) per head, [T, B, heads], in (0, 1) (the paper has no signed
variant). The cell runs chunkwise (``mlstm_chunkwise``): within a chunk (16 steps, or d if larger) the parallel
stabilised form (the paper's appendix form, the reference's ``parallel_stabilized_simple``) with the
entry state's contribution added, and a loop over chunks carrying (C, n, m): the same m_t and the same
numbers as the step recurrence up to rounding. The state is the conv's last K - 1 inputs, C [heads, d, d],
n [heads, d] and m [heads].

Initialisation as the reference where it is a choice of values rather than a draw: sLSTM's forget-gate
biases the "powerlaw_blockdependent" profile of the first block (per head, 5 - 12 (j / (d - 1))^0.3 for
unit j), mLSTM's forget-gate biases linspace(3, 6) over the heads, GroupNorm weights 1, skip 1; every
weight (and the other biases) drawn like nn.Linear, U(+-1/sqrt(fan_in)), from the caller's generator
(sLSTM's recurrent blocks U(+-1/sqrt(D)), the reference's "standard" option; its default is zeros).

Checked (tests/test_cores_xlstm.py) against step loops of the equations above in float64 and against
the ``xlstm`` package's torch functions where it is installed (the sLSTM "vanilla" backend
``slstm_forward`` with ``slstm_forward_pointwise``, and mLSTM's ``parallel_stabilized_simple`` /
``recurrent_step_stabilized_simple``) on the same gate pre-activations: in float64 over 200 steps, the
sLSTM's h and states equal the vanilla backend's exactly, the mLSTM's h is within 3e-13 of both (|h| up to
11; 2e-10 with gate pre-activations 10 times larger, |h| up to 270).

Where we differ from the reference code:
- sLSTM's gate input projections are dense (one [D, 2D] on the conv's output for i, f and one on the input
  for z, o, their biases the cell's b), where the reference makes them block-diagonal per head; mLSTM's
  q, k, v are block-diagonal in blocks of 4 channels as the reference's (gcd(4, E) where 4 does not
  divide E);
- the zoo's one-sublayer block: sLSTM's feed-forward follows the GroupNorm inside the block, where the
  reference adds it as a second residual sublayer with its own LayerNorm; its width is ceil(4 D / 3)
  rather than 1.3 D rounded up to a multiple of 64;
- no eps in mLSTM's denominator (the reference adds 1e-6, which changes h by up to 1e-6 exp(m_t)
  relative): max(|n^T q|, exp(-m)) is positive already; compared with the reference at eps = 0. Its
  exp(-m_t) is capped at the dtype's largest power of e (88 in float32), where the reference's overflows
  to inf (h is then below its float resolution either way, and the cap keeps the gradient finite);
- sLSTM's "empty memory" rule is per unit (n_{t-1} = 0), where the reference's vanilla backend applies it
  only when the whole batch's n is zero (the same numbers from a zero state); the states are in our
  layout (mLSTM's C is v k^T, the transpose of the reference's);
- the forget-gate bias profile of every sLSTM layer is the first block's (the reference varies it with
  the block's depth); mLSTM's gate weights and input-gate biases are drawn like the rest, where the
  reference starts the weights at zero and the biases at N(0, 0.1).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import Block, BlockCore, BlockState, CausalConv, check_divides, conv_kernel, linear, split_heads
from .._validate import positive_int, uniform_

#: The fewest time steps per chunk of the chunkwise mLSTM: a chunk is the head width's power of two, at least
#: this (a chunk's products cost about L^2 d and its carried state d^2 per head, balanced at L about d: at
#: head width 128 chunks of 16 ran 2.7x slower than 32), and a short sequence's next power of two above its length.
CHUNK = 16
#: The epsilon of the per-head GroupNorms (the reference's LayerNorm default).
NORM_EPS = 1e-5
#: The block size of mLSTM's block-diagonal q, k, v projections (the reference's qkv_proj_blocksize).
QKV_BLOCK = 4


def head_norm(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """GroupNorm with one group per head, no bias: h [..., heads, d] normalised over d, times weight [heads * d]."""
    return F.layer_norm(h, h.shape[-1:], eps=NORM_EPS) * weight.view(h.shape[-2:])


def slstm_scan(gates: torch.Tensor, recurrent: torch.Tensor, state: BlockState
               ) -> tuple[torch.Tensor, BlockState]:
    """The sLSTM recurrence (module docstring) step by step.

    gates [T, B, 4, D]: the input parts W x + b of i~, f~, z~, o~; recurrent [heads, d, 4 d] (per head, h's
    d units to the 4 gates' d units, gate-major); state (c, n, m, h) each [B, D]. Returns h [T, B, D] and
    the final (c, n, m, h).
    """
    heads, width = recurrent.shape[0], recurrent.shape[1]
    batch = gates.shape[1]

    def per_head(x: torch.Tensor) -> torch.Tensor:  # [B, D] -> [heads, B, d]
        return x.view(batch, heads, width).transpose(0, 1)

    c, n, m, h = (per_head(s) for s in state)
    gates = gates.view(*gates.shape[:3], heads, width).permute(0, 3, 1, 2, 4)  # [T, heads, B, 4, d]
    outs = []
    for inputs in gates:
        raw = inputs + torch.bmm(h, recurrent).view(heads, batch, 4, width)
        i_raw, f_raw, z_raw, o_raw = raw.unbind(-2)
        log_f = F.logsigmoid(f_raw) + m
        m_new = torch.where(n == 0, i_raw, torch.maximum(i_raw, log_f))
        i_gate = torch.exp(i_raw - m_new)
        f_gate = torch.exp((log_f - m_new).clamp(max=0.0))  # <= 1; clamped only where the memory is empty
        c = f_gate * c + i_gate * torch.tanh(z_raw)
        n = f_gate * n + i_gate
        m = m_new
        h = torch.sigmoid(o_raw) * c / n
        outs.append(h)
    hidden = torch.stack(outs).permute(0, 2, 1, 3).reshape(gates.shape[0], batch, heads * width)
    return hidden, tuple(s.transpose(0, 1).reshape(batch, heads * width) for s in (c, n, m, h))


def mlstm_chunkwise(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, i_raw: torch.Tensor, log_f: torch.Tensor,
                    state: BlockState, chunk: int | None = None) -> tuple[torch.Tensor, BlockState]:
    """The mLSTM cell (module docstring), ``chunk`` (a power of two; None: see CHUNK) steps at a time.

    q, k (already scaled by 1/sqrt(d)), v [T, B, heads, d]; i_raw = i~ and log_f = log sigmoid(f~)
    [T, B, heads]; state (C [B, heads, d, d], n [B, heads, d], m [B, heads]). Returns h~ [T, B, heads, d]
    and the final (C, n, m).

    n rides along as one more row of C (v extended by a 1: n_t^T q_t is the extra entry of C_t q_t). In a
    chunk with entry state (C, m_0), b_t the cumulative log forget gate and log D_tj = b_t - b_j + i~_j
    (j <= t), the stabiliser is m_t = max(b_t + m_0, max_j log D_tj) (the recurrence's m_t unrolled) and
    C_t q_t = exp(b_t + m_0 - m_t) C q_t + sum_j exp(log D_tj - m_t) (k_j . q_t) v_j. The chunks' writes
    are parallel; the loop over chunks carries m and C. The last chunk is padded with steps that write
    nothing (i~ = -inf, f = 1).
    """
    steps, batch, heads, width = q.shape
    memory, normalizer, m = state
    chunk = min(chunk or max(CHUNK, 1 << (width - 1).bit_length()), 1 << (steps - 1).bit_length())
    count = -(-steps // chunk)
    pad = count * chunk - steps
    v = torch.cat((v, v.new_ones(*v.shape[:-1], 1)), dim=-1)  # [T, B, heads, d + 1]
    memory = torch.cat((memory, normalizer.unsqueeze(-2)), dim=-2)  # [B, heads, d + 1, d]

    def chunks(x: torch.Tensor, value: float = 0.0) -> torch.Tensor:  # [T, B, heads, ...] -> [n, B, heads, C, ...]
        x = F.pad(x, (0, 0) * (x.dim() - 1) + (0, pad), value=value)
        return x.view(count, chunk, *x.shape[1:]).movedim(1, 3)

    q, k, v = (chunks(x) for x in (q, k, v))
    i_raw, log_f = chunks(i_raw, -math.inf), chunks(log_f)  # [n, B, heads, C]
    b = log_f.cumsum(-1)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    log_d = (b.unsqueeze(-1) - b.unsqueeze(-2) + i_raw.unsqueeze(-2)).masked_fill(~causal, -math.inf)
    row_max = log_d.amax(-1)
    entries_m = []
    for chunk_b, chunk_max in zip(b, row_max):
        entries_m.append(m)
        m = torch.maximum(chunk_b[..., -1] + m, chunk_max[..., -1])
    m0 = torch.stack(entries_m).unsqueeze(-1)  # [n, B, heads, 1]
    m_t = torch.maximum(b + m0, row_max)
    weights = torch.exp(log_d - m_t.unsqueeze(-1))  # D_tj exp(-m_t) [n, B, heads, C, C]
    carry = torch.exp(b + m0 - m_t)  # exp(b_t + m_0 - m_t)
    writes = (v * weights[..., -1, :].unsqueeze(-1)).mT @ k  # each chunk's sum of weighted v_j k_j^T at its end
    entries = []
    for chunk_carry, chunk_writes in zip(carry, writes):
        entries.append(memory)
        memory = chunk_carry[..., -1, None, None] * memory + chunk_writes
    out = ((q @ k.mT) * weights) @ v + carry.unsqueeze(-1) * (q @ torch.stack(entries).mT)
    # exp(-m_t) at most the dtype's largest power of e: beyond it h is below its float resolution either way,
    # and the gradient of an overflowed exp(-m_t) would be inf * 0
    floor = torch.exp((-m_t).clamp(max=math.floor(math.log(torch.finfo(m_t.dtype).max))))
    h = out[..., :width] / torch.maximum(out[..., width].abs(), floor).unsqueeze(-1)
    h = h.movedim(3, 1).reshape(count * chunk, batch, heads, width)[:steps]
    return h, (memory[..., :width, :], memory[..., width, :], m)


class BlockDiagonal(nn.Module):
    """A block-diagonal linear map without bias: x [..., G * b] -> [..., G, outputs * b], each block of b
    inputs mapped to its own ``outputs`` * b outputs; weights U(+-1/sqrt(b)) (nn.Linear's, per block)."""

    def __init__(self, width: int, block: int, outputs: int, generator: torch.Generator | None) -> None:
        super().__init__()
        self.block = block
        self.weight = nn.Parameter(torch.empty(width // block, outputs * block, block))
        uniform_(self.weight, -block ** -0.5, block ** -0.5, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = x.reshape(-1, *self.weight.shape[::2]).transpose(0, 1)  # [G, N, b]: one batched product
        return (blocks @ self.weight.mT).transpose(0, 1).reshape(*x.shape[:-1], self.weight.shape[0], -1)


class SLSTMBlock(Block):
    """An sLSTM layer on width D: causal conv for the i, f inputs, the sLSTM cell, head-wise GroupNorm and
    the gated feed-forward."""

    def __init__(self, width: int, *, heads: int = 4, conv: int | None = 4,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.heads = check_divides("heads", heads, width)
        self.width = width
        head_dim = width // heads
        kernel = conv_kernel(conv)
        self.conv = CausalConv(width, kernel, generator) if kernel else None
        self.gates_if = linear(width, 2 * width, generator)  # i~, f~ from the conv's output
        self.gates_zo = linear(width, 2 * width, generator)  # z~, o~ from the input
        self.recurrent = nn.Parameter(torch.empty(heads, head_dim, 4 * head_dim))
        uniform_(self.recurrent, -width ** -0.5, width ** -0.5, generator)
        with torch.no_grad():  # the reference's forget-gate bias profile, per head
            profile = 5.0 - 12.0 * torch.linspace(0.0, 1.0, head_dim) ** 0.3
            self.gates_if.bias[width:].copy_(profile.repeat(heads))
        self.norm = nn.Parameter(torch.ones(width))
        inner = math.ceil(4 * width / 3)
        self.ffn_up = linear(width, 2 * inner, generator, bias=False)
        self.ffn_down = linear(inner, width, generator, bias=False)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        cell = ((self.width,),) * 4  # c, n, m, h
        return (self.conv.state_shape(), *cell) if self.conv is not None else cell

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, None]:
        conv_state: BlockState = ()
        x = u
        if self.conv is not None:
            x, past = self.conv(u, state[0])
            conv_state = (past,)
        gates = torch.cat((self.gates_if(F.silu(x)), self.gates_zo(u)), dim=-1)
        h, cell = slstm_scan(gates.unflatten(-1, (4, self.width)), self.recurrent, state[-4:])
        g = head_norm(split_heads(h, self.heads), self.norm).flatten(-2)
        gate, up = self.ffn_up(g).chunk(2, dim=-1)
        return self.ffn_down(F.gelu(gate) * up), (*conv_state, *cell), None


class SLSTM(BlockCore):
    """sLSTM core (Beck et al. 2024): options ``layers``, ``heads`` (4; must divide hidden_size) and ``conv``
    (kernel size of the causal conv before the input and forget gates, 4; 0/None for none)."""

    kind = "slstm"
    block_type = SLSTMBlock
    block_options = {"heads": 4, "conv": 4}


class MLSTMBlock(Block):
    """An mLSTM layer on width D (xLSTM's pre-up-projection block): up-projection to E = expand * D, causal
    conv, q, k, v, the mLSTM cell, head-wise GroupNorm, learnable skip, SiLU output gate, down-projection."""

    def __init__(self, width: int, *, heads: int = 4, expand: int = 2, conv: int | None = 4,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.heads = check_divides("heads", heads, width)
        inner = width * positive_int("expand", expand)
        self.inner = inner
        self.head_dim = inner // heads
        self.up = linear(width, 2 * inner, generator, bias=False)
        kernel = conv_kernel(conv)
        self.conv = CausalConv(inner, kernel, generator) if kernel else None
        block = math.gcd(QKV_BLOCK, inner)
        self.qk = BlockDiagonal(inner, block, 2, generator)  # q and k of each block of the conv's output
        self.v = BlockDiagonal(inner, block, 1, generator)
        self.gates = linear(3 * inner, 2 * heads, generator)  # i~, f~ per head
        with torch.no_grad():
            self.gates.bias[heads:].copy_(torch.linspace(3.0, 6.0, heads))
        self.norm = nn.Parameter(torch.ones(inner))
        self.skip = nn.Parameter(torch.ones(inner))
        self.down = linear(inner, width, generator, bias=False)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        cell = ((self.heads, self.head_dim, self.head_dim), (self.heads, self.head_dim), (self.heads,))
        return (self.conv.state_shape(), *cell) if self.conv is not None else cell

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, torch.Tensor]:
        x, z = self.up(u).chunk(2, dim=-1)
        conv_state: BlockState = ()
        x_conv = x
        if self.conv is not None:
            x_conv, past = self.conv(x, state[0])
            conv_state = (past,)
        x_conv = F.silu(x_conv)
        q, k = (part.flatten(-2) for part in self.qk(x_conv).chunk(2, dim=-1))
        v = self.v(x).flatten(-2)
        i_raw, f_raw = self.gates(torch.cat((q, k, v), dim=-1)).chunk(2, dim=-1)
        q, k = split_heads(q, self.heads), split_heads(k, self.heads)
        log_f = F.logsigmoid(f_raw)
        h, cell = mlstm_chunkwise(q, k / math.sqrt(self.head_dim), split_heads(v, self.heads), i_raw, log_f,
                                  state[-3:])
        h = head_norm(h, self.norm).flatten(-2) + self.skip * x_conv
        return self.down(h * F.silu(z)), (*conv_state, *cell), torch.exp(log_f)


class MLSTM(BlockCore):
    """mLSTM core (Beck et al. 2024): options ``layers``, ``heads`` (4; must divide hidden_size), ``expand``
    (E = expand * hidden_size, 2) and ``conv`` (kernel size, 4; 0/None for none)."""

    kind = "mlstm"
    block_type = MLSTMBlock
    block_options = {"heads": 4, "expand": 2, "conv": 4}


__all__ = ["MLSTM", "MLSTMBlock", "SLSTM", "SLSTMBlock", "head_norm", "mlstm_chunkwise", "slstm_scan"]
