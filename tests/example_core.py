"""An external recurrent core, outside ``agents``, that follows ``agents.protocol``.

It proves that a researcher's own cell plugs into the trainer and the benchmark by import path:
``memory-envs benchmark --cores leaky,example_core:ElmanCore`` (with this folder on PYTHONPATH).
"""

from __future__ import annotations

import torch
from torch import nn


class ElmanCore(nn.Module):
    """A plain tanh RNN, h_t = tanh(W_in x_t + W h_{t-1} + b), with torch's fused nn.RNN kernel."""

    def __init__(self, input_size: int, hidden_size: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.rnn = nn.RNN(input_size, hidden_size)
        bound = hidden_size ** -0.5
        with torch.no_grad():
            for p in self.rnn.parameters():
                p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=generator))

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.rnn.weight_hh_l0.new_zeros(batch_size, self.hidden_size)  # on the core's device

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = self.initial_state(x.shape[1])
        hidden, final = self.rnn(x, state.unsqueeze(0))
        return hidden, final[0]


class NotACore(nn.Module):
    """Lacks initial_state: the protocol check must reject it."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor, state=None):
        return x, state


class BrokenCore(ElmanCore):
    """Builds like ElmanCore but fails at the first forward pass: a run of a grid that raises."""

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise RuntimeError("BrokenCore cannot run")
