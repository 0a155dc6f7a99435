"""``memory-envs reproduce`` and ``memory-envs benchmark``: grids of training runs with a table at the end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

import torch

from agents.checkpoint import WriteError
from agents.cores import KINDS, LAYER_KINDS
from baselines.cli.args import (
    COMMAND_HELP, add_backend_options, backend_from_args, comma_floats, comma_ints, comma_list, comma_tasks,
    finite_float, missing_dependency, positive_int, print_error, print_write_error, require,
)
from baselines.cli.progress import RunsBar


def cmd_reproduce(args: argparse.Namespace) -> int:
    from baselines.backends import UnitsFailed
    from baselines.reproduce import RUNS, SEEDS, reproduce

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    seeds = args.seeds if args.seeds is not None else None if args.seed is None else (args.seed,)
    runs = len(RUNS[args.scale]) * len(seeds or SEEDS[args.scale])
    try:
        if args.workers is not None and args.backend is None:
            raise ValueError("--workers: only with --backend (local: that many processes at a time)")
        backend = backend_from_args(args, workers=args.workers or 1)
        with RunsBar(runs) as bar:
            reproduce(args.scale, args.out, seeds=seeds, max_seconds=args.max_seconds, device=args.device,
                      backend=backend, population_size=args.population_size, threads=args.threads,
                      log=bar.write, on_run=bar.update)
    except UnitsFailed as error:
        print_error(error)
        return 1
    except (ValueError, ImportError) as error:
        print_error(error, args)
        return 2
    except WriteError as error:  # a full disk
        return print_write_error(error, "the same command continues")
    print((Path(args.out) / "reproduce.md").read_text())
    print(f"tables and figures in {args.out}")
    return 0


SUPERVISED_OPTIONS = ("cores", "tasks", "curricula", "seeds", "max_steps", "max_seconds", "hidden_size", "eval_every",
                      "eval_batches", "timescale_steps", "optimizer", "layers", "lrs", "sweep_seeds",
                      "test_sequences")
"""``benchmark``'s options without ``--rl`` (fields of ``BenchmarkSpec``, whose defaults they take)."""
RL_OPTIONS = ("presets", "policies", "seeds", "timesteps", "curriculum", "max_seconds", "hidden_size", "eval_every",
              "eval_episodes", "n_envs", "n_steps", "batch_size", "n_epochs", "lr", "gamma", "ent_coef")
"""``benchmark --rl``'s options (fields of ``RLScorecardSpec``, whose defaults they take)."""
OUT = {False: "runs/benchmark", True: "runs/rl-benchmark"}


def card_defaults(rl: bool) -> dict[str, Any]:
    """The defaults of the score card's options: its spec's field defaults (``--presets`` Easy, which the RL
    spec holds expanded to preset ids) and its output folder."""
    if rl:
        from baselines.rl.scorecard import RLScorecardSpec as spec

        overrides: dict[str, Any] = {"presets": ("Easy",)}
    else:
        from baselines.benchmark import BenchmarkSpec as spec

        overrides = {}
    names = RL_OPTIONS if rl else SUPERVISED_OPTIONS
    return {**{name: getattr(spec, name) for name in names}, **overrides, "out": OUT[rl]}


