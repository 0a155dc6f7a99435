"""Forgetting and generalization: the accuracy of every checkpoint on every N (docs/analysis.md)."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

import agents
from baselines.analysis.runs import Run
from memory_envs import make_batch, tasks


@torch.no_grad()
def accuracy_on_ns(model: agents.MultiHeadModel, task: str, ns: Sequence[int], *, single_head: bool | None = None,
                   batches: int = 4, batch_size: int = 256, p: float | str | None = None, seed: int = 0
                   ) -> dict[int, float]:
    """Final-step accuracy of ``model`` on trials scored for every N in ``ns`` (the trainer's test:
    make_batch trials of random length in [max(ns) + 2, 4 max(ns) + 2), the task's default p).

    A single-head model (one head; default: when model has exactly one head) answers every N with
    that head. Otherwise head N answers N, and N without a head gives NaN.
    """
    tasks.check_seed(seed)
    ns = list(tasks.check_ns(task, ns))
    single_head = len(model.ns) == 1 if single_head is None else single_head
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    correct = np.zeros(len(ns))
    total = 0
    ref = next(model.parameters())  # the model's device and dtype (any core); data drawn on the CPU, then moved
    for _ in range(batches):
        t = make_batch(task, ns, batch_size, rng=rng, p=p).to_torch(ref.device)
        x = t["inputs"].to(ref.dtype)
        hidden, _ = model.core(x, model.core.initial_state(x.shape[1], generator=gen))
        last = hidden[-1]
        for j, n in enumerate(ns):
            h = model.ns[0] if single_head else n
            if h not in model.ns:
                continue
            correct[j] += float((model.head(h)(last).argmax(-1) == t["labels"][:, j]).sum())
        total += x.shape[1]
    return {n: (correct[j] / total if (single_head or n in model.ns) else math.nan) for j, n in enumerate(ns)}


def forgetting_matrix(run: Run, eval_ns: Sequence[int] | None = None, *, beyond: int = 5,
                      device: str | torch.device = "cpu", progress: Callable[[int], None] | None = None,
                      **kwargs) -> tuple[list[int], list[int], np.ndarray]:
    """Accuracy of every checkpoint (rows, by N, loaded on ``device``) on every N (cols: the run's Ns up
    to the largest checkpoint + ``beyond``). Returns (row Ns, col Ns, matrix). ``progress(1)``, if
    given, after each checkpoint."""
    rows = list(run.checkpoints)
    if eval_ns is None:
        low = min([int(run.config.get("start_n", 2))] + rows)
        eval_ns = list(range(max(low, 2 if run.task == "dms" else 1), max(rows) + beyond + 1))
    single = run.config.get("curriculum") == "single"
    matrix = np.full((len(rows), len(eval_ns)), np.nan)
    for i, n in enumerate(rows):
        acc = accuracy_on_ns(run.load(n, device), run.task, eval_ns, single_head=single, **kwargs)
        matrix[i] = [acc[m] for m in eval_ns]
        if progress is not None:
            progress(1)
    return rows, list(eval_ns), matrix


def readout_probe(model: agents.MultiHeadModel, task: str, n: int, *, train_batches: int = 8, test_batches: int = 4,
                  batch_size: int = 256, fit_steps: int = 300, seed: int = 0) -> float:
    """Test accuracy on N = ``n`` of a fresh readout, the shape of a head (Linear(H, 2)), fitted to the frozen
    network's last hidden state: how well a network trained up to some N holds what a larger N needs
    (generalization beyond training, where a multi-head network has no head to ask). The readout is fitted
    by full-batch Adam (``fit_steps``, lr 0.05) on ``train_batches`` x ``batch_size`` trials of the trainer's
    test (:func:`accuracy_on_ns`'), and scored on ``test_batches`` x ``batch_size`` fresh ones."""
    tasks.check_ns(task, [n])
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    ref = next(model.parameters())

    def features(batches: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        with torch.no_grad():
            for _ in range(batches):
                t = make_batch(task, [n], batch_size, rng=rng).to_torch(ref.device)
                x = t["inputs"].to(ref.dtype)
                hidden, _ = model.core(x, model.core.initial_state(x.shape[1], generator=gen))
                xs.append(hidden[-1].float().cpu())
                ys.append(t["labels"][:, 0].cpu())
        return torch.cat(xs), torch.cat(ys)

    x_train, y_train = features(train_batches)
    x_test, y_test = features(test_batches)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6  # standardized: one learning rate fits every network
    readout = torch.nn.Linear(x_train.shape[1], 2)
    with torch.no_grad():  # initial weights from the generator, not the global RNG
        readout.weight.copy_(0.01 * torch.randn(readout.weight.shape, generator=gen))
        readout.bias.zero_()
    optimizer = torch.optim.Adam(readout.parameters(), lr=0.05)
    for _ in range(fit_steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(readout((x_train - mean) / std), y_train).backward()
        optimizer.step()
    with torch.no_grad():
        return float((readout((x_test - mean) / std).argmax(-1) == y_test).float().mean())
