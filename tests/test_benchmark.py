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
    version 2's cards every kind and every ``+signed`` kind, on running parity and on parity and DMS with both
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
    assert len(commands) == 4, commands
    for argv in commands:
        out = argv.index("--out") + 1
        argv[out] = str(tmp_path / argv[out])
        assert main(argv) == 0
    state, reach, main_card, signed = specs
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
