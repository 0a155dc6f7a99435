"""GRU and LSTM with a per-neuron tau-leak around torch's cell (docs/agents.md):
h_t = (1 - 1/tau') h_{t-1} + (1/tau') cell(x_t, h_{t-1}), for the LSTM on both h and c.

With tau fixed at 1 a core is exactly torch's nn.GRU / nn.LSTM and runs its fused kernels; otherwise
the time loop is the custom autograd Function of agents._leaky_gated_kernel, which also runs several
cores of one kind side by side (``run_side_by_side``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._leaky_gated_kernel import leaky_gru_recurrence, leaky_lstm_recurrence
from .._validate import uniform_
from ..tau import TauInit
from .base import Group, State, TauCore, _lengths, _project, _stack, member_results

#: [B, H] tensors per time step a tau-leaky GRU/LSTM loop keeps or builds (gates, states, gradients).
GATED_TENSORS_PER_STEP = 20
#: On CPU, the most bytes of such tensors one side-by-side group of gated cores should span.
CPU_GROUP_BYTES = 2 * 2**20


class _LeakyTorchRNN(TauCore):
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


class LeakyGRU(_LeakyTorchRNN):
    """GRU with a per-neuron tau-leak; state is a tensor [B, H]."""

    kind = "gru"
    weight_matrices = 3
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
    weight_matrices = 4
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


