"""Native vector environment: K memory-task envs (N-parity, N-DMS, running parity, the token tasks) stepped as
numpy arrays in one process.

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
from memory_envs.envs import (
    DEFAULT_GROUP, EPISODES_PER_DRAW, INFO_KEYS, NO_ACCURACY, EnvConfig, RunningParityConfig, TokenTaskConfig,
    check_render_mode,
)


class MemoryTaskVectorEnv(VectorEnv):
    """``num_envs`` copies of a memory-task env (see :class:`memory_envs.NParityEnv` for the contract).

    ``autoreset_mode`` (``metadata["autoreset_mode"]``) is one of Gymnasium's, with the results of a
    ``SyncVectorEnv`` of single envs in the same mode and with the same seeds:

    * ``NEXT_STEP`` (default): the step after an env terminates resets it (its action is ignored,
      reward 0, the info is the reset info) and returns the first bit of the next trial.
    * ``SAME_STEP``: the step on which an env terminates resets it at once and returns the next trial's
      first bit and reset info; ``info["final_obs"]`` (object array, None for other envs) and
      ``info["final_info"]`` (the step's info, zeros for other envs) hold what the step ended with,
      ``_final_obs`` / ``_final_info`` mark the envs that ended.
    * ``DISABLED``: no autoreset; reset ended envs with ``reset(options={"reset_mask": mask})``.

    Info: the single env's keys, batched (``label`` int8, ``ns`` int64, ``head_accuracy`` float64,
    each [num_envs, max_heads]; ``is_success`` bool [num_envs]), each with its ``_key`` mask.
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
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ) -> None:
        self._setup(EnvConfig.build(task, n, heads, mode, p, length_range, max_heads), num_envs, render_mode,
                    autoreset_mode)

    def _setup(self, config: EnvConfig, num_envs: int, render_mode: str | None,
               autoreset_mode: AutoresetMode | str) -> None:
        """Take a checked ``config`` (what the subclasses build) and set the spaces and the envs' state."""
        tasks.check_positive_int(num_envs, "num_envs")
        check_render_mode(render_mode, self.metadata["render_modes"])
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            allowed = [mode.value for mode in AutoresetMode]
            raise ValueError(f"autoreset_mode must be one of {allowed}, got {autoreset_mode!r}") from None
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.config = config
        self.config.check_memory(num_envs, "vector env")
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
        self._final_step = np.zeros(self.num_envs, dtype=np.int64)
        self._correct = np.zeros((self.num_envs, self.config.max_heads), dtype=np.int64)
        self._num_scored = np.ones((self.num_envs, self.config.max_heads), dtype=np.int64)
        self._ns = np.zeros((self.num_envs, self.config.max_heads), dtype=np.int64)
        self._active = np.ones(self.num_envs, dtype=np.int64)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._ended = np.zeros(self.num_envs, dtype=bool)

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
            obs = np.zeros((k, max_length + 1), dtype=self.single_observation_space.dtype)
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
        config = self.config.with_ns(ns)
        config.check_memory(self.num_envs, "vector env")
        self.config = config
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
        self._final_step[idx] = self.config.final_steps(lengths)

    def _observe(self, rows: np.ndarray) -> np.ndarray:
        """The observations at the flat ``rows``, shaped as the batched observation space ([K, 1] or [K])."""
        return self._obs.take(rows).reshape(len(rows), *self.single_observation_space.shape)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        """Start a new trial in every env, or in those of ``options["reset_mask"]`` (bool [num_envs]).

        ``seed``: an int seeds env i with ``seed + i``, a list seeds env i with its entry (None: keep
        drawing); only the envs being reset are seeded, as in Gymnasium's ``SyncVectorEnv``.
        """
        mask = self._reset_mask(options)
        if seed is not None:
            seeds = [seed + i for i in self._arange] if isinstance(seed, (int, np.integer)) else list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} ints, got {seed!r}")
            for i in np.flatnonzero(mask):
                if seeds[i] is not None:
                    self._rngs[i] = seeding.np_random(int(seeds[i]))[0]
                    self._block_ptr[i] = EPISODES_PER_DRAW
        idx = np.flatnonzero(mask)
        self._start_trials(idx)
        self._autoreset[idx] = False
        self._ended[idx] = False
        info = self._start_info(mask)
        if not mask.all():  # as SyncVectorEnv: only the reset envs report an info, the rest are zeros
            info = self._only(info, mask)
        return self._observe(self._row0 + self._t), info

    def _reset_mask(self, options: dict | None) -> np.ndarray:
        if options is None or "reset_mask" not in options:
            return np.ones(self.num_envs, dtype=bool)
        mask = options["reset_mask"]
        if not isinstance(mask, np.ndarray) or mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
            raise ValueError(f"options['reset_mask'] must be a bool numpy array of shape ({self.num_envs},), "
                             f"got {mask!r}")
        if not mask.any():
            raise ValueError("options['reset_mask'] must hold at least one True")
        return mask

    def _start_info(self, envs: np.ndarray, label: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """An info whose entries are the reset info (no label, no accuracy, not a success, the Ns in
        force), each key marked for the envs in ``envs`` (bool mask); ``step`` fills in the rest."""
        k, h = self.num_envs, self.config.max_heads
        return {
            "label": np.full((k, h), -1, dtype=np.int8) if label is None else label,
            "_label": envs.copy(),
            "ns": self._ns.copy(),
            "_ns": envs.copy(),
            "head_accuracy": np.full((k, h), NO_ACCURACY),
            "_head_accuracy": envs.copy(),
            "is_success": np.zeros(k, dtype=bool),
            "_is_success": envs.copy(),
        }

    @staticmethod
    def _only(info: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
        """``info`` with the entries of envs outside ``mask`` zeroed and unmarked (Gymnasium's batching)."""
        out = {}
        for key in INFO_KEYS:
            out[key] = np.zeros_like(info[key])
            out[key][mask] = info[key][mask]
            out["_" + key] = mask.copy()
        return out

    def _check_actions(self, actions: Any) -> np.ndarray:
        arr = np.asarray(actions)
        shape = (self.num_envs, self.config.max_heads) if self.config.multi_head else (self.num_envs,)
        classes = self.config.classes
        if arr.shape != shape or arr.dtype.kind not in "iu" or ((arr < 0) | (arr >= classes)).any():
            allowed = "{0, 1}" if classes == 2 else f"[0, {classes})"
            raise ValueError(
                f"actions must be an integer array of shape {shape} with values in {allowed}, "
                f"got {arr.dtype} array of shape {arr.shape}"
            )
        return arr.reshape(self.num_envs, -1)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = self._check_actions(actions)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._ended.any():
            raise RuntimeError(
                f"envs {np.flatnonzero(self._ended).tolist()} have ended and autoreset_mode is DISABLED: "
                "reset them with reset(options={'reset_mask': mask}) before step()"
            )
        t = self._t
        labels = self._labels.take(self._row0 + t, axis=0)  # -1 on an autoreset step (the spare row)
        hits = actions == labels  # False wherever nothing is scored: those labels are -1
        if self.config.mode == "final":
            hits &= (t == self._final_step)[:, None]
        self._correct += hits
        rewards = (hits[:, 0] if hits.shape[1] == 1 else hits.sum(axis=1)) / self._active
        stepping = ~self._autoreset
        t += stepping
        terminated = stepping & (t == self._length)
        info = self._start_info(np.ones(self.num_envs, dtype=bool), labels)
        if terminated.any():
            done = np.flatnonzero(terminated)
            used = np.arange(self.config.max_heads)[None, :] < self._active[done, None]
            info["head_accuracy"][done] = np.where(used, self._correct[done] / self._num_scored[done], NO_ACCURACY)
            info["is_success"][done] = np.all((self._correct[done] == self._num_scored[done]) | ~used, axis=1)
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            obs = self._observe(self._row0 + t)
            if terminated.any():
                info = self._restart_same_step(info, obs, terminated)
            return obs, rewards, terminated, np.zeros(self.num_envs, dtype=bool), info
        restarting = np.flatnonzero(self._autoreset)
        if restarting.size:  # NEXT_STEP: the ended envs start their next trial now, with the reset info
            self._start_trials(restarting)
            rewards[restarting] = 0.0
            info["ns"][restarting] = self._ns[restarting]
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._autoreset = terminated
        else:
            self._ended |= terminated
        obs = self._observe(self._row0 + t)
        return obs, rewards, terminated, np.zeros(self.num_envs, dtype=bool), info

    def _restart_same_step(self, info: dict, obs: np.ndarray, terminated: np.ndarray) -> dict:
        """SAME_STEP: move the ended envs' step results to final_obs/final_info and start their next trial."""
        done = np.flatnonzero(terminated)
        final_obs = np.full(self.num_envs, None, dtype=object)
        for i in done:
            final_obs[i] = obs[i].copy()
        final_info = self._only(info, terminated)
        self._start_trials(done)
        obs[done] = self._observe(self._row0[done])
        info["label"][done] = -1  # the reset info of the next trial
        info["ns"][done] = self._ns[done]
        info["head_accuracy"][done] = NO_ACCURACY
        info["is_success"][done] = False
        info.update(final_obs=final_obs, _final_obs=terminated.copy(), final_info=final_info,
                    _final_info=terminated.copy())
        return info


class NParityVectorEnv(MemoryTaskVectorEnv):
    """Vectorized :class:`memory_envs.NParityEnv` (``gym.make_vec("NParity-v0", ...)``)."""

    def __init__(
        self, num_envs: int = 1, n: int | None = None, heads: Sequence[int] | None = None, **kwargs: Any
    ) -> None:
        super().__init__("parity", num_envs=num_envs, n=n, heads=heads, **kwargs)


class NDMSVectorEnv(MemoryTaskVectorEnv):
    """Vectorized :class:`memory_envs.NDMSEnv` (``gym.make_vec("NDMS-v0", ...)``)."""

    def __init__(
        self, num_envs: int = 1, n: int | None = None, heads: Sequence[int] | None = None, **kwargs: Any
    ) -> None:
        super().__init__("dms", num_envs=num_envs, n=n, heads=heads, **kwargs)


class RunningParityVectorEnv(MemoryTaskVectorEnv):
    """Vectorized :class:`memory_envs.RunningParityEnv` (``gym.make_vec("RunningParity-v0", ...)``)."""

    def __init__(self, num_envs: int = 1, modulus: int = tasks.DEFAULT_MODULUS, mode: str = "every_step",
                 p: float | str | None = None, length_range: Sequence[int] | None = None,
                 render_mode: str | None = None, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        self._setup(RunningParityConfig.build(modulus, mode, p, length_range), num_envs, render_mode, autoreset_mode)


class WordProblemVectorEnv(MemoryTaskVectorEnv):
    """Vectorized :class:`memory_envs.WordProblemEnv` (``gym.make_vec("WordProblem-v0", ...)``)."""

    def __init__(self, num_envs: int = 1, group: str = DEFAULT_GROUP, mode: str = "every_step",
                 length_range: Sequence[int] | None = None, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        self._setup(TokenTaskConfig.word_problem(group, mode, length_range), num_envs, render_mode, autoreset_mode)


class ModularArithmeticVectorEnv(MemoryTaskVectorEnv):
    """Vectorized :class:`memory_envs.ModularArithmeticEnv` (``gym.make_vec("ModularArithmetic-v0", ...)``)."""

    def __init__(self, num_envs: int = 1, mode: str = "every_step", length_range: Sequence[int] | None = None,
                 render_mode: str | None = None, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
        self._setup(TokenTaskConfig.build(tasks.MOD_ARITHMETIC, mode, length_range), num_envs, render_mode,
                    autoreset_mode)
