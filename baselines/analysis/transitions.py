"""The sign of the transitions: how a network with an input-dependent diagonal recurrence h_t = a_t h_{t-1} + b_t
uses a_t on each input token (``Core.transitions``: minGRU, Mamba, DeltaNet and the zoo's other
input-dependent kinds).

A signed network (``eigenvalues="signed"``, a_t in [-1, 1]) that tracks running parity keeps its state with
a_t near +1 on reading a 0 and flips it with a_t near -1 on reading a 1 (Grazzi et al., ICLR 2025); a
positive one (a_t in [0, 1]) can only keep or forget. A core with a short convolution before its recurrence
(Mamba, DeltaNet) may let a_t depend on the last few tokens instead: a signed Mamba was measured to flip on the
token read one step before (docs/analysis.md). :func:`transition_stats` gives, per layer, per lag and per input
token read that many steps before a_t, the share of negative a_t, quantiles, a histogram on [-1, 1], and per unit
the share of negative a_t; :func:`network_transitions` drives a network with fresh sequences of its task (a token
task's own, else uniform bits) and returns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agents.cores import KINDS, make_core
from baselines.analysis.runs import AnalysisError
from memory_envs.tasks import check_positive_int, check_seed, is_token_task, token_task

#: Quantiles of a_t reported per layer and token.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
#: The histogram's bins: HISTOGRAM_BINS equal bins on [-1, 1] (a value outside is counted in the end bin).
HISTOGRAM_BINS = 40
#: A unit's sign is decided by a token when its share of negative a_t differs by at least this between two tokens.
DECIDED = 0.9
#: The lags at which ``network_transitions`` reads the token beside a_t: the current token and the three before,
#: which a short convolution of kernel 4 before the recurrence (Mamba's, DeltaNet's) lets set a_t.
LAGS = (0, 1, 2, 3)
ALL = "all"
"""The layer or token of a row that pools them all."""


def has_transitions(core: torch.nn.Module) -> bool:
    """True when ``core`` reports input-dependent transitions (``transitions`` on one step is not None)."""
    transitions = getattr(core, "transitions", None)
    if not callable(transitions):
        return False
    weight = next(core.parameters())
    with torch.no_grad():
        return transitions(weight.new_zeros(1, 1, core.input_size)) is not None


def transition_kinds() -> list[str]:
    """The built-in kinds whose cores have input-dependent transitions."""
    return [kind for kind in KINDS if has_transitions(make_core(kind, 1, 4, generator=torch.Generator()))]


def token_inputs(input_size: int, tokens: torch.Tensor) -> torch.Tensor:
    """The inputs [T, B, F] of integer tokens [T, B]: the token itself as one bit for ``input_size`` 1 (tokens
    0 and 1: parity's bits), else its one-hot vector over the F = ``input_size`` tokens."""
    if input_size == 1:
        return tokens.unsqueeze(-1).float()
    return torch.nn.functional.one_hot(tokens, input_size).float()


def alphabet_size(input_size: int) -> int:
    """The number of input tokens of a network with ``input_size`` inputs: 2 bits for one input, else one-hot."""
    return 2 if input_size == 1 else input_size


def transition_stats(transitions: torch.Tensor, tokens: torch.Tensor, layers: int = 1,
                     lags: Sequence[int] = (0,)) -> dict[str, Any]:
    """Statistics of a_t [T, B, U] by the token [T, B] read ``lag`` steps before (0: at the same step), for each
    lag, for each of ``layers`` equal groups of the U units (a zoo core's layers, in order) and for all of them.

    Returns {"rows": one dict per (layer, lag, token) and their pools ("all"): count, negative (the share of
    a_t < 0), mean, min, the QUANTILES (q05 ... q95), max, units, units_negative (the units whose a_t is
    negative on most steps of that token: a parity tracker's flipping units after a 1) and units_decided (the
    units whose sign that lag's token decides: their share of negative a_t differs by at least DECIDED between
    two tokens); "units": rows of (layer, lag, unit, token, negative, median) per unit of each layer;
    "histogram": rows of (layer, lag, token, bin_low, bin_high, count, share) over HISTOGRAM_BINS bins on
    [-1, 1]; "negative": the share of negative a_t over everything; "deciding_lag": {layer: the lag whose token
    decides the most units' sign, the first of equals}}."""
    if transitions.dim() != 3 or tokens.shape != transitions.shape[:2]:
        raise AnalysisError(f"transitions must be [T, B, U] and tokens [T, B], got {list(transitions.shape)} and "
                            f"{list(tokens.shape)}")
    steps, _, units = transitions.shape
    check_positive_int(layers, "layers")
    if units % layers:
        raise AnalysisError(f"layers must divide the {units} transitions per step, got {layers}")
    if not lags or any(isinstance(lag, bool) or not isinstance(lag, int) or not 0 <= lag < steps for lag in lags):
        raise AnalysisError(f"lags must be integers in [0, {steps}) (the steps), got {list(lags)}")
    values = transitions.detach().to("cpu", torch.float64).numpy()
    token_ids = tokens.detach().cpu().numpy()
    edges = np.linspace(-1.0, 1.0, HISTOGRAM_BINS + 1)
    rows, histogram, unit_rows, deciding = [], [], [], {}
    groups = [(layer, values[:, :, layer * units // layers:(layer + 1) * units // layers]) for layer in range(layers)]
    if layers > 1:
        groups.append((ALL, values))
    for layer, group in groups:
        decided_by_lag = {}
        for lag in lags:
            block, read = group[lag:], token_ids[:steps - lag]  # a_t beside the token read at t - lag
            shares = {token: (block[read == token] < 0).mean(0) for token in np.unique(read).tolist()}
            spread = np.max(list(shares.values()), 0) - np.min(list(shares.values()), 0)
            decided_by_lag[lag] = int((spread >= DECIDED).sum())
            for token in [*shares, ALL]:
                per_unit = (block if token == ALL else block[read == token]).reshape(-1, block.shape[2])
                negative = (per_unit < 0).mean(0)
                chosen = per_unit.ravel()
                key = {"layer": layer, "lag": lag, "token": token}
                rows.append({**key, **_summary(chosen), "units": per_unit.shape[1],
                             "units_negative": int((negative > 0.5).sum()), "units_decided": decided_by_lag[lag]})
                if layer != ALL:
                    unit_rows += [{**key, "unit": unit, "negative": float(share), "median": float(median)}
                                  for unit, (share, median) in enumerate(zip(negative, np.median(per_unit, 0)))]
                counts = np.histogram(np.clip(chosen, -1.0, 1.0), edges)[0]
                histogram += [{**key, "bin_low": float(low), "bin_high": float(high), "count": int(count),
                               "share": float(count / max(chosen.size, 1))}
                              for low, high, count in zip(edges[:-1], edges[1:], counts)]
        deciding[layer] = max(lags, key=lambda lag: (decided_by_lag[lag], -lags.index(lag)))
    return {"rows": rows, "units": unit_rows, "histogram": histogram, "negative": float((values < 0).mean()),
            "deciding_lag": deciding}


def _summary(values: np.ndarray) -> dict[str, Any]:
    quantiles = np.quantile(values, QUANTILES)
    return {"count": int(values.size), "negative": float((values < 0).mean()), "mean": float(values.mean()),
            "min": float(values.min()),
            **{f"q{round(100 * q):02d}": float(v) for q, v in zip(QUANTILES, quantiles)}, "max": float(values.max())}


def network_transitions(core: torch.nn.Module, *, steps: int = 256, batch: int = 16, seed: int = 0,
                        lags: Sequence[int] = LAGS, task: str | None = None) -> dict[str, Any]:
    """:func:`transition_stats` at ``lags`` of ``core`` (a model's ``.core``) run from its zero state on ``batch``
    fresh sequences of ``steps`` tokens drawn on the CPU from ``seed`` and moved to the core's device: a token
    task's own sequences (``task``: a group word problem's uniform elements, modular arithmetic's digits and
    operators in turn; one-hot inputs), else uniform tokens of the core's alphabet (:func:`alphabet_size`: the
    bits of parity, DMS and running parity). AnalysisError for a core without transitions."""
    check_seed(seed)
    check_positive_int(steps, "steps")
    check_positive_int(batch, "batch")
    if not has_transitions(core):
        raise AnalysisError(f"core {type(core).__name__} has no input-dependent transitions (a fixed or non-linear "
                            "recurrence)")
    if task is not None and is_token_task(task):
        rule = token_task(task)
        if rule.vocab != core.input_size:
            raise AnalysisError(f"task {task!r} has {rule.vocab} tokens but the core reads {core.input_size} inputs")
        tokens = torch.from_numpy(rule.sample(np.random.default_rng(seed), batch, steps).T.astype(np.int64))
    else:
        generator = torch.Generator().manual_seed(seed)
        tokens = torch.randint(alphabet_size(core.input_size), (steps, batch), generator=generator)
    weight = next(core.parameters())
    with torch.no_grad():
        transitions = core.transitions(token_inputs(core.input_size, tokens).to(weight.device, weight.dtype))
    return transition_stats(transitions, tokens, getattr(core, "layers", 1), lags)


__all__ = ["ALL", "DECIDED", "HISTOGRAM_BINS", "LAGS", "QUANTILES", "alphabet_size", "has_transitions",
           "network_transitions", "token_inputs", "transition_kinds", "transition_stats"]
