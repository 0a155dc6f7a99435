"""Recurrent cores with a per-neuron time constant tau: LeakyRNN (SPEC 3), LeakyGRU, LeakyLSTM.

All cores share one interface:

- ``forward(x [T, B, F], state=None) -> (hidden [T, B, H], final_state)``
- ``step(x [B, F], state=None) -> (h [B, H], state)`` for RL and streaming evaluation
- ``initial_state(batch_size, generator=None)``; state is a tensor [B, H] for LeakyRNN and
  LeakyGRU, and a tuple (h, c) of two [B, H] tensors for LeakyLSTM
- ``tau``: the effective time constant tau' per neuron, a tensor [H]
- ``to_config()`` / ``from_config()`` to rebuild a core (weights excluded)

A state of None means ``initial_state(B)`` drawn from the global torch (CPU) RNG. Inputs and
states must be on the core's device: anything else is a ValueError naming the tensor and both
devices, raised before any kernel runs.

Several cores of one kind and size run side by side in one recurrence (``run_side_by_side``: the RL
policy's actor and critic, a population's members). The module is one concept past ~400 lines on
purpose: each core's solo run and its grouped run are methods of the same class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
from torch import nn
from torch.nn import functional as F

from ._leaky_gated_kernel import leaky_gru_recurrence, leaky_lstm_recurrence
from ._leaky_rnn_kernel import ACTIVATIONS, group_projection, leaky_recurrence
from ._validate import check_same_device, choice, draw_device, positive_int, uniform_
from .protocol import build_external_core, is_import_path
from .tau import TauInit, TimeConstant, check_tau_init

State = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
Group = tuple[list[torch.Tensor], Optional[list[torch.Tensor]]]
"""A group's state trajectories [T + 1, G, B, H] (h, or h and c) and, if the kernel gives them, each
network's states at its own last step [G, B, H]."""
INITIAL_STATES = ("random", "zero")
VARIANTS = ("standard", "mod")
#: The paper's random initial state: h0 = H0_SCALE * U(0, 1) per unit.
H0_SCALE = 0.1
#: [B, H] tensors per time step a tau-leaky GRU/LSTM loop keeps or builds (gates, states, gradients).
GATED_TENSORS_PER_STEP = 20
#: On CPU, the most bytes of such tensors one side-by-side group of gated cores should span.
CPU_GROUP_BYTES = 2 * 2**20


