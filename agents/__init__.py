"""Recurrent agents with a trainable per-neuron time constant tau.

Cores (LeakyRNN, LeakyGRU, LeakyLSTM; built by name with make_core), the multi-head readout model
and checkpoints (save, load). See docs/agents.md.
"""

from .checkpoint import load, save
from .cores import Core, LeakyGRU, LeakyLSTM, LeakyRNN, make_core
from .model import MultiHeadModel

__all__ = ["Core", "LeakyGRU", "LeakyLSTM", "LeakyRNN", "MultiHeadModel", "load", "make_core", "save"]
