"""The paper's analyses of trained networks (SPEC 5): timescales, ablation, perturbation,
forgetting/generalization and dimensionality. See docs/analysis.md.

Library functions take a model (``agents.MultiHeadModel``) and return plain numbers or numpy
arrays; ``analyze_run`` runs them on every checkpoint of a run folder and writes tidy CSV tables
and PNG figures; ``add_analyze_parser`` registers the ``memory-envs analyze`` subcommand.

All randomness goes through a ``torch.Generator`` or a numpy ``Generator`` seeded from a ``seed``
argument, so every result repeats exactly on CPU.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

import agents
from agents.checkpoint import atomic_write
from agents.cores import LeakyRNN, _LeakyTorchRNN
from baselines.plots import pyplot, save_figure
from memory_envs import make_batch, tasks

ANALYSES = ("timescales", "ablation", "perturbation", "forgetting", "dimensionality")
#: The paper's eps grid: 0 and 10^(-2 ... 0) in thirds of a decade (0.215 and 0.464 are on it).
DEFAULT_EPS = (0.0,) + tuple(float(v) for v in np.round(np.logspace(-2, 0, 7), 4))


class AnalysisError(ValueError):
    """Input an analysis cannot use (not a run folder, no such head, wrong model kind)."""


# ----------------------------------------------------------------------------------------------
# Run folders
# ----------------------------------------------------------------------------------------------
@dataclass
class Run:
    """A training run folder: its config and its checkpoints {N: path}, sorted by N."""

    path: Path
    config: dict[str, Any]
    checkpoints: dict[int, Path] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.config.get("task", "parity")

    @property
    def label(self) -> str:
        c = self.config
        return f"{self.path.name} ({c.get('curriculum', '?')}, {c.get('core', '?')})"

    def load(self, n: int) -> agents.MultiHeadModel:
        if n not in self.checkpoints:
            raise AnalysisError(f"{self.path} has no checkpoint for N={n}; checkpoints: {sorted(self.checkpoints)}")
        return load_model(self.checkpoints[n])


def load_model(path: str | os.PathLike) -> agents.MultiHeadModel:
    """An agents checkpoint that is a MultiHeadModel (analyses need readouts), in eval mode on CPU."""
    try:
        model = agents.load(path)
    except (FileNotFoundError, ValueError) as error:
        raise AnalysisError(str(error)) from None
    if not isinstance(model, agents.MultiHeadModel):
        raise AnalysisError(f"{path}: is a bare {type(model).__name__} core, not a MultiHeadModel; the analyses "
                            "need readout heads")
    return model.eval()


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run folder written by ``baselines.trainer``; AnalysisError if it is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise AnalysisError(f"{path} is not a run folder (no such directory)")
    if not (path / "config.json").is_file():
        raise AnalysisError(f"{path} is not a run folder (no config.json)")
    try:
        config = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as error:
        raise AnalysisError(f"{path / 'config.json'} is not valid JSON: {error}") from None
    checkpoints = {}
    root = path / "checkpoints"
    if root.is_dir():
        for sub in root.iterdir():
            if sub.is_dir() and sub.name.startswith("n") and sub.name[1:].isdigit():
                checkpoints[int(sub.name[1:])] = sub
    if not checkpoints:
        raise AnalysisError(f"{path} has no checkpoints (checkpoints/nNNN): no N was solved yet")
    return Run(path, config, dict(sorted(checkpoints.items())))


def check_head(model: agents.MultiHeadModel, n: int) -> None:
    if n not in model.ns:
        raise AnalysisError(f"the model has no head for N={n}; heads: {model.ns}")


# ----------------------------------------------------------------------------------------------
# Driving the network with random bits
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def drive(core: agents.Core, consume: Callable[[torch.Tensor, torch.Tensor, Any], None], *, trials: int = 10,
          steps: int = 100_000, burn_in: int = 500, chunk: int = 2048, seed: int = 0, p: float = 0.5) -> None:
    """Run ``core`` on ``trials`` parallel streams of Bernoulli(p) bits (batch B = trials).

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
    dtype = core.time_constant.raw.dtype
    state = core.initial_state(trials, generator=g)

    def bits(length: int) -> torch.Tensor:
        return torch.bernoulli(torch.full((length, trials, 1), p, dtype=dtype), generator=g)

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
        return out.numpy()


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


