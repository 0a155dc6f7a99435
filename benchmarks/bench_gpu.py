"""GPU speed: our training step against the paper-style loop, and each core against torch's cuDNN RNNs.

Two comparisons, each in this one process, in interleaved rounds (median of the rounds and their
spread, min..max):

1. Training step at the paper's scale (500 units, batch 256, SGD 0.05 / momentum 0.1 / Nesterov,
   summed cross-entropy, gradient norm clipped at 2.0) with the heads N = 2..10, 2..30 and 2..60:
   ``baselines.trainer.Trainer.train_step`` against the paper-style loop of
   ``benchmarks/bench_trainer.py`` (per-sequence numpy data, a per-step ``nn.Module`` under
   autograd), both on ``--device``. Ratio = paper-style ms / ours ms per step.
2. Forward+backward of each core with trainable tau (LeakyRNN, LeakyGRU, LeakyLSTM) against torch's
   ``nn.RNN`` (relu) / ``nn.GRU`` / ``nn.LSTM`` (cuDNN on a GPU) at the same shape (T = 76, the mean
   sequence length at N = 2..30; batch 256; 500 units). Ratio = ours ms / torch ms (1.0 = as fast).

Run on a GPU (the figures of docs/performance.md's GPU rows are still to be measured this way):

    python3 benchmarks/bench_gpu.py                        # --device cuda
    python3 benchmarks/bench_gpu.py --device cpu --quick   # tiny sizes: a smoke run on any machine
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_trainer, next to this file
from bench_trainer import PaperRNN, paper_sgd, paper_train_step  # noqa: E402  (adds this checkout to sys.path)

import agents  # noqa: E402
from baselines.trainer import TrainConfig, Trainer, build_model, build_optimizer, resolve_device  # noqa: E402
from memory_envs import Curriculum  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """The sizes of one benchmark run."""

    hidden: int
    batch: int
    n_max: tuple[int, ...]  # heads N = 2..n_max per training-step comparison
    steps: int  # training steps per round and contender
    core_steps: int  # time steps T of the core comparison
    core_reps: int  # forward+backward calls per round and contender
    rounds: int


PAPER = Sizes(hidden=500, batch=256, n_max=(10, 30, 60), steps=10, core_steps=76, core_reps=10, rounds=5)
QUICK = Sizes(hidden=16, batch=8, n_max=(4, 6), steps=2, core_steps=10, core_reps=2, rounds=2)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(contenders: dict[str, Callable[[], None]], reps: int, rounds: int, device: torch.device,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """ms per call of each contender, one list entry per round; the contenders alternate within a round.
    ``clock``: the wall clock, or e.g. ``time.process_time`` (CPU time: on one thread, what other jobs on a
    shared machine do not change)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm-up: kernels, allocator, cuDNN plans
        fn()
    for _ in range(rounds):
        for name, fn in contenders.items():
            synchronize(device)
            start = clock()
            for _ in range(reps):
                fn()
            synchronize(device)
            times[name].append((clock() - start) * 1e3 / reps)
    return times


def summary(ms: list[float]) -> str:
    return f"{statistics.median(ms):8.2f} ms [{min(ms):.2f}..{max(ms):.2f}]"


