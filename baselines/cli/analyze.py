"""``memory-envs analyze RUN_DIR [RUN_DIR ...]``: the command-line face of :mod:`baselines.analysis`; and
``memory-envs import-authors SRC_DIR OUT_DIR``: the paper's authors' published networks as a run folder
to analyze (:mod:`baselines.authors`)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from agents.protocol import import_core_class
from baselines.analysis import (
    ANALYSES, FIT_RULES, PAPER_CHECK_CASES, SCALES, TAU_PERTURB_TARGETS, AnalysisError, AnalysisOptions, analyze_run,
    compare_runs, fit_accuracy, load_run, scaled_options,
)
from baselines.authors import CURRICULA, import_authors
from baselines.cli.args import (
    COMMAND_HELP, comma_floats, comma_ints, comma_list, finite_float, missing_dependency, positive_int, print_error,
    require,
)
from baselines.run_folder import make_output_folder


def analysis_names(text: str) -> tuple[str, ...]:
    """``--analyses``: a comma list of analysis names, or ``all``."""
    names = comma_list(text)
    return ANALYSES if names == ("all",) else names


def drive_p(text: str) -> float | str:
    """``--drive-p``: a number in [0, 1] or 'uniform'."""
    if text == "uniform":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1] or 'uniform', got {text!r}")
    return value


def progress_bar(description: str, total: int) -> tqdm:
    """A bar on stderr for one analysis of one checkpoint (``analyze_run``'s ``progress``) or for the
    reduced-size check; it clears itself when done, and a printed line sums up what it did. Shown on a
    terminal only: a log or a pipe gets the printed lines without the bars' redraws."""
    return tqdm(total=total, desc="  " + description, leave=False, dynamic_ncols=True, file=sys.stderr,
                disable=not sys.stderr.isatty())


#: The paper's data for tau_net: 10 trials x 10^5 steps.
PAPER_SAMPLES = 10 * 100_000


def reduced_size_warning(options: AnalysisOptions) -> str:
    """What tau_net is worth at a size below the paper's: the fit's accuracy on synthetic neurons of
    known timescale (``fit_accuracy``, 20 per case), measured now at this size and fit rule."""
    with progress_bar("tau_net on synthetic neurons at this size, cases", len(PAPER_CHECK_CASES)) as bar:
        rows = fit_accuracy(PAPER_CHECK_CASES, trials=options.trials, steps=options.steps, neurons=20,
                            seed=options.seed, rule=options.fit_rule, max_lag=options.max_lag,
                            min_weight=options.min_weight, progress=bar.update)
    cells = "; ".join(f"{r['case']}: {r['share_within']:.0%} ({r['median_rel_error']:.0%})" for r in rows)
    return (f"note: reduced size ({options.trials} trials x {options.steps} steps; the paper: 10 x 100000). On "
            f"synthetic neurons of known timescale at this size, tau_net is within 10% of the truth for this share "
            f"of neurons (median relative error): {cells}.")


PAPER = AnalysisOptions()
"""The paper's sizes: ``--scale paper``."""


def sized(name: str) -> str:
    """The help text's default of a size that --scale sets: its quick and its paper value."""
    return f"(default: the scale's: {SCALES['quick'].get(name, getattr(PAPER, name))} quick, {getattr(PAPER, name)} paper)"


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``memory-envs analyze`` and ``memory-envs import-authors`` on the subparsers of the main parser."""
    add_analyze_parser(subparsers)
    add_import_parser(subparsers)


def add_analyze_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``memory-envs analyze``."""
    d = PAPER
    p = subparsers.add_parser(
        "analyze", help=COMMAND_HELP["analyze"],
        description="Analyze run folders written by `memory-envs train`: tables (CSV) and figures (PNG) in "
                    "RUN_DIR/analysis; with several runs also comparison figures in --compare-dir. By default a "
                    "quick pass (--scale quick: about a minute for a 128-unit run with a few checkpoints); "
                    "--scale paper runs the paper's sizes (about ten times longer). A bar shows each analysis "
                    "of each checkpoint. See docs/analysis.md.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--scale", choices=tuple(SCALES), default="quick",
                   help="sizes of the analyses: quick (fewer trials and steps, neurons ablated, draws, a shorter "
                        "stream) or paper (the paper's); an option below overrides its size (default: quick)")
    p.add_argument("--analyses", type=analysis_names, default=ANALYSES,
                   help=f"comma-separated subset of {','.join(ANALYSES)} or 'all' (default: all)")
    p.add_argument("--ns", type=comma_ints, default=None,
                   help="checkpoints (N) for timescales, dimensionality and transitions (default: every checkpoint)")
    p.add_argument("--n", type=int, default=None, help="the N whose checkpoint and head are ablated/perturbed "
                                                        "(default: the largest checkpoint)")
    g = p.add_argument_group("timescales and dimensionality")
    g.add_argument("--trials", type=int, default=None, help=f"random-bit trials (batch) {sized('trials')}")
    g.add_argument("--steps", type=int, default=None, help=f"steps per trial for tau_net {sized('steps')}")
    g.add_argument("--burn-in", type=int, default=d.burn_in, help=f"discarded steps (default: {d.burn_in})")
    g.add_argument("--fit", choices=FIT_RULES, default=d.fit_rule,
                   help="tau_net fit: 'robust' (adaptive lag window, fits weighted by the estimate's covariance, "
                        "likelihood-ratio choice of the double exponential), 'paper' (lags 0..30, plain AIC) or "
                        "'authors' (the authors' script: lags 0..30, free amplitude, taus capped at 100, AIC) "
                        f"(default: {d.fit_rule})")
    g.add_argument("--drive-p", type=drive_p, default=d.drive_p,
                   help="bit probability of the random-bit drive for tau_net: a number in [0, 1], or 'uniform' "
                        "(each trial draws p ~ U(0, 1), as the authors' script does) (default: 0.5)")
    g.add_argument("--max-lag", type=int, default=None,
                   help="most lags accumulated; the paper and authors rules fit lags 0..K, the robust rule's window adapts "
                        "within it (default: 30 with --fit paper or authors, min(2000, steps/4) with robust)")
    g.add_argument("--min-weight", type=finite_float, default=None,
                   help="smallest component weight of an accepted double-exponential fit "
                        "(default: 0 with --fit paper or authors, 0.05 with robust)")
    g.add_argument("--pca-steps", type=int, default=None, help=f"steps per trial for PCA {sized('pca_steps')}")
    g = p.add_argument_group("ablation and perturbation")
    g.add_argument("--k", type=int, default=None, help=f"slowest and fastest neurons ablated {sized('k')}")
    g.add_argument("--keep-bias", action="store_true", help="do not zero an ablated neuron's biases")
    g.add_argument("--stream-length", type=int, default=None,
                   help=f"steps of the streaming test {sized('stream_length')}")
    g.add_argument("--stream-batch", type=int, default=d.stream_batch,
                   help=f"parallel streams (default: {d.stream_batch})")
    g.add_argument("--eps", type=comma_floats, default=d.eps, help="weight-perturbation eps grid (default: 0 and "
                                                              "10^-2..10^0 in thirds of a decade)")
    g.add_argument("--tau-eps", type=comma_floats, default=d.tau_eps, help="tau-perturbation eps grid (default: as --eps)")
    g.add_argument("--tau-perturb", choices=TAU_PERTURB_TARGETS, default=d.tau_perturb,
                   help="perturb the raw trained tau, then clamp at 1 (the paper), or the clamped tau' "
                        f"(default: {d.tau_perturb})")
    g.add_argument("--draws", type=int, default=None, help=f"random draws per eps {sized('draws')}")
    g = p.add_argument_group("forgetting")
    g.add_argument("--eval-batches", type=int, default=d.eval_batches, help=f"default: {d.eval_batches}")
    g.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size, help=f"default: {d.eval_batch_size}")
    g.add_argument("--beyond", type=int, default=d.beyond,
                   help=f"evaluate up to the largest checkpoint N + this (default: {d.beyond})")
    g = p.add_argument_group("transitions (cores whose a_t depends on the input: mingru, mamba, deltanet, ...)")
    g.add_argument("--transition-steps", type=positive_int, default=d.transition_steps,
                   help=f"length of the sequences of uniform input tokens (default: {d.transition_steps})")
    g.add_argument("--transition-batch", type=positive_int, default=d.transition_batch,
                   help=f"sequences (default: {d.transition_batch})")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=None, help="output folder for a single run (default: RUN_DIR/analysis)")
    g.add_argument("--compare-dir", default="analysis-compare",
                   help="comparison figures of several runs (default: ./analysis-compare)")
    g.add_argument("--no-plots", action="store_true", help="tables only")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    g.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--core-class", default=None, metavar="MODULE:CLASS",
                   help="the class of the external core the runs trained (e.g. example_core:ElmanCore); it is "
                        "imported, so name only code you trust: a run folder alone never makes analyze import "
                        "a module (docs/trust.md)")
    g.add_argument("--device", default=d.device,
                   help=f"where the networks run: cpu, cuda[:i] or auto (default: {d.device}); draws stay on the CPU")
    p.set_defaults(func=cmd_analyze)
    return p


