"""The frame the architecture zoo's cores share: an input embedding, ``layers`` residual blocks, a
final norm, and the parallel linear scan their diagonal recurrences run on.

A zoo core (``BlockCore``) computes, for inputs x [T, B, F],

    u_0 = W_emb x_t + b_emb,   u_l = u_{l-1} + Block_l(LayerNorm_l(u_{l-1})),   hidden = LayerNorm(u_L)

(the norms are LayerNorms unless the core sets ``norm_layer``: Mamba's are RMSNorms), where each ``Block`` is one architecture's recurrence followed by the mixing its paper puts after it
(a GLU, an MLP, a gated output projection), so that a linear readout can read a non-linear function
such as parity from ``hidden``. The state is every block's state tensors in layer order; zeros are the
zero state (what the RL policy resets to at episode starts). Parameters are drawn from the
``generator`` the caller gives, on its device, then moved (docs/agents.md#devices).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.utils import skip_init

from .._validate import choice, positive_int, uniform_
from .base import Core, State

EIGENVALUES = ("positive", "signed")
"""The range of a recurrence's transition eigenvalues: "positive" [0, 1] as published, "signed" [-1, 1]
(Grazzi et al., ICLR 2025: a = 2 a_positive - 1, which lets one layer track parity)."""

BlockState = tuple[torch.Tensor, ...]


def linear(in_features: int, out_features: int, generator: torch.Generator | None, bias: bool = True
           ) -> nn.Linear:
    """nn.Linear with torch's default distribution U(-1/sqrt(in), 1/sqrt(in)), drawn from `generator`
    (skip_init: nothing is drawn from any global RNG)."""
    layer = skip_init(nn.Linear, in_features, out_features, bias=bias)
    bound = 1.0 / math.sqrt(in_features)
    uniform_(layer.weight, -bound, bound, generator)
    if bias:
        uniform_(layer.bias, -bound, bound, generator)
    return layer


def signed(a: torch.Tensor, eigenvalues: str) -> torch.Tensor:
    """The transition a in [0, 1] as published, or mapped to 2a - 1 in [-1, 1] for "signed"."""
    return a if eigenvalues == "positive" else 2.0 * a - 1.0


def _doubling_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t for t = 1..T as a Hillis-Steele doubling scan (a with b's time dimension),
    updated in place (no graph is recorded inside _LinearScan): each product is taken before it is added."""
    x = torch.empty(b.shape, dtype=torch.result_type(a, b), device=b.device).copy_(b)
    x[0] += a[0] * h0
    steps = x.shape[0]
    shift = 1
    while shift < steps:
        x[shift:] += a[shift:] * x[:-shift]
        if 2 * shift < steps:
            a = torch.cat((a[:shift], a[shift:] * a[:-shift]))
        shift *= 2
    return x


def conv_kernel(value: object) -> int:
    """The ``conv`` option: 0 or None (no convolution) -> 0, else an int >= 2 (ValueError/TypeError naming it)."""
    if value is None or (value == 0 and not isinstance(value, bool)):
        return 0
    if positive_int("conv", value) < 2:
        raise ValueError(f"conv must be 0, None or a kernel size >= 2, got {value}")
    return value  # type: ignore[return-value]


class _DepthwiseConv(torch.autograd.Function):
    """y_t = bias + sum_j weight[:, j] * x_{t+j} over the T = len(x) - K + 1 full windows of x [T + K - 1, B, C],
    with its adjoint as the backward: per tap one in-place multiply-add into dL/dx and one product summed
    into dL/dweight[:, j] (in one reused buffer), where autograd through the K shifted slices would allocate,
    zero-fill and add a tensor of x's size for each."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        kernel = weight.shape[1]
        steps = x.shape[0] - kernel + 1
        y = x[:steps] * weight[:, 0] if bias is None else torch.addcmul(bias, x[:steps], weight[:, 0])
        for j in range(1, kernel):
            y.addcmul_(x[j: j + steps], weight[:, j])
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        steps, kernel = grad.shape[0], weight.shape[1]
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            torch.mul(grad, weight[:, 0], out=grad_x[:steps])
            grad_x[steps:].zero_()
            for j in range(1, kernel):
                grad_x[j: j + steps].addcmul_(grad, weight[:, j])
        if ctx.needs_input_grad[1]:
            product = torch.empty_like(grad)  # one buffer for the K products
            grad_weight = torch.stack([torch.mul(grad, x[j: j + steps], out=product).sum((0, 1))
                                       for j in range(kernel)], dim=1)
        grad_bias = grad.sum((0, 1)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


class CausalConv(nn.Module):
    """Depthwise causal conv1d over time (Mamba's and DeltaNet's short convolution), kernel K:

        y_t = bias + sum_j weight[:, j] * x_{t-K+1+j}      (bias=False: no bias term)

    Its last K - 1 inputs are state [B, K - 1, C] (zeros: the zero padding of a fresh sequence), so that a
    sequence run in pieces equals one pass. Weights drawn like nn.Conv1d's, U(+-1/sqrt(K)), from `generator`.
    """

    def __init__(self, channels: int, kernel: int, generator: torch.Generator | None, bias: bool = True) -> None:
        super().__init__()
        self.kernel = kernel
        self.weight = nn.Parameter(torch.empty(channels, kernel))
        bound = 1.0 / math.sqrt(kernel)
        uniform_(self.weight, -bound, bound, generator)
        self.bias = nn.Parameter(torch.empty(channels)) if bias else None
        if self.bias is not None:
            uniform_(self.bias, -bound, bound, generator)

    def state_shape(self) -> tuple[int, int]:
        return (self.kernel - 1, self.weight.shape[0])

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [T, B, C], past [B, K - 1, C] -> (y [T, B, C], the last K - 1 inputs [B, K - 1, C])."""
        padded = torch.cat((past.transpose(0, 1), x))
        return _DepthwiseConv.apply(padded, self.weight, self.bias), padded[x.shape[0]:].transpose(0, 1)


