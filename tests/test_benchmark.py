"""The memory-architecture benchmark: external cores, resume, and a score card that matches the runs."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import agents
from baselines.benchmark import BenchmarkSpec, run_benchmark
from baselines.cli import main
from baselines.predictions import CARD_TASKS
from baselines.trainer import TrainConfig, train

sys.path.insert(0, str(Path(__file__).parent))  # example_core, for this process and spawned workers

TINY = dict(tasks=("dms",), curricula=("single", "multi"), seeds=(0,), max_steps=80, max_seconds=120.0,
            hidden_size=16, eval_every=20, eval_batches=2, test_length=40, test_batch=8, workers=2)


def test_external_core_checkpoints_and_trains(tmp_path):
    core = agents.make_core("example_core:ElmanCore", 1, 8, generator=torch.Generator().manual_seed(0))
    model = agents.MultiHeadModel(core, [2, 3])
    agents.save(model, tmp_path / "ckpt")
    with pytest.raises(ValueError, match="core_class="):  # a file never makes agents.load import a module
        agents.load(tmp_path / "ckpt")
    again = agents.load(tmp_path / "ckpt", core_class=type(core))
    x = torch.rand(6, 3, 1)
    assert torch.equal(again(x)[3], model(x)[3])
    summary = train(TrainConfig(core="example_core:ElmanCore", hidden_size=16, batch_size=32, eval_every=20,
                                eval_batches=2, max_steps=40, device="cpu"), tmp_path / "run")
    line = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert summary["steps"] == 40 and line["tau_mean"] is None  # no tau: logged as null


def test_benchmark_end_to_end_resume_and_scorecard(tmp_path):
    out = tmp_path / "bench"
    spec = BenchmarkSpec(cores=("leaky", "example_core:ElmanCore"), **TINY)
    logs = []
    results = run_benchmark(spec, out, log=logs.append)
    assert len(results) == 4 and "4 to run" in logs[0]
    rows = list(csv.DictReader((out / "scorecard.csv").open()))
    assert len(rows) == 4
    for row in rows:  # the score card's numbers are the runs' own
        name = f"{row['core'].replace(':', '.')}-{row['task']}-{row['curriculum']}-s0"
        summary = json.loads((out / "runs" / name / "summary.json").read_text())
        assert float(row["max_n_median"]) == (summary["max_n"] or 0)
        assert summary["steps"] == 80
        heldout = json.loads((out / "runs" / name / "heldout.json").read_text())
        assert set(heldout) == set(summary["steps_to_n"])
        assert all(0.0 <= a <= 1.0 for a in heldout.values())
        timescales = json.loads((out / "runs" / name / "timescales.json").read_text())
        if timescales["n"] is not None:  # tau_net comes with the neurons it rests on
            assert timescales["n"] == summary["max_n"]
            assert 0 <= timescales["tau_net_neurons"] <= 16 and row["tau_net_neurons_at_max_n"] == str(
                timescales["tau_net_neurons"])
    assert "example_core:ElmanCore" in (out / "scorecard.md").read_text()
    assert (out / "n_over_steps.png").exists()

    # An interrupted benchmark: one run lost its results; re-running redoes that run only.
    victim = out / "runs" / "leaky-dms-multi-s0"
    (victim / "heldout.json").unlink()
    finished = out / "runs" / "leaky-dms-single-s0" / "summary.json"
    stamp = finished.stat().st_mtime_ns
    logs = []
    run_benchmark(spec, out, log=logs.append)
    assert "3 finished earlier, 1 to run" in logs[0]
    assert finished.stat().st_mtime_ns == stamp
    assert (victim / "heldout.json").exists()


def test_heldout_accuracy_on_the_device(tmp_path, device):
    """The held-out test runs on spec.device and scores what the CPU model scores on the same streams
    (data and initial states drawn on the CPU, then moved)."""
    from baselines.benchmark import heldout_accuracy
    from baselines.trainer import build_model
    from memory_envs import make_batch

    config = TrainConfig(task="dms", hidden_size=16, device="cpu")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config.to_json()))
    (run / "summary.json").write_text(json.dumps({"steps_to_n": {"2": 20, "3": 40}}))
    models = {n: build_model(config, list(range(2, n + 1)), torch.Generator().manual_seed(n)) for n in (2, 3)}
    for n, model in models.items():
        agents.save(model, run / "checkpoints" / f"n{n:03d}")
    spec = BenchmarkSpec(test_length=40, test_batch=8, device=str(device))
    got = heldout_accuracy(run, spec, seed=4)
    rng, generator = np.random.default_rng([4, 2]), torch.Generator().manual_seed(4)
    for n, model in models.items():  # the reference, on the CPU
        batch = make_batch("dms", [n], 8, rng=rng, p=0.5, length=40, streaming=True)
        x = torch.from_numpy(batch.inputs)
        logits = model(x, ns=[n], every_step=True, state=model.core.initial_state(8, generator=generator))
        mask = batch.streaming_mask[:, 0]
        want = float((logits[n].argmax(-1).numpy()[mask] == batch.streaming_labels[mask, :, 0]).mean())
        assert got[str(n)] == (want if device.type == "cpu" else pytest.approx(want, abs=0.02))


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--cores", "nosuchmodule:Core"], "cannot import module 'nosuchmodule'"),
        (["--cores", "example_core:NotACore"], "does not fit the core protocol"),
        (["--cores", "example_core:Missing"], "has no attribute 'Missing'"),
        (["--tasks", "copy"], "task must be one of"),
        (["--curricula", "spiral"], "curriculum must be one of"),
        (["--max-steps", "0"], "--max-steps must be a positive integer"),
        (["--seeds", ""], "argument --seeds: expected one or more comma-separated values, got ''"),
        (["--seeds", "0,0"], "--seeds must not repeat, got [0, 0]"),
        (["--optimizer", "rmsprop"], "optimizer must be one of"),
        (["--device", "tpu"], "device must be"),
        (["--layers", "0"], "--layers must be a positive integer, got 0"),
        (["--layers", "2,2", "--cores", "mamba"], "--layers must not repeat, got [2, 2]"),
        (["--layers", "2", "--cores", "mamba,gru"],
         "--layers must hold 1 for the cores without a layers option ['gru']"),
        (["--lrs", "1e-3,3e-3"], "--lrs needs optimizer 'adam' or 'sgd'"),
        (["--lrs", "1e-3,0.001", "--optimizer", "adam"], "--lrs must not repeat, got [0.001, 0.001]"),
        (["--lrs", "0", "--optimizer", "adam"], "--lrs must be > 0 and finite, got 0.0"),
        (["--lrs", "inf", "--optimizer", "adam"], "argument --lrs: expected comma-separated finite numbers"),
        (["--sweep-seeds", "0"], "--sweep-seeds needs lrs"),
        (["--sweep-seeds", "3", "--lrs", "1e-3", "--optimizer", "adam"],
         "--sweep-seeds must be among the seeds [0, 1, 2]"),
        (["--rl", "--lrs", "1e-3"], "--lrs: only without --rl"),
        (["--test-sequences", "0"], "argument --test-sequences: expected a positive integer, got '0'"),
        (["--max-steps", "1000000000", "--max-seconds", "1000000"],
         "the card (36 runs of --max-steps=1000000000, --max-seconds=1000000.0) asks for at least 58.5 days"),
    ],
)
def test_benchmark_bad_input_exits_before_training(tmp_path, capsys, argv, words):
    out = tmp_path / "bench"
    try:
        code = main(["benchmark", "--out", str(out), *argv])
    except SystemExit as stop:  # an argument type's refusal (argparse), one line as the others
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (out / "runs").exists()  # nothing trained


def test_optimizer_per_core():
    spec = BenchmarkSpec()
    assert spec.config("leaky", "parity", "multi", 0).optimizer_settings() == ("sgd", 0.05)
    assert spec.config("gru", "dms", "single", 0).optimizer_settings() == ("adam", 1e-3)
    assert spec.config("deltanet", "dms", "single", 0).optimizer_settings() == ("adam", 1e-2)
    assert BenchmarkSpec(optimizer="sgd").config("lstm", "dms", "multi", 0).optimizer_settings() == ("sgd", 0.05)
    signed = spec.config("lru+signed", "parity", "single", 0)
    assert signed.core == "lru" and signed.core_options == {"eigenvalues": "signed"}
    with pytest.raises(ValueError, match="'\\+signed' applies to the kinds with an eigenvalues option"):
        spec.config("gru+signed", "parity", "single", 0)


def test_benchmark_refuses_a_folder_with_another_budget(tmp_path):
    out = tmp_path / "bench"
    (out).mkdir()
    (out / "benchmark.json").write_text(json.dumps({**BenchmarkSpec().__dict__, "max_steps": 5}))
    with pytest.raises(ValueError, match="another budget"):
        run_benchmark(BenchmarkSpec(cores=("leaky",), **TINY), out)
    # the held-out test's size is part of the budget; a card written before the option holds the default
    written_before = {k: v for k, v in BenchmarkSpec(cores=("leaky",), **TINY).__dict__.items() if k != "test_sequences"}
    (out / "benchmark.json").write_text(json.dumps(written_before))
    with pytest.raises(ValueError, match=r"another budget \(\['test_sequences'\]\)"):
        run_benchmark(BenchmarkSpec(cores=("leaky",), test_sequences=512, **TINY), out)


def test_test_sequences_size_the_running_tasks_test_only():
    spec = BenchmarkSpec(tasks=("running_parity", "parity"), test_sequences=512)
    assert spec.config("gru", "running_parity", "none", 0).test_sequences == 512
    assert spec.config("gru", "parity", "single", 0).to_json() == BenchmarkSpec().config("gru", "parity", "single", 0).to_json()
    with pytest.raises(ValueError, match="test_sequences must be a positive integer"):
        BenchmarkSpec(test_sequences=0).validate()


def test_runs_are_grouped_by_core_into_populations():
    from baselines.benchmark import populations

    spec = BenchmarkSpec(cores=("leaky", "gru"), tasks=("parity",), curricula=("single", "multi"), seeds=(0, 1))
    groups = populations(spec, spec.runs())
    assert [len(g) for g in groups] == [4, 4] and all(len({run[0] for run in g}) == 1 for g in groups)
    groups = populations(BenchmarkSpec(**{**spec.__dict__, "population_size": 3}), spec.runs())
    assert [len(g) for g in groups] == [3, 1, 3, 1] and sorted(r for g in groups for r in g) == sorted(spec.runs())
    with pytest.raises(ValueError, match="population_size"):
        BenchmarkSpec(population_size=0).validate()


LEADERBOARD = Path(__file__).resolve().parents[1] / "docs" / "leaderboard.md"


def leaderboard_commands() -> list[list[str]]:
    """The `memory-envs benchmark` commands of docs/leaderboard.md's bash blocks, as argv lists."""
    import re
    import shlex

    blocks = re.findall(r"```bash\n(.*?)```", LEADERBOARD.read_text(), flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line.split("#")[0])[1:] for line in lines if line.startswith("memory-envs benchmark")]