def add_import_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``memory-envs import-authors``."""
    p = subparsers.add_parser(
        "import-authors", help=COMMAND_HELP["import-authors"],
        description="Turn one network folder of the authors' repository (LevinaLab/rnn_timescale_public, "
                    "trained_models/<network>/: rnn_N{a}_N{b} files, rnn_init, stats.npy) into a run folder of "
                    "this project (config.json, checkpoints/nNNN, metrics.jsonl with one line per epoch of 600 "
                    "steps, summary.json), so that analyze and plot work on it. Their files are read without "
                    "running code (torch weights only; stats.npy through an unpickler that admits numpy arrays "
                    "and builtin containers only).")
    p.add_argument("src_dir", metavar="SRC_DIR", help="their network folder, e.g. trained_models/single_parity_network_1")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the run folder to write (missing or empty)")
    p.add_argument("--curriculum", choices=CURRICULA, default=None,
                   help="default: from the folder name (cumulative_ -> multi, single_, sliding_W_F_)")
    p.add_argument("--task", choices=("parity", "dms"), default=None, help="default: from the folder name")
    p.add_argument("--variant", choices=("standard", "mod"), default=None,
                   help="their RNN_Stack (standard) or RNN_Mod (mod) (default: mod if the folder name has their "
                        "'mod' affix)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run folder made by memory-envs (never a folder holding other files)")
    p.set_defaults(func=cmd_import_authors)
    return p


def cmd_import_authors(args: argparse.Namespace) -> int:
    try:
        summary = import_authors(args.src_dir, args.out_dir, curriculum=args.curriculum, task=args.task,
                                 variant=args.variant, overwrite=args.overwrite)
    except (OSError, ValueError) as error:
        print_error(error, args)
        return 2
    epochs = ", ".join(f"N={n}: {e}" for n, e in summary["epochs_to_n"].items())
    print(f"{args.out_dir}: {summary['curriculum']}-head {summary['task']} network of {summary['hidden_size']} "
          f"units, checkpoints up to N={summary['max_n']}; epochs to each N (stats.npy): {epochs or 'none'}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sizes = {name: getattr(args, name) for name in ("trials", "steps", "pca_steps", "k", "stream_length", "draws")
             if getattr(args, name) is not None}
    options = scaled_options(
        args.scale, analyses=tuple(args.analyses), ns=args.ns, n=args.n, burn_in=args.burn_in, fit_rule=args.fit,
        drive_p=args.drive_p, max_lag=args.max_lag, min_weight=args.min_weight, tau_perturb=args.tau_perturb,
        zero_bias=not args.keep_bias, stream_batch=args.stream_batch, eps=tuple(args.eps), tau_eps=tuple(args.tau_eps),
        eval_batches=args.eval_batches, eval_batch_size=args.eval_batch_size, beyond=args.beyond, seed=args.seed,
        transition_steps=args.transition_steps, transition_batch=args.transition_batch,
        plots=not args.no_plots, device=args.device, **sizes)
    if args.out is not None and len(args.run_dirs) > 1:
        print_error("--out needs exactly one RUN_DIR (each run writes to RUN_DIR/analysis)")
        return 2
    try:
        options.check()
        if "timescales" in options.analyses:
            require("scipy", "analyze's timescale fits (tau_net)")
        if options.plots:
            require("matplotlib", "analyze's figures (or pass --no-plots)")
        core_class = None if args.core_class is None else import_core_class(args.core_class)
        runs = [load_run(r, core_class) for r in args.run_dirs]  # all folders are checked before any work
        if len(runs) > 1 and options.plots:
            make_output_folder(Path(args.compare_dir), "compare_dir")
        if args.scale == "quick":
            print("a quick pass (--scale quick); --scale paper runs the paper's sizes (docs/analysis.md)", flush=True)
        if "timescales" in options.analyses and options.trials * options.steps < PAPER_SAMPLES:
            print(reduced_size_warning(options), flush=True)
        results = []
        for run in runs:
            print(f"{run.path}:")
            result = analyze_run(run.path, args.out, options, log=lambda s: print("  " + s, flush=True),
                                 core_class=core_class, progress=progress_bar)
            folders = sorted({str(Path(f).parent) for f in result["files"]})
            names = ", ".join(Path(f).name for f in result["files"])
            print(f"  wrote into {', '.join(folders) or 'nothing'}: {names}")
            results.append(result)
    except (AnalysisError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print_error(message, args)
        return 2
    except ImportError as error:
        print_error(missing_dependency(error))
        return 2
    if len(runs) > 1:
        labels = [r.label for r in runs]
        files = compare_runs(results, labels, args.compare_dir) if options.plots else []
        print(f"comparison in {args.compare_dir}: " + ", ".join(f.name for f in files))
    return 0
