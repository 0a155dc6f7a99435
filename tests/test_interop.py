"""The envs with the RL libraries users plug them into: SB3, torchrl, tianshou, skrl (issue 15).

Each test runs the real library (installed by the ``interop`` extra, which ``dev`` includes).
"""

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import memory_envs


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- Stable-Baselines3 -------------------------------------------------------------------------


def test_sb3_make_vec_env_by_id():
    """SB3 passes render_mode="rgb_array" and retries without it only on TypeError (issue 15, failure 1)."""
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("NDMS-v0", n_envs=2, env_kwargs=dict(n=2), seed=0)
    assert venv.get_attr("render_mode") == [None, None]
    obs = venv.reset()
    assert obs.shape == (2, 1)
    for _ in range(30):
        obs, rewards, dones, infos = venv.step(np.array([0, 1]))
    assert {"label", "ns", "head_accuracy", "is_success"} <= set(infos[0])


def sb3_rollout(venv, steps, seed):
    rng = np.random.default_rng(seed)
    out = [venv.reset()]
    for _ in range(steps):
        actions = rng.integers(0, 2, size=(venv.num_envs, *venv.action_space.shape))
        out.append(venv.step(actions))
    return out


@pytest.mark.parametrize("env_id, kwargs", [
    ("NDMS-v0", dict(n=3)), ("NDMS-v0", dict(heads=[2, 4], max_heads=3, mode="every_step")),
    ("WordProblem-v0", dict(group="a4", length_range=(2, 6))), ("ModularArithmetic-v0", dict(length_range=(2, 6))),
])
def test_make_sb3_vec_env_equals_dummy_vec_env(env_id, kwargs):
    """Same observations, rewards, dones, infos and terminal_observation as make_vec_env's DummyVecEnv."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

    ours = memory_envs.make_sb3_vec_env(env_id, 4, seed=5, **kwargs)
    dummy = make_vec_env(env_id, n_envs=4, seed=5, env_kwargs=kwargs)
    assert isinstance(ours, VecEnv) and isinstance(dummy, DummyVecEnv)
    assert ours.observation_space == dummy.observation_space and ours.action_space == dummy.action_space
    a, b = sb3_rollout(ours, 150, seed=1), sb3_rollout(dummy, 150, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    ended = 0
    for (obs_a, rew_a, done_a, infos_a), (obs_b, rew_b, done_b, infos_b) in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert rew_a.dtype == rew_b.dtype
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(done_a, done_b)
        for info_a, info_b in zip(infos_a, infos_b):
            assert set(info_a) == set(info_b)
            for key in set(info_a) - {"episode"}:
                np.testing.assert_array_equal(info_a[key], info_b[key])
                assert np.asarray(info_a[key]).dtype == np.asarray(info_b[key]).dtype
            if "episode" in info_a:  # Monitor's episode record, but for its wall time
                assert {k: info_a["episode"][k] for k in "rl"} == {k: info_b["episode"][k] for k in "rl"}
        ended += done_a.sum()
    assert ended > 10
    for i, info in enumerate(ours.reset_infos):
        assert set(info) == set(dummy.reset_infos[i])


def test_make_sb3_vec_env_trains_ppo_and_rejects_other_ids():
    """PPO learns a memoryless task (parity of the current bit) on the native vector env."""
    from stable_baselines3 import PPO

    venv = memory_envs.make_sb3_vec_env("NParity-v0", 8, seed=0, n=1, mode="every_step", p=0.5, length_range=(4, 8))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=128, n_epochs=4, learning_rate=3e-3, seed=0)
    model.learn(2048)
    obs, correct = venv.reset(), 0.0
    for _ in range(100):
        actions, _ = model.predict(obs, deterministic=True)
        obs, rewards, _, _ = venv.step(actions)
        correct += rewards.sum()  # every step is scored (n=1): reward 1 if right
    assert correct / (100 * 8) > 0.9  # chance 0.5
    with pytest.raises(ValueError, match="env_id must be a memory_envs env id"):
        memory_envs.make_sb3_vec_env("CartPole-v1", 2)


# --- torchrl -----------------------------------------------------------------------------------


def test_torchrl_gym_env_with_num_envs_rollout():
    """GymEnv(id, num_envs=...) (an AsyncVectorEnv inside torchrl) checks its specs and rolls out
    with every info key as a tensor (issue 15, failure 3)."""
    from torchrl.envs import GymEnv
    from torchrl.envs.utils import check_env_specs

    env = GymEnv("memory_envs:NDMS-v0", num_envs=2, n=2)  # workers import memory_envs by the prefix
    try:
        check_env_specs(env)
        td = env.rollout(12, break_when_any_done=False)
    finally:
        env.close()
    assert td.batch_size == torch.Size([2, 12])
    assert td["next", "label"].dtype == torch.int8 and td["next", "is_success"].dtype == torch.bool
    done = td["next", "done"].squeeze(-1)
    assert done.any()
    # torchrl's NEXT_STEP path reads the ended steps' info from "final_info" (absent there: zeros);
    # GymWrapper on the native env in SAME_STEP mode has it (next test).
    assert td["next", "ns"].dtype == torch.int64 and (td["next", "ns"].squeeze(-1)[~done] == 2).all()
    assert (td["next", "head_accuracy"].squeeze(-1)[~done] == -1).all()


def test_torchrl_gym_wrapper_on_native_vector_env():
    """torchrl's GymWrapper takes the native vector env in SAME_STEP mode (failure 4) and reads final_info."""
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    venv = gym.make_vec("NDMS-v0", num_envs=3, vectorization_mode="vector_entry_point", n=2,
                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    env = GymWrapper(venv)
    check_env_specs(env)
    td = env.rollout(30, break_when_any_done=False)
    done = td["next", "done"].squeeze(-1)
    assert td.batch_size == torch.Size([3, 30]) and done.sum() >= 3
    accuracy = td["next", "head_accuracy"].squeeze(-1)[done]
    assert ((accuracy == 0) | (accuracy == 1)).all()  # the ended episodes' accuracy, not the reset info's -1
    with pytest.raises(RuntimeError, match="auto-reset mode"):  # torchrl refuses NEXT_STEP
        GymWrapper(gym.make_vec("NDMS-v0", num_envs=2, vectorization_mode="vector_entry_point", n=2))


# --- tianshou ----------------------------------------------------------------------------------


def test_tianshou_collector_over_vector_env(monkeypatch):
    if "numba" not in sys.modules:  # tianshou's replay buffer JIT-compiles for ~10 s; interpreted it is instant
        monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    from tianshou.algorithm.algorithm_base import Policy
    from tianshou.data import Batch, Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv

    class RandomBits(Policy):
        """Random integer actions (tianshou's RandomActionPolicy returns floats, which Discrete rejects)."""

        def __init__(self, action_space):
            super().__init__(action_space=action_space)
            self.rng = np.random.default_rng(0)

        def forward(self, batch, state=None, **kwargs):
            return Batch(act=self.rng.integers(0, 2, size=len(batch.obs)), state=state)

    envs = DummyVectorEnv([lambda: gym.make("NDMS-v0", n=2)] * 2)
    buffer = VectorReplayBuffer(200, 2)
    collector = Collector(RandomBits(envs.action_space[0]), envs, buffer)
    collector.reset()
    stats = collector.collect(n_step=100)
    assert stats.n_collected_steps == 100 and stats.n_collected_episodes >= 5
    batch = buffer[:]
    assert batch.info["ns"].shape == (100, 1) and batch.info["label"].dtype == np.int8
    accuracy = batch.info["head_accuracy"][:, 0]
    assert set(accuracy[batch.done].tolist()) <= {0.0, 1.0} and (accuracy[~batch.done] == -1).all()
    np.testing.assert_array_equal(batch.info["is_success"][batch.done], accuracy[batch.done] == 1)


# --- skrl --------------------------------------------------------------------------------------


def test_skrl_wrap_env_on_native_same_step_env_gives_real_transitions():
    """skrl ignores NEXT_STEP autoreset; in SAME_STEP mode every transition it sees is a real step (failure 4):
    the same as single envs with matching seeds that reset as soon as they end."""
    from skrl import config
    from skrl.envs.wrappers.torch import wrap_env

    config.torch.key = 11  # the seed of skrl's first reset
    venv = gym.make_vec("NParity-v0", num_envs=3, vectorization_mode="vector_entry_point", n=2,
                        mode="every_step", autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    env = wrap_env(venv, wrapper="gymnasium")
    singles = [gym.make("NParity-v0", n=2, mode="every_step") for _ in range(3)]
    obs, _ = env.reset()
    expected = [single.reset(seed=11 + i)[0] for i, single in enumerate(singles)]
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(60):
        np.testing.assert_array_equal(obs.numpy(), np.stack(expected))
        actions = rng.integers(0, 2, size=3)
        obs, reward, terminated, truncated, _ = env.step(torch.as_tensor(actions).view(3, 1))
        for i, single in enumerate(singles):
            expected[i], r, term, _, _ = single.step(int(actions[i]))
            assert reward[i, 0].item() == r and terminated[i, 0].item() == term
            if term:
                expected[i], _ = single.reset()
                ends += 1
    assert ends >= 6


# --- pufferlib (pufferlib-core pins torch==2.9.0: installed with --no-deps, see .ci/run) -----------


def test_pufferlib_gymnasium_adapter_matches_the_env():
    import pufferlib.emulation
    import pufferlib.vector

    make = lambda: gym.make("NDMS-v0", n=2)  # noqa: E731
    puffer = pufferlib.emulation.GymnasiumPufferEnv(env_creator=make)
    plain = make()
    obs, _ = puffer.reset(seed=3)
    expected, _ = plain.reset(seed=3)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(60):
        np.testing.assert_array_equal(obs[0], expected)
        action = int(rng.integers(0, 2))
        obs, reward, terminated, _, info = puffer.step(np.array([action]))
        expected, r, term, _, plain_info = plain.step(action)
        assert reward == r and terminated == term
        if term:
            assert info["head_accuracy"].tolist() == plain_info["head_accuracy"].tolist()
            obs, _ = puffer.reset()
            expected, _ = plain.reset()
            ends += 1
    assert ends >= 5
    venv = pufferlib.vector.make(pufferlib.emulation.GymnasiumPufferEnv, env_kwargs=dict(env_creator=make),
                                 num_envs=2, backend=pufferlib.vector.Serial)  # it passes buf= (shared buffers)
    venv.reset(seed=0)
    done = 0
    for _ in range(40):
        obs, rewards, terminals, _, infos = venv.step(np.ones(2, dtype=np.int64))
        assert obs.shape == (2, 1) and set(rewards.tolist()) <= {0.0, 1.0}
        done += terminals.sum()
    assert done >= 4
    venv.close()
