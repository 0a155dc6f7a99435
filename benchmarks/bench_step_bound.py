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
  step through ``Core.last``) and, with ``--before REV``, running the leaky cores' kernels
  (agents/_leaky_rnn_kernel.py, agents/_leaky_gated_kernel.py) as they were at git revision REV of
  this checkout: the before of docs/performance.md's before/after, in the same process;

- **authors** (leaky cases, with ``--authors DIR``): the paper's authors' training step, as their
  ``training/train.py`` runs it, imported from a checkout of LevinaLab/rnn_timescale_public at DIR
  (nothing of it is in this repository): their ``RNN_Stack`` (a per-step ``nn.Linear`` loop under
  autograd, 100 readout heads computed every step), their per-sequence parity batches, summed
  cross-entropy over the active heads, clipping at 2.0, SGD 0.05 / momentum 0.1 / Nesterov. Its
  batches draw their own lengths from the same range, so it is compared by GFLOP/s: the same useful
  matmul flops per sequence length (``step_flops``) over its time;
- **evaluation** (with ``--evaluation``): ``Trainer.evaluate`` on one batch (``eval_batches`` = 1): what
  an evaluation cadence adds per training step is eval_batches / eval_every times its share of a step.

It prints, per case, the achieved fraction = bound time / step time (median of the rounds' ratios,
[min..max]), both times, GFLOP/s of each (the step's matmul flops, ``step_flops``, over each time),
the step's speed-up over the reference and over the authors' step. ``--clock cpu`` times by the
process's CPU time instead of the wall clock: with one thread, what other jobs on a shared machine
change least (with two, it adds both threads' time, spin-waits included: use the wall clock).
tests/test_bench_step_bound.py checks ``step_flops`` against torch's flop counter on real training
steps. Run (the default cases at 1 and 2 threads; then one case against the kernels of revision 2462369,
before the changes docs/performance.md describes, and against the authors' step, their repository
cloned beside this one):

    PYTHONPATH=. python3 benchmarks/bench_step_bound.py
    PYTHONPATH=. python3 benchmarks/bench_step_bound.py --cores leaky --hidden 128 --single 25 --multi "" \
        --threads 1 --clock cpu --before 2462369 --authors ../rnn_timescale_public
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import statistics
import subprocess
import sys
import types
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_gpu, next to this file
from bench_gpu import interleaved  # noqa: E402  (adds this checkout to sys.path)

from baselines.trainer import TrainConfig, Trainer, build_model, build_optimizer  # noqa: E402
from memory_envs import Curriculum  # noqa: E402

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
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


ROOT = Path(__file__).resolve().parents[1]
KERNELS = {"agents.cores.leaky": ("_leaky_rnn_kernel", ("leaky_recurrence",)),
           "agents.cores.gated": ("_leaky_gated_kernel", ("leaky_gru_recurrence", "leaky_lstm_recurrence"))}
"""The kernel functions each core module calls, and the agents module that defines them."""


def kernels_at(revision: str) -> dict[tuple[str, str], Callable]:
    """The kernel functions of KERNELS as git ``revision`` of this checkout has them, keyed by (core module,
    name); their imports of ``agents`` helpers resolve to this checkout's. ValueError naming the revision
    when git cannot show a file there."""
    functions = {}
    for core_module, (kernel, names) in KERNELS.items():
        path = f"agents/{kernel}.py"
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:{path}"], capture_output=True, text=True)
        if shown.returncode != 0:
            raise ValueError(f"git cannot show {path} at {revision!r}: {shown.stderr.strip()}")
        module = types.ModuleType(f"agents.{kernel}_at_{revision}")
        module.__package__ = "agents"
        exec(compile(shown.stdout, f"{revision}:{path}", "exec"), module.__dict__)
        functions.update({(core_module, name): getattr(module, name) for name in names})
    return functions


@contextlib.contextmanager
def kernels_in_use(functions: dict[tuple[str, str], Callable]) -> Iterator[None]:
    """The core modules call ``functions`` (from :func:`kernels_at`) within the block."""
    saved = {key: getattr(sys.modules[key[0]], key[1]) for key in functions}
    try:
        for (module, name), function in functions.items():
            setattr(sys.modules[module], name, function)
        yield
    finally:
        for (module, name), function in saved.items():
            setattr(sys.modules[module], name, function)


class TrajectoryReadout(Trainer):
    """The reference step: the readouts read the last step out of the core's whole trajectory [T, B, H];
    with ``kernels`` (:func:`kernels_at`) set, the cores run those kernels during its steps."""

    kernels: dict[tuple[str, str], Callable] = {}

    def _logits(self, inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        return self.model(inputs, ns=self.curriculum.ns, state=self.initial_state(inputs.shape[1]),
                          return_hidden=True)[0]

    def train_step(self) -> float:
        with kernels_in_use(self.kernels):
            return super().train_step()


AUTHORS_FILE = Path("src") / "models" / "RNN_Stack.py"
"""What a checkout of LevinaLab/rnn_timescale_public holds (its leaky RNN), relative to its root."""


class AuthorsStep:
    """The authors' training step (module doc), their code imported from ``checkout``; records the sequence
    length of every batch it draws (``lengths``). Their readouts are the first len(ns) of 100 heads."""

    def __init__(self, checkout: Path, hidden: int, ns: list[int], batch: int, seed: int = 0) -> None:
        sys.path.insert(0, str(checkout))
        try:
            stack = importlib.import_module("src.models.RNN_Stack")
            tasks = importlib.import_module("src.tasks.tasks")
        finally:
            sys.path.remove(str(checkout))
        torch.manual_seed(seed)
        np.random.seed(seed)
        self.model = stack.RNN_Stack(input_size=1, net_size=[hidden], num_classes=2, bias=True,
                                     num_readout_heads=100, tau=1.0, train_tau=True)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.1, nesterov=True)
        self.make_batch, self.ns, self.batch = tasks.make_batch_Nbit_pair_parity, ns, batch
        self.lengths: list[int] = []

    def __call__(self) -> None:
        self.optimizer.zero_grad()
        sequences, labels = self.make_batch(self.ns, self.batch)
        self.lengths.append(sequences.shape[0])
        _, out_class = self.model(sequences)
        loss = sum(F.cross_entropy(out_class[i], labels[i]) for i in range(len(self.ns)))
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=2.0, norm_type=2)
        self.optimizer.step()


def trainer_at(core: str, hidden: int, n: int, curriculum: str, batch: int, run_dir: Path,
               device: str = "cpu", trainer_class: type[Trainer] = Trainer, seed: int = 0) -> Trainer:
    """The trainer of ``core`` as configured by default (but evaluating on one batch), its curriculum moved on
    to N = n (multi: heads 2..n; single: the one head at n), writing into ``run_dir``."""
    config = TrainConfig(core=core, curriculum=curriculum, hidden_size=hidden, batch_size=batch,
                         target_n=max(n, 2) + 1, eval_batches=1, device=device, seed=seed)
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


def round_flops(core: str, hidden: int, batch: int, heads: int, lengths: list[int], steps: int) -> list[float]:
    """Mean matmul flops per step of each round: ``lengths`` are those of every call, the warm-up call first."""
    timed = lengths[1:]
    return [statistics.mean(step_flops(core, hidden, t, batch, heads) for t in timed[i: i + steps])
            for i in range(0, len(timed), steps)]


def bench_case(core: str, hidden: int, n: int, curriculum: str, batch: int, steps: int, rounds: int,
               reference: bool, clock: Callable[[], float] = time.perf_counter, authors: Path | None = None,
               evaluation: bool = False, before: dict[tuple[str, str], Callable] | None = None) -> dict:
    """One case: ms per call of the step, the bound, the reference step (with ``reference``), the authors'
    step (with ``authors``, leaky cases) and one evaluation batch (with ``evaluation``), one entry per
    round, and the mean matmul flops per step of each round for ours and for the authors' (whose batches
    draw their own lengths)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_at(core, hidden, n, curriculum, batch, Path(tmp) / "run")
        calls = 1 + rounds * steps  # interleaved's warm-up call, then the rounds
        lengths = batch_lengths(trainer, calls)
        ns = list(trainer.curriculum.ns)
        contenders: dict[str, Callable[[], None]] = {
            "step": trainer.train_step,
            "bound": Bound(core, hidden, batch, len(ns), max(lengths), lengths),
        }
        if reference:
            old = trainer_at(core, hidden, n, curriculum, batch, Path(tmp) / "reference",
                             trainer_class=TrajectoryReadout)
            old.kernels = before or {}
            contenders["reference"] = old.train_step
        theirs = AuthorsStep(authors, hidden, ns, batch) if authors is not None and core == "leaky" else None
        if theirs is not None:
            contenders["authors"] = theirs
        if evaluation:  # its own stream (eval_rng): the training batches' lengths stay as drawn above
            contenders["evaluation"] = trainer.evaluate
        try:
            times = interleaved(contenders, steps, rounds, torch.device("cpu"), clock)
        finally:
            trainer.close()
            if reference:
                old.close()
    case = {"core": core, "hidden": hidden, "n": n, "curriculum": curriculum, "heads": len(ns),
            "mean_length": statistics.mean(lengths[1:]),
            "flops": round_flops(core, hidden, batch, len(ns), lengths, steps), **times}
    if theirs is not None:
        case["authors_flops"] = round_flops(core, hidden, batch, len(ns), theirs.lengths, steps)
    return case


def spread(values: list[float], digits: str = ".2f") -> str:
    return f"[{min(values):{digits}}..{max(values):{digits}}]"


def report(case: dict, threads: int) -> tuple[str, dict]:
    """The case's line and its summary numbers: fraction, ms, GFLOP/s, speed-ups over the reference and the
    authors' step (medians over the rounds, with their min and max)."""
    step, bound, flops = case["step"], case["bound"], case["flops"]
    fractions = [b / s for b, s in zip(bound, step)]
    step_gflops = [f / ms / 1e6 for f, ms in zip(flops, step)]
    bound_gflops = [f / ms / 1e6 for f, ms in zip(flops, bound)]
    row = {key: case[key] for key in ("core", "hidden", "n", "curriculum", "heads", "mean_length")}
    row.update(threads=threads, fraction=statistics.median(fractions), fraction_min=min(fractions),
               fraction_max=max(fractions), step_ms=statistics.median(step), bound_ms=statistics.median(bound),
               step_gflops=statistics.median(step_gflops), bound_gflops=statistics.median(bound_gflops))
    heads = f"N={case['n']}" if case["curriculum"] == "single" else f"N=2..{case['n']}"
    line = (f"  {case['core']:5s} H={case['hidden']:3d} {case['curriculum']:6s} {heads:8s} T~{case['mean_length']:5.1f} "
            f"{threads}t: {row['fraction']:5.1%} of the bound {spread(fractions, '.0%')} | "
            f"step {row['step_ms']:7.2f} ms ({row['step_gflops']:5.1f} GFLOP/s) | "
            f"bound {row['bound_ms']:7.2f} ms ({row['bound_gflops']:5.1f} GFLOP/s)")
    if "reference" in case:
        speedups = [r / s for r, s in zip(case["reference"], step)]
        row.update(reference_ms=statistics.median(case["reference"]), speedup=statistics.median(speedups),
                   speedup_min=min(speedups), speedup_max=max(speedups))
        line += f" | reference {row['reference_ms']:7.2f} ms: step {row['speedup']:.2f}x {spread(speedups)}"
    if "evaluation" in case:
        shares = [e / s for e, s in zip(case["evaluation"], step)]
        row.update(evaluation_ms=statistics.median(case["evaluation"]), evaluation_share=statistics.median(shares))
        line += f" | evaluation batch {row['evaluation_ms']:6.2f} ms ({row['evaluation_share']:.0%} of a step)"
    if "authors" in case:
        gflops = [f / ms / 1e6 for f, ms in zip(case["authors_flops"], case["authors"])]
        ratios = [ours / theirs for ours, theirs in zip(step_gflops, gflops)]
        row.update(authors_ms=statistics.median(case["authors"]), authors_gflops=statistics.median(gflops),
                   authors_fraction=statistics.median([a / b for a, b in zip(gflops, bound_gflops)]),
                   authors_speedup=statistics.median(ratios), authors_speedup_min=min(ratios),
                   authors_speedup_max=max(ratios))
        line += (f" | authors {row['authors_ms']:7.2f} ms ({row['authors_gflops']:5.1f} GFLOP/s, "
                 f"{row['authors_fraction']:.0%} of the bound): step {row['authors_speedup']:.2f}x {spread(ratios)}")
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
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="wall (default) or cpu: the process's CPU time (one thread on a shared machine)")
    parser.add_argument("--authors", type=Path, default=None, metavar="DIR",
                        help="a checkout of LevinaLab/rnn_timescale_public: time their training step too (leaky cases)")
    parser.add_argument("--evaluation", action="store_true",
                        help="also time one evaluation batch (Trainer.evaluate with eval_batches 1)")
    parser.add_argument("--before", default=None, metavar="REV",
                        help="the reference step also runs the leaky cores' kernels of git revision REV")
    args = parser.parse_args(argv)
    for name in ("batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.authors is not None and not (args.authors / AUTHORS_FILE).is_file():
        parser.error(f"--authors must be a checkout of LevinaLab/rnn_timescale_public (holding {AUTHORS_FILE}), "
                     f"got {str(args.authors)!r}")
    try:
        kernels = None if args.before is None else kernels_at(args.before)
    except ValueError as error:
        parser.error(f"--before: {error}")
    before = torch.get_num_threads()
    log(f"torch {torch.__version__}, CPU, batch {args.batch}; ms per training step ({args.clock} clock), median of "
        f"{args.rounds} interleaved rounds x {args.steps} steps; fraction = bound / step, [min..max] over the rounds")
    rows = []
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            for core in args.cores:
                for hidden in args.hidden:
                    for curriculum, ns in (("single", args.single), ("multi", args.multi)):
                        for n in ns:
                            case = bench_case(core, hidden, n, curriculum, args.batch, args.steps, args.rounds,
                                              args.reference, CLOCKS[args.clock], args.authors,
                                              args.evaluation, kernels)
                            line, row = report(case, threads)
                            log(line)
                            rows.append(row)
    finally:
        torch.set_num_threads(before)
    return rows


if __name__ == "__main__":
    main()
