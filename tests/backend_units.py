"""Unit functions for tests/test_backends.py: module-level, so spawned processes and Ray workers can
import them (the tests put this folder on PYTHONPATH before any worker starts)."""

from __future__ import annotations

import os
from pathlib import Path


def square(folder: str, x: int) -> dict:
    """Write the result into ``folder`` (as a run would) and return it."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / "result.txt").write_text(str(x * x))
    return {"x": x, "square": x * x}


def fail(folder: str, message: str) -> dict:
    raise ValueError(message)


def die_once(folder: str, x: int) -> dict:
    """Kill the worker process the first time (as a lost node would); succeed when run again."""
    marker = Path(folder) / "started"
    if not marker.exists():
        Path(folder).mkdir(parents=True, exist_ok=True)
        marker.write_text("once")
        os._exit(1)
    return square(folder, x)
