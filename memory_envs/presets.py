"""Registered env ids: the two tasks with their default N, and presets by difficulty.

Like POPGym's Easy/Medium/Hard ids, each preset is one task at one N (single head, the paper's
``"final"`` scoring, bits with p = 0.5 as in the score card, so chance is exactly 0.5), and
``gym.make(id)`` needs no arguments. The Ns come from the score card (docs/scorecard.md: supervised training
of the built-in cores, 64 units, 2,000 steps) and the CPU reproduction (128 units, 15,000 steps):

* Easy: every core and curriculum of the score card solved it (also the default N of the bare ids).
* Medium: only the best score-card runs solved it.
* Hard: beyond every run of this project (the reproduction reached parity 27 and DMS 37).

Running parity (``RunningParity-v0``, the state-tracking task) has presets by trial length, the roles of
its protocol (docs/state_tracking.md): Easy the training lengths 3-40, Medium the test lengths 40-256, Hard
the far length 1,000; each with fair bits (p = 0.5), parity (modulus 2) and every step scored.

The token tasks (``WordProblem-v0``, whose ``group`` defaults to S3, and ``ModularArithmetic-v0``) have presets
by trial length with the same three roles and lengths, every step scored: ``ModularArithmetic-Easy-v0`` ... and
``WordProblem-<G>-Easy-v0`` ... for the groups of :data:`PRESET_GROUPS`, three of order 60 (the comparison of
Merrill, Petty and Sabharwal 2024): Z60 (abelian), A4 x Z5 (solvable, not abelian) and A5 (not solvable), and
S3, the smallest non-abelian group.

A preset is defined by its task, N, p and scoring mode (running parity: its lengths, modulus, p and mode; a
token task: its lengths, mode and group): ``gym.make(preset, n=3)`` (or ``heads``, another
``p`` or ``mode``) is refused with a ValueError naming the preset and the base id to use instead. The
other keyword arguments (``length_range`` of the windowed tasks, ``max_heads``, ``render_mode``) pass through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from memory_envs import tasks

ENV_IDS: dict[str, str] = {"parity": "NParity-v0", "dms": "NDMS-v0"}
RUNNING_PARITY_ID = "RunningParity-v0"
WORD_PROBLEM_ID = "WordProblem-v0"
MOD_ARITHMETIC_ID = "ModularArithmetic-v0"
_CLASS_NAMES: dict[str, str] = {"parity": "NParity", "dms": "NDMS", tasks.RUNNING_PARITY: "RunningParity",
                                tasks.MOD_ARITHMETIC: "ModularArithmetic"}

DIFFICULTIES: tuple[str, ...] = ("Easy", "Medium", "Hard")
PRESET_P = 0.5
"""The presets' bit probability (the score card's: parity chance is then exactly 0.5)."""
PRESET_MODE = "final"
"""The presets' scoring mode (the paper's)."""
DEFINING = ("n", "heads", "p", "mode")
"""The keyword arguments that define a preset of the windowed tasks: ``gym.make(preset, ...)`` refuses other
values for them (running parity's: ``length_range``, ``p``, ``modulus``, ``mode``)."""
PRESET_N: dict[str, dict[str, int]] = {
    "parity": {"Easy": tasks.DEFAULT_N["parity"], "Medium": 10, "Hard": 40},
    "dms": {"Easy": tasks.DEFAULT_N["dms"], "Medium": 11, "Hard": 40},
}


@dataclass(frozen=True)
class Preset:
    """One registered preset: ``gym.make(preset.env_id)`` is ``gym.make(ENV_IDS[task], n=n, p=0.5)``."""

    env_id: str
    task: str
    difficulty: str
    n: int

    def defining(self) -> dict[str, Any]:
        """The values of :data:`DEFINING` that make this preset."""
        return {"n": self.n, "heads": [self.n], "p": PRESET_P, "mode": PRESET_MODE}

    def describe(self) -> str:
        return f"{self.task} at n={self.n}, p={PRESET_P}, mode={PRESET_MODE!r}"

    @property
    def base_id(self) -> str:
        return ENV_IDS[self.task]

    def base_kwargs(self) -> dict[str, Any]:
        """What the base id needs, beside a caller's values, to make this preset's task (the hint of a refusal)."""
        return {"p": PRESET_P}


RUNNING_PRESET_MODE = "every_step"
"""The running-parity presets' scoring mode (the protocol's running labels)."""
RUNNING_PRESET_LENGTHS: dict[str, tuple[int, int]] = {
    "Easy": tasks.RUNNING_TRAIN_LENGTHS,
    "Medium": (tasks.RUNNING_TEST_LENGTHS[0], tasks.RUNNING_TEST_LENGTHS[-1] + 1),
    "Hard": (tasks.RUNNING_FAR_LENGTH, tasks.RUNNING_FAR_LENGTH + 1),
}
"""The running-parity presets' half-open length ranges: the protocol's training, test and far lengths."""


@dataclass(frozen=True)
class RunningParityPreset:
    """One running-parity preset: ``gym.make(preset.env_id)`` is ``gym.make("RunningParity-v0",
    length_range=length_range, p=0.5, modulus=2, mode="every_step")``."""

    env_id: str
    difficulty: str
    length_range: tuple[int, int]
    task: str = tasks.RUNNING_PARITY

    def defining(self) -> dict[str, Any]:
        return {"length_range": list(self.length_range), "p": PRESET_P, "modulus": tasks.DEFAULT_MODULUS,
                "mode": RUNNING_PRESET_MODE}

    def describe(self) -> str:
        return (f"{self.task} at length_range={self.length_range}, p={PRESET_P}, modulus={tasks.DEFAULT_MODULUS}, "
                f"mode={RUNNING_PRESET_MODE!r}")

    @property
    def base_id(self) -> str:
        return RUNNING_PARITY_ID

    def base_kwargs(self) -> dict[str, Any]:
        return {"p": PRESET_P}


PRESET_GROUPS: tuple[str, ...] = ("s3", "z60", "a4xz5", "a5")
"""The groups with word-problem presets: S3, and three groups of order 60 (60 tokens and classes each) that the
theory separates: Z60 abelian, A4 x Z5 solvable, A5 not solvable."""


@dataclass(frozen=True)
class TokenPreset:
    """One token-task preset: ``gym.make(preset.env_id)`` is ``gym.make("WordProblem-v0", group=group,
    length_range=length_range, mode="every_step")`` (or ``ModularArithmetic-v0`` without ``group``)."""

    env_id: str
    task: str
    difficulty: str
    length_range: tuple[int, int]

    @property
    def group(self) -> str | None:
        return self.task[len(tasks.WORD_PREFIX):] if self.task.startswith(tasks.WORD_PREFIX) else None

    @property
    def base_id(self) -> str:
        return WORD_PROBLEM_ID if self.group is not None else MOD_ARITHMETIC_ID

    def base_kwargs(self) -> dict[str, Any]:
        return {} if self.group is None else {"group": self.group}

    def defining(self) -> dict[str, Any]:
        return {**self.base_kwargs(), "length_range": list(self.length_range), "mode": RUNNING_PRESET_MODE}

    def describe(self) -> str:
        return f"{self.task} at length_range={self.length_range}, mode={RUNNING_PRESET_MODE!r}"


PRESETS: dict[str, Preset] = {
    f"{_CLASS_NAMES[task]}-{difficulty}-v0": Preset(f"{_CLASS_NAMES[task]}-{difficulty}-v0", task, difficulty, n)
    for task in tasks.TASKS
    for difficulty, n in PRESET_N[task].items()
}
"""Every preset id of the windowed tasks, in task then difficulty order (like POPGym's collections)."""
RUNNING_PARITY_PRESETS: dict[str, RunningParityPreset] = {
    f"RunningParity-{difficulty}-v0": RunningParityPreset(f"RunningParity-{difficulty}-v0", difficulty, lengths)
    for difficulty, lengths in RUNNING_PRESET_LENGTHS.items()
}
"""The running-parity presets (kept apart from :data:`PRESETS`, whose entries have an N)."""
TOKEN_PRESETS: dict[str, TokenPreset] = {
    env_id: TokenPreset(env_id, task, difficulty, lengths)
    for task, stem in [*((tasks.WORD_PREFIX + g, f"WordProblem-{g.upper().replace('X', 'x')}") for g in PRESET_GROUPS),
                       (tasks.MOD_ARITHMETIC, "ModularArithmetic")]
    for difficulty, lengths in RUNNING_PRESET_LENGTHS.items()
    for env_id in [f"{stem}-{difficulty}-v0"]
}
"""The token tasks' presets: ``WordProblem-S3-Easy-v0``, ``WordProblem-A4xZ5-Hard-v0``, ``ModularArithmetic-Medium-v0``, ...
(lengths as :data:`RUNNING_PARITY_PRESETS`)."""


def presets(difficulty: str | None = None, task: str | None = None) -> list[str]:
    """The preset ids of one ``difficulty`` and/or ``task`` (all of them with no arguments)."""
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES} or None, got {difficulty!r}")
    if task is not None:
        tasks.check_task(task)
    return [
        env_id
        for env_id, preset in PRESETS.items()
        if difficulty in (None, preset.difficulty) and task in (None, preset.task)
    ]


