"""How long a network remembers: random-bit drive, lag sums and autocorrelation by FFT, tau_net per
neuron (fits in :mod:`baselines.analysis.fits`) with its robust summaries, and each architecture's own
timescale beside it (the LSTM forget-gate timescale of docs/analysis.md; -1/ln|lambda| of a fixed diagonal
recurrence; the mean input-dependent decay of the zoo's selective cores)."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np
import torch

import agents
from baselines import interrupt
from baselines.analysis.fits import check_rule, default_max_lag, fit_timescales
from baselines.analysis.runs import AnalysisError
from memory_envs.tasks import check_seed


@torch.no_grad()
def drive(core: agents.Core, consume: Callable[[torch.Tensor, torch.Tensor, Any], None], *, trials: int = 10,
          steps: int = 100_000, burn_in: int = 500, chunk: int = 2048, seed: int = 0, p: float | str = 0.5,
          progress: Callable[[int], None] | None = None) -> None:
    """Run ``core`` on ``trials`` parallel streams of Bernoulli(p) bits (batch B = trials), on the
    core's device (bits and initial state drawn on the CPU from ``seed``, then moved). ``p``: one bit
    probability for every trial, or "uniform": each trial draws its own p ~ U(0, 1) once, for its
    burn-in and all its steps (the authors' script: ``torch.rand(M) < torch.rand(1)`` per trial).

    After ``burn_in`` discarded steps, ``consume(hidden [C, B, H], inputs [C, B, 1], state_before)`` is
    called for consecutive chunks of at most ``chunk`` steps (``steps`` in all); only one chunk is
    held in memory at a time. ``progress(c)``, if given, after each chunk of c steps (e.g. a bar's update). A stop
    request (:func:`baselines.interrupt.check`) abandons the drive between two chunks.
    """
    check_seed(seed)
    for name, value in (("trials", trials), ("steps", steps), ("chunk", chunk)):
        if int(value) < 1:
            raise AnalysisError(f"{name} must be >= 1, got {value}")
    check_drive_p(p)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-step [B, H] x [H, H] products: one thread is fastest, and on a busy
    try:                      # 2-core machine 2 threads were measured 80x slower (OpenMP contention)
        _drive(core, consume, trials, steps, burn_in, chunk, seed, p, progress)
    finally:
        torch.set_num_threads(threads)


DRIVE_P_CHOICES = ("uniform",)


def check_drive_p(p: float | str) -> float | str:
    """A drive bit probability: a number in [0, 1] or "uniform"; AnalysisError naming both otherwise."""
    if isinstance(p, str) and p in DRIVE_P_CHOICES:
        return p
    if isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 <= p <= 1.0:
        return float(p)
    raise AnalysisError(f"drive p must be a number in [0, 1] or 'uniform', got {p!r}")


def _drive(core, consume, trials, steps, burn_in, chunk, seed, p, progress) -> None:
    g = torch.Generator().manual_seed(seed)
    ref = next(core.parameters())
    state = core.initial_state(trials, generator=g)
    probs = torch.rand(trials, 1, dtype=ref.dtype, generator=g) if p == "uniform" else None

    def bits(length: int) -> torch.Tensor:
        source = torch.full((length, trials, 1), p, dtype=ref.dtype) if probs is None else probs.expand(length, trials, 1)
        return torch.bernoulli(source, generator=g).to(ref.device)

    done = 0
    while done < burn_in:
        length = min(chunk, burn_in - done)
        _, state = core(bits(length), state)
        done += length
    done = 0
    while done < steps:
        interrupt.check()  # a stop request abandons the drive between two chunks
        length = min(chunk, steps - done)
        x = bits(length)
        hidden, new_state = core(x, state)
        consume(hidden, x, state)
        state = new_state
        done += length
        if progress is not None:
            progress(length)


class LagSums:
    """Per-trial, per-neuron autocovariance for lags 0..max_lag of a long trace fed in chunks.

    The raw lag products sum_t x_t x_{t+k} are accumulated by FFT on each chunk (joined with the
    first ``max_lag`` steps of the next chunk), in float64, so every lag up to the bound comes from
    one pass; the per-trial mean is subtracted exactly at the end with
    sum_t (x_t - m)(x_{t+k} - m) = S_k - m (A_k + B_k) + (T - k) m^2. Traces are [C, B, H] chunks
    (time first); all chunks but the last must have at least ``max_lag`` steps.
    """

    def __init__(self, max_lag: int) -> None:
        self.max_lag = int(max_lag)
        self.pending: torch.Tensor | None = None  # [B, C, H] float64, waiting for the next chunk
        self.sums = None  # S_k [K+1, B, H]
        self.total = None  # [B, H]
        self.head = None  # first K steps [B, <=K, H]
        self.tail = None  # last K steps
        self.length = 0

    def _correlate(self, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        k = self.max_lag
        n = _fast_length(a.shape[1] + k)
        fa = torch.fft.rfft(a, n=n, dim=1)
        fz = torch.fft.rfft(z, n=n, dim=1)
        r = torch.fft.irfft(fa.conj_physical() * fz, n=n, dim=1)[:, : k + 1]
        return r.permute(1, 0, 2)  # [K+1, B, H]

    def add(self, chunk: torch.Tensor) -> None:
        x = chunk.detach().to(torch.float64).permute(1, 0, 2).contiguous()  # [B, C, H]
        k = self.max_lag
        if self.pending is not None:
            if self.pending.shape[1] < k:
                raise ValueError(f"chunks before the last must have >= max_lag ({k}) steps")
            z = torch.cat((self.pending, x[:, :k]), dim=1)
            self._accumulate(self.pending, z)
        else:
            self.sums = x.new_zeros(k + 1, x.shape[0], x.shape[2])
            self.total = x.new_zeros(x.shape[0], x.shape[2])
            self.head = x[:, :0]
            self.tail = x[:, :0]
        if self.head.shape[1] < k:
            self.head = torch.cat((self.head, x[:, : k - self.head.shape[1]]), dim=1)
        self.tail = torch.cat((self.tail, x), dim=1)[:, -k:] if k else x[:, :0]
        self.total += x.sum(dim=1)
        self.length += x.shape[1]
        self.pending = x

    def _accumulate(self, a: torch.Tensor, z: torch.Tensor) -> None:
        r = self._correlate(a, z)
        lags = min(r.shape[0], self.max_lag + 1)
        self.sums[:lags] += r[:lags]

    @property
    def samples(self) -> int:
        """Time points behind the trial-averaged estimate: steps x trials."""
        return self.length * (self.sums.shape[1] if self.sums is not None else 0)

    def autocovariance(self, unbiased: bool = False) -> np.ndarray:
        """Mean-subtracted autocovariance per trial, biased (divided by T) or ``unbiased`` (lag k divided
        by T - k, as the authors' script does): [K+1, B, H]."""
        if self.pending is None:
            raise ValueError("no data")
        if self.length <= self.max_lag:
            raise AnalysisError(f"steps ({self.length}) must exceed max_lag ({self.max_lag})")
        self._accumulate(self.pending, self.pending)
        self.pending = None
        t, k = self.length, self.max_lag
        m = self.total / t
        zero = self.total.new_zeros(self.total.shape[0], 1, self.total.shape[1])
        last = torch.cat((zero, self.tail.flip(1).cumsum(1)), dim=1)  # sum of the last `lag` steps [B, K+1, H]
        first = torch.cat((zero, self.head.cumsum(1)), dim=1)  # sum of the first `lag` steps
        a = (self.total[:, None] - last).permute(1, 0, 2)  # sum_{t < T-lag} x_t  [K+1, B, H]
        b = (self.total[:, None] - first).permute(1, 0, 2)  # sum_{t >= lag} x_t
        lags = torch.arange(k + 1, dtype=torch.float64, device=self.sums.device)[:, None, None]
        out = (self.sums - m * (a + b) + (t - lags) * m * m) / ((t - lags) if unbiased else t)
        return out.cpu().numpy()


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (FFT lengths with a large prime factor are many times slower)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def autocorrelation(traces: np.ndarray | torch.Tensor, max_lag: int = 30, chunk: int = 4096) -> np.ndarray:
    """Autocovariance per neuron of ``traces`` [T, B, H] (mean-subtracted per trial, averaged over the
    B trials, by FFT): [max_lag + 1, H]. Divide by row 0 for the autocorrelation."""
    traces = torch.as_tensor(traces)
    if traces.dim() == 1:
        traces = traces[:, None, None]
    elif traces.dim() == 2:
        traces = traces[:, :, None]
    sums = LagSums(max_lag)
    chunk = max(chunk, max_lag)
    for start in range(0, traces.shape[0], chunk):
        sums.add(traces[start: start + chunk])
    return sums.autocovariance().mean(axis=1)


def population_autocorrelation(autocov: np.ndarray) -> np.ndarray:
    """Mean over neurons (with variance) of the normalized autocorrelation: [K+1]."""
    c0 = autocov[0]
    alive = np.isfinite(c0) & (c0 > 1e-12)
    if not alive.any():
        return np.full(autocov.shape[0], np.nan)
    return (autocov[:, alive] / c0[alive]).mean(axis=1)


def tau_net_summary(tau_net: np.ndarray, fits: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-network summaries of tau_net: the paper's mean over neurons with tau_net > 1, the median
    over the same neurons (one neuron at a fit bound cannot move it), and how many fits failed or hit
    a bound (``fit_timescale``'s "flag")."""
    keep = tau_net[np.isfinite(tau_net) & (tau_net > 1)]
    failed = sum(f["flag"] == "failed" for f in fits)
    bound = sum(f["flag"] == "bound" for f in fits)
    return {"tau_net_mean": float(keep.mean()) if keep.size else math.nan,
            "tau_net_median": float(np.median(keep)) if keep.size else math.nan,
            "neurons_tau_net_gt1": int(keep.size), "neurons_failed": int(failed), "neurons_at_bound": int(bound),
            "share_failed_or_bound": (failed + bound) / len(fits) if fits else math.nan}


def timescales_from_lag_sums(sums: LagSums, *, rule: str = "robust", min_weight: float | None = None,
                             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """tau_net of every neuron whose lag sums are in ``sums``: the one fitting path of
    ``network_timescales`` and ``trace_timescales``; the "authors" rule fits the unbiased estimate,
    as their script does. Returns {"tau_net": [H], "fits", the ``tau_net_summary`` keys,
    "population_ac": [K+1], "autocov": [K+1, H], "samples"}. ``progress(1)`` after each neuron's fit."""
    autocov = sums.autocovariance(unbiased=rule == "authors").mean(axis=1)
    fits = fit_timescales(autocov, samples=sums.samples, rule=rule, min_weight=min_weight, progress=progress)
    tau_net = np.array([f["tau"] for f in fits])
    return {"tau_net": tau_net, "fits": fits, **tau_net_summary(tau_net, fits),
            "population_ac": population_autocorrelation(autocov), "autocov": autocov, "samples": sums.samples}


def _lag_bound(rule: str, steps: int, max_lag: int | None) -> int:
    check_rule(rule)
    max_lag = default_max_lag(rule, steps) if max_lag is None else int(max_lag)
    if not 1 <= max_lag < steps:
        raise AnalysisError(f"max_lag must be in [1, steps), got {max_lag} with steps={steps}")
    return max_lag


def trace_timescales(chunks: Iterable[np.ndarray | torch.Tensor], *, steps: int, max_lag: int | None = None,
                     rule: str = "robust", min_weight: float | None = None) -> dict[str, Any]:
    """``timescales_from_lag_sums`` of traces given as consecutive [C, B, H] chunks (``steps`` in all;
    every chunk but the last at least max_lag long), e.g. synthetic neurons with known timescales."""
    sums = LagSums(_lag_bound(rule, steps, max_lag))
    for chunk in chunks:
        sums.add(torch.as_tensor(chunk))
    return timescales_from_lag_sums(sums, rule=rule, min_weight=min_weight)


def network_timescales(core_or_model, *, trials: int = 10, steps: int = 100_000, burn_in: int = 500,
                       max_lag: int | None = None, chunk: int = 2048, seed: int = 0, rule: str = "robust",
                       min_weight: float | None = None, p: float | str = 0.5,
                       progress: Callable[[int], None] | None = None,
                       fit_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The network-mediated timescale tau_net of every neuron (docs/analysis.md), driven by bits of probability
    ``p`` (0.5, or "uniform": p ~ U(0, 1) per trial as in the authors' script; see :func:`drive`).
    ``progress(k)``, if given, after each chunk of k steps driven (``steps`` in all), then
    ``fit_progress(1)`` after each neuron fitted (H in all).

    ``rule`` "robust" (default) or "paper" picks the fit (:mod:`baselines.analysis.fits`);
    ``max_lag`` is the most lags accumulated (default: 30 for "paper", min(2000, steps // 4) for
    "robust", whose window adapts within it). Returns ``timescales_from_lag_sums``'s dict plus
    {"tau": trained tau' [H] (NaN for a core without one), "forget_timescale": LSTM only (else None),
    "own_timescale": ``OwnTimescale.result()``}; tau_net is NaN where both fits failed or the neuron is silent.
    """
    max_lag = _lag_bound(rule, steps, max_lag)
    check_drive_p(p)
    core = core_or_model.core if isinstance(core_or_model, agents.MultiHeadModel) else core_or_model
    sums = LagSums(max_lag)
    own = OwnTimescale(core)

    def consume(hidden, x, state):
        sums.add(hidden)
        own.add(hidden, x, state)

    drive(core, consume, trials=trials, steps=steps, burn_in=burn_in, chunk=max(chunk, max_lag), seed=seed, p=p,
          progress=progress)
    tau = getattr(core, "tau", None)
    return {"tau": tau.detach().cpu().numpy().astype(np.float64) if isinstance(tau, torch.Tensor)
            else np.full(core.hidden_size, math.nan),
            **timescales_from_lag_sums(sums, rule=rule, min_weight=min_weight, progress=fit_progress),
            "forget_timescale": own.forget.timescale() if own.forget is not None else None,
            "own_timescale": own.result()}


class OwnTimescale:
    """The architecture's own per-unit timescale, gathered while the network is driven:

    - "forget_gate" (LeakyLSTM): 1 / (1 - mean f) per unit (``ForgetGate``, the paper's LSTM measure);
    - "eigenvalue" (a fixed diagonal recurrence, ``core.own_timescales()``: LRU, S5): -1/ln|lambda|;
    - "mean_decay" (an input-dependent decay, ``core.decays(x, state)``: minGRU, Mamba, DeltaNet):
      -1/ln(mean |a_t|) per unit, the timescale of a constant decay equal to the mean over the drive.

    Cores with none of these (the leaky RNN and GRU, whose timescale is tau; the transformer, whose memory
    is its window) give None.
    """

    def __init__(self, core: torch.nn.Module) -> None:
        self.core = core
        self.forget = ForgetGate(core) if isinstance(core, agents.LeakyLSTM) else None
        fixed = core.own_timescales() if isinstance(core, agents.Core) else None
        self.fixed = None if fixed is None else fixed.detach().cpu().numpy().astype(np.float64)
        self.total: torch.Tensor | None = None
        self.count = 0
        self.input_dependent = isinstance(core, agents.Core) and self.forget is None and self.fixed is None

    def add(self, hidden: torch.Tensor, x: torch.Tensor, state: Any) -> None:
        if self.forget is not None:
            self.forget.add(hidden, x, state)
        elif self.input_dependent:
            decays = self.core.decays(x, state)
            if decays is None:
                self.input_dependent = False
                return
            total = decays.sum(dim=(0, 1)).to(torch.float64)
            self.total = total if self.total is None else self.total + total
            self.count += decays.shape[0] * decays.shape[1]

    def result(self) -> dict[str, Any] | None:
        """{"measure", "per_unit" [U], "mean" and "median" over the units with a finite timescale}, or None."""
        if self.forget is not None:
            measure, per_unit = "forget_gate", self.forget.timescale()["per_neuron"]
        elif self.fixed is not None:
            measure, per_unit = "eigenvalue", self.fixed
        elif self.total is not None and self.count:
            mean_decay = (self.total / self.count).cpu().numpy().clip(0.0, 1.0)
            with np.errstate(divide="ignore"):
                per_unit = -1.0 / np.log(mean_decay)
            measure = "mean_decay"
        else:
            return None
        finite = per_unit[np.isfinite(per_unit)]
        return {"measure": measure, "per_unit": per_unit, "units": int(per_unit.size),
                "mean": float(finite.mean()) if finite.size else math.inf,
                "median": float(np.median(finite)) if finite.size else math.inf}


class ForgetGate:
    """Mean forget gate of a LeakyLSTM while driven: f_t = sigmoid(W_if x_t + W_hf h_{t-1} + b_if + b_hf),
    computed from the wrapped nn.LSTM's weights; timescale = 1 / (1 - mean f) (the paper's LSTM measure)."""

    def __init__(self, core: agents.LeakyLSTM) -> None:
        hsz = core.hidden_size
        rnn = core.rnn
        self.w_ih = rnn.weight_ih_l0[hsz: 2 * hsz].detach()
        self.w_hh = rnn.weight_hh_l0[hsz: 2 * hsz].detach()
        self.bias = (rnn.bias_ih_l0[hsz: 2 * hsz] + rnn.bias_hh_l0[hsz: 2 * hsz]).detach()
        self.total = torch.zeros(hsz, dtype=torch.float64, device=self.w_hh.device)
        self.count = 0

    def add(self, hidden: torch.Tensor, x: torch.Tensor, state) -> None:
        h0 = state[0]
        h_prev = torch.cat((h0.unsqueeze(0), hidden[:-1]), dim=0)
        f = torch.sigmoid(x @ self.w_ih.t() + h_prev @ self.w_hh.t() + self.bias)
        self.total += f.sum(dim=(0, 1)).to(torch.float64)
        self.count += f.shape[0] * f.shape[1]

    def timescale(self) -> dict[str, Any]:
        per_neuron = (self.total / self.count).cpu().numpy()
        mean = float(per_neuron.mean())
        return {"mean_forget_gate": mean, "timescale": 1.0 / (1.0 - mean) if mean < 1 else math.inf,
                "per_neuron": 1.0 / np.maximum(1.0 - per_neuron, 1e-12)}
