"""The single and vector environments: API conformance, the timing contract, determinism, oracle, bad input."""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import memory_envs
from memory_envs import OraclePolicy, tasks

CONFIGS = [
    ("NParity-v0", dict(n=3)),
    ("NParity-v0", dict(heads=[1, 2, 4], mode="every_step")),
    ("NDMS-v0", dict(n=2, mode="every_step")),
    ("NDMS-v0", dict(heads=[2, 3, 4])),
]


@pytest.mark.parametrize("env_id, kwargs", CONFIGS)
def test_gymnasium_and_sb3_env_checkers(env_id, kwargs):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    gym_check_env(gym.make(env_id, **kwargs).unwrapped, skip_render_check=False)
    sb3_check_env(gym.make(env_id, **kwargs).unwrapped, warn=True)


def test_spaces():
    env = gym.make("NParity-v0", n=20)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    assert env.action_space == gym.spaces.Discrete(2)
    multi = gym.make("NDMS-v0", heads=[2, 3, 4])
    assert multi.action_space == gym.spaces.MultiDiscrete([2, 2, 2])
    wide = gym.make("NDMS-v0", heads=[2], max_heads=5)
    assert wide.action_space == gym.spaces.MultiDiscrete([2] * 5)


def run_episode(env, policy, seed=None):
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    observations, rewards, infos, done = [obs.copy()], [], [], False
    while not done:
        obs, reward, done, truncated, info = env.step(policy(obs))
        assert not truncated
        observations.append(obs.copy())
        rewards.append(reward)
        infos.append(info)
    return np.array(observations), np.array(rewards), infos


@pytest.mark.parametrize("task", tasks.TASKS)
def test_timing_contract_final_mode(task):
    """reset() gives x_1; only the action after x_M is scored, against the label of the whole trial."""
    env = gym.make(memory_envs.ENV_IDS[task], heads=[2, 3])
    observations, rewards, infos = run_episode(env, lambda obs: np.array([1, 0]), seed=3)
    bits = observations[:-1, 0].astype(np.uint8)
    assert observations[-1, 0] == 0.0  # terminal observation
    length = len(bits)
    assert 3 + 2 <= length < 4 * 3 + 2
    assert np.all(rewards[:-1] == 0)
    expected = tasks.final_labels(task, bits[None, :], [2, 3])[0]
    assert infos[-1]["label"].tolist() == expected.tolist()
    assert rewards[-1] == ((expected == [1, 0]).sum()) / 2
    assert infos[-1]["head_accuracy"].tolist() == (expected == [1, 0]).astype(float).tolist()
    assert all(info["head_accuracy"].tolist() == [-1.0, -1.0] for info in infos[:-1])  # none before the end


@pytest.mark.parametrize("task", tasks.TASKS)
def test_timing_contract_every_step_mode(task):
    env = gym.make(memory_envs.ENV_IDS[task], n=3, mode="every_step", p=0.5)
    observations, rewards, infos = run_episode(env, lambda obs: 1, seed=5)
    bits = observations[:-1, 0].astype(np.uint8)
    labels, mask = tasks.streaming_labels(task, bits[None, :], [3])
    for t, info in enumerate(infos):
        assert info["label"].tolist() == [labels[0, t, 0] if mask[t, 0] else -1]
        assert rewards[t] == (1.0 if mask[t, 0] and labels[0, t, 0] == 1 else 0.0)