def _gradient_for(grad: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    """``grad`` reduced to ``tensor``'s shape (summed over broadcast dimensions) and kind (real part for a
    real tensor in a complex scan)."""
    if grad.is_complex() and not tensor.is_complex():
        grad = grad.real
    return grad.sum_to_size(tensor.shape)


class _LinearScan(torch.autograd.Function):
    """The doubling scan with its adjoint as the backward: g_t = dL/dh_t + conj(a_{t+1}) g_{t+1}, one reverse
    scan, then dL/db_t = g_t, dL/da_t = g_t conj(h_{t-1}), dL/dh0 = conj(a_1) g_1. It saves only a, h0 and
    the states, where autograd through the scan's rounds would keep about 2 log2(T) tensors of b's size
    and zero-fill one per slice."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        h = _doubling_scan(a, b, h0)
        ctx.save_for_backward(a, h0, h)
        ctx.b_meta = b.new_zeros(()).expand(b.shape)  # b's shape and dtype, without keeping b
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a, h0, h = ctx.saved_tensors
        grad = grad.to(h.dtype)
        coefficients = torch.cat((torch.zeros_like(a[:1]), a[1:].conj().flip(0)))
        g = _doubling_scan(coefficients, grad.flip(0), torch.zeros_like(grad[0])).flip(0)
        grad_a = grad_h0 = None
        if ctx.needs_input_grad[0]:
            grad_a = _gradient_for(g * torch.cat((h0.expand_as(h[:1]), h[:-1])).conj(), a)
        if ctx.needs_input_grad[2]:
            grad_h0 = _gradient_for(g[0] * a[0].conj(), h0)
        return grad_a, _gradient_for(g, ctx.b_meta) if ctx.needs_input_grad[1] else None, grad_h0


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """All states of h_t = a_t * h_{t-1} + b_t (elementwise, real or complex) for t = 1..T: a and b [T, ...]
    (a broadcastable to b; where a has b's dimensions only its time dimension is expanded, so a
    time-invariant a [T, 1, ...] keeps its products small), h0 [...]; returns [T, ...].

    A Hillis-Steele doubling scan: ceil(log2 T) rounds of whole-sequence products instead of T small
    steps, exact up to float rounding (it only multiplies and adds; |a| <= 1 keeps every product
    bounded). The backward is the adjoint recurrence, itself one reverse doubling scan (_LinearScan): it
    keeps a, h0 and the states, and supports first derivatives only.
    """
    a = a.expand(b.shape[0], *a.shape[1:]) if a.dim() == b.dim() else a.expand_as(b)
    return _LinearScan.apply(a, b, h0)


class Block(nn.Module):
    """One layer of a zoo core on the residual stream of width ``width``: a recurrence and its mixing.

    Subclasses implement ``state_shapes`` and ``run``; ``own_timescales`` where the recurrence is fixed.
    """

    #: True while ``BlockCore.transitions`` or ``decays`` runs the block: a block whose transitions cost
    #: more than its recurrence (Mamba's [T, B, E, N], which its scan never stores) computes them only then
    #: and returns None from ``run`` otherwise; the others return them always.
    recording: bool = False

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the block's state tensors for one sequence."""
        raise NotImplementedError

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, torch.Tensor | None]:
        """u [T, B, D] -> (out [T, B, D], final state, transitions): the signed real transition eigenvalues
        a_t [T, B, U] of its units where the recurrence depends on the input (U as the block says), else None."""
        raise NotImplementedError

    def decays(self, transitions: torch.Tensor) -> torch.Tensor:
        """|a_t| per unit from ``run``'s transitions: the decays the timescale analysis averages."""
        return transitions.abs()

    def own_timescales(self) -> torch.Tensor | None:
        """-1/ln|lambda_i| per unit of a fixed diagonal recurrence; None for input-dependent ones."""
        return None

    def residual(self, u: torch.Tensor, norm: nn.Module, state: BlockState
                 ) -> tuple[torch.Tensor, BlockState, torch.Tensor | None]:
        """The residual stream after this block, u + run(norm(u)), with run's final state and transitions.

        A block with more than one residual sublayer (a transformer layer) extends this.
        """
        out, final, transitions = self.run(norm(u), state)
        return u + out, final, transitions


