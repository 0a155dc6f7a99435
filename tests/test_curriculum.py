"""Curriculum schedules advance exactly by the paper's rule; wrappers apply them to the envs."""

import json

import gymnasium as gym
import numpy as np
import pytest

from memory_envs import (
    Curriculum,
    CurriculumDriver,
    CurriculumWrapper,
    EpisodeAccuracyTracker,
    EpisodeResultsWrapper,
    OraclePolicy,
    VectorCurriculumWrapper,
)


def test_single_head_advances_by_the_rule():
    c = Curriculum("single", start=2)
    assert c.ns == [2] and c.max_heads == 1
    assert not c.update({2: 0.98})  # must exceed the threshold
    assert c.ns == [2] and c.solved is None
    assert c.update({2: 0.981})
    assert c.ns == [3] and c.solved == 2 and c.advances == 1


def test_multi_head_rule_needs_mean_and_newest():
    c = Curriculum("multi", start=2)
    assert c.update({2: 1.0})
    assert c.ns == [2, 3]
    assert not c.update({2: 1.0, 3: 0.97})  # mean 0.985 passes, newest fails
    assert not c.update({2: 0.95, 3: 0.99})  # newest passes, mean 0.97 fails
    assert c.update({2: 0.99, 3: 0.99})
    assert c.ns == [2, 3, 4] and c.solved == 3


def test_sliding_window_drops_oldest():
    c = Curriculum("sliding", start=2, window=3, drop=2)
    assert c.max_heads == 3
    for _ in range(2):
        c.update({n: 1.0 for n in c.ns})
    assert c.ns == [2, 3, 4]
    c.update({n: 1.0 for n in c.ns})
    assert c.ns == [4, 5]  # [2, 3, 4, 5] exceeds the window: drop the 2 oldest
    c.update({n: 1.0 for n in c.ns})
    assert c.ns == [4, 5, 6]


def test_n_max_finishes_and_threshold_configurable():
    c = Curriculum("multi", start=2, n_max=3, threshold=0.5)
    assert c.max_heads == 2
    assert c.update({2: 0.6})
    assert not c.update({2: 0.6, 3: 0.6})
    assert c.finished and c.solved == 3 and c.ns == [2, 3]
    assert not c.update({2: 1.0, 3: 1.0})


def test_state_dict_round_trip_through_json():
    c = Curriculum("sliding", start=3, n_max=20, threshold=0.9, window=4, drop=1)
    for _ in range(6):
        c.update({n: 1.0 for n in c.ns})
    restored = Curriculum.from_state_dict(json.loads(json.dumps(c.state_dict())))
    assert restored.state_dict() == c.state_dict()
    restored.update({n: 1.0 for n in restored.ns})
    c.update({n: 1.0 for n in c.ns})
    assert restored.ns == c.ns


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(kind="spiral"), "kind must be one of"),
        (dict(start=0), "start must be an integer >= 1"),
        (dict(start=5, n_max=4), "n_max must be an integer >= 5"),
        (dict(threshold=1.0), "threshold"),
        (dict(kind="sliding", window=0), "window"),
        (dict(kind="sliding", window=2, drop=3), "drop must be <= window"),
    ],
)
def test_curriculum_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Curriculum(**kwargs)


def test_update_requires_every_active_head():
    c = Curriculum("multi")
    c.update({2: 1.0})
    with pytest.raises(ValueError, match=r"missing the active Ns \[3\]"):
        c.update({2: 1.0})


def tracker_one_episode_short(accuracy: float) -> EpisodeAccuracyTracker:
    """A tracker on N=2, 3 whose N=3 window lacks one episode."""
    tracker = EpisodeAccuracyTracker(Curriculum("multi", start=2, n_max=5), window=4)
    tracker.curriculum.update({2: 1.0})
    for _ in range(3):
        tracker.record([2, 3], [1.0, accuracy])
    tracker.record([2], [1.0])
    return tracker


@pytest.mark.parametrize("accuracy, advances", [(0.99, True), (0.9, False)])
def test_tracker_state_round_trip_makes_the_same_decision(accuracy, advances):
    original = tracker_one_episode_short(accuracy)
    state = json.loads(json.dumps(original.state_dict()))
    assert state == {"2": [1.0] * 4, "3": [accuracy] * 3}
    restored = EpisodeAccuracyTracker(Curriculum.from_state_dict(original.curriculum.state_dict()), window=4)
    restored.load_state_dict(state)
    assert restored.state_dict() == original.state_dict()
    fresh = EpisodeAccuracyTracker(Curriculum.from_state_dict(original.curriculum.state_dict()), window=4)
    for tracker in (original, restored, fresh):
        tracker.record([2, 3], [1.0, accuracy])
    assert original.maybe_advance() is restored.maybe_advance() is advances
    assert restored.curriculum.ns == original.curriculum.ns == ([2, 3, 4] if advances else [2, 3])
    assert restored.state_dict() == original.state_dict()
    assert not fresh.maybe_advance()  # without the state, one episode is not a full window


