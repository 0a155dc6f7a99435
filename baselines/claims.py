"""The paper's abstract, claim by claim, measured on the run folders of ``reproduce``.

:func:`measure` reads the runs beside each other in a reproduction folder (each run's ``config.json``,
``summary.json``, ``metrics.jsonl`` and ``checkpoints/nNNN``), runs the analyses of
:mod:`baselines.analysis` on their checkpoints at the sizes of :data:`ANALYSIS` (a few minutes on one CPU
thread at the laptop scale) and returns every number as JSON. :func:`claim_rows` turns those numbers
into one row per claim: the paper's number (the ``PAPER_*`` constants below, from the paper, Khajehabdollahi
et al., ICLR 2024, and its authors' published statistics), ours, the N and budget at which ours was
measured, and a verdict by the rule in :data:`RULES`.
:func:`write_claims` writes ``claims.json``, ``claims.md``, ``claims.csv`` and the figures. Nothing in the
table is typed in: change a run folder and the table changes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from baselines.analysis import (
    accuracy_on_ns, analyze_run, load_run, readout_probe, scaled_options,
)
from baselines.run_folder import atomic_write_text, read_json, read_metrics, strict_json, write_csv

# The paper's numbers (Khajehabdollahi et al., ICLR 2024, and its authors' statistics: parity, 500 units,
# 4 networks), one constant per reference.
PAPER_SINGLE_MAX_N = (33, 37)
"""Largest N the single-head networks with trainable tau reached."""
PAPER_MULTI_MAX_N = (100, 101)
"""Largest N the multi-head networks reached (their cap of 100 heads)."""
PAPER_TAU_RISE_N = 15
"""The N after which the single-head networks' mean tau rises."""
PAPER_SINGLE_TAU_AT_30 = 5.0
"""The single-head networks' mean tau at N = 30 (single neurons up to 7-19)."""
PAPER_SINGLE_TAU_MAX_AT_30 = (7, 19)
"""The range of the single-head networks' slowest neuron's tau at N = 30."""
PAPER_MULTI_TAU_AT_30 = 1.95
"""The multi-head networks' mean tau at N = 30 (as read from the paper's figure); it starts in U(1, 2)."""
PAPER_FORGETTING = (0.50, 0.68)
"""Accuracy of a single-head network trained to N on the other N (a multi-head one keeps about 1.0 on its heads)."""
PAPER_N = 30
"""The N of the paper's ablation and perturbation numbers."""
PAPER_ABLATION_SLOW = {"single": 0.45, "multi": 0.99}
"""Chance-corrected relative accuracy, ablating the 20 slowest-tau neurons one at a time, at N = 30."""
PAPER_ABLATION_FAST = {"single": 0.91, "multi": 0.79}
"""The same, ablating the 20 fastest-tau neurons."""
PAPER_WEIGHT_PERTURBATION = {0.215: {"single": 0.75, "multi": 0.96}, 0.464: {"single": 0.16, "multi": 0.64}}
"""Chance-corrected relative accuracy under weight perturbation, by eps, at N = 30."""
PAPER_TAU_PERTURBATION = {0.1: {"single": 0.38, "multi": 0.89}}
"""Chance-corrected relative accuracy under tau perturbation (increase only), by eps, at N = 30."""

# The verdict rules' thresholds.
GROWTH = 1.1
"""A timescale "grows" when its value at the largest N is at least this factor above its value at the smallest."""
FORGOTTEN = 0.75
"""A network "forgets" when its mean accuracy on the other trained N is at most this (chance is 0.5)."""
ROBUST_MARGIN = 0.05
"""Claim 4 counts the multi-head network as more robust where its chance-corrected relative accuracy is at least
this far above the single-head one's (the paper's gaps are 0.21-0.54)."""
PROBE_BEYOND = 3
"""Claim 5 scores N_common + 1 .. N_common + PROBE_BEYOND."""
PROBE_MARGIN = 0.02
"""Claim 5 needs the multi-head network's probe accuracy at least this far above the single-head one's."""
N_MARGIN = 2
"""Claim 6 needs the multi-head curriculum to reach at least this many N further, for the GRU and the LSTM."""
TIMESCALE_CHECKPOINTS = 3
"""tau_net is measured at this many checkpoints per leaky run, evenly spread over its solved N."""
ANALYSIS = scaled_options("quick", k=20, draws=3)
"""The analyses' sizes: ``memory-envs analyze --scale quick`` (a drive of 4 x 4,000 steps for tau_net, streams
of 8 x 1,000 steps), with the paper's 20 neurons per ablation group and 3 draws per eps."""