@pytest.mark.parametrize("env_id, kwargs", CONFIGS)
def test_oracle_gets_maximum_return(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    oracle = OraclePolicy.for_env(env)
    config = env.unwrapped.config
    for episode in range(20):
        _, rewards, infos = run_episode(env, oracle, seed=episode)
        length = len(rewards)
        if config.mode == "final":
            maximum = 1.0
        else:
            maximum = sum(length - n + 1 for n in config.ns) / len(config.ns)
        assert rewards.sum() == pytest.approx(maximum)
        assert infos[-1]["is_success"].dtype == bool and infos[-1]["is_success"].shape == ()
        assert infos[-1]["is_success"]
        assert not any(info["is_success"] for info in infos[:-1])  # False until the end


@pytest.mark.parametrize("mode", ["final", "every_step"])
def test_random_policy_is_near_chance(mode):
    env = gym.make("NDMS-v0", heads=[2, 5], mode=mode)
    env.action_space.seed(0)
    fractions = []
    for episode in range(300):
        _, rewards, _ = run_episode(env, lambda obs: env.action_space.sample(), seed=episode)
        length = len(rewards)
        maximum = 1.0 if mode == "final" else ((length - 1) + (length - 4)) / 2
        fractions.append(rewards.sum() / maximum)
    assert abs(np.mean(fractions) - 0.5) < 0.05


def test_reset_seed_is_deterministic_and_seeds_differ():
    env = gym.make("NParity-v0", n=4)
    a = [run_episode(env, lambda o: 0, seed=11)[0] for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    episodes = lambda seed: [run_episode(env, lambda o: 0, seed=seed if i == 0 else None)[0] for i in range(40)]
    first, again, other = episodes(1), episodes(1), episodes(2)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(first, other))


def test_parity_default_statistics_are_per_trial_uniform_and_dms_balanced():
    parity = gym.make("NParity-v0", n=10)
    means = [run_episode(parity, lambda o: 0, seed=s)[0][:-1].mean() for s in range(300)]
    assert np.std(means) > 0.25  # p ~ U(0, 1): std ~ 0.3; Bernoulli(0.5) noise alone: ~ 0.1
    dms = gym.make("NDMS-v0", n=10)
    means = [run_episode(dms, lambda o: 0, seed=s)[0][:-1].mean() for s in range(300)]
    assert np.std(means) < 0.15 and abs(np.mean(means) - 0.5) < 0.03


def test_length_range_option():
    env = gym.make("NParity-v0", n=3, length_range=(7, 8))
    for s in range(5):
        _, rewards, _ = run_episode(env, lambda o: 0, seed=s)
        assert len(rewards) == 7


def test_render_ansi():
    env = gym.make("NParity-v0", n=2, render_mode="ansi")
    env.reset(seed=0)
    env.step(1)
    text = env.render()
    assert "parity" in text and "t=1/" in text and "last_action=1" in text


def test_step_after_episode_end_raises():
    env = memory_envs.NParityEnv(n=2, length_range=(2, 3))
    env.reset(seed=0)
    env.step(0)
    env.step(0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(n=0), ValueError, "n must be an integer >= 1"),
        (dict(n=2.0), TypeError, "n must be an integer"),
        (dict(heads=[]), ValueError, "heads must not be empty"),
        (dict(heads=[2, 3, 2]), ValueError, "duplicates"),
        (dict(heads=3), TypeError, "heads must be a list"),
        (dict(n=[2, 3]), TypeError, "n must be one integer"),
        (dict(n=2, heads=[2]), ValueError, "at most one of n"),
        (dict(n=2, p=-0.1), ValueError, "p must be in"),
        (dict(n=2, p=float("nan")), ValueError, "p must be in"),
        (dict(n=5, length_range=(4, 20)), ValueError, "cannot hold the largest N=5"),
        (dict(n=5, length_range=(10,)), TypeError, "pair"),
        (dict(n=2, mode="sometimes"), ValueError, "mode must be one of"),
        (dict(n=2, max_heads=3), ValueError, "max_heads must be 1"),
        (dict(heads=[2, 3], max_heads=1), ValueError, "max_heads=1"),
        (dict(n=2, render_mode="human"), TypeError, "render_mode must be None or one of"),
    ],
)
def test_env_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        gym.make("NParity-v0", **kwargs)


def test_dms_needs_n_at_least_two():
    with pytest.raises(ValueError, match="n must be an integer >= 2 for task 'dms'"):
        gym.make("NDMS-v0", n=1)
    with pytest.raises(ValueError, match=">= 2"):
        gym.make_vec("NDMS-v0", num_envs=2, vectorization_mode="vector_entry_point", heads=[1, 2])


def test_unknown_task():
    with pytest.raises(ValueError, match="task must be one of"):
        memory_envs.MemoryTaskEnv("copy", n=2)


