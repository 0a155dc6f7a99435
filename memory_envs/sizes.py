"""The limits of the machine: a request whose memory, processes or time cannot fit is refused before anything runs.

Every limit is checked here, so there is one rule per resource:

- memory: the envs, the vector env, the batched generator, the trainer and the RL runs estimate the bytes an
  argument asks for and call :func:`check_fits`, which compares them with the memory available now
  (``MemAvailable`` of ``/proc/meminfo`` on Linux, the physical memory elsewhere);
- processes: a request that starts one process per item (``memory-envs rl --vec-env subproc``) calls
  :func:`check_processes`: at most :data:`PROCESSES_PER_CORE` processes per CPU core this process may run on,
  unless the caller allows oversubscribing the cores;
- time: a phase of work that saves nothing until it ends (an evaluation, running parity's length test, an RL
  evaluation) is estimated by :func:`phase_seconds` and refused by :func:`check_duration` beyond
  :data:`PHASE_SECONDS_LIMIT` (a day). The estimate is meant to lie below the real time (its constants are
  several times faster than what was measured), so a refused request is certain to be too long, and a sane
  one (the defaults' phases take seconds to minutes) lies orders of magnitude below the limit.
"""

from __future__ import annotations

import os

PROCESSES_PER_CORE = 4
"""Worker processes allowed per CPU core: an env worker mostly waits for its next action, so a few share a core."""
PHASE_SECONDS_LIMIT = 86_400.0
"""The longest phase of work (between two saved states) a request may ask for: a day."""
SECONDS_PER_CALL = 1e-4
"""The least time one call of a model on a batch takes, data included (measured: 0.7-1.4 ms for a batch of 16
sequences of 7-9 steps, 8 units, every kind, on one CPU thread of this project's 2-core machine)."""
SECONDS_PER_STEP = 1e-6
"""The least time one time step of one batch adds (measured: 3.8 us for min-GRU's parallel scan to 220 us for the
transformer, 16 sequences of 1,000 steps, 8 units, one CPU thread)."""
FLOPS_PER_SECOND = {"cpu": 1e12, "cuda": 1e15}
"""The most floating-point operations per second assumed for each device type (about 30 times what one CPU thread
measured here; above one GPU's fp32 / tf32 peak)."""


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


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def format_bytes(count: float) -> str:
    """``count`` bytes in the largest unit that keeps it at least 1 (``"1.5 GiB"``)."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def format_seconds(seconds: float) -> str:
    """``seconds`` in the largest unit that keeps it at least 1 (``"2.5 days"``)."""
    for unit, size in (("years", 365 * 86_400), ("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} seconds"


def check_fits(needed: int, argument: str) -> None:
    """Raise ValueError naming ``argument`` and the bytes it needs if ``needed`` exceeds the available memory."""
    available = available_bytes()
    if needed > available:
        raise ValueError(f"{argument} needs {format_bytes(needed)} ({needed} bytes) of memory but "
                         f"{format_bytes(available)} are available: use a smaller value")


def check_processes(count: int, argument: str, allow_oversubscribe: bool = False) -> None:
    """Raise ValueError naming ``argument`` if ``count`` processes exceed :data:`PROCESSES_PER_CORE` per CPU core,
    unless ``allow_oversubscribe``."""
    cores = cpu_cores()
    limit = PROCESSES_PER_CORE * cores
    if count > limit and not allow_oversubscribe:
        raise ValueError(f"{argument} starts {count} processes but this machine allows {limit} ({PROCESSES_PER_CORE} "
                         f"per CPU core, {cores} cores): use fewer, or allow_oversubscribe=True to run them anyway")


def phase_seconds(calls: int, steps: int, flops: float, device: str = "cpu") -> float:
    """A lower estimate of the seconds a phase takes: ``calls`` model calls, ``steps`` time steps summed over the
    calls, ``flops`` floating-point operations on a device of type ``device`` (``"cpu"`` or ``"cuda"``)."""
    return calls * SECONDS_PER_CALL + steps * SECONDS_PER_STEP + flops / FLOPS_PER_SECOND.get(device, FLOPS_PER_SECOND["cuda"])


def check_duration(seconds: float, argument: str) -> None:
    """Raise ValueError naming ``argument`` and the estimate if ``seconds`` (from :func:`phase_seconds`) exceeds
    :data:`PHASE_SECONDS_LIMIT`."""
    if seconds > PHASE_SECONDS_LIMIT:
        raise ValueError(f"{argument} asks for at least {format_seconds(seconds)} of work in one phase (an estimate "
                         f"below the real time) but the limit is {format_seconds(PHASE_SECONDS_LIMIT)}: use a smaller value")