RULES = (
    ("1", f"tau_net (the mean over neurons with tau_net > 1) at the largest solved N is at least {GROWTH}x its "
          "value at the smallest, for both curricula of both tasks (leaky RNN)"),
    ("2", f"single-head parity: not reached while its largest N is below {PAPER_TAU_RISE_N} (where the paper's mean "
          f"tau starts rising); else reproduced when its mean tau at the largest N is at least {GROWTH}x that at "
          f"its first checkpoint and its last checkpoint scores at most {FORGOTTEN} on the other trained N"),
    ("3", f"multi-head parity: its mean tau at the largest N stays within the initial range (at most the top of "
          f"tau_init) while its tau_net grows by at least {GROWTH}x"),
    ("4", "at N_common (the largest N both parity curricula solved): the multi-head network reached it in fewer "
          f"steps and scores at least {ROBUST_MARGIN} higher (chance-corrected relative accuracy) under slow-neuron "
          "ablation, weight perturbation at each of the paper's eps and tau perturbation"),
    ("5", f"a fresh readout on the frozen network at N_common scores N_common + 1 .. + {PROBE_BEYOND} at least "
          f"{PROBE_MARGIN} better (mean accuracy) for the multi-head network"),
    ("6", f"the multi-head curriculum reaches at least {N_MARGIN} N further than the single-head one with the same "
          "step budget, for the GRU and for the LSTM"),
)
"""Each claim's verdict rule: reproduced when it holds, not reproduced when it does not, not reached at this
budget where the runs stopped below the N the claim needs."""
VERDICTS = ("reproduced", "not reproduced", "not reached at this budget")


def find_runs(out_dir: str | os.PathLike) -> dict[tuple[str, str, str], list[Path]]:
    """The finished runs in ``out_dir`` (sub-folders with ``config.json`` and ``summary.json``) by (core, task,
    curriculum), each a list of run folders (one per seed) sorted by name."""
    runs: dict[tuple[str, str, str], list[Path]] = {}
    for folder in sorted(Path(out_dir).iterdir()):
        if folder.is_symlink() or not folder.is_dir():
            continue
        if (folder / "config.json").is_file() and (folder / "summary.json").is_file():
            config = read_json(folder / "config.json")
            runs.setdefault((config["core"], config["task"], config["curriculum"]), []).append(folder)
    return runs


def _spread(ns: list[int], count: int) -> list[int]:
    """``count`` of the sorted ``ns`` evenly spread, the first and the last among them."""
    if len(ns) <= count:
        return ns
    return sorted({ns[round(i * (len(ns) - 1) / (count - 1))] for i in range(count)})


def _tau_stats(run_dir: Path) -> list[dict[str, float]]:
    """Per checkpoint: the trained tau' (clamped, as the network uses it) mean, 10th / 90th percentile and max."""
    run = load_run(run_dir)
    rows = []
    for n in run.checkpoints:
        tau = run.load(n).tau.detach().cpu().numpy().astype(np.float64)
        rows.append({"n": n, "mean": float(tau.mean()), "p10": float(np.percentile(tau, 10)),
                     "p90": float(np.percentile(tau, 90)), "max": float(tau.max())})
    return rows


