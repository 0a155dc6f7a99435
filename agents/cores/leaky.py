"""The paper's leaky RNN (section 3 of Khajehabdollahi et al., ICLR 2024; docs/agents.md), per neuron i with
alpha_i = 1 / tau_i', tau_i' = max(tau_i, 1):

- variant "standard": h_t = phi((1 - alpha) h_{t-1} + alpha (W h_{t-1} + b + W_in x_t + b_in))
- variant "mod":      h_t = (1 - alpha) h_{t-1} + alpha phi(W h_{t-1} + b + W_in x_t + b_in)

Its solo run and its grouped run (several LeakyRNNs side by side, ``run_side_by_side``) are one
method, ``_run_group``, over the custom autograd kernel in agents._leaky_rnn_kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._leaky_rnn_kernel import ACTIVATIONS, leaky_recurrence
from .._validate import choice, uniform_
from ..tau import TauInit
from .base import Group, TauCore, _lengths, _project, _stack, member_results

VARIANTS = ("standard", "mod")


class LeakyRNN(TauCore):
    """The paper's leaky RNN (docs/agents.md), per neuron i with alpha_i = 1 / tau_i':

    - variant "standard": h_t = phi((1 - alpha) h_{t-1} + alpha (W h_{t-1} + b + W_in x_t + b_in))
    - variant "mod":      h_t = (1 - alpha) h_{t-1} + alpha phi(W h_{t-1} + b + W_in x_t + b_in)

    Without self-connections (the default) the diagonal of W is multiplied by a zero mask buffer in
    every forward, so it has no effect and receives no gradient. The time loop runs in a custom
    autograd Function (agents._leaky_rnn_kernel) with alpha folded into the recurrent matrix.
    """

    kind = "leaky"
    weight_matrices = 1

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