NOT_ON_THE_V2_CARD = {"deltaproduct", "gated_deltanet", "slstm", "mlstm"}
"""Kinds added after leaderboard v2 was measured (issue 35): its documented commands predate them."""


def test_leaderboard_commands_run_the_documented_protocol(tmp_path, monkeypatch):
    """The commands that wrote docs/leaderboard.md still parse, validate and cover what its tables claim:
    version 3's state-tracking card and its 2-layer rows under one protocol; version 2's cards every kind and every ``+signed`` kind, on running parity and on parity and DMS with both
    curricula, 3 seeds; version 1's every kind (main table) and every +signed kind (second table); one budget."""
    import baselines.benchmark

    specs = []

    def record(spec, out, **kwargs):
        specs.append(spec)
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "scorecard.md").write_text("")
        return []

    monkeypatch.setattr(baselines.benchmark, "run_benchmark", record)
    commands = leaderboard_commands()
    assert len(commands) == 6, commands
    for argv in commands:
        out = argv.index("--out") + 1
        argv[out] = str(tmp_path / argv[out])
        assert main(argv) == 0
    v3, v3_depth, state, reach, main_card, signed = specs
    # version 3: the state-tracking tasks with their predictions, one optimizer family and an lr sweep for every kind
    assert v3.tasks == CARD_TASKS and set(v3_depth.tasks) < set(CARD_TASKS) and len(v3.seeds) >= 3
    every_kind = set(agents.cores.KINDS) | {f"{kind}+signed" for kind in agents.cores.EIGENVALUE_KINDS}
    assert set(v3.cores) == every_kind  # version 3 is at 1 layer for every kind
    assert {"deltanet+signed", "mamba+signed"} <= set(v3_depth.cores)  # theory: "yes" and "no" at 2 layers
    assert v3.layers == (1,) and v3_depth.layers == (2,) and set(v3_depth.cores) <= set(v3.cores)
    protocol = ("optimizer", "lrs", "sweep_seeds", "seeds", "max_steps", "hidden_size")
    assert v3.optimizer == "adam" and len(v3.lrs) >= 2
    assert [getattr(v3, k) for k in protocol] == [getattr(v3_depth, k) for k in protocol]
    v2_kinds = set(agents.cores.KINDS) - NOT_ON_THE_V2_CARD
    every_signed = {f"{kind}+signed" for kind in agents.cores.EIGENVALUE_KINDS if kind in v2_kinds}
    assert set(state.cores) == set(reach.cores) == v2_kinds | every_signed
    assert state.tasks == ("running_parity",) and len(state.seeds) >= 3
    assert set(reach.tasks) == {"parity", "dms"} and set(reach.curricula) == {"single", "multi"}
    assert len(reach.seeds) >= 3
    assert set(main_card.cores) == v2_kinds
    assert set(main_card.tasks) == {"parity", "dms"} and set(main_card.curricula) == {"single", "multi"}
    assert set(signed.cores) == every_signed
    assert signed.tasks == ("parity",)
    budget = ("max_steps", "max_seconds", "hidden_size", "eval_every", "eval_batches", "optimizer")
    assert [getattr(signed, k) for k in budget] == [getattr(main_card, k) for k in budget]
    assert [getattr(state, k) for k in budget] == [getattr(main_card, k) for k in budget]
    assert [getattr(reach, k) for k in budget] == [getattr(main_card, k) for k in budget]


