"""Recurrences whose state is a matrix written by the delta rule: DeltaNet, DeltaProduct, Gated DeltaNet.

DeltaNet (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over Sequence Length",
arXiv:2406.06484; the delta rule of Schlag et al. 2021, "Linear Transformers Are Secretly Fast Weight
Programmers", arXiv:2102.11174), per head of width d = D / heads, as in the paper's layer (the
flash-linear-attention DeltaNet defaults: short conv without bias, SiLU feature map, L2-normalised q and
k, query scale d^-1/2, RMSNorm (eps 1e-5) on the output, no output gate):

    q_t, k_t, v_t = SiLU(conv_K(W_q u, W_k u, W_v u)_t)   (depthwise causal conv, kernel K = ``conv``)
    q_t, k_t = q_t / ||q_t||, k_t / ||k_t||
    beta_t = sigmoid(w_beta u_t)                           (one writing strength per head)
    S_t = S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T     S_t in R^{d x d}
    o_t = S_t q_t / sqrt(d)
    out_t = W_o RMSNorm(o_t)                                (per head, one learnt scale of width d)

The step is S_t = S_{t-1} + beta_t (v_t - S_{t-1} k_t) k_t^T: the value stored at key k_t moves a
fraction beta_t of the way to v_t. The transition I - beta_t k_t k_t^T has eigenvalue 1 - beta_t ||k_t||^2
along k_t (1 on its complement); ``run`` returns it, signed, per head, [T, B, heads] per layer (the zoo's
transitions). With ``eigenvalues="signed"``, beta_t = 2
sigmoid(w_beta u_t) in [0, 2], so that eigenvalue lies in [-1, 1] (Grazzi et al., ICLR 2025: a
reflection, which lets one layer track parity).

DeltaProduct (Siems et al., NeurIPS 2025, "DeltaProduct: Improving State-Tracking in Linear RNNs via
Householder Products", arXiv:2502.10297; code: automl/DeltaProduct, flash-linear-attention's
GatedDeltaProduct layer without its forget gate and output gate) takes n_h = ``householders`` keys k_{t,j},
values v_{t,j} and strengths beta_{t,j} per token (n_h times DeltaNet's k and v projections and conv
channels, n_h strengths per head) and applies them as n_h consecutive delta-rule steps,

    S_t = S_{t-1} prod_j (I - beta_{t,j} k_{t,j} k_{t,j}^T) + (the n_h writes),   o_t = S_t q_t / sqrt(d),

a transition that is a product of n_h generalized Householder matrices (reflections where beta = 2): the
published formulation, run as DeltaNet's chunkwise recurrence on the token sequence expanded n_h-fold with the
query read after each token's last step. n_h = 1 is DeltaNet, weight for weight. Its transitions are the
eigenvalue of each factor along its key, 1 - beta_{t,j} ||k_{t,j}||^2, [T, B, n_h * heads] (entry
j * heads + h: factor j of head h); "signed" gives each factor's eigenvalue [-1, 1] (beta in [0, 2], the
paper's setting for state tracking).

Gated DeltaNet (Yang, Kautz and Hatamizadeh, ICLR 2025, "Gated Delta Networks: Improving Mamba2 with Delta
Rule", arXiv:2412.06464; flash-linear-attention's GatedDeltaNet layer) adds a data-dependent decay of the
whole state and an output gate:

    g_t = -exp(A_log) softplus(w_a u_t + dt_bias),   alpha_t = exp(g_t) in (0, 1]     (one per head)
    S_t = alpha_t S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T
    out_t = W_o (RMSNorm(o_t) * SiLU(W_g u_t))

with A = exp(A_log) drawn from U(0, 16) and dt_bias = softplus^-1(dt), dt log-uniform in [1e-3, 0.1], as fla.
Its transitions are alpha_t (1 - beta_t ||k_t||^2), the eigenvalue along k_t (alpha_t on k_t's complement),
[T, B, heads]; "signed" takes beta in [0, 2] as Grazzi et al. did for Gated DeltaNet.

The recurrences run in the chunkwise-parallel WY form (``delta_rule``, chunks of CHUNK = 16 steps, with the
gate's cumulative decays inside a chunk for Gated DeltaNet: the same numbers as the step loop up to
rounding), with the last K - 1 conv inputs and S as the state, so that split runs equal one pass. The
recurrences equal flash-linear-attention's naive reference functions (``naive_recurrent_gated_delta_product``
with num_householder = n_h and no gate, ``naive_recurrent_gated_delta_rule``) on the same q, k, v, beta and g
to about 1e-14 in float64 (tests/test_cores_delta_family.py, where fla-core is installed). Where we differ
from flash-linear-attention's layers:
- q and k are normalised as x / max(||x||, 1e-6) (F.normalize) rather than x / sqrt(||x||^2 + 1e-6), so
  that keys have exactly unit length (the two differ only for ||x|| of about 1e-3 or below);
- the query scale is applied as the RMSNorm's eps (RMSNorm(o / sqrt(d)) with eps = RMSNorm(o) with eps d,
  the same function);
- one projection and one conv over all the q, k, v channels stand for fla's three of each (the same
  functions), drawn with torch's default U(+-1/sqrt(fan_in)) like the rest of the zoo rather than fla's
  model-level initialisation;
- values have the keys' width d (fla's Gated DeltaNet and GatedDeltaProduct default to expand_v = 2, values
  twice as wide), and DeltaProduct has neither the forget gate nor the output gate of fla's GatedDeltaProduct
  (the plain DeltaProduct of the paper, so that n_h = 1 is our DeltaNet);
- the chunk's (I + A)^-1 comes from a batched triangular solve rather than fla's blockwise substitution
  kernels, chunks are 16 steps rather than 64 (on the CPU, batched 16 x 16 products run fastest);
- the block ends at the layer's normed output projection: the papers' language models add a SwiGLU MLP
  in a second residual sublayer, which the zoo's one-sublayer blocks leave out (the SiLU features, the
  normalisations and the query-dependent read already make the output non-linear in the inputs).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from .._validate import positive_int, uniform_
from .blocks import Block, BlockCore, BlockState, CausalConv, check_divides, conv_kernel, linear, split_heads

#: The head width the default number of heads aims at.
HEAD_DIM = 16
#: The epsilon of the L2 normalisation of q and k.
EPS = 1e-6
#: The epsilon of the output RMSNorm (flash-linear-attention's default).
NORM_EPS = 1e-5
#: Time steps per chunk of the chunkwise-parallel delta rule: with the default head width 16 every product in a
#: chunk is a batch of 16 x 16 matrices, which the CPU's batched matmul runs fastest (chunks of 8 take more
#: products and steps of the chunk loop; chunks of 32 twice the flops per step, run at about half the rate).
CHUNK = 16
#: Gated DeltaNet's initial A (the decay rate, exp(A_log)) is drawn from U(A_MIN, A_MAX): fla's U(0, 16), kept
#: off 0 so that ln A is finite.
A_MIN, A_MAX = 1e-4, 16.0
#: Gated DeltaNet's initial step dt (through dt_bias = softplus^-1(dt)): log-uniform in [DT_MIN, DT_MAX], at
#: least DT_FLOOR (fla's, as Mamba-2's).
DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 0.1, 1e-4


class _L2Normalize(torch.autograd.Function):
    """x / max(||x||, eps) over the last dimension (F.normalize), with its adjoint as the backward:
    dL/dx = (g - y (g . y)) / ||x|| (g / eps where the norm is clamped), three passes over x where
    autograd through F.normalize's norm, clamp and division takes about twice as many."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, eps: float) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        inverse = norm.clamp_min(eps).reciprocal_()
        y = x * inverse
        ctx.save_for_backward(y, inverse, norm > eps)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        y, inverse, unclamped = ctx.saved_tensors
        along = torch.linalg.vecdot(grad, y, dim=-1).unsqueeze(-1) * unclamped
        return torch.addcmul(grad, y, along, value=-1).mul_(inverse), None


