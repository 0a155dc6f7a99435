"""The recurrent-core protocol: what a core must provide to be trained, checkpointed and analysed here.

A core is a ``torch.nn.Module`` with

* a constructor ``Cls(input_size: int, hidden_size: int, **options)`` whose options are plain
  JSON values (it may also accept ``generator=``, a ``torch.Generator`` for its random draws);
* attributes ``input_size`` and ``hidden_size``;
* ``forward(x [T, B, F], state=None) -> (hidden [T, B, H], final_state)``;
* ``initial_state(batch_size, generator=None) -> state`` (a tensor or a tuple of tensors) on the
  core's device;
* optionally ``tau``, the per-neuron time constants [H] (logged by the trainer when present).
* optionally ``transitions(x [T, B, F], state=None) -> a_t [T, B, U] or None``, the signed real
  transition eigenvalues of a recurrence whose transitions depend on the input (what
  ``baselines.analysis.transition_stats`` and ``memory-envs analyze`` read; a core without it is
  analysed without them).

Devices: the trainer builds a core on the CPU and then moves it to the run's device, and passes CPU
generators. A core that draws at random (weights, a random initial state) should draw on the
generator's device and move the result to its own, as the built-in cores do (docs/agents.md), so
that one seed gives the same network on CPU and GPU.

The built-in cores (``"leaky"``, ``"leaky_mod"``, ``"gru"``, ``"lstm"``) follow it; an external
core is named by its import path, ``"package.module:ClassName"``, wherever a core kind is taken
(``make_core``, ``TrainConfig.core``, ``memory-envs train --core``, ``memory-envs benchmark --cores``).
Checkpoints record that path; ``agents.load`` rebuilds such a core only from a class the caller
passes (``core_class=``) or, with ``trust_import=True``, by importing the path: a file never makes
it import a module on its own.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from torch import nn

REQUIRED_METHODS = ("forward", "initial_state")
REQUIRED_ATTRIBUTES = ("input_size", "hidden_size")


def is_import_path(kind: str) -> bool:
    """True for ``"module:Class"`` (an external core), False for a built-in name."""
    return isinstance(kind, str) and ":" in kind


def import_core_class(path: str) -> type[nn.Module]:
    """Import ``"package.module:ClassName"`` and check that it is an ``nn.Module`` class."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"core import path must look like 'package.module:ClassName', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"core import path {path!r}: cannot import module {module_name!r} ({error})") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"core import path {path!r}: module {module_name!r} has no attribute {class_name!r}")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ValueError(f"core import path {path!r} does not name a torch.nn.Module class")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise ValueError(f"core class {path!r} does not fit the core protocol: it lacks {missing} "
                         f"(see agents.protocol)")
    return cls


def check_core(core: Any) -> None:
    """Raise TypeError naming what ``core`` lacks of the protocol."""
    if not isinstance(core, nn.Module):
        raise TypeError(f"core must be a torch.nn.Module following agents.protocol, got {type(core).__name__}")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(core, m, None))]
    missing += [a for a in REQUIRED_ATTRIBUTES if not isinstance(getattr(core, a, None), int)]
    if missing:
        raise TypeError(f"core {type(core).__name__} does not fit the core protocol: it lacks {missing} "
                        f"(see agents.protocol)")


def build_external_core(path: str, input_size: int, hidden_size: int, cls: type[nn.Module] | None = None,
                        **options: Any) -> nn.Module:
    """Construct the external core ``path`` (the class ``cls`` if given, else imported from ``path``) and
    remember its configuration for checkpoints."""
    cls = import_core_class(path) if cls is None else cls
    generator = options.pop("generator", None)
    if generator is not None and "generator" in inspect.signature(cls).parameters:
        options_with_generator = {**options, "generator": generator}
    else:
        options_with_generator = options
    try:
        core = cls(input_size, hidden_size, **options_with_generator)
    except TypeError as error:
        raise ValueError(f"core {path!r} rejected its options {sorted(options)}: {error}") from None
    check_core(core)
    core.external_config = {"kind": path, "input_size": input_size, "hidden_size": hidden_size, **options}
    return core


def core_config(core: nn.Module) -> dict[str, Any]:
    """The configuration that rebuilds ``core`` with ``make_core(**config)``."""
    if hasattr(core, "external_config"):
        return dict(core.external_config)
    return core.to_config()
