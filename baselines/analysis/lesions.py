"""Lesions of a trained network: streaming accuracy, single-neuron ablation, and weight and tau
perturbation (docs/analysis.md). Every function returns a changed copy or plain numbers; the model is never changed."""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

import agents
from agents.cores import LeakyRNN
from agents.cores.gated import _LeakyTorchRNN
from baselines.analysis.runs import AnalysisError, check_head
from memory_envs import make_batch, tasks

#: The paper's eps grid: 0 and 10^(-2 ... 0) in thirds of a decade (0.215 and 0.464 are on it).
DEFAULT_EPS = (0.0,) + tuple(float(v) for v in np.round(np.logspace(-2, 0, 7), 4))


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
    """Accuracy of head ``head`` (default stream.n) at every labelled step of ``stream``, on the
    model's device (the stream is moved there)."""
    head = stream.n if head is None else head
    check_head(model, head)
    ref = model.core.time_constant.raw
    x = stream.inputs.to(device=ref.device, dtype=ref.dtype)
    logits = model(x, ns=[head], every_step=True, state=stream.state(model.core))[head]
    correct = (logits.argmax(-1).cpu() == stream.labels)[stream.mask]
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


#: Chance of a streaming test (p = 0.5 bits): the floor of the paper's chance-corrected relative accuracy.
CHANCE = 0.5


def relative_accuracies(accuracy: float, baseline: float) -> dict[str, float]:
    """{"relative": accuracy / baseline, "relative_chance": (accuracy - 0.5) / (baseline - 0.5)}: the plain
    ratio and the chance-corrected one the paper plots (the authors' plotting scripts; 0 at chance, 1 at
    the baseline); NaN where the baseline is not above 0 (resp. chance)."""
    return {"relative": accuracy / baseline if baseline > 0 else math.nan,
            "relative_chance": (accuracy - CHANCE) / (baseline - CHANCE) if baseline > CHANCE else math.nan}


def trained_tau(core: agents.Core) -> torch.Tensor:
    """The trained tau before the clamp tau' = max(tau, 1) (the clamp parametrisation's raw values, which
    may sit below 1); tau' itself for softplus and fixed tau, which have no clamp."""
    tc = core.time_constant
    return tc.raw if tc.trainable and tc.parametrisation == "clamp" else core.tau


def tau_order(tau: np.ndarray, seed: int) -> np.ndarray:
    """Neuron indices from the fastest to the slowest tau; equal taus in an order drawn from ``seed``."""
    tiebreak = np.random.default_rng(seed).permutation(tau.size)
    return np.lexsort((tiebreak, tau))


def ablation(model: agents.MultiHeadModel, stream: Stream, *, k: int = 20, zero_bias: bool = True,
             head: int | None = None, seed: int = 0, progress: Callable[[int], None] | None = None
             ) -> list[dict[str, Any]]:
    """Silence the k slowest and the k fastest neurons, one at a time (the paper).

    Neurons are ranked by the trained tau before the clamp (:func:`trained_tau`), as the authors do,
    ties broken at random from ``seed`` (:func:`tau_order`). Returns rows {"group": "slow"|"fast",
    "rank", "neuron", "tau" (that raw tau), "accuracy", "intact", "relative", "relative_chance"}
    (:func:`relative_accuracies` of the ablated against the intact accuracy on ``stream``).
    ``progress(1)``, if given, after each ablated neuron (2k in all).
    """
    tasks.check_seed(seed)
    head = stream.n if head is None else head
    check_head(model, head)
    intact = streaming_accuracy(model, stream, head)
    tau = trained_tau(model.core).detach().cpu().numpy().astype(np.float64)
    order = tau_order(tau, seed)
    k = min(k, tau.size)
    rows = []
    for group, picked in (("slow", order[::-1][:k]), ("fast", order[:k])):
        for rank, i in enumerate(picked):
            acc = streaming_accuracy(ablate(model, int(i), zero_bias=zero_bias), stream, head)
            rows.append({"group": group, "rank": rank, "neuron": int(i), "tau": float(tau[i]), "accuracy": acc,
                         "intact": intact, **relative_accuracies(acc, intact)})
            if progress is not None:
                progress(1)
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
    d = torch.randn(w.shape, generator=generator, dtype=torch.float64).to(w.device)  # CPU draw, then moved
    if mask is not None:
        d = d * mask.to(torch.float64)
    with torch.no_grad():
        w64 = w.to(torch.float64) if mask is None else (w * mask).to(torch.float64)
        if eps != 0:
            w.copy_((w64 + eps * w64.norm() / d.norm() * d).to(w.dtype))
    return copy_