def test_timescales_at_max_n_name_the_neurons_behind_tau_net(tmp_path, device):
    """The score card's tau_net comes with how many neurons it is the median of and the share of fits that
    failed or hit a bound, as network_timescales reports them for the largest solved N's checkpoint."""
    from baselines.analysis import network_timescales
    from baselines.benchmark import scorecard_rows, tau_net_cell, timescales_at_max_n

    g = torch.Generator().manual_seed(3)
    model = agents.MultiHeadModel(agents.make_core("leaky", 1, 12, tau_init=(1.0, 8.0), generator=g), heads=[2, 3],
                                  generator=g)
    run_dir = tmp_path / "run"
    for n in (2, 3):
        agents.save(model, run_dir / "checkpoints" / f"n{n:03d}")
    (run_dir / "summary.json").write_text(json.dumps({"steps_to_n": {"2": 10, "3": 20}}))
    (run_dir / "config.json").write_text(json.dumps({"core": "leaky"}))
    spec = BenchmarkSpec(timescale_steps=600, device=str(device))
    got = timescales_at_max_n(run_dir, spec, seed=0)
    want = network_timescales(agents.load(run_dir / "checkpoints" / "n003"), trials=4, steps=600, burn_in=200, seed=0)
    assert got["n"] == 3 and got["tau_net_neurons"] == want["neurons_tau_net_gt1"] > 0
    assert got["tau_net_share_failed_or_bound"] == pytest.approx(want["share_failed_or_bound"])
    assert got["tau_net_median"] == pytest.approx(want["tau_net_median"])

    results = [{"core": "leaky", "task": "dms", "curriculum": "multi", "seed": seed, "max_n": 3, "steps": 20,
                "steps_to_n": {"3": 20}, "heldout": {"3": 0.9},
                "timescales": {**got, "tau_net_median": tau, "tau_net_neurons": neurons,
                               "tau_net_share_failed_or_bound": share}}
               for seed, tau, neurons, share in ((0, 2.0, 4, 0.0), (1, 4.0, 6, 0.5))]
    (row,) = scorecard_rows(results)
    assert (row["tau_net_at_max_n"], row["tau_net_neurons_at_max_n"]) == ("3.00", "5")
    assert tau_net_cell(row) == "3.00 (5; 25%)"


