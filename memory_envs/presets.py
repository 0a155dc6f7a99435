"""Registered env ids: the two tasks with their default N, and presets by difficulty.

Like POPGym's Easy/Medium/Hard ids, each preset is one task at one N (single head, the paper's
``"final"`` scoring, bits with p = 0.5 as in the score card, so chance is exactly 0.5), and
``gym.make(id)`` needs no arguments. The Ns come from the README's score card (supervised training
of the built-in cores, 64 units, 2,000 steps) and the CPU reproduction (128 units, 15,000 steps):

* Easy: every core and curriculum of the score card solved it (also the default N of the bare ids).
* Medium: only the best score-card runs solved it.
* Hard: beyond every run of this project (the reproduction reached parity 27 and DMS 37).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from memory_envs import tasks

ENV_IDS: dict[str, str] = {"parity": "NParity-v0", "dms": "NDMS-v0"}
_CLASS_NAMES: dict[str, str] = {"parity": "NParity", "dms": "NDMS"}
DIFFICULTIES: tuple[str, ...] = ("Easy", "Medium", "Hard")
PRESET_P = 0.5
"""The presets' bit probability (the score card's: parity chance is then exactly 0.5)."""
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


PRESETS: dict[str, Preset] = {
    f"{_CLASS_NAMES[task]}-{difficulty}-v0": Preset(f"{_CLASS_NAMES[task]}-{difficulty}-v0", task, difficulty, n)
    for task in tasks.TASKS
    for difficulty, n in PRESET_N[task].items()
}
"""Every preset id, in task then difficulty order (like POPGym's collections)."""


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


def register_envs() -> None:
    """Register the two task ids and the presets with Gymnasium (single and native vector entry points)."""
    for task, env_id in ENV_IDS.items():
        _register(env_id, task, {})
    for env_id, preset in PRESETS.items():
        _register(env_id, preset.task, {"n": preset.n, "p": PRESET_P})


def _register(env_id: str, task: str, kwargs: dict[str, int | float]) -> None:
    if env_id not in gym.registry:
        name = _CLASS_NAMES[task]
        gym.register(
            id=env_id,
            entry_point=f"memory_envs.envs:{name}Env",
            vector_entry_point=f"memory_envs.vector:{name}VectorEnv",
            kwargs=kwargs,
        )
