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
        inputs: float32 [T, B, F], the input of each step: F = 1 for the bit tasks (the bit), F = vocab for a
            token task (the token one-hot).
        labels: int64 [B, K], the final-step label per sequence and N (a running task: K = 1, the label at the
            last labelled step).
        ns: the Ns of the K label columns (``(0,)``, :data:`memory_envs.tasks.RUNNING_N`, for a running task).
        streaming_labels: int64 [T, B, K], the label of the window ending at each step (a running task: of the
            sequence so far) (only with ``streaming=True``; 0 where the mask is False).
        streaming_mask: bool [T, K], True where step t has a label for N (t + 1 >= N; a running task: every
            step, or the token task's :meth:`~memory_envs.tasks.TokenTask.label_mask`).
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
    return np.random.default_rng(None if seed is None else tasks.check_seed(seed))


def make_batch(
    task: str,
    ns: Sequence[int] | int | None,
    batch_size: int,
    *,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    p: float | str | None = None,
    length: int | None = None,
    length_range: Sequence[int] | None = None,
    streaming: bool = False,
    modulus: int | None = None,
) -> Batch:
    """Build a supervised batch of ``task`` trials scored for every N in ``ns``.

    Args:
        task: ``"parity"`` or ``"dms"`` (windowed, scored for each N), or a running task (no N: give
            ``ns=None``; one label column, ``Batch.ns`` is ``(0,)``): ``"running_parity"`` (the running sum of
            the bits mod ``modulus``), ``"running_modK"`` (the same mod K), ``"mod_arithmetic"`` or
            ``"word_<group>"`` (:func:`memory_envs.tasks.token_task`: tokens fed one-hot, labels from
            :meth:`~memory_envs.tasks.TokenTask.labels`). ``labels`` holds the label at the last labelled step:
            the last step, except for modular arithmetic at an even length, where it is step T - 2 (the last
            digit; step T - 1 is an operator).
        ns: one N or a list of Ns (one label column each); None for a running task.
        batch_size: number of sequences B.
        seed: seed for a fresh generator (exclusive with ``rng``).
        rng: the numpy Generator to draw from (advanced in place; use it for streams of batches).
        p: bit probability; None -> the task's default ("uniform" for parity, 0.5 for DMS and the running
            counts). Token tasks draw uniform tokens: refused for them.
        length: the sequence length T of this batch; None -> drawn from ``length_range``.
        length_range: half-open [low, high) for T; None -> [N_max + 2, 4 N_max + 2), for a running task the
            protocol's training lengths [3, 41).
        streaming: also return the every-step labels and their mask.
        modulus: running parity's k (default 2; ``running_modK``: K or left out); refused for the other tasks.

    Returns:
        A :class:`Batch` (inputs [T, B, F] float32, labels [B, K] int64, ...).
    """
    running = tasks.is_running_task(task)
    token = tasks.token_task(task) if tasks.is_token_task(task) else None
    if running:
        if ns is not None:
            raise ValueError(f"{task} has no N: pass ns=None (its lengths come from length or length_range), "
                             f"got ns={ns!r}")
        if token is None:
            modulus = tasks.count_modulus(task, modulus)
        elif modulus is not None:
            raise ValueError(f"modulus applies to the running counts ({tasks.COUNT_TASK_RULE}) only, got "
                             f"modulus={modulus!r} for {task!r}")
        elif p is not None:
            raise ValueError(f"p applies to the bit tasks only ({task!r} draws uniform tokens), got p={p!r}")
        ns, min_length = (tasks.RUNNING_N,), 1
    else:
        tasks.check_task(task)
        if modulus is not None:
            raise ValueError(f"modulus applies to the running counts ({tasks.COUNT_TASK_RULE}) only, got "
                             f"modulus={modulus!r} for {task!r}")
        ns = tasks.check_ns(task, ns)
        min_length = max(ns)
    batch_size = tasks.check_positive_int(batch_size, "batch_size")
    if token is None:
        p = tasks.check_p(task, p)
    generator = resolve_rng(seed, rng)
    if length is None:
        low, high = (tasks.check_running_lengths(length_range) if running
                     else tasks.check_length_range(length_range, min_length))
        longest = high - 1
    elif isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < min_length:
        what = "1" if running else f"the largest N ({min_length})"
        raise ValueError(f"length must be an integer >= {what}, got {length!r}")
    else:
        longest = int(length)
    vocab = None if token is None else token.vocab
    sizes.check_fits(tasks.batch_bytes(batch_size, longest, len(ns), streaming, vocab),
                     f"batch_size={batch_size} with {len(ns)} Ns and sequences of up to {longest} "
                     + ("bits" if token is None else f"tokens of a vocabulary of {token.vocab}"))
    if length is None:
        length = int(generator.integers(low, high))
    if token is not None:
        return token_batch(token, generator, batch_size, length, streaming)
    bits = tasks.sample_bits(generator, batch_size, length, p)
    inputs = np.ascontiguousarray(bits.T[:, :, None], dtype=np.float32)
    if running:
        stream = tasks.running_labels(bits, modulus)
        labels = stream[:, -1:].copy()
        if not streaming:
            return Batch(inputs, labels, ns)
        return Batch(inputs, labels, ns, np.ascontiguousarray(stream.T[:, :, None]), np.ones((length, 1), dtype=bool))
    labels = tasks.final_labels(task, bits, ns)
    if not streaming:
        return Batch(inputs, labels, ns)
    stream, mask = tasks.streaming_labels(task, bits, ns)
    stream = np.ascontiguousarray(stream.transpose(1, 0, 2), dtype=np.int64)
    return Batch(inputs, labels, ns, stream, mask)


def token_batch(task: tasks.TokenTask, rng: np.random.Generator, batch_size: int, length: int, streaming: bool
                ) -> Batch:
    """A batch of ``task``'s token sequences (checked by :func:`make_batch`): one-hot inputs [T, B, vocab], the
    label at the last labelled step [B, 1], and with ``streaming`` every step's labels and the task's mask."""
    tokens = task.sample(rng, batch_size, length)
    inputs = np.eye(task.vocab, dtype=np.float32)[tokens.T]
    every = task.labels(tokens)
    mask = task.label_mask(length)
    last = int(np.flatnonzero(mask)[-1])
    labels = every[:, last : last + 1].copy()
    if not streaming:
        return Batch(inputs, labels, (tasks.RUNNING_N,))
    return Batch(inputs, labels, (tasks.RUNNING_N,), np.ascontiguousarray(every.T[:, :, None]), mask[:, None].copy())
