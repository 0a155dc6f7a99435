"""Training throughput (timesteps/s) of RecurrentPPO: our cores vs sb3-contrib's MlpLstmPolicy.

Same env (NDMS-v0, n=2, mode="every_step", 8 envs), hyperparameters and hidden size for every
policy, measured in one run with torch.set_num_threads pinned; the cases run in interleaved rounds
and the median is reported. Two presets (any value can be overridden):

- ``--preset default``: sb3-contrib's own RecurrentPPO / policy defaults (n_steps 128, batch 128,
  10 epochs, hidden 256): training dominates the time.
- ``--preset small``: hidden 64, batch 256, 4 epochs: the rollout and sb3-contrib's own bookkeeping
  dominate, which every policy pays alike.

RecurrentCorePolicy builds Adam with torch's fused implementation by default; the rows "stock, fused
Adam" and "ours lstm, sb3's unfused Adam" separate that from the gain of the recurrent cores.

``--vec-env`` compares the training envs instead: SB3's DummyVecEnv of single envs (``make_vec_env``)
against the native vector env as an SB3 VecEnv (``memory_envs.make_sb3_vec_env``), same policy and
hyperparameters, for the stock policy and our leaky core; the ratio is native / DummyVecEnv, per round
(median and range).

    python3 benchmarks/bench_rl.py [--preset default|small] [--timesteps 2048] [--rounds 3] [--threads 1] [--vec-env]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

import memory_envs  # noqa: F401
from agents.rl_policy import RecurrentCorePolicy


PRESETS = {
    "default": {"hidden": 256, "n_steps": 128, "batch_size": 128, "n_epochs": 10},
    "small": {"hidden": 64, "n_steps": 128, "batch_size": 256, "n_epochs": 4},
}


def make_env():
    return gym.make("NDMS-v0", n=2, mode="every_step", p=0.5)


def build(policy, policy_kwargs, args, native: bool = False) -> RecurrentPPO:
    if native:
        venv = memory_envs.make_sb3_vec_env("NDMS-v0", args.n_envs, seed=0, n=2, mode="every_step", p=0.5)
    else:
        venv = make_vec_env(make_env, n_envs=args.n_envs, seed=0)
    model = RecurrentPPO(policy, venv, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
                         learning_rate=3e-3, seed=0, policy_kwargs={"lstm_hidden_size": args.hidden, **policy_kwargs})
    model.learn(args.n_envs * args.n_steps)  # warm-up
    return model


def vec_env_steps_per_s(venv, steps: int = 2000) -> float:
    """Env-steps/s of an SB3 VecEnv alone (random actions, no policy)."""
    actions = np.random.default_rng(0).integers(0, 2, size=(steps, venv.num_envs))
    venv.reset()
    start = time.perf_counter()
    for row in actions:
        venv.step(row)
    return steps * venv.num_envs / (time.perf_counter() - start)


def timesteps_per_s(model: RecurrentPPO, timesteps: int) -> float:
    start = time.perf_counter()
    model.learn(timesteps, reset_num_timesteps=False)
    return timesteps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--timesteps", type=int, default=2048, help="timesteps per case and round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--n-epochs", type=int)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--vec-env", action="store_true",
                        help="compare DummyVecEnv with make_sb3_vec_env instead of the policies")
    args = parser.parse_args()
    for name, value in PRESETS[args.preset].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    torch.set_num_threads(args.threads)
    unfused = {"optimizer_kwargs": {"fused": False}}
    cases = [
        ("stock MlpLstmPolicy", "MlpLstmPolicy", {}),
        ("stock, fused Adam", "MlpLstmPolicy", {"optimizer_kwargs": {"fused": True}}),
        ("ours lstm (tau fixed 1)", RecurrentCorePolicy,
         {"core": "lstm", "core_options": {"tau_init": 1.0, "train_tau": False}}),
        ("ours lstm (trainable tau)", RecurrentCorePolicy, {"core": "lstm"}),
        ("ours lstm, sb3's unfused Adam", RecurrentCorePolicy, {"core": "lstm", **unfused}),
        ("ours gru (trainable tau)", RecurrentCorePolicy, {"core": "gru"}),
        ("ours leaky (trainable tau)", RecurrentCorePolicy, {"core": "leaky"}),
    ]
    if args.vec_env:
        cases = [(f"{name}, {env}", policy, kwargs, env == "make_sb3_vec_env")
                 for name, policy, kwargs in (cases[0], cases[-1]) for env in ("DummyVecEnv", "make_sb3_vec_env")]
    else:
        cases = [(name, policy, kwargs, False) for name, policy, kwargs in cases]
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"RecurrentPPO on NDMS-v0 n=2 every_step, preset {args.preset}: threads={args.threads} hidden={args.hidden} "
          f"n_envs={args.n_envs} n_steps={args.n_steps} batch={args.batch_size} epochs={args.n_epochs} "
          f"timesteps={args.timesteps}, median of {args.rounds} interleaved rounds")
    models = [build(policy, kwargs, args, native) for _, policy, kwargs, native in cases]
    rates = [[] for _ in cases]
    for _ in range(args.rounds):  # interleaved, so load changes on a shared machine hit every case alike
        for model, case_rates in zip(models, rates):
            case_rates.append(timesteps_per_s(model, args.timesteps))
    if args.vec_env:
        envs = [make_vec_env(make_env, n_envs=args.n_envs, seed=0),
                memory_envs.make_sb3_vec_env("NDMS-v0", args.n_envs, seed=0, n=2, mode="every_step", p=0.5)]
        env_rates = [[], []]
        for _ in range(args.rounds):
            for venv, case_rates in zip(envs, env_rates):
                case_rates.append(vec_env_steps_per_s(venv))
        ratios = [native / dummy for dummy, native in zip(*env_rates)]
        for name, case_rates in zip(("VecEnv alone, DummyVecEnv", "VecEnv alone, make_sb3_vec_env"), env_rates):
            print(f"{name:44s} {statistics.median(case_rates):8.0f} env-steps/s "
                  f"[{min(case_rates):.0f}, {max(case_rates):.0f}]")
        print(f"{'  native / DummyVecEnv, per round':44s} {statistics.median(ratios):8.2f}x "
              f"[{min(ratios):.2f}, {max(ratios):.2f}]")
        for k in range(0, len(cases), 2):
            ratios = [native / dummy for dummy, native in zip(rates[k], rates[k + 1])]
            for (name, *_), case_rates in zip(cases[k : k + 2], rates[k : k + 2]):
                print(f"{name:44s} {statistics.median(case_rates):8.0f} timesteps/s "
                      f"[{min(case_rates):.0f}, {max(case_rates):.0f}]")
            print(f"{'  native / DummyVecEnv, per round':44s} {statistics.median(ratios):8.2f}x "
                  f"[{min(ratios):.2f}, {max(ratios):.2f}]")
        return
    base = statistics.median(rates[0])
    for (name, *_), case_rates in zip(cases, rates):
        rate = statistics.median(case_rates)
        print(f"{name:31s} {rate:8.0f} timesteps/s   {rate / base:5.2f}x stock")


if __name__ == "__main__":
    main()
