"""What fraction of this machine's matrix-multiply throughput the supervised trainer's step achieves.

For each core (leaky, gru, lstm; trainable tau), hidden size, N and curriculum (single: one head at N;
multi: heads 2..N) the benchmark builds the real ``baselines.trainer.Trainer`` (batch 256, the kind's
optimizer: SGD for the leaky RNN, Adam for the GRU and LSTM; sequence lengths T ~ U[N + 2, 4N + 2) as
the task draws them) and, in the same process on the same threads, times in interleaved rounds:

- **step**: ``Trainer.train_step``, the whole step: batch generation, forward, backward, clipping, optimizer;
- **bound**: plain ``torch.mm`` calls of the matrix products that step does, at the very sequence
  lengths its batches drew (k = 1 leaky, 3 GRU, 4 LSTM gate blocks; K heads; F = 1 input):
  per time step the recurrent product [B, H] x [H, kH] and its backward [B, kH] x [kH, H]; once per
  step the recurrent weight gradient [H, TB] x [TB, kH], the input projection [TB, F] x [F, kH] and its
  weight gradient [kH, TB] x [TB, F]; the readouts as one [B, H] x [H, 2K] product with its two
  backward products. Nothing else (no activation, no optimizer): a step cannot be faster than this
  with these products on this machine's torch;
- **reference**: the same step reading the readouts from the core's whole trajectory
  (``model(..., return_hidden=True)``, what ``MultiHeadModel.forward`` did before it read the last
  step through ``Core.last``): the before of docs/performance.md's before/after.

It prints, per case, the achieved fraction = bound time / step time (median of the rounds' ratios,
[min..max]), both times, GFLOP/s of each (the step's matmul flops, ``step_flops``, over each time),
and the step's speed-up over the reference. tests/test_bench_step_bound.py checks ``step_flops``
against torch's flop counter on a real training step. Run (1 and 2 threads, the default cases):

    PYTHONPATH=. python3 benchmarks/bench_step_bound.py
    PYTHONPATH=. python3 benchmarks/bench_step_bound.py --cores leaky --hidden 128 --single 25 --multi "" --threads 1
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_gpu, next to this file
from bench_gpu import interleaved  # noqa: E402  (adds this checkout to sys.path)

from baselines.trainer import TrainConfig, Trainer, build_model, build_optimizer  # noqa: E402
from memory_envs import Curriculum  # noqa: E402

GATE_BLOCKS = {"leaky": 1, "gru": 3, "lstm": 4}
"""k: the recurrent weight of each core is [k H, H] (one block per gate)."""


def step_flops(core: str, hidden: int, steps: int, batch: int, heads: int, inputs: int = 1) -> int:
    """Matmul flops (2 per multiply-add) of one training step on sequences of ``steps`` bits: the recurrent
    product forward, backward and weight gradient, the input projection and its weight gradient, and
    the ``heads`` readouts Linear(H, 2) forward, input gradient and weight gradient."""
    k = GATE_BLOCKS[core] * hidden
    recurrent = 3 * 2 * steps * batch * hidden * k
    projection = 2 * 2 * steps * batch * inputs * k
    readouts = 3 * 2 * batch * hidden * 2 * heads
    return recurrent + projection + readouts


class Bound:
    """The matmul bound of the training steps: plain torch.mm of the step's products (module doc) on
    preallocated random operands, at the sequence lengths ``lengths`` yields one call after another."""

    def __init__(self, core: str, hidden: int, batch: int, heads: int, longest: int, lengths: list[int]) -> None:
        k, rows = GATE_BLOCKS[core] * hidden, longest * batch
        r = torch.randn
        self.h, self.dz, self.w, self.w_t = r(batch, hidden), r(batch, k), r(hidden, k), r(k, hidden)
        self.z, self.dh, self.dw = torch.empty(batch, k), torch.empty(batch, hidden), torch.empty(hidden, k)
        self.hs, self.dzs, self.x, self.w_in = r(rows, hidden), r(rows, k), r(rows, 1), r(1, k)
        self.v, self.dw_in = torch.empty(rows, k), torch.empty(k, 1)
        self.w_out, self.dy = r(hidden, 2 * heads), r(batch, 2 * heads)
        self.y, self.dh_out, self.dw_out = torch.empty(batch, 2 * heads), torch.empty(batch, hidden), torch.empty(
            2 * heads, hidden)
        self.batch, self.lengths = batch, iter(lengths)

    def __call__(self) -> None:
        steps = next(self.lengths)
        rows = steps * self.batch
        for _ in range(steps):
            torch.mm(self.h, self.w, out=self.z)
        for _ in range(steps):
            torch.mm(self.dz, self.w_t, out=self.dh)
        torch.mm(self.hs[:rows].t(), self.dzs[:rows], out=self.dw)
        torch.mm(self.x[:rows], self.w_in, out=self.v[:rows])
        torch.mm(self.dzs[:rows].t(), self.x[:rows], out=self.dw_in)
        torch.mm(self.h, self.w_out, out=self.y)
        torch.mm(self.dy, self.w_out.t(), out=self.dh_out)
        torch.mm(self.dy.t(), self.h, out=self.dw_out)


class TrajectoryReadout(Trainer):
    """The reference step: the readouts read the last step out of the core's whole trajectory [T, B, H]."""

    def _logits(self, inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        return self.model(inputs, ns=self.curriculum.ns, state=self.initial_state(inputs.shape[1]),
                          return_hidden=True)[0]


def trainer_at(core: str, hidden: int, n: int, curriculum: str, batch: int, run_dir: Path,
               device: str = "cpu", trainer_class: type[Trainer] = Trainer, seed: int = 0) -> Trainer:
    """The trainer of ``core`` as configured by default, its curriculum moved on to N = n (multi: heads 2..n;
    single: the one head at n), writing into ``run_dir``."""
    config = TrainConfig(core=core, curriculum=curriculum, hidden_size=hidden, batch_size=batch,
                         target_n=max(n, 2) + 1, device=device, seed=seed)
    trainer = trainer_class(config, run_dir)
    schedule = Curriculum(curriculum, start=2)
    while schedule.ns[-1] < n:
        schedule.update({m: 1.0 for m in schedule.ns})
    trainer.curriculum = schedule
    trainer.model = build_model(config, list(schedule.ns), trainer.generator).to(trainer.device)
    trainer.optimizer = build_optimizer(config, trainer.model)
    return trainer


def batch_lengths(trainer: Trainer, count: int) -> list[int]:
    """The sequence lengths of the trainer's next ``count`` training batches (drawn from a copy of its data
    stream, which stays where it is)."""
    rng = copy.deepcopy(trainer.data_rng)
    return [trainer.batch(rng)[0].shape[0] for _ in range(count)]


def bench_case(core: str, hidden: int, n: int, curriculum: str, batch: int, steps: int, rounds: int,
               reference: bool) -> dict:
    """One case: ms per step of the step, the bound and (with ``reference``) the reference step, one entry
    per round, and the mean matmul flops of the timed steps."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_at(core, hidden, n, curriculum, batch, Path(tmp) / "run")
        calls = 1 + rounds * steps  # interleaved's warm-up call, then the rounds
        lengths = batch_lengths(trainer, calls)
        heads = len(trainer.curriculum.ns)
        contenders: dict[str, Callable[[], None]] = {
            "step": trainer.train_step,
            "bound": Bound(core, hidden, batch, heads, max(lengths), lengths),
        }
        if reference:
            old = trainer_at(core, hidden, n, curriculum, batch, Path(tmp) / "reference",
                             trainer_class=TrajectoryReadout)
            contenders["reference"] = old.train_step
        try:
            times = interleaved(contenders, steps, rounds, torch.device("cpu"))
        finally:
            trainer.close()
            if reference:
                old.close()
    flops = statistics.mean(step_flops(core, hidden, t, batch, heads) for t in lengths)
    return {"core": core, "hidden": hidden, "n": n, "curriculum": curriculum, "heads": heads,
            "mean_length": statistics.mean(lengths), "flops": flops, **times}


def report(case: dict, threads: int) -> tuple[str, dict]:
    """The case's line and its summary numbers (fraction, ms, GFLOP/s, speed-up over the reference)."""
    step, bound = case["step"], case["bound"]
    fractions = [b / s for b, s in zip(bound, step)]
    fraction = statistics.median(fractions)
    step_ms, bound_ms = statistics.median(step), statistics.median(bound)
    row = {key: case[key] for key in ("core", "hidden", "n", "curriculum", "heads", "mean_length")}
    row.update(threads=threads, fraction=fraction, fraction_min=min(fractions), fraction_max=max(fractions),
               step_ms=step_ms, bound_ms=bound_ms, step_gflops=case["flops"] / step_ms / 1e6,
               bound_gflops=case["flops"] / bound_ms / 1e6)
    heads = f"N={case['n']}" if case["curriculum"] == "single" else f"N=2..{case['n']}"
    line = (f"  {case['core']:5s} H={case['hidden']:3d} {case['curriculum']:6s} {heads:8s} T~{case['mean_length']:5.1f} "
            f"{threads}t: {fraction:5.1%} of the bound [{min(fractions):.0%}..{max(fractions):.0%}] | "
            f"step {step_ms:7.2f} ms ({row['step_gflops']:5.1f} GFLOP/s) | "
            f"bound {bound_ms:7.2f} ms ({row['bound_gflops']:5.1f} GFLOP/s)")
    if "reference" in case:
        speedups = [r / s for r, s in zip(case["reference"], step)]
        row.update(reference_ms=statistics.median(case["reference"]), speedup=statistics.median(speedups),
                   speedup_min=min(speedups), speedup_max=max(speedups))
        line += (f" | reference {row['reference_ms']:7.2f} ms ({case['flops'] / row['reference_ms'] / 1e6:5.1f} "
                 f"GFLOP/s): {row['speedup']:.2f}x [{min(speedups):.2f}..{max(speedups):.2f}]")
    return line, row


def int_list(value: str) -> list[int]:
    """A comma list of positive integers (empty: none)."""
    try:
        values = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a comma list of positive integers, got {value!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"must be a comma list of positive integers, got {value!r}")
    return values


def core_list(value: str) -> list[str]:
    cores = [v for v in value.split(",") if v]
    if not cores or not set(cores) <= set(GATE_BLOCKS):
        raise argparse.ArgumentTypeError(f"must be a comma list of {', '.join(GATE_BLOCKS)}, got {value!r}")
    return cores


def main(argv: list[str] | None = None, log: Callable[[str], None] = print) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", type=core_list, default=list(GATE_BLOCKS), help="default leaky,gru,lstm")
    parser.add_argument("--hidden", type=int_list, default=[128, 256], help="default 128,256")
    parser.add_argument("--single", type=int_list, default=[10, 25], help="single-head Ns (default 10,25)")
    parser.add_argument("--multi", type=int_list, default=[10, 40], help="multi-head N_max (default 10,40)")
    parser.add_argument("--threads", type=int_list, default=[1, 2], help="torch CPU threads (default 1,2)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="training steps per round and contender (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the reference step (the before of the before/after)")
    args = parser.parse_args(argv)
    for name in ("batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    before = torch.get_num_threads()
    log(f"torch {torch.__version__}, CPU, batch {args.batch}; ms per training step, median of {args.rounds} "
        f"interleaved rounds x {args.steps} steps; fraction = bound / step, [min..max] over the rounds")
    rows = []
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for core in args.cores:
                for hidden in args.hidden:
                    for curriculum, ns in (("single", args.single), ("multi", args.multi)):
                        for n in ns:
                            case = bench_case(core, hidden, n, curriculum, args.batch, args.steps, args.rounds,
                                              args.reference)
                            line, row = report(case, threads)
                            log(line)
                            rows.append(row)
    finally:
        torch.set_num_threads(before)
    return rows


if __name__ == "__main__":
    main()
