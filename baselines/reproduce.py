"""Single-head vs multi-head curricula on parity and DMS, the paper's main comparison, in one call.

The two curricula of a task and core get the same budget, and the runs of each core train as one
population (:mod:`baselines.population`: the networks side by side in one process; the paper scale's 16
leaky RNNs, 2 tasks x 2 curricula x 4 seeds, on one device; the laptop and paper scales add GRUs and
LSTMs on parity, populations of their own). Results go to ``out_dir``: one run folder per (task,
curriculum), ``<core>-`` before it for a GRU or LSTM, ``-s<seed>`` after it with several seeds, ``reproduce.csv`` and ``reproduce.md`` (largest N, steps to
each N, mean tau at each solved N), the claims table of the paper's abstract (``claims.md``,
``claims.csv``, ``claims.json``: :mod:`baselines.claims`) and, with matplotlib, ``n_over_steps_<task>.png``
and the claims figures. Finished runs are kept; interrupted ones resume, so calling it again after a kill
continues where it stopped (a run stopped by its step budget trains on when the scale's budget grew),
and calling it on a finished reproduction rewrites the tables without training.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from baselines.backends import BackendConfig, UnitsFailed, run_units
from baselines.claims import write_claims
from baselines.population import SHARED, Population, population_units
from baselines.run_folder import make_output_folder, solved_text
from baselines.trainer import TrainConfig, atomic_write_text, finished_summary
from memory_envs.tasks import check_positive_int

SCALES: dict[str, TrainConfig] = {
    # A CPU in under half an hour: 4 runs x 15,000 steps (a step budget, so results do not depend on load).
    "quick": TrainConfig(hidden_size=128, eval_every=100, eval_batches=10, max_steps=15_000, device="cpu"),
    # About 30 minutes on 2 CPU cores (docs/reproduction.md: the measurements behind its sizes); RUNS gives each
    # run its budget in steps (parity 50,000: single-head parity past N = 15), and its GRU and LSTM runs their size.
    "laptop": TrainConfig(hidden_size=128, eval_every=100, eval_batches=10, target_n=32, max_steps=6_000,
                          device="cpu"),
    # The paper's configuration (docs/training.md) up to its cap of 100 heads (N = 2..101); meant for a GPU.
    "paper": TrainConfig(target_n=101),
    # Seconds, for tests.
    "smoke": TrainConfig(hidden_size=16, batch_size=32, eval_every=20, eval_batches=2, max_steps=60,
                         threshold=0.9, device="cpu"),
}
PAIRS = (("parity", "single"), ("parity", "multi"), ("dms", "single"), ("dms", "multi"))
"""The paper's main comparison: single- vs multi-head on both tasks."""
GATED = ("gru", "lstm")
"""The gated cores of the paper's last claim, trained single- vs multi-head on parity (KIND_OPTIMIZERS: Adam)."""
LAPTOP_GATED = {"hidden_size": 64, "max_steps": 3_000}
"""A GRU or LSTM step at 128 units costs about 8 leaky-RNN steps on the CPU; at 64 units about 2."""


def _runs(leaky: dict[str, dict], gated: dict | None) -> tuple[tuple[str, str, str, dict], ...]:
    """(core, task, curriculum, config changes) of a scale: the leaky RNN on ``PAIRS`` (``leaky``: the changes
    per task), then with ``gated`` each of ``GATED`` single- vs multi-head on parity."""
    runs = [("leaky", task, curriculum, leaky.get(task, {})) for task, curriculum in PAIRS]
    if gated is not None:
        runs += [(core, "parity", curriculum, gated) for core in GATED for curriculum in ("single", "multi")]
    return tuple(runs)


RUNS: dict[str, tuple[tuple[str, str, str, dict], ...]] = {
    "quick": _runs({}, None),
    "laptop": _runs({"parity": {"max_steps": 50_000}}, LAPTOP_GATED),
    "paper": _runs({}, {}),
    "smoke": _runs({}, {}),
}
"""Each scale's runs as (core, task, curriculum, the fields replaced in the scale's ``SCALES`` config)."""
SEEDS: dict[str, tuple[int, ...]] = {"quick": (0,), "laptop": (0,), "paper": (0, 1, 2, 3), "smoke": (0,)}
"""The seeds of each scale: the paper trained 4 networks per task and curriculum."""


