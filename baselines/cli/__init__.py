"""The ``memory-envs`` command: the only layer that parses arguments, prints, and exits.

    memory-envs train [options]          train one network with a curriculum (3 CPU minutes by default)
    memory-envs plot RUN_DIR [...]       figures of finished or running runs
    memory-envs reproduce --scale quick  single- vs multi-head on parity and DMS, with a table
    memory-envs benchmark --cores ...    score card of recurrent cores (built-in or your own)
    memory-envs benchmark --rl ...       RL score card: RecurrentPPO policies on the presets
    memory-envs rl --env NDMS-v0 --n 2   RecurrentPPO with our cores, optional curriculum
    memory-envs analyze RUN [RUN ...]    timescales, ablation, perturbation, forgetting, dimensionality, transitions
    memory-envs import-authors SRC OUT   the paper's authors' published networks as a run folder
    memory-envs --version                the installed version

One module per command family (:mod:`~baselines.cli.train`, :mod:`~baselines.cli.experiments`,
:mod:`~baselines.cli.rl`, :mod:`~baselines.cli.analyze`), each with an ``add_parsers(subparsers)``, imported
only when one of its commands runs (``args.COMMAND_MODULES``: ``memory-envs --help`` imports no torch);
shared argument types are in :mod:`~baselines.cli.args`. Each command maps its arguments to a library
config, calls the library, and prints. User errors (bad options, an unusable run folder, a missing
device) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from typing import Collection, Sequence

from baselines.cli.args import COMMAND_HELP, COMMAND_MODULES, Parser, option_flags, print_error


def package_version() -> str:
    """The installed memory-envs version (pyproject.toml's), or a note where the package is not installed."""
    try:
        return importlib.metadata.version("memory-envs")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e . in the clone)"


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``memory-envs`` parser. ``commands``: those that get their options (their modules are imported, and
    with them torch); every other command is listed with its help line only. Default: every command."""
    parser = Parser(prog="memory-envs", description="Memory tasks with a curriculum over N.")
    parser.add_argument("--version", action="version", version=f"memory-envs {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = {COMMAND_MODULES[c] for c in (COMMAND_MODULES if commands is None else commands) if c in COMMAND_MODULES}
    for command, help_line in COMMAND_HELP.items():  # in this order (a module's commands are neighbours)
        if command in sub.choices:
            continue
        if COMMAND_MODULES[command] in wanted:
            importlib.import_module(f"baselines.cli.{COMMAND_MODULES[command]}").add_parsers(sub)
        else:
            sub.add_parser(command, help=help_line)  # listed in --help, its options not loaded
    for command in sub.choices.values():  # errors name a command's own options (args.print_error)
        command.set_defaults(flags=option_flags(command))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in argv if not word.startswith("-")), None)  # the top level takes no values
    args = build_parser([command] if command else []).parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # commands without their own stop (benchmark, reproduce, analyze, plot): no traceback
        print_error("interrupted (Ctrl-C); every file written so far is complete: run the same command again to "
                    "continue (finished runs are kept)")
        return 130