def class_name(task: str) -> str:
    """The env classes' name stem of ``task`` (``NParity`` -> ``NParityEnv``, ``NParityVectorEnv``)."""
    return "WordProblem" if task.startswith(tasks.WORD_PREFIX) else _CLASS_NAMES[task]


def register_envs() -> None:
    """Register the task ids and the presets with Gymnasium (single and native vector entry points)."""
    for task, env_id in {**ENV_IDS, tasks.RUNNING_PARITY: RUNNING_PARITY_ID, tasks.WORD_PREFIX: WORD_PROBLEM_ID,
                         tasks.MOD_ARITHMETIC: MOD_ARITHMETIC_ID}.items():
        _register(env_id, task, {})
    for env_id, preset in {**PRESETS, **RUNNING_PARITY_PRESETS, **TOKEN_PRESETS}.items():
        defining = {name: value for name, value in preset.defining().items() if name != "heads"}
        _register(env_id, preset.task, {"preset": env_id, **defining})


def _register(env_id: str, task: str, kwargs: dict[str, Any]) -> None:
    if env_id not in gym.registry:
        name = class_name(task)
        preset = "preset" in kwargs
        gym.register(
            id=env_id,
            entry_point="memory_envs.presets:make_preset_env" if preset else f"memory_envs.envs:{name}Env",
            vector_entry_point=("memory_envs.presets:make_preset_vector_env" if preset
                                else f"memory_envs.vector:{name}VectorEnv"),
            kwargs=kwargs,
        )


