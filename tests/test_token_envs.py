"""The token tasks as Gymnasium envs (WordProblem-v0, ModularArithmetic-v0): checkers, the oracle, labels and
rewards against the task's rules, the native vector env against single envs, presets, bad arguments."""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from test_envs import run_episode
from test_vector import assert_same, make_vec

import memory_envs
from memory_envs import OraclePolicy, tasks

CONFIGS = [
    ("WordProblem-v0", dict()),
    ("WordProblem-v0", dict(group="a5", mode="final")),
    ("WordProblem-v0", dict(group="a4xz5", length_range=(1, 12))),
    ("ModularArithmetic-v0", dict()),
    ("ModularArithmetic-v0", dict(mode="final", length_range=(4, 8))),
]


def task_of(env):
    return env.unwrapped.config.token


@pytest.mark.parametrize("env_id, kwargs", CONFIGS)
def test_gymnasium_and_sb3_env_checkers(env_id, kwargs):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    gym_check_env(gym.make(env_id, **kwargs).unwrapped, skip_render_check=False)
    sb3_check_env(gym.make(env_id, **kwargs).unwrapped, warn=True)


@pytest.mark.parametrize("env_id, kwargs", CONFIGS)
def test_spaces_are_the_tasks_tokens_and_classes(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    task = task_of(env)
    expected = {"WordProblem-v0": tasks.WORD_PREFIX + kwargs.get("group", "s3")}.get(env_id, tasks.MOD_ARITHMETIC)
    assert task.name == expected
    assert env.observation_space == gym.spaces.Discrete(task.vocab)
    assert env.action_space == gym.spaces.Discrete(task.classes)
    obs, _ = env.reset(seed=0)
    assert isinstance(obs, np.integer) and env.observation_space.contains(obs)


@pytest.mark.parametrize("env_id, kwargs", CONFIGS)
def test_oracle_gets_maximum_return_and_labels_are_the_tasks(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    task, config = task_of(env), env.unwrapped.config
    oracle = OraclePolicy.for_env(env)
    for episode in range(15):
        observations, rewards, infos = run_episode(env, oracle, seed=episode)
        tokens = observations[:-1].astype(np.uint8)[None, :]
        length = tokens.shape[1]
        assert config.lengths[0] <= length < config.lengths[1] and observations[-1] == 0
        mask = task.label_mask(length)
        expected = np.where(mask, task.labels(tokens)[0], -1)
        np.testing.assert_array_equal([info["label"][0] for info in infos], expected)
        if config.mode == "final":
            last = np.flatnonzero(mask)[-1]  # the last digit of an even-length expression is step M - 2
            assert rewards.sum() == 1 and rewards[last] == 1
        else:
            np.testing.assert_array_equal(rewards, mask.astype(float))
        assert infos[-1]["is_success"] and infos[-1]["head_accuracy"][0] == 1.0
        assert all(info["ns"].tolist() == [0] for info in infos)


def test_steps_after_an_operator_are_never_scored():
    env = gym.make("ModularArithmetic-v0", length_range=(9, 10))
    for action in range(5):
        observations, rewards, infos = run_episode(env, lambda obs: action, seed=4)
        assert (rewards[1::2] == 0).all() and all(info["label"][0] == -1 for info in infos[1::2])
    oracle = OraclePolicy.for_env(env)
    _, rewards, infos = run_episode(env, oracle, seed=4)
    assert rewards.sum() == 5 and infos[-1]["head_accuracy"][0] == 1.0  # 5 digits, each scored once


@pytest.mark.parametrize("env_id, kwargs, chance", [("WordProblem-v0", dict(), 1 / 6),
                                                    ("ModularArithmetic-v0", dict(length_range=(21, 22)), 0.2)])
def test_random_policy_scores_chance(env_id, kwargs, chance):
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(0)
    accuracy = [run_episode(env, lambda obs: env.action_space.sample(), seed=e)[2][-1]["head_accuracy"][0]
                for e in range(300)]
    assert abs(np.mean(accuracy) - chance) < 0.02


def test_seeding_is_reproducible_and_seeds_differ():
    env = gym.make("WordProblem-v0", group="a5")
    first = run_episode(env, lambda obs: 0, seed=11)[0]
    np.testing.assert_array_equal(first, run_episode(env, lambda obs: 0, seed=11)[0])
    assert not np.array_equal(first, run_episode(env, lambda obs: 0, seed=12)[0])


def _scalars_as_arrays(result):
    """SyncVectorEnv keeps a Discrete env's final observation as the numpy scalar the env returned; the native
    env keeps a 0-d copy of its row: compare them as arrays."""
    for info in (r for r in result if isinstance(r, dict)):
        if "final_obs" in info:
            info["final_obs"] = np.array([None if o is None else np.asarray(o) for o in info["final_obs"]],
                                         dtype=object)
    return result


@pytest.mark.parametrize("env_id, kwargs, autoreset_mode", [
    *((env_id, kwargs, gym.vector.AutoresetMode.NEXT_STEP) for env_id, kwargs in CONFIGS),
    ("WordProblem-v0", dict(group="a4xz5", length_range=(1, 12)), gym.vector.AutoresetMode.SAME_STEP),
    ("ModularArithmetic-v0", dict(mode="final", length_range=(4, 8)), gym.vector.AutoresetMode.SAME_STEP),
])
def test_vector_env_matches_single_envs(env_id, kwargs, autoreset_mode):
    """Every reset and step result equals Gymnasium's SyncVectorEnv of single envs with the same seeds."""
    native = make_vec(env_id, 4, autoreset_mode=autoreset_mode, **kwargs)
    assert isinstance(native.unwrapped, (memory_envs.WordProblemVectorEnv, memory_envs.ModularArithmeticVectorEnv))
    sync = gym.make_vec(env_id, num_envs=4, vectorization_mode="sync",
                        vector_kwargs=dict(autoreset_mode=autoreset_mode), **kwargs)
    assert native.observation_space == sync.observation_space and native.action_space == sync.action_space
    assert_same(native.reset(seed=3), sync.reset(seed=3))
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(150):
        actions = rng.integers(0, native.unwrapped.config.classes, size=native.action_space.shape)
        result = _scalars_as_arrays(native.step(actions))
        assert_same(result, _scalars_as_arrays(sync.step(actions)))
        ended += result[2].sum()
    assert ended > 8


def test_vector_oracle_succeeds_in_every_trial():
    """The native env in NEXT_STEP mode: a terminating step returns the terminal observation, the next step
    (its action ignored) the next trial's first token."""
    venv = make_vec("ModularArithmetic-v0", 6, mode="final", length_range=(2, 9))
    task = venv.unwrapped.config.token
    obs, _ = venv.reset(seed=0)
    seen, restarting, successes = [[token] for token in obs], np.zeros(6, dtype=bool), 0
    for _ in range(200):
        actions = np.array([task.labels(np.array([s], dtype=np.uint8))[0, -1] if s else 0 for s in seen])
        obs, _, terminated, _, info = venv.step(actions)
        assert (info["head_accuracy"][terminated, 0] == 1.0).all() and info["is_success"][terminated].all()
        successes += terminated.sum()
        seen = [[] if terminated[i] else [obs[i]] if restarting[i] else [*seen[i], obs[i]] for i in range(6)]
        restarting = terminated
    assert successes > 20


def test_presets_build_without_arguments_and_refuse_their_defining_arguments():
    ids = list(memory_envs.TOKEN_PRESETS)
    assert "WordProblem-S3-Easy-v0" in ids and "WordProblem-A5-Hard-v0" in ids and "WordProblem-Z60-Medium-v0" in ids
    assert "WordProblem-A4xZ5-Easy-v0" in ids and "ModularArithmetic-Hard-v0" in ids and len(ids) == 15
    expected = {"Easy": (3, 41), "Medium": (40, 257), "Hard": (1000, 1001)}
    for env_id, preset in memory_envs.TOKEN_PRESETS.items():
        for env in (gym.make(env_id), make_vec(env_id, 2)):
            config = env.unwrapped.config
            assert config.lengths == expected[preset.difficulty] == preset.length_range
            assert (config.task, config.mode) == (preset.task, "every_step")
    assert gym.make("WordProblem-A5-Easy-v0").observation_space == gym.spaces.Discrete(60)
    assert gym.make("WordProblem-S3-Easy-v0", group="s3", render_mode="ansi").unwrapped.config.task == "word_s3"
    with pytest.raises(ValueError, match=re.escape("WordProblem-S3-Easy-v0 is a preset (word_s3 at length_range=(3, 41), "
                                                   "mode='every_step') and refuses group='a5'") +
                       r".*gym.make\('WordProblem-v0', group='a5'\)"):
        gym.make("WordProblem-S3-Easy-v0", group="a5")
    with pytest.raises(ValueError, match=r"refuses length_range=\(3, 9\).*gym.make\('WordProblem-v0', "
                                         r"length_range=\(3, 9\), group='a5'\)"):
        gym.make("WordProblem-A5-Easy-v0", length_range=(3, 9))
    with pytest.raises(ValueError, match=r"refuses mode='final'.*gym.make\('ModularArithmetic-v0', mode='final'\)"):
        make_vec("ModularArithmetic-Easy-v0", 2, mode="final")


def test_the_hints_of_a_preset_refusal_work_as_printed():
    for env_id, kwargs in [("WordProblem-A5-Easy-v0", dict(length_range=(3, 9))),
                           ("ModularArithmetic-Medium-v0", dict(mode="final"))]:
        with pytest.raises(ValueError) as error:
            gym.make(env_id, **kwargs)
        hint = re.search(r"gym\.make\(.*\)$", str(error.value)).group(0)
        env = eval(hint, {"gym": gym})
        assert env.unwrapped.config.task == memory_envs.TOKEN_PRESETS[env_id].task


@pytest.mark.parametrize("env_id, kwargs, error, words", [
    ("WordProblem-v0", dict(group="s9"), ValueError, r"group must be .*got 's9' \(sN needs 3 <= N <= 5\)"),
    ("WordProblem-v0", dict(group=3), ValueError, "group must be .*got 3"),
    ("WordProblem-v0", dict(group="a5xz5"), ValueError, r"group must be .*\(order 300 or more\)"),
    ("WordProblem-v0", dict(length_range=(0, 5)), ValueError, r"length_range \(0, 5\) cannot hold a bit"),
    ("ModularArithmetic-v0", dict(length_range=(5, 5)), ValueError, "low < high"),
    ("ModularArithmetic-v0", dict(length_range=7), TypeError, "length_range must be a pair"),
    ("ModularArithmetic-v0", dict(mode="last"), ValueError, "mode must be one of"),
    ("ModularArithmetic-v0", dict(group="s3"), TypeError, "unexpected keyword argument 'group'"),
    ("WordProblem-v0", dict(p=0.5), TypeError, "unexpected keyword argument 'p'"),
    ("WordProblem-v0", dict(length_range=(3, 10**12)), ValueError, "length_range .* needs"),
    ("WordProblem-v0", dict(render_mode="human"), TypeError, "render_mode must be None"),
])
def test_bad_arguments_are_named(env_id, kwargs, error, words):
    with pytest.raises(error, match=words):
        gym.make(env_id, **kwargs)
    if "render_mode" not in kwargs:
        with pytest.raises(error, match=words):
            make_vec(env_id, 2, **kwargs)


def test_bad_actions_and_set_ns_are_refused():
    env = gym.make("WordProblem-v0", group="a5").unwrapped
    env.reset(seed=0)
    for action in (60, -1, True, 1.0):
        with pytest.raises(ValueError, match=r"action must be an integer in \[0, 60\) \(Discrete\(60\)\)"):
            env.step(action)
    env.step(59)
    with pytest.raises(ValueError, match="word_a5 has no N"):
        env.set_ns([3])
    venv = make_vec("ModularArithmetic-v0", 2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"values in \[0, 5\)"):
        venv.step(np.array([0, 5]))


def test_render_shows_the_tokens_by_name():
    env = gym.make("ModularArithmetic-v0", render_mode="ansi", length_range=(5, 6))
    env.reset(seed=0)
    for _ in range(3):
        env.step(0)
    text = env.render()
    assert re.search(r"mod_arithmetic ns=\[0\] t=3/5 tokens=[0-4][-+*][0-4][-+*] ", text), text
    env = gym.make("WordProblem-v0", group="z60", render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert f"tokens={obs} " in env.render()
