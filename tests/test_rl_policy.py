"""RecurrentCorePolicy: learning, fused path == loop path, save/load round trip, bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("sb3_contrib")

import memory_envs  # noqa: F401,E402  (registers the envs)
from gymnasium import spaces  # noqa: E402
from sb3_contrib import RecurrentPPO  # noqa: E402
from sb3_contrib.common.recurrent.type_aliases import RNNStates  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

from agents import RecurrentCorePolicy  # noqa: E402
from agents import cores as agents_cores  # noqa: E402
from agents.rl_policy import _join_state, state_layers  # noqa: E402
from conftest import requires_cuda  # noqa: E402

CORES = ("leaky", "leaky_mod", "gru", "lstm")
SHARING = ({}, {"shared_lstm": True, "enable_critic_lstm": False},
           {"shared_lstm": False, "enable_critic_lstm": False})


def make_env():
    return gym.make("NDMS-v0", n=2, mode="every_step", p=0.5, length_range=(4, 10))


def make_model(core, n_envs=4, hidden=16, device="cpu", **kwargs):
    """RecurrentPPO with our policy on ``device`` (RecurrentPPO's own default, "auto", would pick a GPU)."""
    venv = make_vec_env(make_env, n_envs=n_envs, seed=0)
    policy_kwargs = {"core": core, "lstm_hidden_size": hidden, **kwargs.pop("policy_kwargs", {})}
    return RecurrentPPO(RecurrentCorePolicy, venv, n_steps=kwargs.pop("n_steps", 16), batch_size=32, seed=0,
                        policy_kwargs=policy_kwargs, device=device, **kwargs)


def accuracy(model, episodes=50):
    env, accs = make_env(), []
    for ep in range(episodes):
        obs, _ = env.reset(seed=10_000 + ep)
        state, start, done = None, np.ones(1, bool), False
        while not done:
            action, state = model.predict(obs[None], state=state, episode_start=start, deterministic=True)
            start = np.zeros(1, bool)
            obs, _, term, trunc, info = env.step(int(action[0]))
            done = term or trunc
        accs.append(float(info["head_accuracy"][0]))
    return float(np.mean(accs))


LEARN = {  # core: (timesteps, learning rate, n_epochs)
    "leaky": (4096, 3e-3, 4),
    "gru": (4096, 1e-2, 10),
    "lstm": (4096, 1e-2, 10),
}


@pytest.mark.parametrize("core", sorted(LEARN))
def test_learns_ndms2_every_step(core, device):
    steps, lr, epochs = LEARN[core]
    model = make_model(core, n_envs=8, hidden=32, n_steps=64, learning_rate=lr, n_epochs=epochs,
                       policy_kwargs={}, device=device)
    assert model.policy.lstm_actor.tau.device.type == device.type
    model.batch_size = 128
    model.learn(steps)
    assert accuracy(model) > 0.7  # chance is 0.5


@pytest.mark.parametrize("sharing", SHARING, ids=["separate", "shared", "no_critic_core"])
@pytest.mark.parametrize("core", CORES)
def test_fused_path_equals_loop_path(core, sharing, device):
    model = make_model(core, policy_kwargs={**sharing, "core_options": {"tau_init": [1.0, 3.0]}}, device=device)
    policy = model.policy
    n_seq, T, H = 3, 7, 16
    gen = torch.Generator().manual_seed(0)  # inputs drawn on the CPU, then put on the policy's device
    obs = torch.randint(0, 2, (n_seq * T, 1), generator=gen).float().to(policy.device)
    actions = torch.randint(0, 2, (n_seq * T,), generator=gen).to(policy.device)
    starts = torch.zeros(n_seq, T)
    starts[0, 0] = starts[2, 0] = 1.0  # resets only at t = 0: the fused path applies
    starts = starts.reshape(-1).to(policy.device)
    h = torch.randn(1, n_seq, H, generator=gen).to(policy.device)
    c = torch.randn(1, n_seq, H, generator=gen).to(policy.device)
    states = RNNStates((h, c), (h.clone(), c.clone()))

    def run(force_loop):
        policy.force_loop = force_loop
        torch.manual_seed(0)
        values, log_prob, entropy = policy.evaluate_actions(obs, actions, states, starts)
        out, (hn, cn) = policy._process_sequence(obs, states.pi, starts, policy.lstm_actor)
        vals = policy.predict_values(obs, states.vf, starts)
        return [values, log_prob, entropy, out, hn, cn, vals]

    fused, loop = run(False), run(True)
    policy.force_loop = False
    for a, b in zip(fused, loop):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # rows that were reset at t = 0 equal a fresh zero-state run
    out, _ = policy._process_sequence(obs, states.pi, starts, policy.lstm_actor)
    zero = (torch.zeros(1, n_seq, H, device=policy.device), torch.zeros(1, n_seq, H, device=policy.device))
    out0, _ = policy._process_sequence(obs, zero, torch.zeros(n_seq * T, device=policy.device), policy.lstm_actor)
    torch.testing.assert_close(out.reshape(n_seq, T, H)[[0, 2]], out0.reshape(n_seq, T, H)[[0, 2]])


@pytest.mark.parametrize("sharing", SHARING, ids=["separate", "shared", "no_critic_core"])
@pytest.mark.parametrize("core", CORES)
def test_forward_and_evaluate_actions_equal_sb3_contrib(core, sharing, device):
    """Our forward / evaluate_actions (actor and critic cores side by side) give what sb3-contrib's own
    methods give when they call the cores one by one, outputs, new states and gradients."""
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy as Upstream

    policy = make_model(core, policy_kwargs={**sharing, "core_options": {"tau_init": [1.0, 3.0]}},
                        device=device).policy
    gen = torch.Generator().manual_seed(1)  # inputs drawn on the CPU, then put on the policy's device
    n_seq, T, H = 4, 5, 16
    obs = torch.randint(0, 2, (n_seq * T, 1), generator=gen).float().to(device)
    actions = torch.randint(0, 2, (n_seq * T,), generator=gen).to(device)
    starts = (torch.rand(n_seq * T, generator=gen) < 0.2).float().to(device)  # resets anywhere: the loop path
    states = RNNStates(*((torch.randn(1, n_seq, H, generator=gen).to(device),
                          torch.randn(1, n_seq, H, generator=gen).to(device)) for _ in range(2)))
    for step_starts in (starts, starts.reshape(n_seq, T)[:, 0].contiguous()):  # training batch, rollout step
        batch = step_starts.numel()
        step_obs, step_actions = obs[:batch], actions[:batch]
        results = []
        for method in (type(policy), Upstream):
            torch.manual_seed(0)
            acts, values, log_prob, new = method.forward(policy, step_obs, states, step_starts)
            evaluated = method.evaluate_actions(policy, step_obs, step_actions, states, step_starts)
            loss = values.sum() + log_prob.sum() + sum(e.sum() for e in evaluated)
            grads = torch.autograd.grad(loss, list(policy.parameters()), allow_unused=True)
            results.append([acts, values, log_prob, *new.pi, *new.vf, *evaluated,
                            *(g for g in grads if g is not None)])
        assert len(results[0]) == len(results[1])
        for a, b in zip(*results):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_optimizer_is_fused_adam_unless_chosen():
    policy = make_model("gru").policy
    fused = policy.optimizer
    assert isinstance(fused, torch.optim.Adam) and fused.defaults["fused"] is True
    assert {id(p) for g in fused.param_groups for p in g["params"]} == {id(p) for p in policy.parameters()}
    chosen = make_model("gru", policy_kwargs={"optimizer_kwargs": {"foreach": True}}).policy.optimizer
    assert not chosen.defaults["fused"] and chosen.defaults["foreach"] is True
    other = make_model("gru", policy_kwargs={"optimizer_class": torch.optim.SGD}).policy.optimizer
    assert isinstance(other, torch.optim.SGD)


def test_mid_sequence_reset_uses_loop_and_resets():
    model = make_model("gru")
    policy = model.policy
    obs = torch.ones(6, 1)
    starts = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    h = torch.randn(1, 1, 16)
    out, _ = policy._process_sequence(obs, (h, torch.zeros_like(h)), starts, policy.lstm_actor)
    zero = torch.zeros(1, 1, 16)
    ref, _ = policy._process_sequence(obs[3:], (zero, zero), torch.zeros(3), policy.lstm_actor)
    torch.testing.assert_close(out[3:], ref)


def test_training_step_and_state_layout():
    model = make_model("lstm", policy_kwargs={"core_options": {"train_tau": True}})
    model.learn(64)
    assert model._last_lstm_states.pi[0].shape == (1, 4, 16)
    assert model.policy.lstm_actor.kind == "lstm" and model.policy.lstm_critic.kind == "lstm"
    tau_params = [n for n, _ in model.policy.named_parameters() if "time_constant" in n]
    assert tau_params, "tau must be a trained parameter of the policy"


@requires_cuda
@pytest.mark.parametrize("core", CORES)
def test_same_seed_same_initial_policy_on_cpu_and_cuda(core):
    """RecurrentPPO(seed=...) builds the policy on the CPU from the seeded CPU RNG, then moves it."""
    cpu, cuda = (make_model(core, device=device).policy for device in ("cpu", "cuda"))
    assert cuda.device.type == "cuda"
    for (name, a), (_, b) in zip(cpu.state_dict().items(), cuda.state_dict().items()):
        assert torch.equal(a, b.cpu()), name


SAVE_LOAD = textwrap.dedent("""
    import sys, numpy as np, torch
    from sb3_contrib import RecurrentPPO
    model = RecurrentPPO.load(sys.argv[1], device="cpu")
    assert type(model.policy).__module__ == "agents.rl_policy", type(model.policy)
    data = np.load(sys.argv[2])
    state = (data["h"], data["c"])
    actions, (h, c) = model.predict(data["obs"], state=state, episode_start=data["starts"], deterministic=True)
    np.savez(sys.argv[3], actions=actions, h=h, c=c)
""")


@pytest.mark.parametrize("core", ["leaky", "lstm"])
def test_save_load_in_fresh_process(core, tmp_path):
    model = make_model(core, policy_kwargs={"core_options": {"tau_init": [1.0, 4.0], "train_tau": True},
                                            "shared_lstm": core == "leaky",
                                            "enable_critic_lstm": core != "leaky"})
    model.learn(64)
    path = tmp_path / "model.zip"
    model.save(path)
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 2, (5, 1)).astype(np.float32)
    h = rng.normal(size=(1, 5, 16)).astype(np.float32)
    c = rng.normal(size=(1, 5, 16)).astype(np.float32)
    starts = np.array([1, 0, 0, 1, 0], bool)
    np.savez(tmp_path / "in.npz", obs=obs, h=h, c=c, starts=starts)
    actions, (h2, c2) = model.predict(obs, state=(h, c), episode_start=starts, deterministic=True)
    script = tmp_path / "load.py"
    script.write_text(SAVE_LOAD)
    subprocess.run([sys.executable, str(script), str(path), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                   check=True, cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": ":".join(sys.path)})
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(out["actions"], actions)
    np.testing.assert_allclose(out["h"], h2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["c"], c2, rtol=1e-6, atol=1e-6)


def _policy(core="gru", obs_space=None, act_space=None, **kwargs):
    return RecurrentCorePolicy(obs_space or spaces.Box(0, 1, (1,), np.float32), act_space or spaces.Discrete(2),
                               lambda _: 1e-3, core=core, lstm_hidden_size=8, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"core": "no_such_core"}, "core must be one of"),
    ({"core": "gru", "core_options": {"activation": "relu"}}, "do not fit core 'gru'"),
    ({"core": "leaky", "core_options": {"activation": "nope"}}, "do not fit core 'leaky'"),
    ({"core": "leaky", "core_options": {"h0": "random"}}, "h0 must be 'zero'"),
    ({"core": "leaky", "core_options": {"generator": None}}, "generator"),
    ({"core": "leaky", "core_options": {"tau_init": torch.tensor(2.0)}}, "plain value"),
    ({"core": "leaky", "core_options": "x"}, "must be a dict"),
    ({"core": "gru", "shared_lstm": True}, "shared_lstm=True needs enable_critic_lstm=False"),
    ({"core": "gru", "n_lstm_layers": 2}, "n_lstm_layers=1"),
    ({"core": "gru", "lstm_kwargs": {"dropout": 0.1}}, "lstm_kwargs"),
    ({"act_space": spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))}, "action_space must be"),
    ({"obs_space": spaces.Tuple((spaces.Discrete(2),))}, "observation_space must be"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _policy(**kwargs)


@pytest.mark.parametrize("act_space", [spaces.Discrete(3), spaces.MultiDiscrete([2, 2]),
                                       spaces.Box(-1, 1, (2,), np.float32)])
def test_action_spaces(act_space):
    policy = _policy("leaky_mod", act_space=act_space)
    actions, state = policy.predict(np.zeros((2, 1), np.float32))
    assert actions.shape[0] == 2 and state[0].shape == (1, 2, 8)


def test_import_agents_without_sb3():
    code = ("import sys; sys.modules['sb3_contrib'] = None; sys.modules['stable_baselines3'] = None\n"
            "import agents; assert 'agents.rl_policy' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": ":".join(sys.path)})
    assert out.stdout.strip() == "ok"