@pytest.mark.parametrize("action", [2, -1, 1.0, True, "1", np.array([0, 1])])
def test_bad_action_single_head(action):
    env = memory_envs.NParityEnv(n=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be 0 or 1"):
        env.step(action)


@pytest.mark.parametrize("action", [np.array([0, 1]), np.array([0, 1, 2]), np.array([0.0, 1.0, 1.0]), 1])
def test_bad_action_multi_head(action):
    env = memory_envs.NDMSEnv(heads=[2, 3, 4])
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer array of shape \(3,\)"):
        env.step(action)


def test_set_ns_checks_and_applies_at_next_reset():
    env = memory_envs.NParityEnv(heads=[2], max_heads=3)
    env.reset(seed=0)
    env.set_ns([2, 3])
    assert env.ns == (2,)
    env.reset()
    assert env.ns == (2, 3)
    with pytest.raises(ValueError, match="max_heads=3"):
        env.set_ns([2, 3, 4, 5])
    single = memory_envs.NParityEnv(n=2)
    with pytest.raises(ValueError, match="exactly one N"):
        single.set_ns([2, 3])


INFO_DTYPES = {"label": np.int8, "ns": np.int64, "head_accuracy": np.float64, "is_success": np.bool_}


@pytest.mark.parametrize("kwargs", [dict(n=3), dict(heads=[2, 4], max_heads=3, mode="every_step")])
def test_info_has_fixed_keys_shapes_and_dtypes_in_single_and_vector_env(kwargs):
    """Every info, reset and step, single and native vector env: the same keys, numpy values of fixed
    shape and dtype (issue 15, failure 3); ns/label/head_accuracy padded to max_heads."""
    heads = kwargs.get("max_heads", 1)
    shapes = {"label": (heads,), "ns": (heads,), "head_accuracy": (heads,), "is_success": ()}
    env = gym.make("NDMS-v0", **kwargs)
    _, _, infos = run_episode(env, lambda obs: env.action_space.sample(), seed=0)
    infos.insert(0, env.reset(seed=0)[1])
    for info in infos:
        assert set(info) == set(memory_envs.INFO_KEYS)
        for key, value in info.items():
            assert isinstance(value, np.ndarray) and value.dtype == INFO_DTYPES[key] and value.shape == shapes[key]
    ns = infos[-1]["ns"].tolist()
    assert ns == [3] if "n" in kwargs else ns == [2, 4, 0]
    assert all(info["head_accuracy"].tolist() == [-1.0] * heads and not info["is_success"] for info in infos[:-1])
    assert infos[-1]["head_accuracy"][len(env.unwrapped.ns):].tolist() == [-1.0] * (heads - len(env.unwrapped.ns))
    venv = gym.make_vec("NDMS-v0", num_envs=5, vectorization_mode="vector_entry_point", **kwargs)
    infos = [venv.reset(seed=0)[1]] + [venv.step(venv.action_space.sample())[4] for _ in range(40)]
    for info in infos:
        assert set(info) == {key for name in memory_envs.INFO_KEYS for key in (name, "_" + name)}
        for key in memory_envs.INFO_KEYS:
            assert info[key].dtype == INFO_DTYPES[key] and info[key].shape == (5, *shapes[key])
            assert info["_" + key].all()


@pytest.mark.parametrize("kwargs", [{"n": 3}, {"heads": [2, 3]}, {"p": 0.3}, {"mode": "every_step"}])
def test_a_preset_refuses_arguments_that_change_what_defines_it(kwargs):
    """Issue 23, point 7: gym.make("NDMS-Hard-v0", n=3) does not silently build an N = 3 env."""
    ((name, value),) = kwargs.items()
    for make in (lambda **kw: gym.make("NDMS-Hard-v0", **kw),
                 lambda **kw: gym.make_vec("NDMS-Hard-v0", num_envs=2, vectorization_mode="vector_entry_point", **kw)):
        with pytest.raises(ValueError, match=r"NDMS-Hard-v0 is a preset \(dms at n=40.*refuses "
                                             rf"{re.escape(f'{name}={value!r}')}.*gym.make\('NDMS-v0', {name}="):
            make(**kwargs)


def test_ids_build_without_arguments_and_presets_by_difficulty():
    """gym.make(id) needs no N (issue 15, failure 2); presets Easy/Medium/Hard per task, single and vector."""
    assert gym.make("NParity-v0").unwrapped.ns == (tasks.DEFAULT_N["parity"],)
    assert gym.make("NDMS-v0").unwrapped.ns == (tasks.DEFAULT_N["dms"],)
    assert list(memory_envs.PRESETS) == [f"{name}-{level}-v0" for name in ("NParity", "NDMS")
                                         for level in memory_envs.DIFFICULTIES]
    assert memory_envs.presets("Hard") == ["NParity-Hard-v0", "NDMS-Hard-v0"]
    assert memory_envs.presets(task="dms") == ["NDMS-Easy-v0", "NDMS-Medium-v0", "NDMS-Hard-v0"]
    for task in tasks.TASKS:
        ns = [memory_envs.PRESETS[env_id].n for env_id in memory_envs.presets(task=task)]
        assert ns == sorted(ns) and ns[0] == tasks.DEFAULT_N[task]
    for env_id, preset in memory_envs.PRESETS.items():
        env = gym.make(env_id)
        assert env.unwrapped.config.task == preset.task and env.unwrapped.ns == (preset.n,)
        assert env.unwrapped.config.p == 0.5 and env.unwrapped.config.mode == "final"
        assert env.action_space == gym.spaces.Discrete(2)
        venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
        assert venv.unwrapped.ns == (preset.n,)
    assert gym.make("NDMS-Hard-v0", length_range=(42, 50)).unwrapped.config.lengths == (42, 50)
    assert gym.make("NDMS-Hard-v0", n=40, p=0.5, mode="final").unwrapped.ns == (40,)  # the preset's own values
    with pytest.raises(ValueError, match="difficulty must be one of"):
        memory_envs.presets("Extreme")
