"""Run folders -> tables and figures: :class:`AnalysisOptions`, :func:`analyze_run` (every analysis on
every checkpoint, tidy CSV + PNG), the figures, and :func:`compare_runs` (several runs on the same axes)."""

from __future__ import annotations

import csv
import dataclasses
import math
import numbers
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from agents.checkpoint import make_folder
from baselines import run_folder
from baselines.analysis.generalization import forgetting_matrix
from baselines.analysis.geometry import dimensionality
from baselines.analysis.fits import check_rule
from baselines.analysis.lesions import (
    DEFAULT_EPS, TAU_PERTURB_TARGETS, ablation, make_stream, perturbation, perturbation_rows, recurrent_weight_param,
)
from baselines.analysis.runs import AnalysisError, Run, load_run
from baselines.analysis.timescales import check_drive_p, network_timescales
from baselines.analysis.transitions import ALL, has_transitions, network_transitions, transition_kinds
from baselines.plots import NColours, integer_ticks, pyplot, save_figure
from baselines.run_folder import make_output_folder
from baselines.trainer import resolve_device
from memory_envs.tasks import RUNNING_N, check_seed, is_running_task, is_token_task

ANALYSES = ("timescales", "ablation", "perturbation", "forgetting", "dimensionality", "transitions")
#: Columns of timescales.csv from ``tau_net_summary``.
SUMMARY_KEYS = ("tau_net_mean", "tau_net_median", "neurons_tau_net_gt1", "neurons_failed", "neurons_at_bound",
                "share_failed_or_bound")


@dataclass
class AnalysisOptions:
    """Sizes and choices of ``analyze_run`` (defaults: the paper's procedure)."""

    analyses: tuple[str, ...] = ANALYSES
    ns: tuple[int, ...] | None = None  # checkpoints for timescales/dimensionality (None: all)
    n: int | None = None  # the N for ablation/perturbation (None: the largest checkpoint)
    trials: int = 10
    steps: int = 100_000
    burn_in: int = 500
    fit_rule: str = "robust"  # "paper": lags 0..30, plain AIC; "authors": their script's fit (baselines.analysis.fits)
    drive_p: float | str = 0.5  # bit probability of the tau_net drive; "uniform": p ~ U(0, 1) per trial (theirs)
    max_lag: int | None = None  # None: 30 (paper) or min(2000, steps // 4) (robust)
    min_weight: float | None = None  # None: 0 (paper) or 0.05 (robust)
    pca_steps: int = 10_000
    k: int = 20
    zero_bias: bool = True
    stream_length: int = 10_000
    stream_batch: int = 8
    eps: tuple[float, ...] = DEFAULT_EPS
    tau_eps: tuple[float, ...] = DEFAULT_EPS
    tau_perturb: str = "raw"  # the paper: perturb the raw tau, then clamp; "clamped": perturb tau'
    draws: int = 10
    eval_batches: int = 4
    eval_batch_size: int = 256
    beyond: int = 5
    transition_steps: int = 256  # the transitions analysis: sequences of this many uniform tokens
    transition_batch: int = 16  # ... this many of them
    seed: int = 0
    plots: bool = True
    device: str = "cpu"  # where the models run: "cpu", "cuda[:i]" or "auto"; every draw is on the CPU

    def check(self) -> "AnalysisOptions":
        unknown = [a for a in self.analyses if a not in ANALYSES]
        if unknown or not self.analyses:
            raise AnalysisError(f"analyses must be a non-empty subset of {list(ANALYSES)}, got {list(self.analyses)}")
        for name in ("trials", "steps", "pca_steps", "k", "stream_length", "stream_batch", "draws",
                     "eval_batches", "eval_batch_size", "transition_steps", "transition_batch"):
            if int(getattr(self, name)) < 1:
                raise AnalysisError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_rule(self.fit_rule)
        check_drive_p(self.drive_p)
        check_seed(self.seed)
        if self.max_lag is not None and not 1 <= self.max_lag < self.steps:
            raise AnalysisError(f"max_lag must be >= 1 and below steps ({self.steps}), got {self.max_lag}")
        if self.min_weight is not None and not 0 <= self.min_weight < 0.5:
            raise AnalysisError(f"min_weight must be in [0, 0.5), got {self.min_weight}")
        if self.tau_perturb not in TAU_PERTURB_TARGETS:
            raise AnalysisError(f"tau_perturb must be one of {list(TAU_PERTURB_TARGETS)}, got {self.tau_perturb!r}")
        if self.burn_in < 0 or self.beyond < 0:
            raise AnalysisError("burn_in and beyond must be >= 0")
        for name in ("eps", "tau_eps"):
            if not all(isinstance(e, numbers.Real) and math.isfinite(e) and e >= 0 for e in getattr(self, name)):
                raise AnalysisError(f"{name} values must be finite and >= 0, got {list(getattr(self, name))}")
        try:
            resolve_device(self.device)
        except ValueError as error:
            raise AnalysisError(str(error)) from None
        return self


