"""A recurrent core plus one readout Linear(H, 2) per N, keyed by N (not by list position)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import skip_init

from ._validate import uniform_
from .cores import Core, State
from .protocol import check_core, core_config

Logits = dict[int, torch.Tensor]


class MultiHeadModel(nn.Module):
    """`core` followed by readout heads; `heads` are the Ns scored (one Linear(H, classes) each).

    Readouts live in an nn.ModuleDict keyed by str(N), so a head keeps its weights (and checkpoint
    name ``heads.<N>.weight``) whatever order heads are added in. ``classes`` is 2 for the windowed
    tasks; running parity mod k has one head, N = 0 (no window), with k classes.
    """

    def __init__(self, core: Core, heads: Sequence[int] = (), generator: torch.Generator | None = None,
                 classes: int = 2) -> None:
        super().__init__()
        check_core(core)
        self.core = core
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
            raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
        self.classes = classes
        self.heads = nn.ModuleDict()
        for n in heads:
            self.add_head(n, generator)

    @property
    def ns(self) -> list[int]:
        """The Ns that have a readout, in the order they were added."""
        return [int(k) for k in self.heads]

    @property
    def tau(self) -> torch.Tensor:
        """Effective time constant tau' per neuron of the core, [H]."""
        return self.core.tau

    def add_head(self, n: int, generator: torch.Generator | None = None) -> nn.Linear:
        """Add the readout for N = n (0: running parity's whole-sequence head) on the core's device and dtype
        (nn.Linear's default distribution, drawn from `generator` on its device, the CPU for the run's
        generators, then moved)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an integer >= 0 (0: the whole sequence), got {n!r}")
        if str(n) in self.heads:
            raise ValueError(f"head N={n} already exists; heads: {self.ns}")
        ref = next(self.core.parameters())
        # skip_init: no draw from the global RNG of any device, so CPU and GPU runs stay in step
        head = skip_init(nn.Linear, self.core.hidden_size, self.classes, device=ref.device, dtype=ref.dtype)
        bound = 1.0 / math.sqrt(self.core.hidden_size)
        uniform_(head.weight, -bound, bound, generator)
        uniform_(head.bias, -bound, bound, generator)
        self.heads[str(n)] = head
        return head

    def head(self, n: int) -> nn.Linear:
        """The readout for N = n; KeyError naming n and the existing heads if there is none."""
        try:
            return self.heads[str(n)]
        except KeyError:
            raise KeyError(f"no head for N={n!r}; heads: {self.ns}") from None

    def readout(self, hidden: torch.Tensor, ns: Iterable[int] | None = None) -> Logits:
        """Logits {N: [..., 2]} of the hidden activity [..., H] for the heads `ns` (default all)."""
        ns = self.ns if ns is None else list(ns)
        return {n: self.head(n)(hidden) for n in ns}

    def forward(
        self,
        x: torch.Tensor,
        ns: Iterable[int] | None = None,
        every_step: bool = False,
        state: State | None = None,
        return_hidden: bool = False,
    ) -> Logits | tuple[Logits, torch.Tensor, State]:
        """Logits {N: [B, classes]} at the final step, or {N: [T, B, classes]} with `every_step`.

        With `return_hidden`, returns (logits, hidden [T, B, H], final_state) for analyses. Otherwise the
        final-step logits of a built-in core read ``Core.last`` (the same numbers and gradients as
        ``hidden[-1]``, without a backward through the whole trajectory's gradient).
        """
        if not (every_step or return_hidden) and isinstance(self.core, Core):
            last, final = self.core.last(x, state)  # no gradient of the whole trajectory
            return self.readout(last, ns)
        hidden, final = self.core(x, state)
        logits = self.readout(hidden if every_step else hidden[-1], ns)
        return (logits, hidden, final) if return_hidden else logits

    def hidden(self, x: torch.Tensor, state: State | None = None) -> torch.Tensor:
        """The core's hidden trajectory [T, B, H]."""
        return self.core(x, state)[0]

    def step(self, x: torch.Tensor, state: State | None = None, ns: Iterable[int] | None = None
             ) -> tuple[Logits, State]:
        """One step on x [B, F]: logits {N: [B, 2]} and the new state (RL, streaming evaluation)."""
        h, state = self.core.step(x, state)
        return self.readout(h, ns), state

    def to_config(self) -> dict[str, Any]:
        """Everything `from_config` needs to rebuild this model (weights excluded); ``classes`` only when not 2."""
        config: dict[str, Any] = {"core": core_config(self.core), "heads": self.ns}
        if self.classes != 2:
            config["classes"] = self.classes
        return config

    @property
    def config(self) -> dict[str, Any]:
        return self.to_config()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MultiHeadModel":
        """Rebuild a (freshly initialised) model from `to_config()` output."""
        return cls(Core.from_config(config["core"]), config["heads"], classes=config.get("classes", 2))
