"""Figures of a training run (needs the ``plot`` extra: matplotlib).

``plot_run(run_dir)`` writes into the run folder of ``memory-envs train`` or ``memory-envs rl``:

* ``accuracy.png``: accuracy of every head over training steps (RL: timesteps);
* ``n_over_steps.png``: the newest active N over training steps (RL: timesteps; not for an RL run at one fixed N);
* ``return.png``: an RL run's evaluation return and success rate over timesteps;
* ``tau_per_checkpoint.png``: the distribution of the trained tau at every checkpoint (supervised runs);
* a running task (running parity, a mod-K count, a group word problem, modular arithmetic) instead of the last
  two: ``length_generalization.png``, scaled accuracy against test length (:func:`plot_length_generalization`,
  which the score card draws for all its running tasks' runs).

Axes of N get whole-number ticks (:func:`integer_ticks`), and lines of many Ns a colour map with a colour
bar instead of a legend (:class:`NColours`).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import agents
from agents.checkpoint import atomic_write
from agents.protocol import is_import_path
from baselines import run_folder
from baselines.state_tracking import FIGURE, VARIANTS, Panel, length_panels
from baselines.train_config import core_label
from memory_envs.tasks import is_running_task


def pyplot():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportError('figures need matplotlib: in the clone, pip install -e ".[plot]"',
                          name="matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 110,
                rect: tuple[float, float, float, float] | None = None) -> Path:
    """Lay out (the axes within ``rect`` of the figure, if given), write (atomically, never through a symbolic
    link: :func:`agents.checkpoint.atomic_write`) and close a figure; returns its path."""
    fig.tight_layout(rect=rect)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=Path(path).suffix.lstrip(".") or None)
    pyplot().close(fig)
    atomic_write(Path(path), buffer.getvalue())
    return Path(path)


def integer_ticks(axis) -> None:
    """Whole-number ticks on ``axis`` (an axis of N or of a count; matplotlib would put some at 2.5)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


class NColours:
    """Line colours for the values of N in one axes: distinct colours and a legend for up to ``LEGEND``
    Ns; for more, where a legend would repeat colours and cover the lines, a colour map over N with a
    colour bar, one colour per whole N."""

    LEGEND = 8

    def __init__(self, ns: Sequence[int]) -> None:
        from matplotlib import colormaps
        from matplotlib.colors import BoundaryNorm

        self.ns = sorted(set(ns))
        self.legend = len(self.ns) <= self.LEGEND
        low, high = (self.ns[0], self.ns[-1]) if self.ns else (0, 0)
        self.cmap = colormaps["viridis"].resampled(high - low + 1)
        self.norm = BoundaryNorm(np.arange(low - 0.5, high + 1), self.cmap.N)

    def colour(self, n: int) -> Any:
        return f"C{self.ns.index(n) % 10}" if self.legend else self.cmap(self.norm(n))

    def label(self, n: int) -> str | None:
        """The legend entry of N (None with a colour bar)."""
        return f"N={n}" if self.legend else None

    def finish(self, fig, ax) -> None:
        """The legend, or the colour bar labelled N."""
        if not self.ns:
            return
        if self.legend:
            ax.legend(fontsize=7, ncol=2)
            return
        from matplotlib.cm import ScalarMappable

        bar = fig.colorbar(ScalarMappable(self.norm, self.cmap), ax=ax, label="N")
        integer_ticks(bar.ax.yaxis)


def progress_axis(lines: Sequence[dict]) -> tuple[str, str]:
    """The metrics key that counts training and its axis label: ``step`` for ``memory-envs train``,
    ``timesteps`` for ``memory-envs rl``."""
    return ("timesteps", "timesteps (RL)") if lines and "timesteps" in lines[0] else ("step", "training step")


PLOT_FIELDS = ("step", "timesteps", "ns", "accuracy", "mean_return", "success_rate")
"""What the figures read of each metrics line (the rest is left out as the file is read)."""


def read_metrics(run_dir: str | os.PathLike, fields: Sequence[str] | None = None) -> list[dict]:
    """The evaluation lines of a run's ``metrics.jsonl``, read one at a time (a torn last line left out; a
    damaged one is an error naming the file and line); with ``fields``, only those keys of each line."""
    path = Path(run_dir) / "metrics.jsonl"
    refusal = run_folder.not_a_folder(Path(run_dir))
    if refusal is not None or not path.exists():
        raise FileNotFoundError(refusal or f"{run_dir} is not a run folder (no metrics.jsonl)")
    return run_folder.read_metrics(Path(run_dir), fields)


