"""The paper-style baseline of benchmarks/bench_trainer.py builds correct parity batches."""

import importlib.util
from pathlib import Path

import numpy as np

from memory_envs import tasks

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_trainer.py"
_spec = importlib.util.spec_from_file_location("bench_trainer", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_paper_batch_labels_match_final_labels():
    rng = np.random.default_rng(0)
    for ns in ([2], [2, 3, 4], list(range(2, 9))):
        for _ in range(5):
            inputs, labels, bits = bench.paper_batch(rng, ns, 64)
            m = bits.shape[1]
            assert max(ns) + 2 <= m < 4 * max(ns) + 2
            assert inputs.shape == (m, 64, 1)
            np.testing.assert_array_equal(inputs[:, :, 0].numpy().T, bits)
            np.testing.assert_array_equal(labels.numpy(), tasks.final_labels("parity", bits, ns))


def test_paper_rnn_shapes():
    import torch

    model = bench.PaperRNN(16)
    model.heads["2"] = torch.nn.Linear(16, 2)
    out = model(torch.zeros(5, 3, 1), [2])
    assert out[2].shape == (3, 2)
    assert float(model.mask.diagonal().abs().sum()) == 0.0
