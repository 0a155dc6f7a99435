"""The ``memory-envs`` command.

    memory-envs train [options]          train one network with a curriculum (3 CPU minutes by default)
    memory-envs plot RUN_DIR [...]       figures of finished or running runs
    memory-envs reproduce --scale quick  single- vs multi-head on parity and DMS, with a table
    memory-envs benchmark --cores ...    score card of recurrent cores (built-in or your own)
    memory-envs rl --env NDMS-v0 --n 2   RecurrentPPO with our cores, optional curriculum
    memory-envs analyze RUN [RUN ...]    timescales, ablation, perturbation, forgetting, dimensionality

User errors (bad options, an unusable run folder, a missing device) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from baselines.analysis import add_analyze_parser
from baselines.rl import add_rl_parser
from baselines.trainer import CORES, OPTIMIZERS, TrainConfig, Trainer
from memory_envs import curriculum as curricula
from memory_envs import tasks

PAPER = TrainConfig()


def _p(value: str) -> float | str:
    return value if value == "uniform" else float(value)


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """The TrainConfig fields as options. Defaults: a quick CPU run; the paper's values are in each help."""
    g = parser.add_argument_group("task and curriculum")
    g.add_argument("--task", default="parity", choices=tasks.TASKS, help="memory task (default: parity)")
    g.add_argument("--curriculum", default="multi", choices=curricula.KINDS,
                   help="single: one reused head, [N] -> [N+1]; multi: one head per N, [2..N] -> [2..N+1]; "
                        "sliding: multi keeping the newest --window heads (default: multi)")
    g.add_argument("--start-n", type=int, default=2, help="first N (default: 2)")
    g.add_argument("--target-n", type=int, default=None, help="stop once this N is solved (default: no limit)")
    g.add_argument("--window", type=int, default=5, help="heads kept by the sliding curriculum (default: 5)")
    g.add_argument("--drop", type=int, default=1, help="heads the sliding curriculum drops at once (default: 1)")
    g.add_argument("--threshold", type=float, default=0.98,
                   help="advance when the mean and the newest head's accuracy exceed this (default: 0.98)")
    g.add_argument("--p", type=_p, default=None,
                   help="bit probability: a float or 'uniform' (default: the paper's; uniform for parity, 0.5 DMS)")
    g = parser.add_argument_group("network")
    g.add_argument("--core", default="leaky",
                   help=f"recurrent core: one of {', '.join(CORES)} (default: leaky, the paper's), or an external "
                        "core's import path package.module:ClassName (see agents.protocol)")
    g.add_argument("--core-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the core's constructor (VALUE parsed as JSON if it parses); repeatable")
    g.add_argument("--hidden-size", type=int, default=128, help=f"units (default: 128; paper: {PAPER.hidden_size})")
    g.add_argument("--tau-init", type=float, nargs=2, default=list(PAPER.tau_init), metavar=("LOW", "HIGH"),
                   help="initial tau ~ U(LOW, HIGH); equal values fix it (default: 1 2)")
    g.add_argument("--fixed-tau", action="store_true", help="do not train tau")
    g.add_argument("--tau-param", default="clamp", choices=("clamp", "softplus"),
                   help="clamp: tau' = max(tau, 1) (paper); softplus: tau' = 1 + softplus(raw)")
    g = parser.add_argument_group("optimization")
    g.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="sgd (paper: Nesterov) or adam")
    g.add_argument("--lr", type=float, default=PAPER.lr, help=f"learning rate (default: {PAPER.lr})")
    g.add_argument("--momentum", type=float, default=PAPER.momentum, help=f"SGD momentum (default: {PAPER.momentum})")
    g.add_argument("--no-nesterov", action="store_true", help="plain momentum instead of Nesterov")
    g.add_argument("--clip-grad", type=float, default=PAPER.clip_grad,
                   help=f"gradient norm clip (default: {PAPER.clip_grad})")
    g.add_argument("--batch-size", type=int, default=PAPER.batch_size, help=f"default: {PAPER.batch_size}")
    g.add_argument("--eval-every", type=int, default=100,
                   help=f"training steps between evaluations (default: 100; paper: {PAPER.eval_every})")
    g.add_argument("--eval-batches", type=int, default=10,
                   help=f"test batches per evaluation (default: 10; paper: {PAPER.eval_batches})")
    g = parser.add_argument_group("budget and run")
    g.add_argument("--max-steps", type=int, default=PAPER.max_steps, help=f"default: {PAPER.max_steps}")
    g.add_argument("--max-seconds", type=float, default=180.0, help="wall-time budget (default: 180)")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw (default: 0)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda[:i] (default: auto)")
    g.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")


