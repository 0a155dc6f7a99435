"""Synthetic neurons with known timescales, to check the tau_net estimator against ground truth:
independent AR(1) noise per neuron, or the sum of a fast and a slow AR(1) (two timescales), streamed
in chunks like the network drive, and the share of neurons whose fitted tau_net is within a
tolerance of the truth."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from baselines.analysis.runs import AnalysisError
from memory_envs.tasks import check_seed


@dataclass(frozen=True)
class SyntheticCase:
    """Unit-variance traces whose autocorrelation is (1 - s) exp(-k/fast) + s exp(-k/slow), s = slow_share.

    With ``fast`` None (or s = 1) a single AR(1) with timescale ``slow``. The truth tau_net should
    recover is ``slow`` (the slower timescale, as the paper's fit takes).
    """

    slow: float
    fast: float | None = None
    slow_share: float = 1.0

    def __post_init__(self) -> None:
        if not self.slow > 0 or (self.fast is not None and not 0 < self.fast < self.slow):
            raise AnalysisError(f"need 0 < fast < slow, got fast={self.fast}, slow={self.slow}")
        if not 0 < self.slow_share <= 1:
            raise AnalysisError(f"slow_share must be in (0, 1], got {self.slow_share}")

    @property
    def label(self) -> str:
        if self.fast is None or self.slow_share == 1:
            return f"tau = {self.slow:g}"
        return f"fast {self.fast:g} / slow {self.slow:g}, slow share {self.slow_share:g}"

    def chunks(self, *, trials: int, steps: int, neurons: int, rng: np.random.Generator,
               chunk: int = 8192) -> Iterator[np.ndarray]:
        """Consecutive [<=chunk, trials, neurons] float64 pieces of the traces (stationary from step 0)."""
        from scipy.signal import lfilter

        parts = [(self.slow, math.sqrt(self.slow_share))]
        if self.fast is not None and self.slow_share < 1:
            parts.append((self.fast, math.sqrt(1.0 - self.slow_share)))
        coef = [math.exp(-1.0 / tau) for tau, _ in parts]
        # filter state = a * x_{-1} with x_{-1} ~ N(0, 1): the process is stationary from the first step
        state = [a * rng.standard_normal((trials, neurons, 1)) for a in coef]
        done = 0
        while done < steps:
            length = min(chunk, steps - done)
            out = np.zeros((trials, neurons, length))  # time last: lfilter is fastest along contiguous memory
            for j, ((_, scale), a) in enumerate(zip(parts, coef)):
                noise = rng.standard_normal((trials, neurons, length)) * math.sqrt(1.0 - a * a)
                x, state[j] = lfilter([1.0], [1.0, -a], noise, axis=-1, zi=state[j])
                out += scale * x
            done += length
            yield out.transpose(2, 0, 1)


#: The ground-truth table of issue 16: single timescales 3..300 and fast 3 / slow 30 mixtures.
PAPER_CHECK_CASES = (
    SyntheticCase(3.0), SyntheticCase(10.0), SyntheticCase(30.0), SyntheticCase(100.0), SyntheticCase(300.0),
    SyntheticCase(30.0, 3.0, 0.1), SyntheticCase(30.0, 3.0, 0.5),
)


def accuracy_row(case: SyntheticCase, tau_net: np.ndarray, tolerance: float = 0.1) -> dict[str, Any]:
    """How well ``tau_net`` (one per synthetic neuron) recovers ``case.slow``."""
    truth = case.slow
    rel = np.abs(np.asarray(tau_net, dtype=np.float64) - truth) / truth
    rel = np.where(np.isfinite(rel), rel, np.inf)
    worst = int(np.argmax(rel))
    return {"case": case.label, "truth": truth, "neurons": int(rel.size), "within": int(np.sum(rel <= tolerance)),
            "share_within": float(np.mean(rel <= tolerance)), "median_rel_error": float(np.median(rel)),
            "p90_rel_error": float(np.quantile(rel, 0.9)), "worst": float(np.asarray(tau_net)[worst])}


def fit_accuracy(cases: Sequence[SyntheticCase] = PAPER_CHECK_CASES, *, trials: int = 10, steps: int = 100_000,
                 neurons: int = 20, seed: int = 0, rule: str = "robust", max_lag: int | None = None,
                 min_weight: float | None = None, tolerance: float = 0.1,
                 progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Fit synthetic neurons of every case through the fitting path of ``network_timescales``
    (``trace_timescales``) and return one ``accuracy_row`` per case (plus "neurons_at_bound").
    ``progress(1)``, if given, after each case."""
    check_seed(seed)
    from baselines.analysis.timescales import trace_timescales

    rows = []
    for i, case in enumerate(cases):
        rng = np.random.default_rng([seed, i])
        result = trace_timescales(case.chunks(trials=trials, steps=steps, neurons=neurons, rng=rng), steps=steps,
                                  max_lag=max_lag, rule=rule, min_weight=min_weight)
        rows.append({**accuracy_row(case, result["tau_net"], tolerance),
                     "neurons_at_bound": result["neurons_at_bound"]})
        if progress is not None:
            progress(1)
    return rows
