"""Training throughput (timesteps/s) of RecurrentPPO: our cores vs sb3-contrib's MlpLstmPolicy.

Same env (NDMS-v0, n=2, mode="every_step"), hyperparameters and hidden size for every policy,
measured in one run with torch.set_num_threads pinned. Usage:

    PYTHONPATH=. python3 benchmarks/bench_rl.py [--timesteps 4096] [--threads 1] [--hidden 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

import memory_envs  # noqa: F401
from agents.rl_policy import RecurrentCorePolicy


def make_env():
    return gym.make("NDMS-v0", n=2, mode="every_step", p=0.5)


def build(policy, policy_kwargs, args) -> RecurrentPPO:
    venv = make_vec_env(make_env, n_envs=args.n_envs, seed=0)
    model = RecurrentPPO(policy, venv, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
                         learning_rate=3e-3, seed=0, policy_kwargs={"lstm_hidden_size": args.hidden, **policy_kwargs})
    model.learn(args.n_envs * args.n_steps)  # warm-up
    return model


def timesteps_per_s(model: RecurrentPPO, timesteps: int) -> float:
    start = time.perf_counter()
    model.learn(timesteps, reset_num_timesteps=False)
    return timesteps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [
        ("stock MlpLstmPolicy", "MlpLstmPolicy", {}),
        ("ours lstm (tau fixed 1)", RecurrentCorePolicy,
         {"core": "lstm", "core_options": {"tau_init": 1.0, "train_tau": False}}),
        ("ours lstm (trainable tau)", RecurrentCorePolicy, {"core": "lstm"}),
        ("ours gru (trainable tau)", RecurrentCorePolicy, {"core": "gru"}),
        ("ours leaky (trainable tau)", RecurrentCorePolicy, {"core": "leaky"}),
    ]
    print(f"RecurrentPPO on NDMS-v0 n=2 every_step: threads={args.threads} hidden={args.hidden} "
          f"n_envs={args.n_envs} n_steps={args.n_steps} batch={args.batch_size} epochs={args.n_epochs} "
          f"timesteps={args.timesteps}, median of {args.rounds} interleaved rounds")
    models = [build(policy, kwargs, args) for _, policy, kwargs in cases]
    rates = [[] for _ in cases]
    for _ in range(args.rounds):  # interleaved, so load changes on a shared machine hit every case alike
        for model, case_rates in zip(models, rates):
            case_rates.append(timesteps_per_s(model, args.timesteps))
    base = statistics.median(rates[0])
    for (name, _, _), case_rates in zip(cases, rates):
        rate = statistics.median(case_rates)
        print(f"{name:28s} {rate:8.0f} timesteps/s   {rate / base:5.2f}x stock")


if __name__ == "__main__":
    main()
