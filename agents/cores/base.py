"""What every built-in core shares: the protocol's checks and state handling (``Core``), the
per-neuron time constant of the leaky cores (``TauCore``), and the grouped entry point
``run_side_by_side`` that runs several cores of one kind as one batched recurrence.

Every core has

- ``forward(x [T, B, F], state=None) -> (hidden [T, B, H], final_state)``
- ``step(x [B, F], state=None) -> (h [B, H], state)`` for RL and streaming evaluation
- ``initial_state(batch_size, generator=None)``: a tensor when the core has one state tensor, else a
  tuple of tensors, each [B, *shape] for the shapes ``state_shapes()`` lists (LeakyRNN and LeakyGRU: h
  [B, H]; LeakyLSTM: (h, c); the zoo's cores: whatever their recurrence carries)
- ``flatten_state`` / ``unflatten_state``: the state as one [B, state_size] tensor (the RL policy's
  buffers), zeros meaning the zero state
- ``to_config()`` / ``from_config()`` to rebuild a core (weights excluded)
- ``own_timescales()``, ``decays(x, state)``: the architecture's own per-unit timescale where it
  defines one (the analyses' ``own_timescale``; docs/analysis.md); ``transitions(x, state)``: the signed
  transition eigenvalues of an input-dependent recurrence (the analyses' ``transitions``)

A state of None means ``initial_state(B)`` (drawn from the global torch CPU RNG where it is random).
Inputs and states must be on the core's device: anything else is a ValueError naming the tensor and
both devices, raised before any kernel runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
from torch import nn
from torch.nn import functional as F

from .._leaky_rnn_kernel import group_projection
from .._validate import check_same_device, choice, draw_device, positive_int
from ..tau import TauInit, TimeConstant, check_tau_init

State = Union[torch.Tensor, tuple[torch.Tensor, ...]]
Group = tuple[list[torch.Tensor], Optional[list[torch.Tensor]]]
"""A group's state trajectories [T + 1, G, B, H] (h, or h and c) and, if the kernel gives them, each
network's states at its own last step [G, B, H]."""
INITIAL_STATES = ("random", "zero")
#: The paper's random initial state: h0 = H0_SCALE * U(0, 1) per unit.
H0_SCALE = 0.1