# ----------------------------------------------------------------------------------------------
# Exponential fits
# ----------------------------------------------------------------------------------------------
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
        self.total = torch.zeros(hsz, dtype=torch.float64)
        self.count = 0

    def add(self, hidden: torch.Tensor, x: torch.Tensor, state) -> None:
        h0 = state[0]
        h_prev = torch.cat((h0.unsqueeze(0), hidden[:-1]), dim=0)
        f = torch.sigmoid(x @ self.w_ih.t() + h_prev @ self.w_hh.t() + self.bias)
        self.total += f.sum(dim=(0, 1)).to(torch.float64)
        self.count += f.shape[0] * f.shape[1]

    def timescale(self) -> dict[str, Any]:
        per_neuron = (self.total / self.count).numpy()
        mean = float(per_neuron.mean())
        return {"mean_forget_gate": mean, "timescale": 1.0 / (1.0 - mean) if mean < 1 else math.inf,
                "per_neuron": 1.0 / np.maximum(1.0 - per_neuron, 1e-12)}


# ----------------------------------------------------------------------------------------------
# Streaming accuracy, ablation, perturbation
# ----------------------------------------------------------------------------------------------
@dataclass
class Stream:
    """One long batch of p = 0.5 bits with every-step labels for N, and a fixed initial state."""

    task: str
    n: int
    inputs: torch.Tensor  # [T, B, 1]
    labels: torch.Tensor  # [T, B]
    mask: torch.Tensor  # [T] bool
    seed: int

    def state(self, core: agents.Core):
        return core.initial_state(self.inputs.shape[1], generator=torch.Generator().manual_seed(self.seed))


def make_stream(task: str, n: int, *, length: int = 10_000, batch_size: int = 8, seed: int = 0) -> Stream:
    """A streaming test batch (memory_envs.make_batch(..., streaming=True, p=0.5))."""
    tasks.check_task(task)
    batch = make_batch(task, [n], batch_size, seed=seed, p=0.5, length=max(length, n), streaming=True)
    t = batch.to_torch("cpu")
    return Stream(task, n, t["inputs"], t["streaming_labels"][:, :, 0], t["streaming_mask"][:, 0], seed)


@torch.no_grad()
def streaming_accuracy(model: agents.MultiHeadModel, stream: Stream, head: int | None = None) -> float:
    """Accuracy of head ``head`` (default stream.n) at every labelled step of ``stream``."""
    head = stream.n if head is None else head
    check_head(model, head)
    x = stream.inputs.to(model.core.time_constant.raw.dtype)
    logits = model(x, ns=[head], every_step=True, state=stream.state(model.core))[head]
    correct = (logits.argmax(-1) == stream.labels)[stream.mask]
    return float(correct.float().mean())


def _gate_rows(core: agents.Core, i: int) -> list[int]:
    if isinstance(core, _LeakyTorchRNN):
        gates = core.rnn.weight_ih_l0.shape[0] // core.hidden_size
        return [g * core.hidden_size + i for g in range(gates)]
    return [i]


def ablate(model: agents.MultiHeadModel, neurons: int | Iterable[int], *, zero_bias: bool = True
           ) -> agents.MultiHeadModel:
    """A copy of ``model`` with ``neurons`` silenced; ``model`` itself is not changed.

    Zeroed in the copy: each neuron's recurrent row (its input from the others) and column (its
    output to the others), its input weight, its weights in every readout, and with ``zero_bias``
    (default) its recurrent and input biases. For GRU/LSTM the neuron's row in every gate block and
    its column of the recurrent matrix are zeroed. A silenced leaky neuron keeps only its own leak
    from h0, which it passes to nobody.
    """
    neurons = [int(neurons)] if isinstance(neurons, (int, np.integer)) else [int(i) for i in neurons]
    copy_ = copy.deepcopy(model)
    core = copy_.core
    hsz = core.hidden_size
    for i in neurons:
        if not 0 <= i < hsz:
            raise AnalysisError(f"neuron index {i} out of range [0, {hsz})")
    with torch.no_grad():
        for i in neurons:
            if isinstance(core, LeakyRNN):
                w_ih, w_hh, biases = core.weight_ih, core.weight_hh, (core.bias_ih, core.bias_hh)
            else:
                rnn = core.rnn
                w_ih, w_hh, biases = rnn.weight_ih_l0, rnn.weight_hh_l0, (rnn.bias_ih_l0, rnn.bias_hh_l0)
            rows = _gate_rows(core, i)
            w_hh[rows, :] = 0.0
            w_hh[:, i] = 0.0
            w_ih[rows, :] = 0.0
            if zero_bias:
                for b in biases:
                    b[rows] = 0.0
            for n in copy_.ns:
                copy_.head(n).weight[:, i] = 0.0
    return copy_


