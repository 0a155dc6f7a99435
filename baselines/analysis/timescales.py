"""How long a network remembers: random-bit drive, lag sums and autocorrelation by FFT, the paper's
single/double exponential fits chosen by AIC, tau_net per neuron, and the LSTM forget-gate timescale (SPEC 5)."""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np
import torch

import agents
from baselines.analysis.runs import AnalysisError


@torch.no_grad()
def drive(core: agents.Core, consume: Callable[[torch.Tensor, torch.Tensor, Any], None], *, trials: int = 10,
          steps: int = 100_000, burn_in: int = 500, chunk: int = 2048, seed: int = 0, p: float = 0.5) -> None:
    """Run ``core`` on ``trials`` parallel streams of Bernoulli(p) bits (batch B = trials), on the
    core's device (bits and initial state drawn on the CPU from ``seed``, then moved).

    After ``burn_in`` discarded steps, ``consume(hidden [C, B, H], inputs [C, B, 1], state_before)`` is
    called for consecutive chunks of at most ``chunk`` steps (``steps`` in all); only one chunk is
    held in memory at a time.
    """
    for name, value in (("trials", trials), ("steps", steps), ("chunk", chunk)):
        if int(value) < 1:
            raise AnalysisError(f"{name} must be >= 1, got {value}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-step [B, H] x [H, H] products: one thread is fastest, and on a busy
    try:                      # 2-core machine 2 threads were measured 80x slower (OpenMP contention)
        _drive(core, consume, trials, steps, burn_in, chunk, seed, p)
    finally:
        torch.set_num_threads(threads)


def _drive(core, consume, trials, steps, burn_in, chunk, seed, p) -> None:
    g = torch.Generator().manual_seed(seed)
    ref = core.time_constant.raw
    state = core.initial_state(trials, generator=g)

    def bits(length: int) -> torch.Tensor:
        return torch.bernoulli(torch.full((length, trials, 1), p, dtype=ref.dtype), generator=g).to(ref.device)

    done = 0
    while done < burn_in:
        length = min(chunk, burn_in - done)
        _, state = core(bits(length), state)
        done += length
    done = 0
    while done < steps:
        length = min(chunk, steps - done)
        x = bits(length)
        hidden, new_state = core(x, state)
        consume(hidden, x, state)
        state = new_state
        done += length


class LagSums:
    """Per-trial, per-neuron autocovariance for lags 0..max_lag of a long trace fed in chunks.

    The raw lag products sum_t x_t x_{t+k} are accumulated by FFT on each chunk (joined with the
    first ``max_lag`` steps of the next chunk), in float64; the per-trial mean is subtracted exactly
    at the end with sum_t (x_t - m)(x_{t+k} - m) = S_k - m (A_k + B_k) + (T - k) m^2. Traces are
    [C, B, H] chunks (time first); all chunks but the last must have at least ``max_lag`` steps.
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
        n = a.shape[1] + k
        n += (-n) % 16
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

    def autocovariance(self) -> np.ndarray:
        """Mean-subtracted autocovariance per trial, biased (divided by T): [K+1, B, H]."""
        if self.pending is None:
            raise ValueError("no data")
        if self.length <= self.max_lag:
            raise AnalysisError(f"steps ({self.length}) must exceed max_lag ({self.max_lag})")
        self._accumulate(self.pending, self.pending)
        self.pending = None
        t, k = self.length, self.max_lag
        m = self.total / t
        out = torch.empty_like(self.sums)
        for lag in range(k + 1):
            a = self.total - self.tail[:, k - lag:].sum(dim=1) if lag else self.total  # sum_{t < T-lag} x_t
            b = self.total - self.head[:, :lag].sum(dim=1)  # sum_{t >= lag} x_t
            out[lag] = (self.sums[lag] - m * (a + b) + (t - lag) * m * m) / t
        return out.cpu().numpy()


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


def _single(k, tau):
    return np.exp(-k / tau)


def _double(k, a, tau1, tau2):
    return a * np.exp(-k / tau1) + (1.0 - a) * np.exp(-k / tau2)


def aic(rss: float, n: int, params: int) -> float:
    """AIC = 2 k + n ln(RSS / n) (RSS floored at 1e-300 so a perfect fit stays finite)."""
    return 2 * params + n * math.log(max(rss, 1e-300) / n)


def fit_timescale(ac: np.ndarray, min_weight: float = 0.05) -> dict[str, float]:
    """Fit the normalized autocorrelation ``ac`` (lags 0..K, ac[0] = 1) as the paper does.

    Single exponential exp(-k/tau) and double a exp(-k/tau1) + (1 - a) exp(-k/tau2) (scipy
    curve_fit), chosen by AIC. A double fit whose lighter component has weight < ``min_weight`` is a
    noise fit (it models the estimation noise of the tail, e.g. tau_slow = 1e5 with a = 0.001) and
    does not compete (min_weight=0 gives the plain AIC choice). Returns {"tau": the single tau or the slower of the two, "model":
    1 or 2 (0: both fits failed, tau NaN), "tau_single", "tau_fast", "tau_slow", "a_slow"}.
    """
    from scipy.optimize import curve_fit

    ac = np.asarray(ac, dtype=np.float64)
    lags = np.arange(ac.shape[0], dtype=np.float64)
    out = {"tau": math.nan, "model": 0, "tau_single": math.nan, "tau_fast": math.nan, "tau_slow": math.nan,
           "a_slow": math.nan}
    if not np.all(np.isfinite(ac)):
        return out
    guess = 1.0
    if ac.shape[0] > 1 and 0.0 < ac[1] < 1.0:
        guess = float(np.clip(-1.0 / math.log(ac[1]), 0.05, 1e3))
    n = ac.shape[0]
    best_aic = math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            (tau,), _ = curve_fit(_single, lags, ac, p0=[guess], bounds=([1e-3], [1e5]), maxfev=2000)
            rss = float(np.sum((_single(lags, tau) - ac) ** 2))
            best_aic = aic(rss, n, 1)
            out.update(tau=float(tau), model=1, tau_single=float(tau))
            guess = float(tau)
        except (RuntimeError, ValueError):
            pass
        try:
            p0 = [0.5, max(guess / 3.0, 1e-2), min(guess * 3.0, 1e4)]
            (a, t1, t2), _ = curve_fit(_double, lags, ac, p0=p0, bounds=([0.0, 1e-3, 1e-3], [1.0, 1e5, 1e5]),
                                       maxfev=5000)
            rss = float(np.sum((_double(lags, a, t1, t2) - ac) ** 2))
            fast, slow = (t1, t2) if t1 <= t2 else (t2, t1)
            out.update(tau_fast=float(fast), tau_slow=float(slow), a_slow=float(1 - a if t1 <= t2 else a))
            if min(a, 1 - a) >= min_weight and aic(rss, n, 3) < best_aic:
                out.update(tau=float(slow), model=2)
        except (RuntimeError, ValueError):
            pass
    return out


def fit_timescales(autocov: np.ndarray, min_weight: float = 0.05) -> list[dict[str, float]]:
    """``fit_timescale`` for every neuron of an autocovariance [K+1, H]; neurons with no variance -> NaN."""
    result = []
    for i in range(autocov.shape[1]):
        c0 = autocov[0, i]
        if not (np.isfinite(c0) and c0 > 1e-12):
            result.append(fit_timescale(np.full(autocov.shape[0], np.nan)))
            continue
        result.append(fit_timescale(autocov[:, i] / c0, min_weight))
    return result


def population_autocorrelation(autocov: np.ndarray) -> np.ndarray:
    """Mean over neurons (with variance) of the normalized autocorrelation: [K+1]."""
    c0 = autocov[0]
    alive = np.isfinite(c0) & (c0 > 1e-12)
    if not alive.any():
        return np.full(autocov.shape[0], np.nan)
    return (autocov[:, alive] / c0[alive]).mean(axis=1)


def network_timescales(core_or_model, *, trials: int = 10, steps: int = 100_000, burn_in: int = 500,
                       max_lag: int = 30, chunk: int = 2048, seed: int = 0, min_weight: float = 0.05
                       ) -> dict[str, Any]:
    """The network-mediated timescale tau_net of every neuron (SPEC 5).

    Returns {"tau": trained tau' [H], "tau_net": [H] (NaN where both fits failed or the neuron is
    silent), "fits": per-neuron fit details, "tau_net_mean": mean over neurons with tau_net > 1,
    "population_ac": [K+1], "autocov": [K+1, H], "forget_timescale": LSTM only (else None)}.
    """
    core = core_or_model.core if isinstance(core_or_model, agents.MultiHeadModel) else core_or_model
    sums = LagSums(max_lag)
    forget = ForgetGate(core) if isinstance(core, agents.LeakyLSTM) else None

    def consume(hidden, x, state):
        sums.add(hidden)
        if forget is not None:
            forget.add(hidden, x, state)

    drive(core, consume, trials=trials, steps=steps, burn_in=burn_in, chunk=max(chunk, max_lag), seed=seed)
    autocov = sums.autocovariance().mean(axis=1)
    fits = fit_timescales(autocov, min_weight)
    tau_net = np.array([f["tau"] for f in fits])
    keep = tau_net[np.isfinite(tau_net) & (tau_net > 1)]
    return {
        "tau": core.tau.detach().cpu().numpy().astype(np.float64),
        "tau_net": tau_net,
        "fits": fits,
        "tau_net_mean": float(keep.mean()) if keep.size else math.nan,
        "population_ac": population_autocorrelation(autocov),
        "autocov": autocov,
        "forget_timescale": forget.timescale() if forget is not None else None,
    }


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
