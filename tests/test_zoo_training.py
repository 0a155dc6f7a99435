"""The architecture zoo's cores in the trainer and the analyses: each kind, with its own default
optimizer (KIND_OPTIMIZERS), learns parity N = 3 at 32 units in a short `memory-envs train` run, and
`memory-envs analyze` reports tau_net and the kind's own timescale for it."""

from __future__ import annotations

import csv
import json

import pytest

from agents.cores import KINDS, TAU_KINDS
from baselines.cli import main
from baselines.train_config import KIND_OPTIMIZERS, TrainConfig

ZOO = [kind for kind in KINDS if kind not in TAU_KINDS]


def short(max_steps: int = 2000) -> list[str]:
    """A short single-head run at N = 3 on 32 units (its seed not included)."""
    return ["--task", "parity", "--p", "0.5", "--curriculum", "single", "--start-n", "3", "--target-n", "3",
            "--hidden-size", "32", "--batch-size", "64", "--eval-every", "50", "--eval-batches", "4",
            "--max-steps", str(max_steps), "--max-seconds", "300", "--threads", "1", "--device", "cpu"]


SHORT = [*short(), "--seed", "0"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("kind", ZOO)
def test_each_zoo_kind_learns_parity_3_with_its_default_optimizer(kind, tmp_path):
    assert kind in KIND_OPTIMIZERS, f"{kind} needs its default optimizer in KIND_OPTIMIZERS"
    run = tmp_path / kind
    assert main(["train", "--core", kind, "--run-dir", str(run), "--no-plots", *SHORT]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["max_n"] == 3, summary  # solved: the curriculum's 98% rule at N = 3 (chance 0.5)
    config = json.loads((run / "config.json").read_text())
    assert config["core"] == kind and config["optimizer"] == "auto"


def test_analyze_reports_tau_net_and_the_own_timescale_of_a_zoo_core(tmp_path, capsys):
    run = tmp_path / "mingru"
    assert main(["train", "--core", "mingru", "--run-dir", str(run), "--no-plots", *SHORT]) == 0
    out = tmp_path / "analysis"
    assert main(["analyze", str(run), "--out", str(out), "--trials", "2", "--steps", "3000", "--burn-in", "50",
                 "--no-plots", "--device", "cpu"]) == 0
    (row,) = read_csv(out / "timescales.csv")
    assert row["own_timescale_measure"] == "mean_decay"
    assert float(row["own_timescale_median"]) > 0
    neurons = read_csv(out / "timescales_neurons.csv")
    assert len(neurons) == 32 and any(float(n["tau_net"]) > 0 for n in neurons)  # tau_net fitted per neuron
    units = read_csv(out / "own_timescales.csv")
    assert len(units) == 32 and all(float(u["own_timescale"]) > 0 for u in units)
    assert not (out / "ablation.csv").exists()  # skipped: no per-neuron tau
    assert main(["analyze", str(run), "--out", str(tmp_path / "a2"), "--analyses", "ablation", "--device", "cpu"]) == 2
    assert "ablation act on the per-neuron tau, and core 'mingru' has none" in capsys.readouterr().err


def test_tau_options_and_optimizer_defaults():
    with pytest.raises(ValueError, match="tau_init only apply to the cores with a per-neuron tau"):
        TrainConfig(core="mingru", tau_init=(2.0, 3.0), hidden_size=8).validate()
    assert TrainConfig(core="leaky").optimizer_settings() == ("sgd", 0.05)
    assert TrainConfig(core="gru").optimizer_settings() == ("adam", 1e-3)
    assert TrainConfig(core="mingru", optimizer="sgd").optimizer_settings() == ("sgd", 0.05)
    assert TrainConfig(core="mingru", lr=0.01).optimizer_settings() == ("adam", 0.01)


def test_a_population_of_zoo_cores_trains_its_members_one_by_one_as_their_solo_runs(tmp_path):
    """Zoo cores do not group (Core.groups_with): a population runs its members one after the other,
    each exactly its solo run."""
    budget = short(max_steps=100)  # two evaluations
    assert main(["train", "--core", "mingru", "--seeds", "0,1", "--run-dir", str(tmp_path / "pop"), "--no-plots",
                 *budget]) == 0
    assert main(["train", "--core", "mingru", "--run-dir", str(tmp_path / "solo"), "--no-plots", *budget,
                 "--seed", "0"]) == 0
    member = (tmp_path / "pop" / "parity-single-lr0.003-s0" / "metrics.jsonl").read_text().splitlines()
    solo = (tmp_path / "solo" / "metrics.jsonl").read_text().splitlines()
    assert len(member) == len(solo) == 2
    for a, b in zip(member, solo):
        a, b = json.loads(a), json.loads(b)
        assert a["accuracy"] == b["accuracy"] and a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    assert (tmp_path / "pop" / "parity-single-lr0.003-s1" / "summary.json").exists()
