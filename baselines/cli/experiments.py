"""``memory-envs reproduce`` and ``memory-envs benchmark``: grids of training runs with a table at the end."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from agents.cores import KINDS
from baselines.cli.args import (
    add_backend_options, backend_from_args, comma_ints, comma_list, positive_int, print_error,
)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from baselines.backends import UnitsFailed
    from baselines.reproduce import RUNS, SEEDS, reproduce

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    seeds = args.seeds if args.seeds is not None else None if args.seed is None else (args.seed,)
    runs = len(RUNS) * len(seeds or SEEDS[args.scale])
    try:
        with tqdm(total=runs, unit="run", dynamic_ncols=True, file=sys.stderr) as bar:
            reproduce(args.scale, args.out, seeds=seeds, max_seconds=args.max_seconds, device=args.device,
                      backend=backend_from_args(args), population_size=args.population_size, log=bar.write,
                      on_run=lambda name, summary: bar.update())
    except UnitsFailed as error:
        print_error(error)
        return 1
    except (ValueError, ImportError) as error:
        print_error(error, args)
        return 2
    print((Path(args.out) / "reproduce.md").read_text())
    print(f"tables and figures in {args.out}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from baselines.backends import UnitsFailed
    from baselines.benchmark import BenchmarkSpec, expand_cores, run_benchmark

    spec = BenchmarkSpec(cores=expand_cores(args.cores), tasks=args.tasks, curricula=args.curricula, seeds=args.seeds,
                         max_steps=args.max_steps, max_seconds=args.max_seconds, hidden_size=args.hidden_size,
                         eval_every=args.eval_every, eval_batches=args.eval_batches, workers=args.workers,
                         population_size=args.population_size, optimizer=args.optimizer, device=args.device,
                         timescale_steps=args.timescale_steps)
    try:
        spec.validate()
        backend = backend_from_args(args, workers=args.workers)
    except (ValueError, TypeError, ImportError) as error:
        print_error(error, args)
        return 2
    try:
        with tqdm(total=len(spec.runs()), unit="run", dynamic_ncols=True, file=sys.stderr) as bar:
            run_benchmark(spec, args.out, backend=backend, storage=args.storage, log=bar.write,
                          on_run=lambda result: bar.update())
    except UnitsFailed as error:
        print_error(error)
        return 1
    except (ValueError, TypeError) as error:
        print_error(error, args)
        return 2
    print((Path(args.out) / "scorecard.md").read_text())
    print(f"score card and figure in {args.out}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``reproduce`` and ``benchmark``."""
    repro = sub.add_parser("reproduce", help="single- vs multi-head curricula on parity and DMS",
                           description="Train single-head and multi-head leaky RNNs on parity and DMS with the same "
                                       "budget each, all as one population (side by side in this process), and "
                                       "write a table and figures. quick: 4 x 15,000 steps, 128 units (about 30 CPU "
                                       "minutes); paper: the paper's configuration, 4 seeds each, 16 networks (for "
                                       "a GPU). Re-run to resume.")
    repro.add_argument("--scale", default="quick", choices=("quick", "paper", "smoke"))
    repro.add_argument("--out", default="runs/reproduce", help="output folder (default: runs/reproduce)")
    repro.add_argument("--seed", type=int, default=None, help="one seed (default: the scale's: 0; paper: 0,1,2,3)")
    repro.add_argument("--seeds", type=comma_ints, default=None, help="comma list of seeds (overrides --seed)")
    repro.add_argument("--max-seconds", type=float, default=None, help="wall-time budget per run (default: the scale's)")
    repro.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    repro.add_argument("--device", default=None,
                       help="cpu, cuda[:i] or auto (default: the scale's: cpu for quick and smoke, auto for paper)")
    add_backend_options(repro, "population")
    repro.set_defaults(func=cmd_reproduce)
    bench = sub.add_parser(
        "benchmark", help="score card of recurrent cores across N, tasks and curricula",
        description="Train every core x task x curriculum x seed with one budget (the runs of a core as populations, "
                    "side by side in one process; populations in parallel processes), test "
                    "every solved N on held-out streams, and write a score card. External cores by import path "
                    "package.module:ClassName (see agents.protocol). Re-run the same command to resume.")
    bench.add_argument("--cores", type=comma_list, default=("leaky", "gru", "lstm"),
                       help=f"comma-separated cores: kinds ({', '.join(KINDS)}), 'all' for every kind, KIND+signed "
                            "for a kind with eigenvalues='signed', or import paths (default: leaky,gru,lstm)")
    bench.add_argument("--tasks", type=comma_list, default=("parity", "dms"), help="default: parity,dms")
    bench.add_argument("--curricula", type=comma_list, default=("single", "multi"), help="default: single,multi")
    bench.add_argument("--seeds", type=comma_ints, default=(0, 1, 2), help="default: 0,1,2")
    bench.add_argument("--max-steps", type=int, default=3000, help="training steps per run (default: 3000)")
    bench.add_argument("--max-seconds", type=float, default=600.0, help="wall-time cap per run (default: 600)")
    bench.add_argument("--hidden-size", type=int, default=64, help="units per core (default: 64)")
    bench.add_argument("--eval-every", type=int, default=100, help="default: 100")
    bench.add_argument("--eval-batches", type=int, default=10, help="default: 10")
    bench.add_argument("--workers", type=int, default=2, help="parallel processes (default: 2)")
    bench.add_argument("--timescale-steps", type=positive_int, default=4000,
                       help="steps of the 4-trial random-bit drive behind the timescales at the largest N (default: 4000)")
    bench.add_argument("--population-size", type=positive_int, default=None,
                       help="runs of one core trained side by side in one process (default: all runs of a core)")
    bench.add_argument("--optimizer", default="auto",
                       help="auto (default): each kind's optimizer and lr (the paper's SGD lr 0.05 for the leaky "
                            "RNN, Adam for the others; docs/leaderboard.md); or sgd / adam for every core")
    bench.add_argument("--device", default="cpu",
                       help="where every run trains and is tested: cpu, cuda[:i] or auto (default: cpu); the "
                            "workers share it")
    bench.add_argument("--out", default="runs/benchmark", help="output folder (default: runs/benchmark)")
    add_backend_options(bench, "population", storage=True, population_size=False)
    bench.set_defaults(func=cmd_benchmark)
