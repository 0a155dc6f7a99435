"""The configuration of an RL baseline run (:class:`RLConfig`) and its checks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from baselines.train_config import check_finite, refuse_tau_options
from baselines.trainer import CORES, check_seed, resolve_device
from memory_envs import ENV_IDS, MOD_ARITHMETIC_ID, PRESETS, TOKEN_PRESETS, WORD_PROBLEM_ID, Curriculum, sizes, tasks
from memory_envs.curriculum import check_threshold
from memory_envs.envs import DEFAULT_GROUP, MODES, EnvConfig, TokenTaskConfig
from memory_envs.presets import PRESET_P, RUNNING_PRESET_MODE, preset_kwargs

TASK_OF_ENV = {**{env_id: task for task, env_id in ENV_IDS.items()},
               **{env_id: preset.task for env_id, preset in PRESETS.items()},
               WORD_PROBLEM_ID: tasks.WORD_PREFIX + DEFAULT_GROUP, MOD_ARITHMETIC_ID: tasks.MOD_ARITHMETIC,
               **{env_id: preset.task for env_id, preset in TOKEN_PRESETS.items()}}
"""Every env id an RL run takes and its task: the two base ids and the presets (one N each: ``n`` must be
the preset's, and a curriculum runs on the base id), and the token tasks' ids (no N, no curriculum; the
group of ``WordProblem-v0`` is the config's ``group``, default S3)."""
STOCK_LSTM = "stock-lstm"
"""The ``core`` that means sb3-contrib's own ``MlpLstmPolicy`` (its nn.LSTM, no tau) instead of
:class:`agents.RecurrentCorePolicy`: the reference RL users know."""
POLICY_CORES = (*CORES, STOCK_LSTM)
"""Every ``core`` an RL run takes."""
EVAL_SEED_OFFSET = 1_000_003
"""An evaluation's episodes are the eval env's from ``reset(seed=seed + EVAL_SEED_OFFSET)`` on (:attr:`RLConfig.eval_seed`)."""
RL_CURRICULA = ("single", "multi")
STOP_REASONS = ("target_reached", "max_timesteps", "max_seconds", "non_finite", "interrupted")
PPO_LR = 3e-3
PPO_ENT_COEF = 0.01
"""The default learning rate and entropy bonus of every run, for every policy: tuned once on NDMS-Easy-v0 (the
GRU, seed 0, 100,000 timesteps; lr 3e-4, 1e-3, 3e-3, 1e-2 without an entropy bonus, 3e-3 and 1e-2 with 0.01;
docs/rl_baselines.md), the RL score card's setting. Without the bonus the policy often collapses to one answer."""
DEFAULT_N = 2
"""``n`` of a base id when none is given (a preset's default is its own N)."""
VEC_ENVS = ("dummy", "subproc", "native")
"""How the training envs run: SB3's DummyVecEnv (one process), SubprocVecEnv (one process per env), or the
native vector env as an SB3 VecEnv (:func:`memory_envs.make_sb3_vec_env`: all envs as numpy arrays in one
process; no curriculum yet, its driver needs single envs)."""
RESUME_MAY_CHANGE = ("total_timesteps", "max_seconds", "device", "vec_env", "allow_oversubscribe")
"""The config fields a resumed run may change; every other field must equal the folder's config.json."""
SUBPROC_WORKER_BYTES = 180 * 2**20
"""The memory one SubprocVecEnv worker takes (measured by benchmarks/bench_limits.py: 173 MiB proportional set size
for a spawned worker of a running ``memory-envs rl --vec-env subproc``, one NDMS-v0 env; python 3.11, torch 2.13,
SB3 2.9)."""
ENV_OBJECT_BYTES = 9 * 1024
"""The memory one single env takes in the run's process with ``vec_env="dummy"``, beyond its arrays (measured:
6.2-8.8 KB per env for 1,000-4,000 NDMS-v0 envs with Monitor, after reset)."""
ROLLOUT_BYTES_PER_STEP = 1024
ROLLOUT_BYTES_PER_UNIT = 24
"""The memory one timestep of a rollout takes during PPO's update: ``ROLLOUT_BYTES_PER_STEP`` plus
``ROLLOUT_BYTES_PER_UNIT`` per hidden unit (measured: at most 1,144 bytes at 8 units and 2,493 at 64, with 1,000
to 2,000 envs x 64 steps; the buffer, its flattened copies and SB3's tensors of it)."""


@dataclass
class RLConfig:
    """Everything an RL run needs. ``n`` is the fixed N, or the first N of the curriculum; None (the default)
    means a preset's own N, or :data:`DEFAULT_N` on a base id."""

    env_id: str = "NDMS-v0"
    n: int | None = None
    group: str | None = None
    """The group of ``WordProblem-v0`` (None: S3, or a word-problem preset's own group)."""
    mode: str | None = None
    """The env's scoring mode; None: ``"final"`` (the paper's), or ``"every_step"`` for a token task."""
    p: float | str | None = None
    length_range: tuple[int, int] | None = None
    curriculum: str | None = None
    n_max: int | None = None
    threshold: float = 0.98
    window: int = 100
    core: str = "leaky"
    hidden_size: int = 32
    tau_init: tuple[float, float] = (1.0, 2.0)
    train_tau: bool = True
    core_options: dict[str, Any] = field(default_factory=dict)
    n_envs: int = 8
    vec_env: str = "dummy"
    n_steps: int = 64
    batch_size: int = 128
    n_epochs: int = 4
    lr: float = PPO_LR
    gamma: float = 0.99
    ent_coef: float = PPO_ENT_COEF
    total_timesteps: int = 100_000
    max_seconds: float | None = None
    eval_every: int = 10_000
    eval_episodes: int = 50
    seed: int = 0
    device: str = "cpu"
    allow_oversubscribe: bool = False
    """Run ``vec_env="subproc"`` with more worker processes than :data:`memory_envs.sizes.PROCESSES_PER_CORE` per
    CPU core (their memory is still checked)."""

    def __post_init__(self) -> None:
        if self.mode is None:
            self.mode = "every_step" if self.token_task else "final"
        if self.n is None:
            self.n = (tasks.RUNNING_N if self.token_task else self.preset.n if self.preset is not None
                      else DEFAULT_N)

    @property
    def task(self) -> str:
        if self.env_id == WORD_PROBLEM_ID and isinstance(self.group, str):
            return tasks.WORD_PREFIX + self.group
        return TASK_OF_ENV[self.env_id]

    @property
    def token_task(self) -> bool:
        """Whether the env is a token task's (no N: one head scored at every labelled step)."""
        return tasks.is_token_task(TASK_OF_ENV.get(self.env_id))

    @property
    def preset(self) -> Any:
        """The :class:`memory_envs.Preset` of ``env_id``, or None for a base id."""
        return PRESETS.get(self.env_id)

    @property
    def eval_seed(self) -> int:
        """The seed of every evaluation's episodes (the same episodes at each evaluation)."""
        return self.seed + EVAL_SEED_OFFSET

    def validate(self) -> "RLConfig":
        """Raise ValueError naming the first field that is not allowed."""
        if self.env_id not in TASK_OF_ENV:
            raise ValueError(f"env_id must be one of {sorted(TASK_OF_ENV)}, got {self.env_id!r}")
        if self.core not in POLICY_CORES:
            raise ValueError(f"core must be one of {POLICY_CORES}, got {self.core!r}")
        if self.curriculum is not None and self.curriculum not in RL_CURRICULA:
            raise ValueError(f"curriculum must be None or one of {RL_CURRICULA}, got {self.curriculum!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.vec_env not in VEC_ENVS:
            raise ValueError(f"vec_env must be one of {VEC_ENVS}, got {self.vec_env!r}")
        for name in ("hidden_size", "n_envs", "n_steps", "batch_size", "n_epochs", "total_timesteps",
                     "eval_every", "eval_episodes", "window"):
            tasks.check_positive_int(getattr(self, name), name)
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)):
            raise ValueError(f"n must be an integer, got {self.n!r}")
        if self.group is not None and self.env_id != WORD_PROBLEM_ID:
            raise ValueError(f"group applies to {WORD_PROBLEM_ID} only (a preset has its own), got group={self.group!r} "
                             f"with {self.env_id}")
        if self.token_task:
            self.validate_token_task()
        else:
            tasks.check_ns(self.task, self.n, argument="n")
        if self.curriculum is None:
            if self.n_max is not None:
                raise ValueError(f"n_max needs a curriculum (single or multi), got n_max={self.n_max!r} "
                                 "without one")
        elif self.n_max is None:
            raise ValueError("n_max is required with a curriculum (the action space is fixed at its size)")
        check_threshold(self.threshold)  # also without a curriculum: a fixed N is solved above it
        self.make_curriculum()  # checks n_max >= n
        if self.preset is not None:
            if self.curriculum is not None:
                raise ValueError(f"curriculum: {self.env_id} is a preset (one N); run a curriculum on the base id "
                                 f"{ENV_IDS[self.task]!r} with n_max={self.preset.n}")
            base, preset = ENV_IDS[self.task], self.preset
            fixed = {"n": (self.n == preset.n, preset.n), "mode": (self.mode == "final", "'final'"),
                     "p": (self.p in (None, PRESET_P), f"{PRESET_P} or None")}
            for name, (ok, allowed) in fixed.items():
                if not ok:
                    raise ValueError(f"{name} must be {allowed} for the preset {self.env_id} ({self.task} at N = "
                                     f"{preset.n}, p = {PRESET_P}, final scoring), got {getattr(self, name)!r}; use "
                                     f"the base id {base!r} for other values")
            preset_kwargs(self.env_id, self.env_kwargs())  # what the env itself checks
        if self.vec_env == "native" and self.curriculum is not None:
            raise ValueError("vec_env='native' runs no curriculum (its driver collects episodes from single envs): "
                             "use vec_env='dummy' or 'subproc' with a curriculum")
        check_finite(self.lr, "lr", 0.0, strict=True)
        check_finite(self.gamma, "gamma", 0.0, strict=False)
        if self.gamma > 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        check_finite(self.ent_coef, "ent_coef", 0.0, strict=False)
        if self.max_seconds is not None:
            check_finite(self.max_seconds, "max_seconds", 0.0, strict=True)
        self.check_batch_size()
        if self.length_range is not None and not self.token_task:  # must hold the largest N this run will score
            tasks.check_length_range(self.length_range, self.n_max or self.n)
        self.env_config()  # p, length_range, group, ...
        if len(self.tau_init) != 2:
            raise ValueError(f"tau_init must be (low, high), got {self.tau_init!r}")
        if not isinstance(self.core_options, dict):
            raise ValueError(f"core_options must be a dict, got {type(self.core_options).__name__}")
        check_seed(self.seed)
        resolve_device(self.device)
        refuse_tau_options(self, ("tau_init", "train_tau"))
        if not isinstance(self.allow_oversubscribe, bool):
            raise ValueError(f"allow_oversubscribe must be True or False, got {self.allow_oversubscribe!r}")
        self.check_memory()
        self.check_duration()
        if self.core == STOCK_LSTM:
            if self.core_options:
                raise ValueError(f"core_options apply to our cores; core {STOCK_LSTM!r} (sb3-contrib's MlpLstmPolicy) "
                                 f"takes none, got {self.core_options!r}")
            return self
        import agents
        import torch

        options = self.policy_kwargs()["core_options"]
        try:  # a throwaway generator: no global RNG is drawn from
            zero = {"h0": "zero"} if self.core in agents.cores.TAU_KINDS else {}
            agents.make_core(self.core, 1, self.hidden_size, generator=torch.Generator(), **{**options, **zero})
        except (TypeError, ValueError) as e:
            raise ValueError(f"core_options / tau_init {options!r} do not fit core {self.core!r}: {e}") from None
        return self

    def validate_token_task(self) -> None:
        """The fields a token task refuses (it has no N, no curriculum, no bit probability), and its preset's."""
        given = {"n": (self.n, tasks.RUNNING_N), "curriculum": (self.curriculum, None), "n_max": (self.n_max, None),
                 "p": (self.p, None)}
        for name, (value, default) in given.items():
            if value != default:
                raise ValueError(f"{name} must be left out for {self.env_id} ({self.task}: a token task has no N, no "
                                 f"curriculum and no bit probability), got {value!r}")
        preset = TOKEN_PRESETS.get(self.env_id)
        if preset is None:
            return
        fixed = {"mode": (self.mode == RUNNING_PRESET_MODE, repr(RUNNING_PRESET_MODE)),
                 "length_range": (self.length_range is None or tuple(self.length_range) == preset.length_range,
                                  f"{preset.length_range} or None")}
        for name, (ok, allowed) in fixed.items():
            if not ok:
                group = "" if preset.group is None else f" with group={preset.group!r}"
                raise ValueError(f"{name} must be {allowed} for the preset {self.env_id} ({preset.describe()}), got "
                                 f"{getattr(self, name)!r}; use the base id {preset.base_id!r}{group} for other values")

    def env_config(self) -> EnvConfig:
        """The checked settings of the run's envs (what ``gym.make(env_id, **env_kwargs())`` builds)."""
        if not self.token_task:
            return EnvConfig.build(self.task, **self.env_kwargs())
        preset = TOKEN_PRESETS.get(self.env_id)
        lengths = self.length_range if self.length_range is not None or preset is None else preset.length_range
        if self.group is not None:  # checked as the group (a bad one is refused naming group)
            return TokenTaskConfig.word_problem(self.group, self.mode, lengths)
        return TokenTaskConfig.build(self.task, self.mode, lengths)

    def check_batch_size(self) -> None:
        """RecurrentPPO's constraint on ``batch_size``: it cuts each rollout of ``n_envs * n_steps`` steps into
        mini-batches of ``batch_size`` (the last one holds the remainder) and normalizes the advantages over
        each, so every mini-batch needs at least 2 steps (one step has no standard deviation: NaN). sb3-contrib
        does not check this itself; SB3's PPO asserts ``batch_size > 1`` and warns on a remainder."""
        rollout = self.n_envs * self.n_steps
        if rollout < 2:
            raise ValueError("n_envs * n_steps must be at least 2 (PPO normalizes advantages over a rollout)")
        if self.batch_size < 2 or rollout % self.batch_size == 1:
            raise ValueError(f"batch_size must be >= 2 and leave no mini-batch of 1 step: RecurrentPPO cuts the "
                             f"rollout of n_envs * n_steps = {rollout} steps into mini-batches of batch_size (the "
                             f"last holds the remainder, {rollout} % batch_size) and normalizes advantages over "
                             f"each, which is NaN for one step; got batch_size={self.batch_size} (a divisor >= 2 of "
                             f"{rollout} always works)")

    def check_memory(self) -> None:
        """Refuse a run whose envs, rollout buffer and action logits would not fit in memory at its largest
        N (``n_max`` with a curriculum), naming the argument and the bytes."""
        config = self.env_config()
        largest = self.n_max or self.n
        argument = (f"n_max={self.n_max} (a {self.curriculum} curriculum, {config.max_heads} action heads)"
                    if self.curriculum is not None else f"{config.task}" if self.token_task else f"n={self.n}")
        try:
            at_largest = config if self.token_task else config.with_ns(
                list(range(self.n, largest + 1)) if self.curriculum == "multi" else [largest])
        except ValueError as error:
            raise ValueError(f"{argument}: at its largest N, {error}") from None
        length = at_largest.lengths[1] - 1
        envs = at_largest.memory_bytes(self.n_envs + 1)  # the training envs and the evaluation env
        if self.vec_env == "subproc":
            sizes.check_processes(self.n_envs, f"n_envs={self.n_envs} with vec_env='subproc' (one worker process "
                                               "per env)", self.allow_oversubscribe)
            sizes.check_fits(self.n_envs * SUBPROC_WORKER_BYTES,
                             f"n_envs={self.n_envs} with vec_env='subproc' ({self.n_envs} worker processes of "
                             f"{sizes.format_bytes(SUBPROC_WORKER_BYTES)}; vec_env='dummy' or 'native' needs none)")
        elif self.vec_env == "dummy":
            envs += self.n_envs * ENV_OBJECT_BYTES
        steps = self.n_steps * self.n_envs
        rollout = steps * (4 * config.max_heads + ROLLOUT_BYTES_PER_STEP + ROLLOUT_BYTES_PER_UNIT * self.hidden_size)
        logits = 4 * 4 * self.batch_size * 2 * config.max_heads  # forward, softmax, gradients
        weights = 4 * 4 * (self.hidden_size * 2 * config.max_heads + 4 * self.hidden_size ** 2)
        sizes.check_fits(envs + rollout + logits + weights,
                         f"{argument} with n_envs={self.n_envs}, n_steps={self.n_steps}, batch_size={self.batch_size} "
                         f"and episodes of up to {length} steps")

    def check_duration(self) -> None:
        """Refuse an evaluation that would take longer than a phase may (:func:`memory_envs.sizes.check_duration`;
        estimated at the shortest episodes: one policy call per step)."""
        steps = self.eval_episodes * self.env_config().lengths[0]
        flops = steps * 2 * 4 * self.hidden_size ** 2  # one step of an LSTM-sized core
        sizes.check_duration(sizes.phase_seconds(steps, steps, flops, resolve_device(self.device).type),
                             f"eval_episodes={self.eval_episodes} (one evaluation)")

    def make_curriculum(self) -> Curriculum | None:
        if self.curriculum is None:
            return None
        try:
            return Curriculum(self.curriculum, self.n, self.n_max, self.threshold)
        except ValueError as e:  # Curriculum names its own arguments: say which config field
            raise ValueError(str(e).replace("start ", "n ", 1)) from None

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``gym.make(env_id, ...)`` for the training and evaluation envs."""
        if self.token_task:
            kwargs = {"mode": self.mode} if self.length_range is None else {
                "mode": self.mode, "length_range": tuple(self.length_range)}
            return kwargs if self.group is None else {**kwargs, "group": self.group}
        p = PRESET_P if self.preset is not None and self.p is None else self.p  # a preset's p is its own
        kwargs: dict[str, Any] = {"mode": self.mode, "p": p}
        if self.length_range is not None:
            kwargs["length_range"] = tuple(self.length_range)
        if self.curriculum == "multi":
            kwargs.update(heads=[self.n], max_heads=self.n_max - self.n + 1)
        else:
            kwargs["n"] = self.n
        return kwargs

    def policy(self) -> Any:
        """RecurrentPPO's policy: ``"MlpLstmPolicy"`` for :data:`STOCK_LSTM`, else :class:`agents.RecurrentCorePolicy`."""
        if self.core == STOCK_LSTM:
            return "MlpLstmPolicy"
        from agents.rl_policy import RecurrentCorePolicy

        return RecurrentCorePolicy

    def policy_kwargs(self) -> dict[str, Any]:
        import agents

        if self.core == STOCK_LSTM:
            return {"lstm_hidden_size": self.hidden_size}

        tau = {"tau_init": list(self.tau_init), "train_tau": self.train_tau} if self.core in agents.cores.TAU_KINDS else {}
        options = {**tau, **self.core_options}
        return {"core": self.core, "core_options": options, "lstm_hidden_size": self.hidden_size}

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values; ``group`` only where it is set, so that a folder written before the field
        existed (no word problems then) still resumes."""
        data = dataclasses.asdict(self)
        data["tau_init"] = list(self.tau_init)
        data["length_range"] = None if self.length_range is None else list(self.length_range)
        if self.group is None:
            del data["group"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RLConfig":
        """The config a run folder's config.json holds (:meth:`to_json`); ValueError naming unknown fields."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown config fields {unknown}: written by another version of memory-envs (use that "
                             "version, or start the run again)")
        data = dict(data)
        for name in ("tau_init", "length_range"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)
