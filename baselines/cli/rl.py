"""``memory-envs rl``: the command-line face of :mod:`baselines.rl`."""

from __future__ import annotations

import argparse
from typing import Any

from agents.checkpoint import WriteError
from baselines.cli.args import (
    COMMAND_HELP, bit_probability, default_run_dir, finite_float, flag_names, missing_dependency, positive_int,
    print_error, print_write_error, require, resume_hint, resumed_config,
)
from baselines.cli.progress import BudgetBar
from baselines.interrupt import stop_on_signals
from baselines.rl import DEFAULT_N, STOCK_LSTM, TASK_OF_ENV, RLConfig, RLRun
from baselines.rl.config import RESUME_MAY_CHANGE
from baselines.run_folder import RunFolderError, solved_text
from baselines.threads import set_threads
from baselines.trainer import CORES
from memory_envs import WORD_PROBLEM_ID, groups, tasks
from memory_envs.envs import DEFAULT_GROUP

RUN_NAME = "runs/rl-{env}-n{n}{curriculum}-{core}-h{hidden_size}-s{seed}"
"""The default run folder (:func:`default_rl_run_name`); ``curriculum`` is ``-single``, ``-multi`` or empty."""
RUN_NAME_FIELDS = {"env": "<env>", "n": "<N>", "curriculum": "[-<curriculum>]", "core": "<core>",
                   "hidden_size": "<hidden-size>", "seed": "<seed>"}
""":data:`RUN_NAME`'s fields as ``--help`` names them."""


