"""Throughput of the task suite, as ratios against baselines measured in the same run.

    python benchmarks/bench_envs.py [--seconds 1.0]

Prints single-env step()/s for NParity-v0 and NDMS-v0 next to CartPole-v1 (all under gym.make),
native vector env steps/s at 1, 64 and 4096 envs, and make_batch sequences/s at batch 256 next
to a per-sequence generator loop (the way the paper's code builds batches).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import memory_envs
from memory_envs import make_batch


def rate(fn, seconds: float) -> float:
    """Calls of ``fn`` per second (``fn`` returns how many units it did), best of 3 rounds."""
    fn()  # warm up
    best = 0.0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            done += fn()
        best = max(best, done / elapsed)
    return best


def single_env_rate(env_id: str, seconds: float, **kwargs) -> float:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(1000)]

    def run() -> int:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return len(actions)

    return rate(run, seconds)


def vector_env_rate(num_envs: int, seconds: float) -> float:
    venv = gym.make_vec("NParity-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", n=20)
    venv.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(16, num_envs))

    def run() -> int:
        for a in actions:
            venv.step(a)
        return actions.size

    return rate(run, seconds)


def per_sequence_batch(rng: np.random.Generator, ns: list[int], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward generator: one sequence and its labels at a time, then stack."""
    length = int(rng.integers(max(ns) + 2, 4 * max(ns) + 2))
    inputs, labels = [], []
    for _ in range(batch_size):
        p = rng.random()
        seq = (rng.random(length) < p).astype(np.float32)
        inputs.append(seq)
        labels.append([int(seq[length - n :].sum()) % 2 for n in ns])
    return np.stack(inputs, axis=1)[:, :, None], np.array(labels, dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    s = args.seconds

    cartpole = single_env_rate("CartPole-v1", s)
    print(f"single env, gym.make, steps/s (ratio to CartPole-v1 = {cartpole:,.0f}/s)")
    single = {}
    for env_id, kwargs in [("NParity-v0", dict(n=20)), ("NDMS-v0", dict(n=20)), ("NDMS-v0", dict(heads=[2, 3, 4]))]:
        single[env_id, str(kwargs)] = r = single_env_rate(env_id, s, **kwargs)
        print(f"  {env_id:11s} {str(kwargs):18s} {r:12,.0f}/s  x{r / cartpole:.2f}")
    base = single["NParity-v0", str(dict(n=20))]
    print("native vector env NParity-v0 n=20, env-steps/s (ratio to the single env)")
    for num_envs in (1, 64, 4096):
        r = vector_env_rate(num_envs, s)
        print(f"  num_envs={num_envs:5d} {r:14,.0f}/s  x{r / base:.1f}")
    rng = np.random.default_rng(0)
    ns = list(range(2, 21))
    naive = rate(lambda: per_sequence_batch(rng, ns, 256)[0].shape[1], s)
    fast = rate(lambda: make_batch("parity", ns, 256, rng=rng).inputs.shape[1], s)
    print(f"make_batch parity heads 2..20, batch 256: {fast:,.0f} seq/s vs per-sequence loop {naive:,.0f} seq/s"
          f"  x{fast / naive:.1f}")


if __name__ == "__main__":
    main()
