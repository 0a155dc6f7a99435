"""Per-neuron time constant tau' >= 1: its initialisation and its two trainable parametrisations."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._validate import choice, uniform_

PARAMETRISATIONS = ("clamp", "softplus")
TauInit = float | Sequence[float]

#: Softplus cannot reach tau' = 1 exactly; trainable softplus values start at least this far above 1.
SOFTPLUS_FLOOR = 1e-6


def check_tau_init(tau_init: TauInit) -> tuple[float, float]:
    """Return (lo, hi) for a single value or a (lo, hi) range; every value must be >= 1."""
    if isinstance(tau_init, bool):
        raise TypeError(f"tau_init must be a number >= 1 or a (lo, hi) pair, got {tau_init!r}")
    if isinstance(tau_init, (int, float)):
        lo = hi = float(tau_init)
    elif isinstance(tau_init, Sequence) and not isinstance(tau_init, str) and len(tau_init) == 2:
        lo, hi = (float(v) for v in tau_init)
    else:
        raise TypeError(f"tau_init must be a number >= 1 or a (lo, hi) pair, got {tau_init!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 1.0 or hi < lo:
        raise ValueError(f"tau_init values must be finite with 1 <= lo <= hi, got {tau_init!r}")
    return lo, hi


class TimeConstant(nn.Module):
    """Per-neuron tau' (the effective time constant), trainable or fixed.

    Trainable parametrisations of the stored tensor `raw`:
    - "clamp" (the paper): tau' = max(raw, 1); below 1 the gradient is zero.
    - "softplus": tau' = 1 + softplus(raw); the gradient never vanishes exactly.
    Fixed tau stores tau' itself in a buffer `raw` (no parametrisation needed).
    """

    def __init__(
        self,
        size: int,
        init: TauInit = (1.0, 2.0),
        trainable: bool = True,
        parametrisation: str = "clamp",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        lo, hi = check_tau_init(init)
        self.parametrisation = choice("tau_param", parametrisation, PARAMETRISATIONS)
        self.trainable = bool(trainable)
        values = torch.empty(size)
        uniform_(values, lo, hi, generator)
        raw = self._to_raw(values)
        if self.trainable:
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)

    def _to_raw(self, tau: torch.Tensor) -> torch.Tensor:
        if self.trainable and self.parametrisation == "softplus":
            y = (tau - 1.0).clamp_min(SOFTPLUS_FLOOR)
            return y + torch.log(-torch.expm1(-y))  # inverse softplus, stable for small and large y
        return tau.clone()

    def value(self) -> torch.Tensor:
        """tau' per neuron, [H], differentiable with respect to `raw`."""
        if not self.trainable:
            return self.raw
        if self.parametrisation == "softplus":
            return 1.0 + F.softplus(self.raw)
        return self.raw.clamp_min(1.0)

    def set_(self, tau: torch.Tensor) -> None:
        """Overwrite tau' in place (e.g. for perturbation analyses); values must be >= 1."""
        tau = torch.as_tensor(tau, dtype=self.raw.dtype, device=self.raw.device)
        if tau.shape != self.raw.shape or bool((tau < 1).any()):
            raise ValueError(f"tau must have shape {tuple(self.raw.shape)} and values >= 1")
        with torch.no_grad():
            self.raw.copy_(self._to_raw(tau))