@pytest.mark.parametrize(
    "state, words",
    [
        ([[1.0]], r"must be a mapping of str\(N\) to accuracies, got list"),
        ({2: [1.0]}, r"keys must be str\(N\), got 2"),
        ({"x": [1.0]}, r"keys must be str\(N\), got 'x'"),
        ({"4": [1.0]}, r"N=4, not an active N of the curriculum \[2, 3\]"),
        ({"3": 0.5}, "N=3 must be a list of accuracies, got 0.5"),
        ({"3": "0.5"}, "N=3 must be a list of accuracies"),
        ({"3": [1.0] * 5}, r"N=3 has 5 episodes, more than the window \(4\)"),
        ({"3": [1.5]}, r"N=3: each must be an accuracy, a real number in \[0, 1\], got 1.5"),
        ({"3": [None]}, "N=3: each must be an accuracy, .* got None"),
        ({"3": [float("nan")]}, "N=3: each must be an accuracy, .* got nan"),
    ],
)
def test_tracker_load_state_dict_rejects_bad_state(state, words):
    tracker = tracker_one_episode_short(0.99)
    before = tracker.state_dict()
    with pytest.raises(ValueError, match=words):
        tracker.load_state_dict(state)
    assert tracker.state_dict() == before  # left as it was


def test_wrapper_advances_single_env_with_oracle():
    curriculum = Curriculum("multi", start=2, n_max=5)
    env = CurriculumWrapper(gym.make("NParity-v0", heads=[2], max_heads=4), curriculum, window=5)
    assert env.action_space == gym.spaces.MultiDiscrete([2] * 4)
    for episode in range(40):
        obs, _ = env.reset(seed=episode if episode == 0 else None)
        oracle = OraclePolicy.for_env(env)  # built per episode: knows the episode's Ns
        done = False
        while not done:
            obs, _, done, _, info = env.step(oracle(obs))
    assert curriculum.finished and curriculum.solved == 5
    assert env.action_space == gym.spaces.MultiDiscrete([2] * 4)


def test_wrapper_does_not_advance_a_random_policy():
    curriculum = Curriculum("single", start=2)
    env = CurriculumWrapper(gym.make("NDMS-v0", n=2), curriculum, window=10)
    env.action_space.seed(0)
    for episode in range(60):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, done, _, info = env.step(env.action_space.sample())
    assert curriculum.ns == [2] and info["curriculum_ns"] == (2,)


@pytest.mark.parametrize("autoreset_mode", [gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.SAME_STEP])
def test_vector_wrapper_advances_with_oracle(autoreset_mode):
    """In SAME_STEP mode the ended episodes' accuracy comes from info["final_info"]."""
    same_step = autoreset_mode == gym.vector.AutoresetMode.SAME_STEP
    curriculum = Curriculum("single", start=2, n_max=4)
    venv = VectorCurriculumWrapper(
        gym.make_vec("NDMS-v0", num_envs=8, vectorization_mode="vector_entry_point", n=2,
                     autoreset_mode=autoreset_mode),
        curriculum, window=16,
    )
    obs, info = venv.reset(seed=0)
    history = [[] for _ in range(8)]
    ns_of_env = info["ns"][:, 0].copy()
    restarted = np.zeros(8, dtype=bool)
    for _ in range(400):
        actions = np.zeros(8, dtype=np.int64)
        for i in range(8):
            history[i].append(int(obs[i, 0]))
            n = ns_of_env[i]
            actions[i] = int(len(history[i]) >= n and history[i][-n] == history[i][-1])
        obs, _, terminated, _, info = venv.step(actions)
        for i in np.flatnonzero(restarted | terminated):
            history[i] = []
        if same_step:  # the ended envs have started their next trial: info is its reset info
            ns_of_env[terminated] = info["ns"][terminated, 0]
        else:  # the step after the end restarts with the reset info
            ns_of_env[restarted] = info["ns"][restarted, 0]
            restarted = terminated
        if curriculum.finished:
            break
    assert curriculum.finished and curriculum.solved == 4


