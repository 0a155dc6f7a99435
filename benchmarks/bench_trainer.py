"""Wall-clock time for the supervised trainer to reach N on multi-head parity, against the paper's loop.

"Ours" is ``baselines.trainer.Trainer`` (evaluation every 100 steps on 10 batches, the CLI's
defaults). "Paper" is a straight-line re-implementation of the paper's training loop written
below: a Python loop building each of the 256 sequences separately, a per-step nn.Module leaky
RNN looped over time under autograd, one Linear(H, 2) readout per N, summed cross-entropy,
the same SGD (0.05, momentum 0.1, Nesterov), clipping (2.0) and batch (256), evaluation every
600 steps on 50 test batches, and the same curriculum rule (the shared ``Curriculum`` object).
Both run in this process on the same threads, one after the other. Run:

    PYTHONPATH=. python3 benchmarks/bench_trainer.py --threads 2          # N = 8, hidden 128
    PYTHONPATH=. python3 benchmarks/bench_trainer.py --quick              # N = 4, < 60 s smoke test

If the paper loop does not reach the target N within its cap, the ratio is reported as a lower
bound ("> x") with the N it did reach.

One run (2 threads, 2-core shared machine, quiet at the time; noisy): ours reached N=8 in 32.7 s
(3800 steps), the paper loop in 87.8 s (5400 steps): 2.7x. The per-N ratio was 16x at N=2 (first
evaluation at step 100 vs 600) and about 3x from N=4 on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages
from memory_envs import Curriculum  # noqa: E402


# ----- the paper's loop, straight-line ---------------------------------------------------------
def paper_batch(rng: np.random.Generator, ns: list[int], batch_size: int):
    """One batch built sequence by sequence: p ~ U(0, 1), bits ~ Bernoulli(p), one M per batch.

    Returns inputs [M, B, 1] float32, labels [B, K] int64 (parity of the last N bits per N), bits [B, M].
    """
    n_max = max(ns)
    m = int(rng.integers(n_max + 2, 4 * n_max + 2))
    seqs, labs = [], []
    for _ in range(batch_size):
        p = rng.uniform(0.0, 1.0)
        bits = (rng.uniform(0.0, 1.0, size=m) < p).astype(np.int64)
        seqs.append(bits)
        labs.append([int(bits[-n:].sum()) % 2 for n in ns])
    bits = np.stack(seqs)
    inputs = torch.tensor(bits.T[:, :, None], dtype=torch.float32)
    return inputs, torch.tensor(labs, dtype=torch.int64), bits


class PaperRNN(nn.Module):
    """The paper's leaky RNN (docs/agents.md) written per step; one readout per N, keyed by N."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.w_in = nn.Linear(1, hidden)
        self.w_rec = nn.Linear(hidden, hidden)
        self.tau = nn.Parameter(torch.rand(hidden) + 1.0)  # U(1, 2)
        self.register_buffer("mask", 1.0 - torch.eye(hidden))
        self.heads = nn.ModuleDict()

    def step(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        tau = torch.clamp(self.tau, min=1.0)
        drive = F.linear(h, self.w_rec.weight * self.mask, self.w_rec.bias) + self.w_in(x_t)
        return F.leaky_relu((1.0 - 1.0 / tau) * h + drive / tau, 0.01)

    def forward(self, inputs: torch.Tensor, ns: list[int]) -> dict[int, torch.Tensor]:
        h = (0.1 * torch.rand(inputs.shape[1], self.hidden)).to(inputs.device)  # CPU draw, then moved
        for t in range(inputs.shape[0]):
            h = self.step(inputs[t], h)
        return {n: self.heads[str(n)](h) for n in ns}

    def add_head(self, n: int) -> nn.Linear:
        """A readout for N = n on the model's device."""
        self.heads[str(n)] = head = nn.Linear(self.hidden, 2).to(self.mask.device)
        return head


def paper_train_step(model: PaperRNN, optimizer: torch.optim.Optimizer, rng: np.random.Generator, ns: list[int],
                     batch_size: int = 256) -> float:
    """One training step of the paper's loop: a per-sequence batch moved to the model's device, summed
    cross-entropy over the heads, gradient norm clipped at 2.0, one SGD step; returns the loss."""
    inputs, labels, _ = paper_batch(rng, ns, batch_size)
    inputs, labels = inputs.to(model.mask.device), labels.to(model.mask.device)
    logits = model(inputs, ns)
    loss = sum(F.cross_entropy(logits[n], labels[:, k]) for k, n in enumerate(ns))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
    optimizer.step()
    return float(loss.detach())


def paper_sgd(model: PaperRNN) -> torch.optim.Optimizer:
    """The paper's optimizer: SGD lr 0.05, momentum 0.1, Nesterov."""
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.1, nesterov=True)


