"""``memory-envs train`` and ``memory-envs plot``: the command-line face of :mod:`baselines.trainer`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from agents.checkpoint import WriteError
from agents.cores import TAU_KINDS
from agents.protocol import import_core_class, is_import_path
from baselines.cli.args import (
    COMMAND_HELP, add_backend_options, backend_from_args, bit_probability, comma_choices, comma_floats, comma_ints,
    comma_tasks, default_run_dir, finite_float, flag_names, missing_dependency, parse_core_options, positive_int, print_error,
    print_write_error, resume_hint, resumed_config,
)
from baselines.cli.progress import BudgetBar
from baselines.interrupt import stop_on_signals
from baselines.population import Population, grid
from baselines.run_folder import solved_text
from baselines.threads import set_threads
from baselines.trainer import CORES, OPTIMIZERS, RESUME_MAY_CHANGE, TrainConfig, make_trainer
from memory_envs import curriculum as curricula
from memory_envs import tasks

PAPER = TrainConfig()


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """The TrainConfig fields as options. Defaults: a quick CPU run; the paper's values are in each help."""
    g = parser.add_argument_group("task and curriculum")
    g.add_argument("--task", default=("parity",), type=comma_tasks,
                   help=f"memory task: {', '.join(tasks.TASKS)} (windowed, with N), or a running task (state "
                        "tracking: no N, trained on short trials and tested on long ones, docs/state_tracking.md): "
                        f"{tasks.RUNNING_PARITY}, running_modK (the count mod K, e.g. running_mod3), "
                        f"{tasks.MOD_ARITHMETIC}, or a group word problem word_GROUP (word_z60, word_a4xz5, word_s3, "
                        "word_a5, word_s5, ...); a comma list of the windowed tasks trains a population "
                        "(default: parity)")
    g.add_argument("--curriculum", default=None, type=comma_choices(curricula.KINDS + curricula.LENGTH_KINDS),
                   help="single: one reused head, [N] -> [N+1]; multi: one head per N, [2..N] -> [2..N+1]; "
                        "sliding: multi keeping the newest --window heads; a comma list trains a population "
                        "(default: multi). A running task: none (fixed --length-range, the default) or length "
                        "(the longest training length doubles whenever --threshold is passed)")
    g.add_argument("--start-n", type=int, default=2, help="first N (default: 2)")
    g.add_argument("--target-n", type=int, default=None, help="stop once this N is solved (default: no limit)")
    g.add_argument("--window", type=int, default=5, help="heads kept by the sliding curriculum (default: 5)")
    g.add_argument("--drop", type=int, default=1, help="heads the sliding curriculum drops at once (default: 1)")
    g.add_argument("--threshold", type=finite_float, default=0.98,
                   help="advance when the mean and the newest head's accuracy exceed this (default: 0.98)")
    g.add_argument("--p", type=bit_probability, default=None,
                   help="bit probability: a float or 'uniform' (default: the paper's; uniform for parity, 0.5 DMS)")
    g = parser.add_argument_group("running tasks (--task running_parity, running_modK, mod_arithmetic, word_GROUP)")
    g.add_argument("--modulus", type=int, default=None,
                   help="running_parity: label (x_1 + ... + x_t) mod this (default: 2, parity; running_modK: K)")
    g.add_argument("--length-range", type=int, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="training lengths, HIGH excluded (default: 3 41, lengths 3 to 40)")
    g.add_argument("--test-lengths", type=comma_ints, default=PAPER.test_lengths,
                   help="comma list of test lengths, scored and averaged at the end (default: "
                        f"{','.join(map(str, PAPER.test_lengths))})")
    g.add_argument("--far-length", type=int, default=PAPER.far_length,
                   help=f"the far test length, reported beside the average; 0: none (default: {PAPER.far_length})")
    g.add_argument("--test-sequences", type=int, default=PAPER.test_sequences,
                   help=f"fresh sequences per test length (default: {PAPER.test_sequences})")
    g = parser.add_argument_group("network")
    g.add_argument("--core", default="leaky",
                   help=f"recurrent core: one of {', '.join(CORES)} (default: leaky, the paper's), or an external "
                        "core's import path package.module:ClassName (see agents.protocol)")
    g.add_argument("--core-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the core's constructor (VALUE parsed as JSON if it parses); repeatable")
    g.add_argument("--hidden-size", type=int, default=128, help=f"units (default: 128; paper: {PAPER.hidden_size})")
    g.add_argument("--tau-init", type=finite_float, nargs=2, default=list(PAPER.tau_init), metavar=("LOW", "HIGH"),
                   help="initial tau ~ U(LOW, HIGH); equal values fix it (default: 1 2); the tau options are "
                        f"options of the cores with a tau: {', '.join(TAU_KINDS)}")
    g.add_argument("--fixed-tau", action="store_true", help="do not train tau")
    g.add_argument("--tau-param", default="clamp", choices=("clamp", "softplus"),
                   help="clamp: tau' = max(tau, 1) (paper); softplus: tau' = 1 + softplus(raw)")
    g = parser.add_argument_group("optimization")
    g.add_argument("--optimizer", default="auto", choices=OPTIMIZERS,
                   help="auto (default: the paper's SGD with Nesterov for the leaky cores, Adam for the others, "
                        "at each kind's learning rate; docs/leaderboard.md), sgd or adam")
    g.add_argument("--lr", type=comma_floats, default=(None,),
                   help="learning rate; a comma list trains a population (default: the kind's for its optimizer, "
                        "e.g. 0.05 for the paper's SGD)")
    g.add_argument("--momentum", type=finite_float, default=PAPER.momentum, help=f"SGD momentum (default: {PAPER.momentum})")
    g.add_argument("--no-nesterov", action="store_true", help="plain momentum instead of Nesterov")
    g.add_argument("--clip-grad", type=finite_float, default=PAPER.clip_grad,
                   help=f"gradient norm clip (default: {PAPER.clip_grad})")
    g.add_argument("--batch-size", type=int, default=PAPER.batch_size, help=f"default: {PAPER.batch_size}")
    g.add_argument("--eval-every", type=int, default=100,
                   help=f"training steps between evaluations (default: 100; paper: {PAPER.eval_every})")
    g.add_argument("--eval-batches", type=int, default=10,
                   help=f"test batches per evaluation (default: 10; paper: {PAPER.eval_batches})")
    g = parser.add_argument_group("budget and run")
    g.add_argument("--max-steps", type=int, default=PAPER.max_steps, help=f"default: {PAPER.max_steps}")
    g.add_argument("--max-seconds", type=finite_float, default=180.0, help="wall-time budget (default: 180)")
    g.add_argument("--seed", type=int, default=0, help="seed of every random draw, >= 0 (default: 0)")
    g.add_argument("--seeds", type=comma_ints, default=None,
                   help="comma list of seeds: train one population, a member per seed (and per --task, "
                        "--curriculum, --lr value), side by side in this process")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda[:i] (default: auto)")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="torch CPU threads (default: the cores not busy with other jobs, by the 1-minute load)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config of a single run (the first value of each comma list)."""
    return TrainConfig(
        core_options=parse_core_options(args.core_option),
        task=args.task[0], curriculum=args.curriculum and args.curriculum[0], start_n=args.start_n,
        target_n=args.target_n, modulus=args.modulus,
        length_range=None if args.length_range is None else tuple(args.length_range),
        test_lengths=args.test_lengths, far_length=args.far_length or None, test_sequences=args.test_sequences,
        window=args.window, drop=args.drop, threshold=args.threshold, core=args.core,
        hidden_size=args.hidden_size, tau_init=tuple(args.tau_init), train_tau=not args.fixed_tau,
        tau_param=args.tau_param, p=args.p, optimizer=args.optimizer, lr=args.lr[0], momentum=args.momentum,
        nesterov=not args.no_nesterov, clip_grad=args.clip_grad, batch_size=args.batch_size,
        eval_every=args.eval_every, eval_batches=args.eval_batches, max_steps=args.max_steps,
        max_seconds=args.max_seconds, seed=args.seed, device=args.device,
    )


def default_run_name(config: TrainConfig) -> str:
    """The default run folder of a solo run, before :func:`~baselines.cli.args.default_run_dir` numbers it."""
    core = config.core.replace(":", ".")
    return f"runs/{config.task}-{config.curriculum}-{core}-h{config.hidden_size}-s{config.seed}"


def is_grid(args: argparse.Namespace) -> bool:
    """--seeds, or more than one value in --task, --curriculum or --lr: a grid trained as one population."""
    return args.seeds is not None or max(len(args.task), len(args.curriculum or ()), len(args.lr)) > 1


def is_population(args: argparse.Namespace) -> bool:
    """A grid (:func:`is_grid`), or ``--resume`` of a population's folder (no config.json of its own, member
    folders with one)."""
    return is_grid(args) or bool(args.resume and args.run_dir and saved_members(Path(args.run_dir)))


def saved_members(run_dir: Path) -> list[str]:
    """The member folders of the population in ``run_dir`` (those holding a config.json), or none if
    ``run_dir`` is a run folder itself."""
    if not run_dir.is_dir() or (run_dir / "config.json").exists():
        return []
    return sorted(p.name for p in run_dir.iterdir() if p.is_dir() and (p / "config.json").is_file())


def population_from_args(args: argparse.Namespace) -> tuple[Path, list[str], list[TrainConfig]]:
    """The population's folder, its members' folder names and configs (one per grid combination; on a
    ``--resume`` without grid options, the members in the folder at their own settings); a numbered default
    folder is announced (see :func:`~baselines.cli.args.default_run_dir`)."""
    base = config_from_args(args)
    if not is_grid(args):
        run_dir = Path(args.run_dir)
        names = saved_members(run_dir)
        return run_dir, names, [resumed_config(args, run_dir / name, base, RESUME_MAY_CHANGE) for name in names]
    members = grid(base, seeds=args.seeds or (), tasks=args.task, curricula=args.curriculum, lrs=args.lr)
    core = base.core.replace(":", ".")
    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        run_dir, note = default_run_dir(args, f"runs/population-{core}-h{base.hidden_size}")
        if note:
            print(note)
    return run_dir, [name for name, _ in members], [config for _, config in members]


def format_summary(summary: dict[str, Any]) -> str:
    if tasks.is_running_task(summary["task"]):
        return format_running_summary(summary)
    steps_to = ", ".join(f"N={n}: {s}" for n, s in summary["steps_to_n"].items()) or "none"
    return (
        f"largest N solved: {solved_text(summary['max_n'])}  ({summary['task']}, {summary['curriculum']}-head curriculum, "
        f"{summary['core']} core, {summary['hidden_size']} units)\n"
        f"steps: {summary['steps']}  time: {summary['seconds']:.0f} s  stopped because: {summary['stopped_because']}\n"
        f"steps to solve each N: {steps_to}"
    )


def format_running_summary(summary: dict[str, Any]) -> str:
    """A running task's summary: its length test (scaled accuracy per test length, mean, far length)."""
    head = (f"{summary['task']} ({summary['curriculum']} curriculum, {summary['core']} core, {summary['hidden_size']} "
            f"units)\nsteps: {summary['steps']}  time: {summary['seconds']:.0f} s  stopped because: "
            f"{summary['stopped_because']}")
    test = summary.get("length_test")
    if test is None:
        return head + "\nnot tested (the run did not finish)"
    low, high = test["train_lengths"]
    per_length = ", ".join(f"{length}: {value:.2f}" for length, value in test["scaled"].items())
    far = "" if test["far_length"] is None else f", at {test['far_length']}: {test['scaled_far']:.2f}"
    return (f"{head}\nscaled accuracy at the last labelled step (0 chance, 1 perfect; trained on lengths {low}-{high - 1}): "
            f"{per_length}\nmean over the test lengths: {test['scaled_mean']:.2f}{far}")