class Core(nn.Module):
    """Shared part of the cores: options, tau, initial state, input checks, config."""

    kind: str = ""
    state_tensors: int = 1

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
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        lo, hi = check_tau_init(tau_init)
        self.h0 = choice("h0", h0, INITIAL_STATES)
        self.time_constant = TimeConstant(hidden_size, (lo, hi), train_tau, tau_param, generator)
        self._options: dict[str, Any] = {
            "tau_init": lo if lo == hi else [lo, hi],
            "train_tau": bool(train_tau),
            "tau_param": tau_param,
            "h0": h0,
        }

    @property
    def tau(self) -> torch.Tensor:
        """Effective time constant tau' per neuron, [H]."""
        return self.time_constant.value()

    def _reference(self) -> torch.Tensor:
        return self.time_constant.raw

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> State:
        """h0 = 0.1 * U(0, 1) per unit (option h0="random", drawn from `generator`, default the global
        CPU RNG) or zeros, on the core's device."""
        positive_int("batch_size", batch_size)
        ref = self._reference()
        parts = []
        for _ in range(self.state_tensors):
            if self.h0 == "zero":
                parts.append(ref.new_zeros(batch_size, self.hidden_size))
            else:  # drawn on the generator's device (the CPU for the run's generators), then moved
                draw = torch.rand(batch_size, self.hidden_size, generator=generator, device=draw_device(generator))
                parts.append(draw.to(device=ref.device, dtype=ref.dtype).mul_(H0_SCALE))
        return parts[0] if self.state_tensors == 1 else tuple(parts)

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
        parts = (state,) if self.state_tensors == 1 else state
        if (
            not isinstance(parts, tuple)
            or len(parts) != self.state_tensors
            or not all(isinstance(p, torch.Tensor) for p in parts)
            or any(p.shape != (batch_size, self.hidden_size) for p in parts)
        ):
            what = "a tensor" if self.state_tensors == 1 else "a tuple (h, c) of tensors"
            raise ValueError(f"state must be {what} of shape [{batch_size}, {self.hidden_size}]")

    def check_devices(self, x: torch.Tensor, state: State) -> None:
        """ValueError naming the tensor and both devices unless x and every state tensor are on the
        core's device (checked before any kernel runs, where a mix would fail deep inside one)."""
        device = self._reference().device
        check_same_device("x", x, device)
        names = ("state",) if self.state_tensors == 1 else ("state h", "state c")
        for name, part in zip(names, (state,) if self.state_tensors == 1 else state):
            check_same_device(name, part, device)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Run over x [T, B, F]; returns hidden [T, B, H] and the final state."""
        self._check_input(x, 3)
        if state is None:
            state = self.initial_state(x.shape[1])
        else:
            self._check_state(state, x.shape[1])
        self.check_devices(x, state)
        return self._run(x, state)

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One time step on x [B, F]; returns h [B, H] and the new state."""
        self._check_input(x, 2)
        hidden, state = self.forward(x.unsqueeze(0), state)
        return hidden[0], state

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def groups_with(self, cores: Sequence[nn.Module]) -> bool:
        """True when this core and `cores` can run as one batched recurrence (run_side_by_side)."""
        return False

    def group_limit(self, steps: int, batch_size: int) -> int | None:
        """The most cores of this kind that one batched loop should hold for inputs [steps, batch_size]
        on this core's device (None: no limit)."""
        return None

    def to_config(self) -> dict[str, Any]:
        """Everything `make_core` needs to rebuild this core (weights excluded)."""
        return {"kind": self.kind, "input_size": self.input_size, "hidden_size": self.hidden_size,
                **self._options}

    @staticmethod
    def from_config(config: dict[str, Any]) -> nn.Module:
        """Rebuild a core (freshly initialised) from `to_config()` output."""
        return make_core(**config)

    @property
    def config(self) -> dict[str, Any]:
        return self.to_config()