class Core(nn.Module):
    """The protocol's shared part: sizes, input and state checks, devices, ``step``, the flat state, config.

    A subclass sets ``kind``, implements ``_run(x, state)`` and, if its state is not one [B, H] tensor,
    ``state_shapes()``; the zero state is its default ``initial_state``.
    """

    kind: str = ""
    state_tensors: int = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self._options: dict[str, Any] = {}

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shape of each state tensor for one sequence (without the batch dimension)."""
        return tuple((self.hidden_size,) for _ in range(self.state_tensors))

    @property
    def state_size(self) -> int:
        """Numbers in one sequence's state: the width of ``flatten_state``."""
        return sum(math.prod(shape) for shape in self.state_shapes())

    def _reference(self) -> torch.Tensor:
        """A tensor with the core's device and dtype."""
        return next(self.parameters())

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> State:
        """The zero state for ``batch_size`` sequences on the core's device (``generator`` is unused here:
        cores with a random initial state override this)."""
        positive_int("batch_size", batch_size)
        ref = self._reference()
        parts = tuple(ref.new_zeros(batch_size, *shape) for shape in self.state_shapes())
        return parts[0] if len(parts) == 1 else parts

    def state_parts(self, state: State) -> tuple[torch.Tensor, ...]:
        """The state's tensors as a tuple (one tensor or a tuple of them, as ``state_shapes`` lists)."""
        return (state,) if self.state_tensors == 1 else tuple(state)

    def flatten_state(self, state: State) -> torch.Tensor:
        """The state as one [B, state_size] tensor."""
        parts = self.state_parts(state)
        return torch.cat([p.reshape(p.shape[0], -1) for p in parts], dim=1)

    def unflatten_state(self, flat: torch.Tensor) -> State:
        """Inverse of ``flatten_state``: flat [B, state_size] -> the core's state."""
        if flat.dim() != 2 or flat.shape[1] != self.state_size:
            raise ValueError(f"flat state must have shape [B, {self.state_size}], got {tuple(flat.shape)}")
        parts, start = [], 0
        for shape in self.state_shapes():
            size = math.prod(shape)
            parts.append(flat[:, start: start + size].reshape(flat.shape[0], *shape))
            start += size
        return parts[0] if len(parts) == 1 else tuple(parts)

    def _check_input(self, x: torch.Tensor, dims: int) -> None:
        shape = "[T, B, F]" if dims == 3 else "[B, F]"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor {shape}, got {type(x).__name__}")
        if x.dim() != dims or x.shape[-1] != self.input_size or 0 in x.shape:
            raise ValueError(
                f"x must have shape {shape} with F == input_size == {self.input_size} and "
                f"non-empty T and B, got {tuple(x.shape)}"
            )
        if x.dtype != self._reference().dtype:
            raise TypeError(f"x must have dtype {self._reference().dtype} like the core, got {x.dtype}")

    def _check_state(self, state: State, batch_size: int) -> None:
        shapes = self.state_shapes()
        parts = (state,) if len(shapes) == 1 else state
        if (
            not isinstance(parts, tuple)
            or len(parts) != len(shapes)
            or not all(isinstance(p, torch.Tensor) for p in parts)
            or any(tuple(p.shape) != (batch_size, *shape) for p, shape in zip(parts, shapes))
        ):
            expected = ", ".join(str([batch_size, *shape]) for shape in shapes)
            what = "a tensor" if len(shapes) == 1 else f"a tuple ({', '.join(self.state_names())}) of tensors"
            raise ValueError(f"state must be {what} of shape {expected}")

    def state_names(self) -> tuple[str, ...]:
        """Names of the state tensors in error messages."""
        if self.state_tensors == 1:
            return ("state",)
        return tuple(f"state[{i}]" for i in range(self.state_tensors))

    def check_devices(self, x: torch.Tensor, state: State) -> None:
        """ValueError naming the tensor and both devices unless x and every state tensor are on the
        core's device (checked before any kernel runs, where a mix would fail deep inside one)."""
        device = self._reference().device
        check_same_device("x", x, device)
        for name, part in zip(self.state_names(), self.state_parts(state)):
            check_same_device(name, part, device)

    def _prepare(self, x: torch.Tensor, state: State | None) -> State:
        """Check x [T, B, F] and the state (the initial state if None) and return the state."""
        self._check_input(x, 3)
        if state is None:
            state = self.initial_state(x.shape[1])
        else:
            self._check_state(state, x.shape[1])
        self.check_devices(x, state)
        return state

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Run over x [T, B, F]; returns hidden [T, B, H] and the final state."""
        return self._run(x, self._prepare(x, state))

    def last(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Run over x [T, B, F]; returns the hidden state at the last step [B, H] and the final state.

        Equal to ``forward``'s ``hidden[-1]`` and final state, gradients included, to the last bit; what a
        readout of the last step (the trainer's, through ``MultiHeadModel``) calls: the backward then builds
        no gradient of the whole trajectory [T, B, H] (zeros but at the last step) and its copies
        (benchmarks/bench_step_bound.py times a training step both ways)."""
        return run_side_by_side([self], [x], [self._prepare(x, state)], last_only=True)[0]

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One time step on x [B, F]; returns h [B, H] and the new state."""
        self._check_input(x, 2)
        hidden, state = self.forward(x.unsqueeze(0), state)
        return hidden[0], state

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def own_timescales(self) -> torch.Tensor | None:
        """The architecture's own timescale per recurrent unit where it follows from the weights alone
        (-1/ln|lambda| of a fixed diagonal recurrence); None for cores without one."""
        return None

    def decays(self, x: torch.Tensor, state: State | None = None) -> torch.Tensor | None:
        """|a_t| of every recurrent unit at every step [T, B, U] for recurrences whose decay a_t depends on
        the input (its mean over the analysis drive gives the own timescale); None for other cores."""
        return None

    def transitions(self, x: torch.Tensor, state: State | None = None) -> torch.Tensor | None:
        """The signed real transition eigenvalues a_t [T, B, U] of a recurrence whose transitions depend on
        the input (a_t < 0 flips a unit's state; ``decays`` is their size); None for other cores."""
        return None

    def groups_with(self, cores: Sequence[nn.Module]) -> bool:
        """True when this core and `cores` can run as one batched recurrence (run_side_by_side)."""
        return False

    def group_limit(self, steps: int, batch_size: int) -> int | None:
        """The most cores of this kind that one batched loop should hold for inputs [steps, batch_size]
        on this core's device (None: no limit)."""
        return None

    @classmethod
    def min_parameters(cls, config: dict[str, Any]) -> int | None:
        """A lower bound on the values the weights of a core built from ``config`` hold (checked against
        a checkpoint's weight file before anything is allocated); None where it is not known."""
        return None

    def to_config(self) -> dict[str, Any]:
        """Everything `make_core` needs to rebuild this core (weights excluded)."""
        return {"kind": self.kind, "input_size": self.input_size, "hidden_size": self.hidden_size,
                **self._options}

    @staticmethod
    def from_config(config: dict[str, Any]) -> nn.Module:
        """Rebuild a core (freshly initialised) from `to_config()` output."""
        from . import make_core

        return make_core(**config)

    @property
    def config(self) -> dict[str, Any]:
        return self.to_config()


class TauCore(Core):
    """A core with a per-neuron time constant tau' (the leaky RNN, GRU and LSTM): tau options, and the
    paper's random initial state h0 = 0.1 * U(0, 1) per unit (or zeros)."""

    #: Input and recurrent weight matrices of size [H, I] and [H, H] (the checkpoint size check).
    weight_matrices: int = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        tau_init: TauInit = (1.0, 2.0),
        train_tau: bool = True,
        tau_param: str = "clamp",
        h0: str = "random",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size)
        lo, hi = check_tau_init(tau_init)
        self.h0 = choice("h0", h0, INITIAL_STATES)
        self.time_constant = TimeConstant(hidden_size, (lo, hi), train_tau, tau_param, generator)
        self._options.update({
            "tau_init": lo if lo == hi else [lo, hi],
            "train_tau": bool(train_tau),
            "tau_param": tau_param,
            "h0": h0,
        })

    @property
    def tau(self) -> torch.Tensor:
        """Effective time constant tau' per neuron, [H]."""
        return self.time_constant.value()

    def _reference(self) -> torch.Tensor:
        return self.time_constant.raw

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> State:
        """h0 = 0.1 * U(0, 1) per unit (option h0="random", drawn from `generator`, default the global
        CPU RNG) or zeros, on the core's device."""
        if self.h0 == "zero":
            return super().initial_state(batch_size)
        positive_int("batch_size", batch_size)
        ref = self._reference()
        parts = []
        for _ in range(self.state_tensors):  # drawn on the generator's device (the CPU for the run's), then moved
            draw = torch.rand(batch_size, self.hidden_size, generator=generator, device=draw_device(generator))
            parts.append(draw.to(device=ref.device, dtype=ref.dtype).mul_(H0_SCALE))
        return parts[0] if self.state_tensors == 1 else tuple(parts)

    def state_names(self) -> tuple[str, ...]:
        return ("state",) if self.state_tensors == 1 else ("state h", "state c")

    @classmethod
    def min_parameters(cls, config: dict[str, Any]) -> int | None:
        hidden, inputs = config.get("hidden_size"), config.get("input_size")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (hidden, inputs)):
            return None
        return cls.weight_matrices * hidden * (hidden + inputs)