def test_wrapper_rejects_env_that_does_not_fit():
    with pytest.raises(ValueError, match="max_heads=4"):
        CurriculumWrapper(gym.make("NParity-v0", heads=[2]), Curriculum("multi", n_max=5))
    with pytest.raises(ValueError, match="needs n_max"):
        CurriculumWrapper(gym.make("NParity-v0", heads=[2]), Curriculum("multi"))
    with pytest.raises(ValueError, match="single-head curriculum needs an env made with n="):
        CurriculumWrapper(gym.make("NParity-v0", heads=[2]), Curriculum("single"))
    with pytest.raises(ValueError, match="start must be an integer >= 2"):
        CurriculumWrapper(gym.make("NDMS-v0", n=2), Curriculum("single", start=1))


def test_curriculum_wrappers_inside_sync_vector_env_advance_without_crashing():
    """Multi-head CurriculumWrappers sharing one tracker inside Gymnasium's SyncVectorEnv: the infos keep
    their shapes when the Ns grow (issue 15, failure 3: "could not broadcast ... (2,) into (1,)")."""
    tracker = EpisodeAccuracyTracker(Curriculum("multi", start=2, n_max=4), window=4)
    make = lambda: CurriculumWrapper(PlaysOracle(gym.make("NParity-v0", heads=[2], max_heads=3)), tracker)  # noqa: E731
    venv = gym.vector.SyncVectorEnv([make, make])
    venv.reset(seed=0)
    for _ in range(300):
        _, _, _, _, info = venv.step(np.zeros((2, 3), dtype=np.int64))
        if tracker.curriculum.finished:
            break
    assert tracker.curriculum.finished and tracker.curriculum.solved == 4
    assert info["curriculum_ns"].tolist() == [[2, 3, 4]] * 2 and info["ns"].shape == (2, 3)


class PlaysOracle(gym.Wrapper):
    """Plays the exact answer whatever the action (the curriculum under test sees successful episodes)."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.oracle, self.obs = OraclePolicy.for_env(self.env), obs
        return obs, info

    def step(self, action):
        result = self.env.step(self.oracle(self.obs))
        self.obs = result[0]
        return result


def make_remote_env():
    return EpisodeResultsWrapper(PlaysOracle(gym.make("NDMS-v0", heads=[2], max_heads=3)))


def drive_until_finished(venv, step, driver):
    for _ in range(60):
        for _ in range(10):
            step()
        driver.update()
        if driver.curriculum.finished:
            return
    raise AssertionError(f"the curriculum did not finish: {driver.curriculum}")


def test_curriculum_driver_over_async_vector_env():
    """One curriculum for envs in worker processes, driven from the training side (issue 15, failure 6)."""
    venv = gym.vector.AsyncVectorEnv([make_remote_env] * 2, context="fork")
    try:
        driver = CurriculumDriver(venv, Curriculum("multi", start=2, n_max=4), window=4)
        venv.reset(seed=0)
        drive_until_finished(venv, lambda: venv.step(np.zeros((2, 3), dtype=np.int64)), driver)
        assert driver.curriculum.solved == 4 and driver.curriculum.ns == [2, 3, 4]
        for _ in range(40):  # every worker starts a trial with the new Ns
            venv.step(np.zeros((2, 3), dtype=np.int64))
        assert [config.ns for config in venv.get_attr("config")] == [(2, 3, 4)] * 2
    finally:
        venv.close()


def test_curriculum_driver_over_sb3_subproc_vec_env():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = SubprocVecEnv([make_remote_env] * 2, start_method="fork")
    try:
        driver = CurriculumDriver(venv, Curriculum("multi", start=2, n_max=4), window=4)
        venv.reset()
        drive_until_finished(venv, lambda: venv.step(np.zeros((2, 3), dtype=np.int64)), driver)
        for _ in range(40):
            venv.step(np.zeros((2, 3), dtype=np.int64))
        assert [config.ns for config in venv.get_attr("config")] == [(2, 3, 4)] * 2
    finally:
        venv.close()


def test_curriculum_driver_needs_episode_results_wrapper_and_fitting_envs():
    venv = gym.vector.SyncVectorEnv([lambda: gym.make("NDMS-v0", heads=[2], max_heads=3)])
    with pytest.raises(ValueError, match="EpisodeResultsWrapper"):
        CurriculumDriver(venv, Curriculum("multi", n_max=4))
    venv = gym.vector.SyncVectorEnv([make_remote_env])
    with pytest.raises(ValueError, match="max_heads=4"):
        CurriculumDriver(venv, Curriculum("multi", n_max=5))
