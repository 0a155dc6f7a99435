"""Argument checks shared by the cores and the model: each raises an error naming the argument."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def positive_int(name: str, value: object) -> int:
    """Return `value` if it is an int >= 1, else raise TypeError/ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}")
    return value


def choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """Return `value` if it is one of `allowed`, else raise ValueError listing them."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value  # type: ignore[return-value]


def uniform_(tensor: torch.Tensor, low: float, high: float, generator: torch.Generator | None) -> None:
    """Fill `tensor` with U(low, high) drawn from `generator` (or the seeded global RNG)."""
    with torch.no_grad():
        tensor.uniform_(low, high, generator=generator)