def test_docs_example_runs(tmp_path):
    """In a folder of its own, where it saves its model: the example writes nothing to /tmp."""
    import pathlib
    import re

    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "rl.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    assert "/tmp" not in code
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={**__import__("os").environ, "PYTHONPATH": ":".join(sys.path)})
    assert out.stdout.strip() == "[1.]" and (tmp_path / "rl_leaky.zip").is_file()


ZOO = [kind for kind in agents_cores.KINDS if kind not in agents_cores.TAU_KINDS]


@pytest.mark.parametrize("core", ZOO)
def test_zoo_cores_as_the_policy(core, device):
    """Every zoo core: its state fills sb3-contrib's (h, c) buffers of state_layers rows, fused path ==
    per-step loop from a non-zero state, resets give the zero-state run, and RecurrentPPO trains."""
    model = make_model(core, policy_kwargs={"core_options": {"layers": 2}}, device=device)
    policy, H = model.policy, 16
    actor = policy.lstm_actor
    layers = state_layers(actor)
    assert layers * 2 * H >= actor.state_size and actor.num_layers == layers
    n_seq, T = 3, 7
    gen = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 2, (n_seq * T, 1), generator=gen).float().to(policy.device)
    starts = torch.zeros(n_seq, T)
    starts[0, 0] = 1.0
    starts = starts.reshape(-1).to(policy.device)
    prefix = torch.randint(0, 2, (5, n_seq, actor.input_size), generator=gen).float().to(policy.device)
    with torch.no_grad():
        _, live = actor(prefix)  # a reachable non-zero state
    h, c = _join_state(actor, live)
    assert h.shape == (layers, n_seq, H)

    def run(force_loop):
        policy.force_loop = force_loop
        return policy._process_sequence(obs, (h, c), starts, actor)

    (fused, (hf, cf)), (loop, (hl, cl)) = run(False), run(True)
    policy.force_loop = False
    for a, b in ((fused, loop), (hf, hl), (cf, cl)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    zero = torch.zeros(layers, n_seq, H, device=policy.device)
    out0, _ = policy._process_sequence(obs, (zero, zero), torch.zeros(n_seq * T, device=policy.device), actor)
    torch.testing.assert_close(fused.reshape(n_seq, T, H)[0], out0.reshape(n_seq, T, H)[0])
    assert not torch.allclose(fused.reshape(n_seq, T, H)[1], out0.reshape(n_seq, T, H)[1])
    model.learn(32)
    assert model._last_lstm_states.pi[0].shape == (layers, 4, H)
    actions, (h1, c1) = model.predict(np.zeros((2, 1), np.float32))  # no state given: predict makes zeros of the core's rows
    assert actions.shape == (2,) and h1.shape == c1.shape == (layers, 2, H)
    again, _ = model.predict(np.zeros((2, 1), np.float32), state=(np.zeros_like(h1), np.zeros_like(c1)),
                             episode_start=np.ones(2), deterministic=True)
    assert np.array_equal(again, model.predict(np.zeros((2, 1), np.float32), deterministic=True)[0])
