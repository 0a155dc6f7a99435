"""Recurrent cores, built by name (``make_core``); one module per architecture family.

=============  ===================================  ======================================
kind           class                                module
=============  ===================================  ======================================
leaky          LeakyRNN (the paper's model)         agents/cores/leaky.py
leaky_mod      LeakyRNN(variant="mod")              agents/cores/leaky.py
gru, lstm      LeakyGRU, LeakyLSTM (tau-leaky)      agents/cores/gated.py
mingru         MinGRU (Feng et al. 2024)            agents/cores/selective.py
mamba          Mamba (Gu & Dao 2023, Mamba-1)       agents/cores/selective.py
deltanet       DeltaNet (Yang et al. 2024)          agents/cores/delta.py
deltaproduct   DeltaProduct (Siems et al. 2025)     agents/cores/delta.py
gated_deltanet GatedDeltaNet (Yang et al. 2025)     agents/cores/delta.py
lru            LRU (Orvieto et al. 2023)            agents/cores/ssm.py
s5             S5 (Smith et al. 2023, S4D-Lin)      agents/cores/ssm.py
transformer    Transformer (sliding-window, causal) agents/cores/attention.py
slstm, mlstm   SLSTM, MLSTM (Beck et al. 2024)      agents/cores/xlstm.py
=============  ===================================  ======================================

What every core shares (the protocol's checks, the flat state, the grouped run) is in
agents/cores/base.py. A new architecture is a module here with a ``Core`` subclass, added to
``CORES`` below (docs/architecture.md); a core outside the package is named by its import path
instead (agents.protocol).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .._validate import choice
from ..protocol import build_external_core, is_import_path
from .attention import Transformer
from .base import Core, State, TauCore, member_results, run_side_by_side
from .blocks import BlockCore
from .delta import DeltaNet, DeltaProduct, GatedDeltaNet
from .gated import LeakyGRU, LeakyLSTM
from .leaky import LeakyRNN
from .selective import Mamba, MinGRU
from .ssm import LRU, S5
from .xlstm import MLSTM, SLSTM

CORES: dict[str, type[Core]] = {"leaky": LeakyRNN, "gru": LeakyGRU, "lstm": LeakyLSTM, "mingru": MinGRU,
                             "lru": LRU, "s5": S5, "mamba": Mamba, "deltanet": DeltaNet, "transformer": Transformer,
                             "deltaproduct": DeltaProduct, "gated_deltanet": GatedDeltaNet, "slstm": SLSTM,
                             "mlstm": MLSTM}
"""Built-in core classes by kind."""
KINDS = ("leaky", "leaky_mod", *(kind for kind in CORES if kind != "leaky"))
"""Every built-in kind make_core takes ("leaky_mod" is LeakyRNN with variant="mod")."""
TAU_KINDS = tuple(kind for kind in KINDS if issubclass(CORES.get(kind, LeakyRNN), TauCore))
"""The kinds with a per-neuron time constant tau (the tau options, ablation by tau, tau perturbation)."""
EIGENVALUE_KINDS = tuple(kind for kind in KINDS if "eigenvalues" in getattr(CORES.get(kind), "block_options", {}))
"""The kinds with the ``eigenvalues="positive"|"signed"`` option (Grazzi et al. 2025's [-1, 1] extension)."""
LAYER_KINDS = tuple(kind for kind in KINDS if issubclass(CORES.get(kind, LeakyRNN), BlockCore))
"""The kinds with the ``layers`` option (the zoo's residual blocks, :class:`~agents.cores.blocks.BlockCore`)."""
NO_OWN_TIMESCALE = ("transformer", "slstm")
"""The kinds with neither an own timescale nor input-dependent decays: the transformer, whose memory is
its window (Transformer.context_length), and sLSTM, whose recurrence is non-linear (h_{t-1} enters its gates)."""


def core_class(kind: str) -> type[Core]:
    """The class a built-in kind builds; ValueError listing the kinds for anything else."""
    choice("kind", kind, KINDS)
    return LeakyRNN if kind == "leaky_mod" else CORES[kind]


def make_core(kind: str, input_size: int, hidden_size: int, **options: Any) -> nn.Module:
    """Build a core by name (one of ``KINDS``), or an external core by import path
    "package.module:ClassName" (see agents.protocol)."""
    if is_import_path(kind):
        return build_external_core(kind, input_size, hidden_size, **options)
    cls = core_class(kind)
    if kind == "leaky_mod":
        options = {**options, "variant": "mod"}
    return cls(input_size, hidden_size, **options)


__all__ = ["CORES", "EIGENVALUE_KINDS", "KINDS", "LAYER_KINDS", "NO_OWN_TIMESCALE", "TAU_KINDS", "Core", "DeltaNet",
           "DeltaProduct", "GatedDeltaNet", "LRU", "LeakyGRU", "LeakyLSTM", "LeakyRNN", "MLSTM", "Mamba", "MinGRU", "S5",
           "SLSTM", "State", "TauCore", "Transformer", "core_class", "make_core",
           "member_results", "run_side_by_side"]