def _stack(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    return tensors[0].unsqueeze(dim) if len(tensors) == 1 else torch.stack(tensors, dim)


def _lengths(xs: Sequence[torch.Tensor]) -> list[int]:
    return [x.shape[0] for x in xs]


def _project(xs: Sequence[torch.Tensor], weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]
             ) -> torch.Tensor:
    """The input projections x_g W_g^T + b_g of G cores at once: xs [T_g, B, F], weights [K, F], biases [K]
    -> [T, G, B, K], T the longest T_g (inputs zero-padded at the end; see group_projection)."""
    longest = max(x.shape[0] for x in xs)
    padded = [x if x.shape[0] == longest else F.pad(x, (0, 0, 0, 0, 0, longest - x.shape[0])) for x in xs]
    x = _stack(padded).transpose(0, 1)  # laid out group by group, each core's steps contiguous
    return group_projection(x, _stack(weights), _stack(biases), _lengths(xs))


def member_results(group: Group, lengths: Sequence[int], last_only: bool = False) -> list[tuple[torch.Tensor, State]]:
    """Each core's (hidden [T_g, B, H], state at its step T_g) from a group's state trajectories
    [T + 1, G, B, H] (one per state tensor: h, or h and c) and, where the kernel gives them, the states at
    each core's last step [G, B, H] (else gathered here); with ``last_only``, hidden is only the last
    step's [B, H]. Each part comes from one unbind, so the backward collects every core's gradient in
    one node instead of G zero-filled copies of the group's trajectory."""
    trajectories, finals = group
    if finals is None:
        steps = torch.tensor(lengths, device=trajectories[0].device)
        groups = torch.arange(len(lengths), device=steps.device)
        finals = [trajectory[steps, groups] for trajectory in trajectories]
    parts = [final.unbind(0) for final in finals]
    states = parts[0] if len(parts) == 1 else list(zip(*parts))
    if last_only:
        return list(zip(parts[0], states))
    hidden = trajectories[0][1:].unbind(1)
    return [(hidden[g][:n], state) for g, (n, state) in enumerate(zip(lengths, states))]


