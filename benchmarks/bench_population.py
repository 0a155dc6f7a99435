"""Population training against the same networks trained one after the other, in the same run.

A population of G members (seeds 0..G-1, one config otherwise) takes training steps side by side
(baselines.population.Population.train_step: one batched recurrence); the baseline is the G solo
trainers (baselines.trainer.Trainer.train_step) stepping one after the other, from the same configs.
Both include everything a training step does (batch generation, forward, backward, clipping, the
optimizer step; no evaluation). Rounds alternate which goes first; the ratio is the median over
rounds of network-steps per second, with the spread (min..max) over rounds, by the wall clock and by
this process's CPU time (steadier on a shared machine; equal to the wall clock with one thread).
With ``--fold-bound`` it also times one member's core over the G members' batches folded into one
batch of G * B (the same weights) against G calls at batch B, forward and backward by CPU time: the
most that running the G networks as one batched call could gain on this machine (> 1: it pays).

    python3 benchmarks/bench_population.py --threads 1
    python3 benchmarks/bench_population.py --threads 1 --core s5 --fold-bound
    python3 benchmarks/bench_population.py --threads 1 --device cuda --hidden 500 --members 16
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from baselines.population import Population
from baselines.trainer import Trainer, TrainConfig


def network_steps_per_second(step, networks: int, steps: int, device: torch.device) -> tuple[float, float]:
    """(network-steps per wall-clock second, per second of this process's CPU time)."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    sync()
    return networks * steps / (time.perf_counter() - wall), networks * steps / (time.process_time() - cpu)


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} (spread {min(values):.1f}..{max(values):.1f})"


def fold_bound(core: torch.nn.Module, inputs: torch.Tensor, members: int, rounds: int) -> list[float]:
    """Per round: CPU time of ``members`` forward+backward passes of ``core`` over inputs [T, B, F], over
    the time of one pass over the inputs repeated ``members`` times along the batch."""
    folded = inputs.repeat(1, members, 1)

    def once(x: torch.Tensor) -> None:
        core.zero_grad(set_to_none=True)
        core(x)[0].square().sum().backward()

    once(inputs), once(folded)  # warm-up
    ratios = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(members):
            once(inputs)
        middle = time.process_time()
        once(folded)
        ratios.append((middle - start) / (time.process_time() - middle))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64, help="units (default: 64, the benchmark's)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--core", default="leaky")
    parser.add_argument("--start-n", type=int, default=5, help="the N trained (sequences of N+2..4N+1 steps)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (set deliberately)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fold-bound", action="store_true",
                        help="also time one core over the members' batches folded into one (see above)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configs = [TrainConfig(core=args.core, hidden_size=args.hidden, batch_size=args.batch, start_n=args.start_n,
                           max_steps=10**9, eval_every=10**9, seed=seed, device=args.device)
               for seed in range(args.members)]
    with tempfile.TemporaryDirectory() as tmp:
        population = Population(configs, [Path(tmp) / f"member{k}" for k in range(args.members)])
        solos = [Trainer(c, Path(tmp) / f"solo{k}") for k, c in enumerate(configs)]
        members = population.members
        device = members[0].device

        def population_step() -> None:
            population.train_step(members)

        def solo_steps() -> None:
            for trainer in solos:
                trainer.train_step()

        population_step(), solo_steps()  # warm-up
        rates: dict[str, list[tuple[float, float]]] = {"population": [], "solo": []}
        for r in range(args.rounds):
            order = ("population", "solo") if r % 2 == 0 else ("solo", "population")
            for name in order:
                fn = population_step if name == "population" else solo_steps
                rates[name].append(network_steps_per_second(fn, args.members, args.steps, device))
        bound = fold_bound(members[0].model.core, members[0].batch(members[0].data_rng)[0], args.members,
                           args.rounds) if args.fold_bound else None
        population.close()  # release the run folders' locks before the folders go
        for trainer in solos:
            trainer.close()
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, {args.core} "
          f"H={args.hidden} batch {args.batch}, N={args.start_n}, {args.members} networks, "
          f"{args.rounds} interleaved rounds of {args.steps} training steps; network-steps/s, median (spread)")
    for k, clock in enumerate(("wall clock", "process CPU time")):
        for name in ("population", "solo"):
            print(f"  {clock:16s} {name:10s} {_summary([v[k] for v in rates[name]])}")
        ratios = [p[k] / q[k] for p, q in zip(rates["population"], rates["solo"])]
        print(f"  {clock:16s} population / solo one after the other: {statistics.median(ratios):.2f}x "
              f"(spread {min(ratios):.2f}..{max(ratios):.2f})")

    if bound is not None:
        print(f"  fold bound: {args.members} passes at batch {args.batch} / one at {args.members * args.batch} "
              f"(process CPU time): {statistics.median(bound):.2f}x (spread {min(bound):.2f}..{max(bound):.2f})")


if __name__ == "__main__":
    main()