def l2_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """x / max(||x||, eps) over the last dimension: F.normalize's values and gradients, computed in fewer passes."""
    return _L2Normalize.apply(x, eps)


class _UnitLowerInverse(torch.autograd.Function):
    """(I + a)^-1 for strictly lower-triangular a [..., C, C]: a triangular solve forward, and the adjoint
    d(a) = -strictly-lower(X^T dX X^T) backward (two batched products where autograd through a
    substitution would record one small product per row or per block)."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a)
        inverse = torch.linalg.solve_triangular(a, eye, upper=False, unitriangular=True)  # reads a's diagonal as 1
        ctx.save_for_backward(inverse)
        return inverse

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (inverse,) = ctx.saved_tensors
        return -(inverse.mT @ grad @ inverse.mT).tril(-1)


def delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, memory: torch.Tensor,
               log_gate: torch.Tensor | None = None, chunk: int = CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """The (gated) delta rule S_t = alpha_t S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T, o_t = S_t q_t, chunkwise.

    q, k, v [T, B, heads, d], beta [T, B, heads], memory S_0 [B, heads, d, d], ``log_gate`` g_t = ln alpha_t <= 0
    [T, B, heads] (None: alpha_t = 1, DeltaNet); returns o [T, B, heads, d] and S_T. ``chunk`` (a power of two)
    steps at a time in the WY form of Yang et al. 2024 (sec. 3), gated as in Gated DeltaNet (Yang et al. 2025,
    sec. 3.3): within a chunk, with rows K, V, Q [C, d], the cumulative gates G_i = exp(g_1 + ... + g_i),
    L_ij = G_i / G_j (i >= j, else 0), A = strictly-lower(diag(beta) K K^T * L) and T = (I + A)^-1 diag(beta),
    the chunk's writes are W = T diag(G) K and U = T V; against the entry state S the value errors are
    U' = U - W S^T, the outputs O = diag(G) Q S^T + (Q K^T * L) U' and the exit state
    G_C S + U'^T diag(G_C / G) K. Everything but U' and the exit states is parallel over chunks; the loop over
    the T / C chunks is two products of the batch's states each. The last chunk is padded with zero steps
    (k = v = beta = g = 0: no write, no decay). No gate divides: L and G_C / G are exp of sums of g <= 0.
    """
    steps, batch, heads, width = q.shape
    chunk = min(chunk, 1 << (steps - 1).bit_length())  # a short sequence (one RL step) pads to no more than 2T
    count = -(-steps // chunk)

    def chunks(x: torch.Tensor) -> torch.Tensor:  # [T, B, heads, d] -> [n, B, heads, C, d], zero-padded
        x = F.pad(x, (0, 0, 0, 0, 0, 0, 0, count * chunk - steps))
        return x.view(count, chunk, *x.shape[1:]).permute(0, 2, 3, 1, 4).contiguous()

    q, k, v, beta = (chunks(x) for x in (q, k, v, beta.unsqueeze(-1)))  # beta [n, B, heads, C, 1]
    scores = k @ k.mT * beta
    if log_gate is None:
        decay = gate = exit_gate = None
    else:
        cumulative = chunks(log_gate.unsqueeze(-1)).cumsum(-2)  # ln G [n, B, heads, C, 1]
        decay = (cumulative - cumulative.mT).tril().exp().tril()  # L; zeroed above the diagonal before the exp
        gate, exit_gate = cumulative.exp(), (cumulative[..., -1:, :] - cumulative).exp()  # G, G_C / G [.., C, 1]
        scores = scores * decay
    t = _UnitLowerInverse.apply(scores.tril(-1)) * beta.mT  # (I + A)^-1 diag(beta)
    w, u = t @ (k if gate is None else k * gate), t @ v  # separate products: MKL's batched 16 x 16 products run
    entries, errors = [], []  # several times faster than wider ones
    exits = k if exit_gate is None else k * exit_gate
    for index, (chunk_exit, chunk_w, chunk_u) in enumerate(zip(exits, w, u)):
        entries.append(memory)
        errors.append(chunk_u - chunk_w @ memory.mT)  # U' = U - W S^T
        if gate is not None:
            memory = memory * gate[index, ..., -1:, :]  # G_C S
        memory = memory + errors[-1].mT @ chunk_exit
    reads = q @ k.mT if decay is None else q @ k.mT * decay
    o = (q if gate is None else q * gate) @ torch.stack(entries).mT + reads.tril() @ torch.stack(errors)
    return o.permute(0, 3, 1, 2, 4).reshape(count * chunk, batch, heads, width)[:steps], memory


def default_heads(width: int) -> int:
    """The most heads of width >= HEAD_DIM that divide ``width`` (1 for widths below 2 * HEAD_DIM)."""
    return next(h for h in range(max(1, width // HEAD_DIM), 0, -1) if width % h == 0)


class DeltaNetBlock(Block):
    """A DeltaNet layer on width D: q, k, v projections, short conv, delta-rule recurrence, norm, output.

    With ``householders`` n_h > 1 it is DeltaProduct's layer: n_h keys, values and betas per token, applied
    as n_h consecutive delta-rule steps (the token's sequence expanded n_h-fold), read after the last. The
    projection's channels are [q (D) | k_1 .. k_n (n_h D) | v_1 .. v_n (n_h D)], so that n_h = 1 is DeltaNet's.
    """

    def __init__(self, width: int, *, heads: int | None = None, conv: int | None = 4, eigenvalues: str = "positive",
                 householders: int = 1, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.heads = default_heads(width) if heads is None else check_divides("heads", heads, width)
        self.head_dim = width // self.heads
        self.eigenvalues = eigenvalues
        self.householders = positive_int("householders", householders)
        channels = (1 + 2 * householders) * width
        self.qkv = linear(width, channels, generator, bias=False)
        kernel = conv_kernel(conv)
        self.conv = CausalConv(channels, kernel, generator, bias=False) if kernel else None  # q, k, v convs in one
        self.beta = linear(width, householders * self.heads, generator, bias=False)
        self.norm = nn.Parameter(torch.ones(self.head_dim))
        self.out_proj = linear(width, width, generator, bias=False)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        memory = (self.heads, self.head_dim, self.head_dim)
        return (self.conv.state_shape(), memory) if self.conv is not None else (memory,)

    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        """[T, B, n_h * heads, ...] (reflection-major) -> [n_h T, B, heads, ...]: each token's n_h steps in turn."""
        steps, batch = x.shape[:2]
        x = x.reshape(steps, batch, self.householders, self.heads, *x.shape[3:])
        return x.transpose(1, 2).flatten(0, 1)

    def features(self, u: torch.Tensor, past: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """q [T, B, heads, d], k (unit norm), v [n_h T, B, heads, d], beta [n_h T, B, heads] (token t's n_h
        steps at n_h t .. n_h t + n_h - 1) and the conv's new state, from u [T, B, D]."""
        width, n = u.shape[-1], self.householders
        qkv = self.qkv(u)
        if self.conv is not None:
            qkv, past = self.conv(qkv, past)
        qk, v = F.silu(qkv).split([(1 + n) * width, n * width], dim=-1)  # one split: its backward is one cat
        q, k = l2_normalize(split_heads(qk, (1 + n) * self.heads), EPS).split([self.heads, n * self.heads], dim=-2)
        beta = torch.sigmoid(self.beta(u))
        if self.eigenvalues == "signed":
            beta = 2.0 * beta
        return q, self._expand(k), self._expand(split_heads(v, n * self.heads)), self._expand(beta), past

    def log_gate(self, u: torch.Tensor) -> torch.Tensor | None:
        """ln alpha_t [T, B, heads] of a gated recurrence; None: no gate (alpha_t = 1)."""
        return None

    def read_out(self, o: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The block's output from the recurrence's o [T, B, heads, d]: out_proj(RMSNorm(o / sqrt(d)))."""
        # fla's query scale d^-1/2 at no cost: RMSNorm(o / sqrt(d)) with eps equals RMSNorm(o) with eps d
        return self.out_proj(F.rms_norm(o, (self.head_dim,), self.norm, NORM_EPS * self.head_dim).flatten(-2))

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, torch.Tensor]:
        """u [T, B, D] -> (out, final state, transitions [T, B, n_h * heads]): the signed eigenvalue
        alpha_t (1 - beta_j ||k_j||^2) of each step's transition along its key (entry j * heads + h: step j of
        head h; alpha_t = 1 without a gate)."""
        steps, batch, n = u.shape[0], u.shape[1], self.householders
        q, k, v, beta, past = self.features(u, state[0] if self.conv is not None else None)
        gate = self.log_gate(u)
        if n > 1:  # the query reads after each token's last step; zero queries at the others
            q = torch.stack([torch.zeros_like(q)] * (n - 1) + [q], dim=1).flatten(0, 1)
        o, memory = delta_rule(q, k, v, beta, state[-1], log_gate=gate)
        if n > 1:
            o = o.unflatten(0, (steps, n))[:, -1]
        transitions = (1.0 - beta * torch.linalg.vecdot(k, k)).unflatten(0, (steps, n)).transpose(1, 2)
        transitions = transitions.reshape(steps, batch, n * self.heads)
        if gate is not None:
            transitions = transitions * gate.exp()
        return self.read_out(o, u), (*((past,) if self.conv is not None else ()), memory), transitions


class GatedDeltaNetBlock(DeltaNetBlock):
    """A Gated DeltaNet layer: DeltaNet's with the decay alpha_t = exp(g_t) on the state and the output gate
    RMSNorm(o) * SiLU(W_g u) (flash-linear-attention's GatedDeltaNet layer)."""

    def __init__(self, width: int, *, heads: int | None = None, conv: int | None = 4, eigenvalues: str = "positive",
                 generator: torch.Generator | None = None) -> None:
        super().__init__(width, heads=heads, conv=conv, eigenvalues=eigenvalues, generator=generator)
        self.a_proj = linear(width, self.heads, generator, bias=False)
        self.a_log = nn.Parameter(torch.empty(self.heads))  # A ~ U(0, 16), as fla (U(1e-4, 16): ln A finite)
        uniform_(self.a_log, A_MIN, A_MAX, generator)
        with torch.no_grad():
            self.a_log.log_()
        self.dt_bias = nn.Parameter(torch.empty(self.heads))  # softplus^-1(dt), dt log-uniform in [DT_MIN, DT_MAX]
        uniform_(self.dt_bias, math.log(DT_MIN), math.log(DT_MAX), generator)
        with torch.no_grad():
            dt = self.dt_bias.exp().clamp_min(DT_FLOOR)
            self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.gate_proj = linear(width, width, generator, bias=False)

    def log_gate(self, u: torch.Tensor) -> torch.Tensor:
        """g_t = -exp(A_log) softplus(W_a u_t + dt_bias) [T, B, heads] (fla's GatedDeltaNet)."""
        return -self.a_log.exp() * F.softplus(self.a_proj(u) + self.dt_bias)

    def read_out(self, o: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """out_proj(RMSNorm(o / sqrt(d)) * SiLU(W_g u)), per head (fla's FusedRMSNormGated)."""
        normed = F.rms_norm(o, (self.head_dim,), self.norm, NORM_EPS * self.head_dim)
        return self.out_proj((normed * F.silu(split_heads(self.gate_proj(u), self.heads))).flatten(-2))


class DeltaNet(BlockCore):
    """DeltaNet core (Yang et al. 2024): options ``layers``, ``heads`` (None: head width about 16; must
    divide hidden_size), ``conv`` (kernel size, 0/None for none) and ``eigenvalues``."""

    kind = "deltanet"
    block_type = DeltaNetBlock
    block_options = {"heads": None, "conv": 4, "eigenvalues": "positive"}


class DeltaProduct(BlockCore):
    """DeltaProduct core (Siems et al. 2025): DeltaNet's options and ``householders`` (n_h >= 1 delta-rule
    steps, i.e. generalized Householder factors, per token; n_h = 1 is DeltaNet)."""

    kind = "deltaproduct"
    block_type = DeltaNetBlock
    block_options = {"householders": 2, "heads": None, "conv": 4, "eigenvalues": "positive"}


class GatedDeltaNet(BlockCore):
    """Gated DeltaNet core (Yang, Kautz and Hatamizadeh 2025): DeltaNet's options (``layers``, ``heads``,
    ``conv``, ``eigenvalues``)."""

    kind = "gated_deltanet"
    block_type = GatedDeltaNetBlock
    block_options = {"heads": None, "conv": 4, "eigenvalues": "positive"}


__all__ = ["DeltaNet", "DeltaNetBlock", "DeltaProduct", "GatedDeltaNet", "GatedDeltaNetBlock", "default_heads",
           "delta_rule", "l2_normalize"]
