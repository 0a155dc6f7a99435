"""Batched generation of supervised trials, vectorized over sequences.

The batch is returned as numpy arrays so that ``memory_envs`` does not need
torch; :meth:`Batch.to_torch` wraps them with ``torch.from_numpy`` (no copy)
and moves them to a device in one transfer each. At the paper's batch sizes
generating a batch costs far less than one forward pass of the network.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from memory_envs import sizes, tasks

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class Batch:
    """One supervised batch; all sequences share one length T.

    Attributes:
        inputs: float32 [T, B, 1], the bits fed one per step.
        labels: int64 [B, K], the final-step label per sequence and N.
        ns: the Ns of the K label columns.
        streaming_labels: int64 [T, B, K], the label of the window ending at each step
            (only with ``streaming=True``; 0 where the mask is False).
        streaming_mask: bool [T, K], True where step t has a label for N (t + 1 >= N).
    """

    inputs: np.ndarray
    labels: np.ndarray
    ns: tuple[int, ...]
    streaming_labels: np.ndarray | None = None
    streaming_mask: np.ndarray | None = None

    def to_torch(self, device: "str | torch.device | None" = None) -> dict[str, Any]:
        """The arrays as torch tensors on ``device`` (zero-copy on CPU), keyed by field name."""
        import torch

        out: dict[str, Any] = {"ns": self.ns}
        for name in ("inputs", "labels", "streaming_labels", "streaming_mask"):
            value = getattr(self, name)
            out[name] = None if value is None else torch.from_numpy(value).to(device)
        return out


def resolve_rng(seed: int | None, rng: np.random.Generator | None) -> np.random.Generator:
    """One generator from either a seed or a generator (not both)."""
    if rng is not None and seed is not None:
        raise ValueError("give either seed or rng, not both")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    return np.random.default_rng(seed)


def make_batch(
    task: str,
    ns: Sequence[int] | int,
    batch_size: int,
    *,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    p: float | str | None = None,
    length: int | None = None,
    length_range: Sequence[int] | None = None,
    streaming: bool = False,
) -> Batch:
    """Build a supervised batch of ``task`` trials scored for every N in ``ns``.

    Args:
        task: ``"parity"`` or ``"dms"``.
        ns: one N or a list of Ns (one label column each).
        batch_size: number of sequences B.
        seed: seed for a fresh generator (exclusive with ``rng``).
        rng: the numpy Generator to draw from (advanced in place; use it for streams of batches).
        p: bit probability; None -> the task's paper default ("uniform" for parity, 0.5 for DMS).
        length: the sequence length T of this batch; None -> drawn from ``length_range``.
        length_range: half-open [low, high) for T; None -> [N_max + 2, 4 N_max + 2).
        streaming: also return the every-step labels and their mask.

    Returns:
        A :class:`Batch` (inputs [T, B, 1] float32, labels [B, K] int64, ...).
    """
    tasks.check_task(task)
    ns = tasks.check_ns(task, ns)
    batch_size = tasks.check_positive_int(batch_size, "batch_size")
    p = tasks.check_p(task, p)
    generator = resolve_rng(seed, rng)
    n_max = max(ns)
    if length is None:
        low, high = tasks.check_length_range(length_range, n_max)
        longest = high - 1
    elif isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < n_max:
        raise ValueError(f"length must be an integer >= the largest N ({n_max}), got {length!r}")
    else:
        longest = int(length)
    sizes.check_fits(tasks.batch_bytes(batch_size, longest, len(ns), streaming),
                     f"batch_size={batch_size} with {len(ns)} Ns and sequences of up to {longest} bits")
    if length is None:
        length = int(generator.integers(low, high))
    bits = tasks.sample_bits(generator, batch_size, length, p)
    inputs = np.ascontiguousarray(bits.T[:, :, None], dtype=np.float32)
    labels = tasks.final_labels(task, bits, ns)
    if not streaming:
        return Batch(inputs, labels, ns)
    stream, mask = tasks.streaming_labels(task, bits, ns)
    stream = np.ascontiguousarray(stream.transpose(1, 0, 2), dtype=np.int64)
    return Batch(inputs, labels, ns, stream, mask)
