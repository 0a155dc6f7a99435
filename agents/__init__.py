"""Recurrent agents with a trainable per-neuron time constant tau.

Cores (LeakyRNN, LeakyGRU, LeakyLSTM; built by name with make_core), the multi-head readout model
and checkpoints (save, load); the paper's authors' published networks (load_authors). See
docs/agents.md.

``RecurrentCorePolicy`` (sb3-contrib RecurrentPPO policy with our cores; docs/rl.md) is loaded
lazily, so importing ``agents`` does not need stable-baselines3.
"""

from .authors import load_authors
from .checkpoint import CheckpointError, CheckpointVersionError, load, save
from .cores import Core, LeakyGRU, LeakyLSTM, LeakyRNN, make_core
from .model import MultiHeadModel

__all__ = ["CheckpointError", "CheckpointVersionError", "Core", "LeakyGRU", "LeakyLSTM", "LeakyRNN", "MultiHeadModel", "RecurrentCorePolicy", "load", "load_authors", "make_core", "save"]

_LAZY = {"RecurrentCorePolicy": "rl_policy"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