SCALES: dict[str, dict[str, Any]] = {
    "quick": {"trials": 4, "steps": 4_000, "pca_steps": 2_000, "k": 5, "stream_length": 1_000, "draws": 2},
    "paper": {},
}
"""The sizes of ``memory-envs analyze --scale``: "paper" is :class:`AnalysisOptions`' defaults (the paper's
procedure); "quick", the command's default, changes these fields so that a 128-unit run with a few
checkpoints takes about a minute on one CPU thread instead of about ten times that (docs/analysis.md:
the timings and what tau_net is worth at the quick size)."""


def scaled_options(scale: str, **changes: Any) -> AnalysisOptions:
    """:class:`AnalysisOptions` of ``scale`` (one of :data:`SCALES`), with ``changes`` on top of its sizes."""
    if scale not in SCALES:
        raise AnalysisError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    return AnalysisOptions(**{**SCALES[scale], **changes})


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    make_folder(path.parent)
    run_folder.write_csv(path, rows)
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


RUNNING_PARITY_ANALYSES = ("timescales", "dimensionality", "transitions")
"""The analyses of a running-parity run (one network, ``checkpoints/final``, no window N): those that drive
the network with random bits. Ablation, perturbation and forgetting score the N-parity / N-DMS heads."""
TOKEN_TASK_ANALYSES = ("transitions",)
"""The analyses of a token task's run (word problems, modular arithmetic): the transitions, driven with the
task's own sequences; the timescales and dimensionality drives feed random bits, which its network does not read."""


def _running_task_analyses(options: AnalysisOptions, run: Run, log: Callable[[str], None]) -> AnalysisOptions:
    """A running task's run keeps its analyses (:data:`RUNNING_PARITY_ANALYSES`, a token task's
    :data:`TOKEN_TASK_ANALYSES`): the others are dropped from the default (all analyses) with a note, and
    refused when asked for by name."""
    if not is_running_task(run.task):
        return options
    token = is_token_task(run.task)
    kept = TOKEN_TASK_ANALYSES if token else RUNNING_PARITY_ANALYSES
    other = [a for a in options.analyses if a not in kept]
    if not other:
        return options
    why = ("drive or score bit inputs, and its network reads one-hot tokens" if token
           else "score the heads of a window N, and a running-parity run has none")
    if tuple(options.analyses) != ANALYSES:
        raise AnalysisError(f"{', '.join(other)} {why} (task {run.task!r}): choose among {list(kept)}")
    log(f"task {run.task}: {', '.join(other)} left out (they {why.split(', and')[0]})")
    return dataclasses.replace(options, analyses=kept)


