"""Argument types and small parsers shared by every ``memory-envs`` subcommand.

Each raises ``argparse.ArgumentTypeError`` (argparse turns it into a usage error naming the option)
or, for ``parse_core_options``, a ValueError naming the option.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence


def positive_int(value: str) -> int:
    """An integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def comma_list(value: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def comma_ints(value: str) -> tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)``."""
    try:
        return tuple(int(v) for v in comma_list(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def comma_floats(value: str) -> tuple[float, ...]:
    """``"0,0.5"`` -> ``(0.0, 0.5)``."""
    try:
        return tuple(float(v) for v in comma_list(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {value!r}") from None


def comma_choices(allowed: Sequence[str]):
    """An argument type: ``"a,b"`` -> ``("a", "b")``, each one of ``allowed``."""

    def parse(value: str) -> tuple[str, ...]:
        items = comma_list(value)
        for item in items:
            if item not in allowed:
                raise argparse.ArgumentTypeError(f"invalid choice: {item!r} (choose from {', '.join(allowed)})")
        if not items:
            raise argparse.ArgumentTypeError(f"expected one or more of {', '.join(allowed)}, got {value!r}")
        return items

    return parse


def bit_probability(value: str) -> float | str:
    """``--p``: a float, or ``uniform`` (the paper's per-trial p ~ U(0, 1))."""
    if value == "uniform":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'uniform', got {value!r}") from None


def parse_core_options(items: Sequence[str]) -> dict[str, Any]:
    """``["variant=mod", "self_connections=true"]`` -> ``{"variant": "mod", "self_connections": True}``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--core-option must look like KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
