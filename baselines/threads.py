"""How many torch CPU threads a run uses: by default the cores that other processes are not busy on.

Torch's own default is one thread per core; when another job holds a core, its threads wait for each
other and a step runs at about half the speed of one thread. The commands (``--threads``) and the
library's entry points (:func:`baselines.trainer.train`, :func:`baselines.population.train_population`,
:func:`baselines.rl.train_rl`) share this default.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch


def cpu_load() -> tuple[int, float]:
    """The CPU cores this process may run on and the machine's 1-minute load average (0 where unknown)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        return cores, os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform: taken as idle
        return cores, 0.0


def load_aware_threads() -> tuple[int, str]:
    """The default thread count: the cores minus the 1-minute load, at least 1 and at most torch's current
    setting (so a lower ``torch.set_num_threads`` made before stands), with a note saying why."""
    cores, load = cpu_load()
    chosen = max(1, min(torch.get_num_threads(), cores - round(load)))
    return chosen, f"{cores} cores, 1-minute load {load:.1f}"


def set_threads(threads: int | None) -> str:
    """Set torch's CPU threads to ``threads``, or by default to :func:`load_aware_threads`; returns a line
    saying how many and why (the commands print it)."""
    if threads is not None:
        torch.set_num_threads(threads)
        return f"torch CPU threads: {threads} (--threads)"
    chosen, why = load_aware_threads()
    torch.set_num_threads(chosen)
    return f"torch CPU threads: {chosen} ({why}; --threads N to choose)"


@contextlib.contextmanager
def torch_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block with ``threads`` torch CPU threads (None: :func:`load_aware_threads`), then restore the
    caller's setting. Yields the number used."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    before = torch.get_num_threads()
    chosen = threads if threads is not None else load_aware_threads()[0]
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(before)