def _without_tau_lesions(options: AnalysisOptions, run: Run, device: torch.device,
                         log: Callable[[str], None]) -> AnalysisOptions:
    """Ablation and perturbation rank and perturb the per-neuron tau: for a core without one (the
    architecture zoo's) they are dropped from the default (all analyses) with a note, and refused when
    asked for by name."""
    lesions = [a for a in ("ablation", "perturbation") if a in options.analyses]
    if not lesions or isinstance(getattr(run.load(max(run.checkpoints), device).core, "tau", None), torch.Tensor):
        return options
    kind = run.config.get("core", "?")
    if tuple(options.analyses) != ANALYSES:
        raise AnalysisError(f"{', '.join(lesions)} act on the per-neuron tau, and core {kind!r} has none: "
                            f"choose among {[a for a in ANALYSES if a not in ('ablation', 'perturbation')]}")
    log(f"skipping ablation and perturbation: core {kind!r} has no per-neuron tau")
    return dataclasses.replace(options, analyses=tuple(a for a in options.analyses if a not in lesions))


def _without_transitions(options: AnalysisOptions, run: Run, device: torch.device, log: Callable[[str], None],
                         by_default: bool) -> AnalysisOptions:
    """The transitions analysis reads ``Core.transitions``: for a core without them (a fixed or non-linear
    recurrence) it is dropped from the default (``by_default``: all analyses) with a note, and refused when asked
    for by name."""
    if "transitions" not in options.analyses or has_transitions(run.load(max(run.checkpoints), device).core):
        return options
    kind = run.config.get("core", "?")
    reason = (f"core {kind!r} has no input-dependent transitions (a fixed or non-linear recurrence; the kinds with "
              f"them: {', '.join(transition_kinds())})")
    if not by_default:
        raise AnalysisError(f"transitions: {reason}: choose among {[a for a in ANALYSES if a != 'transitions']}")
    log(f"skipping transitions: {reason}")
    return dataclasses.replace(options, analyses=tuple(a for a in options.analyses if a != "transitions"))


@contextmanager
def _bar(progress: Callable[[str, int], Any] | None, description: str, total: int
         ) -> Iterator[Callable[[int], None] | None]:
    """A bar from ``progress(description, total)`` while the block runs, as its ``update``; None without one."""
    if progress is None:
        yield None
        return
    bar = progress(description, total)
    try:
        yield bar.update
    finally:
        bar.close()