def add_parsers(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``rl`` subcommand (handler :func:`cmd_rl` via ``set_defaults(func=...)``)."""
    d = RLConfig()
    parser = subparsers.add_parser(
        "rl", help=COMMAND_HELP["rl"],
        description="Train sb3-contrib's RecurrentPPO with our recurrent cores on NParity-v0 / NDMS-v0, "
                    "optionally with a curriculum over N, or on a token task (WordProblem-v0, ModularArithmetic-v0 "
                    "and their presets: no N), and write a run folder "
                    "(config.json, metrics.jsonl, last/, model.zip, summary.json) that --resume continues.")
    g = parser.add_argument_group("environment and curriculum")
    g.add_argument("--env", default=d.env_id,
                   help=f"env id: {', '.join(TASK_OF_ENV)}; a preset runs at its own N, without a curriculum "
                        f"(default: {d.env_id})")
    g.add_argument("--group", default=None,
                   help=f"the group of {WORD_PROBLEM_ID}: {groups.GROUP_RULE} (default: {DEFAULT_GROUP})")
    g.add_argument("--n", type=int, default=None,
                   help=f"N, or the first N of the curriculum (default: a preset's own N, else {DEFAULT_N}; "
                        "a token task has none)")
    g.add_argument("--mode", default=None,
                   help="final (the paper) or every_step (default: final; every_step for a token task)")
    g.add_argument("--p", type=bit_probability, default=None, help="bit probability: a float or 'uniform' (default: the env's)")
    g.add_argument("--length-range", type=int, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="episode lengths in [LOW, HIGH) (default: the paper's for the largest N)")
    g.add_argument("--curriculum", default=None, help="single or multi (default: none, a fixed N)")
    g.add_argument("--n-max", type=int, default=None, help="last N of the curriculum (required with one)")
    g.add_argument("--threshold", type=finite_float, default=d.threshold,
                   help="advance / solved when the mean and newest head accuracy exceed this (default: 0.98)")
    g.add_argument("--window", type=int, default=d.window,
                   help="training episodes per N that the curriculum averages (default: 100)")
    g = parser.add_argument_group("policy")
    g.add_argument("--core", default=d.core,
                   help=f"recurrent core: {', '.join(CORES)}, or {STOCK_LSTM} for sb3-contrib's own MlpLstmPolicy "
                        f"(default: {d.core})")
    g.add_argument("--hidden-size", type=int, default=d.hidden_size, help=f"units (default: {d.hidden_size})")
    g.add_argument("--tau-init", type=finite_float, nargs=2, default=list(d.tau_init), metavar=("LOW", "HIGH"),
                   help="initial tau ~ U(LOW, HIGH) (default: 1 2)")
    g.add_argument("--fixed-tau", action="store_true", help="do not train tau")
    g = parser.add_argument_group("PPO")
    g.add_argument("--n-envs", type=int, default=d.n_envs, help=f"parallel envs (default: {d.n_envs})")
    g.add_argument("--vec-env", default=d.vec_env,
                   help="dummy (SB3's DummyVecEnv, one process) or subproc (SubprocVecEnv, one process per env; "
                        "the curriculum is still driven from the main process), or native (the native vector env, "
                        "memory_envs.make_sb3_vec_env; no curriculum) (default: dummy)")
    g.add_argument("--allow-oversubscribe", action="store_true",
                   help="with --vec-env subproc: start more worker processes than 4 per CPU core (refused by default; "
                        "their memory is still checked)")
    g.add_argument("--n-steps", type=int, default=d.n_steps, help=f"rollout steps per env (default: {d.n_steps})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default: {d.batch_size}")
    g.add_argument("--n-epochs", type=int, default=d.n_epochs, help=f"default: {d.n_epochs}")
    g.add_argument("--lr", type=finite_float, default=d.lr,
                   help=f"learning rate (default: {d.lr:g}, the RL score card's tuned value)")
    g.add_argument("--gamma", type=finite_float, default=d.gamma, help=f"discount (default: {d.gamma})")
    g.add_argument("--ent-coef", type=finite_float, default=d.ent_coef,
                   help=f"entropy bonus (default: {d.ent_coef:g}, the RL score card's tuned value)")
    g = parser.add_argument_group("budget, evaluation and run")
    g.add_argument("--total-timesteps", type=int, default=d.total_timesteps, help=f"default: {d.total_timesteps}")
    g.add_argument("--max-seconds", type=finite_float, default=None, help="wall-time budget (default: none)")
    g.add_argument("--eval-every", type=int, default=d.eval_every, help=f"timesteps between evaluations (default: {d.eval_every})")
    g.add_argument("--eval-episodes", type=int, default=d.eval_episodes, help=f"episodes per evaluation (default: {d.eval_episodes})")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of the envs, the policy and PPO (default: 0)")
    g.add_argument("--device", default=d.device, help="cpu, cuda[:i] or auto (default: cpu)")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="torch CPU threads (default: the cores not busy with other jobs, by the 1-minute load)")
    g.add_argument("--run-dir", default=None,
                   help=f"run folder (default: {RUN_NAME.format(**RUN_NAME_FIELDS)}, numbered -2, -3, ... when "
                        "it holds an earlier run)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in the run folder from its last saved state, with the settings it was started "
                        "with (options given beside it must match them, but --total-timesteps, --max-seconds, "
                        "--device and --vec-env, which may change); a finished run prints its summary")
    g.add_argument("--overwrite", action="store_true",
                   help="replace a run folder made by memory-envs (never a folder holding other files)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_rl)
    return parser


def rl_config_from_args(args: argparse.Namespace) -> RLConfig:
    return RLConfig(
        env_id=args.env, n=args.n, group=args.group, mode=args.mode, p=args.p,
        length_range=None if args.length_range is None else tuple(args.length_range),
        curriculum=args.curriculum, n_max=args.n_max, threshold=args.threshold, window=args.window,
        core=args.core, hidden_size=args.hidden_size, tau_init=tuple(args.tau_init), train_tau=not args.fixed_tau,
        n_envs=args.n_envs, vec_env=args.vec_env, allow_oversubscribe=args.allow_oversubscribe, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
        lr=args.lr, gamma=args.gamma, ent_coef=args.ent_coef, total_timesteps=args.total_timesteps,
        max_seconds=args.max_seconds, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
        seed=args.seed, device=args.device,
    )


def default_rl_run_name(config: RLConfig) -> str:
    """The default run folder, before :func:`~baselines.cli.args.default_run_dir` numbers it."""
    env = config.env_id if config.group is None else f"{config.env_id}-{config.group}"
    return RUN_NAME.format(env=env, n=config.n, curriculum=f"-{config.curriculum}" if config.curriculum else "",
                           core=config.core, hidden_size=config.hidden_size, seed=config.seed)


def format_rl_summary(summary: dict[str, Any]) -> str:
    ev = summary["final_eval"] or {}
    token_task = tasks.is_token_task(summary.get("task"))
    acc = ", ".join(f"{a:.3f}" if token_task else f"N={n}: {a:.3f}" for n, a in ev.get("accuracy", {}).items())
    if token_task:  # no N: solved or not
        solved = f"{summary['task']} {'' if summary['max_n'] is not None else 'not '}solved"
        what = summary["env_id"]
    elif summary["curriculum"] is None:  # a fixed N: solved or not
        ns = summary["active_ns"]
        solved = (f"N = {ns[0]} solved" if summary["max_n"] is not None
                  else f"N = {ns[0]} not solved (accuracy <= the threshold)")
        what = f"{summary['env_id']}, fixed N"
    else:
        solved = f"largest N solved: {solved_text(summary['max_n'])}"
        what = f"{summary['env_id']}, {summary['curriculum']} curriculum"
    return (f"{solved}  ({what}, {summary['core']} core, {summary['hidden_size']} units)\n"
            f"timesteps: {summary['timesteps']}  time: {summary['seconds']:.0f} s  "
            f"stopped because: {summary['stopped_because']}\n"
            f"final evaluation: mean return {ev.get('mean_return', float('nan')):.3f}, "
            f"success rate {ev.get('success_rate', float('nan')):.3f}, accuracy {acc}")


def cmd_rl(args: argparse.Namespace) -> int:
    threads = set_threads(args.threads)
    try:
        require("sb3_contrib", "the rl command")
    except ImportError as error:
        print_error(missing_dependency(error))
        return 2
    try:
        config = rl_config_from_args(args)
        run_dir, note = (args.run_dir, None) if args.run_dir else default_run_dir(args, default_rl_run_name(config))
        if args.resume:  # the run's own settings, but for the options given
            config = resumed_config(args, run_dir, config, RESUME_MAY_CHANGE)
        run = RLRun(config, run_dir, resume=args.resume, overwrite=args.overwrite)
    except (ValueError, TypeError) as error:  # bad options or an unusable run folder: no traceback
        print_error(error, args)
        return 2
    except WriteError as error:  # a full disk
        return print_write_error(error, f"`{resume_hint('rl', run_dir)}` continues the run")
    resumed = run.resume_note and flag_names(run.resume_note, args.flags)
    for line in (note, resumed, None if args.quiet else threads, None if args.quiet else f"run folder: {run_dir}"):
        if line:
            print(line, flush=True)
    state = run.state or {}
    bar = BudgetBar(config.total_timesteps, config.max_seconds, step=state.get("timesteps", 0),
                    seconds=state.get("seconds", 0.0), unit="timesteps", disable=args.quiet)

    def on_eval(line: dict[str, Any]) -> None:
        ns = line["ns"]
        newest = line["accuracy"][str(ns[-1])]
        solved = "" if run.curriculum is None else f"N solved: {run.curriculum.solved or 'none yet'}, "
        accuracy = f"acc={newest:.3f}" if config.token_task else f"N={ns[0]}..{ns[-1]} acc(N={ns[-1]})={newest:.3f}"
        bar.update(line["timesteps"], f"{solved}{accuracy} success={line['success_rate']:.2f}")

    try:
        with stop_on_signals() as stop:
            summary = run.run(on_progress=bar.update, on_eval=on_eval)
    except WriteError as error:  # a full disk
        bar.close()
        return print_write_error(error, f"`{resume_hint('rl', run_dir)}` continues the run")
    except RunFolderError as error:  # a saved policy that does not load (damaged, or of an older version)
        bar.close()
        print_error(error, args)
        return 2
    bar.close()
    print(format_rl_summary(summary))
    print(f"run folder: {run_dir}")
    if stop.signum is not None:
        print(f"stopped by {stop.name}: the state is saved; `{resume_hint('rl', run_dir)}` continues the run")
        return stop.exit_code
    if "message" in summary:
        print_error(summary["message"])
        return 1
    return 0