def test_run_names_and_configs_keep_layers_and_lr_apart():
    """1 layer and no sweep keep the names and config.json of a card without them (their folders resume); a
    depth and an lr each get their own folder and config."""
    from baselines.benchmark import Run, run_name

    assert run_name("mamba+signed", "running_parity", "none", 2) == "mamba+signed-running_parity-none-s2"
    assert run_name(*Run("mamba", "dms", "multi", 0, layers=2)) == "mamba-dms-multi-L2-s0"
    assert run_name(*Run("mamba", "dms", "multi", 0, 2, 3e-3)) == "mamba-dms-multi-L2-s0-lr0.003"
    assert (run_name(*Run("example_core:ElmanCore", "dms", "multi", 1, 1, 1e-05))
            == "example_core.ElmanCore-dms-multi-s1-lr1e-05")
    spec = BenchmarkSpec(cores=("gru", "mamba+signed"), tasks=("running_parity", "dms"), layers=(1, 2),
                         lrs=(1e-3, 3e-3), optimizer="adam", seeds=(0, 1, 2), sweep_seeds=(0,)).validate()
    runs = spec.runs()
    assert len({run_name(*run) for run in runs}) == len(runs) == 2 * (1 + 2 + 2 * 3)  # gru: 1 layer only
    assert {run.seed for run in runs} == {0} and spec.run_count() == len(runs) + 2 * 9
    assert spec.config("mamba+signed", "dms", "single", 0).to_json() == BenchmarkSpec(optimizer="adam").config(
        "mamba+signed", "dms", "single", 0).to_json()  # no "layers", lr None: the folder of a card without them
    deep = spec.config("mamba+signed", "dms", "single", 0, layers=2, lr=3e-3)
    assert deep.core_options == {"eigenvalues": "signed", "layers": 2}
    assert deep.optimizer_settings() == ("adam", 3e-3)
    assert spec.config("leaky", "dms", "single", 0, lr=3e-3).optimizer_settings() == ("adam", 3e-3)  # one family