def run_side_by_side(cores: Sequence[nn.Module], xs: Sequence[torch.Tensor], states: Sequence[State],
                     last_only: bool = False) -> list[tuple[torch.Tensor, State]]:
    """Run cores[g] over xs[g] [T_g, B, F] from states[g]; returns [(hidden [T_g, B, H], final_state)],
    or with ``last_only`` [(hidden at the last step [B, H], final_state)] (what a trainer reads out).

    The grouped entry point for every core kind: cores that ``groups_with`` each other (LeakyRNNs of
    one variant, activation and hidden size; tau-leaky GRUs or LSTMs of one hidden size) run as ONE
    batched recurrence with a leading group dimension, so G networks cost about the kernel launches of
    one (the population trainer, the RL policy's actor and critic). Inputs of different lengths run
    to the longest (their input projections zero-padded at the end); each core's hidden and final state
    are those of its own last step, and its gradients sum over its own steps, so outputs and gradients
    equal running it alone. Other cores (the zoo's, whose few whole-sequence operations gained nothing
    from batching on the CPU, docs/agents.md; external ones) run one after the other, and groups
    larger than the first core's ``group_limit`` run in chunks of that size.
    Only devices are checked (Core.check_devices): otherwise inputs must be what each core's
    ``forward`` accepts.
    """
    for core, x, state in zip(cores, xs, states):
        if isinstance(core, Core):
            core.check_devices(x, state)
    first = cores[0]
    if not (isinstance(first, Core) and first.groups_with(cores)):
        results = [core._run(x, state) if isinstance(core, Core) else core(x, state)
                   for core, x, state in zip(cores, xs, states)]
        return [(hidden[-1], state) for hidden, state in results] if last_only else results
    order = sorted(range(len(xs)), key=lambda g: -xs[g].shape[0])  # longest first, as the kernels want
    limit = first.group_limit(xs[order[0]].shape[0], xs[0].shape[1]) or len(order)
    results: list[Any] = [None] * len(xs)
    for start in range(0, len(order), limit):
        chunk = order[start : start + limit]
        group = type(first)._run_group(*([seq[g] for g in chunk] for seq in (cores, xs, states)))
        for g, result in zip(chunk, member_results(group, [xs[g].shape[0] for g in chunk], last_only)):
            results[g] = result
    return results