def run_paper(target_n: int, hidden: int, seed: int, max_seconds: float, eval_every: int = 600,
              eval_batches: int = 50, batch_size: int = 256, log=print) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    curriculum = Curriculum("multi", start=2, n_max=target_n)
    model = PaperRNN(hidden)
    model.add_head(2)
    optimizer = paper_sgd(model)
    step, seconds_to_n, steps_to_n = 0, {}, {}
    start = time.perf_counter()
    while not curriculum.finished and time.perf_counter() - start < max_seconds:
        ns = list(curriculum.ns)
        paper_train_step(model, optimizer, rng, ns, batch_size)
        step += 1
        if step % eval_every == 0:
            correct = np.zeros(len(ns))
            with torch.no_grad():
                for _ in range(eval_batches):
                    inputs, labels, _ = paper_batch(rng, ns, batch_size)
                    logits = model(inputs, ns)
                    for k, n in enumerate(ns):
                        correct[k] += (logits[n].argmax(dim=1) == labels[:, k]).sum().item()
            accuracy = {n: correct[k] / (eval_batches * batch_size) for k, n in enumerate(ns)}
            solved_before = curriculum.solved
            curriculum.update(accuracy)
            elapsed = time.perf_counter() - start
            if curriculum.solved != solved_before:
                seconds_to_n[curriculum.solved], steps_to_n[curriculum.solved] = elapsed, step
            for n in curriculum.ns:
                if str(n) not in model.heads:
                    optimizer.add_param_group({"params": list(model.add_head(n).parameters())})
            log(f"  paper  step {step:6d}  {elapsed:7.1f} s  ns {ns[0]}..{ns[-1]}  "
                f"acc newest {accuracy[ns[-1]]:.3f} mean {np.mean(list(accuracy.values())):.3f}")
    return {"max_n": curriculum.solved, "steps": step, "seconds": time.perf_counter() - start,
            "seconds_to_n": seconds_to_n, "steps_to_n": steps_to_n, "finished": curriculum.finished}


# ----- ours -------------------------------------------------------------------------------------
def run_ours(target_n: int, hidden: int, seed: int, max_seconds: float, eval_every: int, eval_batches: int,
             log=print) -> dict:
    from baselines.trainer import TrainConfig, Trainer

    config = TrainConfig(task="parity", curriculum="multi", hidden_size=hidden, target_n=target_n,
                         eval_every=eval_every, eval_batches=eval_batches, max_seconds=max_seconds,
                         device="cpu", seed=seed)
    seconds_to_n: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, run_dir=Path(tmp) / "run")

        def on_eval(line: dict) -> None:
            solved = trainer.curriculum.solved
            if solved is not None and solved not in seconds_to_n:
                seconds_to_n[solved] = line["time"]
                log(f"  ours   step {line['step']:6d}  {line['time']:7.1f} s  solved N={solved}")

        summary = trainer.run(on_eval)
    return {"max_n": summary["max_n"], "steps": summary["steps"], "seconds": summary["seconds"],
            "seconds_to_n": seconds_to_n, "steps_to_n": {int(k): v for k, v in summary["steps_to_n"].items()},
            "finished": summary["stopped_because"] == "target_reached"}