def _run_numbers(run_dir: Path, analysis_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """A run's summary numbers, its N over steps, and (leaky runs with checkpoints) tau and tau_net per N."""
    config, summary = read_json(run_dir / "config.json"), read_json(run_dir / "summary.json")
    lines = read_metrics(run_dir, ("step", "ns"))  # what n_over_steps keeps
    numbers = {"name": run_dir.name, "seed": config["seed"], "hidden_size": config["hidden_size"],
               "max_n": summary["max_n"] or 0, "steps": summary["steps"], "seconds": summary["seconds"],
               "steps_to_n": {int(n): s for n, s in summary["steps_to_n"].items()},
               "n_over_steps": [[m["step"], m["ns"][-1]] for m in lines],
               "tau_init": config["tau_init"]}
    if config["core"] == "leaky" and summary["max_n"]:
        numbers["tau"] = _tau_stats(run_dir)
        ns = _spread([row["n"] for row in numbers["tau"]], TIMESCALE_CHECKPOINTS)
        options = dataclasses.replace(ANALYSIS, analyses=("timescales",), ns=tuple(ns), plots=False)
        result = analyze_run(run_dir, analysis_dir / run_dir.name, options, log=lambda line: log(f"{run_dir.name}: {line}"))
        numbers["tau_net"] = [{"n": r["n"], "tau_net_mean": r["tau_net_mean"]} for r in result["timescales"]]
    return numbers


def _comparison(single: Path, multi: Path, analysis_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Claims 2, 4 and 5 on one seed's parity pair: forgetting at each one's largest N, and at N_common the
    steps, ablation, perturbation and the readout probe beyond it."""
    runs = {"single": load_run(single), "multi": load_run(multi)}
    common = max(set(runs["single"].checkpoints) & set(runs["multi"].checkpoints))
    numbers: dict[str, Any] = {"n_common": common}
    for curriculum, run in runs.items():
        top = max(run.checkpoints)
        others = [n for n in run.checkpoints if n != top]
        accuracy = accuracy_on_ns(run.load(top), run.task, others, single_head=curriculum == "single",
                                  batches=ANALYSIS.eval_batches, batch_size=ANALYSIS.eval_batch_size) if others else {}
        options = dataclasses.replace(ANALYSIS, analyses=("ablation", "perturbation"), n=common, plots=False)
        result = analyze_run(run.path, analysis_dir / f"{run.path.name}-n{common}", options,
                             log=lambda line: log(f"{run.path.name}: {line}"))
        probe = [readout_probe(run.load(common), run.task, common + k, seed=ANALYSIS.seed)
                 for k in range(1, PROBE_BEYOND + 1)]
        numbers[curriculum] = {
            "forgetting": float(np.mean(list(accuracy.values()))) if accuracy else math.nan,
            "forgetting_n": top,
            "steps_to_common": read_json(run.path / "summary.json")["steps_to_n"][str(common)],
            "ablation": result["ablation"], "perturbation": result["perturbation"],
            "ablation_slow": float(np.mean([r["relative_chance"] for r in result["ablation"] if r["group"] == "slow"])),
            "ablation_fast": float(np.mean([r["relative_chance"] for r in result["ablation"] if r["group"] == "fast"])),
            "weight": {str(eps): _perturbed(result["perturbation"], "weight", eps) for eps in PAPER_WEIGHT_PERTURBATION},
            "tau_perturbation": {str(eps): _perturbed(result["perturbation"], "tau", eps) for eps in PAPER_TAU_PERTURBATION},
            "probe": probe, "probe_mean": float(np.mean(probe)),
        }
    return numbers


def _perturbed(rows: list[dict], kind: str, eps: float) -> float:
    """The mean chance-corrected relative accuracy over the draws at ``eps`` (the paper's eps are rounded to 3
    digits, the analyses' grid to 4; NaN if not measured)."""
    values = [r["relative_chance"] for r in rows if r["kind"] == kind and math.isclose(r["eps"], eps, rel_tol=0.01)]
    return float(np.mean(values)) if values else math.nan


def measure(out_dir: str | os.PathLike, log: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Every number the claims table needs, from the finished runs in ``out_dir`` (:func:`find_runs`); the
    analyses write their tables under ``out_dir/analysis``. Keys: ``runs`` ("core/task/curriculum" -> one entry
    per seed, :func:`_run_numbers`) and ``parity`` (one entry per seed whose parity pair both solved an N)."""
    out = Path(out_dir)
    analysis_dir = out / "analysis"
    found = find_runs(out)
    measured: dict[str, Any] = {"runs": {}, "parity": []}
    for (core, task, curriculum), folders in found.items():
        measured["runs"][f"{core}/{task}/{curriculum}"] = [_run_numbers(f, analysis_dir, log) for f in folders]
    pairs = zip(found.get(("leaky", "parity", "single"), []), found.get(("leaky", "parity", "multi"), []))
    for single, multi in pairs:
        solved = [load_run(f).checkpoints if read_json(f / "summary.json")["max_n"] else {} for f in (single, multi)]
        if set(solved[0]) & set(solved[1]):
            measured["parity"].append(_comparison(single, multi, analysis_dir, log))
    return strict_json(measured)


def _mean(values: list[float | None]) -> float:
    """The mean of the measured values (None: not measured) or NaN."""
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _first_last(rows: list[dict], key: str) -> tuple[int, int, float, float] | None:
    """(smallest N, largest N, value at each) of per-N rows, or None with fewer than two Ns."""
    rows = [r for r in rows if r[key] is not None]
    if len(rows) < 2:
        return None
    return rows[0]["n"], rows[-1]["n"], rows[0][key], rows[-1][key]


def _budget(runs: list[dict]) -> str:
    """The steps each run took, and its width."""
    return f"{max(r['steps'] for r in runs):,} steps, {runs[0]['hidden_size']} units"


def claim_rows(measured: dict[str, Any]) -> list[dict[str, str]]:
    """One row per claim from :func:`measure`'s numbers: ``claim``, ``paper``, ``ours``, ``measured at`` and
    ``verdict`` (one of :data:`VERDICTS`, by :data:`RULES`). Several seeds: the mean over seeds."""
    runs = measured["runs"]
    rows = []

    def row(claim: str, paper: str, ours: str, at: str, verdict: str) -> None:
        assert verdict in VERDICTS
        rows.append({"claim": claim, "paper": paper, "ours": ours, "measured at": at, "verdict": verdict})

    # 1. longer timescales with N, both tasks
    parts, growths, missing, budgets = [], [], [], []
    for task in ("parity", "dms"):
        for curriculum in ("single", "multi"):
            seeds = runs.get(f"leaky/{task}/{curriculum}", [])
            ends = [_first_last(r.get("tau_net", []), "tau_net_mean") for r in seeds]
            if not seeds or any(e is None for e in ends):
                missing.append(f"{task} {curriculum}")
                continue
            first, last = _mean([e[2] for e in ends]), _mean([e[3] for e in ends])
            growths.append(last / first)
            parts.append(f"{task} {curriculum}-head {_f(first)} -> {_f(last)} (N {ends[0][0]} -> {ends[0][1]})")
            budgets.append(f"{task} {curriculum}: {_budget(seeds)}")
    verdict = ("not reached at this budget" if missing else
               "reproduced" if all(g >= GROWTH for g in growths) else "not reproduced")
    row("1. RNNs develop longer timescales as N grows, in both tasks",
        "tau_net grows with N in both tasks and both curricula",
        "tau_net mean: " + "; ".join(parts) + (f"; no two analysed N: {', '.join(missing)}" if missing else ""),
        "; ".join(budgets), verdict)

    # 2. single-head: tau grows with N, reaches large N, forgets
    single = runs.get("leaky/parity/single", [])
    comparisons = measured["parity"]
    if single and all(r.get("tau") for r in single):
        max_n = min(r["max_n"] for r in single)
        tau_first, tau_last = _mean([r["tau"][0]["mean"] for r in single]), _mean([r["tau"][-1]["mean"] for r in single])
        tau_max = _mean([r["tau"][-1]["max"] for r in single])
        forgetting = _mean([c["single"]["forgetting"] for c in comparisons])
        kept = _mean([c["multi"]["forgetting"] for c in comparisons])
        ours = (f"largest N {max_n}; mean tau {_f(tau_first)} at N {single[0]['tau'][0]['n']} -> {_f(tau_last)} at N "
                f"{single[0]['tau'][-1]['n']} (max {_f(tau_max)}); {_f(forgetting)} on the other trained N "
                f"(multi-head: {_f(kept)})")
        if max_n < PAPER_TAU_RISE_N:
            verdict = "not reached at this budget"
        else:
            verdict = "reproduced" if tau_last >= GROWTH * tau_first and forgetting <= FORGOTTEN else "not reproduced"
        at = f"N {max_n}, {_budget(single)}"
    else:
        ours, verdict, at = "no solved N", "not reached at this budget", _budget(single) if single else "-"
    row("2. Single-head networks increase tau with N and reach large N, but forget",
        f"mean tau rises after N = {PAPER_TAU_RISE_N}, about {PAPER_SINGLE_TAU_AT_30:g} at N = 30 (neurons up to "
        f"{PAPER_SINGLE_TAU_MAX_AT_30[0]}-{PAPER_SINGLE_TAU_MAX_AT_30[1]}); largest N {PAPER_SINGLE_MAX_N[0]}-"
        f"{PAPER_SINGLE_MAX_N[1]}; {PAPER_FORGETTING[0]:.2f}-{PAPER_FORGETTING[1]:.2f} on other N", ours, at, verdict)

    # 3. multi-head: tau stays, tau_net grows
    multi = runs.get("leaky/parity/multi", [])
    ends = [_first_last(r.get("tau_net", []), "tau_net_mean") for r in multi]
    if multi and all(r.get("tau") for r in multi) and all(e is not None for e in ends):
        tau_last = _mean([r["tau"][-1]["mean"] for r in multi])
        top = max(multi[0]["tau_init"])
        first, last = _mean([e[2] for e in ends]), _mean([e[3] for e in ends])
        ours = (f"mean tau {_f(tau_last)} at N {multi[0]['tau'][-1]['n']} (initial range {multi[0]['tau_init']}); "
                f"tau_net {_f(first)} -> {_f(last)} (N {ends[0][0]} -> {ends[0][1]})")
        verdict = "reproduced" if tau_last <= top and last >= GROWTH * first else "not reproduced"
        at = f"N {min(r['max_n'] for r in multi)}, {_budget(multi)}"
    else:
        ours, verdict, at = "fewer than two solved N", "not reached at this budget", "-"
    row("3. Multi-head networks keep tau and build long timescales through connectivity",
        f"mean tau about {PAPER_MULTI_TAU_AT_30} at N = 30 (initial U(1, 2)); tau_net grows", ours, at, verdict)

    # 4. faster and more robust, 5. generalize better: at N_common
    paper4 = (f"at N = {PAPER_N}, single vs multi: slow ablation {PAPER_ABLATION_SLOW['single']} vs "
              f"{PAPER_ABLATION_SLOW['multi']}, fast {PAPER_ABLATION_FAST['single']} vs {PAPER_ABLATION_FAST['multi']}; "
              + ", ".join(f"weight eps {e} {v['single']} vs {v['multi']}" for e, v in PAPER_WEIGHT_PERTURBATION.items())
              + ", " + ", ".join(f"tau eps {e} {v['single']} vs {v['multi']}" for e, v in PAPER_TAU_PERTURBATION.items())
              + " (chance-corrected); multi-head faster to each N")
    paper5 = "multi-head networks generalize better beyond their training N (no number in its reference results)"
    if comparisons:
        common = min(c["n_common"] for c in comparisons)
        at = f"N_common = {common} (parity), " + _budget(single + multi)

        def pair(get: Callable[[dict], float]) -> tuple[float, float]:
            return _mean([get(c["single"]) for c in comparisons]), _mean([get(c["multi"]) for c in comparisons])

        steps = pair(lambda c: c["steps_to_common"])
        slow, fast = pair(lambda c: c["ablation_slow"]), pair(lambda c: c["ablation_fast"])
        weight = {e: pair(lambda c, e=e: c["weight"][str(e)]) for e in PAPER_WEIGHT_PERTURBATION}
        tau = {e: pair(lambda c, e=e: c["tau_perturbation"][str(e)]) for e in PAPER_TAU_PERTURBATION}
        checks = {"steps": steps[1] < steps[0], "slow ablation": slow[1] >= slow[0] + ROBUST_MARGIN,
                  **{f"weight eps {e}": v[1] >= v[0] + ROBUST_MARGIN for e, v in weight.items()},
                  **{f"tau eps {e}": v[1] >= v[0] + ROBUST_MARGIN for e, v in tau.items()}}
        failed = [name for name, ok in checks.items() if not ok]
        ours = (f"single vs multi: steps to N_common {steps[0]:,.0f} vs {steps[1]:,.0f}; slow ablation {_f(slow[0])} vs "
                f"{_f(slow[1])}, fast {_f(fast[0])} vs {_f(fast[1])}; "
                + ", ".join(f"weight eps {e} {_f(v[0])} vs {_f(v[1])}" for e, v in weight.items()) + ", "
                + ", ".join(f"tau eps {e} {_f(v[0])} vs {_f(v[1])}" for e, v in tau.items())
                + (f" (against the claim: {', '.join(failed)})" if failed else ""))
        row("4. Multi-head training is faster and more robust to ablation and perturbation", paper4, ours, at,
            "not reproduced" if failed else "reproduced")
        probe = pair(lambda c: c["probe_mean"])
        row("5. Multi-head networks generalize better to N beyond training", paper5,
            f"fresh readout on N_common + 1..{PROBE_BEYOND}: single {_f(probe[0], 3)} vs multi {_f(probe[1], 3)}", at,
            "reproduced" if probe[1] >= probe[0] + PROBE_MARGIN else "not reproduced")
    else:
        for claim, paper in (("4. Multi-head training is faster and more robust to ablation and perturbation", paper4),
                             ("5. Multi-head networks generalize better to N beyond training", paper5)):
            row(claim, paper, "no N solved by both parity curricula", "-", "not reached at this budget")

    # 6. GRU and LSTM
    parts, oks, budgets = [], [], []
    for core in ("gru", "lstm"):
        s, m = runs.get(f"{core}/parity/single", []), runs.get(f"{core}/parity/multi", [])
        if not s or not m:
            continue
        reach = _mean([r["max_n"] for r in s]), _mean([r["max_n"] for r in m])
        oks.append(reach[1] >= reach[0] + N_MARGIN)
        parts.append(f"{core.upper()} largest N single {reach[0]:g} vs multi {reach[1]:g}")
        budgets.append(f"{core.upper()} {_budget(s + m)}")
    row("6. The multi-head curriculum improves training GRUs and LSTMs for large N",
        "multi-head makes GRUs and LSTMs trainable at large N (no number in its reference results)",
        "; ".join(parts) or "no GRU or LSTM runs", "; ".join(budgets) or "-",
        "not reached at this budget" if len(oks) < 2 else "reproduced" if all(oks) else "not reproduced")
    return rows


def claims_markdown(rows: list[dict[str, str]]) -> str:
    """The claims table and the verdict rules, as Markdown."""
    lines = ["| claim | paper | ours | measured at | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {r['claim']} | {r['paper']} | {r['ours']} | {r['measured at']} | **{r['verdict']}** |" for r in rows]
    lines += ["", "Verdict rules (baselines/claims.py, RULES):", ""]
    lines += [f"{number}. {rule}" for number, rule in RULES]
    return "\n".join(lines) + "\n"


def write_claims(out_dir: str | os.PathLike, log: Callable[[str], None] = lambda line: None) -> list[dict[str, str]]:
    """Measure the runs in ``out_dir`` and write ``claims.json`` (every number), ``claims.md``, ``claims.csv`` and,
    with matplotlib, the figures (:func:`baselines.plots.plot_claims`); returns the rows."""
    out = Path(out_dir)
    measured = measure(out, log)
    atomic_write_text(out / "claims.json", json.dumps(measured, indent=1))
    rows = claim_rows(measured)
    atomic_write_text(out / "claims.md", claims_markdown(rows))
    write_csv(out / "claims.csv", rows)
    try:
        plot_claims(measured, out)
    except ImportError as error:
        log(f"no claims figures: {error}")
    return rows


CURRICULUM_COLOURS = {"single": "C0", "multi": "C1"}
"""The colours of the curricula in every claims figure (those of plot_ablation and plot_perturbation's two lines)."""
FIGURES = ("claims_tau.png", "claims_tau_net.png", "claims_n_over_steps.png", "claims_ablation.png",
           "claims_perturbation.png")
"""The figures :func:`plot_claims` writes (the last two only where both parity curricula solved an N)."""


def _legend(ax) -> None:
    """A legend where the axes have labelled lines (a run without a solved N draws none)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def plot_claims(measured: dict[str, Any], out: Path) -> list[Path]:
    """The paper's figures from :func:`measure`'s numbers: mean and spread (10th-90th percentile, and the
    slowest neuron) of the trained tau against N per curriculum, tau_net against N, N reached over training
    steps per core and curriculum, and the ablation and perturbation curves at N_common (first seed)."""
    from baselines.analysis import plot_ablation, plot_perturbation
    from baselines.plots import integer_ticks, pyplot, save_figure

    plt = pyplot()
    runs = measured["runs"]
    written = []
    for figure, key in (("claims_tau.png", "tau"), ("claims_tau_net.png", "tau_net")):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for ax, task in zip(axes, ("parity", "dms")):
            for curriculum, colour in CURRICULUM_COLOURS.items():
                for k, run in enumerate(runs.get(f"leaky/{task}/{curriculum}", [])):
                    rows = run.get(key) or []
                    ns = [r["n"] for r in rows]
                    label = f"{curriculum}-head" if k == 0 else None
                    if key == "tau":
                        ax.plot(ns, [r["mean"] for r in rows], "o-", ms=3, color=colour, label=f"{label} mean" if label else None)
                        ax.fill_between(ns, [r["p10"] for r in rows], [r["p90"] for r in rows], color=colour, alpha=0.2,
                                        label=f"{label} 10-90%" if label else None)
                        ax.plot(ns, [r["max"] for r in rows], ":", color=colour, label=f"{label} slowest" if label else None)
                    else:
                        ax.plot(ns, [r["tau_net_mean"] for r in rows], "o-", color=colour, label=label)
            if key == "tau" and task == "parity":
                ax.plot([PAPER_N], [PAPER_SINGLE_TAU_AT_30], "*", ms=12, color=CURRICULUM_COLOURS["single"],
                        label="paper, single-head N=30")
                ax.plot([PAPER_N], [PAPER_MULTI_TAU_AT_30], "*", ms=12, color=CURRICULUM_COLOURS["multi"],
                        label="paper, multi-head N=30")
            ax.set(xlabel="N (checkpoint)", title=f"{task}, leaky RNN",
                   ylabel="trained tau per neuron" if key == "tau" else "tau_net (mean over neurons > 1)")
            integer_ticks(ax.xaxis)
            _legend(ax)
        written.append(save_figure(fig, out / figure))
    panels = [key for key in (("leaky", "parity"), ("leaky", "dms"), ("gru", "parity"), ("lstm", "parity"))
              if any(f"{key[0]}/{key[1]}/{c}" in runs for c in CURRICULUM_COLOURS)]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.6 * max(len(panels), 1), 3.4), squeeze=False)
    for ax, (core, task) in zip(axes[0], panels):
        for curriculum, colour in CURRICULUM_COLOURS.items():
            for k, run in enumerate(runs.get(f"{core}/{task}/{curriculum}", [])):
                points = run["n_over_steps"]
                ax.step([p[0] for p in points], [p[1] for p in points], where="post", color=colour,
                        label=f"{curriculum}-head" if k == 0 else None)
        ax.set(xlabel="training step", ylabel="newest N in training", title=f"{task}, {core} ({run['hidden_size']} units)")
        integer_ticks(ax.yaxis)
        _legend(ax)
    written.append(save_figure(fig, out / "claims_n_over_steps.png"))
    if measured["parity"]:
        first = measured["parity"][0]
        labels = ["single-head", "multi-head"]
        written.append(plot_ablation([first["single"]["ablation"], first["multi"]["ablation"]], labels,
                                     out / "claims_ablation.png"))
        written.append(plot_perturbation([first["single"]["perturbation"], first["multi"]["perturbation"]], labels,
                                         out / "claims_perturbation.png"))
    return written
