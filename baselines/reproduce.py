"""Single-head vs multi-head curricula on parity and DMS, the paper's main comparison, in one call.

Every run gets the same budget. Results go to ``out_dir``: one run folder per (task, curriculum),
``reproduce.csv`` and ``reproduce.md`` (largest N, steps to each N, mean tau at each solved N)
and, with matplotlib, ``n_over_steps_<task>.png``. Finished runs are kept; an interrupted run
resumes, so calling it again after a kill continues where it stopped.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

from baselines.run_folder import read_json
from baselines.trainer import TrainConfig, Trainer, atomic_write_text

SCALES: dict[str, TrainConfig] = {
    # A CPU in under half an hour: 4 runs x 15,000 steps (a step budget, so results do not depend on load).
    "quick": TrainConfig(hidden_size=128, eval_every=100, eval_batches=10, max_steps=15_000, device="cpu"),
    # The paper's configuration (SPEC 4); meant for a GPU.
    "paper": TrainConfig(),
    # Seconds, for tests.
    "smoke": TrainConfig(hidden_size=16, batch_size=32, eval_every=20, eval_batches=2, max_steps=60,
                         threshold=0.9, device="cpu"),
}
RUNS = [("parity", "single"), ("parity", "multi"), ("dms", "single"), ("dms", "multi")]


def reproduce(scale: str, out_dir: str | os.PathLike, seed: int = 0, max_seconds: float | None = None,
              device: str | None = None, log: Callable[[str], None] = lambda message: None) -> list[dict]:
    """Run the four (task, curriculum) runs of ``scale``; returns their summaries and writes the table.

    ``max_seconds`` replaces the scale's wall-time budget per run and ``device`` its device ("cpu" for
    quick and smoke, "auto" for paper); every config is checked before anything is written. ``log``
    gets one line per run (the command passes ``print``).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
    overrides = {k: v for k, v in (("max_seconds", max_seconds), ("device", device)) if v is not None}
    configs = [replace(SCALES[scale], task=task, curriculum=curriculum, seed=seed, **overrides).validate()
               for task, curriculum in RUNS]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    for config in configs:
        task, curriculum = config.task, config.curriculum
        run_dir = out / f"{task}-{curriculum}"
        if (run_dir / "summary.json").exists():
            summary = read_json(run_dir / "summary.json")
            log(f"{run_dir.name}: done earlier, largest N {summary['max_n']}")
        else:
            resume = (run_dir / "config.json").exists()
            log(f"{run_dir.name}: {'resuming' if resume else 'training'} ...")
            summary = Trainer(config, run_dir, resume=resume).run()
            log(f"{run_dir.name}: largest N {summary['max_n']} in {summary['steps']} steps, {summary['seconds']:.0f} s")
        summaries.append(summary)
    write_tables(summaries, out)
    try:
        from baselines.plots import plot_n_over_steps, plot_run

        for task in ("parity", "dms"):
            dirs = [out / f"{task}-{c}" for c in ("single", "multi")]
            plot_n_over_steps(dirs, out / f"n_over_steps_{task}.png", labels=["single-head", "multi-head"])
        for task, curriculum in RUNS:
            plot_run(out / f"{task}-{curriculum}")
    except ImportError as error:
        log(f"no plots: {error}")
    return summaries


def write_tables(summaries: list[dict], out: Path) -> None:
    """``reproduce.csv`` (one row per run and solved N) and ``reproduce.md`` (one row per run)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["task", "curriculum", "n", "steps_to_n", "tau_mean_at_n"])
    for s in summaries:
        for n, steps in s["steps_to_n"].items():
            tau = s["tau_mean_at_n"].get(n)
            writer.writerow([s["task"], s["curriculum"], n, steps, "" if tau is None else f"{tau:.3f}"])
    atomic_write_text(out / "reproduce.csv", buffer.getvalue())
    rows = ["| task | curriculum | largest N | steps | seconds | steps to N=4 / 8 / 12 / 16 | mean tau at largest N |",
            "|---|---|---|---|---|---|---|"]
    for s in summaries:
        steps_to = " / ".join(str(s["steps_to_n"].get(str(n), "-")) for n in (4, 8, 12, 16))
        tau = s["tau_mean_at_n"].get(str(s["max_n"]))
        rows.append(f"| {s['task']} | {s['curriculum']} | {s['max_n']} | {s['steps']} | {s['seconds']:.0f} | "
                    f"{steps_to} | {'-' if tau is None else f'{tau:.2f}'} |")
    atomic_write_text(out / "reproduce.md", "\n".join(rows) + "\n")
