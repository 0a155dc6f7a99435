"""Figures of a training run (needs the ``plot`` extra: matplotlib).

``plot_run(run_dir)`` writes into the run folder:

* ``accuracy.png``: accuracy of every head over training steps;
* ``n_over_steps.png``: the newest active N over training steps;
* ``tau_per_checkpoint.png``: the distribution of the trained tau at every checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

import agents
from agents.protocol import is_import_path
from baselines import run_folder
from memory_envs.tasks import RUNNING_PARITY


def pyplot():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportError("plots need matplotlib: pip install 'memory-envs[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Lay out, write and close a figure; returns its path."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return Path(path)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The evaluation lines of a run's ``metrics.jsonl`` (a torn last line left out; a damaged one is an
    error naming the file and line)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no metrics.jsonl)")
    return run_folder.read_metrics(Path(run_dir))


def plot_n_over_steps(run_dirs: Sequence[str | os.PathLike], path: str | os.PathLike, labels: Sequence[str] | None = None
                      ) -> Path:
    """The newest active N against training steps, one line per run, on one axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, run_dir in enumerate(run_dirs):
        lines = read_metrics(run_dir)
        label = labels[i] if labels is not None else Path(run_dir).name
        ax.step([m["step"] for m in lines], [m["ns"][-1] for m in lines], where="post", label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("newest N in training")
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=120)


def plot_run(run_dir: str | os.PathLike, core_class: type[torch.nn.Module] | None = None) -> list[Path]:
    """Write the three figures of one run into its folder; returns their paths. A running-parity run (no N,
    no checkpoint per N) gets the accuracy figure and its length test's.

    The tau figure loads the checkpoints; for an external core (an import path in config.json) it
    needs that core's class, ``core_class``, and is left out without it (no module is imported).
    """
    plt = pyplot()
    run_dir = Path(run_dir)
    lines = read_metrics(run_dir)
    written = []
    running = run_folder.read_json(run_dir / "config.json").get("task") == RUNNING_PARITY

    fig, ax = plt.subplots(figsize=(7, 4))
    heads = sorted({int(n) for m in lines for n in m["accuracy"]})
    for n in heads:
        points = [(m["step"], m["accuracy"][str(n)]) for m in lines if str(n) in m["accuracy"]]
        ax.plot(*zip(*points), lw=1, label="running parity, last step" if running else f"N={n}")
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.4, 1.02)
    if len(heads) <= 12:
        ax.legend(fontsize=7, ncol=2)
    save_figure(fig, run_dir / "accuracy.png", dpi=120)
    written.append(run_dir / "accuracy.png")

    if running:
        from baselines.length_figure import plot_run_length_test

        return written + plot_run_length_test(run_dir)
    written.append(plot_n_over_steps([run_dir], run_dir / "n_over_steps.png"))

    checkpoints = sorted((run_dir / "checkpoints").glob("n*"))
    external = is_import_path(run_folder.read_json(run_dir / "config.json").get("core", ""))
    models = [] if external and core_class is None else [agents.load(c, core_class=core_class) for c in checkpoints]
    if models and all(isinstance(getattr(m.core, "tau", None), torch.Tensor) for m in models):
        taus = [m.tau.detach().cpu().numpy() for m in models]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.boxplot(taus, showfliers=True)
        ax.set_xticks(range(1, len(checkpoints) + 1), [c.name[1:].lstrip("0") for c in checkpoints])
        ax.set_xlabel("checkpoint (N solved)")
        ax.set_ylabel("trained tau per neuron")
        save_figure(fig, run_dir / "tau_per_checkpoint.png", dpi=120)
        written.append(run_dir / "tau_per_checkpoint.png")
    return written