def analyze_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                options: AnalysisOptions | None = None, log: Callable[[str], None] = lambda s: None, *,
                core_class: type[torch.nn.Module] | None = None,
                progress: Callable[[str, int], Any] | None = None) -> dict[str, Any]:
    """Run the chosen analyses on a run folder; write CSV tables and PNGs into ``out``
    (default RUN_DIR/analysis). Returns {analysis: table rows} (plus "files"). ``core_class``: the
    class of the external core the run trained (see :func:`load_run`). ``progress(description, total)``,
    if given, makes a bar (an object with ``update(n)`` and ``close()``, e.g. ``tqdm``) for each analysis
    of each checkpoint, named like "timescales N=3 (1/4)", counting its steps, neurons or evaluations."""
    options = (options or AnalysisOptions()).check()
    device = resolve_device(options.device)
    run = load_run(run_dir, core_class)
    out = Path(out) if out is not None else run.path / "analysis"
    # check everything the options ask for before the slow work starts
    ts_ns = _pick(run, options.ns)
    by_default = tuple(options.analyses) == ANALYSES
    options = _without_tau_lesions(_running_task_analyses(options, run, log), run, device, log)
    options = _without_transitions(options, run, device, log, by_default)
    if not options.analyses:
        raise AnalysisError(f"no analysis applies to {run.path} (task {run.task!r}, core {run.config.get('core')!r}): "
                            "the lines above say why each was left out")
    target = _analysis_n(run, options.n) if {"ablation", "perturbation"} & set(options.analyses) else None
    if target is not None and "perturbation" in options.analyses:
        recurrent_weight_param(run.load(target, device).core)
    make_output_folder(out, "out")
    results: dict[str, Any] = {"files": []}
    files = results["files"]
    curriculum = run.config.get("curriculum", "?")
    base = {"run": run.path.name, "curriculum": curriculum, "core": run.config.get("core", "?")}

    if "timescales" in options.analyses:
        neuron_rows, summary_rows, pop_rows, own_rows = [], [], [], []
        for position, n in enumerate(ts_ns, 1):
            started = time.perf_counter()
            model = run.load(n, device)
            which = f"timescales N={n} ({position}/{len(ts_ns)})"
            with (_bar(progress, f"{which}, steps driven", options.steps) as drive_tick,
                  _bar(progress, f"{which}, neurons fitted", model.core.hidden_size) as fit_tick):
                r = network_timescales(model, trials=options.trials, steps=options.steps,
                                       burn_in=options.burn_in, max_lag=options.max_lag, seed=options.seed,
                                       rule=options.fit_rule, min_weight=options.min_weight, p=options.drive_p,
                                       progress=drive_tick, fit_progress=fit_tick)
            seconds = time.perf_counter() - started
            for i, f in enumerate(r["fits"]):
                neuron_rows.append({**base, "n": n, "neuron": i, "tau": float(r["tau"][i]), "tau_net": f["tau"],
                                    "fit": f["model"], "tau_single": f["tau_single"], "tau_fast": f["tau_fast"],
                                    "tau_slow": f["tau_slow"], "a_slow": f["a_slow"], "window": f["window"],
                                    "flag": f["flag"]})
            forget, own = r["forget_timescale"], r["own_timescale"]
            summary_rows.append({**base, "n": n, "tau_mean": float(r["tau"].mean()), "tau_max": float(r["tau"].max()),
                                 **{k: r[k] for k in SUMMARY_KEYS}, "fit_rule": options.fit_rule,
                                 "drive_p": options.drive_p,
                                 "forget_gate_timescale": forget["timescale"] if forget else math.nan,
                                 "own_timescale_measure": own["measure"] if own else "none",
                                 "own_timescale_mean": own["mean"] if own else math.nan,
                                 "own_timescale_median": own["median"] if own else math.nan,
                                 "seconds": round(seconds, 2)})
            if own:
                own_rows += [{**base, "n": n, "unit": i, "measure": own["measure"], "own_timescale": float(v)}
                             for i, v in enumerate(own["per_unit"])]
            pop_rows += [{**base, "n": n, "lag": k, "ac": float(v)} for k, v in enumerate(r["population_ac"])]
            own_text = f", own timescale ({own['measure']}) median {own['median']:.2f}" if own else ""
            tau_mean = summary_rows[-1]["tau_mean"]
            tau_text = f"tau mean {tau_mean:.2f}, " if math.isfinite(tau_mean) else ""  # a core without tau has none
            net_text = (f"tau_net mean {r['tau_net_mean']:.2f} / median {r['tau_net_median']:.2f}"
                        if math.isfinite(r["tau_net_mean"]) else "no neuron with tau_net > 1")
            log(f"timescales, {network_name(n)}: {tau_text}{net_text}, {r['neurons_failed']} failed and "
                f"{r['neurons_at_bound']} at a bound of {len(r['fits'])}{own_text} ({seconds:.1f} s)")
        files += [write_csv(out / "timescales_neurons.csv", neuron_rows),
                  write_csv(out / "timescales.csv", summary_rows),
                  write_csv(out / "population_ac.csv", pop_rows)]
        if own_rows:
            files.append(write_csv(out / "own_timescales.csv", own_rows))
        results["timescales"] = summary_rows
        if options.plots:
            files.append(plot_timescales([summary_rows], [run.label], out / "timescales.png", neuron_rows, pop_rows))
            if pop_rows:  # plot_timescales drew it too
                files.append(out / POPULATION_AC_PNG)

    if target is not None:
        model = run.load(target, device)
        stream = make_stream(run.task, target, length=options.stream_length, batch_size=options.stream_batch,
                             seed=options.seed)
    if "ablation" in options.analyses:
        k = min(options.k, model.core.hidden_size)
        with _bar(progress, f"ablation N={target}, neurons", 2 * k) as tick:
            rows = [{**base, "n": target, **r} for r in ablation(model, stream, k=k, zero_bias=options.zero_bias,
                                                                 seed=options.seed, progress=tick)]
        files.append(write_csv(out / "ablation.csv", rows))
        results["ablation"] = rows
        for g in ("slow", "fast"):
            rel = [r["relative"] for r in rows if r["group"] == g]
            chance = [r["relative_chance"] for r in rows if r["group"] == g]
            log(f"ablation N={target}: {g}est {len(rel)} neurons, mean relative accuracy {np.mean(chance):.3f} "
                f"chance-corrected (the paper's), {np.mean(rel):.3f} as a plain ratio")
        if options.plots:
            files.append(plot_ablation([rows], [run.label], out / "ablation.png"))
    if "perturbation" in options.analyses:
        rows = []
        for kind, grid in (("weight", options.eps), ("tau", options.tau_eps)):
            with _bar(progress, f"{kind} perturbation N={target}, evaluations",
                      perturbation_rows(grid, options.draws)) as tick:
                rows += [{**base, "n": target, **r} for r in perturbation(model, stream, kind=kind, eps=grid,
                                                                        draws=options.draws, seed=options.seed,
                                                                        tau_on=options.tau_perturb, progress=tick)]
        files.append(write_csv(out / "perturbation.csv", rows))
        results["perturbation"] = rows
        log(f"perturbation N={target}: {len(rows)} evaluations")
        if options.plots:
            files.append(plot_perturbation([rows], [run.label], out / "perturbation.png"))
    if "forgetting" in options.analyses:
        with _bar(progress, "forgetting, checkpoints", len(run.checkpoints)) as tick:
            row_ns, col_ns, matrix = forgetting_matrix(run, beyond=options.beyond, batches=options.eval_batches,
                                                       batch_size=options.eval_batch_size, seed=options.seed,
                                                       device=device, progress=tick)
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
        for position, n in enumerate(ts_ns, 1):
            with _bar(progress, f"dimensionality N={n} ({position}/{len(ts_ns)}), steps", options.pca_steps) as tick:
                d = dimensionality(run.load(n, device), trials=options.trials, steps=options.pca_steps,
                                   burn_in=options.burn_in, seed=options.seed, progress=tick)
            rows.append({**base, "n": n, "components_90": d["components"], "units": d["units"],
                         "pc1_ratio": float(d["explained_ratio"][0])})
        files.append(write_csv(out / "dimensionality.csv", rows))
        results["dimensionality"] = rows
        log("dimensionality (components for 90% of the variance): "
            + ", ".join(f"{network_name(r['n'])}: {r['components_90']}" for r in rows))
        if options.plots:
            files.append(plot_dimensionality([rows], [run.label], out / "dimensionality.png"))
    if "transitions" in options.analyses:
        rows, units, histogram = [], [], []
        for n in ts_ns:
            r = network_transitions(run.load(n, device).core, steps=options.transition_steps,
                                    batch=options.transition_batch, seed=options.seed, task=run.task)
            rows += [{**base, "n": n, **row} for row in r["rows"]]
            units += [{**base, "n": n, **row} for row in r["units"]]
            histogram += [{**base, "n": n, **row} for row in r["histogram"]]
            log(f"transitions, {network_name(n)}: {transitions_text(r['rows'])}")
        files += [write_csv(out / "transitions.csv", rows), write_csv(out / "transitions_units.csv", units),
                  write_csv(out / "transitions_histogram.csv", histogram)]
        results["transitions"] = rows
        if options.plots:
            files.append(plot_transitions(histogram, rows, run.label, out / "transitions.png"))
    return results


