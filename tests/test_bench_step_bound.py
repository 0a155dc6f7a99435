"""benchmarks/bench_step_bound.py: its flop count is the training step's, and a tiny run reports every case."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_step_bound.py"
_spec = importlib.util.spec_from_file_location("bench_step_bound", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_step_bound"] = bench
_spec.loader.exec_module(bench)


def baddbmm_inplace_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """torch's flop counter has no formula for the in-place baddbmm_ (the kernels' backward uses it)."""
    groups, rows, inner = a_shape
    return 2 * groups * rows * inner * b_shape[-1]


@pytest.mark.parametrize("core", ["leaky", "gru", "lstm"])
@pytest.mark.parametrize("curriculum, n", [("single", 5), ("multi", 4)])
def test_step_flops_are_the_training_steps_matmul_flops(core, curriculum, n, tmp_path, device):
    trainer = bench.trainer_at(core, 6, n, curriculum, 5, tmp_path / "run", device=str(device))
    try:
        (steps,) = bench.batch_lengths(trainer, 1)
        counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.baddbmm_: baddbmm_inplace_flops})
        with counter:
            trainer.train_step()
    finally:
        trainer.close()
    heads = 1 if curriculum == "single" else n - 1
    assert trainer.model.ns == ([n] if curriculum == "single" else list(range(2, n + 1)))
    assert counter.get_total_flops() == bench.step_flops(core, 6, steps, 5, heads)


def test_batch_lengths_are_the_next_batches_and_leave_the_stream(tmp_path):
    trainer = bench.trainer_at("leaky", 4, 6, "multi", 3, tmp_path / "run")
    try:
        lengths = bench.batch_lengths(trainer, 4)
        assert all(8 <= t < 26 for t in lengths)
        assert [trainer.batch(trainer.data_rng)[0].shape[0] for _ in range(4)] == lengths
    finally:
        trainer.close()


def test_tiny_run_reports_every_case():
    previous = torch.get_num_threads()
    lines = []
    rows = bench.main(["--cores", "leaky,lstm", "--hidden", "8", "--single", "3", "--multi", "4", "--threads", "1",
                       "--batch", "4", "--steps", "1", "--rounds", "2", "--evaluation"], log=lines.append)
    assert torch.get_num_threads() == previous
    assert [(r["core"], r["curriculum"], r["heads"]) for r in rows] == [
        ("leaky", "single", 1), ("leaky", "multi", 3), ("lstm", "single", 1), ("lstm", "multi", 3)]
    for row in rows:
        assert 0 < row["fraction_min"] <= row["fraction"] <= row["fraction_max"]
        assert 0 < row["speedup_min"] <= row["speedup"] <= row["speedup_max"]
        assert row["evaluation_ms"] > 0 and row["evaluation_share"] > 0 and row["step_gflops"] > 0
    assert len(lines) == 5 and "of the bound" in lines[1] and "reference" in lines[1] and "wall clock" in lines[0]


def test_report_takes_medians_of_the_rounds_ratios():
    case = {"core": "leaky", "hidden": 4, "n": 3, "curriculum": "multi", "heads": 2, "mean_length": 9.0,
            "flops": [2e6, 4e6, 3e6], "step": [10.0, 20.0, 40.0], "bound": [5.0, 4.0, 30.0],
            "reference": [20.0, 30.0, 40.0], "authors": [40.0, 40.0, 40.0], "authors_flops": [4e6, 4e6, 4e6]}
    line, row = bench.report(case, threads=1)
    assert row["fraction"] == 0.5 and (row["fraction_min"], row["fraction_max"]) == (0.2, 0.75)
    assert row["step_ms"] == 20.0 and row["step_gflops"] == pytest.approx(0.2)  # 2e6 / 10 ms, 4e6 / 20, 3e6 / 40
    assert row["speedup"] == 1.5 and row["authors_speedup"] == pytest.approx(2.0)  # 0.2 GFLOP/s vs 0.1
    assert "50.0% of the bound [20%..75%]" in line and "N=2..3" in line


def test_round_flops_follow_each_rounds_lengths():
    assert bench.round_flops("leaky", 4, 2, 1, [99, 3, 5, 7, 9], 2) == [
        (bench.step_flops("leaky", 4, 3, 2, 1) + bench.step_flops("leaky", 4, 5, 2, 1)) / 2,
        (bench.step_flops("leaky", 4, 7, 2, 1) + bench.step_flops("leaky", 4, 9, 2, 1)) / 2]


@pytest.mark.parametrize("argv, words", [(["--cores", "rnn"], "--cores: must be a comma list of leaky, gru, lstm"),
                                         (["--hidden", "0"], "--hidden: must be a comma list of positive integers"),
                                         (["--rounds", "0"], "--rounds must be a positive integer"),
                                         (["--clock", "gpu"], "--clock: invalid choice: 'gpu'"),
                                         (["--authors", "."], "--authors must be a checkout of LevinaLab/"),
                                         (["--before", "no-such-revision"], "--before: git cannot show agents/")])
def test_bad_options_are_refused_by_name(argv, words, capsys):
    with pytest.raises(SystemExit):
        bench.main(argv)
    assert words in capsys.readouterr().err


@pytest.mark.skipif(not (bench.ROOT / ".git").exists(), reason="not a git checkout: --before reads git revisions")
def test_the_reference_step_runs_the_kernels_of_a_revision(tmp_path):
    import agents.cores.gated
    import agents.cores.leaky

    kernels = bench.kernels_at("HEAD")
    assert set(kernels) == {("agents.cores.leaky", "leaky_recurrence"), ("agents.cores.gated", "leaky_gru_recurrence"),
                            ("agents.cores.gated", "leaky_lstm_recurrence")}
    now = agents.cores.gated.leaky_gru_recurrence
    with bench.kernels_in_use(kernels):
        assert agents.cores.gated.leaky_gru_recurrence is kernels["agents.cores.gated", "leaky_gru_recurrence"] is not now
    assert agents.cores.gated.leaky_gru_recurrence is now and agents.cores.leaky.leaky_recurrence.__module__ == \
        "agents._leaky_rnn_kernel"
    ours = bench.trainer_at("gru", 6, 4, "multi", 5, tmp_path / "ours")
    reference = bench.trainer_at("gru", 6, 4, "multi", 5, tmp_path / "reference", trainer_class=bench.TrajectoryReadout)
    reference.kernels = kernels
    try:
        for _ in range(2):
            assert ours.train_step() == reference.train_step()  # HEAD's kernels are this checkout's (committed)
    finally:
        ours.close()
        reference.close()
    for a, b in zip(ours.model.parameters(), reference.model.parameters()):
        assert torch.equal(a, b)