def sweep_result(core, lr, seed, validation, test, layers=1, task="running_parity"):
    """A result as benchmark.collect gives it, with its validation score and a test score that may disagree."""
    return {"core": core, "task": task, "curriculum": "none", "layers": layers, "seed": seed, "lr": lr,
            "validation": validation, "heldout": {"scaled_mean": test}}


def test_choose_lrs_by_validation_ties_to_the_smaller_lr_never_by_test():
    from baselines.benchmark import at_chosen_lrs, choose_lrs

    results = [  # mamba: 3e-3 validates better (median 0.9 against 0.6) though 1e-3 tests better
        sweep_result("mamba", 1e-3, 0, 0.6, 1.0), sweep_result("mamba", 1e-3, 1, 0.5, 1.0),
        sweep_result("mamba", 1e-3, 2, 0.99, 1.0),
        sweep_result("mamba", 3e-3, 0, 0.9, 0.0), sweep_result("mamba", 3e-3, 1, 0.95, 0.0),
        sweep_result("mamba", 3e-3, 2, 0.2, 0.0),
        # 2 layers: a tie of the medians goes to the smaller lr, whatever the test says
        *(sweep_result("mamba", lr, seed, 1.0, test, layers=2) for lr, test in ((1e-3, 0.1), (3e-3, 0.9))
          for seed in (0, 1, 2)),
        # gru: 3e-3 has not finished seed 2, so the row has no choice yet
        *(sweep_result("gru", 1e-3, seed, 0.5, 0.5) for seed in (0, 1, 2)),
        sweep_result("gru", 3e-3, 0, 1.0, 1.0), sweep_result("gru", 3e-3, 1, 1.0, 1.0),
    ]
    choices = choose_lrs(results, (3e-3, 1e-3), (0, 1, 2))
    assert set(choices) == {("mamba", "running_parity", "none", 1), ("mamba", "running_parity", "none", 2)}
    assert choices[("mamba", "running_parity", "none", 1)].lr == 3e-3
    assert choices[("mamba", "running_parity", "none", 1)].medians == {1e-3: 0.6, 3e-3: 0.9}
    assert choices[("mamba", "running_parity", "none", 2)].lr == 1e-3
    # the sweep seeds only: on seed 0 alone 3e-3 wins the 1-layer row too, on seed 2 alone 1e-3 does
    assert choose_lrs(results, (1e-3, 3e-3), (2,))[("mamba", "running_parity", "none", 1)].lr == 1e-3
    # only the validation is read: results without any test number choose the same
    blind = [{k: v for k, v in r.items() if k != "heldout"} for r in results]
    assert choose_lrs(blind, (1e-3, 3e-3), (0, 1, 2)) == choices
    card = at_chosen_lrs(results + [sweep_result("lstm", None, 0, 0.5, 0.5)], choices)
    assert sorted((r["core"], r["layers"], r["lr"]) for r in card) == [
        ("lstm", 1, None), *[("mamba", 1, 3e-3)] * 3, *[("mamba", 2, 1e-3)] * 3]  # gru: not yet on the card


