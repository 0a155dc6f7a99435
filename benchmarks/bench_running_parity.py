"""What one running-parity run of the score card costs, per kind: training and the length test apart.

For every core (``KIND`` or ``KIND+signed``; zoo kinds with ``--layers`` blocks) at width 64, batch 256:
the seconds of one training step (forward, backward and Adam over a fresh batch of lengths 3-40, labels at
every step, as ``RunningTaskTrainer`` trains) and of one test batch (forward of 256 sequences) at each
test length and at the far length. The kinds run interleaved in each round; the numbers printed are
medians over rounds with the ratio to the first core measured in the same rounds. From them: the seconds of
a run of ``--max-steps`` steps and of its length test with ``--test-batches`` batches per test length and
``--far-batches`` at the far length (the protocol's default: 10 and 10, 2,560 sequences each). Run:

    python3 benchmarks/bench_running_parity.py --threads 1
    python3 benchmarks/bench_running_parity.py --threads 1 --cores mingru,lstm --test-batches 4 --far-batches 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from agents.cores import core_class
from agents.cores.blocks import BlockCore
from baselines.benchmark import core_variant
from baselines.train_config import TrainConfig, build_model
from memory_envs import make_batch, tasks


def model_for(core: str, layers: int, width: int, batch: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    kind, options = core_variant(core)
    if layers > 1 and issubclass(core_class(kind), BlockCore):  # the zoo kinds take ``layers``
        options = {**options, "layers": layers}
    config = TrainConfig(task=tasks.RUNNING_PARITY, curriculum="none", core=kind, core_options=options,
                         hidden_size=width, batch_size=batch)
    model = build_model(config, [tasks.RUNNING_N], torch.Generator().manual_seed(0))
    _, lr = config.optimizer_settings()
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def seconds_per_step(model, optimizer, rng: np.random.Generator, batch: int, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        b = make_batch(tasks.RUNNING_PARITY, None, batch, rng=rng, length_range=tasks.RUNNING_TRAIN_LENGTHS,
                       streaming=True)
        logits = model(torch.from_numpy(b.inputs), ns=[tasks.RUNNING_N], every_step=True)[tasks.RUNNING_N]
        loss = F.cross_entropy(logits.flatten(0, 1), torch.from_numpy(b.streaming_labels[:, :, 0]).long().flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps


@torch.no_grad()
def seconds_per_test_batch(model, rng: np.random.Generator, batch: int, length: int) -> float:
    b = make_batch(tasks.RUNNING_PARITY, None, batch, rng=rng, length=length)
    started = time.perf_counter()
    model(torch.from_numpy(b.inputs), ns=[tasks.RUNNING_N])
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cores", default="mingru,mamba,deltanet,s5,transformer,lstm")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5, help="training steps timed per round")
    p.add_argument("--max-steps", type=int, default=1000)
    p.add_argument("--test-batches", type=int, default=10)
    p.add_argument("--far-batches", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cores = args.cores.split(",")
    models = {core: model_for(core, args.layers, args.width, args.batch) for core in cores}
    lengths = (*tasks.RUNNING_TEST_LENGTHS, tasks.RUNNING_FAR_LENGTH)
    train = {core: [] for core in cores}
    test = {core: {n: [] for n in lengths} for core in cores}
    rng = np.random.default_rng(0)
    for _ in range(args.rounds):
        for core in cores:
            model, optimizer = models[core]
            train[core].append(seconds_per_step(model.train(), optimizer, rng, args.batch, args.steps))
            for n in lengths:
                test[core][n].append(seconds_per_test_batch(model.eval(), rng, args.batch, n))
    first = cores[0]
    print(f"{args.rounds} rounds, {args.threads} thread(s); medians, [ratio to {first}]; seconds of a run: "
          f"{args.max_steps} steps, test {args.test_batches} x {args.batch} sequences per test length and "
          f"{args.far_batches} x {args.batch} at {tasks.RUNNING_FAR_LENGTH}")
    print("| core | s per training step | s per test batch at 40-256 (sum) | at 1000 | training s | test s |")
    print("|---|---|---|---|---|---|")
    for core in cores:
        step = statistics.median(train[core])
        ratio = statistics.median(a / b for a, b in zip(train[core], train[first]))
        near = sum(statistics.median(test[core][n]) for n in tasks.RUNNING_TEST_LENGTHS)
        far = statistics.median(test[core][tasks.RUNNING_FAR_LENGTH])
        print(f"| {core} | {step:.3f} [{ratio:.2f}] | {near:.2f} | {far:.2f} | {args.max_steps * step:.0f} | "
              f"{args.test_batches * near + args.far_batches * far:.0f} |")


if __name__ == "__main__":
    main()