#: Up to this many input tokens, the transitions' line and figure show each token; beyond, their pool.
TOKENS_SHOWN = 6


def deciding_lag(rows: list[dict[str, Any]], layer: int | str) -> int:
    """The lag of ``layer``'s rows (transitions.csv) whose token decides the most units' sign, the first of equals."""
    decided = {r["lag"]: r["units_decided"] for r in rows if r["layer"] == layer}
    return max(decided, key=lambda lag: (decided[lag], -lag))


def _read(lag: int) -> str:
    return "at the same step" if lag == 0 else f"{lag} step{'s' if lag > 1 else ''} before"


def transitions_text(rows: list[dict[str, Any]]) -> str:
    """The share of negative a_t over every layer, then at the lag that decides the most units' sign, on reading
    each token (up to TOKENS_SHOWN) that many steps before: the share, its median and the units mostly negative."""
    layer = ALL if any(r["layer"] == ALL for r in rows) else 0
    lag = deciding_lag(rows, layer)
    pooled = [r for r in rows if r["layer"] == layer and r["lag"] == lag]
    overall = next(r for r in pooled if r["token"] == ALL)
    tokens = [r for r in pooled if r["token"] != ALL]
    text = (f"{overall['negative']:.1%} of a_t negative; {overall['units_decided']} of {overall['units']} units' "
            f"sign decided by the token read {_read(lag)}")
    if len(tokens) <= TOKENS_SHOWN:
        text += ": " + ", ".join(f"after a {r['token']}: {r['negative']:.1%} negative (median {r['q50']:+.2f}; "
                                 f"{r['units_negative']} units mostly negative)" for r in tokens)
    return text