def _write_plots(run_dirs: list[Path], core_class: type[torch.nn.Module] | None) -> None:
    try:
        from baselines.plots import plot_run

        for run_dir in run_dirs:
            print(f"figures of {run_dir}: " + ", ".join(p.name for p in plot_run(run_dir, core_class=core_class)))
    except ImportError as error:
        print(f"no figures: {missing_dependency(error)}")


def cmd_train(args: argparse.Namespace) -> int:
    threads = set_threads(args.threads)
    if is_population(args):
        running = [task for task in args.task if tasks.is_running_task(task)]
        if running:
            print_error(f"--task {running[0]} trains one network at a time (a population reads each member's last "
                        "step only; a running task is scored at every step): drop --seeds and the comma lists")
            return 2
        return _train_population(args, threads)
    if args.backend is not None or args.population_size is not None:
        print_error("--backend and --population-size train a grid: give --seeds or comma lists in "
                    "--task, --curriculum or --lr")
        return 2
    try:
        backend_from_args(args)  # None here; refuses the Ray-only options, which a single run does not read
        config = config_from_args(args)
        run_dir, note = (args.run_dir, None) if args.run_dir else default_run_dir(args, default_run_name(config))
        if args.resume:  # the run's own settings, but for the options given
            config = resumed_config(args, run_dir, config, RESUME_MAY_CHANGE)
        trainer = make_trainer(config, run_dir, resume=args.resume, overwrite=args.overwrite)
    except (ValueError, TypeError) as error:  # bad options or an unusable run folder: no traceback
        print_error(error, args)
        return 2
    except WriteError as error:  # a full disk
        return print_write_error(error, f"`{resume_hint('train', run_dir)}` continues the run")
    resumed = trainer.resume_note and flag_names(trainer.resume_note, args.flags)
    for line in (note, resumed, None if args.quiet else threads, None if args.quiet else f"run folder: {run_dir}"):
        if line:
            print(line, flush=True)
    if trainer.finished is not None:  # a resume of a finished run: no training, no figures rewritten
        trainer.close()
        print(format_summary(trainer.finished))
        return 0
    bar = BudgetBar(config.max_steps, config.max_seconds, step=trainer.step, seconds=trainer.seconds,
                    disable=args.quiet)

    def on_eval(line: dict[str, Any]) -> None:
        ns = line["ns"]
        newest = line["accuracy"][str(ns[-1])]
        if config.running:
            low, high = line["lengths"]
            bar.update(line["step"], f"training lengths {low}-{high - 1}, accuracy at the last labelled step {newest:.3f}")
            return
        bar.update(line["step"], f"N solved: {solved_text(trainer.curriculum.solved)}, training N={ns[0]}..{ns[-1]} "
                                 f"acc(N={ns[-1]})={newest:.3f}")

    with stop_on_signals() as stop:
        try:
            summary = trainer.run(on_eval)
        except WriteError as error:
            bar.close()
            return print_write_error(error, f"`{resume_hint('train', run_dir)}` continues the run")
    bar.close()
    print(format_summary(summary))
    print(f"run folder: {run_dir}")
    if stop.signum is not None:
        print(f"stopped by {stop.name}: the state is saved; `{resume_hint('train', run_dir)}` continues the run")
        return stop.exit_code
    if not args.no_plots:
        _write_plots([Path(run_dir)], trainer.core_class)
    if "message" in summary:
        print_error(summary["message"])
        return 1
    return 0


