"""What running parity shows a user (issue 28, part 4): the length-generalization figure and the analyses of a
running-parity run folder."""

import json

import pytest

from baselines.analysis import AnalysisError, AnalysisOptions, analyze_run
from baselines.cli import main
from baselines.plots import log_spaced, plot_length_generalization
from baselines.state_tracking import FIGURE, length_panels
from baselines.plots import plot_run
from baselines.trainer import TrainConfig, train
from memory_envs import tasks

LENGTHS = (40, 64, 96, 128, 160, 192, 224, 256, 1000)


def result(core, seed, values, task=tasks.RUNNING_PARITY, tested=True):
    """A score-card result (baselines.benchmark.collect) whose length test scored ``values`` at LENGTHS."""
    test = {"scaled": {str(n): v for n, v in zip(LENGTHS, values)}, "train_lengths": [3, 41], "far_length": 1000}
    return {"core": core, "task": task, "seed": seed, "heldout": test if tested else None}


def test_panels_pair_each_kind_with_its_signed_variant_and_take_the_median_over_seeds():
    results = [result("mingru+signed", 2, [1.0] * 8 + [0.2]), result("mingru", 1, [0.1] * 9),
               result("mingru+signed", 0, [0.8] * 8 + [0.0]), result("lstm", 0, [0.5] * 9),
               result("mingru+signed", 1, [0.9] * 8 + [0.6]), result("mingru", 0, [0.0] * 9),
               result("mamba", 0, [0.3] * 9, tested=False), result("gru", 0, [0.3] * 9, task="parity")]
    panels = length_panels(results)
    assert [p.kind for p in panels] == ["lstm", "mingru"]  # untested and windowed runs are not drawn
    lstm, mingru = panels
    assert list(lstm.curves) == ["positive"] and list(mingru.curves) == ["positive", "signed"]
    assert [c.seed for c in mingru.curves["signed"]] == [0, 1, 2]
    signed = mingru.curves["signed"][0]
    assert signed.lengths == LENGTHS  # in numeric order, the far length last
    assert (signed.train_lengths, signed.far_length) == ((3, 41), 1000)
    lengths, median = mingru.median("signed")
    assert lengths == LENGTHS and median == pytest.approx([0.9] * 8 + [0.2])
    assert mingru.median("positive")[1] == pytest.approx([0.05] * 9)


def test_median_is_over_the_lengths_every_seed_was_tested_at():
    short = result("mingru", 1, [0.4] * 9)
    del short["heldout"]["scaled"]["1000"]
    (panel,) = length_panels([result("mingru", 0, [0.2] * 9), short])
    assert panel.median("positive") == (LENGTHS[:-1], pytest.approx((0.3,) * 8))


def test_labelled_ticks_are_log_spaced_powers_of_two_and_the_far_length():
    assert log_spaced(LENGTHS) == [40, 64, 128, 256, 1000]
    assert log_spaced([20, 30]) == [20, 30]
    assert log_spaced([100, 128, 130]) == [100, 130]  # the largest displaces a label too close below it


def test_figure_is_written_only_when_a_run_was_tested(tmp_path):
    path = plot_length_generalization([result("mingru", 0, [0.0] * 9), result("mingru+signed", 0, [1.0] * 9),
                                       result("lstm", 0, [0.5] * 9), result("mamba+signed", 0, [0.7] * 9)],
                                      tmp_path / FIGURE)
    assert path == tmp_path / FIGURE and path.read_bytes().startswith(b"\x89PNG")
    assert plot_length_generalization([result("mingru", 0, [0.0] * 9, tested=False)], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_a_running_parity_run_folder_is_plotted_and_analyzed(tmp_path, device, capsys):
    """plot_run draws the run's length test; analyze runs the drive-based analyses on checkpoints/final (head 0)
    and refuses, in one line, those that score the heads of a window N."""
    config = TrainConfig(task=tasks.RUNNING_PARITY, core="mingru", core_options={"eigenvalues": "signed"},
                         hidden_size=8, batch_size=16, eval_every=10, eval_batches=1, max_steps=10,
                         test_lengths=(12, 50), far_length=None, device=str(device))
    run = tmp_path / "run"
    train(config, run)
    assert run / FIGURE in plot_run(run) and (run / FIGURE).stat().st_size > 0

    notes = []
    options = AnalysisOptions(trials=2, steps=400, burn_in=20, pca_steps=200, plots=False, device=str(device))
    out = analyze_run(run, tmp_path / "analysis", options, log=notes.append)
    assert set(out) == {"files", "timescales", "dimensionality", "transitions"}  # a signed minGRU has transitions
    assert "task running_parity: ablation, perturbation, forgetting left out" in notes[0]
    (row,) = out["timescales"]
    assert row["n"] == tasks.RUNNING_N and row["own_timescale_measure"] == "mean_decay"
    assert row["own_timescale_median"] > 0

    assert main(["analyze", str(run), "--analyses", "timescales,forgetting", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "forgetting score the heads of a window N, and a running-parity run has none" in err
    assert "['timescales', 'dimensionality', 'transitions']" in err


def test_analyze_refuses_a_running_parity_run_without_its_final_network(tmp_path):
    run = tmp_path / "interrupted"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": tasks.RUNNING_PARITY, "core": "mingru"}))
    with pytest.raises(AnalysisError, match="has no checkpoints/final: a running task.s run saves its network"):
        analyze_run(run, options=AnalysisOptions(analyses=("timescales",)))


@pytest.mark.parametrize("cores, label", [
    (["mingru", "mamba+signed"], "positive, eigenvalues in [0, 1]"),
    (["lstm"], "the core as built"),
    (["example_core:ElmanCore"], "the core as built"),
    (["lstm", "mingru"], "as built (eigenvalues in [0, 1] for mingru)"),
])
def test_the_legend_names_eigenvalues_only_for_kinds_that_have_the_option(cores, label, tmp_path, monkeypatch):
    """Issue 34, point 5: the LSTM or an own core has no eigenvalue option; its curve is not labelled with one."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    legends = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: legends.append(
        [t.get_text() for legend in fig.legends for t in legend.get_texts()]) or save(fig, *a, **k))
    plot_length_generalization([result(core, 0, [0.5] * 9) for core in cores], tmp_path / FIGURE)
    assert legends[0][0] == label
