"""The native vector env as a Stable-Baselines3 ``VecEnv`` (SB3 is imported only when one is made).

SB3 accepts only its own ``VecEnv`` classes, so without this SB3 users step K single envs one by
one through ``DummyVecEnv``. :func:`make_sb3_vec_env` gives the same observations, rewards, dones
and infos as ``make_vec_env(env_id, n_envs, seed=seed, env_kwargs=...)`` (a ``DummyVecEnv`` of
``Monitor``-wrapped single envs): SB3's own autoreset (the ended episode's last observation in
``info["terminal_observation"]``, the next trial's first bit or token as the observation), the envs' info
keys, ``info["TimeLimit.truncated"]`` every step and Monitor's ``info["episode"]`` at episode end.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Iterable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from memory_envs import tasks
from memory_envs.vector import MemoryTaskVectorEnv

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv


def make_sb3_vec_env(env_id: str, n_envs: int, seed: int | None = None, **env_kwargs: Any) -> "VecEnv":
    """An SB3 ``VecEnv`` of ``n_envs`` envs ``env_id`` run by the native vector env in one process.

    ``seed`` seeds env i with ``seed + i`` at the first reset, as SB3's ``make_vec_env`` does;
    ``env_kwargs`` are the env's arguments (``n``, ``heads``, ``mode``, ...). Needs
    stable-baselines3 (the ``rl`` extra).
    """
    try:
        from stable_baselines3.common.vec_env import VecEnv
    except ImportError as e:
        raise ImportError('make_sb3_vec_env needs stable-baselines3: in the clone, pip install -e ".[rl]"',
                          name="stable_baselines3") from e
    if seed is not None:
        tasks.check_seed(seed)
    entry_point = gym.spec(env_id).vector_entry_point
    if not (isinstance(entry_point, str) and entry_point.startswith("memory_envs.")):
        raise ValueError(f"env_id must be a memory_envs env id (e.g. 'NDMS-v0'), got {env_id!r}")
    native = gym.make_vec(
        env_id, num_envs=n_envs, vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs,
    )
    venv = _native_vec_env_class(VecEnv)(native)
    if seed is not None:
        venv.seed(int(seed))
    return venv


@functools.cache
def _native_vec_env_class(base: type) -> type:
    """Define the VecEnv subclass on first use (SB3's base class is only importable then)."""

    class NativeSB3VecEnv(base):
        """SB3 ``VecEnv`` over a :class:`memory_envs.MemoryTaskVectorEnv` in ``SAME_STEP`` autoreset mode.

        ``env_method``/``get_attr``/``set_attr`` act on the one native env that holds every env
        (e.g. ``env_method("set_ns", [2, 3])`` sets the Ns of all of them) and return one entry per
        index asked for.
        """

        def __init__(self, env: MemoryTaskVectorEnv) -> None:  # noqa: D107
            self.env = env
            super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
            self._actions: np.ndarray | None = None
            self._returns = np.zeros(env.num_envs)
            self._lengths = np.zeros(env.num_envs, dtype=np.int64)
            self._t_start = time.time()

        def reset(self) -> np.ndarray:
            seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
            obs, info = self.env.reset(seed=seeds)
            self.reset_infos = _split_info(info)
            self._reset_seeds()
            self._reset_options()
            self._returns[:] = 0.0
            self._lengths[:] = 0
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
            obs, rewards, terminated, truncated, info = self.env.step(self._actions)
            dones = terminated | truncated
            self._returns += rewards
            self._lengths += 1
            infos = _split_info(info)
            if dones.any():
                final = _split_info(info["final_info"])
                now = round(time.time() - self._t_start, 6)
                for i in np.flatnonzero(dones):
                    self.reset_infos[i], infos[i] = infos[i], final[i]
                    infos[i]["terminal_observation"] = info["final_obs"][i]
                    infos[i]["episode"] = {"r": round(float(self._returns[i]), 6), "l": int(self._lengths[i]), "t": now}
                self._returns[dones] = 0.0
                self._lengths[dones] = 0
            for i, info_i in enumerate(infos):
                info_i["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            return obs, rewards.astype(np.float32), dones, infos

        def close(self) -> None:
            self.env.close()

        def _count(self, indices: None | int | Iterable[int]) -> int:
            return len(self._get_indices(indices))

        def get_attr(self, attr_name: str, indices: None | int | Iterable[int] = None) -> list[Any]:
            return [getattr(self.env, attr_name)] * self._count(indices)

        def set_attr(self, attr_name: str, value: Any, indices: None | int | Iterable[int] = None) -> None:
            if self._count(indices) != self.num_envs:
                raise ValueError("set_attr acts on all envs of the native vector env at once: pass indices=None")
            setattr(self.env, attr_name, value)

        def env_method(self, method_name: str, *method_args: Any, indices: None | int | Iterable[int] = None,
                       **method_kwargs: Any) -> list[Any]:
            count = self._count(indices)
            if count != self.num_envs:
                raise ValueError("env_method acts on all envs of the native vector env at once: pass indices=None")
            return [getattr(self.env, method_name)(*method_args, **method_kwargs)] * count

        def env_is_wrapped(self, wrapper_class: type, indices: None | int | Iterable[int] = None) -> list[bool]:
            return [False] * self._count(indices)

    return NativeSB3VecEnv


def _split_info(info: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per-env info dicts (as a single env returns them) from a native vector env's batched info."""
    success = info["is_success"]
    return [
        {"label": label, "ns": ns, "head_accuracy": accuracy, "is_success": success[i, ...]}
        for i, (label, ns, accuracy) in enumerate(zip(info["label"], info["ns"], info["head_accuracy"]))
    ]