def ablation(model: agents.MultiHeadModel, stream: Stream, *, k: int = 20, zero_bias: bool = True,
             head: int | None = None) -> list[dict[str, Any]]:
    """Silence the k slowest and the k fastest neurons by trained tau, one at a time (the paper).

    Returns rows {"group": "slow"|"fast", "rank", "neuron", "tau", "accuracy", "intact", "relative"}
    with relative = ablated accuracy / intact accuracy on ``stream``.
    """
    head = stream.n if head is None else head
    check_head(model, head)
    intact = streaming_accuracy(model, stream, head)
    tau = model.tau.detach().cpu().numpy()
    order = np.argsort(tau, kind="stable")
    k = min(k, tau.size)
    rows = []
    for group, picked in (("slow", order[::-1][:k]), ("fast", order[:k])):
        for rank, i in enumerate(picked):
            acc = streaming_accuracy(ablate(model, int(i), zero_bias=zero_bias), stream, head)
            rows.append({"group": group, "rank": rank, "neuron": int(i), "tau": float(tau[i]), "accuracy": acc,
                         "intact": intact, "relative": acc / intact if intact > 0 else math.nan})
    return rows


def recurrent_weight_param(core: agents.Core) -> tuple[torch.nn.Parameter, torch.Tensor | None]:
    """The recurrent matrix W that weight perturbation acts on, and its mask (leaky: zero diagonal)."""
    if isinstance(core, LeakyRNN):
        return core.weight_hh, core.mask
    if isinstance(core, _LeakyTorchRNN):
        return core.rnn.weight_hh_l0, None
    raise AnalysisError(f"weight perturbation does not support core {type(core).__name__}")


def perturb_weights(model: agents.MultiHeadModel, eps: float, generator: torch.Generator) -> agents.MultiHeadModel:
    """A copy with W <- W + eps |W|_F / |D|_F D, D ~ N(0, 1) per entry (off-diagonal only for a leaky
    RNN without self-connections). D is drawn from ``generator`` whatever eps is."""
    copy_ = copy.deepcopy(model)
    w, mask = recurrent_weight_param(copy_.core)
    d = torch.randn(w.shape, generator=generator, dtype=torch.float64)
    if mask is not None:
        d = d * mask.to(torch.float64)
    with torch.no_grad():
        w64 = w.to(torch.float64) if mask is None else (w * mask).to(torch.float64)
        if eps != 0:
            w.copy_((w64 + eps * w64.norm() / d.norm() * d).to(w.dtype))
    return copy_


def perturb_tau(model: agents.MultiHeadModel, eps: float, generator: torch.Generator) -> agents.MultiHeadModel:
    """A copy with tau' <- tau' + eps |tau'| / |D| |D| (increase only, D ~ N(0, 1) per neuron, |.| the
    L2 norm over neurons and elementwise abs)."""
    copy_ = copy.deepcopy(model)
    tau = copy_.core.tau.detach().to(torch.float64)
    d = torch.randn(tau.shape, generator=generator, dtype=torch.float64)
    if eps != 0:
        copy_.core.time_constant.set_((tau + eps * tau.norm() / d.norm() * d.abs()).to(tau.dtype))
    return copy_


def perturbation(model: agents.MultiHeadModel, stream: Stream, *, kind: str = "weight",
                 eps: Sequence[float] = DEFAULT_EPS, draws: int = 10, seed: int = 0,
                 head: int | None = None) -> list[dict[str, Any]]:
    """Accuracy under weight ("weight") or tau ("tau") perturbation for every eps and draw, relative
    to the unperturbed model (eps = 0 returns that baseline exactly; its perturbed copy is the model).

    Rows {"kind", "eps", "draw", "accuracy", "baseline", "relative"}.
    """
    if kind not in ("weight", "tau"):
        raise AnalysisError(f"perturbation kind must be 'weight' or 'tau', got {kind!r}")
    head = stream.n if head is None else head
    check_head(model, head)
    recurrent_weight_param(model.core) if kind == "weight" else None
    baseline = streaming_accuracy(model, stream, head)
    make = perturb_weights if kind == "weight" else perturb_tau
    g = torch.Generator().manual_seed(seed)
    rows = []
    for e in eps:
        e = float(e)
        if e < 0:
            raise AnalysisError(f"eps must be >= 0, got {e}")
        for draw in range(draws if e != 0 else 1):
            acc = streaming_accuracy(make(model, e, g), stream, head)
            rows.append({"kind": kind, "eps": e, "draw": draw, "accuracy": acc, "baseline": baseline,
                         "relative": acc / baseline if baseline > 0 else math.nan})
    return rows


