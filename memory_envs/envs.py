"""N-parity, N-DMS, running parity and the token tasks (group word problems, modular arithmetic) as
Gymnasium environments (one trial per episode).

One concept, the environment, with its argument checks (``EnvConfig``) and its info contract, which
the native vector env (``memory_envs.vector``) shares; the task rules themselves live in
``memory_envs.tasks``."""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass, replace
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from memory_envs import groups, sizes, tasks

MODES: tuple[str, ...] = ("final", "every_step")
EPISODES_PER_DRAW = 32
"""Trials drawn from an env's generator at once (amortizes generator calls; same in single and vector envs)."""


@dataclass(frozen=True)
class EnvConfig:
    """Validated settings shared by the single and the vector environment.

    ``multi_head`` is False only for the ``n=`` form (action Discrete(2)); with ``heads=``
    the action is MultiDiscrete([2] * max_heads) and the first ``len(ns)`` entries are scored.
    """

    task: str
    ns: tuple[int, ...]
    mode: str
    p: float | str | None
    length_range: tuple[int, int] | None
    multi_head: bool
    max_heads: int

    @classmethod
    def build(
        cls,
        task: str,
        n: int | None = None,
        heads: Sequence[int] | None = None,
        mode: str = "final",
        p: float | str | None = None,
        length_range: Sequence[int] | None = None,
        max_heads: int | None = None,
    ) -> "EnvConfig":
        tasks.check_task(task)
        if n is not None and heads is not None:
            raise ValueError("give at most one of n (one N, Discrete action) or heads (a list of Ns)")
        if n is None and heads is None:
            n = tasks.DEFAULT_N[task]
        if n is not None:
            if isinstance(n, (list, tuple, np.ndarray)):
                raise TypeError(f"n must be one integer (use heads= for several Ns), got {n!r}")
            ns = tasks.check_ns(task, n, argument="n")
        else:
            if isinstance(heads, numbers.Integral):
                raise TypeError(f"heads must be a list of integers, got {heads!r}")
            ns = tasks.check_ns(task, heads, argument="heads")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        multi_head = heads is not None
        max_heads = tasks.check_positive_int(len(ns) if max_heads is None else max_heads, "max_heads")
        if not multi_head and max_heads != 1:
            raise ValueError(f"max_heads must be 1 with n= (one head, Discrete action), got {max_heads}")
        config = cls(task, ns, mode, tasks.check_p(task, p), None, multi_head, int(max_heads))
        if length_range is not None:
            length_range = tasks.check_length_range(length_range, max(ns))
        return config.with_ns(ns, length_range)

    def with_ns(self, ns: Sequence[int], length_range: tuple[int, int] | None = None) -> "EnvConfig":
        """The same settings scoring ``ns``; checks they fit the action space and the length range."""
        ns = tasks.check_ns(self.task, ns, argument="ns")
        if not self.multi_head and len(ns) != 1:
            raise ValueError(f"ns must hold exactly one N for an env made with n=, got {list(ns)}")
        if len(ns) > self.max_heads:
            raise ValueError(f"ns {list(ns)} has more heads than the action space holds (max_heads={self.max_heads})")
        length_range = length_range if length_range is not None else self.length_range
        if length_range is not None:
            tasks.check_length_range(length_range, max(ns))
        config = replace(self, ns=ns, length_range=length_range)
        config.check_memory(1, "env")
        return config

    def memory_bytes(self, num_envs: int) -> int:
        """Bytes ``num_envs`` envs hold: a block of EPISODES_PER_DRAW trials of the longest length (uint8),
        and one trial's observations (float32) and labels (int8) per head, with their temporaries."""
        longest = self.lengths[1] - 1
        return num_envs * (EPISODES_PER_DRAW * longest + (longest + 1) * (6 + 3 * self.max_heads))

    def check_memory(self, num_envs: int, what: str) -> None:
        """Refuse settings whose trials would not fit in memory, naming the arguments and the bytes."""
        sizes.check_fits(self.memory_bytes(num_envs), f"{what} with {self.settings()} and length_range "
                                                      f"{self.lengths} (num_envs={num_envs})")

    def settings(self) -> str:
        """The arguments that size a trial besides its length, for messages."""
        return f"n/heads up to {max(self.ns)}, max_heads {self.max_heads}"

    @property
    def classes(self) -> int:
        """The values an action entry takes, 0 .. classes - 1 (2 for the windowed tasks)."""
        return 2

    @property
    def lengths(self) -> tuple[int, int]:
        """The half-open sequence-length range in force (explicit, or the paper's default for max(ns))."""
        return self.length_range if self.length_range is not None else tasks.default_length_range(max(self.ns))

    def observation_space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)

    def action_space(self) -> spaces.Space:
        return spaces.MultiDiscrete([2] * self.max_heads) if self.multi_head else spaces.Discrete(2)

    def draw_block(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw EPISODES_PER_DRAW trials: bits uint8 [E, L] (L = longest possible) and lengths [E]."""
        low, high = self.lengths
        lengths = tasks.sample_lengths(rng, EPISODES_PER_DRAW, (low, high))
        bits = tasks.sample_bits(rng, EPISODES_PER_DRAW, high - 1, self.p)
        return bits, lengths

    def trial_labels(self, bits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Labels int8 [R, L, K] of trials ``bits`` [R, L] with ``lengths`` [R], one column per active N.

        A label is -1 where the step has none: before N bits (t + 1 < N) and beyond the trial.
        A step scores head k iff its label is not -1 and, in ``"final"`` mode, it is the last step;
        since no action equals -1, ``action == label`` is False exactly where nothing is scored.
        """
        labels, has_label = tasks.streaming_labels(self.task, bits, self.ns)
        labels[:, ~has_label] = -1
        beyond = np.arange(bits.shape[1])[None, :, None] >= lengths[:, None, None]
        np.copyto(labels, np.int8(-1), where=beyond)
        return labels

    def num_scored(self, lengths: np.ndarray) -> np.ndarray:
        """Scored actions per trial and head, [R, K]: 1 in ``"final"`` mode, M - N + 1 in ``"every_step"``."""
        if self.mode == "final":
            return np.ones((len(lengths), len(self.ns)), dtype=np.int64)
        return lengths[:, None] - np.asarray(self.ns)[None, :] + 1

    def final_steps(self, lengths: np.ndarray) -> np.ndarray:
        """The step (0-based) whose action ``"final"`` mode scores, per trial of ``lengths`` [R]: the last one."""
        return np.asarray(lengths, dtype=np.int64) - 1

    def format_inputs(self, inputs: np.ndarray) -> str:
        """The inputs seen so far, for ``render()``."""
        return "bits=" + "".join(str(b) for b in inputs)

    def padded_ns(self) -> np.ndarray:
        """``info["ns"]``: the active Ns as int64 [max_heads], 0 in unused entries."""
        return pad_ns(self.ns, self.max_heads)


def pad_ns(ns: Sequence[int], max_heads: int) -> np.ndarray:
    """``ns`` as int64 [max_heads], 0 in unused entries (the form of ``info["ns"]``)."""
    padded = np.zeros(max_heads, dtype=np.int64)
    padded[: len(ns)] = ns
    return padded


INFO_KEYS: tuple[str, ...] = ("label", "ns", "head_accuracy", "is_success")
"""The keys of every ``info`` (reset and step, single and vector env)."""
NO_ACCURACY = -1.0
"""``info["head_accuracy"]`` where there is none (before the episode's end, unused heads). Not NaN:
Gymnasium's ``check_env`` compares infos with ``np.allclose``, for which NaN never equals NaN."""

def check_render_mode(render_mode: str | None, supported: Sequence[str]) -> None:
    """Raise TypeError for a render mode the env cannot draw.

    TypeError (not ValueError) because callers probe render modes that way: SB3's ``make_vec_env``
    passes ``render_mode="rgb_array"`` and builds the env again without it on TypeError.
    """
    if render_mode is not None and render_mode not in supported:
        raise TypeError(f"render_mode must be None or one of {list(supported)}, got {render_mode!r}")


def check_action_single(config: EnvConfig, action: Any) -> np.ndarray | int:
    """Validate one env's action; returns an int (Discrete) or an int array [max_heads]."""
    if not config.multi_head:
        if isinstance(action, np.ndarray) and action.shape in ((), (1,)) and action.dtype.kind in "iu":
            action = action.item() if action.shape == () else int(action[0])
        classes = config.classes
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool) and 0 <= action < classes:
            return int(action)
        allowed = "0 or 1" if classes == 2 else f"an integer in [0, {classes})"
        raise ValueError(f"action must be {allowed} (Discrete({classes})), got {action!r}")
    arr = np.asarray(action)
    if arr.shape != (config.max_heads,) or arr.dtype.kind not in "iu" or ((arr != 0) & (arr != 1)).any():
        raise ValueError(
            f"action must be an integer array of shape ({config.max_heads},) with values in {{0, 1}} "
            f"(MultiDiscrete([2] * {config.max_heads})), got {action!r}"
        )
    return arr


