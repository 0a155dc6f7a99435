"""Population geometry: PCA dimensionality of the hidden activity under random-bit drive (docs/analysis.md)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

import agents
from baselines.analysis.timescales import drive


def dimensionality(core_or_model, *, trials: int = 10, steps: int = 10_000, burn_in: int = 500,
                   threshold: float = 0.9, chunk: int = 2048, seed: int = 0,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """PCA of the hidden activity under random-bit drive: the number of components that explain
    ``threshold`` (90%) of the variance, and the explained-variance ratios (``progress``: see
    :func:`~baselines.analysis.timescales.drive`)."""
    core = core_or_model.core if isinstance(core_or_model, agents.MultiHeadModel) else core_or_model
    hsz = core.hidden_size
    device = next(core.parameters()).device  # the sums stay where the activity is
    s1 = torch.zeros(hsz, dtype=torch.float64, device=device)
    s2 = torch.zeros(hsz, hsz, dtype=torch.float64, device=device)
    count = [0]

    def consume(hidden, x, state):
        h = hidden.reshape(-1, hsz).to(torch.float64)
        s1.add_(h.sum(0))
        s2.addmm_(h.t(), h)
        count[0] += h.shape[0]

    drive(core, consume, trials=trials, steps=steps, burn_in=burn_in, chunk=chunk, seed=seed, progress=progress)
    mean = s1 / count[0]
    cov = s2 / count[0] - torch.outer(mean, mean)
    eig = torch.linalg.eigvalsh(cov.cpu()).flip(0).clamp_min(0).numpy()
    total = eig.sum()
    ratio = eig / total if total > 0 else np.zeros_like(eig)
    components = int(np.searchsorted(np.cumsum(ratio), threshold) + 1) if total > 0 else 0
    return {"components": min(components, hsz), "explained_ratio": ratio, "units": hsz}