# ----- report -----------------------------------------------------------------------------------
def report(ours: dict, paper: dict, target_n: int) -> None:
    print("\n  N | ours s (steps)      | paper s (steps)     | paper/ours")
    print("----+---------------------+---------------------+-----------")
    for n in range(2, target_n + 1):
        o = f"{ours['seconds_to_n'][n]:8.1f} ({ours['steps_to_n'][n]:6d})" if n in ours["seconds_to_n"] else " " * 8 + "    -   "
        p = f"{paper['seconds_to_n'][n]:8.1f} ({paper['steps_to_n'][n]:6d})" if n in paper["seconds_to_n"] else " " * 8 + "    -   "
        r = (f"{paper['seconds_to_n'][n] / ours['seconds_to_n'][n]:8.1f}x"
             if n in ours["seconds_to_n"] and n in paper["seconds_to_n"] else "       -")
        print(f"{n:3d} | {o:19s} | {p:19s} | {r}")
    print(f"\nours : max N {ours['max_n']}, {ours['steps']} steps, {ours['seconds']:.1f} s")
    print(f"paper: max N {paper['max_n']}, {paper['steps']} steps, {paper['seconds']:.1f} s")
    both = [n for n in ours["seconds_to_n"] if n in paper["seconds_to_n"]]
    if both:
        n = max(both)
        print(f"largest N both reached: {n}, ratio paper/ours = "
              f"{paper['seconds_to_n'][n] / ours['seconds_to_n'][n]:.1f}x")
    if target_n not in ours["seconds_to_n"]:
        print(f"ratio at N={target_n}: n/a (ours did not reach N={target_n} within its cap)")
    elif target_n in paper["seconds_to_n"]:
        print(f"ratio at N={target_n}: {paper['seconds_to_n'][target_n] / ours['seconds_to_n'][target_n]:.1f}x")
    else:
        print(f"ratio at N={target_n}: > {paper['seconds'] / ours['seconds_to_n'][target_n]:.1f}x "
              f"(lower bound: the paper loop stopped at its {paper['seconds']:.0f} s cap having reached "
              f"N={paper['max_n']})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--target-n", type=int, default=None, help="default 8 (4 with --quick)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ours-cap", type=float, default=None, help="seconds (default 300; 25 with --quick)")
    parser.add_argument("--paper-cap", type=float, default=None, help="seconds (default 900; 25 with --quick)")
    parser.add_argument("--eval-every", type=int, default=100, help="ours (default 100)")
    parser.add_argument("--eval-batches", type=int, default=10, help="ours (default 10)")
    parser.add_argument("--quick", action="store_true", help="N = 4, small caps (< 60 s smoke test)")
    args = parser.parse_args(argv)
    target_n = args.target_n or (4 if args.quick else 8)
    ours_cap = args.ours_cap or (25.0 if args.quick else 300.0)
    paper_cap = args.paper_cap or (25.0 if args.quick else 900.0)
    torch.set_num_threads(args.threads)
    print(f"multi-head parity to N={target_n}, hidden {args.hidden}, seed {args.seed}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"ours : eval every {args.eval_every} steps x {args.eval_batches} batches, cap {ours_cap:.0f} s")
    print(f"paper: eval every 600 steps x 50 batches, cap {paper_cap:.0f} s", flush=True)
    ours = run_ours(target_n, args.hidden, args.seed, ours_cap, args.eval_every, args.eval_batches,
                    log=lambda s: print(s, flush=True))
    paper = run_paper(target_n, args.hidden, args.seed, paper_cap, log=lambda s: print(s, flush=True))
    report(ours, paper, target_n)


if __name__ == "__main__":
    main()