def plot_n_over_steps(run_dirs: Sequence[str | os.PathLike], path: str | os.PathLike, labels: Sequence[str] | None = None
                      ) -> Path:
    """The newest active N against training steps (RL runs: timesteps), one line per run, on one axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, run_dir in enumerate(run_dirs):
        lines = read_metrics(run_dir, PLOT_FIELDS)
        key, xlabel = progress_axis(lines)
        label = labels[i] if labels is not None else Path(run_dir).name
        ax.step([m[key] for m in lines], [m["ns"][-1] for m in lines], where="post", label=label)
    ax.set_xlabel(xlabel if run_dirs else "training step")
    ax.set_ylabel("newest N in training")
    integer_ticks(ax.yaxis)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=120)


def plot_return(lines: Sequence[dict], path: str | os.PathLike) -> Path:
    """An RL run's evaluations against timesteps: the mean episode return and the share of episodes solved."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    steps = [m["timesteps"] for m in lines]
    left.plot(steps, [m["mean_return"] for m in lines], "o-", ms=3)
    left.set(xlabel="timesteps (RL)", ylabel="mean return per episode", title="evaluation return")
    right.plot(steps, [m["success_rate"] for m in lines], "o-", ms=3)
    right.set(xlabel="timesteps (RL)", ylabel="share of episodes solved", ylim=(-0.02, 1.02), title="success rate")
    return save_figure(fig, path, dpi=120)


def plot_run(run_dir: str | os.PathLike, core_class: type[torch.nn.Module] | None = None) -> list[Path]:
    """Write the three figures of one run into its folder; returns their paths. A running task's run (no N,
    no checkpoint per N) gets the accuracy figure and its length test's.

    Reads the run folder of ``memory-envs train`` or ``memory-envs rl`` (no checkpoints: no tau figure).
    The tau figure loads the checkpoints; for an external core (an import path in config.json) it
    needs that core's class, ``core_class``, and is left out without it (no module is imported).
    """
    plt = pyplot()
    run_dir = Path(run_dir)
    lines = read_metrics(run_dir, PLOT_FIELDS)
    written = []
    config = run_folder.read_json(run_dir / "config.json")
    running = is_running_task(config.get("task"))

    fig, ax = plt.subplots(figsize=(7, 4))
    key, xlabel = progress_axis(lines)
    colours = NColours([int(n) for m in lines for n in m["accuracy"]])
    for n in colours.ns:
        points = [(m[key], m["accuracy"][str(n)]) for m in lines if str(n) in m["accuracy"]]
        label = f"{config['task']}, last labelled step" if running else colours.label(n)
        ax.plot(*zip(*points), lw=1, color=colours.colour(n), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.0 if running else 0.4, 1.02)  # a running task's chance can lie below 0.4 (1/6 for word_s3)
    colours.finish(fig, ax)
    save_figure(fig, run_dir / "accuracy.png", dpi=120)
    written.append(run_dir / "accuracy.png")

    if running:
        return written + plot_run_length_test(run_dir)
    rl = run_folder.written_by(config) == "rl"
    if rl:
        written.append(plot_return(lines, run_dir / "return.png"))
    if not rl or config.get("curriculum") is not None:  # at one fixed N, the newest N is a flat line
        written.append(plot_n_over_steps([run_dir], run_dir / "n_over_steps.png"))

    checkpoints = sorted((run_dir / "checkpoints").glob("n*"))
    external = is_import_path(config.get("core", ""))
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


LENGTH_COLORS = {"positive": "tab:blue", "signed": "tab:red"}
LENGTH_LABELS = {"positive": "positive, eigenvalues in [0, 1]", "signed": "+signed, eigenvalues in [-1, 1]"}


def length_label(variant: str, panels: Sequence[Panel]) -> str:
    """The legend's name of ``variant``: eigenvalues are named only where the kinds drawn have that option
    (``agents.cores.EIGENVALUE_KINDS``); the LSTM or an own core is just the core as built."""
    if variant == "signed":
        return LENGTH_LABELS[variant]
    kinds = {panel.kind for panel in panels if variant in panel.curves}
    with_option = kinds & set(agents.cores.EIGENVALUE_KINDS)
    if with_option == kinds:
        return LENGTH_LABELS[variant]
    if not with_option:
        return "the core as built"
    return "as built (eigenvalues in [0, 1] for " + ", ".join(sorted(with_option)) + ")"


