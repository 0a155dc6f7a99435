"""What every ``memory-envs`` subcommand shares: the commands' table, the parser class (:class:`Parser`: one-line
errors, the options given), argument types and small parsers, the error line, the extras of optional modules,
the run folder a resume continues and the hint that continues it.

The argument types raise ``argparse.ArgumentTypeError`` (the parser turns it into its one error line naming the
option) or, for ``parse_core_options``, a ValueError naming the option.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

COMMAND_MODULES = {"train": "train", "plot": "train", "reproduce": "experiments", "benchmark": "experiments",
                   "rl": "rl", "analyze": "analyze", "import-authors": "analyze"}
"""Every command and the module of :mod:`baselines.cli` that registers it (its ``add_parsers``): a command
imports only its own module, so ``memory-envs --help`` imports no torch."""
COMMAND_HELP = {
    "train": "train one network (or a population) with a curriculum",
    "plot": "write the figures of run folders (needs matplotlib)",
    "reproduce": "single- vs multi-head curricula on parity and DMS",
    "benchmark": "score card of recurrent cores across N, tasks and curricula (--rl: of RL policies on the presets)",
    "rl": "train RecurrentPPO with a tau core (needs the rl extra)",
    "analyze": "the paper's analyses of trained runs (timescales, ablation, perturbation, ...)",
    "import-authors": "one of the paper's authors' network folders -> a run folder to analyze",
}
"""Each command's line in ``memory-envs --help``."""
FIELD_ALIASES = {"env_id": "env", "core_options": "core_option", "cpus_per_unit": "cpus_per_run",
                 "gpus_per_unit": "gpus_per_run"}
"""Library config fields whose option has another name (``RLConfig.env_id`` is ``--env``, ``BackendConfig.cpus_per_unit``
``--cpus-per-run``)."""


def option_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{dest: its long option}`` for every option of ``parser`` (``max_seconds`` -> ``--max-seconds``), plus
    :data:`FIELD_ALIASES`: what :func:`flag_names` writes for the library's field names."""
    flags = {action.dest: max(action.option_strings, key=len) for action in parser._actions
             if action.option_strings and action.dest != "help"}
    flags.update({field: flags[dest] for field, dest in FIELD_ALIASES.items() if dest in flags})
    return flags


def flag_names(message: str, flags: dict[str, str]) -> str:
    """``message`` (a library error, which names config fields and keyword arguments) in the command's words:
    ``resume=True`` -> ``--resume``; a field with an underscore wherever it appears (``max_seconds must be``
    -> ``--max-seconds must be``); a one-word field only where it is the subject, a keyword or what to pass
    (``seed must``, ``seed=``, ``n is required``, ``core needs``, ``pass task``), so prose ("cannot resume") is
    left alone; a keyword given a name (``agents.load(path, core_class=YourCore)``) is Python for the reader,
    left too."""
    for field, flag in sorted(flags.items(), key=lambda item: -len(item[0])):
        message = re.sub(rf"(?<![\w./-]){field}=True\b", flag, message)
        tail = "" if "_" in field else r"(?=\s+must\b|\s+is required\b|\s+needs\b|=)"
        message = re.sub(rf"(?<![\w./-]){field}\b(?![-/]|=[A-Za-z_]){tail}", flag, message)
        message = re.sub(rf"(?<=\bpass ){field}\b(?![-/=])", flag, message)
    return message


def print_error(message: object, args: argparse.Namespace | None = None) -> None:
    """A user error, in the one form every command uses: ``memory-envs: error: MESSAGE`` on stderr. With
    the command's ``args``, the library's field names become the command's options (:func:`flag_names`)."""
    text = str(message)
    if args is not None and getattr(args, "flags", None):
        text = flag_names(text, args.flags)
    print(f"memory-envs: error: {text}", file=sys.stderr)


def print_write_error(error: OSError, again: str) -> int:
    """A write that failed (a full disk: :class:`agents.checkpoint.WriteError`, one line naming the path and the
    bytes) as the error line, with what to do: ``again``, the command that continues. Returns exit code 1."""
    print_error(f"{error}; free some space, then {again}")
    return 1