class LeakyRNN(Core):
    """The paper's leaky RNN (SPEC 3), per neuron i with alpha_i = 1 / tau_i':

    - variant "standard": h_t = phi((1 - alpha) h_{t-1} + alpha (W h_{t-1} + b + W_in x_t + b_in))
    - variant "mod":      h_t = (1 - alpha) h_{t-1} + alpha phi(W h_{t-1} + b + W_in x_t + b_in)

    Without self-connections (the default) the diagonal of W is multiplied by a zero mask buffer in
    every forward, so it has no effect and receives no gradient. The time loop runs in a custom
    autograd Function (agents._leaky_rnn_kernel) with alpha folded into the recurrent matrix.
    """

    kind = "leaky"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        variant: str = "standard",
        activation: str = "leaky_relu",
        self_connections: bool = False,
        tau_init: TauInit = (1.0, 2.0),
        train_tau: bool = True,
        tau_param: str = "clamp",
        h0: str = "random",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, tau_init=tau_init, train_tau=train_tau,
                         tau_param=tau_param, h0=h0, generator=generator)
        self.variant = choice("variant", variant, VARIANTS)
        self.activation = choice("activation", activation, ACTIVATIONS)
        self.self_connections = bool(self_connections)
        self._options.update(variant=variant, activation=activation,
                             self_connections=self.self_connections)
        # nn.Linear's default distribution, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from `generator`.
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        for p, fan_in in ((self.weight_ih, input_size), (self.bias_ih, input_size),
                          (self.weight_hh, hidden_size), (self.bias_hh, hidden_size)):
            bound = 1.0 / math.sqrt(fan_in)
            uniform_(p, -bound, bound, generator)
        mask = None if self.self_connections else 1.0 - torch.eye(hidden_size)
        self.register_buffer("mask", mask, persistent=False)
        if mask is not None:  # once, so the stored W shows the zero diagonal too; it gets no gradient
            with torch.no_grad():
                self.weight_hh.mul_(mask)

    def recurrent_weight(self) -> torch.Tensor:
        """W as used in the forward (diagonal masked to zero unless self_connections)."""
        return self.weight_hh if self.mask is None else self.weight_hh * self.mask

    def _run(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return member_results(self._run_group([self], [x], [state]), [x.shape[0]])[0]

    def groups_with(self, cores: Sequence[nn.Module]) -> bool:
        """True when `cores` can run side by side with this one: LeakyRNNs of the same hidden size,
        variant and activation (weights, biases, tau and self-connections may differ)."""
        return all(type(c) is LeakyRNN and c.hidden_size == self.hidden_size and c.variant == self.variant
                   and c.activation == self.activation for c in cores)

    @staticmethod
    def _run_group(cores: Sequence["LeakyRNN"], xs: Sequence[torch.Tensor], states: Sequence[torch.Tensor]
                   ) -> Group:
        """The trajectory hs [T + 1, G, B, H] of G LeakyRNNs over xs [T_g, B, F] (T the longest T_g), and
        each one's state at its own last step."""
        alphas = [1.0 / c.tau for c in cores]
        biases = [c.bias_ih + c.bias_hh for c in cores]
        if cores[0].variant == "standard":
            # alpha goes into the small weights, not the [T, B, H] activity:
            # h @ m + v == (1 - alpha) h + alpha (W h + W_in x + b)
            m = _stack([c.recurrent_weight().t() * a + torch.diag(1.0 - a) for c, a in zip(cores, alphas)])
            v = _project(xs, [c.weight_ih * a[:, None] for c, a in zip(cores, alphas)],
                         [b * a for b, a in zip(biases, alphas)])
            hs, last = leaky_recurrence(v, _stack(states), m, cores[0].activation, lengths=_lengths(xs))
            return [hs], [last]
        v = _project(xs, [c.weight_ih for c in cores], biases)
        m = _stack([c.recurrent_weight().t() for c in cores])
        leak, scale = _stack([1.0 - a for a in alphas]).unsqueeze(1), _stack(alphas).unsqueeze(1)
        hs, last = leaky_recurrence(v, _stack(states), m, cores[0].activation, leak, scale, _lengths(xs))
        return [hs], [last]


class _LeakyTorchRNN(Core):
    """A tau-leak around one layer of torch's nn.GRU / nn.LSTM, whose weights both paths use.

    h_t = (1 - 1/tau') h_{t-1} + (1/tau') cell(x_t, h_{t-1}) (for the LSTM on h and c). When tau is
    fixed at 1 the forward is the nn module itself over the whole sequence (torch's fused kernels);
    otherwise the time loop is a custom autograd Function (agents._leaky_gated_kernel), which can run
    several cores of one kind side by side (run_side_by_side).
    """

    module_type: type[nn.RNNBase]

    def __init__(self, input_size: int, hidden_size: int, *, tau_init: TauInit = (1.0, 2.0),
                 train_tau: bool = True, tau_param: str = "clamp", h0: str = "random",
                 generator: torch.Generator | None = None) -> None:
        super().__init__(input_size, hidden_size, tau_init=tau_init, train_tau=train_tau,
                         tau_param=tau_param, h0=h0, generator=generator)
        self.rnn = self.module_type(input_size, hidden_size)
        bound = 1.0 / math.sqrt(hidden_size)  # torch's default distribution, from `generator`
        for p in self.rnn.parameters():
            uniform_(p, -bound, bound, generator)

    def is_plain(self) -> bool:
        """True when tau is fixed at 1, i.e. the core is exactly torch's module."""
        return not self.time_constant.trainable and bool((self.time_constant.raw == 1).all())

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if self.is_plain():
            return self._run_module(x, state)
        return member_results(self._run_group([self], [x], [state]), [x.shape[0]])[0]

    def groups_with(self, cores: Sequence[nn.Module]) -> bool:
        """True when `cores` can run side by side with this one: cores of this kind and hidden size,
        none with tau fixed at 1 (those run torch's fused module)."""
        return all(type(c) is type(self) and c.hidden_size == self.hidden_size and not c.is_plain()
                   for c in cores)

    def group_limit(self, steps: int, batch_size: int) -> int | None:
        """On CUDA no limit. On CPU as many cores as keep the loops' whole-sequence tensors (about
        GATED_TENSORS_PER_STEP [B, H] per step and core) within CPU_GROUP_BYTES: the backward's passes
        over them fall out of cache beyond it (8 GRUs side by side at batch 256, 64 units, N=5 train at
        0.6x the speed of one after the other), while small groups (an RL policy's actor and critic on
        minibatches) gain from sharing the loop."""
        if self._reference().device.type != "cpu":
            return None
        per_core = GATED_TENSORS_PER_STEP * steps * batch_size * self.hidden_size * self._reference().element_size()
        return max(1, CPU_GROUP_BYTES // per_core)

    def _run_module(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    @staticmethod
    def _run_group(cores: Sequence[Any], xs: Sequence[torch.Tensor], states: Sequence[Any]) -> Group:
        raise NotImplementedError


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


class LeakyGRU(_LeakyTorchRNN):
    """GRU with a per-neuron tau-leak; state is a tensor [B, H]."""

    kind = "gru"
    module_type = nn.GRU

    def _run_module(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, h_n = self.rnn(x, state.unsqueeze(0))
        return out, h_n[0]

    @staticmethod
    def _run_group(cores: Sequence["LeakyGRU"], xs: Sequence[torch.Tensor], states: Sequence[torch.Tensor]
                   ) -> Group:
        rnns = [c.rnn for c in cores]
        gi = _project(xs, [r.weight_ih_l0 for r in rnns], [r.bias_ih_l0 for r in rnns])
        hs = leaky_gru_recurrence(gi, _stack(states), _stack([r.weight_hh_l0 for r in rnns]).transpose(1, 2),
                                  _stack([r.bias_hh_l0 for r in rnns]).unsqueeze(1),
                                  _stack([1.0 / c.tau for c in cores]).unsqueeze(1), _lengths(xs))
        return [hs], None


class LeakyLSTM(_LeakyTorchRNN):
    """LSTM with a per-neuron tau-leak on both h and c; state is a tuple (h, c) of [B, H]."""

    kind = "lstm"
    module_type = nn.LSTM
    state_tensors = 2

    def _run_module(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out, (h_n, c_n) = self.rnn(x, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
        return out, (h_n[0], c_n[0])

    @staticmethod
    def _run_group(cores: Sequence["LeakyLSTM"], xs: Sequence[torch.Tensor],
                   states: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Group:
        rnns = [c.rnn for c in cores]
        gi = _project(xs, [r.weight_ih_l0 for r in rnns], [r.bias_ih_l0 + r.bias_hh_l0 for r in rnns])
        hs, cs = leaky_lstm_recurrence(gi, _stack([s[0] for s in states]), _stack([s[1] for s in states]),
                                       _stack([r.weight_hh_l0 for r in rnns]).transpose(1, 2),
                                       _stack([1.0 / c.tau for c in cores]).unsqueeze(1), _lengths(xs))
        return [hs, cs], None


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
    equal running it alone. Other cores (external ones included) run one after the other, and groups
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


CORES: dict[str, type[Core]] = {"leaky": LeakyRNN, "gru": LeakyGRU, "lstm": LeakyLSTM}
KINDS = ("leaky", "leaky_mod", "gru", "lstm")


def make_core(kind: str, input_size: int, hidden_size: int, **options: Any) -> nn.Module:
    """Build a core by name: "leaky", "leaky_mod" (LeakyRNN with variant="mod"), "gru", "lstm",
    or an external core by import path "package.module:ClassName" (see agents.protocol)."""
    if is_import_path(kind):
        return build_external_core(kind, input_size, hidden_size, **options)
    choice("kind", kind, KINDS)
    if kind == "leaky_mod":
        kind, options = "leaky", {**options, "variant": "mod"}
    return CORES[kind](input_size, hidden_size, **options)