# ----------------------------------------------------------------------------------------------
# Forgetting / generalization, dimensionality
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def accuracy_on_ns(model: agents.MultiHeadModel, task: str, ns: Sequence[int], *, single_head: bool | None = None,
                   batches: int = 4, batch_size: int = 256, p: float | str | None = None, seed: int = 0
                   ) -> dict[int, float]:
    """Final-step accuracy of ``model`` on trials scored for every N in ``ns`` (the trainer's test:
    make_batch trials of random length in [max(ns) + 2, 4 max(ns) + 2), the task's default p).

    A single-head model (one head; default: when model has exactly one head) answers every N with
    that head. Otherwise head N answers N, and N without a head gives NaN.
    """
    ns = list(tasks.check_ns(task, ns))
    single_head = len(model.ns) == 1 if single_head is None else single_head
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    correct = np.zeros(len(ns))
    total = 0
    dtype = model.core.time_constant.raw.dtype
    for _ in range(batches):
        t = make_batch(task, ns, batch_size, rng=rng, p=p).to_torch("cpu")
        x = t["inputs"].to(dtype)
        hidden, _ = model.core(x, model.core.initial_state(x.shape[1], generator=gen))
        last = hidden[-1]
        for j, n in enumerate(ns):
            h = model.ns[0] if single_head else n
            if h not in model.ns:
                continue
            correct[j] += float((model.head(h)(last).argmax(-1) == t["labels"][:, j]).sum())
        total += x.shape[1]
    return {n: (correct[j] / total if (single_head or n in model.ns) else math.nan) for j, n in enumerate(ns)}


def forgetting_matrix(run: Run, eval_ns: Sequence[int] | None = None, *, beyond: int = 5, **kwargs
                      ) -> tuple[list[int], list[int], np.ndarray]:
    """Accuracy of every checkpoint (rows, by N) on every N (cols: the run's Ns up to the largest
    checkpoint + ``beyond``). Returns (row Ns, col Ns, matrix)."""
    rows = list(run.checkpoints)
    if eval_ns is None:
        low = min([int(run.config.get("start_n", 2))] + rows)
        eval_ns = list(range(max(low, 2 if run.task == "dms" else 1), max(rows) + beyond + 1))
    single = run.config.get("curriculum") == "single"
    matrix = np.full((len(rows), len(eval_ns)), np.nan)
    for i, n in enumerate(rows):
        acc = accuracy_on_ns(run.load(n), run.task, eval_ns, single_head=single, **kwargs)
        matrix[i] = [acc[m] for m in eval_ns]
    return rows, list(eval_ns), matrix


def dimensionality(core_or_model, *, trials: int = 10, steps: int = 10_000, burn_in: int = 500,
                   threshold: float = 0.9, chunk: int = 2048, seed: int = 0) -> dict[str, Any]:
    """PCA of the hidden activity under random-bit drive: the number of components that explain
    ``threshold`` (90%) of the variance, and the explained-variance ratios."""
    core = core_or_model.core if isinstance(core_or_model, agents.MultiHeadModel) else core_or_model
    hsz = core.hidden_size
    s1 = torch.zeros(hsz, dtype=torch.float64)
    s2 = torch.zeros(hsz, hsz, dtype=torch.float64)
    count = [0]

    def consume(hidden, x, state):
        h = hidden.reshape(-1, hsz).to(torch.float64)
        s1.add_(h.sum(0))
        s2.addmm_(h.t(), h)
        count[0] += h.shape[0]

    drive(core, consume, trials=trials, steps=steps, burn_in=burn_in, chunk=chunk, seed=seed)
    mean = s1 / count[0]
    cov = s2 / count[0] - torch.outer(mean, mean)
    eig = torch.linalg.eigvalsh(cov).flip(0).clamp_min(0).numpy()
    total = eig.sum()
    ratio = eig / total if total > 0 else np.zeros_like(eig)
    components = int(np.searchsorted(np.cumsum(ratio), threshold) + 1) if total > 0 else 0
    return {"components": min(components, hsz), "explained_ratio": ratio, "units": hsz}


# ----------------------------------------------------------------------------------------------
# Run folders -> tables and figures
# ----------------------------------------------------------------------------------------------
@dataclass
class AnalysisOptions:
    """Sizes and choices of ``analyze_run`` (defaults: the paper's procedure)."""

    analyses: tuple[str, ...] = ANALYSES
    ns: tuple[int, ...] | None = None  # checkpoints for timescales/dimensionality (None: all)
    n: int | None = None  # the N for ablation/perturbation (None: the largest checkpoint)
    trials: int = 10
    steps: int = 100_000
    burn_in: int = 500
    max_lag: int = 30
    min_weight: float = 0.05
    pca_steps: int = 10_000
    k: int = 20
    zero_bias: bool = True
    stream_length: int = 10_000
    stream_batch: int = 8
    eps: tuple[float, ...] = DEFAULT_EPS
    tau_eps: tuple[float, ...] = DEFAULT_EPS
    draws: int = 10
    eval_batches: int = 4
    eval_batch_size: int = 256
    beyond: int = 5
    seed: int = 0
    plots: bool = True

    def check(self) -> "AnalysisOptions":
        unknown = [a for a in self.analyses if a not in ANALYSES]
        if unknown or not self.analyses:
            raise AnalysisError(f"analyses must be a non-empty subset of {list(ANALYSES)}, got {list(self.analyses)}")
        for name in ("trials", "steps", "pca_steps", "k", "stream_length", "stream_batch", "draws",
                     "eval_batches", "eval_batch_size", "max_lag"):
            if int(getattr(self, name)) < 1:
                raise AnalysisError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps <= self.max_lag:
            raise AnalysisError(f"steps ({self.steps}) must exceed max_lag ({self.max_lag})")
        if self.burn_in < 0 or self.beyond < 0:
            raise AnalysisError("burn_in and beyond must be >= 0")
        if any(e < 0 for e in (*self.eps, *self.tau_eps)):
            raise AnalysisError("eps values must be >= 0")
        return self


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            if rows:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)

    atomic_write(path, write)
    return path


