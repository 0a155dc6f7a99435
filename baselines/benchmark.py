"""Memory-architecture benchmark: how far each recurrent core's memory reaches, as a score card.

For every core x task x curriculum x seed, one supervised run with the same budget (training
steps, and a wall-time cap), then a held-out streaming test of every solved N. The runs of one core
train as populations (:mod:`baselines.population`: side by side in one process, ``population_size``
networks at a time, default all of them). Each population is one unit of work of
:mod:`baselines.backends`: by default ``workers`` local processes at a time (one torch thread each,
ending when the benchmark's process ends, even by SIGKILL: no orphan keeps training), or Ray tasks on a
cluster (``backend``); the wall-time cap counts each population's time. Each run keeps its own
run folder under ``out/runs``: a finished run (``heldout.json`` written) is never redone, an
unfinished one resumes from its last state, so re-running the same command after a kill
continues the benchmark.

A core is a kind (``agents.cores.KINDS``; ``all`` for every one), ``KIND+signed`` for a kind with
the ``eigenvalues`` option trained with ``eigenvalues="signed"``, or an external core's import path.

Depth (``layers``, default 1) is a knob of the zoo's kinds (``agents.cores.LAYER_KINDS``): each of them trains
at every depth of ``layers``; the cores without a ``layers`` option (the leaky RNN, GRU and LSTM, external cores)
train at 1 layer only, which ``layers`` must then hold. A row of the card is (core, task, curriculum, layers).

One optimizer protocol (``lrs``, with ``optimizer`` ``"adam"`` or ``"sgd"``: one family for every kind): every
run of a row trains at each learning rate of ``lrs`` and the card reports each row at the lr chosen without
looking at the test lengths (:func:`choose_lrs`: the best median over the sweep seeds of a validation score at
the training lengths, ties to the smaller lr). ``sweep_seeds`` (default: every seed) trains the sweep on those
seeds only and the other seeds at the chosen lr alone, in a second phase of units of work that starts when
the sweep has finished; a killed card resumes either phase.

Score card (``scorecard.csv`` / ``scorecard.md``), one row per core x task x curriculum: the
median and range over seeds of the largest N solved, the median steps to reach N = 8 / 16 / 32
(with how many seeds reached it), the held-out streaming accuracy of the largest solved N, and at
that N the median tau_net (with the neurons it is the median of, those with tau_net > 1, and the share of
fits that failed or hit their bound) and the architecture's own timescale
(``baselines.analysis.network_timescales`` on a short drive of ``timescale_steps`` steps);
``n_over_steps.png`` plots N reached against training steps, one panel per core (a colour per task x
curriculum, a line per seed).

A running task (state tracking, :mod:`baselines.state_tracking`: ``running_parity``, ``running_modK``,
``word_<group>``, ``mod_arithmetic``; :func:`memory_envs.tasks.is_running_task`) adds one row per core,
curriculum ``none``: every run trains on lengths 3-40 with the same budget and is then tested at lengths
40-256 and 1,000; its columns are the median over seeds of the scaled accuracy at the last labelled step,
averaged over the test lengths, and at the far length (the N columns are "-"); ``length_generalization.png``
(:func:`baselines.plots.plot_length_generalization`) draws the scaled accuracy against test length, per kind
and task. Their runs are scored at every step, which a population does not do (it reads each member's last
step), so they train one after another within their core's unit of work.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

from agents import cores as agents_cores
from agents.protocol import import_core_class, is_import_path
from baselines.backends import BackendConfig, Unit, UnitFailure, UnitsFailed, run_units
from baselines.population import Population
from baselines.predictions import CARD_TASKS, PREDICTION_NOTE, is_predicted, prediction_cell, verdict
from baselines.run_folder import make_output_folder, read_json, read_metrics, solved_text, write_csv
from baselines.state_tracking import NOT_TESTED
from baselines.train_config import (
    OPTIMIZERS, SIGNED, check_finite, check_seed, core_label, core_variant, depth_label,
)
from baselines.trainer import TrainConfig, atomic_write_text, make_trainer, resolve_device
from memory_envs import curriculum as curricula
from memory_envs import make_batch, sizes, tasks
from memory_envs.tasks import RUNNING_TEST_SEQUENCES

MILESTONES = (8, 16, 32)
SCORECARD_NOTES = """\
- Largest N: "none" where a seed solved no N; such a seed counts as 0 in the median.
- Held-out accuracy can lie well below the training threshold (0.98) for a solved N: training solves an N on the
  answer after the last bit of trials of N_max + 2 to 4 N_max + 1 steps, the held-out test scores the answer at
  every step (from step N on) of streams of `BenchmarkSpec.test_length` steps (400) with p = 0.5. A network that
  holds the answer only over the trial lengths it trained on, or only at a trial's end, scores lower there."""
