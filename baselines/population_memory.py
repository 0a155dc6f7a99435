"""Device memory of a population: what a member needs (checked before training) and what it used.

A training step keeps about ``ACTIVATIONS_PER_STEP[kind]`` float tensors of [batch, hidden] per time
step of the longest sequence (the trajectory the backward needs, the gradients it builds; counted
from the kernels in ``agents/_leaky_*_kernel.py``), plus the weights, their gradients and the
optimizer's buffers. The longest sequence at N is 4 N + 1 steps (docs/envs.md); a run without a target N
is sized for ``UNBOUNDED_N``, the paper's cap of 100 heads.
"""

from __future__ import annotations

import resource
from collections.abc import Sequence
from pathlib import Path

import torch

from baselines.trainer import TrainConfig, resolve_device

ACTIVATIONS_PER_STEP = {"leaky": 3, "leaky_mod": 4, "gru": 20, "lstm": 20}
"""[batch, hidden] tensors per time step of a training step (leaky: trajectory, input projection and its
gradient; the mod variant also phi's outputs; GRU/LSTM: their gates, kept states and gradients)."""
RECURRENT_MATRICES = {"leaky": 1, "leaky_mod": 1, "gru": 3, "lstm": 4}
UNBOUNDED_N = 100
"""The N a run without ``target_n`` is sized for: the paper's cap of 100 heads."""


def _kind(config: TrainConfig) -> str:
    if config.core == "leaky" and config.core_options.get("variant") == "mod":
        return "leaky_mod"
    return config.core


def memory_per_member(config: TrainConfig) -> int | None:
    """Bytes one member's training step needs at its largest N (float32); None for an external core."""
    kind = _kind(config)
    if kind not in ACTIVATIONS_PER_STEP:
        return None
    n = config.target_n or UNBOUNDED_N
    steps, batch, hidden = 4 * n + 1, config.batch_size, config.hidden_size
    activations = ACTIVATIONS_PER_STEP[kind] * (steps + 1) * batch * hidden
    heads = 1 if config.curriculum == "single" else n
    weights = RECURRENT_MATRICES[kind] * hidden * (hidden + 3) + heads * 2 * (hidden + 1)
    return 4 * (activations + 3 * weights)  # weights, their gradients, the optimizer's buffers


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device``: CUDA's free memory, or the CPU's MemAvailable (None where unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(configs: Sequence[TrainConfig], available: int | None = None) -> int | None:
    """Raise ValueError if the population of ``configs`` needs more than ``available`` bytes (default: the
    device's free memory), naming what it would need; returns the bytes it needs (None if unknown)."""
    needs = [memory_per_member(c) for c in configs]
    if any(need is None for need in needs):
        return None
    total = sum(needs)
    device = resolve_device(configs[0].device)
    available = available_memory(device) if available is None else available
    if available is not None and total > available:
        fits, used = 0, 0
        for need in sorted(needs):
            if used + need > available:
                break
            used, fits = used + need, fits + 1
        raise ValueError(
            f"a population of {len(configs)} needs about {total / 2**30:.2f} GiB on {device} "
            f"({max(needs) / 2**20:.0f} MiB per member at its largest N; no target_n counts as N={UNBOUNDED_N}), "
            f"but {available / 2**30:.2f} GiB are free: use at most {fits} members, a smaller batch or a target_n")
    return total


def peak_memory(device: torch.device) -> int:
    """The peak bytes so far: CUDA's allocator peak on a GPU, the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


__all__ = ["ACTIVATIONS_PER_STEP", "UNBOUNDED_N", "available_memory", "check_memory", "memory_per_member",
           "peak_memory"]
