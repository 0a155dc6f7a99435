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


def draw_device(generator: torch.Generator | None) -> torch.device:
    """Where a random draw happens: on `generator`'s device, or on the CPU for the global RNG.

    The device rule (docs/agents.md): every draw is made on its generator (the run's generators are
    CPU generators) and then moved to the tensor's device, so one seed gives the same numbers on
    CPU and GPU.
    """
    return generator.device if generator is not None else torch.device("cpu")


def uniform_(tensor: torch.Tensor, low: float, high: float, generator: torch.Generator | None) -> None:
    """Fill `tensor` (on any device) with U(low, high) drawn from `generator` (or the seeded global
    CPU RNG) on the generator's device, then copied in (the device rule of `draw_device`)."""
    with torch.no_grad():
        device = draw_device(generator)
        if tensor.device == device:
            tensor.uniform_(low, high, generator=generator)
        else:
            draw = torch.empty(tensor.shape, dtype=tensor.dtype, device=device)
            tensor.copy_(draw.uniform_(low, high, generator=generator))


def check_same_device(name: str, tensor: torch.Tensor, device: torch.device) -> None:
    """Raise ValueError naming `name` and both devices unless `tensor` is on `device` (the module's)."""
    if tensor.device != device:
        raise ValueError(f"{name} is on {tensor.device} but the core's parameters are on {device}: "
                         f"move it with .to({str(device)!r}) first")


def normal_(tensor: torch.Tensor, std: float, generator: torch.Generator | None) -> None:
    """Fill `tensor` with N(0, std^2) drawn from `generator` on its device, then copied in (as uniform_)."""
    with torch.no_grad():
        draw = torch.empty(tensor.shape, dtype=tensor.dtype, device=draw_device(generator))
        tensor.copy_(draw.normal_(0.0, std, generator=generator))