class MemoryTaskEnv(gym.Env):
    """A memory task (N-parity, N-DMS or running parity) as an episodic env; see :class:`NParityEnv` and
    :class:`RunningParityEnv` for the contracts."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        task: str,
        n: int | None = None,
        heads: Sequence[int] | None = None,
        mode: str = "final",
        p: float | str | None = None,
        length_range: Sequence[int] | None = None,
        max_heads: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self._setup(EnvConfig.build(task, n, heads, mode, p, length_range, max_heads), render_mode)

    def _setup(self, config: EnvConfig, render_mode: str | None) -> None:
        """Take a checked ``config`` (what the subclasses build) and set the spaces and episode state."""
        self.config = config
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.render_mode = render_mode
        self.observation_space = self.config.observation_space()
        self.action_space = self.config.action_space()
        self._pending_config: EnvConfig | None = None
        self._block_ptr = EPISODES_PER_DRAW
        self._t = 0
        self._length = 0
        self._last_action: Any = None

    @property
    def ns(self) -> tuple[int, ...]:
        """The Ns scored in the current episode."""
        return self.config.ns

    def set_ns(self, ns: Sequence[int]) -> None:
        """Score ``ns`` from the next episode on (used by curricula); the action space does not change."""
        self._pending_config = self.config.with_ns(ns)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._block_ptr = EPISODES_PER_DRAW
        if self._pending_config is not None:
            self.config, self._pending_config = self._pending_config, None
            self._block_ptr = EPISODES_PER_DRAW
        if self._block_ptr == EPISODES_PER_DRAW:
            self._block_bits, self._block_lengths = self.config.draw_block(self.np_random)
            self._block_ptr = 0
        i = self._block_ptr
        self._block_ptr += 1
        length = int(self._block_lengths[i])
        bits = self._block_bits[i : i + 1, :length]
        lengths = self._block_lengths[i : i + 1]
        self._bits = bits[0]
        shape = self.observation_space.shape  # (1,) for a bit, () for a token
        self._obs = np.zeros((length + 1, *shape), dtype=self.observation_space.dtype)
        self._obs[:length] = bits[0].reshape(length, *shape)
        k, rows = len(self.config.ns), length + 1
        # The infos of the episode, row 0 for reset() and row t + 1 for the step on x_{t+1}: one
        # allocation per episode, and no two infos share memory (users keep them, e.g. in buffers).
        self._info_label = np.full((rows, self.config.max_heads), -1, dtype=np.int8)
        self._info_label[1:, :k] = self.config.trial_labels(bits, lengths)[0]
        self._info_ns = np.tile(self.config.padded_ns(), (rows, 1))
        self._info_accuracy = np.full((rows, self.config.max_heads), NO_ACCURACY)
        self._info_success = np.zeros(rows, dtype=bool)
        self._labels = self._info_label[1:, :k]
        self._num_scored = self.config.num_scored(lengths)[0]
        self._correct = np.zeros(k, dtype=np.int64)
        self._final = self.config.mode == "final"
        self._final_step = int(self.config.final_steps(lengths)[0])
        if not self.config.multi_head:  # fast path: plain Python values
            self._labels_list = self._labels[:, 0].tolist()
        self._t, self._length, self._last_action = 0, length, None
        return self._obs[0], self._info(0)

    def _info(self, row: int) -> dict[str, np.ndarray]:
        return {
            "label": self._info_label[row],
            "ns": self._info_ns[row],
            "head_accuracy": self._info_accuracy[row],
            "is_success": self._info_success[row, ...],  # a 0-d array: vector envs batch it as bool
        }

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._t >= self._length:
            raise RuntimeError("the episode has ended: call reset() before step()")
        action = check_action_single(self.config, action)
        t = self._t
        terminated = t + 1 == self._length
        scoring = t == self._final_step or not self._final
        if not self.config.multi_head:
            hit = scoring and action == self._labels_list[t]
            self._correct[0] += hit
            reward = float(hit)
        else:
            k = len(self.config.ns)
            hits = (action[:k] == self._labels[t, :k]) & scoring
            self._correct += hits
            reward = float(hits.sum()) / k
        self._t = t + 1
        self._last_action = action
        if terminated:
            self._info_accuracy[t + 1, : len(self._correct)] = self._correct / self._num_scored
            self._info_success[t + 1] = (self._correct == self._num_scored).all()
        return self._obs[self._t], reward, terminated, False, self._info(t + 1)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        seen = self.config.format_inputs(self._bits[: self._t + 1 if self._t < self._length else self._length])
        label = self._labels[self._t - 1].tolist() if self._t > 0 else None
        return (
            f"{self.config.task} ns={list(self.config.ns)} t={self._t}/{self._length} {seen} "
            f"last_label={label} last_action={self._last_action}"
        )


_ENV_DOC = """{title}

    ## Description
    {description}

    A trial is a bit sequence x_1..x_M with M ~ U[N_max + 2, 4 N_max + 2) (upper bound excluded),
    fed one bit per step. The agent cannot see when the trial ends, so it must hold the answer
    for the last N bits at every step. With ``heads=[...]`` one trial is scored for several Ns at
    once (one action entry per N; all heads see the same bits).

    Timing contract: ``reset()`` returns x_1; the action taken after observing x_t is scored
    against the label of the window ending at x_t. In ``mode="final"`` (the paper) only the action
    after the last bit x_M is scored; in ``mode="every_step"`` every action from step t = N on is.

    ## Action Space
    ``Discrete(2)`` with ``n=N``; ``MultiDiscrete([2] * max_heads)`` with ``heads=[...]``
    (``max_heads`` defaults to ``len(heads)``; entries beyond the active heads are ignored, so a
    curriculum can add heads without changing the space). Anything else raises ValueError.

    ## Observation Space
    ``Box(0, 1, shape=(1,), float32)``: the current bit. The terminal observation is 0.

    ## Rewards
    Each step's reward is the number of heads whose action is scored at that step and correct,
    divided by the number of active heads K. ``"final"``: the maximum return is 1 and a random
    policy's expected return is 0.5. ``"every_step"``: the maximum return is
    sum_k (M - N_k + 1) / K and a random policy gets half of it (in expectation over M,
    M = (low + high - 1) / 2). :class:`memory_envs.OraclePolicy` reaches the maximum.

    ## Episode End
    The episode terminates after the action on the last bit x_M. There is no truncation.

    ## Info
    The same keys, shapes and numpy dtypes after ``reset()`` and every ``step()`` (H = ``max_heads``,
    1 with ``n=``), so vector envs and RL libraries can batch them:
    ``label`` int8 [H] (the labels the action was scored against; -1 where no label exists yet, in
    unused entries and after ``reset()``), ``ns`` int64 [H] (the active Ns, 0 in unused entries),
    ``head_accuracy`` float64 [H] (-1 until the episode's last step; then per active head the
    fraction of its scored actions that were correct, -1 in unused entries) and ``is_success``
    bool [] (a 0-d array: False until the last step, then whether every scored action was correct).

    ## Arguments
    ``n`` (one N, >= {min_n}; default {default_n} when neither ``n`` nor ``heads`` is given) or
    ``heads`` (a list of distinct Ns, >= {min_n}); ``mode``
    (``"final"`` or ``"every_step"``); ``p`` (bit probability in [0, 1], ``"uniform"`` for
    p ~ U(0, 1) per trial, None for the paper's default: {default_p}); ``length_range``
    ((low, high), high excluded, low >= max N; None for the paper's default); ``max_heads``
    (action entries with ``heads``); ``render_mode`` (None or ``"ansi"``; any other mode raises
    TypeError, which SB3's ``make_vec_env`` takes as "build it without a render mode").

    >>> import gymnasium as gym, memory_envs
    >>> env = gym.make("{env_id}", {example})
    """


class NParityEnv(MemoryTaskEnv):
    def __init__(self, n: int | None = None, heads: Sequence[int] | None = None, **kwargs: Any) -> None:
        super().__init__("parity", n=n, heads=heads, **kwargs)


class NDMSEnv(MemoryTaskEnv):
    def __init__(self, n: int | None = None, heads: Sequence[int] | None = None, **kwargs: Any) -> None:
        super().__init__("dms", n=n, heads=heads, **kwargs)


NParityEnv.__doc__ = _ENV_DOC.format(
    title="N-parity: report the parity of the last N bits.",
    description="The label for N is (x_{M-N+1} + ... + x_M) mod 2.",
    min_n=1,
    default_n=tasks.DEFAULT_N["parity"],
    default_p="'uniform'; a memoryless predictor that knows p already scores 0.5 + 0.5 / (N + 1), "
    "so use p=0.5 where chance must be exactly 0.5",
    env_id="NParity-v0",
    example="n=20",
)
NDMSEnv.__doc__ = _ENV_DOC.format(
    title="N-DMS (delayed match to sample): report whether the bit N - 1 steps back equals the current bit.",
    description="The label for N is 1 if x_{M-N+1} == x_M else 0.",
    min_n=2,
    default_n=tasks.DEFAULT_N["dms"],
    default_p="0.5",
    env_id="NDMS-v0",
    example="heads=[2, 3, 4]",
)


@dataclass(frozen=True)
class RunningParityConfig(EnvConfig):
    """The settings of running parity: one head, no N (``ns`` is ``(0,)``, see ``tasks.RUNNING_N``), labels
    (x_1 + ... + x_t) mod ``modulus`` at every step, trial lengths U[low, high) (default the protocol's
    training range 3-40)."""

    modulus: int = tasks.DEFAULT_MODULUS

    @classmethod
    def build(cls, modulus: int = tasks.DEFAULT_MODULUS, mode: str = "every_step", p: float | str | None = None,
              length_range: Sequence[int] | None = None) -> "RunningParityConfig":
        modulus = tasks.check_modulus(modulus)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        lengths = tasks.check_running_lengths(length_range)
        config = cls(tasks.RUNNING_PARITY, (tasks.RUNNING_N,), mode, tasks.check_p(tasks.RUNNING_PARITY, p), lengths,
                     False, 1, modulus)
        config.check_memory(1, "env")
        return config

    def with_ns(self, ns: Sequence[int], length_range: tuple[int, int] | None = None) -> "EnvConfig":
        raise ValueError("running parity has no N to set (its label covers the whole sequence so far); "
                         "make another env for other lengths (length_range) or another modulus")

    def settings(self) -> str:
        return f"modulus {self.modulus}"

    @property
    def classes(self) -> int:
        return self.modulus

    def action_space(self) -> spaces.Space:
        return spaces.Discrete(self.modulus)

    def trial_labels(self, bits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Labels int8 [R, L, 1]: the running sum mod k at every step of the trial, -1 beyond it."""
        labels = tasks.running_labels(bits, self.modulus).astype(np.int8)[:, :, None]
        np.copyto(labels, np.int8(-1), where=np.arange(bits.shape[1])[None, :, None] >= lengths[:, None, None])
        return labels

    def num_scored(self, lengths: np.ndarray) -> np.ndarray:
        """Scored actions per trial, [R, 1]: 1 in ``"final"`` mode, M in ``"every_step"``."""
        return (np.ones_like(lengths) if self.mode == "final" else np.asarray(lengths, dtype=np.int64))[:, None]


class RunningParityEnv(MemoryTaskEnv):
    """Running parity: report the parity of every bit seen so far (the sum mod ``modulus``).

    ## Description
    State tracking with length generalization (Deletang et al. 2023's "Parity Check", Grazzi et al. 2025's
    parity): a trial is a bit sequence x_1..x_M with M ~ U[low, high) (``length_range``, high excluded;
    default (3, 41): M from 3 to 40, the protocol's training lengths), fed one bit per step. The label at
    step t is (x_1 + ... + x_t) mod k: the parity for k = 2 (``modulus``, default 2), a count mod k
    otherwise (k > 2 needs rotations of the state, which only some architectures have). Unlike N-parity
    there is no window: the answer depends on the whole trial, so the difficulty is the length M, and an
    agent trained on short trials is tested on long ones (docs/state_tracking.md).

    Timing contract: ``reset()`` returns x_1; the action taken after observing x_t is scored against the
    label of x_1..x_t. In ``mode="every_step"`` (the default, the running labels of Grazzi et al.) every
    action is scored; in ``mode="final"`` (Deletang et al.) only the action after the last bit x_M.

    ## Action Space
    ``Discrete(modulus)``: the predicted sum mod k. Anything else raises ValueError.

    ## Observation Space
    ``Box(0, 1, shape=(1,), float32)``: the current bit. The terminal observation is 0.

    ## Rewards
    1 for a scored, correct action, else 0. ``"every_step"``: the maximum return is M and a random
    policy's expected return is M / k; ``"final"``: 1 and 1 / k. :class:`memory_envs.OraclePolicy`
    reaches the maximum.

    ## Episode End
    The episode terminates after the action on the last bit x_M. There is no truncation.

    ## Info
    The keys of :class:`NParityEnv` with one head: ``label`` int8 [1] (the label the action was scored
    against; -1 after ``reset()``), ``ns`` int64 [1] (always 0: no window N), ``head_accuracy`` float64 [1]
    (-1 until the last step, then the fraction of scored actions that were correct), ``is_success`` bool [].

    ## Arguments
    ``modulus`` (an integer >= 2; default 2); ``mode`` (``"every_step"`` or ``"final"``); ``p`` (bit
    probability in [0, 1] or ``"uniform"``; default 0.5, so the parity is a fair coin at every step);
    ``length_range`` ((low, high), high excluded, low >= 1; default (3, 41)); ``render_mode`` (None or
    ``"ansi"``).

    >>> import gymnasium as gym, memory_envs
    >>> env = gym.make("RunningParity-v0", length_range=(40, 257))  # a test length range
    """

    def __init__(self, modulus: int = tasks.DEFAULT_MODULUS, mode: str = "every_step", p: float | str | None = None,
                 length_range: Sequence[int] | None = None, render_mode: str | None = None) -> None:
        self._setup(RunningParityConfig.build(modulus, mode, p, length_range), render_mode)


DEFAULT_GROUP = "s3"
"""The group of ``WordProblem-v0`` made without ``group=``: S3, the smallest non-abelian group."""


@dataclass(frozen=True)
class TokenTaskConfig(EnvConfig):
    """The settings of a token task (``tasks.token_task``: ``word_<group>`` or ``mod_arithmetic``): one head,
    no N (``ns`` is ``(0,)``), no bit probability (``p`` is None: tokens are uniform), the task's label at
    every labelled step, trial lengths U[low, high) (default the protocol's training range 3-40)."""

    @classmethod
    def build(cls, task: str, mode: str = "every_step", length_range: Sequence[int] | None = None
              ) -> "TokenTaskConfig":
        tasks.token_task(task)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        config = cls(task, (tasks.RUNNING_N,), mode, None, tasks.check_running_lengths(length_range), False, 1)
        config.check_memory(1, "env")
        return config

    @classmethod
    def word_problem(cls, group: str = DEFAULT_GROUP, mode: str = "every_step",
                     length_range: Sequence[int] | None = None) -> "TokenTaskConfig":
        """The word problem of ``group`` (checked first, so a bad one is refused naming ``group``)."""
        return cls.build(tasks.WORD_PREFIX + groups.group(group).name, mode, length_range)

    @functools.cached_property
    def token(self) -> tasks.TokenTask:
        """The task's rules (vocab, classes, sampling, labels)."""
        return tasks.token_task(self.task)

    def with_ns(self, ns: Sequence[int], length_range: tuple[int, int] | None = None) -> "EnvConfig":
        raise ValueError(f"{self.task} has no N to set (its label covers the whole sequence so far); "
                         "make another env for other lengths (length_range)")

    def settings(self) -> str:
        return f"task {self.task}"

    def memory_bytes(self, num_envs: int) -> int:
        """Bytes ``num_envs`` envs hold: a block of EPISODES_PER_DRAW trials (uint8 tokens), one trial's
        observations (int64) and labels (int64 while computed, then int8), with their temporaries."""
        longest = self.lengths[1] - 1
        return num_envs * (EPISODES_PER_DRAW * longest + (longest + 1) * (8 + 8 + 1 + 3 * self.max_heads))

    @property
    def classes(self) -> int:
        return self.token.classes

    def observation_space(self) -> spaces.Discrete:
        return spaces.Discrete(self.token.vocab)

    def action_space(self) -> spaces.Space:
        return spaces.Discrete(self.token.classes)

    def draw_block(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw EPISODES_PER_DRAW trials: tokens uint8 [E, L] (L = longest possible) and lengths [E]."""
        low, high = self.lengths
        lengths = tasks.sample_lengths(rng, EPISODES_PER_DRAW, (low, high))
        return self.token.sample(rng, EPISODES_PER_DRAW, high - 1), lengths

    def trial_labels(self, bits: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Labels int8 [R, L, 1] of token trials: the task's label, -1 at unlabelled steps and beyond the trial."""
        labels = self.token.labels(bits).astype(np.int8)
        labels[:, ~self.token.label_mask(bits.shape[1])] = -1
        np.copyto(labels, np.int8(-1), where=np.arange(bits.shape[1])[None, :] >= lengths[:, None])
        return labels[:, :, None]

    def _labelled(self, lengths: np.ndarray) -> np.ndarray:
        """The label mask of the longest trial in ``lengths`` (every trial's is a prefix of it)."""
        return self.token.label_mask(int(np.max(lengths)))

    def num_scored(self, lengths: np.ndarray) -> np.ndarray:
        """Scored actions per trial, [R, 1]: 1 in ``"final"`` mode, the labelled steps in ``"every_step"``."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if self.mode == "final":
            return np.ones((len(lengths), 1), dtype=np.int64)
        return np.cumsum(self._labelled(lengths), dtype=np.int64)[lengths - 1][:, None]

    def final_steps(self, lengths: np.ndarray) -> np.ndarray:
        """The last labelled step of each trial (modular arithmetic of even length: the last digit, M - 2)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        mask = self._labelled(lengths)
        last = np.maximum.accumulate(np.where(mask, np.arange(len(mask)), -1))
        return last[lengths - 1]

    def format_inputs(self, inputs: np.ndarray) -> str:
        names = [self.token.token_names[t] for t in inputs]
        return "tokens=" + ("".join(names) if self.token.group is None else " ".join(names))


_TOKEN_DOC = """{title}

    ## Description
    {description}

    A trial is a token sequence x_1..x_M with M ~ U[low, high) (``length_range``, high excluded; default
    (3, 41): M from 3 to 40, the training lengths of the length-generalization protocol), fed one token per
    step; the label at step t depends on the whole trial so far, so the difficulty is the length M, and an
    agent trained on short trials is tested on long ones (docs/state_tracking.md). The rules are
    ``memory_envs.tasks.token_task("{task}")``'s; the env calls them.

    Timing contract: ``reset()`` returns x_1; the action taken after observing x_t is scored against the
    label of x_1..x_t. In ``mode="every_step"`` (the default) every labelled step's action is scored; in
    ``mode="final"`` only the action at the trial's last labelled step{final_note}.

    ## Action Space
    ``Discrete({classes})``: {action}. Anything else raises ValueError.

    ## Observation Space
    ``Discrete({vocab})``: the current token as an integer (Gymnasium's convention for a token; SB3 and
    :class:`agents.RecurrentCorePolicy` one-hot encode it). {tokens} The terminal observation is 0.

    ## Rewards
    1 for a scored, correct action, else 0{unlabelled}. ``"every_step"``: the maximum return is the
    number of labelled steps{labelled} and a random policy's expected return is that over {classes};
    ``"final"``: 1 and 1 / {classes}. :class:`memory_envs.OraclePolicy` reaches the maximum.

    ## Starting State
    The first token x_1, drawn with the trial from the env's generator (``reset(seed=...)``).

    ## Episode End
    The episode terminates after the action on the last token x_M. There is no truncation.

    ## Info
    The keys of :class:`NParityEnv` with one head: ``label`` int8 [1] (the label the action was scored
    against; -1 after ``reset()`` and at a step without a label), ``ns`` int64 [1] (always 0: no window
    N), ``head_accuracy`` float64 [1] (-1 until the last step, then the fraction of scored actions that
    were correct), ``is_success`` bool [].

    ## Arguments
    {arguments}``mode`` (``"every_step"`` or ``"final"``); ``length_range`` ((low, high), high excluded,
    low >= 1; default (3, 41)); ``render_mode`` (None or ``"ansi"``).

    >>> import gymnasium as gym, memory_envs
    >>> env = gym.make("{env_id}", {example})
    """


class WordProblemEnv(MemoryTaskEnv):
    def __init__(self, group: str = DEFAULT_GROUP, mode: str = "every_step",
                 length_range: Sequence[int] | None = None, render_mode: str | None = None) -> None:
        self._setup(TokenTaskConfig.word_problem(group, mode, length_range), render_mode)


class ModularArithmeticEnv(MemoryTaskEnv):
    def __init__(self, mode: str = "every_step", length_range: Sequence[int] | None = None,
                 render_mode: str | None = None) -> None:
        self._setup(TokenTaskConfig.build(tasks.MOD_ARITHMETIC, mode, length_range), render_mode)


WordProblemEnv.__doc__ = _TOKEN_DOC.format(
    title="Group word problem: report the product of the group elements seen so far.",
    description="State tracking on a finite group G (Merrill, Petty and Sabharwal 2024): each token x_t is an "
    "element of G, drawn uniformly, and the label at step t is the product x_1 x_2 ... x_t (left factor first; "
    "``memory_envs.groups`` numbers the elements, the identity is 0). Abelian groups (``z60``) are tracked by a "
    "diagonal recurrence; S3 (``s3``) is the smallest non-abelian group, solvable; A5 and S5 are not solvable.",
    task="word_s3", final_note="", classes="|G|", vocab="|G|",
    action="the predicted product so far, an element number",
    tokens="Token g is element g of the group.",
    unlabelled="", labelled=" (M)",
    arguments="``group`` (a group name of ``memory_envs.groups``: ``zK``, ``sN``, ``aN`` or a product such as "
    "``a4xz5``, order at most 127; default ``\"s3\"``); ",
    env_id="WordProblem-v0", example='group="a5"',
)
ModularArithmeticEnv.__doc__ = _TOKEN_DOC.format(
    title="Modular arithmetic without brackets: report the value mod 5 of the expression so far.",
    description="Deletang et al. 2023's task: the odd steps x_1, x_3, ... are digits 0-4 and the even steps "
    "operators +, - and *, all uniform; the label after each digit is the value of the expression so far mod 5 "
    "(``*`` before ``+`` and ``-``, as in Python). Steps after an operator have no label.",
    task="mod_arithmetic",
    final_note=" (the last digit: M - 1 for an odd M, M - 2 for an even one)", classes="5", vocab="8",
    action="the predicted value mod 5",
    tokens="Tokens 0-4 are the digits, 5, 6 and 7 the operators +, - and *.",
    unlabelled=("; an action after an operator is never scored (reward 0 whatever it is, and ``info['label']`` "
                "is -1 there)"),
    labelled=" (ceil(M / 2), the digits)", arguments="", env_id="ModularArithmetic-v0",
    example="length_range=(40, 257)",
)


class OraclePolicy:
    """The exact answer from the observations alone: keeps the inputs seen and applies the task's labels.

    Works for a single env (``obs`` of shape (1,), or a token) and acts on every step; call :meth:`reset`
    at the start of each episode. ``ns`` are the env's active Ns, ``max_heads`` its action width;
    running parity (``task="running_parity"``) takes its ``modulus`` instead, and a token task
    (``word_<group>``, ``mod_arithmetic``) nothing (it answers 0 at a step without a label).
    """

    def __init__(self, task: str, ns: Sequence[int] | None = None, max_heads: int | None = None,
                 multi_head: bool = True, modulus: int = tasks.DEFAULT_MODULUS) -> None:
        self.token = tasks.token_task(task) if tasks.is_token_task(task) else None
        if self.token is not None:
            multi_head, self.ns = False, (tasks.RUNNING_N,)
        elif task == tasks.RUNNING_PARITY:
            self.modulus, multi_head = tasks.check_modulus(modulus), False
            self.ns: tuple[int, ...] = (tasks.RUNNING_N,)
        else:
            self.ns = tasks.check_ns(tasks.check_task(task), ns)
        self.task = task
        self.max_heads = max_heads or len(self.ns)
        self.multi_head = multi_head
        self.reset()

    @classmethod
    def for_env(cls, env: gym.Env) -> "OraclePolicy":
        config: EnvConfig = env.unwrapped.config
        return cls(config.task, config.ns, config.max_heads, config.multi_head, config.classes)

    def reset(self) -> None:
        self._bits: list[int] = []  # a windowed task's last max(ns) bits
        self._carry: tuple | None = None  # a token task's scan state
        self._count = 0  # running parity's count

    def __call__(self, obs: np.ndarray) -> int | np.ndarray:
        """The answer at this step; each step costs the same, however long the episode (a running task's
        state is carried, a windowed task keeps its last max(ns) bits)."""
        if self.token is not None:
            labels, self._carry = self.token.scan(np.asarray(obs, dtype=np.uint8).reshape(1, 1), self._carry)
            return int(labels[0, -1])
        if self.task == tasks.RUNNING_PARITY:
            self._count = (self._count + int(obs[0])) % self.modulus
            return self._count
        self._bits = [*self._bits, int(obs[0])][-max(self.ns):]
        labels, _ = tasks.streaming_labels(self.task, np.asarray(self._bits, dtype=np.uint8)[None, :], self.ns)
        answer = labels[0, -1].astype(np.int64)
        if not self.multi_head:
            return int(answer[0])
        action = np.zeros(self.max_heads, dtype=np.int64)
        action[: len(self.ns)] = answer
        return action