def resolve_benchmark_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options not given with the defaults of the score card asked for (``--rl`` or not); ValueError
    naming an option given that only the other card takes."""
    mine, other = (RL_OPTIONS, SUPERVISED_OPTIONS) if args.rl else (SUPERVISED_OPTIONS, RL_OPTIONS)
    foreign = [name for name in other if name not in mine and getattr(args, name) is not None]
    if args.rl and args.population_size is not None:
        foreign.append("population_size")
    if foreign:
        flags = ", ".join(args.flags[name] for name in foreign)
        raise ValueError(f"{flags}: only {'without' if args.rl else 'with'} --rl "
                         f"({'the supervised score card' if args.rl else 'the RL score card'})")
    for name, value in card_defaults(args.rl).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def cmd_benchmark(args: argparse.Namespace) -> int:
    try:
        resolve_benchmark_args(args)
    except ValueError as error:
        print_error(error)
        return 2
    if args.rl:
        return cmd_rl_benchmark(args)
    from baselines.benchmark import BenchmarkSpec, expand_cores, run_benchmark

    spec = BenchmarkSpec(cores=expand_cores(args.cores), tasks=args.tasks, curricula=args.curricula, seeds=args.seeds,
                         max_steps=args.max_steps, max_seconds=args.max_seconds, hidden_size=args.hidden_size,
                         eval_every=args.eval_every, eval_batches=args.eval_batches, workers=args.workers,
                         population_size=args.population_size, optimizer=args.optimizer, device=args.device,
                         timescale_steps=args.timescale_steps, layers=args.layers, lrs=args.lrs,
                         sweep_seeds=args.sweep_seeds, test_sequences=args.test_sequences)
    return run_card(args, spec, run_benchmark, "scorecard.md", "score card and figure")


def cmd_rl_benchmark(args: argparse.Namespace) -> int:
    """``benchmark --rl``: the RL score card (:mod:`baselines.rl.scorecard`)."""
    from baselines.rl.scorecard import RLScorecardSpec, expand_presets, run_rl_scorecard

    try:
        require("sb3_contrib", "benchmark --rl")
    except ImportError as error:
        print_error(missing_dependency(error))
        return 2
    spec = RLScorecardSpec(presets=expand_presets(args.presets), policies=args.policies, seeds=args.seeds,
                           timesteps=args.timesteps, curriculum=args.curriculum, hidden_size=args.hidden_size,
                           n_envs=args.n_envs, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
                           lr=args.lr, gamma=args.gamma, ent_coef=args.ent_coef,
                           eval_every=args.eval_every, eval_episodes=args.eval_episodes, max_seconds=args.max_seconds,
                           workers=args.workers, device=args.device)
    return run_card(args, spec, run_rl_scorecard, "rl_scorecard.md", "RL score card")


def run_card(args: argparse.Namespace, spec: Any, run: Callable[..., Any], table: str, what: str) -> int:
    """Validate ``spec`` and the backend options, ``run(spec, out, ...)`` with a progress bar over its runs,
    print the card's ``table``; exit code 2 for bad options, 1 if some units failed."""
    from baselines.backends import UnitsFailed

    try:
        spec.validate()
        backend = backend_from_args(args, workers=args.workers)
    except (ValueError, TypeError, ImportError) as error:
        print_error(error, args)
        return 2
    try:
        with RunsBar(spec.run_count()) as bar:
            run(spec, args.out, backend=backend, storage=args.storage, log=bar.write, on_run=bar.update)
    except UnitsFailed as error:
        print_error(error)
        return 1
    except (ValueError, TypeError) as error:
        print_error(error, args)
        return 2
    except WriteError as error:  # a full disk
        return print_write_error(error, "the same command continues")
    print((Path(args.out) / table).read_text())
    print(f"{what} in {args.out}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``reproduce`` and ``benchmark``."""
    repro = sub.add_parser("reproduce", help=COMMAND_HELP["reproduce"],
                           description="Train single-head and multi-head leaky RNNs on parity and DMS (laptop and "
                                       "paper: also GRUs and LSTMs on parity), the networks of each core as one "
                                       "population (side by side in one process), and write a table and figures. "
                                       "quick: 4 x 15,000 steps, 128 units (about 30 CPU minutes); laptop: 8 runs, "
                                       "the paper's claims table and figures (about 30 minutes on 2 cores with "
                                       "--backend local --workers 2 --population-size 1 --threads 1); paper: the "
                                       "paper's configuration, 4 seeds each, 32 networks (for a GPU). Re-run to resume.")
    repro.add_argument("--scale", default="quick", choices=("quick", "laptop", "paper", "smoke"))
    repro.add_argument("--out", default="runs/reproduce", help="output folder (default: runs/reproduce)")
    repro.add_argument("--seed", type=int, default=None, help="one seed (default: the scale's: 0; paper: 0,1,2,3)")
    repro.add_argument("--seeds", type=comma_ints, default=None, help="comma list of seeds (overrides --seed)")
    repro.add_argument("--max-seconds", type=finite_float, default=None, help="wall-time budget per run (default: the scale's)")
    repro.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    repro.add_argument("--device", default=None,
                       help="cpu, cuda[:i] or auto (default: the scale's: cpu for quick and smoke, auto for paper)")
    add_backend_options(repro, "population")
    repro.add_argument("--workers", type=positive_int, default=None,
                       help="with --backend local: populations trained at a time, one process each (default: 1)")
    repro.set_defaults(func=cmd_reproduce)
    bench = sub.add_parser(
        "benchmark", help=COMMAND_HELP["benchmark"],
        description="Train every core x task x curriculum x seed with one budget (the runs of a core as populations, "
                    "side by side in one process; populations in parallel processes), test "
                    "every solved N on held-out streams, and write a score card. External cores by import path "
                    "package.module:ClassName (see agents.protocol). With --rl: train RecurrentPPO with every "
                    "policy x preset x seed (the same PPO hyperparameters for all) and write the RL score card of "
                    "normalized returns (random policy 0, oracle 1). Re-run the same command to resume.")
    bench.add_argument("--rl", action="store_true",
                       help="the RL score card (RecurrentPPO on the presets) instead of the supervised one")
    g = bench.add_argument_group("supervised score card (without --rl)")
    g.add_argument("--cores", type=comma_list, default=None,
                   help=f"comma-separated cores: kinds ({', '.join(KINDS)}), 'all' for every kind, KIND+signed "
                        "for a kind with eigenvalues='signed', or import paths (default: leaky,gru,lstm)")
    g.add_argument("--tasks", type=comma_tasks, default=None,
                   help="comma list of parity, dms and running tasks (state tracking: trained on lengths 3-40, "
                        "scored at 40-256 and 1000; docs/state_tracking.md): running_parity, running_modK (the count "
                        "mod K, e.g. running_mod3), mod_arithmetic, word_GROUP (word_z60, word_a4xz5, word_s3, "
                        "word_a5, word_s5, ...) (default: parity,dms)")
    g.add_argument("--curricula", type=comma_list, default=None, help="default: single,multi")
    g.add_argument("--max-steps", type=int, default=None, help="training steps per run (default: 3000)")
    g.add_argument("--eval-batches", type=int, default=None, help="default: 10")
    g.add_argument("--timescale-steps", type=positive_int, default=None,
                   help="steps of the 4-trial random-bit drive behind the timescales at the largest N (default: 4000)")
    g.add_argument("--population-size", type=positive_int, default=None,
                   help="runs of one core trained side by side in one process (default: all runs of a core)")
    g.add_argument("--optimizer", default=None,
                   help="auto (default): each kind's optimizer and lr (the paper's SGD lr 0.05 for the leaky "
                        "RNN, Adam for the others; docs/leaderboard.md); or sgd / adam for every core")
    g.add_argument("--lrs", type=comma_floats, default=None,
                   help="comma list of learning rates, with --optimizer adam or sgd: every run trains at each, and "
                        "the card reports each row at the lr with the best median validation score at the training "
                        "lengths (ties to the smaller lr; docs/scorecard.md) (default: no sweep)")
    g.add_argument("--sweep-seeds", type=comma_ints, default=None,
                   help="with --lrs: the seeds that train at every lr; the other seeds train only at each row's "
                        "chosen lr, once the sweep has finished (default: every seed)")
    g.add_argument("--test-sequences", type=positive_int, default=None,
                   help="running tasks: fresh sequences per test length (default: 1024)")
    g.add_argument("--layers", type=comma_ints, default=None,
                   help=f"comma list of depths for the kinds with a layers option ({', '.join(LAYER_KINDS)}); the "
                        "other cores train at 1 layer only, so the list must hold 1 if the card has any (default: 1)")
    g = bench.add_argument_group("RL score card (with --rl; the PPO options are the same for every run)")
    g.add_argument("--presets", type=comma_list, default=None,
                   help="comma-separated difficulties (Easy, Medium, Hard: both tasks) or preset ids (default: Easy)")
    g.add_argument("--policies", type=comma_list, default=None,
                   help=f"comma-separated: stock-lstm (sb3-contrib's MlpLstmPolicy) or core kinds ({', '.join(KINDS)}) "
                        "as agents.RecurrentCorePolicy (default: stock-lstm,leaky,gru,lstm)")
    g.add_argument("--timesteps", type=int, default=None, help="training timesteps per run (default: 100000)")
    g.add_argument("--curriculum", default=None,
                   help="multi: train through the multi-head curriculum up to each preset's N (default: none, "
                        "train at the preset's N)")
    g.add_argument("--eval-episodes", type=int, default=None, help="episodes per evaluation (default: 200)")
    g.add_argument("--n-envs", type=int, default=None, help="parallel envs (default: 8)")
    g.add_argument("--n-steps", type=int, default=None, help="rollout steps per env (default: 64)")
    g.add_argument("--batch-size", type=int, default=None, help="default: 128")
    g.add_argument("--n-epochs", type=int, default=None, help="default: 4")
    g.add_argument("--lr", type=finite_float, default=None,
                   help="learning rate (default: 3e-3, tuned on NDMS-Easy-v0: docs/rl_baselines.md)")
    g.add_argument("--gamma", type=finite_float, default=None, help="discount (default: 0.99)")
    g.add_argument("--ent-coef", type=finite_float, default=None, help="entropy bonus (default: 0.01, tuned with --lr)")
    g = bench.add_argument_group("both score cards")
    g.add_argument("--seeds", type=comma_ints, default=None, help="default: 0,1,2; with --rl 0,1")
    g.add_argument("--max-seconds", type=finite_float, default=None,
                   help="wall-time cap per run (default: 600; with --rl none)")
    g.add_argument("--hidden-size", type=int, default=None, help="units per core (default: 64; with --rl 32)")
    g.add_argument("--eval-every", type=int, default=None,
                   help="training steps between evaluations (default: 100; with --rl timesteps, 10000)")
    g.add_argument("--workers", type=int, default=2, help="parallel processes (default: 2)")
    g.add_argument("--device", default="cpu",
                   help="where every run trains and is tested: cpu, cuda[:i] or auto (default: cpu); the "
                        "workers share it")
    g.add_argument("--out", default=None, help="output folder (default: runs/benchmark; with --rl runs/rl-benchmark)")
    add_backend_options(bench, "population (with --rl: run)", storage=True, population_size=False)
    bench.set_defaults(func=cmd_benchmark)