def _train_population(args: argparse.Namespace, threads: str) -> int:
    try:
        run_dir, names, configs = population_from_args(args)
        folders = [run_dir / name for name in names]
        backend = backend_from_args(args)
        if backend is not None or args.population_size is not None:
            return _train_population_units(args, run_dir, names, configs, backend)
        population = Population(configs, folders, resume=args.resume, overwrite=args.overwrite)
    except (ValueError, TypeError, ImportError) as error:
        print_error(error, args)
        return 2
    except WriteError as error:  # a full disk while the members' folders were set up: none has trained yet
        return print_write_error(error, "the same command continues every member" if args.resume else
                                 "the same command with --overwrite sets the grid up again (no member has trained)")
    if all(member.finished is not None for member in population.members):  # a resume with nothing to train
        population.close()
        print(f"the population in {run_dir} is finished: each member used its budget or solved its target; "
              "nothing was trained or redrawn (a larger --max-steps or --max-seconds continues it)")
        return _report_members(args, run_dir, {name: m.finished for name, m in zip(names, population.members)},
                               None, plots=False)
    if not args.quiet:
        print(threads)
    print(f"population of {len(names)} in {run_dir}: {', '.join(names)}", flush=True)
    start = population.progress([])
    max_seconds = [c.max_seconds for c in configs]
    bar = BudgetBar(max(c.max_steps for c in configs), None if None in max_seconds else max(max_seconds),
                    step=start["step"], seconds=max(m.seconds for m in population.members), disable=args.quiet)

    def on_progress(progress: dict[str, Any]) -> None:
        solved = [m.curriculum.solved for m in population.members if m.curriculum.solved is not None]
        bar.update(progress["step"], f"running {progress['running']}/{progress['members']}, largest N solved: "
                                     f"{solved_text(max(solved, default=None))}, training N up to {progress['n_max']}")

    with stop_on_signals() as stop:
        try:
            summaries = population.run(on_progress=on_progress)
        except WriteError as error:
            bar.close()
            return print_write_error(error, f"`{resume_hint('train', run_dir)}` continues every member")
    bar.close()
    memory = population.progress([])
    estimate = memory["memory_per_member_estimate"]
    where = "GPU allocator peak" if population.members[0].device.type == "cuda" else "process peak resident memory"
    print(f"peak memory per member: {memory['peak_memory_per_member'] / 2**20:.0f} MiB ({where} / members)"
          + ("" if estimate is None else f"; estimated need {estimate / 2**20:.0f} MiB"))
    code = _report_members(args, run_dir, dict(zip(names, summaries)), population.members[0].core_class,
                           plots=stop.signum is None)
    if stop.signum is not None:
        print(f"stopped by {stop.name}: every member's state is saved; `{resume_hint('train', run_dir)}` continues "
              "the run")
        return stop.exit_code
    return code