TABLE_HEADER = ("| core | task | curriculum | seed | largest N | steps | seconds | steps to N=4 / 8 / 12 / 16 | "
                "mean tau at largest N |")
"""The header of ``reproduce.md``'s table (docs/reproduction.md shows one)."""


def run_name(core: str, task: str, curriculum: str, seed: int, seeds: int) -> str:
    """A run's folder: ``<task>-<curriculum>`` for the leaky RNN (``<core>-`` before it for another core), and
    ``-s<seed>`` after it when the scale trains several seeds."""
    name = f"{task}-{curriculum}" if core == "leaky" else f"{core}-{task}-{curriculum}"
    return name if seeds == 1 else f"{name}-s{seed}"


def scale_configs(scale: str, seeds: Sequence[int] | None = None, *, max_seconds: float | None = None,
                  device: str | None = None) -> dict[str, TrainConfig]:
    """The checked config of every run of ``scale`` (``RUNS`` x ``seeds``, default the scale's) by its folder
    name; ``max_seconds`` and ``device`` replace the scale's. ValueError naming the first bad option."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
    seeds = SEEDS[scale] if seeds is None else tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    overrides = {k: v for k, v in (("max_seconds", max_seconds), ("device", device)) if v is not None}
    runs = {}
    for core, task, curriculum, changes in RUNS[scale]:
        for seed in seeds:
            config = replace(SCALES[scale], core=core, task=task, curriculum=curriculum, seed=seed,
                             **{**changes, **overrides})
            runs[run_name(core, task, curriculum, seed, len(seeds))] = config.validate()
    return runs


def reproduce(scale: str, out_dir: str | os.PathLike, seeds: Sequence[int] | None = None,
              max_seconds: float | None = None, device: str | None = None, backend: BackendConfig | None = None,
              population_size: int | None = None, threads: int | None = None,
              log: Callable[[str], None] = lambda message: None,
              on_run: Callable[[str, dict], None] = lambda name, summary: None) -> list[dict]:
    """Train the runs of ``scale`` (``RUNS``) for every seed (default: the scale's, ``SEEDS``), the runs of
    each core as one population; returns their summaries (each with its ``seed``) and writes the tables,
    the figures and the claims table (:mod:`baselines.claims`).

    ``max_seconds`` replaces the scale's wall-time budget per run and ``device`` its device ("cpu" for
    quick, laptop and smoke, "auto" for paper); every config is checked before anything is written. ``log``
    gets one line per run (the command passes ``print``), ``on_run(name, summary)`` each finished run
    (those finished earlier first).

    With a ``backend`` (:mod:`baselines.backends`) or a ``population_size``, the networks of each core train
    as populations of at most ``population_size`` (default all), one unit of work each, in local processes
    or as Ray tasks (``out_dir`` must then be on storage every Ray node reaches), each with ``threads``
    torch threads (default: :mod:`baselines.threads`'); a population that fails does not stop the others:
    the tables are written from the runs that finished, then ``UnitsFailed`` names the failed folders.
    Without either, the populations train one after the other in this process.
    """
    runs = scale_configs(scale, seeds, max_seconds=max_seconds, device=device)
    seeds = sorted({config.seed for config in runs.values()})
    out = Path(out_dir)
    if backend is not None:
        backend.validate()
    if population_size is not None:
        check_positive_int(population_size, "population_size")
    if threads is not None:
        check_positive_int(threads, "threads")
    make_output_folder(out, "out")
    summaries = {}
    todo = []
    for name, config in runs.items():
        summary = finished_summary(out / name, config)  # None: to train, or to train on under a larger budget
        if summary is not None:
            summaries[name] = summary
            log(f"{name}: done earlier, largest N {solved_text(summary['max_n'])}")
            on_run(name, summary)
        else:
            todo.append(name)
    failures = []
    if todo:
        resume = {name: (out / name / "config.json").exists() for name in todo}
        groups: dict[tuple, list[str]] = {}  # one population per core and size (agents' batched recurrence)
        for name in todo:
            groups.setdefault(tuple(getattr(runs[name], field) for field in SHARED), []).append(name)

        def done(names: Sequence[str], member_summaries: Sequence[dict]) -> None:
            for name, summary in zip(names, member_summaries):
                summaries[name] = summary
                log(f"{name}: largest N {solved_text(summary['max_n'])} in {summary['steps']} steps, {summary['seconds']:.0f} s")
                on_run(name, summary)

        if backend is None and population_size is None:
            for names in groups.values():
                log(f"training {len(names)} networks as one population ({sum(resume[n] for n in names)} resuming): "
                    f"{', '.join(names)}")
                done(names, Population([runs[n] for n in names], [out / n for n in names],
                                       resume=[resume[n] for n in names]).run())
        else:
            backend = backend or BackendConfig()
            units = [unit for names in groups.values()
                     for unit in population_units([runs[n] for n in names], [out / n for n in names],
                                                  resume=[resume[n] for n in names],
                                                  population_size=population_size, threads=threads)]
            log(f"training {len(todo)} networks ({sum(resume.values())} resuming) as {len(units)} population(s) on "
                f"{backend.backend}: {', '.join(todo)}")
            _, failures = run_units(units, backend, on_failure=lambda failure: log(str(failure)),
                                    on_done=lambda unit, result: done([Path(f).name for f in unit.folders], result),
                                    storage=out)
    ordered = [{**summaries[name], "seed": config.seed} for name, config in runs.items() if name in summaries]
    write_tables(ordered, out)
    try:
        from baselines.plots import plot_n_over_steps, plot_run

        for task in ("parity", "dms"):
            names = [n for n, c in runs.items() if c.task == task and c.core == "leaky" and n in summaries]
            if not names:
                continue
            labels = [f"{runs[n].curriculum}-head" + (f" s{runs[n].seed}" if len(seeds) > 1 else "") for n in names]
            plot_n_over_steps([out / n for n in names], out / f"n_over_steps_{task}.png", labels=labels)
        for name in summaries:
            plot_run(out / name)
    except ImportError as error:
        log(f"no plots: {error}")
    if summaries:
        log(f"claims table: {', '.join(row['verdict'] for row in write_claims(out, log))} (claims.md)")
    if failures:
        raise UnitsFailed(failures)
    return ordered


def write_tables(summaries: list[dict], out: Path) -> None:
    """``reproduce.csv`` (one row per run and solved N) and ``reproduce.md`` (one row per run); each
    summary carries its run's ``seed``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["core", "task", "curriculum", "seed", "n", "steps_to_n", "tau_mean_at_n"])
    for s in summaries:
        for n, steps in s["steps_to_n"].items():
            tau = s["tau_mean_at_n"].get(n)
            writer.writerow([s["core"], s["task"], s["curriculum"], s["seed"], n, steps,
                             "" if tau is None else f"{tau:.3f}"])
    atomic_write_text(out / "reproduce.csv", buffer.getvalue())
    rows = [TABLE_HEADER, "|---" * TABLE_HEADER.count(" | ") + "|---|"]
    for s in summaries:
        steps_to = " / ".join(str(s["steps_to_n"].get(str(n), "-")) for n in (4, 8, 12, 16))
        tau = s["tau_mean_at_n"].get(str(s["max_n"]))
        rows.append(f"| {s['core']} | {s['task']} | {s['curriculum']} | {s['seed']} | {solved_text(s['max_n'])} | {s['steps']} | {s['seconds']:.0f} | "
                    f"{steps_to} | {'-' if tau is None else f'{tau:.2f}'} |")
    atomic_write_text(out / "reproduce.md", "\n".join(rows) + "\n")
