"""Forward+backward token throughput (batch x time steps per second) of the agents cores.

LeakyRNN is compared with the matmul bound measured in the same run (6 H^2 flops per token at the
GFLOP/s of a [B, H] x [H, H] torch.matmul), with a per-step nn.Module the way the paper's code
writes it, and with the same folded recurrence under plain autograd. LeakyGRU/LeakyLSTM with
trainable tau (their hand-written BPTT kernels) are compared with the same loop under plain autograd
and with torch's fused nn.GRU/nn.LSTM (which cannot leak). Every built-in kind (the architecture
zoo's included) is timed against the GRU core (trainable tau) at batch 256, T = 30 and 120, H = 64
and 256: the kinds run interleaved in each round, and the ratio printed is the median over rounds
with its range. Run:

    python3 benchmarks/bench_agents.py --threads 2
    python3 benchmarks/bench_agents.py --threads 1 --sections kinds --rounds 5
    python3 benchmarks/bench_agents.py --threads 1 --sections kinds --kinds gru,transformer
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's agents package
from agents import LeakyGRU, LeakyLSTM, LeakyRNN, make_core  # noqa: E402
from agents.cores import KINDS  # noqa: E402


class PaperStep(nn.Module):
    """One step of the paper's leaky RNN (docs/agents.md) with nn.Linear layers, called in a Python loop (the paper's style)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.w_in = nn.Linear(1, hidden)
        self.w_rec = nn.Linear(hidden, hidden)
        self.tau = nn.Parameter(torch.rand(hidden) + 1)
        self.register_buffer("mask", 1 - torch.eye(hidden))

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        tau = torch.clamp(self.tau, min=1)
        drive = F.linear(h, self.w_rec.weight * self.mask, self.w_rec.bias) + self.w_in(x_t)
        return F.leaky_relu((1 - 1 / tau) * h + drive / tau, 0.01)


