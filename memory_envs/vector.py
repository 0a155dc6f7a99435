"""Native vector environment: K memory-task envs stepped as numpy arrays in one process.

Env i draws its trials from its own generator exactly as a single env seeded with
``seed + i`` does, so trajectories match K single envs with matching seeds. Resets are
batched: the labels of all envs that start a trial in a step are computed in one call.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.vector.vector_env import AutoresetMode

from memory_envs import tasks
from memory_envs.envs import EPISODES_PER_DRAW, EnvConfig


class MemoryTaskVectorEnv(VectorEnv):
    """``num_envs`` copies of a memory-task env (see :class:`memory_envs.NParityEnv` for the contract).

    Autoreset follows Gymnasium's default ``NEXT_STEP`` mode: the step after an env terminates
    resets it (its action is ignored, reward 0) and returns the first bit of the next trial.

    Info arrays (each with a ``_key`` mask of the envs it holds for): ``label`` int8 [num_envs, max_heads]
    (-1 where no label), ``ns`` [num_envs, max_heads] (0 for unused entries), and at episode end
    ``head_accuracy`` [num_envs, max_heads] (NaN for unused entries) and ``is_success``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        task: str,
        num_envs: int = 1,
        n: int | None = None,
        heads: Sequence[int] | None = None,
        mode: str = "final",
        p: float | str | None = None,
        length_range: Sequence[int] | None = None,
        max_heads: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        tasks.check_positive_int(num_envs, "num_envs")
        if render_mode is not None:
            raise ValueError(f"render_mode must be None for the vector env, got {render_mode!r}")
        self.config = EnvConfig.build(task, n, heads, mode, p, length_range, max_heads)
        self.num_envs = int(num_envs)
        self.render_mode = None
        self.single_observation_space = self.config.observation_space()
        self.single_action_space = self.config.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs = [seeding.np_random()[0] for _ in range(self.num_envs)]
        self._arange = np.arange(self.num_envs)
        self._capacity = 0
        self._allocate(self.config.lengths[1] - 1)
        self._t = np.zeros(self.num_envs, dtype=np.int64)
        self._length = np.zeros(self.num_envs, dtype=np.int64)
        self._correct = np.zeros((self.num_envs, self.config.max_heads), dtype=np.int64)
        self._num_scored = np.ones((self.num_envs, self.config.max_heads), dtype=np.int64)
        self._ns = np.zeros((self.num_envs, self.config.max_heads), dtype=np.int64)
        self._active = np.ones(self.num_envs, dtype=np.int64)
        self._all = np.ones(self.num_envs, dtype=bool)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def _allocate(self, max_length: int) -> None:
        """(Re)size the trial blocks and the current-trial arrays for trials up to ``max_length`` bits."""
        k, h = self.num_envs, self.config.max_heads
        self._block_bits = np.zeros((k, EPISODES_PER_DRAW, max_length), dtype=np.uint8)
        self._block_lengths = np.zeros((k, EPISODES_PER_DRAW), dtype=np.int64)
        self._block_ptr = np.full(k, EPISODES_PER_DRAW, dtype=np.int64)
        if max_length > self._capacity:  # current trials keep running: grow, never shrink
            old = self._capacity
            # Row i * (capacity + 1) + t of the flat arrays holds env i's step t (one spare row:
            # the terminal observation, and the label row read on an autoreset step).
            obs = np.zeros((k, max_length + 1), dtype=np.float32)
            labels = np.full((k, max_length + 1, h), -1, dtype=np.int8)
            if old:
                obs[:, : old + 1] = self._obs.reshape(k, old + 1)
                labels[:, : old + 1] = self._labels.reshape(k, old + 1, h)
            self._obs, self._labels = obs.reshape(-1), labels.reshape(-1, h)
            self._capacity = max_length
            self._row0 = np.arange(k) * (max_length + 1)

    @property
    def ns(self) -> tuple[int, ...]:
        """The Ns scored by trials that start from now on."""
        return self.config.ns

    def set_ns(self, ns: Sequence[int]) -> None:
        """Score ``ns`` in every trial that starts from now on (running trials finish with their Ns)."""
        self.config = self.config.with_ns(ns)
        self._allocate(self.config.lengths[1] - 1)

    def _start_trials(self, idx: np.ndarray) -> None:
        """Begin the next trial of every env in ``idx``, drawing a new block where one is used up."""
        for i in idx[self._block_ptr[idx] == EPISODES_PER_DRAW]:
            bits, lengths = self.config.draw_block(self._rngs[i])
            self._block_bits[i, :, : bits.shape[1]] = bits
            self._block_lengths[i] = lengths
            self._block_ptr[i] = 0
        episode = self._block_ptr[idx]
        self._block_ptr[idx] += 1
        bits = self._block_bits[idx, episode]
        lengths = self._block_lengths[idx, episode]
        width, k, cap = bits.shape[1], len(self.config.ns), self._capacity + 1
        obs = self._obs.reshape(self.num_envs, cap)
        labels = self._labels.reshape(self.num_envs, cap, -1)
        obs[idx] = 0.0
        obs[idx, :width] = bits * (np.arange(width) < lengths[:, None])
        labels[idx] = -1
        labels[idx, :width, :k] = self.config.trial_labels(bits, lengths)
        self._num_scored[idx, :k] = self.config.num_scored(lengths)
        self._ns[idx] = 0
        self._ns[idx, :k] = self.config.ns
        self._active[idx] = k
        self._correct[idx] = 0
        self._t[idx] = 0
        self._length[idx] = lengths

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        """Start a new trial in every env; ``seed`` int seeds env i with ``seed + i``, a list seeds each env."""
        if seed is not None:
            seeds = [seed + i for i in self._arange] if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} ints, got {seed!r}")
            self._rngs = [seeding.np_random(int(s))[0] for s in seeds]
            self._block_ptr[:] = EPISODES_PER_DRAW
        self._start_trials(self._arange)
        self._autoreset[:] = False
        return self._obs.take(self._row0)[:, None], {"ns": self._ns.copy(), "_ns": self._all.copy()}

    def _check_actions(self, actions: Any) -> np.ndarray:
        arr = np.asarray(actions)
        shape = (self.num_envs, self.config.max_heads) if self.config.multi_head else (self.num_envs,)
        if arr.shape != shape or arr.dtype.kind not in "iu" or (arr & ~1).any():
            raise ValueError(
                f"actions must be an integer array of shape {shape} with values in {{0, 1}}, "
                f"got {arr.dtype} array of shape {arr.shape}"
            )
        return arr.reshape(self.num_envs, -1)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = self._check_actions(actions)
        t = self._t
        labels = self._labels.take(self._row0 + t, axis=0)
        hits = actions == labels  # False wherever nothing is scored: those labels are -1
        if self.config.mode == "final":
            hits &= (t == self._length - 1)[:, None]
        self._correct += hits
        rewards = (hits[:, 0] if hits.shape[1] == 1 else hits.sum(axis=1)) / self._active
        stepping = ~self._autoreset
        t += stepping
        terminated = stepping & (t == self._length)
        info: dict[str, Any] = {"label": labels, "_label": stepping, "ns": self._ns.copy(), "_ns": self._all}
        if terminated.any():
            done = np.flatnonzero(terminated)
            accuracy = np.full((self.num_envs, self.config.max_heads), np.nan)
            used = self._ns[done] > 0
            accuracy[done] = np.where(used, self._correct[done] / self._num_scored[done], np.nan)
            info["head_accuracy"], info["_head_accuracy"] = accuracy, terminated
            info["is_success"] = np.zeros(self.num_envs, dtype=bool)
            info["is_success"][done] = np.all((accuracy[done] == 1.0) | ~used, axis=1)
            info["_is_success"] = terminated
        restarting = np.flatnonzero(self._autoreset)
        if restarting.size:
            self._start_trials(restarting)
            rewards[restarting] = 0.0
        self._autoreset = terminated
        obs = self._obs.take(self._row0 + t)[:, None]
        return obs, rewards, terminated, np.zeros(self.num_envs, dtype=bool), info


class NParityVectorEnv(MemoryTaskVectorEnv):
    """Vectorized :class:`memory_envs.NParityEnv` (``gym.make_vec("NParity-v0", ...)``)."""

    def __init__(self, num_envs: int = 1, n: int | None = None, heads: Sequence[int] | None = None, **kwargs: Any):
        super().__init__("parity", num_envs=num_envs, n=n, heads=heads, **kwargs)


class NDMSVectorEnv(MemoryTaskVectorEnv):
    """Vectorized :class:`memory_envs.NDMSEnv` (``gym.make_vec("NDMS-v0", ...)``)."""

    def __init__(self, num_envs: int = 1, n: int | None = None, heads: Sequence[int] | None = None, **kwargs: Any):
        super().__init__("dms", num_envs=num_envs, n=n, heads=heads, **kwargs)