TAU_PERTURB_TARGETS = ("raw", "clamped")


def perturb_tau(model: agents.MultiHeadModel, eps: float, generator: torch.Generator, *, on: str = "raw"
                ) -> agents.MultiHeadModel:
    """A copy with tau <- tau + eps |tau| / |D| |D| (increase only, D ~ N(0, 1) per neuron, |.| the L2
    norm over neurons and elementwise abs).

    ``on`` "raw" (the paper): tau is the trained value before the clamp tau' = max(tau, 1), so a raw
    tau below 1 may stay below it and the clamp applies after the perturbation. ``on`` "clamped":
    tau is tau' itself. The two differ only for the "clamp" parametrisation with raw values below 1
    (softplus and fixed tau have no clamp: their tau is tau').
    """
    if on not in TAU_PERTURB_TARGETS:
        raise AnalysisError(f"tau perturbation target must be one of {list(TAU_PERTURB_TARGETS)}, got {on!r}")
    copy_ = copy.deepcopy(model)
    tc = copy_.core.time_constant
    clamp = on == "raw" and tc.trainable and tc.parametrisation == "clamp"
    tau = (trained_tau(copy_.core) if clamp else copy_.core.tau).detach().to(torch.float64)
    d = torch.randn(tau.shape, generator=generator, dtype=torch.float64).to(tau.device)  # CPU draw, then moved
    if eps != 0:
        new = (tau + eps * tau.norm() / d.norm() * d.abs()).to(tc.raw.dtype)
        if clamp:
            with torch.no_grad():
                tc.raw.copy_(new)  # tau' = max(raw, 1) is applied by the model
        else:
            tc.set_(new)
    return copy_


def _draws(eps: float, draws: int) -> int:
    """Draws at one eps: eps = 0 is the unperturbed model, evaluated once."""
    return draws if eps != 0 else 1


def perturbation_rows(eps: Sequence[float], draws: int) -> int:
    """How many evaluations (rows) :func:`perturbation` makes for this eps grid."""
    return sum(_draws(float(e), draws) for e in eps)


def perturbation(model: agents.MultiHeadModel, stream: Stream, *, kind: str = "weight",
                 eps: Sequence[float] = DEFAULT_EPS, draws: int = 10, seed: int = 0,
                 head: int | None = None, tau_on: str = "raw", progress: Callable[[int], None] | None = None
                 ) -> list[dict[str, Any]]:
    """Accuracy under weight ("weight") or tau ("tau", ``perturb_tau(..., on=tau_on)``) perturbation
    for every eps and draw, relative to the unperturbed model (eps = 0 returns that baseline exactly;
    its perturbed copy is the model).

    Rows {"kind", "eps", "draw", "accuracy", "baseline", "relative", "relative_chance"}
    (:func:`relative_accuracies`). ``progress(1)``, if given, after each row (:func:`perturbation_rows` in all).
    """
    tasks.check_seed(seed)
    if kind not in ("weight", "tau"):
        raise AnalysisError(f"perturbation kind must be 'weight' or 'tau', got {kind!r}")
    if tau_on not in TAU_PERTURB_TARGETS:
        raise AnalysisError(f"tau_on must be one of {list(TAU_PERTURB_TARGETS)}, got {tau_on!r}")
    head = stream.n if head is None else head
    check_head(model, head)
    recurrent_weight_param(model.core) if kind == "weight" else None
    baseline = streaming_accuracy(model, stream, head)
    make = perturb_weights if kind == "weight" else functools.partial(perturb_tau, on=tau_on)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for e in eps:
        e = float(e)
        if e < 0:
            raise AnalysisError(f"eps must be >= 0, got {e}")
        for draw in range(_draws(e, draws)):
            acc = streaming_accuracy(make(model, e, g), stream, head)
            rows.append({"kind": kind, "eps": e, "draw": draw, "accuracy": acc, "baseline": baseline,
                         **relative_accuracies(acc, baseline)})
            if progress is not None:
                progress(1)
    return rows
