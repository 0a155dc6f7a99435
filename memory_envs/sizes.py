"""Allocation checks: an argument whose arrays would not fit in memory is refused before allocating.

The envs, the vector env, the batched generator and the trainer estimate the bytes an argument
asks for and call :func:`check_fits`, which compares them with the memory available now
(``MemAvailable`` of ``/proc/meminfo`` on Linux, the physical memory elsewhere).
"""

from __future__ import annotations

import os


def available_bytes() -> int:
    """The memory this process can still allocate without swapping, in bytes (best effort)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 1 << 62  # unknown: do not refuse


def format_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_fits(needed: int, argument: str) -> None:
    """Raise ValueError naming ``argument`` and the bytes it needs if ``needed`` exceeds the available memory."""
    available = available_bytes()
    if needed > available:
        raise ValueError(f"{argument} needs {format_bytes(needed)} ({needed} bytes) of memory but "
                         f"{format_bytes(available)} are available: use a smaller value")
