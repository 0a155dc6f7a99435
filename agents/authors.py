"""The paper's authors' published networks (LevinaLab/rnn_timescale_public, ``trained_models/``) as
:class:`~agents.MultiHeadModel`: :func:`load_authors`.

Each of their network files is a ``torch.save`` of ``{'state_dict': ...}`` from their ``RNN_Stack``
(or ``RNN_Mod``, the "mod" variant) with one hidden layer: ``parameterlist.0`` = tau [H] (trainable;
[1] when tau was fixed), ``modulelist.0`` = input Linear(1, H), ``modulelist.1`` = recurrent
Linear(H, H), whose diagonal their forward pass zeroes, and ``modulelist.2..`` = readout heads
Linear(H, 2), head i for the i-th N of the curriculum when the file was saved. Their equations are this
project's leaky RNN (docs/agents.md) with ``self_connections=False``; the file is opened with
``torch.load(weights_only=True)``, so it runs no code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from .checkpoint import CheckpointError
from .cores import make_core
from .model import MultiHeadModel

#: Their file names: rnn_N{first}_N{last} (the curriculum's Ns when the file was saved).
FILE_NAME = re.compile(r"rnn_N(\d+)_N(\d+)")
VARIANTS = ("standard", "mod")


def ns_from_name(path: str | os.PathLike) -> list[int] | None:
    """The Ns a file ``rnn_N{a}_N{b}`` scores: a..b (a single-head file ``rnn_N{k}_N{k}``: [k]); None for
    another name (e.g. ``rnn_init``)."""
    match = FILE_NAME.fullmatch(Path(path).name)
    if match is None:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    return list(range(first, last + 1)) if first <= last else None


def variant_from_folder(folder: str | os.PathLike) -> str:
    """"mod" when a network folder's name carries their ``mod`` affix (``{curriculum}_{task}_mod_..._network_k``,
    as their ``save_model`` writes it), else "standard"."""
    return "mod" if "mod" in Path(folder).name.split("_") else "standard"


def _tensor(state: dict, key: str, where: Path) -> torch.Tensor:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{where}: not one of the authors' RNN_Stack files (no tensor {key!r} in its "
                              f"state_dict; it has {sorted(state)[:8]}...)")
    return value


def _shape(value: torch.Tensor, shape: tuple[int, ...], key: str, where: Path) -> torch.Tensor:
    if tuple(value.shape) != shape:
        raise CheckpointError(f"{where}: {key} has shape {tuple(value.shape)}, expected {shape}")
    return value


def load_authors(path: str | os.PathLike, ns: Sequence[int] | None = None, *, variant: str | None = None
                 ) -> MultiHeadModel:
    """One of the authors' network files as a MultiHeadModel (float32, on the CPU) with one head per N.

    ``ns``: the Ns of the file's heads 0, 1, ... (default: from the file name, ``rnn_N{a}_N{b}`` ->
    a..b); needed for files named otherwise (``rnn_init``). ``variant``: "standard" (their RNN_Stack)
    or "mod" (RNN_Mod, LeakyReLU inside the leak); default "mod" if the folder name carries their
    ``mod`` affix. The recurrent diagonal is dropped (their forward zeroes it); a trainable tau keeps
    its raw values (below 1 too: tau' = max(tau, 1) as in their forward); a fixed tau [1] becomes a
    fixed tau' for every neuron. Anything but a weights-only file of one hidden layer is a
    CheckpointError naming the file.
    """
    where = Path(path)
    if not where.is_file():
        raise FileNotFoundError(f"{where} is not a file (expected one of the authors' rnn_N*_N* network files)")
    if variant is None:
        variant = variant_from_folder(where.parent)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")
    try:
        saved = torch.load(where, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for unsafe or damaged files
        raise CheckpointError(f"{where} is not a weights-only torch file ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})") from None
    state = saved.get("state_dict") if isinstance(saved, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: expected a dict with a 'state_dict' (the authors' save_model format), "
                              f"got {type(saved).__name__}")
    tau = _tensor(state, "parameterlist.0", where)
    w_hh = _tensor(state, "modulelist.1.weight", where)
    if w_hh.dim() != 2 or w_hh.shape[0] != w_hh.shape[1]:
        raise CheckpointError(f"{where}: modulelist.1.weight (recurrent) must be square, got {tuple(w_hh.shape)}")
    hidden = w_hh.shape[0]
    if "parameterlist.1" in state:
        raise CheckpointError(f"{where}: a network of several hidden layers; only one layer is supported")
    w_ih = _shape(_tensor(state, "modulelist.0.weight", where), (hidden, 1), "modulelist.0.weight", where)
    b_ih = _shape(_tensor(state, "modulelist.0.bias", where), (hidden,), "modulelist.0.bias", where)
    b_hh = _shape(_tensor(state, "modulelist.1.bias", where), (hidden,), "modulelist.1.bias", where)
    heads = []
    while f"modulelist.{2 + len(heads)}.weight" in state:
        key = f"modulelist.{2 + len(heads)}"
        heads.append((_shape(_tensor(state, key + ".weight", where), (2, hidden), key + ".weight", where),
                      _shape(_tensor(state, key + ".bias", where), (2,), key + ".bias", where)))
    if ns is None:
        ns = ns_from_name(where)
        if ns is None:
            raise ValueError(f"ns: {where.name} does not name its Ns (rnn_N{{a}}_N{{b}}); pass ns, the Ns of "
                             "its heads 0, 1, ...")
    ns = list(ns)
    if not ns or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in ns) or len(set(ns)) != len(ns):
        raise ValueError(f"ns must be distinct integers >= 1, got {ns!r}")
    if len(ns) > len(heads):
        raise CheckpointError(f"{where} has {len(heads)} readout heads, fewer than the {len(ns)} Ns {ns}")
    trainable = tau.numel() == hidden
    if not trainable and tau.numel() != 1:
        raise CheckpointError(f"{where}: parameterlist.0 (tau) must have {hidden} values or 1, got {tau.numel()}")
    if not trainable and not float(tau) >= 1:
        raise CheckpointError(f"{where}: a fixed tau must be >= 1, got {float(tau)}")
    core = make_core("leaky", 1, hidden, variant=variant, train_tau=trainable,
                     tau_init=(1.0, 2.0) if trainable else float(tau))
    model = MultiHeadModel(core, ns)
    with torch.no_grad():
        if trainable:
            core.time_constant.raw.copy_(tau.reshape(hidden))
        core.weight_ih.copy_(w_ih)
        core.bias_ih.copy_(b_ih)
        core.weight_hh.copy_(w_hh * core.mask)
        core.bias_hh.copy_(b_hh)
        for n, (weight, bias) in zip(ns, heads):
            model.head(n).weight.copy_(weight)
            model.head(n).bias.copy_(bias)
    return model


__all__ = ["FILE_NAME", "VARIANTS", "load_authors", "ns_from_name", "variant_from_folder"]