def parse_core_options(items: Sequence[str]) -> dict[str, Any]:
    """``["variant=mod", "self_connections=true"]`` -> ``{"variant": "mod", "self_connections": True}``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--core-option must look like KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        core_options=parse_core_options(args.core_option),
        task=args.task, curriculum=args.curriculum, start_n=args.start_n, target_n=args.target_n,
        window=args.window, drop=args.drop, threshold=args.threshold, core=args.core,
        hidden_size=args.hidden_size, tau_init=tuple(args.tau_init), train_tau=not args.fixed_tau,
        tau_param=args.tau_param, p=args.p, optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
        nesterov=not args.no_nesterov, clip_grad=args.clip_grad, batch_size=args.batch_size,
        eval_every=args.eval_every, eval_batches=args.eval_batches, max_steps=args.max_steps,
        max_seconds=args.max_seconds, seed=args.seed, device=args.device,
    )


def default_run_dir(config: TrainConfig) -> str:
    core = config.core.replace(":", ".")
    return f"runs/{config.task}-{config.curriculum}-{core}-h{config.hidden_size}-s{config.seed}"


def format_summary(summary: dict[str, Any]) -> str:
    steps_to = ", ".join(f"N={n}: {s}" for n, s in summary["steps_to_n"].items()) or "none"
    return (
        f"largest N solved: {summary['max_n']}  ({summary['task']}, {summary['curriculum']}-head curriculum, "
        f"{summary['core']} core, {summary['hidden_size']} units)\n"
        f"steps: {summary['steps']}  time: {summary['seconds']:.0f} s  stopped because: {summary['stopped_because']}\n"
        f"steps to solve each N: {steps_to}"
    )


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        config = config_from_args(args)
        run_dir = args.run_dir or default_run_dir(config)
        trainer = Trainer(config, run_dir, resume=args.resume, overwrite=args.overwrite)
    except (ValueError, TypeError) as error:  # bad options or an unusable run folder: no traceback
        print(f"memory-envs: error: {error}", file=sys.stderr)
        return 2
    bar = tqdm(total=config.max_steps, initial=trainer.step, unit="step", disable=args.quiet, dynamic_ncols=True)

    def on_eval(line: dict[str, Any]) -> None:
        bar.update(line["step"] - bar.n)
        ns = line["ns"]
        newest = line["accuracy"][str(ns[-1])]
        bar.set_postfix_str(f"N={ns[0]}..{ns[-1]} acc(N={ns[-1]})={newest:.3f} tau={line['tau_mean']:.2f}")

    summary = trainer.run(on_eval)
    bar.close()
    print(format_summary(summary))
    print(f"run folder: {run_dir}")
    if not args.no_plots:
        try:
            from baselines.plots import plot_run

            print("figures: " + ", ".join(p.name for p in plot_run(run_dir)))
        except ImportError as error:
            print(f"no figures: {error}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from baselines.plots import plot_run

    for run_dir in args.run_dirs:
        try:
            paths = plot_run(run_dir)
        except FileNotFoundError as error:
            print(f"memory-envs: error: {error}", file=sys.stderr)
            return 2
        print(f"{run_dir}: " + ", ".join(p.name for p in paths))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from baselines.reproduce import reproduce

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        reproduce(args.scale, args.out, seed=args.seed, max_seconds=args.max_seconds)
    except ValueError as error:
        print(f"memory-envs: error: {error}", file=sys.stderr)
        return 2
    print((Path(args.out) / "reproduce.md").read_text())
    print(f"tables and figures in {args.out}")
    return 0


def positive_int(value: str) -> int:
    """An integer >= 1 (an argparse type)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def comma_list(value: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")`` (an argparse type)."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def comma_ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in comma_list(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def comma_floats(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in comma_list(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {value!r}") from None


def cmd_benchmark(args: argparse.Namespace) -> int:
    from baselines.benchmark import BenchmarkSpec, run_benchmark

    spec = BenchmarkSpec(cores=args.cores, tasks=args.tasks, curricula=args.curricula, seeds=args.seeds,
                         max_steps=args.max_steps, max_seconds=args.max_seconds, hidden_size=args.hidden_size,
                         eval_every=args.eval_every, eval_batches=args.eval_batches, workers=args.workers,
                         optimizer=args.optimizer)
    try:
        spec.validate()
        run_benchmark(spec, args.out)
    except (ValueError, TypeError) as error:
        print(f"memory-envs: error: {error}", file=sys.stderr)
        return 2
    print((Path(args.out) / "scorecard.md").read_text())
    print(f"score card and figure in {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memory-envs", description="Memory tasks with a curriculum over N.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one network with a curriculum",
                           description="Train a recurrent network on N-parity or N-DMS with a curriculum over N. "
                                       "With no options: a multi-head leaky RNN on parity for 3 CPU minutes.")
    add_train_options(train)
    train.add_argument("--run-dir", default=None, help="run folder (default: runs/<task>-<curriculum>-...)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last state")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-plots", action="store_true", help="do not write figures at the end")
    train.set_defaults(func=cmd_train)
    plot = sub.add_parser("plot", help="write the figures of run folders (needs matplotlib)")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    plot.set_defaults(func=cmd_plot)
    repro = sub.add_parser("reproduce", help="single- vs multi-head curricula on parity and DMS",
                           description="Train single-head and multi-head leaky RNNs on parity and DMS with the same "
                                       "budget each and write a table and figures. quick: 4 x 15,000 steps, 128 "
                                       "units (about 30 CPU minutes); paper: the paper's configuration (for a GPU). Re-run to resume.")
    repro.add_argument("--scale", default="quick", choices=("quick", "paper", "smoke"))
    repro.add_argument("--out", default="runs/reproduce", help="output folder (default: runs/reproduce)")
    repro.add_argument("--seed", type=int, default=0)
    repro.add_argument("--max-seconds", type=float, default=None, help="wall-time budget per run (default: the scale's)")
    repro.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    repro.set_defaults(func=cmd_reproduce)
    bench = sub.add_parser(
        "benchmark", help="score card of recurrent cores across N, tasks and curricula",
        description="Train every core x task x curriculum x seed with one budget (in parallel processes), test "
                    "every solved N on held-out streams, and write a score card. External cores by import path "
                    "package.module:ClassName (see agents.protocol). Re-run the same command to resume.")
    bench.add_argument("--cores", type=comma_list, default=("leaky", "gru", "lstm"),
                       help="comma-separated cores (default: leaky,gru,lstm)")
    bench.add_argument("--tasks", type=comma_list, default=("parity", "dms"), help="default: parity,dms")
    bench.add_argument("--curricula", type=comma_list, default=("single", "multi"), help="default: single,multi")
    bench.add_argument("--seeds", type=comma_ints, default=(0, 1, 2), help="default: 0,1,2")
    bench.add_argument("--max-steps", type=int, default=3000, help="training steps per run (default: 3000)")
    bench.add_argument("--max-seconds", type=float, default=600.0, help="wall-time cap per run (default: 600)")
    bench.add_argument("--hidden-size", type=int, default=64, help="units per core (default: 64)")
    bench.add_argument("--eval-every", type=int, default=100, help="default: 100")
    bench.add_argument("--eval-batches", type=int, default=10, help="default: 10")
    bench.add_argument("--workers", type=int, default=2, help="parallel processes (default: 2)")
    bench.add_argument("--optimizer", default="auto",
                       help="auto (default): SGD lr 0.05 for the leaky RNN, Adam lr 1e-3 for the others; "
                            "or sgd / adam for every core")
    bench.add_argument("--out", default="runs/benchmark", help="output folder (default: runs/benchmark)")
    bench.set_defaults(func=cmd_benchmark)
    add_rl_parser(sub)
    add_analyze_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
