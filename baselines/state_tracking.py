"""The running tasks' length-generalization protocol and its test (docs/state_tracking.md).

The protocol of Deletang et al. (ICLR 2023, "Parity Check") and Grazzi et al. (ICLR 2025): train on short
trials (lengths 3-40) with the running label at every labelled step (running parity: (x_1 + ... + x_t) mod k;
a group word problem: the product so far; modular arithmetic: the value so far, after each digit), then test
the final network on longer trials (40-256, and one far length, 1,000). A test length scores the answer at
the last labelled step of each sequence (the label of the whole sequence; modular arithmetic at an even
length: its last digit, one step before the end), as scaled accuracy (accuracy - 1/c) / (1 - 1/c), c the
task's classes: 0 at chance, 1 when every answer is right; the card's number is its mean over
``test_lengths``, with the far length beside it.

The test is :func:`length_test`; :class:`baselines.trainer.RunningTaskTrainer` trains the task and runs
the test when a run stops. :func:`length_panels` turns tested runs into the numbers of the figure of scaled
accuracy against test length (``length_generalization.png``, drawn by :mod:`baselines.plots`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

import agents
from baselines import interrupt
from baselines.train_config import SIGNED, TrainConfig, depth_label
from memory_envs import make_batch, tasks

NOT_TESTED = ("interrupted", "non_finite")
"""Stops after which the network is not tested: a resume goes on, or its numbers are not finite."""


@torch.no_grad()
def length_test(model: agents.MultiHeadModel, config: TrainConfig, device: torch.device, seed: int
                ) -> dict[str, Any]:
    """The accuracy at the last labelled step, per length of ``config.test_lengths`` and ``config.far_length``, over
    ``config.test_sequences`` fresh sequences each (in batches of at most ``batch_size``), plus the scaled
    accuracies and their mean over ``test_lengths``. Data and initial states are drawn on the CPU from ``seed``,
    then moved to ``device``. A stop request (:func:`baselines.interrupt.check`) abandons it between two batches."""
    tasks.check_seed(seed)
    rng = np.random.default_rng([seed, 3])
    generator = torch.Generator().manual_seed(seed)
    lengths = (*config.test_lengths, *(() if config.far_length is None else (config.far_length,)))
    accuracy: dict[str, float] = {}
    for length in lengths:
        correct = 0
        for start in range(0, config.test_sequences, config.batch_size):
            interrupt.check()
            size = min(config.batch_size, config.test_sequences - start)
            batch = make_batch(config.task, None, size, rng=rng, p=config.p, length=length, modulus=config.modulus)
            x = torch.from_numpy(batch.inputs).to(device)
            logits = model(x, ns=[tasks.RUNNING_N], state=model.core.initial_state(x.shape[1], generator=generator))
            correct += int((logits[tasks.RUNNING_N].argmax(dim=-1).cpu().numpy() == batch.labels[:, 0]).sum())
        accuracy[str(length)] = correct / config.test_sequences
    scaled = {length: tasks.scaled_accuracy(value, config.classes) for length, value in accuracy.items()}
    far = None if config.far_length is None else scaled[str(config.far_length)]
    return {"modulus": config.modulus, "classes": config.classes, "train_lengths": list(tasks.check_running_lengths(config.length_range)),
            "sequences_per_length": config.test_sequences, "accuracy": accuracy, "scaled": scaled,
            "scaled_mean": float(np.mean([scaled[str(length)] for length in config.test_lengths])),
            "far_length": config.far_length, "scaled_far": far}


FIGURE = "length_generalization.png"
"""The figure's file name, in a score card's folder and in a running task's run folder."""

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
    """One kind at one depth on one task: the curves of each variant present, and their medians over seeds."""

    kind: str
    curves: dict[str, list[LengthCurve]]
    layers: int = 1
    task: str = tasks.RUNNING_PARITY

    @property
    def title(self) -> str:
        """The kind and its depth beyond 1 layer (``"mamba, 2 layers"``)."""
        return depth_label(self.kind, self.layers)

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
    "heldout", "layers"): the running tasks' runs that were tested (:func:`memory_envs.tasks.is_running_task`),
    one panel per task, kind and depth in name order, a core ``KIND+signed`` in the "signed" variant of ``KIND``'s
    panel at its depth; seeds in increasing order."""
    by_panel: dict[tuple[str, str, int], dict[str, list[LengthCurve]]] = {}
    for r in results:
        if not tasks.is_running_task(r["task"]) or r["heldout"] is None:
            continue
        signed = r["core"].endswith(SIGNED)
        key = (r["task"], r["core"].removesuffix(SIGNED), r.get("layers", 1))
        by_panel.setdefault(key, {}).setdefault(VARIANTS[signed], []).append(curve(r["seed"], r["heldout"]))
    return [Panel(kind, {v: sorted(variants[v], key=lambda c: c.seed) for v in VARIANTS if v in variants}, layers, task)
            for (task, kind, layers), variants in sorted(by_panel.items())]



__all__ = ["FIGURE", "NOT_TESTED", "VARIANTS", "LengthCurve", "Panel", "length_panels", "length_test"]
