"""Running parity (issue 28): the labels, the single and vector env, the presets, make_batch, bad input."""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from test_envs import run_episode
from test_vector import assert_same, make_vec

import memory_envs
from memory_envs import OraclePolicy, make_batch, tasks

CONFIGS = [dict(), dict(mode="final"), dict(modulus=3, length_range=(1, 12)), dict(p="uniform", length_range=(5, 9))]


def plain_running_labels(bits, modulus):
    """The definition, one step at a time: the sum of the bits so far mod k."""
    out = np.zeros(bits.shape, dtype=np.int64)
    for b, row in enumerate(bits):
        total = 0
        for t, bit in enumerate(row):
            total += int(bit)
            out[b, t] = total % modulus
    return out


@pytest.mark.parametrize("modulus", [2, 3, 5])
def test_labels_equal_a_plain_loop(modulus):
    bits = tasks.sample_bits(np.random.default_rng(modulus), 7, 53, 0.5)
    np.testing.assert_array_equal(tasks.running_labels(bits, modulus), plain_running_labels(bits, modulus))
    batch = make_batch("running_parity", None, 16, seed=1, length=30, streaming=True, modulus=modulus)
    bits = batch.inputs[:, :, 0].T.astype(np.uint8)
    expected = plain_running_labels(bits, modulus)
    np.testing.assert_array_equal(batch.streaming_labels[:, :, 0], expected.T)
    np.testing.assert_array_equal(batch.labels[:, 0], expected[:, -1])
    assert batch.ns == (tasks.RUNNING_N,) and batch.streaming_mask.all() and batch.streaming_mask.shape == (30, 1)


def test_make_batch_draws_lengths_from_the_range_and_scaled_accuracy():
    rng = np.random.default_rng(0)
    lengths = {make_batch("running_parity", None, 2, rng=rng).inputs.shape[0] for _ in range(300)}
    assert lengths == set(range(*tasks.RUNNING_TRAIN_LENGTHS))
    lengths = {make_batch("running_parity", None, 2, rng=rng, length_range=(50, 53)).inputs.shape[0] for _ in range(60)}
    assert lengths == {50, 51, 52}
    assert tasks.scaled_accuracy(0.5) == 0.0 and tasks.scaled_accuracy(1.0) == 1.0
    assert tasks.scaled_accuracy(0.75) == 0.5 and tasks.scaled_accuracy(1 / 3, 3) == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_gymnasium_and_sb3_env_checkers(kwargs):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    gym_check_env(gym.make("RunningParity-v0", **kwargs).unwrapped, skip_render_check=False)
    sb3_check_env(gym.make("RunningParity-v0", **kwargs).unwrapped, warn=True)


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_oracle_gets_maximum_return_and_labels_follow_the_timing_contract(kwargs):
    env = gym.make("RunningParity-v0", **kwargs)
    oracle = OraclePolicy.for_env(env)
    config = env.unwrapped.config
    assert env.action_space == gym.spaces.Discrete(config.modulus)
    for episode in range(20):
        observations, rewards, infos = run_episode(env, oracle, seed=episode)
        bits = observations[:-1, 0].astype(np.uint8)[None, :]
        assert config.lengths[0] <= bits.shape[1] < config.lengths[1]
        labels = plain_running_labels(bits, config.modulus)[0]
        np.testing.assert_array_equal([info["label"][0] for info in infos], labels)  # scored against x_1..x_t
        assert rewards.sum() == (1 if config.mode == "final" else len(rewards))
        assert infos[-1]["is_success"] and infos[-1]["head_accuracy"][0] == 1.0
        assert all(info["ns"].tolist() == [0] for info in infos)


def test_random_policy_scores_chance():
    env = gym.make("RunningParity-v0", modulus=3)
    env.action_space.seed(0)
    fractions = [run_episode(env, lambda obs: env.action_space.sample(), seed=e)[1].mean() for e in range(300)]
    assert abs(np.mean(fractions) - 1 / 3) < 0.02


@pytest.mark.parametrize("kwargs, autoreset_mode", [(kwargs, gym.vector.AutoresetMode.NEXT_STEP) for kwargs in CONFIGS]
                         + [(CONFIGS[2], gym.vector.AutoresetMode.SAME_STEP)])
def test_vector_env_matches_single_envs(kwargs, autoreset_mode):
    """Every reset and step result equals Gymnasium's SyncVectorEnv of single envs with the same seeds."""
    native = make_vec("RunningParity-v0", 4, autoreset_mode=autoreset_mode, **kwargs)
    assert isinstance(native.unwrapped, memory_envs.RunningParityVectorEnv)
    sync = gym.make_vec("RunningParity-v0", num_envs=4, vectorization_mode="sync",
                        vector_kwargs=dict(autoreset_mode=autoreset_mode), **kwargs)
    assert_same(native.reset(seed=3), sync.reset(seed=3))
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(150):
        actions = rng.integers(0, native.unwrapped.config.modulus, size=native.action_space.shape)
        result = native.step(actions)
        assert_same(result, sync.step(actions))
        ended += result[2].sum()
    assert ended > 8