"""What ``scorecard.md`` says below its table: how to read the cells that look wrong at first sight."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """What to compare and the budget of every run."""

    cores: tuple[str, ...] = ("leaky", "gru", "lstm")
    tasks: tuple[str, ...] = ("parity", "dms")
    curricula: tuple[str, ...] = ("single", "multi")
    seeds: tuple[int, ...] = (0, 1, 2)
    max_steps: int = 3000
    max_seconds: float | None = 600.0
    hidden_size: int = 64
    eval_every: int = 100
    eval_batches: int = 10
    test_length: int = 400
    test_batch: int = 64
    workers: int = 2
    device: str = "cpu"
    """Where every run trains and is tested: ``"cpu"``, ``"cuda[:i]"`` or ``"auto"`` (the workers share it)."""
    population_size: int | None = None
    """Runs of one core trained side by side in one process; None: all runs of a core."""
    timescale_steps: int = 4000
    """Steps of the random-bit drive (4 trials) behind the score card's timescales at the largest N."""
    optimizer: str = "auto"
    """``"auto"``: each kind's optimizer and learning rate (``KIND_OPTIMIZERS``: the paper's SGD lr 0.05 for
    the leaky RNN, Adam for the others); ``"sgd"`` or ``"adam"``: that optimizer for every core, at the
    kind's learning rate where it is the kind's optimizer, else the paper's for it (``PAPER_LR``), or at each
    of ``lrs``."""
    layers: tuple[int, ...] = (1,)
    """Depths of the zoo's kinds (``agents.cores.LAYER_KINDS``); the other cores train at 1 layer only."""
    lrs: tuple[float, ...] | None = None
    """Learning rates every run trains at (with ``optimizer`` ``"sgd"`` or ``"adam"``), the card reporting each
    row at the one :func:`choose_lrs` picks; None: no sweep, the optimizer's lr per kind."""
    sweep_seeds: tuple[int, ...] | None = None
    """The seeds trained at every lr of ``lrs``; the other seeds train at each row's chosen lr only. None: every
    seed sweeps."""
    test_sequences: int = RUNNING_TEST_SEQUENCES
    """Fresh sequences per test length of a running task's held-out test (its share of a run's time is about
    half at width 64, so a wide card may halve it; the standard error of an accuracy near 0.5 is then 0.022)."""

    def validate(self) -> "BenchmarkSpec":
        """Check every choice and the budget before any training starts (imports external cores)."""
        for name in ("cores", "tasks", "curricula", "seeds"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
            if len(set(values)) != len(values):  # two runs would share a run folder
                raise ValueError(f"{name} must not repeat, got {list(values)}")
        for seed in self.seeds:
            check_seed(seed)
        for task in self.tasks:
            tasks.check_task_name(task)
        for kind in self.curricula:
            if kind not in curricula.KINDS:
                raise ValueError(f"curriculum must be one of {curricula.KINDS}, got {kind!r}")
        for name in ("max_steps", "hidden_size", "eval_every", "eval_batches", "test_length", "test_batch",
                     "workers", "timescale_steps", "test_sequences"):
            tasks.check_positive_int(getattr(self, name), name)
        if self.max_seconds is not None:
            check_finite(self.max_seconds, "max_seconds", 0.0, strict=True)
        resolve_device(self.device)
        if self.population_size is not None:
            tasks.check_positive_int(self.population_size, "population_size")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        self.check_protocol()
        for core in self.cores:
            for layers in self.depths(core):
                self.config(core, self.tasks[0], self.curricula[0], self.seeds[0], layers).validate()
        self.check_duration()
        return self

    def check_protocol(self) -> None:
        """``layers``, ``lrs`` and ``sweep_seeds``: values, repeats, and the combinations the protocol defines."""
        for name in ("layers", "lrs", "sweep_seeds"):
            values = getattr(self, name)
            if values is not None and not values:
                raise ValueError(f"{name} must not be empty")
            if values is not None and len(set(values)) != len(values):  # two runs would share a run folder
                raise ValueError(f"{name} must not repeat, got {list(values)}")
        for layers in self.layers:
            tasks.check_positive_int(layers, "layers")
        flat = [core for core in self.cores if not layered(core)]
        if 1 not in self.layers and flat:
            raise ValueError(f"layers must hold 1 for the cores without a layers option {flat} (only the kinds "
                             f"{list(agents_cores.LAYER_KINDS)} have one), got {list(self.layers)}")
        if self.lrs is not None:
            for lr in self.lrs:
                check_finite(lr, "lrs", 0.0, strict=True)
            if self.optimizer == "auto":
                raise ValueError("lrs needs optimizer 'adam' or 'sgd' (one family for every kind); 'auto' gives each "
                                 "kind its own optimizer")
        if self.sweep_seeds is not None:
            if self.lrs is None:
                raise ValueError("sweep_seeds needs lrs (the learning rates those seeds sweep)")
            outside = [seed for seed in self.sweep_seeds if seed not in self.seeds]
            if outside:
                raise ValueError(f"sweep_seeds must be among the seeds {list(self.seeds)}, got {outside}")

    def check_duration(self) -> None:
        """Refuse a card whose runs would take more than a phase may (:func:`memory_envs.sizes.check_duration`):
        the sum over its runs of :meth:`TrainConfig.run_seconds`, an estimate below the real time."""
        per_row = len(self.swept_seeds()) * len(self.lrs or (None,)) + len(self.seeds) - len(self.swept_seeds())
        seconds = per_row * sum(self.config(core, task, curriculum, self.seeds[0], layers).run_seconds()
                                for core, task, curriculum, layers in self.rows())
        sizes.check_duration(seconds, f"the card ({self.run_count()} runs of max_steps={self.max_steps}, "
                                      f"max_seconds={self.max_seconds})")

    def depths(self, core: str) -> tuple[int, ...]:
        """The depths ``core`` trains at: every one of ``layers`` for a kind with the option, else 1."""
        return self.layers if layered(core) else (1,)

    def swept_seeds(self) -> tuple[int, ...]:
        """The seeds trained at every lr (every seed without ``sweep_seeds``)."""
        return self.seeds if self.sweep_seeds is None else self.sweep_seeds

    def rows(self) -> list[tuple[str, str, str, int]]:
        """Every row of the card: core x task x curriculum x depth, running tasks with their one curriculum."""
        return [(c, t, k, layers) for c in self.cores for t in self.tasks
                for k in ((RUNNING_CURRICULUM,) if tasks.is_running_task(t) else self.curricula) for layers in self.depths(c)]

    def config(self, core: str, task: str, curriculum: str, seed: int, layers: int = 1,
               lr: float | None = None) -> TrainConfig:
        """The run's TrainConfig; a running task takes its own curriculum, ``"none"``, whatever ``curriculum``.
        1 layer leaves ``layers`` out of ``core_options`` (and ``lr`` None out of the sweep), so the config, and
        with it the run folder, is that of a card without depths or sweep."""
        kind, options = core_variant(core)
        if layers != 1:
            options["layers"] = layers
        running = tasks.is_running_task(task)  # its test's size is a running field (TrainConfig refuses it elsewhere)
        return TrainConfig(task=task, curriculum=RUNNING_CURRICULUM if running else curriculum,
                           core=kind, core_options=options, hidden_size=self.hidden_size, optimizer=self.optimizer,
                           lr=lr, eval_every=self.eval_every, eval_batches=self.eval_batches,
                           max_steps=self.max_steps, max_seconds=self.max_seconds, seed=seed, device=self.device,
                           p=0.5 if task == "parity" else None,
                           **({"test_sequences": self.test_sequences} if running else {}))

    def runs(self) -> list[Run]:
        """The runs that depend on no choice (the first phase): every row at every lr of ``lrs`` (or without a
        sweep) and every seed of :meth:`swept_seeds` (without ``sweep_seeds``: every run of the card)."""
        return [Run(*row[:3], seed, row[3], lr) for row in self.rows() for lr in self.lrs or (None,)
                for seed in self.swept_seeds()]

    def chosen_runs(self, choices: dict[tuple[str, str, str, int], "LrChoice"]) -> list[Run]:
        """The second phase: the seeds outside :meth:`swept_seeds`, each row at its lr in ``choices`` (the rows
        without a choice yet are left out)."""
        rest = [seed for seed in self.seeds if seed not in self.swept_seeds()]
        return [Run(*row[:3], seed, row[3], choices[row].lr) for row in self.rows() if row in choices for seed in rest]

    def run_count(self) -> int:
        """How many runs the card trains, both phases."""
        rest = len(self.seeds) - len(self.swept_seeds())
        return len(self.rows()) * (len(self.swept_seeds()) * len(self.lrs or (None,)) + rest)


class Run(NamedTuple):
    """One run of the card: its row (core, task, curriculum, layers), seed and learning rate (None: no sweep)."""

    core: str
    task: str
    curriculum: str
    seed: int
    layers: int = 1
    lr: float | None = None


def layered(core: str) -> bool:
    """Whether ``core`` (a kind, ``KIND+signed`` or an import path) has the ``layers`` option."""
    return core.removesuffix(SIGNED) in agents_cores.LAYER_KINDS


RUNNING_CURRICULUM = "none"
"""The running tasks' curriculum on the card: fixed training lengths, the protocol's."""


def expand_cores(cores: Sequence[str]) -> tuple[str, ...]:
    """``all`` -> every built-in kind (in ``agents.cores.KINDS`` order); other names as given."""
    out: list[str] = []
    for core in cores:
        out += list(agents_cores.KINDS) if core == "all" else [core]
    return tuple(dict.fromkeys(out))


def run_name(core: str, task: str, curriculum: str, seed: int, layers: int = 1, lr: float | None = None) -> str:
    """A run's folder name: ``CORE-TASK-CURRICULUM[-L<layers>]-s<seed>[-lr<lr>]`` (the depth only beyond 1, the lr
    only in a sweep, as the shortest text that reads back as the same float: a card without them keeps its names)."""
    depth = "" if layers == 1 else f"-L{layers}"
    rate = "" if lr is None else f"-lr{float(lr)!r}"
    return f"{core.replace(':', '.')}-{task}-{curriculum}{depth}-s{seed}{rate}"


@torch.no_grad()
def heldout_accuracy(run_dir: Path, spec: BenchmarkSpec, seed: int) -> dict[str, float]:
    """Streaming accuracy of every solved N on fresh long sequences (p = 0.5), from its checkpoint, on
    ``spec.device`` (data and initial states drawn on the CPU from ``seed``, then moved)."""
    import agents

    summary = read_json(run_dir / "summary.json")
    config = read_json(run_dir / "config.json")
    if core_label(config) not in spec.cores:
        raise ValueError(f"{run_dir / 'config.json'}: core {core_label(config)!r} is not one of the benchmark's "
                         f"cores {spec.cores}")
    core_class = import_core_class(config["core"]) if is_import_path(config["core"]) else None  # named by the spec
    device = resolve_device(spec.device)
    rng = np.random.default_rng([seed, 2])
    generator = torch.Generator().manual_seed(seed)
    accuracy: dict[str, float] = {}
    for n in summary["steps_to_n"]:
        model = agents.load(run_dir / "checkpoints" / f"n{int(n):03d}", map_location=device, core_class=core_class)
        batch = make_batch(config["task"], [int(n)], spec.test_batch, rng=rng, p=0.5, length=spec.test_length,
                           streaming=True)
        x = torch.from_numpy(batch.inputs).to(device)
        state = model.core.initial_state(x.shape[1], generator=generator)
        logits = model(x, ns=[int(n)], every_step=True, state=state)  # checkpoint nNNN has a head for N
        predicted = logits[int(n)].argmax(dim=-1).cpu().numpy()
        mask = batch.streaming_mask[:, 0]
        accuracy[n] = float((predicted[mask] == batch.streaming_labels[mask, :, 0]).mean())
    return accuracy


def run_population(runs_root: str, spec: BenchmarkSpec, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One unit of work (a local worker process or a Ray task): train (or resume) the runs of one core and
    depth as a population in ``runs_root``, then their held-out tests."""
    torch.set_num_threads(1)
    run_dirs = [Path(runs_root) / run_name(*run) for run in runs]
    configs = [spec.config(*run) for run in runs]
    resume = [(d / "config.json").exists() for d in run_dirs]
    windowed = [k for k, config in enumerate(configs) if not config.running]
    if windowed:
        Population([configs[k] for k in windowed], [run_dirs[k] for k in windowed],
                   resume=[resume[k] for k in windowed]).run()
    for k, config in enumerate(configs):  # a running task: one network at a time (see the module doc)
        if config.running:
            make_trainer(config, run_dirs[k], resume=resume[k]).run()
    for config, run_dir in zip(configs, run_dirs):
        timescales = timescales_at_max_n(run_dir, spec, config.seed)
        atomic_write_text(run_dir / "timescales.json", json.dumps(timescales, indent=2))
        heldout = (read_json(run_dir / "summary.json")["length_test"] if config.running
                   else heldout_accuracy(run_dir, spec, config.seed))
        atomic_write_text(run_dir / "heldout.json", json.dumps(heldout, indent=2))
    return [collect(run_dir) for run_dir in run_dirs]


def timescales_at_max_n(run_dir: Path, spec: BenchmarkSpec, seed: int) -> dict[str, Any]:
    """tau_net (robust fit, median and mean over neurons with tau_net > 1) and the own timescale (median
    over units, with its measure) of the run's largest solved N, on a short drive; NaN if none solved."""
    import agents
    from baselines.analysis import network_timescales

    summary, config = read_json(run_dir / "summary.json"), read_json(run_dir / "config.json")
    empty = {"n": None, "tau_net_median": None, "tau_net_mean": None, "tau_net_neurons": None,
             "tau_net_share_failed_or_bound": None, "own_timescale_median": None, "own_timescale_measure": None}
    if not summary["steps_to_n"]:
        return empty
    n = max(int(k) for k in summary["steps_to_n"])
    core_class = import_core_class(config["core"]) if is_import_path(config["core"]) else None
    model = agents.load(run_dir / "checkpoints" / f"n{n:03d}", map_location=resolve_device(spec.device),
                        core_class=core_class)
    r = network_timescales(model, trials=4, steps=spec.timescale_steps, burn_in=200, seed=seed)
    own = r["own_timescale"]

    def finite(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    return {"n": n, "tau_net_median": finite(r["tau_net_median"]), "tau_net_mean": finite(r["tau_net_mean"]),
            "tau_net_neurons": r["neurons_tau_net_gt1"],
            "tau_net_share_failed_or_bound": finite(r["share_failed_or_bound"]),
            "own_timescale_median": finite(own["median"]) if own else None,
            "own_timescale_measure": own["measure"] if own else None}


def populations(spec: BenchmarkSpec, runs: Sequence[Run]) -> list[list[Run]]:
    """``runs`` grouped by core and depth (one architecture and hidden size each; the lrs of a sweep share a
    population, each member with its own optimizer), in chunks of ``population_size``."""
    by_core: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        by_core.setdefault((run.core, run.layers), []).append(run)
    groups = []
    for core_runs in by_core.values():
        size = spec.population_size or len(core_runs)
        groups += [core_runs[i : i + size] for i in range(0, len(core_runs), size)]
    return groups


def collect(run_dir: Path) -> dict[str, Any]:
    """The numbers of one finished run that the score card uses."""
    summary, config = (read_json(run_dir / name) for name in ("summary.json", "config.json"))
    # a running task's run that stopped non-finite was not tested: its heldout.json is null
    heldout = None if summary.get("stopped_because") in NOT_TESTED else read_json(run_dir / "heldout.json")
    timescales = read_json(run_dir / "timescales.json") if (run_dir / "timescales.json").exists() else {}
    return {"core": core_label(config), "task": config["task"], "curriculum": config["curriculum"],
            "layers": (config.get("core_options") or {}).get("layers", 1), "seed": config["seed"],
            "lr": config.get("lr"), "validation": validation_score(run_dir, config["task"], summary),
            "max_n": summary["max_n"], "steps": summary["steps"], "steps_to_n": summary["steps_to_n"],
            "heldout": heldout, "timescales": timescales, "run_dir": str(run_dir)}


def validation_score(run_dir: Path, task: str, summary: dict[str, Any]) -> float:
    """What the lr sweep ranks a run by, at its training lengths only (never its test): a running task's final
    accuracy on fresh sequences at the training lengths (the last evaluation of ``metrics.jsonl``; 0 if it never
    evaluated), a windowed task's largest N reached (0 for none)."""
    if not tasks.is_running_task(task):
        return float(summary["max_n"] or 0)
    if summary.get("stopped_because") in NOT_TESTED:  # non-finite: no final network to choose
        return 0.0
    lines = read_metrics(run_dir, fields=("accuracy",))
    return float(np.mean(list(lines[-1]["accuracy"].values()))) if lines else 0.0


@dataclass(frozen=True)
class LrChoice:
    """A row's learning rate, and the validation medians over the sweep seeds it was chosen from (per lr)."""

    lr: float
    medians: dict[float, float]


def choose_lrs(results: Sequence[dict[str, Any]], lrs: Sequence[float], sweep_seeds: Sequence[int]
               ) -> dict[tuple[str, str, str, int], LrChoice]:
    """Per row (core, task, curriculum, layers) whose sweep has finished (a result at every lr of ``lrs`` for
    every seed of ``sweep_seeds``): the lr with the best median over those seeds of the result's
    ``"validation"`` (:func:`validation_score`), the smaller lr on a tie. Nothing else of a result is read:
    the test lengths and held-out streams never choose."""
    scores: dict[tuple[str, str, str, int], dict[float, dict[int, float]]] = {}
    for r in results:
        if r["lr"] is not None and r["seed"] in sweep_seeds:
            row = (r["core"], r["task"], r["curriculum"], r["layers"])
            scores.setdefault(row, {}).setdefault(float(r["lr"]), {})[r["seed"]] = r["validation"]
    choices = {}
    for row, by_lr in scores.items():
        if all(len(by_lr.get(float(lr), {})) == len(sweep_seeds) for lr in lrs):
            medians = {float(lr): float(np.median(list(by_lr[float(lr)].values()))) for lr in sorted(lrs)}
            best = max(medians.values())
            choices[row] = LrChoice(min(lr for lr, median in medians.items() if median == best), medians)
    return choices


def at_chosen_lrs(results: Sequence[dict[str, Any]], choices: dict[tuple[str, str, str, int], LrChoice]
                  ) -> list[dict[str, Any]]:
    """The results the card reports: those without a sweep, and each swept row's runs at its chosen lr (rows
    whose sweep has not finished are left out), with the choice's medians as ``"lr_medians"``."""
    card = []
    for r in results:
        if r["lr"] is None:
            card.append(r)
            continue
        choice = choices.get((r["core"], r["task"], r["curriculum"], r["layers"]))
        if choice is not None and float(r["lr"]) == choice.lr:
            card.append({**r, "lr_medians": choice.medians})
    return card


def run_benchmark(spec: BenchmarkSpec, out: str | os.PathLike, backend: BackendConfig | None = None,
                  storage: str | os.PathLike | None = None, log: Callable[[str], None] = lambda message: None,
                  on_run: Callable[[dict[str, Any]], None] = lambda result: None) -> list[dict[str, Any]]:
    """Run every (unfinished) run of ``spec`` as populations and write the score card into ``out``.

    ``backend`` (default: ``spec.workers`` local processes) says where the populations run (one unit of
    work each, :mod:`baselines.backends`), in one phase, or with ``sweep_seeds`` two: the sweep's units, then,
    once it has finished, the other seeds' at each row's chosen lr (:func:`choose_lrs`). The run folders go to
    ``storage/runs`` (default ``out/runs``; on a Ray cluster of several machines, a folder every node
    reaches). ``log`` gets one line per finished run and per failed population, ``on_run`` each finished run's
    result (those finished earlier first). A population that fails does not stop the others: the score card is written from the runs that finished, then
    :class:`~baselines.backends.UnitsFailed` names the failed folders (rerun the command to retry them).
    """
    spec.validate()
    backend = (backend or BackendConfig(workers=spec.workers)).validate()
    out = Path(out)
    runs_root = (Path(storage) if storage is not None else out) / "runs"
    spec_path = out / "benchmark.json"
    if (out / "rl_benchmark.json").exists():
        raise ValueError(f"{out} holds an RL score card (rl_benchmark.json); use another --out for the supervised one")
    if spec_path.exists():
        saved = read_json(spec_path)
        mine = json.loads(json.dumps(spec.__dict__))
        budget = ("max_steps", "max_seconds", "hidden_size", "eval_every", "eval_batches", "test_length", "test_batch",
                  "optimizer", "timescale_steps", "test_sequences")
        saved.setdefault("test_sequences", RUNNING_TEST_SEQUENCES)  # a card written before the option
        differ = [k for k in budget if saved.get(k) != mine[k]]
        if differ:
            raise ValueError(f"{out} holds a benchmark with another budget ({differ}); use another --out")
    make_output_folder(out, "out")
    make_output_folder(runs_root, "out" if storage is None else "storage")
    atomic_write_text(spec_path, json.dumps(spec.__dict__, indent=2))
    results: list[dict[str, Any]] = []
    where = f"{backend.workers} local workers" if backend.backend == "local" else "Ray"

    def run_phase(runs: list[Run], what: str) -> list[UnitFailure]:
        """Collect the finished ``runs``, train the others as populations; their failures."""
        todo = []
        for run in runs:
            run_dir = runs_root / run_name(*run)
            if (run_dir / "heldout.json").exists():
                results.append(collect(run_dir))
                on_run(results[-1])
            else:
                todo.append(run)
        groups = populations(spec, todo)
        log(f"{len(runs)} {what}: {len(runs) - len(todo)} finished earlier, {len(todo)} to run as {len(groups)} "
            f"population(s) on {where}")
        units = [Unit(f"{depth_label(group[0].core, group[0].layers)} population of {len(group)}",
                      tuple(str(runs_root / run_name(*r)) for r in group), run_population,
                      (str(runs_root), spec, group)) for group in groups]

        def done(unit: Unit, group_results: list[dict[str, Any]]) -> None:
            for result in group_results:
                results.append(result)
                log(f"{Path(result['run_dir']).name}: {outcome(result)} in {result['steps']} steps")
                on_run(result)

        return run_units(units, backend, on_done=done, on_failure=lambda failure: log(str(failure)),
                         storage=runs_root)[1]

    flat = [core for core in spec.cores if spec.depths(core) != spec.layers]
    if flat:
        log(f"{', '.join(flat)}: no layers option, trained at 1 layer only")
    failures = run_phase(spec.runs(), "runs" if spec.sweep_seeds is None else "runs of the lr sweep")
    choices = choose_lrs(results, spec.lrs, spec.swept_seeds()) if spec.lrs is not None else {}
    second = spec.chosen_runs(choices)
    if second:
        failures += run_phase(second, "runs of the other seeds at the chosen lrs")
    card = at_chosen_lrs(results, choices)
    if card:  # every unit failed (a full disk): their errors, not an empty card's
        write_scorecard(card, out)
    if failures:
        raise UnitsFailed(failures)
    return results


def outcome(result: dict[str, Any]) -> str:
    """A finished run's headline: its largest N, or for running parity its mean scaled accuracy."""
    if not tasks.is_running_task(result["task"]):
        return f"largest N {result['max_n']}"
    test = result["heldout"]
    return "not tested" if test is None else f"scaled accuracy {test['scaled_mean']:.2f} (mean over the test lengths)"


def _median(values: Sequence[float], digits: int | None = None) -> str:
    if not values:
        return "-"
    median = float(np.median(values))
    return f"{median:g}" if digits is None else f"{median:.{digits}f}"


RUNNING_COLUMNS = ("scaled_accuracy_mean", "scaled_accuracy_far", "scaled_accuracy_mean_range", "theory")
"""The score card's running-task columns ("-" in the windowed tasks' rows): the scaled accuracy averaged over
the test lengths and at the far length (medians over seeds), the range of the first over the seeds, and what
theory predicts (:mod:`baselines.predictions`)."""


def running_row(row: dict[str, Any], runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``row`` (core, task, curriculum, seeds) completed for a running task: its length test's medians over the
    seeds that were tested, the N columns "-"."""
    tested = [r["heldout"] for r in runs if r["heldout"] is not None]
    row.update({"max_n_median": "-", "max_n_min": "-", "max_n_max": "-"})
    for n in MILESTONES:
        row.update({f"steps_to_{n}_median": "-", f"steps_to_{n}_reached": "-"})
    row.update({"heldout_at_max_n_median": "-", "tau_net_at_max_n": "-", "own_timescale_at_max_n": "-",
                "tau_net_neurons_at_max_n": "-", "tau_net_share_failed_or_bound_at_max_n": "-",
                "own_timescale_measure": "-",
                "scaled_accuracy_mean": _median([t["scaled_mean"] for t in tested], digits=2),
                "scaled_accuracy_mean_range": (f"[{min(t['scaled_mean'] for t in tested):.2f}, "
                                               f"{max(t['scaled_mean'] for t in tested):.2f}]") if tested else "-",
                "theory": prediction_cell(row["core"], row["task"], row["layers"]) if is_predicted(row["task"]) else "-",
                "scaled_accuracy_far": _median([t["scaled_far"] for t in tested if t["scaled_far"] is not None], digits=2)})
    return row


def scorecard_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per core x task x curriculum x layers, aggregated over seeds (a sweep's results at the chosen lr
    only, :func:`at_chosen_lrs`: its ``lr`` and ``lr_medians`` are the row's)."""
    groups: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["core"], r["task"], r["curriculum"], r.get("layers", 1)), []).append(r)
    rows = []
    for (core, task, curriculum, layers), runs in sorted(groups.items()):
        medians = runs[0].get("lr_medians") or {}
        row = {"core": core, "task": task, "curriculum": curriculum, "layers": layers, "seeds": len(runs),
               "lr": "-" if runs[0].get("lr") is None else f"{runs[0]['lr']:g}",
               "lr_validation": "; ".join(f"{lr:g}: {median:.4g}" for lr, median in medians.items()) or "-"}
        if tasks.is_running_task(task):
            rows.append(running_row(row, runs))
            continue
        max_ns = [r["max_n"] or 0 for r in runs]
        row.update({"max_n_median": float(np.median(max_ns)), "max_n_min": min(max_ns), "max_n_max": max(max_ns)})
        for n in MILESTONES:
            reached = [r["steps_to_n"][str(n)] for r in runs if str(n) in r["steps_to_n"]]
            row[f"steps_to_{n}_median"] = _median(reached)
            row[f"steps_to_{n}_reached"] = len(reached)
        heldout = [r["heldout"][str(r["max_n"])] for r in runs if r["max_n"] is not None]
        row["heldout_at_max_n_median"] = _median(heldout, digits=3)
        for key in ("tau_net_median", "own_timescale_median"):
            values = [r["timescales"][key] for r in runs if r["timescales"].get(key) is not None]
            row[f"{key.removesuffix('_median')}_at_max_n"] = _median(values, digits=2)
        for key, column, digits in (("tau_net_neurons", "tau_net_neurons", None),
                                    ("tau_net_share_failed_or_bound", "tau_net_share_failed_or_bound", 2)):
            values = [r["timescales"][key] for r in runs if r["timescales"].get(key) is not None]
            row[f"{column}_at_max_n"] = _median(values, digits=digits)
        measures = {r["timescales"].get("own_timescale_measure") for r in runs} - {None}
        row["own_timescale_measure"] = ",".join(sorted(measures)) or "-"
        rows.append({**row, **{column: "-" for column in RUNNING_COLUMNS}})
    return rows


def tau_net_cell(row: dict[str, Any]) -> str:
    """tau_net with what it rests on: "3.52 (2; 0%)" is the median over 2 neurons with tau_net > 1, no fit
    failed or at its bound (a value from few neurons, or mostly from fits at the bound, is no timescale)."""
    if row["tau_net_at_max_n"] == "-":
        return "-"
    share = row["tau_net_share_failed_or_bound_at_max_n"]
    share = "-" if share == "-" else f"{float(share):.0%}"
    return f"{row['tau_net_at_max_n']} ({row['tau_net_neurons_at_max_n']}; {share})"


def largest_n_cell(row: dict[str, Any]) -> str:
    """The largest N over seeds, "median [min, max]"; "none" for a seed (or a median) without a solved N, and for
    a row where no seed solved one."""
    if not row["max_n_max"]:
        return "none"
    median = "none" if not row["max_n_median"] else f"{row['max_n_median']:g}"
    return f"{median} [{solved_text(row['max_n_min'])}, {row['max_n_max']}]"


LR_NOTE = """\
- lr: each row's runs are those at the learning rate chosen without the test lengths: the best median over the
  sweep seeds of a validation score at the training lengths (running tasks: the accuracy of the last evaluation
  on fresh sequences at the training lengths; windowed tasks: the largest N reached), ties to the smaller lr;
  in brackets each lr's median."""
"""What ``scorecard.md`` says below a table of an lr sweep: the rule that chose each row's lr."""


RUNNING_NOTE = """\
- Running tasks: scaled accuracy = (accuracy - chance) / (1 - chance), chance = 1 / the task's classes, at the
  last labelled step of fresh sequences of each test length (0 chance, 1 perfect), median over the seeds; the
  runs train on shorter sequences (docs/state_tracking.md)."""
"""What ``scorecard.md`` says below a table with running-task rows."""


def write_scorecard(results: Sequence[dict[str, Any]], out: Path) -> None:
    """``scorecard.csv`` (every column) and ``scorecard.md``: the columns and notes of the tasks the card
    holds (N reached, held-out test and timescales for parity / DMS; scaled accuracy for the running tasks),
    none that would be "-" in every row; and the figures."""
    rows = scorecard_rows(results)
    write_csv(out / "scorecard.csv", rows)
    windowed = any(not tasks.is_running_task(r["task"]) for r in rows)
    running = any(tasks.is_running_task(r["task"]) for r in rows)
    deep = any(r["layers"] != 1 for r in rows)
    swept = any(r["lr"] != "-" for r in rows)
    test = f"{tasks.RUNNING_TEST_LENGTHS[0]}-{tasks.RUNNING_TEST_LENGTHS[-1]}"
    header = ["core", "task"] + ["layers"] * deep + ["lr (validation median per lr)"] * swept
    header += ["curriculum", "largest N: median [min, max]", "steps to N=8", "steps to N=16", "steps to N=32",
               "held-out accuracy at largest N", "tau_net at largest N (neurons > 1; failed or at bound)",
               "own timescale at largest N"] if windowed else []
    theory = any(r.get("theory", "-") != "-" for r in rows)
    if running:
        header += [f"running tasks: scaled accuracy at lengths {test}, median [min, max]",
                   f"at length {tasks.RUNNING_FAR_LENGTH}"] + ["theory"] * theory
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for r in rows:
        no_n = tasks.is_running_task(r["task"])
        cells = [r["core"], r["task"]] + [r["layers"]] * deep
        if swept:
            cells.append(r["lr"] if r["lr_validation"] == "-" else f"{r['lr']} ({r['lr_validation']})")
        if windowed:
            steps = ["-" if no_n else f"{r[f'steps_to_{n}_median']} ({r[f'steps_to_{n}_reached']}/{r['seeds']})"
                     for n in MILESTONES]
            own = ("-" if r["own_timescale_at_max_n"] == "-"
                   else f"{r['own_timescale_at_max_n']} ({r['own_timescale_measure']})")
            cells += [r["curriculum"], "-" if no_n else largest_n_cell(r), *steps, r["heldout_at_max_n_median"],
                      tau_net_cell(r), own]
        if running:
            mean = r["scaled_accuracy_mean"]
            cells += [mean if mean == "-" else f"{mean} {r['scaled_accuracy_mean_range']}", r["scaled_accuracy_far"]]
            cells += [r.get("theory", "-")] * theory
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    notes = [SCORECARD_NOTES] * windowed + [RUNNING_NOTE] * running + [LR_NOTE] * swept + [PREDICTION_NOTE] * theory
    atomic_write_text(out / "scorecard.md", "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"
                      + (prediction_table(rows) if theory else ""))
    try:
        plot_scorecard(results, out / "n_over_steps.png")
        from baselines.plots import plot_length_generalization
        from baselines.state_tracking import FIGURE

        plot_length_generalization(results, out / FIGURE)
    except ImportError:
        pass


def prediction_table(rows: Sequence[dict[str, Any]]) -> str:
    """The running rows with a prediction as one table of core (and depth) x task, each cell the median [min, max]
    scaled accuracy over the test lengths, the far length's median, the theory and its :func:`verdict`."""
    rows = [r for r in rows if r.get("theory", "-") != "-"]
    task_names = [t for t in CARD_TASKS if any(r["task"] == t for r in rows)]
    cells = {(r["core"], r["layers"], r["task"]): r for r in rows}
    lines = ["", "Scaled accuracy at the test lengths, median [min, max] over the seeds; at the far length; what theory "
             "says (baselines/predictions.py) and how the measurement stands to it:", "",
             "| core | layers | " + " | ".join(task_names) + " |", "|---|---" + "|---" * len(task_names) + "|"]
    for core, layers in dict.fromkeys((r["core"], r["layers"]) for r in rows):
        line = []
        for task in task_names:
            r = cells.get((core, layers, task))
            if r is None or r["scaled_accuracy_mean"] == "-":
                line.append("-")
                continue
            agreement = verdict(r["theory"], float(r["scaled_accuracy_mean"]))
            line.append(f"{r['scaled_accuracy_mean']} {r['scaled_accuracy_mean_range']}; {r['scaled_accuracy_far']}; "
                        f"{r['theory']}" + (f": {agreement}" if agreement else ""))
        lines.append(f"| {core} | {layers} | " + " | ".join(line) + " |")
    return "\n".join(lines) + "\n"


def plot_scorecard(results: Sequence[dict[str, Any]], path: Path) -> None:
    """N reached over training steps: small multiples, one axes per core and depth (in the order of ``results``),
    each with a colour per task x curriculum and a line per seed (needs matplotlib). On one shared axes
    the step lines of ten cores lie on top of each other and hide most of them."""
    from baselines.plots import integer_ticks, pyplot, save_figure

    plt = pyplot()
    results = [r for r in results if not tasks.is_running_task(r["task"])]  # no N to reach
    if not results:
        return
    cores = list(dict.fromkeys(depth_label(r["core"], r.get("layers", 1)) for r in results))
    panels = sorted({(r["task"], r["curriculum"]) for r in results})
    colours = {panel: f"C{i}" for i, panel in enumerate(panels)}
    columns = min(len(cores), 5)
    rows = math.ceil(len(cores) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.8 * columns + 0.4, 2.3 * rows + 0.6), sharex=True,
                             sharey=True, squeeze=False)
    for ax, core in zip(axes.flat, cores):
        for r in results:
            if depth_label(r["core"], r.get("layers", 1)) != core:
                continue
            solved = [(0, 0)] + [(s, int(n)) for n, s in r["steps_to_n"].items()] + [(r["steps"], r["max_n"] or 0)]
            ax.step(*zip(*solved), where="post", color=colours[(r["task"], r["curriculum"])], alpha=0.8, lw=1.2)
        ax.set_title(core, fontsize=9)
        integer_ticks(ax.yaxis)
    for ax in axes.flat[len(cores):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    for ax in axes[:, 0]:
        ax.set_ylabel("largest N solved")
    handles = [plt.Line2D([], [], color=colours[p], label=f"{p[0]}, {p[1]}-head") for p in panels]
    fig.legend(handles=handles, loc="upper center", ncol=len(panels), fontsize=8, frameon=False)
    save_figure(fig, path, rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))  # room for the legend on top


__all__ = ["BenchmarkSpec", "LrChoice", "RUNNING_COLUMNS", "Run", "at_chosen_lrs", "choose_lrs", "core_label",
           "core_variant", "depth_label", "expand_cores", "heldout_accuracy", "run_benchmark",
           "scorecard_rows", "timescales_at_max_n", "validation_score"]