class Parser(argparse.ArgumentParser):
    """The parser class of every ``memory-envs`` command (subparsers take it too).

    It records the options given on the command line as ``args.given`` (their dests): a resume takes every
    other setting from its run folder (:func:`resumed_config`). Its errors (an invalid choice, an unknown
    option, a missing argument) are one line naming the option, pointing to the command's ``--help``,
    with no usage dump."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._given: set[str] = set()
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.given = frozenset(getattr(namespace, "given", frozenset()) | self._given)
        return namespace, extras

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # named here, where the subcommand is known, so the line points to its --help
            command = getattr(namespace, "command", None)
            self.exit_with(f"unrecognized arguments: {' '.join(extras)}",
                           f"{self.prog} {command}" if command else self.prog)
        return namespace

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        self._given.add(action.dest)  # argparse calls this for the arguments on the command line only
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit_with(message, self.prog)

    def exit_with(self, message: str, prog: str) -> None:
        """Print ``message`` as the one error line, with where the options are listed, and exit 2."""
        print_error(f"{message} (`{prog} --help` lists the options)")
        sys.exit(2)


EXTRAS = {"matplotlib": "plot", "scipy": "analysis", "sb3_contrib": "rl", "stable_baselines3": "rl",
          "tensorboard": "rl", "ray": "ray"}
"""The extra of pyproject.toml that installs each optional module."""


def require(module: str, what: str) -> None:
    """Import the optional ``module`` that ``what`` needs, or raise an ImportError naming the extra that
    installs it (:func:`missing_dependency`): checked before a command does any work."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs {module}, which is not installed", name=module) from None


def missing_dependency(error: ImportError) -> str:
    """The error line of an optional module that is not installed: what needs it and the install that brings
    it (``pip install -e ".[EXTRA]"`` in the clone; memory-envs is not on the package index)."""
    module = (error.name or "").partition(".")[0]
    if module not in EXTRAS or "pip install" in str(error):
        return str(error)
    return f'{error}: in the clone, pip install -e ".[{EXTRAS[module]}]"'


def resumed_config(args: argparse.Namespace, run_dir: str | Path, asked: Any, may_change: Sequence[str]) -> Any:
    """The config that ``--resume`` continues in ``run_dir``: the folder's own settings, with those of the
    options given on the command line (``args.given``) from ``asked``, the config the options make (a
    ``TrainConfig`` or ``RLConfig``, whose class reads the result); a given option outside ``may_change``
    must match the run's (:func:`baselines.run_folder.resume_settings`)."""
    from baselines.run_folder import RunFolderError, resume_settings

    aliases = {**FIELD_ALIASES, "train_tau": "fixed_tau", "nesterov": "no_nesterov"}
    fields = asked.to_json()
    given = {field for field in fields if aliases.get(field, field) in args.given}
    settings = resume_settings(Path(run_dir), fields, given, may_change)
    try:
        return type(asked).from_json(settings)
    except (TypeError, ValueError) as error:
        raise RunFolderError(f"cannot resume {run_dir}: {Path(run_dir) / 'config.json'}: {error}") from None


def resume_hint(command: str, run_dir: str | Path) -> str:
    """The command that continues the run in ``run_dir`` (its settings are read from the folder)."""
    return f"memory-envs {command} --resume --run-dir {shlex.quote(str(run_dir))}"


def default_run_dir(args: argparse.Namespace, default: str) -> tuple[Path, str | None]:
    """The run folder of a command given no ``--run-dir``: ``default`` itself with ``--resume`` or ``--overwrite``
    (they mean that folder) or when it is free; else the first free ``default-2``, ``default-3``, ... (free:
    missing or empty), so running a command twice starts a second run. Returns the folder and, when it is
    not ``default``, a line saying so. A folder whose setup a kill or a full disk cut short is free too
    (:func:`baselines.run_folder.unfinished`). Reads only."""
    from baselines.run_folder import unfinished  # imports torch: not at the top (`memory-envs --help`)

    base = Path(default)
    if args.resume or args.overwrite:
        return base, None
    folder, number = base, 1
    while folder.exists() and not (folder.is_dir() and (not any(folder.iterdir()) or unfinished(folder))):
        number += 1
        folder = base.with_name(f"{base.name}-{number}")
    if folder == base:
        return base, None
    return folder, (f"{base} holds an earlier run: this run writes {folder} (--resume or --overwrite act on "
                    f"{base}; --run-dir picks the folder)")