class BlockCore(Core):
    """A zoo core: embedding, ``layers`` pre-norm residual blocks of ``block_type``, final norm (``norm_layer``).

    Subclasses set ``kind`` and ``block_type`` and declare their block's options in ``block_options``
    (name -> default); ``__init__`` takes exactly those as keyword arguments, plus ``layers`` and
    ``generator``.
    """

    block_type: type[Block]
    block_options: dict[str, Any] = {}
    #: The pre-norms' and the final norm's type, called with the width.
    norm_layer: Callable[[int], nn.Module] = nn.LayerNorm

    def __init__(self, input_size: int, hidden_size: int, *, layers: int = 1,
                 generator: torch.Generator | None = None, **options: Any) -> None:
        super().__init__(input_size, hidden_size)
        unknown = sorted(set(options) - set(self.block_options))
        if unknown:
            raise TypeError(f"core {self.kind!r} got unexpected options {unknown}; its options are "
                            f"{['layers', *self.block_options]}")
        options = {**self.block_options, **options}
        if "eigenvalues" in options:
            choice("eigenvalues", options["eigenvalues"], EIGENVALUES)
        self.layers = positive_int("layers", layers)
        self._options.update(layers=layers, **options)
        self.embed = linear(input_size, hidden_size, generator)
        self.norms = nn.ModuleList(self.norm_layer(hidden_size) for _ in range(layers))
        self.blocks = nn.ModuleList(self.block_type(hidden_size, generator=generator, **options)
                                    for _ in range(layers))
        self.norm_out = self.norm_layer(hidden_size)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(shape for block in self.blocks for shape in block.state_shapes())

    @property
    def state_tensors(self) -> int:  # type: ignore[override]
        return len(self.state_shapes())

    def _block_states(self, state: State) -> list[BlockState]:
        parts, out = self.state_parts(state), []
        for block in self.blocks:
            count = len(block.state_shapes())
            out.append(tuple(parts[:count]))
            parts = parts[count:]
        return out

    def _run_blocks(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State, list[torch.Tensor | None]]:
        u = self.embed(x)
        finals: list[torch.Tensor] = []
        transitions = []
        for norm, block, block_state in zip(self.norms, self.blocks, self._block_states(state)):
            u, final, block_transitions = block.residual(u, norm, block_state)
            finals += final
            transitions.append(block_transitions)
        return self.norm_out(u), (finals[0] if len(finals) == 1 else tuple(finals)), transitions

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        hidden, final, _ = self._run_blocks(x, state)
        return hidden, final

    def own_timescales(self) -> torch.Tensor | None:
        """Every block's fixed-recurrence timescales, concatenated in layer order (None if input-dependent)."""
        parts = [block.own_timescales() for block in self.blocks]
        return None if any(p is None for p in parts) else torch.cat(parts)

    def _recorded(self, x: torch.Tensor, state: State | None) -> list[torch.Tensor] | None:
        """Every block's transitions on x (``Block.recording`` set while they run), or None if one is fixed."""
        for block in self.blocks:
            block.recording = True
        try:
            _, _, transitions = self._run_blocks(x, self._prepare(x, state))
        finally:
            for block in self.blocks:
                block.recording = False
        return None if any(t is None for t in transitions) else transitions  # type: ignore[return-value]

    def transitions(self, x: torch.Tensor, state: State | None = None) -> torch.Tensor | None:
        """The signed transition eigenvalues a_t of every input-dependent recurrent unit of every block,
        [T, B, U] in layer order (None if a block's recurrence is fixed): a_t < 0 flips a unit's state."""
        transitions = self._recorded(x, state)
        if transitions is None:
            return None
        return torch.cat([t.reshape(t.shape[0], t.shape[1], -1) for t in transitions], dim=2)

    def decays(self, x: torch.Tensor, state: State | None = None) -> torch.Tensor | None:
        """|a_t| of every input-dependent recurrent unit of every block, [T, B, U] (None if fixed)."""
        transitions = self._recorded(x, state)
        if transitions is None:
            return None
        decays = [block.decays(t) for block, t in zip(self.blocks, transitions)]
        return torch.cat([d.reshape(d.shape[0], d.shape[1], -1) for d in decays], dim=2)

    @classmethod
    def min_parameters(cls, config: dict[str, Any]) -> int | None:
        hidden, layers = config.get("hidden_size"), config.get("layers", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (hidden, layers)):
            return None
        return layers * hidden * hidden  # every block holds at least one [H, H] projection


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[T, B, heads * d] -> [T, B, heads, d]."""
    return x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)


def check_divides(name: str, value: int, width: int) -> int:
    """``value`` (a positive int) if it divides ``width``, else ValueError naming it."""
    positive_int(name, value)
    if width % value:
        raise ValueError(f"{name} must divide hidden_size {width}, got {value}")
    return value


__all__ = ["EIGENVALUES", "Block", "BlockCore", "BlockState", "CausalConv", "check_divides", "conv_kernel", "linear",
           "linear_scan", "signed", "split_heads"]
