"""The native vector env: same trajectories as single envs, autoreset, batched info, bad input."""

import gymnasium as gym
import numpy as np
import pytest

import memory_envs


def make_vec(env_id, num_envs, **kwargs):
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


@pytest.mark.parametrize(
    "env_id, kwargs",
    [
        ("NParity-v0", dict(n=3)),
        ("NParity-v0", dict(heads=[1, 3], mode="every_step")),
        ("NDMS-v0", dict(heads=[2, 4], max_heads=3)),
        ("NDMS-v0", dict(n=5, mode="every_step", p=0.3)),
    ],
)
def test_vector_env_matches_single_envs_with_matching_seeds(env_id, kwargs):
    num_envs, steps, seed = 5, 300, 42
    venv = make_vec(env_id, num_envs, **kwargs)
    assert isinstance(venv.unwrapped, memory_envs.MemoryTaskVectorEnv)
    singles = [gym.make(env_id, **kwargs) for _ in range(num_envs)]
    rng = np.random.default_rng(0)
    obs_v, _ = venv.reset(seed=seed)
    obs_s = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    needs_reset = [False] * num_envs
    episodes_ended = 0
    for _ in range(steps):
        np.testing.assert_array_equal(obs_v, np.stack(obs_s))
        actions = rng.integers(0, 2, size=venv.action_space.shape)
        obs_v, rew_v, term_v, trunc_v, info_v = venv.step(actions)
        assert not trunc_v.any()
        for i, env in enumerate(singles):
            if needs_reset[i]:  # NEXT_STEP autoreset: this step resets env i, reward 0
                obs_s[i], _ = env.reset()
                assert rew_v[i] == 0.0 and not term_v[i]
                needs_reset[i] = False
                continue
            obs_s[i], reward, terminated, _, info = env.step(actions[i])
            assert rew_v[i] == pytest.approx(reward)
            assert term_v[i] == terminated
            if terminated:
                episodes_ended += 1
                k = len(info["head_accuracy"])
                np.testing.assert_allclose(info_v["head_accuracy"][i][:k], info["head_accuracy"])
                assert info_v["is_success"][i] == info["is_success"]
                needs_reset[i] = True
    assert episodes_ended > num_envs  # several episodes per env, so autoreset was exercised


def test_vector_env_oracle_scores_every_trial():
    venv = make_vec("NDMS-v0", 16, heads=[2, 3, 4])
    obs, _ = venv.reset(seed=0)
    history = [[] for _ in range(16)]
    successes = 0
    restarted = np.zeros(16, dtype=bool)
    for _ in range(200):
        actions = np.zeros((16, 3), dtype=np.int64)
        for i in range(16):
            history[i].append(int(obs[i, 0]))
            labels, _ = memory_envs.tasks.streaming_labels("dms", np.array([history[i]], np.uint8), [2, 3, 4])
            actions[i] = labels[0, -1]
        obs, rewards, terminated, _, info = venv.step(actions)
        if terminated.any():
            assert info["is_success"][terminated].all()
            successes += terminated.sum()
        for i in np.flatnonzero(restarted | terminated):  # NEXT_STEP: the step after the end resets
            history[i] = []
        restarted = terminated
    assert successes > 16


def test_vector_env_per_env_lengths_differ():
    venv = make_vec("NParity-v0", 64, n=10)
    venv.reset(seed=1)
    first_end = np.full(64, -1)
    for t in range(50):
        _, _, terminated, _, _ = venv.step(np.zeros(64, dtype=np.int64))
        first_end[(first_end < 0) & terminated] = t + 1
    assert len(set(first_end[first_end > 0].tolist())) > 5
    assert first_end.min() >= 12


def test_vector_env_bad_input():
    with pytest.raises(ValueError, match="num_envs must be a positive integer"):
        memory_envs.NParityVectorEnv(num_envs=0, n=2)
    venv = memory_envs.NParityVectorEnv(num_envs=3, n=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        venv.step(np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=r"values in \{0, 1\}"):
        venv.step(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="seed must be an int or a list of 3"):
        venv.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="heads must not be empty"):
        make_vec("NParity-v0", 2, heads=[])