def read_csv(path: Path) -> list[dict[str, Any]]:
    def conv(v: str) -> Any:
        try:
            return float(v) if any(c in v for c in ".en") else int(v)
        except ValueError:
            return v
    with open(path, newline="") as f:
        return [{k: conv(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _pick(run: Run, wanted: Sequence[int] | None) -> list[int]:
    if wanted is None:
        return list(run.checkpoints)
    missing = [n for n in wanted if n not in run.checkpoints]
    if missing:
        raise AnalysisError(f"{run.path} has no checkpoint for N={missing}; checkpoints: {list(run.checkpoints)}")
    return list(wanted)


def _analysis_n(run: Run, n: int | None) -> int:
    n = max(run.checkpoints) if n is None else n
    if n not in run.checkpoints:
        raise AnalysisError(f"{run.path}: no checkpoint with a head for N={n}; checkpoints: {list(run.checkpoints)}")
    return n


def analyze_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                options: AnalysisOptions | None = None, log: Callable[[str], None] = lambda s: None
                ) -> dict[str, Any]:
    """Run the chosen analyses on a run folder; write CSV tables and PNGs into ``out``
    (default RUN_DIR/analysis). Returns {analysis: table rows} (plus "files")."""
    options = (options or AnalysisOptions()).check()
    run = load_run(run_dir)
    out = Path(out) if out is not None else run.path / "analysis"
    # check everything the options ask for before the slow work starts
    ts_ns = _pick(run, options.ns)
    target = _analysis_n(run, options.n) if {"ablation", "perturbation"} & set(options.analyses) else None
    if target is not None and "perturbation" in options.analyses:
        recurrent_weight_param(run.load(target).core)
    results: dict[str, Any] = {"files": []}
    files = results["files"]
    curriculum = run.config.get("curriculum", "?")
    base = {"run": run.path.name, "curriculum": curriculum, "core": run.config.get("core", "?")}

    if "timescales" in options.analyses:
        neuron_rows, summary_rows, pop_rows = [], [], []
        for n in ts_ns:
            started = time.perf_counter()
            r = network_timescales(run.load(n), trials=options.trials, steps=options.steps, burn_in=options.burn_in,
                                   max_lag=options.max_lag, seed=options.seed, min_weight=options.min_weight)
            seconds = time.perf_counter() - started
            for i, f in enumerate(r["fits"]):
                neuron_rows.append({**base, "n": n, "neuron": i, "tau": float(r["tau"][i]), "tau_net": f["tau"],
                                    "fit": f["model"], "tau_single": f["tau_single"], "tau_fast": f["tau_fast"],
                                    "tau_slow": f["tau_slow"], "a_slow": f["a_slow"]})
            forget = r["forget_timescale"]
            summary_rows.append({**base, "n": n, "tau_mean": float(r["tau"].mean()), "tau_max": float(r["tau"].max()),
                                 "tau_net_mean": r["tau_net_mean"],
                                 "neurons_tau_net_gt1": int(np.sum(np.isfinite(r["tau_net"]) & (r["tau_net"] > 1))),
                                 "neurons_failed": int(np.sum(~np.isfinite(r["tau_net"]))),
                                 "forget_gate_timescale": forget["timescale"] if forget else math.nan,
                                 "seconds": round(seconds, 2)})
            pop_rows += [{**base, "n": n, "lag": k, "ac": float(v)} for k, v in enumerate(r["population_ac"])]
            log(f"timescales N={n}: tau mean {summary_rows[-1]['tau_mean']:.2f}, tau_net mean "
                f"{r['tau_net_mean']:.2f} ({seconds:.1f} s)")
        files += [write_csv(out / "timescales_neurons.csv", neuron_rows),
                  write_csv(out / "timescales.csv", summary_rows),
                  write_csv(out / "population_ac.csv", pop_rows)]
        results["timescales"] = summary_rows
        if options.plots:
            files.append(plot_timescales([summary_rows], [run.label], out / "timescales.png", neuron_rows, pop_rows))

    if target is not None:
        model = run.load(target)
        stream = make_stream(run.task, target, length=options.stream_length, batch_size=options.stream_batch,
                             seed=options.seed)
    if "ablation" in options.analyses:
        rows = [{**base, "n": target, **r} for r in ablation(model, stream, k=options.k, zero_bias=options.zero_bias)]
        files.append(write_csv(out / "ablation.csv", rows))
        results["ablation"] = rows
        for g in ("slow", "fast"):
            rel = [r["relative"] for r in rows if r["group"] == g]
            log(f"ablation N={target}: {g}est {len(rel)} neurons, mean relative accuracy {np.mean(rel):.3f}")
        if options.plots:
            files.append(plot_ablation([rows], [run.label], out / "ablation.png"))
    if "perturbation" in options.analyses:
        rows = []
        for kind, grid in (("weight", options.eps), ("tau", options.tau_eps)):
            rows += [{**base, "n": target, **r} for r in perturbation(model, stream, kind=kind, eps=grid,
                                                                    draws=options.draws, seed=options.seed)]
        files.append(write_csv(out / "perturbation.csv", rows))
        results["perturbation"] = rows
        log(f"perturbation N={target}: {len(rows)} evaluations")
        if options.plots:
            files.append(plot_perturbation([rows], [run.label], out / "perturbation.png"))
    if "forgetting" in options.analyses:
        row_ns, col_ns, matrix = forgetting_matrix(run, beyond=options.beyond, batches=options.eval_batches,
                                                   batch_size=options.eval_batch_size, seed=options.seed)
        rows = [{**base, "checkpoint_n": rn, "eval_n": cn, "accuracy": float(matrix[i, j]),
                 "has_head": int(not math.isnan(matrix[i, j]))}
                for i, rn in enumerate(row_ns) for j, cn in enumerate(col_ns)]
        files.append(write_csv(out / "forgetting.csv", rows))
        results["forgetting"] = rows
        log(f"forgetting: {len(row_ns)} checkpoints x {len(col_ns)} Ns")
        if options.plots:
            files.append(plot_forgetting(row_ns, col_ns, matrix, run.label, out / "forgetting.png"))
    if "dimensionality" in options.analyses:
        rows = []
        for n in ts_ns:
            d = dimensionality(run.load(n), trials=options.trials, steps=options.pca_steps, burn_in=options.burn_in,
                               seed=options.seed)
            rows.append({**base, "n": n, "components_90": d["components"], "units": d["units"],
                         "pc1_ratio": float(d["explained_ratio"][0])})
        files.append(write_csv(out / "dimensionality.csv", rows))
        results["dimensionality"] = rows
        log("dimensionality: " + ", ".join(f"N={r['n']}: {r['components_90']}" for r in rows))
        if options.plots:
            files.append(plot_dimensionality([rows], [run.label], out / "dimensionality.png"))
    return results


# ----------------------------------------------------------------------------------------------
# Figures (one run or several on the same axes)
# ----------------------------------------------------------------------------------------------
def plot_timescales(summaries: Sequence[list[dict]], labels: Sequence[str], path: Path,
                    neuron_rows: list[dict] | None = None, pop_rows: list[dict] | None = None) -> Path:
    plt = pyplot()
    extra = neuron_rows is not None
    fig, axes = plt.subplots(1, 3 if extra else 2, figsize=(13 if extra else 9, 3.6))
    for rows, label in zip(summaries, labels):
        ns = [r["n"] for r in rows]
        axes[0].plot(ns, [r["tau_mean"] for r in rows], "o-", label=label)
        axes[1].plot(ns, [r["tau_net_mean"] for r in rows], "o-", label=label)
    axes[0].set(xlabel="N (checkpoint)", ylabel="mean trained tau", title="single-neuron tau")
    axes[1].set(xlabel="N (checkpoint)", ylabel="mean tau_net (neurons with tau_net > 1)", title="network timescale")
    axes[0].legend(fontsize=7)
    if extra:
        last = max(r["n"] for r in neuron_rows)
        pts = [(r["tau"], r["tau_net"]) for r in neuron_rows if r["n"] == last]
        axes[2].scatter([p[0] for p in pts], [p[1] for p in pts], s=6)
        axes[2].set(xlabel="trained tau", ylabel="tau_net", yscale="log", title=f"neurons at N={last}")
    save_figure(fig, path)
    if pop_rows:
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
        for n in sorted({r["n"] for r in pop_rows}):
            pts = [r for r in pop_rows if r["n"] == n]
            ax.plot([r["lag"] for r in pts], [r["ac"] for r in pts], label=f"N={n}")
        ax.set(xlabel="lag (steps)", ylabel="population autocorrelation")
        ax.legend(fontsize=6, ncol=2)
        save_figure(fig, path.with_name("population_ac.png"))
    return path


def plot_ablation(tables: Sequence[list[dict]], labels: Sequence[str], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    width = 0.8 / max(len(tables), 1)
    for j, (rows, label) in enumerate(zip(tables, labels)):
        means = [np.mean([r["relative"] for r in rows if r["group"] == g]) for g in ("slow", "fast")]
        ax.bar(np.arange(2) + j * width, means, width, label=f"{label} N={rows[0]['n']}")
    ax.set_xticks(np.arange(2) + width * (len(tables) - 1) / 2, ["slowest tau", "fastest tau"])
    ax.set(ylabel="relative accuracy (ablated / intact)", ylim=(0, 1.05), title="single-neuron ablation")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_perturbation(tables: Sequence[list[dict]], labels: Sequence[str], path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for rows, label in zip(tables, labels):
        for ax, kind in zip(axes, ("weight", "tau")):
            pts = [r for r in rows if r["kind"] == kind and r["eps"] > 0]
            eps = sorted({r["eps"] for r in pts})
            mean = [np.mean([r["relative"] for r in pts if r["eps"] == e]) for e in eps]
            std = [np.std([r["relative"] for r in pts if r["eps"] == e]) for e in eps]
            ax.errorbar(eps, mean, yerr=std, marker="o", capsize=2, label=label)
    for ax, kind in zip(axes, ("weight", "tau")):
        ax.set(xscale="log", xlabel="eps", ylabel="relative accuracy", title=f"{kind} perturbation", ylim=(0, 1.1))
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def plot_forgetting(row_ns: list[int], col_ns: list[int], matrix: np.ndarray, label: str, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 0.25 * len(col_ns), 1.2 + 0.25 * len(row_ns)))
    im = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto", origin="lower",
                   extent=(col_ns[0] - 0.5, col_ns[-1] + 0.5, -0.5, len(row_ns) - 0.5))
    ax.set_yticks(range(len(row_ns)), [str(n) for n in row_ns])
    ax.set(xlabel="evaluated N", ylabel="checkpoint N", title=label)
    fig.colorbar(im, ax=ax, label="accuracy")
    return save_figure(fig, path)


def plot_dimensionality(tables: Sequence[list[dict]], labels: Sequence[str], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for rows, label in zip(tables, labels):
        ax.plot([r["n"] for r in rows], [r["components_90"] for r in rows], "o-", label=label)
    ax.set(xlabel="N (checkpoint)", ylabel="PCs for 90% variance", title="dimensionality")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def compare_runs(results: Sequence[dict[str, Any]], labels: Sequence[str], out: str | os.PathLike) -> list[Path]:
    """Figures of several runs on the same axes (tau and tau_net vs N, ablation, perturbation, dimensionality)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, plot in (("timescales", plot_timescales), ("ablation", plot_ablation),
                       ("perturbation", plot_perturbation), ("dimensionality", plot_dimensionality)):
        tables = [r[name] for r in results if name in r]
        if len(tables) == len(results) and tables:
            files.append(plot(tables, labels, out / f"compare_{name}.png"))
            write_csv(out / f"compare_{name}.csv", [row for t in tables for row in t])
            files.append(out / f"compare_{name}.csv")
    return files


# ----------------------------------------------------------------------------------------------
# Command line: memory-envs analyze RUN_DIR [RUN_DIR ...]
# ----------------------------------------------------------------------------------------------
def _names(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    return ANALYSES if names == ("all",) else names


def add_analyze_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``memory-envs analyze`` on the subparsers of the main parser."""
    from baselines.cli import comma_floats, comma_ints  # the command's shared argument types

    d = AnalysisOptions()
    p = subparsers.add_parser(
        "analyze", help="the paper's analyses of trained runs (timescales, ablation, perturbation, ...)",
        description="Analyze run folders written by `memory-envs train`: tables (CSV) and figures (PNG) in "
                    "RUN_DIR/analysis; with several runs also comparison figures in --compare-dir. Defaults are "
                    "the paper's sizes (minutes per checkpoint at 500 units); use e.g. --steps 2000 --trials 2 "
                    "--draws 2 --k 3 --stream-length 500 for a quick look. See docs/analysis.md.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--analyses", type=_names, default=ANALYSES,
                   help=f"comma-separated subset of {','.join(ANALYSES)} or 'all' (default: all)")
    p.add_argument("--ns", type=comma_ints, default=None, help="checkpoints (N) for timescales and dimensionality "
                                                           "(default: every checkpoint)")
    p.add_argument("--n", type=int, default=None, help="the N whose checkpoint and head are ablated/perturbed "
                                                        "(default: the largest checkpoint)")
    g = p.add_argument_group("timescales and dimensionality")
    g.add_argument("--trials", type=int, default=d.trials, help=f"random-bit trials (batch) (default: {d.trials})")
    g.add_argument("--steps", type=int, default=d.steps, help=f"steps per trial for tau_net (default: {d.steps})")
    g.add_argument("--burn-in", type=int, default=d.burn_in, help=f"discarded steps (default: {d.burn_in})")
    g.add_argument("--max-lag", type=int, default=d.max_lag, help=f"fitted lags 0..K (default: {d.max_lag})")
    g.add_argument("--min-weight", type=float, default=d.min_weight,
                   help=f"smallest component weight of an accepted double-exponential fit (default: {d.min_weight})")
    g.add_argument("--pca-steps", type=int, default=d.pca_steps, help=f"steps per trial for PCA (default: {d.pca_steps})")
    g = p.add_argument_group("ablation and perturbation")
    g.add_argument("--k", type=int, default=d.k, help=f"slowest and fastest neurons ablated (default: {d.k})")
    g.add_argument("--keep-bias", action="store_true", help="do not zero an ablated neuron's biases")
    g.add_argument("--stream-length", type=int, default=d.stream_length,
                   help=f"steps of the streaming test (default: {d.stream_length})")
    g.add_argument("--stream-batch", type=int, default=d.stream_batch,
                   help=f"parallel streams (default: {d.stream_batch})")
    g.add_argument("--eps", type=comma_floats, default=d.eps, help="weight-perturbation eps grid (default: 0 and "
                                                              "10^-2..10^0 in thirds of a decade)")
    g.add_argument("--tau-eps", type=comma_floats, default=d.tau_eps, help="tau-perturbation eps grid (default: as --eps)")
    g.add_argument("--draws", type=int, default=d.draws, help=f"random draws per eps (default: {d.draws})")
    g = p.add_argument_group("forgetting")
    g.add_argument("--eval-batches", type=int, default=d.eval_batches, help=f"default: {d.eval_batches}")
    g.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size, help=f"default: {d.eval_batch_size}")
    g.add_argument("--beyond", type=int, default=d.beyond,
                   help=f"evaluate up to the largest checkpoint N + this (default: {d.beyond})")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=None, help="output folder for a single run (default: RUN_DIR/analysis)")
    g.add_argument("--compare-dir", default="analysis-compare",
                   help="comparison figures of several runs (default: ./analysis-compare)")
    g.add_argument("--no-plots", action="store_true", help="tables only")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=cmd_analyze)
    return p


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    options = AnalysisOptions(
        analyses=tuple(args.analyses), ns=args.ns, n=args.n, trials=args.trials, steps=args.steps,
        burn_in=args.burn_in, max_lag=args.max_lag, min_weight=args.min_weight, pca_steps=args.pca_steps,
        k=args.k, zero_bias=not args.keep_bias, stream_length=args.stream_length, stream_batch=args.stream_batch,
        eps=tuple(args.eps), tau_eps=tuple(args.tau_eps), draws=args.draws, eval_batches=args.eval_batches,
        eval_batch_size=args.eval_batch_size, beyond=args.beyond, seed=args.seed, plots=not args.no_plots)
    if args.out is not None and len(args.run_dirs) > 1:
        print("memory-envs: error: --out needs exactly one RUN_DIR (each run writes to RUN_DIR/analysis)",
              file=sys.stderr)
        return 2
    try:
        options.check()
        runs = [load_run(r) for r in args.run_dirs]  # all folders are checked before any work
        results = []
        for run in runs:
            print(f"{run.path}:")
            result = analyze_run(run.path, args.out, options, log=lambda s: print("  " + s, flush=True))
            print("  wrote " + ", ".join(Path(f).name for f in result["files"]))
            results.append(result)
    except (AnalysisError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"memory-envs: error: {message}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"memory-envs: error: {error} (figures need matplotlib; or pass --no-plots)", file=sys.stderr)
        return 2
    if len(runs) > 1:
        labels = [r.label for r in runs]
        files = compare_runs(results, labels, args.compare_dir) if options.plots else []
        print(f"comparison in {args.compare_dir}: " + ", ".join(f.name for f in files))
    return 0


__all__ = [
    "ANALYSES", "AnalysisError", "AnalysisOptions", "LagSums", "Run", "Stream", "ablate", "ablation",
    "accuracy_on_ns", "add_analyze_parser", "analyze_run", "autocorrelation", "cmd_analyze", "compare_runs",
    "dimensionality", "drive", "fit_timescale", "fit_timescales", "forgetting_matrix", "load_model", "load_run",
    "make_stream", "network_timescales", "perturb_tau", "perturb_weights", "perturbation",
    "population_autocorrelation", "streaming_accuracy",
]
