"""Single-head vs multi-head curricula on parity and DMS, the paper's main comparison, in one call.

Every run gets the same budget, and all runs train as one population (:mod:`baselines.population`:
the networks side by side in one process; the paper scale's 16 networks, 2 tasks x 2 curricula x 4
seeds, on one device). Results go to ``out_dir``: one run folder per (task, curriculum) with one seed,
per (task, curriculum, seed) with several, ``reproduce.csv`` and ``reproduce.md`` (largest N, steps to
each N, mean tau at each solved N) and, with matplotlib, ``n_over_steps_<task>.png``. Finished runs are
kept; interrupted ones resume, so calling it again after a kill continues where it stopped.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from baselines.backends import BackendConfig, UnitsFailed, run_units
from baselines.population import Population, population_units
from baselines.run_folder import make_output_folder, read_json, solved_text
from baselines.trainer import TrainConfig, atomic_write_text
from memory_envs.tasks import check_positive_int

SCALES: dict[str, TrainConfig] = {
    # A CPU in under half an hour: 4 runs x 15,000 steps (a step budget, so results do not depend on load).
    "quick": TrainConfig(hidden_size=128, eval_every=100, eval_batches=10, max_steps=15_000, device="cpu"),
    # The paper's configuration (docs/training.md); meant for a GPU.
    "paper": TrainConfig(),
    # Seconds, for tests.
    "smoke": TrainConfig(hidden_size=16, batch_size=32, eval_every=20, eval_batches=2, max_steps=60,
                         threshold=0.9, device="cpu"),
}
RUNS = [("parity", "single"), ("parity", "multi"), ("dms", "single"), ("dms", "multi")]
SEEDS: dict[str, tuple[int, ...]] = {"quick": (0,), "paper": (0, 1, 2, 3), "smoke": (0,)}
"""The seeds of each scale: the paper trained 4 networks per task and curriculum."""


TABLE_HEADER = ("| task | curriculum | seed | largest N | steps | seconds | steps to N=4 / 8 / 12 / 16 | "
                "mean tau at largest N |")
"""The header of ``reproduce.md``'s table (docs/reproduction.md shows one)."""


def reproduce(scale: str, out_dir: str | os.PathLike, seeds: Sequence[int] | None = None,
              max_seconds: float | None = None, device: str | None = None, backend: BackendConfig | None = None,
              population_size: int | None = None, log: Callable[[str], None] = lambda message: None,
              on_run: Callable[[str, dict], None] = lambda name, summary: None) -> list[dict]:
    """Train the (task, curriculum) runs of ``scale`` for every seed (default: the scale's, ``SEEDS``) as one
    population; returns their summaries (each with its ``seed``) and writes the tables and figures.

    ``max_seconds`` replaces the scale's wall-time budget per run and ``device`` its device ("cpu" for
    quick and smoke, "auto" for paper); every config is checked before anything is written. ``log``
    gets one line per run (the command passes ``print``), ``on_run(name, summary)`` each finished run
    (those finished earlier first).

    With a ``backend`` (:mod:`baselines.backends`) or a ``population_size``, the networks train as
    populations of at most ``population_size`` (default all), one unit of work each, in local processes
    or as Ray tasks (``out_dir`` must then be on storage every Ray node reaches); a population that
    fails does not stop the others: the tables are written from the runs that finished, then
    ``UnitsFailed`` names the failed folders. Without either, the population trains in this process.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
    seeds = SEEDS[scale] if seeds is None else tuple(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    overrides = {k: v for k, v in (("max_seconds", max_seconds), ("device", device)) if v is not None}
    out = Path(out_dir)
    runs = {}
    for task, curriculum in RUNS:
        for seed in seeds:
            config = replace(SCALES[scale], task=task, curriculum=curriculum, seed=seed, **overrides)
            name = f"{task}-{curriculum}" if len(seeds) == 1 else f"{task}-{curriculum}-s{seed}"
            runs[name] = config.validate()
    if backend is not None:
        backend.validate()
    if population_size is not None:
        check_positive_int(population_size, "population_size")
    make_output_folder(out, "out")
    summaries = {}
    todo = []
    for name in runs:
        if (out / name / "summary.json").exists():
            summaries[name] = read_json(out / name / "summary.json")
            log(f"{name}: done earlier, largest N {solved_text(summaries[name]['max_n'])}")
            on_run(name, summaries[name])
        else:
            todo.append(name)
    failures = []
    if todo:
        resume = [(out / name / "config.json").exists() for name in todo]
        configs, folders = [runs[name] for name in todo], [out / name for name in todo]

        def done(names: Sequence[str], member_summaries: Sequence[dict]) -> None:
            for name, summary in zip(names, member_summaries):
                summaries[name] = summary
                log(f"{name}: largest N {solved_text(summary['max_n'])} in {summary['steps']} steps, {summary['seconds']:.0f} s")
                on_run(name, summary)

        if backend is None and population_size is None:
            log(f"training {len(todo)} networks as one population ({sum(resume)} resuming): {', '.join(todo)}")
            done(todo, Population(configs, folders, resume=resume).run())
        else:
            backend = backend or BackendConfig()
            units = population_units(configs, folders, resume=resume, population_size=population_size)
            log(f"training {len(todo)} networks ({sum(resume)} resuming) as {len(units)} population(s) on "
                f"{backend.backend}: {', '.join(todo)}")
            _, failures = run_units(units, backend, on_failure=lambda failure: log(str(failure)),
                                    on_done=lambda unit, result: done([Path(f).name for f in unit.folders], result),
                                    storage=out)
    ordered = [{**summaries[name], "seed": config.seed} for name, config in runs.items() if name in summaries]
    write_tables(ordered, out)
    try:
        from baselines.plots import plot_n_over_steps, plot_run

        for task in ("parity", "dms"):
            names = [n for n, c in runs.items() if c.task == task and n in summaries]
            if not names:
                continue
            labels = [f"{runs[n].curriculum}-head" + (f" s{runs[n].seed}" if len(seeds) > 1 else "") for n in names]
            plot_n_over_steps([out / n for n in names], out / f"n_over_steps_{task}.png", labels=labels)
        for name in summaries:
            plot_run(out / name)
    except ImportError as error:
        log(f"no plots: {error}")
    if failures:
        raise UnitsFailed(failures)
    return ordered


def write_tables(summaries: list[dict], out: Path) -> None:
    """``reproduce.csv`` (one row per run and solved N) and ``reproduce.md`` (one row per run); each
    summary carries its run's ``seed``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["task", "curriculum", "seed", "n", "steps_to_n", "tau_mean_at_n"])
    for s in summaries:
        for n, steps in s["steps_to_n"].items():
            tau = s["tau_mean_at_n"].get(n)
            writer.writerow([s["task"], s["curriculum"], s["seed"], n, steps, "" if tau is None else f"{tau:.3f}"])
    atomic_write_text(out / "reproduce.csv", buffer.getvalue())
    rows = [TABLE_HEADER, "|---" * TABLE_HEADER.count(" | ") + "|---|"]
    for s in summaries:
        steps_to = " / ".join(str(s["steps_to_n"].get(str(n), "-")) for n in (4, 8, 12, 16))
        tau = s["tau_mean_at_n"].get(str(s["max_n"]))
        rows.append(f"| {s['task']} | {s['curriculum']} | {s['seed']} | {solved_text(s['max_n'])} | {s['steps']} | {s['seconds']:.0f} | "
                    f"{steps_to} | {'-' if tau is None else f'{tau:.2f}'} |")
    atomic_write_text(out / "reproduce.md", "\n".join(rows) + "\n")