def ratio_spread(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """Median ratio of the medians, and the min..max of the per-round ratios."""
    per_round = [a / b for a, b in zip(num, den)]
    return statistics.median(num) / statistics.median(den), min(per_round), max(per_round)


# ----- 1. training step ------------------------------------------------------------------------
def our_trainer(sizes: Sizes, n_max: int, device: torch.device, run_dir: Path, seed: int = 0) -> Trainer:
    """The trainer at the paper's configuration with the multi-head curriculum moved on to heads 2..n_max."""
    config = TrainConfig(hidden_size=sizes.hidden, batch_size=sizes.batch, device=str(device), seed=seed)
    trainer = Trainer(config, run_dir)
    curriculum = Curriculum("multi", start=2)
    while curriculum.ns[-1] < n_max:
        curriculum.update({n: 1.0 for n in curriculum.ns})
    trainer.curriculum = curriculum
    trainer.model = build_model(config, list(curriculum.ns), trainer.generator).to(device)
    trainer.optimizer = build_optimizer(config, trainer.model)
    return trainer


def paper_model(sizes: Sizes, n_max: int, device: torch.device, seed: int = 0) -> tuple[PaperRNN, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = PaperRNN(sizes.hidden)
    for n in range(2, n_max + 1):
        model.add_head(n)
    model.to(device)
    return model, paper_sgd(model)


def bench_training(sizes: Sizes, device: torch.device, log: Callable[[str], None]) -> list[dict]:
    log(f"\n1. training step, paper configuration: {sizes.hidden} units, batch {sizes.batch}, SGD + clipping; "
        f"ms per step, median [min..max] of {sizes.rounds} rounds x {sizes.steps} steps")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_max in sizes.n_max:
            trainer = our_trainer(sizes, n_max, device, Path(tmp) / f"n{n_max}")
            model, optimizer = paper_model(sizes, n_max, device)
            ns, rng = list(range(2, n_max + 1)), np.random.default_rng(0)
            times = interleaved({"ours": trainer.train_step,
                                 "paper": lambda: paper_train_step(model, optimizer, rng, ns, sizes.batch)},
                                sizes.steps, sizes.rounds, device)
            ratio, low, high = ratio_spread(times["paper"], times["ours"])
            log(f"  N=2..{n_max:<3d} ours {summary(times['ours'])} | paper-style {summary(times['paper'])} "
                f"-> ours is {ratio:.1f}x [{low:.1f}..{high:.1f}]")
            rows.append({"n_max": n_max, "ours_ms": statistics.median(times["ours"]),
                         "paper_ms": statistics.median(times["paper"]), "ratio": ratio})
    return rows


# ----- 2. cores against torch's RNN modules ------------------------------------------------------
TORCH_MODULES = {"leaky": lambda h: nn.RNN(1, h, nonlinearity="relu"), "gru": lambda h: nn.GRU(1, h),
                 "lstm": lambda h: nn.LSTM(1, h)}


def forward_backward(module: nn.Module, x: torch.Tensor, state) -> Callable[[], None]:
    def run() -> None:
        hidden, _ = module(x, state)
        hidden.sum().backward()
    return run


def bench_cores(sizes: Sizes, device: torch.device, log: Callable[[str], None]) -> list[dict]:
    t, b, h = sizes.core_steps, sizes.batch, sizes.hidden
    log(f"\n2. forward+backward, T={t}, B={b}, H={h}; each core with trainable tau against torch's module "
        f"(cuDNN on a GPU); ms per call, median [min..max] of {sizes.rounds} rounds x {sizes.core_reps} calls")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (t, b, 1), generator=g).float().to(device)
    rows = []
    for kind, make_module in TORCH_MODULES.items():
        core = agents.make_core(kind, 1, h, generator=g).to(device)
        state = core.initial_state(b, generator=g)
        module = make_module(h).to(device)
        layered = tuple(s.unsqueeze(0) for s in state) if isinstance(state, tuple) else state.unsqueeze(0)
        times = interleaved({"ours": forward_backward(core, x, state), "torch": forward_backward(module, x, layered)},
                            sizes.core_reps, sizes.rounds, device)
        ratio, low, high = ratio_spread(times["ours"], times["torch"])
        name = type(module).__name__
        log(f"  {type(core).__name__:10s} {summary(times['ours'])} | nn.{name:4s} {summary(times['torch'])} "
            f"-> ratio {ratio:.2f} [{low:.2f}..{high:.2f}]")
        rows.append({"core": kind, "ours_ms": statistics.median(times["ours"]),
                     "torch_ms": statistics.median(times["torch"]), "ratio": ratio})
    return rows


def parse_device(value: str) -> torch.device:
    """--device: cpu or cuda[:i], refused with the reason when this machine cannot run it."""
    if value == "auto":
        raise argparse.ArgumentTypeError("must be 'cpu' or 'cuda[:i]', got 'auto' (a benchmark names its device)")
    if value.startswith("cuda") and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{value!r} is not available on this machine (torch.cuda.is_available() "
                                         "is False): run this on a GPU, or smoke-run it with --device cpu --quick")
    try:
        return resolve_device(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> dict[str, list[dict]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", type=parse_device, default="cuda",
                        help="cuda[:i] (default) or cpu; refused if this machine has no such device")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, e.g. on the CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else PAPER
    card = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else "CPU"
    log(f"torch {torch.__version__}, device {args.device} ({card}), {torch.get_num_threads()} CPU threads"
        f"{', quick sizes' if args.quick else ''}")
    return {"training": bench_training(sizes, args.device, log), "cores": bench_cores(sizes, args.device, log)}


if __name__ == "__main__":
    main()