def test_vector_oracle_succeeds_in_every_trial():
    venv = make_vec("RunningParity-v0", 8, modulus=3)
    obs, _ = venv.reset(seed=0)
    totals, restarted, successes = np.zeros(8, dtype=np.int64), np.zeros(8, dtype=bool), 0
    for _ in range(200):
        totals = np.where(restarted, 0, totals) + obs[:, 0].astype(np.int64)
        obs, _, terminated, _, info = venv.step(totals % 3)
        assert (info["head_accuracy"][terminated, 0] == 1.0).all() and info["is_success"][terminated].all()
        successes += terminated.sum()
        restarted = terminated
    assert successes > 8


def test_presets_build_without_arguments_and_refuse_their_defining_arguments():
    assert list(memory_envs.RUNNING_PARITY_PRESETS) == [f"RunningParity-{d}-v0" for d in memory_envs.DIFFICULTIES]
    expected = {"Easy": (3, 41), "Medium": (40, 257), "Hard": (1000, 1001)}
    for env_id, preset in memory_envs.RUNNING_PARITY_PRESETS.items():
        for env in (gym.make(env_id), make_vec(env_id, 2)):
            config = env.unwrapped.config
            assert config.lengths == expected[preset.difficulty] == preset.length_range
            assert (config.modulus, config.p, config.mode) == (2, 0.5, "every_step")
    assert env_id not in memory_envs.PRESETS  # the windowed presets (the RL card's) are unchanged
    assert gym.make("RunningParity-Easy-v0", length_range=[3, 41]).unwrapped.config.lengths == (3, 41)
    for kwargs in (dict(modulus=3), dict(length_range=(3, 10)), dict(mode="final"), dict(p=0.2)):
        ((name, value),) = kwargs.items()
        with pytest.raises(ValueError, match=rf"RunningParity-Easy-v0 is a preset \(running_parity at .*refuses "
                                             rf"{re.escape(f'{name}={value!r}')}.*gym.make\('RunningParity-v0'"):
            gym.make("RunningParity-Easy-v0", **kwargs)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(modulus=1), ValueError, "modulus must be an integer >= 2"),
    (dict(modulus=2.0), ValueError, "modulus must be an integer >= 2"),
    (dict(modulus=True), ValueError, "modulus must be an integer >= 2"),
    (dict(length_range=(0, 5)), ValueError, r"length_range \(0, 5\) cannot hold a bit"),
    (dict(length_range=(5, 5)), ValueError, "low < high"),
    (dict(length_range=7), TypeError, "length_range must be a pair"),
    (dict(mode="last"), ValueError, "mode must be one of"),
    (dict(p=1.5), ValueError, r"p must be in \[0, 1\]"),
    (dict(n=3), TypeError, "unexpected keyword argument 'n'"),
    (dict(render_mode="human"), TypeError, "render_mode must be None"),
])
def test_bad_arguments_are_named(kwargs, error, words):
    with pytest.raises(error, match=words):
        gym.make("RunningParity-v0", **kwargs)
    if "render_mode" not in kwargs:
        with pytest.raises(error, match=words):
            make_vec("RunningParity-v0", 2, **kwargs)


def test_bad_actions_set_ns_and_batches_are_refused():
    env = gym.make("RunningParity-v0", modulus=3).unwrapped
    env.reset(seed=0)
    for action in (3, -1, True, 1.0):
        with pytest.raises(ValueError, match=r"action must be an integer in \[0, 3\) \(Discrete\(3\)\)"):
            env.step(action)
    env.step(2)
    with pytest.raises(ValueError, match="running parity has no N"):
        env.set_ns([3])
    venv = make_vec("RunningParity-v0", 2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"values in \{0, 1\}"):
        venv.step(np.array([0, 2]))
    with pytest.raises(ValueError, match="running_parity has no N: pass ns=None"):
        make_batch("running_parity", [3], 4, seed=0)
    with pytest.raises(ValueError, match="modulus applies to the running counts"):
        make_batch("parity", [3], 4, seed=0, modulus=3)
    with pytest.raises(ValueError, match="length must be an integer >= 1"):
        make_batch("running_parity", None, 4, seed=0, length=0)
    with pytest.raises(ValueError, match="task must be one of"):
        make_batch("running-parity", None, 4, seed=0)
