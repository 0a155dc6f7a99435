"""The frame the architecture zoo's cores share: an input embedding, ``layers`` residual blocks, a
final LayerNorm, and the parallel linear scan their diagonal recurrences run on.

A zoo core (``BlockCore``) computes, for inputs x [T, B, F],

    u_0 = W_emb x_t + b_emb,   u_l = u_{l-1} + Block_l(LayerNorm_l(u_{l-1})),   hidden = LayerNorm(u_L)

where each ``Block`` is one architecture's recurrence followed by the mixing its paper puts after it
(a GLU, an MLP, a gated output projection), so that a linear readout can read a non-linear function
such as parity from ``hidden``. The state is every block's state tensors in layer order; zeros are the
zero state (what the RL policy resets to at episode starts). Parameters are drawn from the
``generator`` the caller gives, on its device, then moved (docs/agents.md#devices).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
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


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """All states of h_t = a_t * h_{t-1} + b_t (elementwise, real or complex) for t = 1..T: a and b [T, ...]
    (a broadcastable to b), h0 [...]; returns [T, ...].

    A Hillis-Steele doubling scan: ceil(log2 T) rounds of whole-sequence products instead of T small
    steps, exact up to float rounding (it only multiplies and adds; |a| <= 1 keeps every product
    bounded). The backward keeps about 2 log2(T) tensors of b's size.
    """
    a = a.expand_as(b)
    x = torch.cat(((a[0] * h0 + b[0]).unsqueeze(0), b[1:]))
    steps = x.shape[0]
    shift = 1
    while shift < steps:
        x = torch.cat((x[:shift], a[shift:] * x[:-shift] + x[shift:]))
        if 2 * shift < steps:
            a = torch.cat((a[:shift], a[shift:] * a[:-shift]))
        shift *= 2
    return x


class Block(nn.Module):
    """One layer of a zoo core on the residual stream of width ``width``: a recurrence and its mixing.

    Subclasses implement ``state_shapes`` and ``run``; ``own_timescales`` where the recurrence is fixed.
    """

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the block's state tensors for one sequence."""
        raise NotImplementedError

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, torch.Tensor | None]:
        """u [T, B, D] -> (out [T, B, D], final state, |a_t| [T, B, U] of its units where the decay depends
        on the input, else None)."""
        raise NotImplementedError

    def own_timescales(self) -> torch.Tensor | None:
        """-1/ln|lambda_i| per unit of a fixed diagonal recurrence; None for input-dependent ones."""
        return None

    def residual(self, u: torch.Tensor, norm: nn.Module, state: BlockState
                 ) -> tuple[torch.Tensor, BlockState, torch.Tensor | None]:
        """The residual stream after this block, u + run(norm(u)), with run's final state and decays.

        A block with more than one residual sublayer (a transformer layer) extends this.
        """
        out, final, decay = self.run(norm(u), state)
        return u + out, final, decay


class BlockCore(Core):
    """A zoo core: embedding, ``layers`` pre-norm residual blocks of ``block_type``, final LayerNorm.

    Subclasses set ``kind`` and ``block_type`` and declare their block's options in ``block_options``
    (name -> default); ``__init__`` takes exactly those as keyword arguments, plus ``layers`` and
    ``generator``.
    """

    block_type: type[Block]
    block_options: dict[str, Any] = {}

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
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(layers))
        self.blocks = nn.ModuleList(self.block_type(hidden_size, generator=generator, **options)
                                    for _ in range(layers))
        self.norm_out = nn.LayerNorm(hidden_size)

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(shape for block in self.blocks for shape in block.state_shapes())

    @property
    def state_tensors(self) -> int:  # type: ignore[override]
        return len(self.state_shapes())

    def _block_states(self, state: State) -> list[BlockState]:
        parts, out = self._parts(state), []
        for block in self.blocks:
            count = len(block.state_shapes())
            out.append(tuple(parts[:count]))
            parts = parts[count:]
        return out

    def _run_blocks(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State, list[torch.Tensor | None]]:
        u = self.embed(x)
        finals: list[torch.Tensor] = []
        decays = []
        for norm, block, block_state in zip(self.norms, self.blocks, self._block_states(state)):
            u, final, decay = block.residual(u, norm, block_state)
            finals += final
            decays.append(decay)
        return self.norm_out(u), (finals[0] if len(finals) == 1 else tuple(finals)), decays

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        hidden, final, _ = self._run_blocks(x, state)
        return hidden, final

    def own_timescales(self) -> torch.Tensor | None:
        """Every block's fixed-recurrence timescales, concatenated in layer order (None if input-dependent)."""
        parts = [block.own_timescales() for block in self.blocks]
        return None if any(p is None for p in parts) else torch.cat(parts)

    def decays(self, x: torch.Tensor, state: State | None = None) -> torch.Tensor | None:
        """|a_t| of every input-dependent recurrent unit of every block, [T, B, U] (None if fixed)."""
        self._check_input(x, 3)
        state = self.initial_state(x.shape[1]) if state is None else state
        self._check_state(state, x.shape[1])
        self.check_devices(x, state)
        _, _, decays = self._run_blocks(x, state)
        if any(d is None for d in decays):
            return None
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


__all__ = ["EIGENVALUES", "Block", "BlockCore", "BlockState", "check_divides", "linear", "linear_scan", "signed",
           "split_heads"]
