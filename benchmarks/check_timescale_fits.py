"""How well tau_net recovers known timescales (issue 16), old rule next to the new one.

    python benchmarks/check_timescale_fits.py                      # paper size: 10 trials x 1e5 steps
    python benchmarks/check_timescale_fits.py --trials 4 --steps 4000 --neurons 200   # analyze --scale quick

Synthetic neurons (independent AR(1) per neuron, or fast 3 / slow 30 mixtures) go through the
fitting path of ``network_timescales`` (LagSums by FFT, then the fits) under three rules:

- previous: this project's rule before issue 16 (lags 0..30, least squares, AIC, min_weight 0.05);
- paper: the paper's rule (lags 0..30, least squares, plain AIC) = ``--fit paper``;
- robust: the default since issue 16 (adaptive window, GLS, likelihood-ratio choice).

Each cell: neurons within 10% of the truth (the slower timescale for mixtures), the median and 90th
percentile relative error, and the worst estimate.
"""

from __future__ import annotations

import argparse
import time

import torch

from baselines.analysis import PAPER_CHECK_CASES, fit_accuracy

RULES = {"previous": {"rule": "paper", "min_weight": 0.05}, "paper": {"rule": "paper"}, "robust": {"rule": "robust"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--neurons", type=int, default=20, help="synthetic neurons per case (default: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rules", default="previous,paper,robust", help="comma list of " + ",".join(RULES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rules = args.rules.split(",")
    tables = {}
    for name in rules:
        started = time.perf_counter()
        tables[name] = fit_accuracy(PAPER_CHECK_CASES, trials=args.trials, steps=args.steps, neurons=args.neurons,
                                    seed=args.seed, **RULES[name])
        print(f"# {name}: {time.perf_counter() - started:.1f} s", flush=True)
    print(f"\n{args.trials} trials x {args.steps} steps, {args.neurons} neurons per case, seed {args.seed}; "
          "cell = within 10% (median / p90 relative error; worst estimate)\n")
    print("| truth | " + " | ".join(rules) + " |")
    print("|---|" + "---|" * len(rules))
    for i, case in enumerate(PAPER_CHECK_CASES):
        cells = []
        for name in rules:
            r = tables[name][i]
            cells.append(f"{r['within']}/{r['neurons']} ({r['median_rel_error']:.1%} / {r['p90_rel_error']:.1%}; "
                         f"{r['worst']:.4g})")
        print(f"| {case.label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