def test_card_with_depths_and_an_lr_sweep_resumes_after_the_first_phase(tmp_path, monkeypatch, device):
    """A tiny real card, --layers 1,2 and two lrs swept on seed 0, seed 1 at the chosen lr: killed between its two
    phases, the same card resumes the second; the card keeps the depths apart and states the chosen lrs."""
    import baselines.benchmark
    from baselines.benchmark import choose_lrs, run_name

    spec = BenchmarkSpec(cores=("mingru",), tasks=("running_parity",), seeds=(0, 1), sweep_seeds=(0,),
                         layers=(1, 2), lrs=(1e-3, 3e-2), optimizer="adam", max_steps=6, eval_every=3,
                         eval_batches=1, hidden_size=8, workers=2, device=str(device))
    out = tmp_path / "bench"
    real, calls = baselines.benchmark.run_units, []

    def killed_in_the_second_phase(units, *args, **kwargs):
        calls.append([unit.folders for unit in units])
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill between the phases
        return real(units, *args, **kwargs)

    monkeypatch.setattr(baselines.benchmark, "run_units", killed_in_the_second_phase)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(spec, out)
    assert sum(len(unit) for unit in calls[0]) == 4 and sum(len(unit) for unit in calls[1]) == 2
    assert len(list((out / "runs").iterdir())) == 4 and not (out / "scorecard.csv").exists()
    monkeypatch.setattr(baselines.benchmark, "run_units", real)
    logs = []
    results = run_benchmark(spec, out, log=logs.append)
    assert "4 runs of the lr sweep: 4 finished earlier, 0 to run" in logs[0]
    assert "2 runs of the other seeds at the chosen lrs: 0 finished earlier, 2 to run" in logs[1]
    choices = choose_lrs(results, spec.lrs, (0,))
    assert len(choices) == 2 and len(results) == 6
    for (core, task, curriculum, layers), choice in choices.items():  # seed 1 trained at the chosen lr only
        other = 3e-2 if choice.lr == 1e-3 else 1e-3
        assert (out / "runs" / run_name(core, task, curriculum, 1, layers, choice.lr) / "heldout.json").exists()
        assert not (out / "runs" / run_name(core, task, curriculum, 1, layers, other)).exists()
        swept = [r for r in results if r["core"] == core and r["layers"] == layers and r["seed"] == 0]
        for r in swept:  # the validation score: the last evaluation at the training lengths, not the test
            last = json.loads((Path(r["run_dir"]) / "metrics.jsonl").read_text().splitlines()[-1])
            assert r["validation"] == last["accuracy"]["0"] and last["step"] == 6
        assert choice.medians == {r["lr"]: r["validation"] for r in swept}
    rows = list(csv.DictReader((out / "scorecard.csv").open()))
    assert sorted((row["core"], row["layers"]) for row in rows) == [("mingru", "1"), ("mingru", "2")]
    for row in rows:
        choice = choices[(row["core"], "running_parity", "none", int(row["layers"]))]
        assert row["lr"] == f"{choice.lr:g}" and row["seeds"] == "2"
        tested = [json.loads((out / "runs" / run_name(row["core"], "running_parity", "none", seed, int(row["layers"]),
                                                      choice.lr) / "heldout.json").read_text())["scaled_mean"]
                  for seed in (0, 1)]
        assert row["scaled_accuracy_mean"] == f"{np.median(tested):.2f}"  # the runs at the chosen lr, both seeds
    card = (out / "scorecard.md").read_text()
    assert card.startswith("| core | task | layers | lr (validation median per lr) | running tasks: scaled accuracy")
    assert "| mingru | running_parity | 2 | " in card and "ties to the smaller lr" in card
    assert (out / "length_generalization.png").stat().st_size > 0


