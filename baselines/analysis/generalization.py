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