def _train_population_units(args: argparse.Namespace, run_dir: Path, names: list[str], configs: list[TrainConfig],
                            backend: Any) -> int:
    """The grid as populations of --population-size, each a unit of work on --backend (a local process
    each by default, or a Ray task): one progress bar over members, a line per finished population."""
    from tqdm import tqdm

    from baselines.backends import BackendConfig, run_units
    from baselines.population import population_units

    backend = backend or BackendConfig()
    units = population_units(configs, [run_dir / name for name in names], resume=args.resume,
                             overwrite=args.overwrite, population_size=args.population_size)
    print(f"{len(names)} networks in {run_dir} as {len(units)} population(s) on {backend.backend}")
    bar = tqdm(total=len(names), unit="network", disable=args.quiet, dynamic_ncols=True)
    summaries: dict[str, dict[str, Any]] = {}

    def done(unit: Any, result: list[dict[str, Any]]) -> None:
        summaries.update({Path(folder).name: summary for folder, summary in zip(unit.folders, result)})
        bar.update(len(unit.folders))
        bar.write(f"done: {unit.name}")

    _, failures = run_units(units, backend, on_done=done, on_failure=lambda failure: bar.write(str(failure)),
                            storage=run_dir)
    bar.close()
    core = configs[0].core
    ordered = {name: summaries[name] for name in names if name in summaries}
    code = _report_members(args, run_dir, ordered, import_core_class(core) if is_import_path(core) else None)
    for failure in failures:
        print_error(failure)
    return 1 if failures else code