AnyPreset = Preset | RunningParityPreset | TokenPreset


def preset_spec(preset: str) -> AnyPreset:
    """The preset registered as ``preset`` (any task); KeyError if there is none."""
    return {**PRESETS, **RUNNING_PARITY_PRESETS, **TOKEN_PRESETS}[preset]


def preset_kwargs(preset: str, kwargs: dict[str, Any]) -> tuple[AnyPreset, dict[str, Any]]:
    """The preset named ``preset`` and ``kwargs`` checked against it: Gymnasium merges a caller's keyword
    arguments over the registered ones, so a value of :data:`DEFINING` that differs from the preset's
    was passed by the caller, and is refused (a ValueError naming the preset and its base id)."""
    spec = preset_spec(preset)
    fixed = spec.defining()
    changed = [name for name in fixed if name in kwargs and _differs(kwargs[name], fixed[name])]
    if changed:
        given = ", ".join(f"{name}={kwargs[name]!r}" for name in changed)
        instead = ", ".join([given, *(f"{name}={value!r}" for name, value in spec.base_kwargs().items()
                                      if name not in changed)])
        raise ValueError(f"{preset} is a preset ({spec.describe()}) and refuses {given}, which would change what "
                         f"defines it; use the base id instead: gym.make({spec.base_id!r}, {instead})")
    kwargs = dict(kwargs)
    kwargs.pop("heads", None)  # [n]: the same env as n alone
    return spec, kwargs


def _differs(value: Any, fixed: Any) -> bool:
    """Whether a caller's ``value`` differs from the preset's ``fixed`` one (a list for ``heads``)."""
    try:
        return list(value) != fixed if isinstance(fixed, list) else bool(value != fixed)
    except (TypeError, ValueError):  # not comparable: not the preset's value
        return True


def make_preset_env(preset: str, **kwargs: Any) -> gym.Env:
    """The entry point of the preset ids: the task's env class with the preset's values (see :func:`preset_kwargs`)."""
    from memory_envs import envs

    spec, kwargs = preset_kwargs(preset, kwargs)
    return getattr(envs, f"{class_name(spec.task)}Env")(**kwargs)


def make_preset_vector_env(preset: str, num_envs: int = 1, **kwargs: Any) -> gym.vector.VectorEnv:
    """The vector entry point of the preset ids (see :func:`preset_kwargs`)."""
    from memory_envs import vector

    spec, kwargs = preset_kwargs(preset, kwargs)
    return getattr(vector, f"{class_name(spec.task)}VectorEnv")(num_envs=num_envs, **kwargs)