def test_cores_without_a_layers_option_train_at_one_layer(tmp_path, monkeypatch):
    """--layers 1,2: the zoo's kinds at both depths, the GRU at 1 layer only, and the card says so."""
    import baselines.benchmark

    spec = BenchmarkSpec(cores=("gru", "lru+signed"), tasks=("dms",), curricula=("single",), seeds=(0,), layers=(1, 2))
    assert [(run.core, run.layers) for run in spec.runs()] == [("gru", 1), ("lru+signed", 1), ("lru+signed", 2)]
    monkeypatch.setattr(baselines.benchmark, "run_units", lambda units, *args, **kwargs: ([], []))
    logs = []
    run_benchmark(spec, tmp_path / "bench", log=logs.append)
    assert logs[0] == "gru: no layers option, trained at 1 layer only"


def test_length_figure_keeps_depths_apart():
    """The length-generalization figure: one panel per kind and depth, KIND+signed beside KIND at the same depth."""
    from baselines.state_tracking import length_panels

    test = {"scaled": {"40": 1.0, "1000": 0.5}, "train_lengths": [3, 41], "far_length": 1000}
    results = [{"core": core, "task": "running_parity", "seed": 0, "layers": layers, "heldout": test}
               for core, layers in (("mamba", 1), ("mamba", 2), ("mamba+signed", 2))]
    panels = length_panels(results)
    assert [(panel.title, panel.kind, sorted(panel.curves)) for panel in panels] == [
        ("mamba", "mamba", ["positive"]), ("mamba, 2 layers", "mamba", ["positive", "signed"])]


def test_a_run_that_went_non_finite_is_collected_untested_and_never_chosen(tmp_path):
    """A running task's run that stopped non-finite has no length test (heldout.json holds null) and scores 0 in
    the lr sweep, whatever its last evaluation said before it diverged (found on mLSTM at lr 1e-2)."""
    from baselines.benchmark import choose_lrs, collect

    folders = {}
    for lr, stop, accuracy in ((3e-3, "max_steps", 0.7), (1e-2, "non_finite", 0.9)):
        run = tmp_path / f"mlstm-lr{lr:g}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"core": "mlstm", "core_options": {}, "task": "running_parity",
                                                     "curriculum": "none", "seed": 0, "lr": lr}))
        (run / "summary.json").write_text(json.dumps({"stopped_because": stop, "max_n": None, "steps": 199,
                                                      "steps_to_n": {}}))
        tested = {"scaled_mean": 0.4, "scaled_far": 0.1}
        (run / "heldout.json").write_text(json.dumps(None if stop == "non_finite" else tested))
        (run / "metrics.jsonl").write_text(json.dumps({"step": 100, "accuracy": {"0": accuracy}}) + "\n")
        folders[lr] = collect(run)
    assert folders[1e-2]["heldout"] is None and folders[1e-2]["validation"] == 0.0
    assert folders[3e-3]["heldout"]["scaled_mean"] == 0.4 and folders[3e-3]["validation"] == 0.7
    (choice,) = choose_lrs(list(folders.values()), (3e-3, 1e-2), (0,)).values()
    assert choice.lr == 3e-3
