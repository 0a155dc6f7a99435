"""benchmarks/bench_gpu.py: a smoke run at tiny sizes on the CPU, and a clear refusal of a missing device."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
_spec = importlib.util.spec_from_file_location("bench_gpu", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_gpu"] = bench  # its dataclasses look their module up
_spec.loader.exec_module(bench)


def test_quick_run_on_the_cpu_compares_every_contender():
    previous = torch.get_num_threads()
    lines = []
    try:
        results = bench.main(["--device", "cpu", "--quick", "--threads", "1"], log=lines.append)
    finally:
        torch.set_num_threads(previous)
    assert [row["n_max"] for row in results["training"]] == list(bench.QUICK.n_max)
    assert [row["core"] for row in results["cores"]] == ["leaky", "gru", "lstm"]
    for row in results["training"]:
        assert row["ours_ms"] > 0 and row["paper_ms"] > 0
        assert row["ratio"] == pytest.approx(row["paper_ms"] / row["ours_ms"])
    for row in results["cores"]:
        assert row["ratio"] == pytest.approx(row["ours_ms"] / row["torch_ms"])
    text = "\n".join(lines)
    assert "device cpu" in text and "N=2..6" in text and "nn.LSTM" in text


@pytest.mark.parametrize("device, words", [
    ("tpu", "device must be"),
    ("auto", "a benchmark names its device"),
    pytest.param("cuda", "torch.cuda.is_available() is False",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
])
def test_a_device_it_cannot_use_is_refused(device, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--device", device, "--quick"])
    assert exit_info.value.code == 2 and words in capsys.readouterr().err