def _report_members(args: argparse.Namespace, run_dir: Path, summaries: dict[str, dict[str, Any]],
                    core_class: type[torch.nn.Module] | None, plots: bool = True) -> int:
    """Print a line per finished member, write their figures (unless ``plots`` is False); 1 if a member
    stopped on an error."""
    if summaries:
        width = max(len(name) for name in summaries)
        print(f"{'member':{width}s}  largest N  steps  stopped because")
        for name, summary in summaries.items():
            print(f"{name:{width}s}  {solved_text(summary['max_n']):>9s}  {summary['steps']:5d}  {summary['stopped_because']}")
    print(f"member folders in {run_dir}")
    if plots and not args.no_plots and summaries:
        _write_plots([run_dir / name for name in summaries], core_class)
    failed = [(name, s["message"]) for name, s in summaries.items() if "message" in s]
    for name, message in failed:
        print_error(f"{name}: {message}")
    return 1 if failed else 0


def cmd_plot(args: argparse.Namespace) -> int:
    from baselines.plots import plot_run

    for run_dir in args.run_dirs:
        try:
            paths = plot_run(run_dir)
        except (FileNotFoundError, ValueError) as error:
            print_error(error, args)
            return 2
        except ImportError as error:
            print_error(missing_dependency(error))
            return 2
        print(f"{run_dir}: " + ", ".join(p.name for p in paths))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``plot``."""
    train = sub.add_parser("train", help=COMMAND_HELP["train"],
                           description="Train a recurrent network on N-parity or N-DMS with a curriculum over N, "
                                       "or on a running task (--task running_parity, running_mod3, word_s3, "
                                       "mod_arithmetic, ...: short trials, then tested on long ones; "
                                       "docs/state_tracking.md). "
                                       "With no options: a multi-head leaky RNN on parity for 3 CPU minutes. "
                                       "--seeds and comma lists in --task, --curriculum and --lr train the grid as "
                                       "one population: the networks side by side in this process.")
    add_train_options(train)
    train.add_argument("--run-dir", default=None, help="run folder (default: runs/<task>-<curriculum>-...)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --run-dir from its last state, with the settings it was started with "
                            "(options given beside it must match them, but --max-steps, --max-seconds and --device, "
                            "which may change)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace a run folder made by memory-envs (never a folder holding other files)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-plots", action="store_true", help="do not write figures at the end")
    add_backend_options(train, "population")
    train.set_defaults(func=cmd_train)
    plot = sub.add_parser("plot", help=COMMAND_HELP["plot"])
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    plot.set_defaults(func=cmd_plot)
