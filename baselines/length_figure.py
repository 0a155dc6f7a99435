"""Running parity's length-generalization figure (docs/state_tracking.md): scaled accuracy against test length.

One panel per kind, its positive and ``+signed`` variants on the same axes (a kind without the ``eigenvalues``
option has its one variant): each seed a thin line, the median over seeds a thick one with markers, the
lengths on a log axis with the far length at its place, the training lengths shaded, chance (0) dotted.
The score card writes it as ``length_generalization.png`` next to ``scorecard.md``, and ``plot_run`` into a
running-parity run folder. :func:`length_panels` builds the plotted numbers from the runs' length tests.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from baselines.benchmark import SIGNED, core_label
from baselines.run_folder import read_json
from memory_envs import tasks

FIGURE = "length_generalization.png"
"""The figure's file name, in a score card's folder and in a running-parity run folder."""

VARIANTS = ("positive", "signed")
"""A panel's variants: the kind as published (eigenvalues in [0, 1]) and ``KIND+signed`` ([-1, 1])."""

@dataclass(frozen=True)
class LengthCurve:
    """One run's length test: scaled accuracy at each test length (the far length last)."""

    seed: int
    lengths: tuple[int, ...]
    scaled: tuple[float, ...]
    train_lengths: tuple[int, int]
    """The training lengths [low, high), high excluded (``length_test``'s ``train_lengths``)."""
    far_length: int | None


@dataclass(frozen=True)
class Panel:
    """One kind: the curves of each variant present, and their medians over seeds."""

    kind: str
    curves: dict[str, list[LengthCurve]]

    def median(self, variant: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """The median over seeds at every length all of the variant's seeds were tested at."""
        curves = self.curves[variant]
        lengths = sorted(set.intersection(*(set(c.lengths) for c in curves)))
        values = [float(np.median([c.scaled[c.lengths.index(n)] for c in curves])) for n in lengths]
        return tuple(lengths), tuple(values)


def curve(seed: int, test: dict[str, Any]) -> LengthCurve:
    """A :func:`baselines.state_tracking.length_test` result as a curve, lengths in increasing order."""
    points = sorted((int(n), float(v)) for n, v in test["scaled"].items())
    low, high = test["train_lengths"]
    return LengthCurve(seed, tuple(n for n, _ in points), tuple(v for _, v in points), (int(low), int(high)),
                       test["far_length"])


def length_panels(results: Sequence[dict[str, Any]]) -> list[Panel]:
    """The figure's numbers from score-card results (``baselines.benchmark.collect``: "core", "task", "seed",
    "heldout"): the running-parity runs that were tested, one panel per kind in name order, a core
    ``KIND+signed`` in the "signed" variant of ``KIND``'s panel; seeds in increasing order."""
    by_kind: dict[str, dict[str, list[LengthCurve]]] = {}
    for r in results:
        if r["task"] != tasks.RUNNING_PARITY or r["heldout"] is None:
            continue
        signed = r["core"].endswith(SIGNED)
        kind = r["core"].removesuffix(SIGNED)
        by_kind.setdefault(kind, {}).setdefault(VARIANTS[signed], []).append(curve(r["seed"], r["heldout"]))
    return [Panel(kind, {v: sorted(variants[v], key=lambda c: c.seed) for v in VARIANTS if v in variants})
            for kind, variants in sorted(by_kind.items())]


COLORS = {"positive": "tab:blue", "signed": "tab:red"}
LABELS = {"positive": "positive, eigenvalues in [0, 1]", "signed": "+signed, eigenvalues in [-1, 1]"}


def plot_length_generalization(results: Sequence[dict[str, Any]], path: str | os.PathLike,
                               title: str | None = None) -> Path | None:
    """Write the figure of ``results``' running-parity runs to ``path`` (needs matplotlib); None, and no
    file, when none of them was tested."""
    from baselines.plots import pyplot

    panels = length_panels(results)
    if not panels:
        return None
    plt = pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(max(3.8 * columns, 4.6), 2.9 * rows + 0.6), squeeze=False)
    for i, panel in enumerate(panels):
        ax = axes.flat[i]
        draw_panel(ax, panel)
        if i + columns >= len(panels):  # no panel below
            ax.set_xlabel("test length (log scale)")
        if i % columns == 0:
            ax.set_ylabel("scaled accuracy\n(0 chance, 1 perfect)")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    present = {v for panel in panels for v in panel.curves}
    seeds = max(len(curves) for panel in panels for curves in panel.curves.values())
    low, high = next(iter(panels[0].curves.values()))[0].train_lengths
    handles = [Line2D([], [], color=COLORS[v], lw=2.2, marker="o", ms=4,
                      label=LABELS[v] + (": median over seeds" if seeds > 1 else "")) for v in VARIANTS if v in present]
    handles += [Line2D([], [], color="0.4", lw=0.7, label="one seed")] if seeds > 1 else []
    handles.append(Patch(color="0.85", label=f"training lengths {low}-{high - 1}"))
    ncol = min(len(handles), 2 * columns)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    legend_inches = 0.1 + 0.2 * math.ceil(len(handles) / ncol)
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def draw_panel(ax, panel: Panel) -> None:
    """One kind's axes: each variant's seeds thin, its median thick, the training range shaded."""
    every = [c for curves in panel.curves.values() for c in curves]
    low, high = every[0].train_lengths
    first = min(n for c in every for n in c.lengths)
    left = max(0.7 * first, 0.85 * low) if first > low else 0.85 * first  # the tested lengths get the width
    ax.axvspan(low, high - 1, color="0.85", lw=0)
    ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
    for variant, curves in panel.curves.items():
        for c in curves:
            ax.plot(c.lengths, c.scaled, color=COLORS[variant], lw=0.7, alpha=0.5)
        lengths, median = panel.median(variant)
        ax.plot(lengths, median, color=COLORS[variant], lw=2.2, marker="o", ms=3.5)
    ticks = sorted({n for n in (low, high - 1) if n >= left} | {n for c in every for n in c.lengths})
    major = log_spaced(ticks)
    ax.set_xscale("log")
    ax.set_xticks(major, [str(n) for n in major])
    ax.set_xticks([n for n in ticks if n not in major], minor=True)
    ax.tick_params(axis="x", which="minor", length=3, labelbottom=False)
    ax.set_xlim(left, max(ticks) * 1.25)
    ax.set_ylim(-0.15, 1.08)
    ax.set_title(panel.kind, fontsize=9)
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
    """The figure of one running-parity run folder (its ``summary.json``'s length test) into that folder;
    [] when the run was not tested (interrupted, or not finite)."""
    run_dir = Path(run_dir)
    summary, config = read_json(run_dir / "summary.json"), read_json(run_dir / "config.json")
    result = {"core": core_label(config), "task": config["task"],
              "seed": config["seed"], "heldout": summary.get("length_test")}
    path = plot_length_generalization([result], run_dir / FIGURE, title=run_dir.name)
    return [] if path is None else [path]


__all__ = ["FIGURE", "LengthCurve", "Panel", "length_panels", "plot_length_generalization", "plot_run_length_test"]