def plot_transitions(histogram: list[dict[str, Any]], rows: list[dict[str, Any]], label: str, path: Path) -> Path:
    """Histograms of a_t on [-1, 1] after each input token (their pool beyond TOKENS_SHOWN tokens) read at the lag
    that decides the most units' sign, one panel per layer, for the last checkpoint; the legend gives each token's
    share of negative a_t."""
    plt = pyplot()
    last = max(r["n"] for r in rows)
    rows = [r for r in rows if r["n"] == last]
    layers = [layer for layer in dict.fromkeys(r["layer"] for r in rows) if layer != ALL]
    tokens = [t for t in dict.fromkeys(r["token"] for r in rows) if t != ALL]
    shown = tokens if len(tokens) <= TOKENS_SHOWN else [ALL]
    fig, axes = plt.subplots(1, len(layers), figsize=(4.2 * len(layers), 3.4), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        lag = deciding_lag(rows, layer)
        for token in shown:
            key = (last, layer, lag, token)
            bins = [h for h in histogram if (h["n"], h["layer"], h["lag"], h["token"]) == key]
            negative = next(r["negative"] for r in rows if (r["n"], r["layer"], r["lag"], r["token"]) == key)
            name = f"after a {token}" if token != ALL else f"all {len(tokens)} tokens"
            ax.stairs([h["share"] for h in bins], [bins[0]["bin_low"], *(h["bin_high"] for h in bins)],
                      label=f"{name}: {negative:.0%} < 0")
        ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
        where = f"layer {layer + 1} of {len(layers)}, " if len(layers) > 1 else ""
        ax.set(xlabel="transition eigenvalue a_t", ylabel="share of a_t", xlim=(-1, 1),
               title=f"{where}token read {_read(lag)}")
        ax.legend(fontsize=7)
    fig.suptitle(f"{label}, {network_name(last)}", fontsize=9)
    return save_figure(fig, path)


def network_name(n: int) -> str:
    """How lines and titles name the checkpoint of ``n``: ``N=n``, or a running-parity run's one network."""
    return "the final network" if n == RUNNING_N else f"N={n}"


POPULATION_AC_PNG = "population_ac.png"
"""The population autocorrelation figure :func:`plot_timescales` draws next to its own when given ``pop_rows``."""


def draw_neuron_timescales(ax, neuron_rows: list[dict]) -> None:
    """tau_net against the trained tau of each neuron at the largest N, on a log axis from 1: a tau_net below
    1 (a neuron that forgets within a step) has no timescale to compare, as in the summaries, and is counted
    in the title instead of drawn. A core without tau gets the neurons ranked by tau_net on the x axis."""
    from matplotlib.ticker import FuncFormatter

    last = max(r["n"] for r in neuron_rows)
    rows = [r for r in neuron_rows if r["n"] == last]
    kept = sorted((r for r in rows if math.isfinite(r["tau_net"]) and r["tau_net"] > 1), key=lambda r: r["tau_net"])
    ax.set_title(f"{network_name(last)}: {len(kept)} of {len(rows)} neurons with tau_net > 1", fontsize=10)
    if not kept:
        ax.text(0.5, 0.5, "no neuron with tau_net > 1", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set(xticks=[], yticks=[])
        return
    has_tau = any(math.isfinite(r["tau"]) for r in rows)
    x = [r["tau"] for r in kept] if has_tau else list(range(1, len(kept) + 1))
    ax.scatter(x, [r["tau_net"] for r in kept], s=6)
    ax.set(xlabel="trained tau" if has_tau else "neuron (ranked by tau_net)", ylabel="tau_net (log scale, from 1)",
           yscale="log")
    ax.set_ylim(bottom=1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 10, not 10^1
    ax.yaxis.set_minor_formatter(FuncFormatter(  # 2, 3, 5, 20, ... where they fit
        lambda value, _: f"{value:g}" if round(value / 10 ** math.floor(math.log10(value))) in (2, 3, 5) else ""))


def plot_timescales(summaries: Sequence[list[dict]], labels: Sequence[str], path: Path,
                    neuron_rows: list[dict] | None = None, pop_rows: list[dict] | None = None) -> Path:
    plt = pyplot()
    extra = neuron_rows is not None
    fig, axes = plt.subplots(1, 3 if extra else 2, figsize=(13 if extra else 9, 3.6))
    drawn_own = False
    for rows, label in zip(summaries, labels):
        ns = [r["n"] for r in rows]
        axes[0].plot(ns, [r["tau_mean"] for r in rows], "o-", label=label)
        line, = axes[1].plot(ns, [r["tau_net_mean"] for r in rows], "o-", label=f"{label} mean")
        axes[1].plot(ns, [r["tau_net_median"] for r in rows], "s--", color=line.get_color(), label=f"{label} median")
        own = [r.get("own_timescale_median", math.nan) for r in rows]
        if any(math.isfinite(v) for v in own):
            drawn_own = True
            axes[1].plot(ns, own, "^:", color=line.get_color(),
                         label=f"{label} own ({rows[0]['own_timescale_measure']}), median")
    if not any(math.isfinite(r["tau_mean"]) for rows in summaries for r in rows):
        axes[0].text(0.5, 0.5, "no trained tau\n(the core has none)", ha="center", va="center",
                     transform=axes[0].transAxes, color="0.4")
        axes[0].set(yticks=[])
    axes[0].set(xlabel="N (checkpoint)", ylabel="mean trained tau", title="single-neuron tau")
    axes[1].set(xlabel="N (checkpoint)",
                ylabel="timescale (steps)" if drawn_own else "tau_net (neurons with tau_net > 1)",
                title="tau_net: mean (o), median (s)" + ("; own timescale (^)" if drawn_own else ""))
    axes[1].legend(fontsize=6)
    axes[0].legend(fontsize=7)
    final_only = {r["n"] for rows in summaries for r in rows} == {RUNNING_N}
    for ax in axes[:2]:
        integer_ticks(ax.xaxis)
        if final_only:  # running parity: one network, no N
            ax.set(xticks=[RUNNING_N], xticklabels=["the final network"], xlabel="")
    if extra:
        draw_neuron_timescales(axes[2], neuron_rows)
    save_figure(fig, path)
    if pop_rows:
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
        colours = NColours([r["n"] for r in pop_rows])
        for n in colours.ns:
            pts = [r for r in pop_rows if r["n"] == n]
            ax.plot([r["lag"] for r in pts], [r["ac"] for r in pts], color=colours.colour(n), label=colours.label(n))
        ax.set(xlabel="lag (steps)", ylabel="population autocorrelation")
        colours.finish(fig, ax)
        save_figure(fig, path.with_name(POPULATION_AC_PNG))
    return path


def plot_ablation(tables: Sequence[list[dict]], labels: Sequence[str], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    width = 0.8 / max(len(tables), 1)
    for j, (rows, label) in enumerate(zip(tables, labels)):
        means = [np.mean([r["relative_chance"] for r in rows if r["group"] == g]) for g in ("slow", "fast")]
        ax.bar(np.arange(2) + j * width, means, width, label=f"{label} N={rows[0]['n']}")
    ax.set_xticks(np.arange(2) + width * (len(tables) - 1) / 2, ["slowest tau", "fastest tau"])
    ax.set(ylabel="(ablated - 0.5) / (intact - 0.5)", ylim=(0, 1.05),
           title="single-neuron ablation (chance-corrected, as the paper)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_perturbation(tables: Sequence[list[dict]], labels: Sequence[str], path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    low = -0.1  # below chance (< 0) is drawn too, not cut off
    for rows, label in zip(tables, labels):
        for ax, kind in zip(axes, ("weight", "tau")):
            pts = [r for r in rows if r["kind"] == kind and r["eps"] > 0]
            eps = sorted({r["eps"] for r in pts})
            mean = [np.mean([r["relative_chance"] for r in pts if r["eps"] == e]) for e in eps]
            std = [np.std([r["relative_chance"] for r in pts if r["eps"] == e]) for e in eps]
            ax.errorbar(eps, mean, yerr=std, marker="o", capsize=2, label=label)
            low = min([low, *(m - d - 0.05 for m, d in zip(mean, std) if math.isfinite(m - d))])
    for ax, kind in zip(axes, ("weight", "tau")):
        ax.set(xscale="log", xlabel="eps", ylabel="(accuracy - 0.5) / (baseline - 0.5)",
               title=f"{kind} perturbation (chance-corrected)", ylim=(low, 1.1))
        ax.axhline(0.0, color="0.5", lw=0.8, ls=":")  # chance
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def plot_forgetting(row_ns: list[int], col_ns: list[int], matrix: np.ndarray, label: str, path: Path) -> Path:
    """The forgetting matrix as an image; the evaluated Ns past the last one any checkpoint has a head for (a
    multi-head network's, beyond its largest N) are left out, and a blank cell is said to be one without a head."""
    plt = pyplot()
    scored = [j for j in range(len(col_ns)) if np.isfinite(matrix[:, j]).any()]
    if scored:
        col_ns, matrix = col_ns[:scored[-1] + 1], matrix[:, :scored[-1] + 1]
    # at least wide enough for the title (the run's label) and tall enough for the axis labels
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.25 * len(col_ns)), max(3.0, 1.2 + 0.25 * len(row_ns))))
    im = ax.imshow(np.ma.masked_invalid(matrix), vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto", origin="lower",
                   extent=(col_ns[0] - 0.5, col_ns[-1] + 0.5, -0.5, len(row_ns) - 0.5))
    ax.set_yticks(range(len(row_ns)), [str(n) for n in row_ns])
    blank = " (blank: no head for it)" if not np.isfinite(matrix).all() else ""
    ax.set(xlabel=f"evaluated N{blank}", ylabel="checkpoint N")
    integer_ticks(ax.xaxis)
    ax.set_title(f"forgetting: {label}", fontsize=8, wrap=True)
    fig.colorbar(im, ax=ax, label="accuracy")
    return save_figure(fig, path)


def plot_dimensionality(tables: Sequence[list[dict]], labels: Sequence[str], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for rows, label in zip(tables, labels):
        ax.plot([r["n"] for r in rows], [r["components_90"] for r in rows], "o-", label=label)
    ax.set(xlabel="N (checkpoint)", ylabel="PCs for 90% variance", title="dimensionality")
    integer_ticks(ax.xaxis)
    integer_ticks(ax.yaxis)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def compare_runs(results: Sequence[dict[str, Any]], labels: Sequence[str], out: str | os.PathLike) -> list[Path]:
    """Figures of several runs on the same axes (tau and tau_net vs N, ablation, perturbation, dimensionality)."""
    out = make_output_folder(Path(out), "compare_dir")
    files = []
    for name, plot in (("timescales", plot_timescales), ("ablation", plot_ablation),
                       ("perturbation", plot_perturbation), ("dimensionality", plot_dimensionality)):
        tables = [r[name] for r in results if name in r]
        if len(tables) == len(results) and tables:
            files.append(plot(tables, labels, out / f"compare_{name}.png"))
            write_csv(out / f"compare_{name}.csv", [row for t in tables for row in t])
            files.append(out / f"compare_{name}.csv")
    return files
