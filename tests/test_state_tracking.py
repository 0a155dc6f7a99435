"""Running parity's protocol (issue 28, part 2): the trainer, its run folder and length test, the length
curriculum, the train command and the score card's running-parity column."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import agents
from baselines.benchmark import BenchmarkSpec, run_population, write_scorecard
from baselines.cli import main
from baselines.state_tracking import length_test
from baselines.trainer import RunningTaskTrainer, TrainConfig, Trainer, build_model, train
from memory_envs import make_batch, tasks
from memory_envs.curriculum import LengthCurriculum

sys.path.insert(0, str(Path(__file__).parent))  # example_core


def tiny(**overrides):
    base = dict(task="running_parity", core="mingru", hidden_size=8, batch_size=16, eval_every=10, eval_batches=1,
                max_steps=20, test_lengths=(12, 50), far_length=None, test_sequences=16, device="cpu")
    return TrainConfig(**{**base, **overrides})


def test_signed_mingru_extrapolates_where_its_positive_twin_stays_at_chance(tmp_path, device):
    """Grazzi et al.'s headline at a small size: trained on lengths 3-40, tested at 128 (one layer, width 32,
    150 steps, seed 0; about 10 s for both on one CPU thread)."""
    scaled = {}
    for eigenvalues in ("positive", "signed"):
        config = tiny(core_options={"eigenvalues": eigenvalues}, hidden_size=32, batch_size=64, eval_every=50,
                      eval_batches=2, max_steps=150, test_lengths=(128,), test_sequences=128, device=str(device))
        summary = train(config, tmp_path / eigenvalues)
        scaled[eigenvalues] = summary["length_test"]["scaled"]["128"]
    assert scaled["signed"] > 0.8 and scaled["positive"] < 0.3, scaled


def test_run_folder_length_test_and_resume(tmp_path, device):
    """A normal run folder (config with the protocol's fields, metrics with the lengths in force, last/),
    plus checkpoints/final, whose length test is the summary's; a resume equals the uninterrupted run."""
    config = tiny(modulus=3, far_length=30, device=str(device))
    summary = train(config, tmp_path / "whole")
    saved = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert saved["task"] == "running_parity" and saved["curriculum"] == "none" and saved["modulus"] == 3
    assert saved["test_lengths"] == [12, 50] and saved["length_range"] is None
    lines = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [10, 20] and all(line["lengths"] == [3, 41] for line in lines)
    assert all(set(line["accuracy"]) == {"0"} for line in lines)
    test = summary["length_test"]
    assert summary["max_n"] is None and summary["stopped_because"] == "max_steps"
    assert set(test["accuracy"]) == {"12", "50", "30"} and test["sequences_per_length"] == 16
    for length, accuracy in test["accuracy"].items():
        assert test["scaled"][length] == pytest.approx((accuracy - 1 / 3) / (2 / 3))
    assert test["scaled_mean"] == pytest.approx((test["scaled"]["12"] + test["scaled"]["50"]) / 2)
    assert test["scaled_far"] == test["scaled"]["30"]
    model = agents.load(tmp_path / "whole" / "checkpoints" / "final", map_location=device)
    assert model.classes == 3 and model.ns == [0]
    assert length_test(model, config, device, config.seed) == test  # the folder's network, scored again

    first = train(tiny(modulus=3, far_length=30, max_steps=10, device=str(device)), tmp_path / "resumed")
    assert first["steps"] == 10
    resumed = train(config, tmp_path / "resumed", resume=True)
    assert resumed["length_test"] == test if device.type == "cpu" else resumed["steps"] == 20


def test_the_trainer_takes_every_step_labels_and_scores_the_last_step(tmp_path):
    trainer = RunningTaskTrainer(tiny(length_range=(5, 7)), tmp_path / "run")
    inputs, labels = trainer.batch(np.random.default_rng(0))
    bits = inputs[:, :, 0].numpy().astype(np.int64)
    assert inputs.shape[0] in (5, 6) and torch.equal(labels, torch.from_numpy(np.cumsum(bits, axis=0) % 2))
    logits = trainer._logits(inputs)
    assert logits[0].shape == (inputs.shape[0], 16, 2)
    assert trainer.correct(logits, labels).item() == (logits[0][-1].argmax(-1) == labels[-1]).sum().item()
    trainer.close()


def test_length_curriculum_doubles_the_longest_length_and_round_trips():
    curriculum = LengthCurriculum("length", (3, 41), threshold=0.9)
    assert curriculum.lengths == (3, 7) and curriculum.ns == [0]
    assert not curriculum.update({0: 0.9})  # not above the threshold
    longest = []
    while curriculum.update({0: 0.95}):
        longest.append(curriculum.lengths[1] - 1)
    assert longest == [12, 24, 40] and curriculum.solved == 40  # the last pass, at 40, changes nothing
    assert not curriculum.update({0: 1.0}) and curriculum.lengths == (3, 41) and not curriculum.finished
    again = LengthCurriculum.from_state_dict(json.loads(json.dumps(curriculum.state_dict())))
    assert again.state_dict() == curriculum.state_dict()
    fixed = LengthCurriculum("none", (3, 41))
    assert not fixed.update({0: 1.0}) and fixed.lengths == (3, 41) and fixed.solved is None


def test_a_run_with_the_length_curriculum_trains_on_short_lengths_first(tmp_path):
    train(tiny(curriculum="length", threshold=0.5, max_steps=30), tmp_path / "run")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["lengths"] == [3, 7]  # the lengths each evaluation scored
    assert lines[-1]["lengths"] != [3, 7]  # threshold 0.5: passed at least once
    assert [line["lengths"][1] for line in lines] == sorted(line["lengths"][1] for line in lines)


def test_modulus_three_builds_three_way_readouts(device):
    model = build_model(tiny(modulus=3), [0], torch.Generator().manual_seed(0)).to(device)
    batch = make_batch("running_parity", None, 4, seed=0, modulus=3)
    logits = model(torch.from_numpy(batch.inputs).to(device), ns=[0])
    assert logits[0].shape == (4, 3) and model.to_config()["classes"] == 3
    assert "classes" not in build_model(TrainConfig(hidden_size=8), [2], None).to_config()  # unchanged for N


@pytest.mark.parametrize("overrides, words", [
    (dict(curriculum="multi"), r"curriculum must be one of \('none', 'length'\) for task 'running_parity'"),
    (dict(start_n=3), "start_n belong to the curriculum over N; task 'running_parity' has no N"),
    (dict(target_n=9, window=3), "target_n, window belong to the curriculum over N"),
    (dict(modulus=1), "modulus must be an integer >= 2"),
    (dict(length_range=(0, 4)), r"length_range \(0, 4\) cannot hold a bit"),
    (dict(test_lengths=()), "test_lengths must be a non-empty list"),
    (dict(test_lengths=(40, 40)), "test_lengths must not contain duplicates"),
    (dict(far_length=0), "far_length must be a positive integer"),
    (dict(test_sequences=0), "test_sequences must be a positive integer"),
    (dict(task="parity", modulus=3), "modulus only apply to the running tasks"),
    (dict(task="dms", far_length=None, length_range=(3, 9)), "length_range, far_length only apply to the running tasks"),
])
def test_bad_configs_are_refused_before_anything_is_written(tmp_path, overrides, words):
    config = TrainConfig(**overrides, device="cpu") if "task" in overrides else tiny(**overrides)
    with pytest.raises(ValueError, match=words):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_windowed_trainer_refuses_running_parity_and_windowed_configs_are_unchanged(tmp_path):
    with pytest.raises(ValueError, match="trains with baselines.trainer.RunningTaskTrainer"):
        Trainer(tiny(), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    data = TrainConfig(task="dms").to_json()
    assert data["curriculum"] == "multi" and not {"modulus", "length_range", "test_lengths", "far_length"} & set(data)
    assert TrainConfig.from_json(tiny().to_json()) == tiny()


def test_train_command(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "running_parity", "--core", "mingru", "--hidden-size", "8", "--batch-size", "16",
                 "--max-steps", "10", "--eval-every", "10", "--eval-batches", "1", "--test-lengths", "20,30",
                 "--far-length", "0", "--modulus", "3", "--length-range", "2", "9", "--device", "cpu", "--quiet",
                 "--no-plots", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "scaled accuracy at the last labelled step (0 chance, 1 perfect; trained on lengths 2-8): 20: " in out
    config = json.loads((run / "config.json").read_text())
    assert (config["modulus"], config["length_range"], config["test_lengths"], config["far_length"]) == (3, [2, 9],
                                                                                                         [20, 30], None)


@pytest.mark.parametrize("argv, words", [
    (["--seeds", "0,1"], "--task running_parity trains one network at a time"),
    (["--curriculum", "multi"], "curriculum must be one of ('none', 'length')"),
    (["--start-n", "4"], "--start-n belong to the curriculum over N"),
    (["--modulus", "1"], "--modulus must be an integer >= 2"),
])
def test_train_command_refuses_bad_options_before_writing(tmp_path, capsys, argv, words):
    run = tmp_path / "run"
    assert main(["train", "--task", "running_parity", "--device", "cpu", "--quiet", "--run-dir", str(run), *argv]) == 2
    assert words in capsys.readouterr().err
    assert not run.exists()


WINDOWED = {"core": "gru", "task": "parity", "curriculum": "multi", "seed": 0, "max_n": 3, "steps": 10,
            "steps_to_n": {"2": 5, "3": 10}, "heldout": {"3": 0.9}, "timescales": {}, "run_dir": "gru-parity"}
"""A parity run's score-card result (baselines.benchmark.collect), beside running parity's."""


def test_benchmark_running_parity_column(tmp_path):
    """KIND+signed and an external core in the card's running-parity rows, the card's numbers the runs' own
    (the populations' unit of work run in this process; test_benchmark runs the card end to end)."""
    spec = BenchmarkSpec(cores=("mingru+signed", "example_core:ElmanCore"), tasks=("running_parity",),
                         curricula=("single", "multi"), seeds=(0,), max_steps=10, hidden_size=8, eval_every=10,
                         eval_batches=1).validate()
    runs = spec.runs()
    assert runs == [("mingru+signed", "running_parity", "none", 0, 1, None),  # seed, 1 layer, no lr sweep
                    ("example_core:ElmanCore", "running_parity", "none", 0, 1, None)]
    out = tmp_path / "bench"
    results = [result for run in runs for result in run_population(str(out / "runs"), spec, [run])]
    write_scorecard(results, out)
    rows = list(csv.DictReader((out / "scorecard.csv").open()))
    assert [row["core"] for row in rows] == ["example_core:ElmanCore", "mingru+signed"]
    for row in rows:
        run = out / "runs" / f"{row['core'].replace(':', '.')}-running_parity-none-s0"
        test = json.loads((run / "summary.json").read_text())["length_test"]
        assert json.loads((run / "heldout.json").read_text()) == test  # what marks the run finished
        assert row["scaled_accuracy_mean"] == f"{test['scaled_mean']:.2f}"
        assert row["scaled_accuracy_far"] == f"{test['scaled_far']:.2f}"
        assert row["max_n_median"] == "-" and test["far_length"] == tasks.RUNNING_FAR_LENGTH
        assert test["sequences_per_length"] == tasks.RUNNING_TEST_SEQUENCES and list(test["accuracy"])[:-1] == [str(n) for n in
                                                                                      tasks.RUNNING_TEST_LENGTHS]
    card = (out / "scorecard.md").read_text()
    # only what applies to running parity (issue 34, point 5): no N, held-out or timescale columns of "-",
    # no notes about held-out accuracy at N
    assert card.startswith("| core | task | running tasks: scaled accuracy at lengths 40-256, median [min, max] | "
                           "at length 1000 | theory |\n|---|---|---|---|---|\n")
    assert "largest N" not in card and "Held-out" not in card and "| - |" not in card
    assert "- Running tasks: scaled accuracy = (accuracy - chance) / (1 - chance)" in card
    assert (out / "length_generalization.png").stat().st_size > 0  # baselines.plots.plot_length_generalization
    assert not (out / "n_over_steps.png").exists()  # no N to reach
    write_scorecard(results + [WINDOWED], out)  # a card with both keeps both
    card = (out / "scorecard.md").read_text()
    assert "| largest N: median [min, max] |" in card and "| at length 1000 |" in card
    assert "- Held-out accuracy" in card and "- Running tasks" in card


def test_benchmark_refuses_an_unknown_task_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # the argument type's refusal (argparse): one line, exit code 2
        main(["benchmark", "--tasks", "running-parity", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "argument --tasks: task must be one of parity, dms, 'running_parity' or 'running_mod' + K" in err
    assert not (tmp_path / "b").exists()


def test_length_test_scores_test_sequences_with_a_partial_last_batch(device):
    """20 sequences at batch 16: a batch of 16 and one of 4, the accuracy a multiple of 1/20; the oracle-free
    check that every sequence counts once."""
    config = tiny(test_sequences=20, test_lengths=(7,), device=str(device))
    model = build_model(config, [tasks.RUNNING_N], torch.Generator().manual_seed(0)).to(device)
    test = length_test(model, config, device, seed=0)
    assert test["sequences_per_length"] == 20
    assert test["accuracy"]["7"] * 20 == pytest.approx(round(test["accuracy"]["7"] * 20))
    assert test == length_test(model, config, device, seed=0)  # seeded