def test_vector_set_ns_grows_lengths_and_keeps_running_trials():
    venv = memory_envs.NParityVectorEnv(num_envs=8, heads=[2], max_heads=3)
    venv.reset(seed=0)
    venv.step(np.zeros((8, 3), dtype=np.int64))
    venv.set_ns([2, 3, 4])
    seen_ns = set()
    for _ in range(60):
        _, _, _, _, info = venv.step(np.zeros((8, 3), dtype=np.int64))
        seen_ns.update(tuple(row) for row in info["ns"])
    assert (2, 0, 0) in seen_ns and (2, 3, 4) in seen_ns


def assert_same(a, b, path="result"):
    """Equal structure, keys, dtypes, shapes and values (object arrays element by element)."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{k}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (path, sorted(a), sorted(b))
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and b.dtype == object and a.shape == b.shape, path
        for x, y in zip(a, b):
            assert (x is None) == (y is None), path
            if x is not None:
                assert_same(x, y, path)
    else:
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), (path, type(a), type(b))
        assert (a.dtype, a.shape) == (b.dtype, b.shape), (path, a.dtype, b.dtype, a.shape, b.shape)
        np.testing.assert_array_equal(a, b, err_msg=path)


@pytest.mark.parametrize("autoreset_mode", list(gym.vector.AutoresetMode))
@pytest.mark.parametrize(
    "env_id, kwargs",
    [("NParity-v0", dict(n=3)), ("NDMS-v0", dict(heads=[2, 4], max_heads=3, mode="every_step"))],
)
def test_autoreset_modes_equal_sync_vector_env(autoreset_mode, env_id, kwargs):
    """Every reset and step result (infos, final_obs/final_info included) equals Gymnasium's SyncVectorEnv
    of single envs in the same autoreset mode with the same seeds (issue 15, failure 4)."""
    native = make_vec(env_id, 4, autoreset_mode=autoreset_mode, **kwargs)
    sync = gym.make_vec(env_id, num_envs=4, vectorization_mode="sync",
                        vector_kwargs=dict(autoreset_mode=autoreset_mode), **kwargs)
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == autoreset_mode
    assert_same(native.reset(seed=7), sync.reset(seed=7))
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(120):
        actions = rng.integers(0, 2, size=native.action_space.shape)
        result = native.step(actions)
        assert_same(result, sync.step(actions))
        terminated = result[2]
        ended += terminated.sum()
        if autoreset_mode == gym.vector.AutoresetMode.DISABLED and terminated.any():
            options = lambda: {"reset_mask": terminated.copy()}  # noqa: E731 - SyncVectorEnv pops the key
            assert_same(native.reset(options=options()), sync.reset(options=options()))
    assert ended > 8


def test_disabled_autoreset_needs_reset_of_ended_envs_and_bad_modes_are_named():
    venv = make_vec("NParity-v0", 2, n=1, length_range=(1, 2), autoreset_mode="Disabled")
    venv.reset(seed=0)
    _, _, terminated, _, _ = venv.step(np.zeros(2, dtype=np.int64))
    assert terminated.all()
    with pytest.raises(RuntimeError, match=r"envs \[0, 1\] have ended and autoreset_mode is DISABLED"):
        venv.step(np.zeros(2, dtype=np.int64))
    venv.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(RuntimeError, match=r"envs \[1\] have ended"):
        venv.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": np.array([1, 0])})
    with pytest.raises(ValueError, match=r"autoreset_mode must be one of \['NextStep', 'SameStep', 'Disabled'\]"):
        make_vec("NParity-v0", 2, n=2, autoreset_mode="sometimes")
    with pytest.raises(TypeError, match="render_mode must be None"):
        make_vec("NParity-v0", 2, n=2, render_mode="rgb_array")