def positive_int(value: str) -> int:
    """An integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def finite_float(value: str) -> float:
    """A finite number: ``nan`` and ``inf`` are refused here, for every float option (its range is the
    config's check, which names the field)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
    return number


def comma_list(value: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``; an empty list is refused (an option given means at least one value)."""
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated values, got {value!r}")
    return items


def comma_tasks(value: str) -> tuple[str, ...]:
    """``--task`` / ``--tasks``: a comma list of task names (:func:`memory_envs.tasks.check_task_name`: parity, dms,
    running_parity, running_modK, mod_arithmetic, word_<group>)."""
    from memory_envs.tasks import check_task_name

    items = comma_list(value)
    for item in items:
        try:
            check_task_name(item)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return items


def comma_ints(value: str) -> tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)``."""
    try:
        return tuple(int(v) for v in comma_list(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def comma_floats(value: str) -> tuple[float, ...]:
    """``"0,0.5"`` -> ``(0.0, 0.5)``, each finite (:func:`finite_float`)."""
    try:
        return tuple(finite_float(v) for v in comma_list(value))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {value!r}") from None


def comma_choices(allowed: Sequence[str]):
    """An argument type: ``"a,b"`` -> ``("a", "b")``, each one of ``allowed``."""

    def parse(value: str) -> tuple[str, ...]:
        try:
            items = comma_list(value)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected one or more of {', '.join(allowed)}, got {value!r}") from None
        for item in items:
            if item not in allowed:
                raise argparse.ArgumentTypeError(f"invalid choice: {item!r} (choose from {', '.join(allowed)})")
        return items

    return parse


def bit_probability(value: str) -> float | str:
    """``--p``: a float, or ``uniform`` (the paper's per-trial p ~ U(0, 1))."""
    if value == "uniform":
        return value
    try:
        return finite_float(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number or 'uniform', got {value!r}") from None


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


def add_backend_options(parser: argparse.ArgumentParser, unit: str, storage: bool = False,
                        population_size: bool = True) -> None:
    """Where a grid's units of work run (:mod:`baselines.backends`); ``unit`` names one in the help.
    ``storage``: add ``--storage`` (commands whose run folders may live apart from their output);
    ``population_size``: add ``--population-size`` (commands that have none of their own)."""
    g = parser.add_argument_group("backend (where the work runs)")
    g.add_argument("--backend", default=None, choices=("local", "ray"),
                   help=f"local: a process per {unit} on this machine; ray: a Ray task per {unit} on the "
                        "cluster at --address (needs the ray extra) (default: benchmark local; train and "
                        "reproduce run in this process)")
    g.add_argument("--address", default=None,
                   help="Ray cluster address, e.g. ray://head:10001 or auto (default: start a local Ray)")
    g.add_argument("--cpus-per-run", type=finite_float, default=None,
                   help=f"CPUs Ray reserves per {unit}, > 0 (default: 1; only with --backend ray)")
    g.add_argument("--gpus-per-run", type=finite_float, default=None,
                   help=f"GPUs Ray reserves per {unit}, fractions allowed, e.g. 0.25 (default: 0; only with --backend ray)")
    g.add_argument("--max-retries", type=int, default=None,
                   help=f"Ray reruns of a {unit} whose worker or node died; it resumes from its folders (default: 2; "
                        "only with --backend ray)")
    if population_size:
        g.add_argument("--population-size", type=positive_int, default=None,
                       help="networks per population (default: all in one)")
    if storage:
        g.add_argument("--storage", default=None,
                       help="folder for the run folders that every Ray node reaches (a shared filesystem; "
                            "default: under the output folder)")


def backend_from_args(args: argparse.Namespace, workers: int = 1) -> Any:
    """The BackendConfig of ``add_backend_options``' options, or None when none was given (run here).

    The Ray-only options (``--address``, ``--storage``, ``--cpus-per-run``, ``--gpus-per-run``,
    ``--max-retries``) are refused without ``--backend ray``, where nothing would read them; with it,
    ``BackendConfig.validate`` checks their ranges."""
    from baselines.backends import BackendConfig

    ray_only = {"--address": ("address", args.address), "--storage": (None, getattr(args, "storage", None)),
                "--cpus-per-run": ("cpus_per_unit", args.cpus_per_run),
                "--gpus-per-run": ("gpus_per_unit", args.gpus_per_run),
                "--max-retries": ("max_retries", args.max_retries)}
    if args.backend != "ray":
        given = [flag for flag, (_, value) in ray_only.items() if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only with --backend ray")
    if args.backend is None:
        return None
    options = {field: value for field, value in ray_only.values() if field is not None and value is not None}
    return BackendConfig(backend=args.backend, workers=workers, **options).validate()
