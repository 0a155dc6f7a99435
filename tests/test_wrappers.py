"""POPGym-style observation wrappers: previous action and episode-start flag appended to the observation."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from memory_envs import EpisodeStartObservation, PreviousActionObservation


def test_episode_start_flag_and_previous_action():
    env = PreviousActionObservation(EpisodeStartObservation(gym.make("NDMS-v0", heads=[2, 3])))
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (4,), np.float32)
    obs, _ = env.reset(seed=0)
    bits = [obs[0]]
    assert obs.dtype == np.float32 and obs[1:].tolist() == [1.0, 0.0, 0.0]
    actions = [np.array([1, 0]), np.array([0, 1]), np.array([1, 1])]
    for action in actions:
        obs, *_ = env.step(action)
        bits.append(obs[0])
        assert obs[1] == 0.0 and obs[2:].tolist() == action.tolist()
    plain = gym.make("NDMS-v0", heads=[2, 3])
    assert bits == [plain.reset(seed=0)[0][0]] + [plain.step(a)[0][0] for a in actions]  # the bit is unchanged
    assert env.reset()[0][1:].tolist() == [1.0, 0.0, 0.0]


def test_wrappers_pass_the_env_checker_and_round_trip_their_spec():
    env = PreviousActionObservation(EpisodeStartObservation(gym.make("NParity-v0", n=3)))
    assert env.observation_space.shape == (3,)
    check_env(env, skip_render_check=True)
    remade = gym.make(env.spec)
    assert remade.observation_space == env.observation_space


def test_wrappers_reject_spaces_they_cannot_extend():
    with pytest.raises(ValueError, match="PreviousActionObservation needs a Discrete"):
        PreviousActionObservation(gym.make("Pendulum-v1"))  # Box action
    with pytest.raises(ValueError, match="EpisodeStartObservation needs an env with a Box observation"):
        EpisodeStartObservation(gym.make("FrozenLake-v1"))