def paper_loop(step: PaperStep, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    out = []
    for t in range(x.shape[0]):
        h = step(x[t], h)
        out.append(h)
    return torch.stack(out)


def autograd_loop(core: LeakyRNN, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """LeakyRNN's folded recurrence (one addmm + activation per step) under plain autograd."""
    alpha = 1 / core.tau
    v = F.linear(x, core.weight_ih, core.bias_ih + core.bias_hh) * alpha
    m = core.recurrent_weight().t() * alpha + torch.diag(1 - alpha)
    out = []
    for t in range(x.shape[0]):
        h = F.leaky_relu(torch.addmm(v[t], h, m), 0.01)
        out.append(h)
    return torch.stack(out)


def gated_autograd_loop(core: LeakyGRU | LeakyLSTM, x: torch.Tensor, state) -> torch.Tensor:
    """The same tau-leaky GRU/LSTM step by step under plain autograd (what the kernels replace)."""
    alpha, r, hidden = 1 / core.tau, core.rnn, core.hidden_size
    out = []
    for t in range(x.shape[0]):
        gi, gh = F.linear(x[t], r.weight_ih_l0, r.bias_ih_l0), F.linear(parts(state)[0], r.weight_hh_l0, r.bias_hh_l0)
        if isinstance(core, LeakyLSTM):
            h, c = state
            i, f, g, o = (gi + gh).chunk(4, 1)
            cc = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            state = (torch.lerp(h, torch.sigmoid(o) * torch.tanh(cc), alpha), torch.lerp(c, cc, alpha))
        else:
            rz = torch.sigmoid(gi[:, : 2 * hidden] + gh[:, : 2 * hidden])
            n = torch.tanh(gi[:, 2 * hidden:] + rz[:, :hidden] * gh[:, 2 * hidden:])
            state = torch.lerp(state, n, alpha * (1 - rz[:, hidden:]))
        out.append(parts(state)[0])
    return torch.stack(out)


def parts(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def seconds(fn: Callable[[], None], reps: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fwd_bwd(run: Callable[[], torch.Tensor], params: list[torch.Tensor]) -> Callable[[], None]:
    def go() -> None:
        for p in params:
            p.grad = None
        run().sum().backward()
    return go


def matmul_gflops(batch: int, hidden: int, reps: int) -> float:
    a, b = torch.randn(batch, hidden), torch.randn(hidden, hidden)
    calls = 50
    t = seconds(lambda: [torch.matmul(a, b) for _ in range(calls)], reps)
    return 2 * batch * hidden * hidden * calls / t / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the every-kind table")
    parser.add_argument("--sections", default="leaky,gated,kinds",
                        help="comma list of leaky, gated, kinds (default: all three)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="comma list of the kinds the every-kind table times (default: all; gru is always timed)")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if not sections <= {"leaky", "gated", "kinds"}:
        parser.error(f"--sections must be a comma list of leaky, gated, kinds, got {args.sections!r}")
    kinds = args.kinds.split(",")
    if not set(kinds) <= set(KINDS):
        parser.error(f"--kinds must be a comma list of {', '.join(KINDS)}, got {args.kinds!r}")
    args.kinds = ["gru", *(kind for kind in kinds if kind != "gru")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, T = args.batch, args.steps
    tokens = B * T
    x = torch.rand(T, B, 1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {B}, T {T}; "
          "forward+backward tokens/s (median of {args.reps})".replace("{args.reps}", str(args.reps)))

    if "leaky" in sections:
        leaky_section(args, x, B, tokens)
    if "gated" in sections:
        gated_section(args, B, T)
    if "kinds" in sections:
        kinds_section(args)


def kinds_section(args: argparse.Namespace) -> None:
    """Every built-in kind's forward+backward time over the GRU core's, median [min, max] over rounds."""
    print(f"\nEvery kind vs the GRU core (trainable tau), batch {args.batch}: forward+backward time ratio "
          f"(> 1: slower than the GRU), median [min, max] of {args.rounds} interleaved rounds")
    for hidden in (64, 256):
        for steps in (30, 120):
            x = torch.rand(steps, args.batch, 1)
            cores = {kind: make_core(kind, 1, hidden, generator=torch.Generator().manual_seed(0))
                     for kind in args.kinds}
            states = {kind: core.initial_state(args.batch) for kind, core in cores.items()}
            times: dict[str, list[float]] = {kind: [] for kind in args.kinds}
            for _ in range(args.rounds):
                for kind, core in cores.items():
                    go = fwd_bwd(lambda core=core, kind=kind: core(x, states[kind])[0], list(core.parameters()))
                    times[kind].append(seconds(go, max(3, args.reps // 3)))
            gru = times["gru"]
            cells = []
            for kind in args.kinds:
                ratios = [t / g for t, g in zip(times[kind], gru)]
                cells.append(f"{kind} {statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]")
            print(f"  H={hidden:3d} T={steps:3d} (GRU {statistics.median(gru) * 1e3:6.1f} ms): " + "; ".join(cells))


def leaky_section(args: argparse.Namespace, x: torch.Tensor, B: int, tokens: int) -> None:
    print("\nLeakyRNN (trainable tau, no self-connections, leaky_relu)")
    for hidden in (128, 500):
        core = LeakyRNN(1, hidden)
        h0 = core.initial_state(B)
        paper = PaperStep(hidden)
        gflops = matmul_gflops(B, hidden, args.reps)
        bound = gflops * 1e9 / (6 * hidden * hidden)
        ours = tokens / seconds(fwd_bwd(lambda: core(x, h0)[0], list(core.parameters())), args.reps)
        auto = tokens / seconds(fwd_bwd(lambda: autograd_loop(core, x, h0), list(core.parameters())),
                                args.reps)
        base = tokens / seconds(fwd_bwd(lambda: paper_loop(paper, x, h0), list(paper.parameters())),
                                args.reps)
        print(f"  H={hidden:4d}: LeakyRNN {ours:10.0f} | matmul bound {bound:10.0f} "
              f"({gflops:.1f} GFLOP/s) -> {ours / bound:.0%} of bound")
        print(f"          paper-style per-step module {base:10.0f} -> LeakyRNN is {ours / base:.2f}x; "
              f"same recurrence under autograd {auto:10.0f} -> {ours / auto:.2f}x")



def gated_section(args: argparse.Namespace, B: int, T: int) -> None:
    print("\nLeakyGRU / LeakyLSTM with trainable tau: hand-written BPTT kernel vs the same loop under autograd "
          "and vs torch's nn.GRU / nn.LSTM (tau = 1, fused)")
    for batch, steps, hidden in ((B, T, 128), (B, T, 500), (16, 9, 64), (16, 9, 256)):  # the last two: RL minibatches
        xb = torch.rand(steps, batch, 1)
        for cls, ref_cls in ((LeakyGRU, nn.GRU), (LeakyLSTM, nn.LSTM)):
            core, ref = cls(1, hidden), ref_cls(1, hidden)
            state = core.initial_state(batch)
            ref_state = tuple(s.unsqueeze(0) for s in state) if isinstance(state, tuple) else state[None]
            params = list(core.parameters())
            ours = seconds(fwd_bwd(lambda: core(xb, state)[0], params), args.reps)
            auto = seconds(fwd_bwd(lambda: gated_autograd_loop(core, xb, state), params), args.reps)
            base = seconds(fwd_bwd(lambda: ref(xb, ref_state)[0], list(ref.parameters())), args.reps)
            print(f"  B={batch:3d} T={steps:2d} H={hidden:3d} {cls.__name__:9s} kernel {ours * 1e3:7.2f} ms | "
                  f"autograd loop {auto * 1e3:7.2f} ms -> {auto / ours:.2f}x | {ref_cls.__name__} "
                  f"{base * 1e3:7.2f} ms -> ratio {base / ours:.2f}")


if __name__ == "__main__":
    main()
