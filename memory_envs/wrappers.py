"""POPGym-style observation wrappers: the previous action and an episode-start flag in the observation.

Memory benchmarks such as POPGym give the agent its previous action and whether the episode just
began, so a recurrent policy can tell its own history and episode boundaries from the input. Both
wrappers append float32 entries to the env's ``Box`` observation and work on any env with a
``Box`` observation of shape (d,) (single envs; wrap each env of a ``SyncVectorEnv`` /
``AsyncVectorEnv``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


def _extended_box(space: gym.Space, extra: int, argument: str) -> spaces.Box:
    if not isinstance(space, spaces.Box) or len(space.shape) != 1:
        raise ValueError(f"{argument} needs an env with a Box observation of shape (d,), got {space}")
    low = np.concatenate([space.low, np.zeros(extra, dtype=space.dtype)]).astype(np.float32)
    high = np.concatenate([space.high, np.ones(extra, dtype=space.dtype)]).astype(np.float32)
    return spaces.Box(low, high, dtype=np.float32)


class EpisodeStartObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Append 1.0 to the observation ``reset()`` returns and 0.0 to every other (POPGym's episode-start flag)."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        self.observation_space = _extended_box(env.observation_space, 1, "EpisodeStartObservation")

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        return np.append(obs, np.float32(1.0)).astype(np.float32), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.append(obs, np.float32(0.0)).astype(np.float32), reward, terminated, truncated, info


class PreviousActionObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Append the previous action (one entry for ``Discrete(2)``, one per head for ``MultiDiscrete``)
    to the observation; zeros after ``reset()`` (combine with :class:`EpisodeStartObservation` to tell
    "no action yet" from "action 0")."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        space = env.action_space
        if isinstance(space, spaces.Discrete) and space.n == 2 and space.start == 0:
            width = 1
        elif isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1 and (space.nvec == 2).all():
            width = len(space.nvec)
        else:
            raise ValueError(f"PreviousActionObservation needs a Discrete(2) or MultiDiscrete([2, ...]) action, "
                             f"got {space}")
        self.observation_space = _extended_box(env.observation_space, width, "PreviousActionObservation")
        self._width = width

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        return np.concatenate([obs, np.zeros(self._width, dtype=np.float32)]), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        previous = np.asarray(action, dtype=np.float32).reshape(self._width)
        return np.concatenate([obs, previous]).astype(np.float32), reward, terminated, truncated, info