def plot_length_generalization(results: Sequence[dict[str, Any]], path: str | os.PathLike,
                               title: str | None = None) -> Path | None:
    """Write the figure of ``results``' running-task runs to ``path`` (needs matplotlib), a panel per kind (per
    kind and task when they hold several tasks); None, and no file, when none of them was tested."""
    panels = length_panels(results)
    if not panels:
        return None
    plt = pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(max(3.8 * columns, 4.6), 2.9 * rows + 0.6), squeeze=False)
    one_task = len({panel.task for panel in panels}) == 1
    for i, panel in enumerate(panels):
        ax = axes.flat[i]
        draw_panel(ax, panel, panel.title if one_task else f"{panel.title}: {panel.task}")
        if i + columns >= len(panels):  # no panel below
            ax.set_xlabel("test length (log scale)")
        if i % columns == 0:
            ax.set_ylabel("scaled accuracy\n(0 chance, 1 perfect)")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    present = {v for panel in panels for v in panel.curves}
    seeds = max(len(curves) for panel in panels for curves in panel.curves.values())
    low, high = next(iter(panels[0].curves.values()))[0].train_lengths
    handles = [Line2D([], [], color=LENGTH_COLORS[v], lw=2.2, marker="o", ms=4,
                      label=length_label(v, panels) + (": median over seeds" if seeds > 1 else ""))
               for v in VARIANTS if v in present]
    handles += [Line2D([], [], color="0.4", lw=0.7, label="one seed")] if seeds > 1 else []
    handles.append(Patch(color="0.85", label=f"training lengths {low}-{high - 1}"))
    ncol = min(len(handles), 2 * columns)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    legend_inches = 0.1 + 0.2 * math.ceil(len(handles) / ncol)
    return save_figure(fig, path, dpi=120, rect=(0, legend_inches / fig.get_figheight(), 1, 1))


def draw_panel(ax, panel: Panel, title: str) -> None:
    """One kind's axes, titled ``title``: each variant's seeds thin, its median thick, the training range shaded."""
    every = [c for curves in panel.curves.values() for c in curves]
    low, high = every[0].train_lengths
    first = min(n for c in every for n in c.lengths)
    left = max(0.7 * first, 0.85 * low) if first > low else 0.85 * first  # the tested lengths get the width
    ax.axvspan(low, high - 1, color="0.85", lw=0)
    ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
    for variant, curves in panel.curves.items():
        for c in curves:
            ax.plot(c.lengths, c.scaled, color=LENGTH_COLORS[variant], lw=0.7, alpha=0.5)
        lengths, median = panel.median(variant)
        ax.plot(lengths, median, color=LENGTH_COLORS[variant], lw=2.2, marker="o", ms=3.5)
    ticks = sorted({n for n in (low, high - 1) if n >= left} | {n for c in every for n in c.lengths})
    major = log_spaced(ticks)
    ax.set_xscale("log")
    ax.set_xticks(major, [str(n) for n in major])
    ax.set_xticks([n for n in ticks if n not in major], minor=True)
    ax.tick_params(axis="x", which="minor", length=3, labelbottom=False)
    ax.set_xlim(left, max(ticks) * 1.25)
    ax.set_ylim(-0.15, 1.08)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", color="0.92", lw=0.6)


def log_spaced(ticks: Sequence[int], ratio: float = 1.45) -> list[int]:
    """The ticks to label on a log axis: the smallest, the largest (the far length) and the powers of two
    between, thinned from the smallest up so that each is at least ``ratio`` times the one before (the
    largest displaces a labelled tick too close below it)."""
    labelled = [ticks[0]]
    for n in ticks[1:-1]:
        if n & (n - 1) == 0 and n >= ratio * labelled[-1]:
            labelled.append(n)
    if len(ticks) > 1:
        if ticks[-1] < ratio * labelled[-1] and len(labelled) > 1:
            labelled.pop()
        labelled.append(ticks[-1])
    return labelled


def plot_run_length_test(run_dir: str | os.PathLike) -> list[Path]:
    """The figure of one running task's run folder (its ``summary.json``'s length test) into that folder;
    [] when the run was not tested (interrupted, or not finite)."""
    run_dir = Path(run_dir)
    summary, config = run_folder.read_json(run_dir / "summary.json"), run_folder.read_json(run_dir / "config.json")
    result = {"core": core_label(config), "task": config["task"],
              "seed": config["seed"], "heldout": summary.get("length_test")}
    path = plot_length_generalization([result], run_dir / FIGURE, title=run_dir.name)
    return [] if path is None else [path]
