"""``memory-envs reproduce``'s scales and the claims table built from its run folders (baselines.claims)."""

from __future__ import annotations

from baselines.cli import main
from baselines.reproduce import scale_configs


def test_laptop_scale_adds_gru_and_lstm_runs_with_their_optimizer_and_size():
    configs = scale_configs("laptop")
    assert list(configs) == ["parity-single", "parity-multi", "dms-single", "dms-multi", "gru-parity-single",
                             "gru-parity-multi", "lstm-parity-single", "lstm-parity-multi"]
    gated = {name: c for name, c in configs.items() if c.core != "leaky"}
    assert {c.optimizer_settings() for c in gated.values()} == {("adam", 1e-3)}  # --optimizer auto
    assert {c.hidden_size for c in gated.values()} == {64} and {c.hidden_size for c in configs.values()} == {64, 128}
    assert configs["parity-single"].optimizer_settings() == ("sgd", 0.05)
    assert configs["parity-single"].max_steps > configs["dms-single"].max_steps  # parity gets the longer budget
    assert {c.target_n for c in configs.values()} == {32} and {c.device for c in configs.values()} == {"cpu"}
    assert list(scale_configs("laptop", seeds=(0, 1)))[:2] == ["parity-single-s0", "parity-single-s1"]


def test_reproduce_refuses_workers_without_a_backend_before_writing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["reproduce", "--scale", "laptop", "--workers", "2", "--out", str(out)]) == 2
    assert "--workers: only with --backend" in capsys.readouterr().err
    assert main(["reproduce", "--scale", "laptop", "--seeds", "1,1", "--out", str(out)]) == 2
    assert "seeds must be distinct" in capsys.readouterr().err
    assert not out.exists()


import dataclasses  # noqa: E402
import json  # noqa: E402

import pytest  # noqa: E402

import baselines.claims as claims  # noqa: E402
import baselines.reproduce as reproduce_module  # noqa: E402
from baselines.analysis import scaled_options  # noqa: E402


@pytest.fixture
def learning_smoke(monkeypatch):
    """The smoke scale cut to the parity runs of the leaky RNN and the GRU, with a budget and optimizer that
    solve N = 2-4 in seconds, and the claims' analyses at a small fraction of their size."""
    smoke = dataclasses.replace(reproduce_module.SCALES["smoke"], optimizer="adam", lr=0.01, max_steps=200, target_n=4)
    monkeypatch.setitem(reproduce_module.SCALES, "smoke", smoke)
    monkeypatch.setitem(reproduce_module.RUNS, "smoke", tuple(
        run for run in reproduce_module.RUNS["smoke"] if run[0] in ("leaky", "gru") and run[1] == "parity"))
    monkeypatch.setattr(claims, "ANALYSIS", scaled_options("quick", trials=2, steps=500, k=2, stream_length=100,
                                                           stream_batch=4, draws=1, eps=(0.0, 0.215, 0.464),
                                                           tau_eps=(0.0, 0.1), eval_batches=1))
    monkeypatch.setattr(claims, "TIMESCALE_CHECKPOINTS", 2)


def test_claims_come_from_the_run_folders_and_a_killed_reproduction_resumes_to_the_same_table(tmp_path,
                                                                                              learning_smoke):
    whole = tmp_path / "whole"
    reproduce_module.reproduce("smoke", whole)
    rows = (whole / "claims.csv").read_text().splitlines()
    assert rows[0] == "claim,paper,ours,measured at,verdict" and len(rows) == 7  # one row per claim
    assert all(any(v in row for v in claims.VERDICTS) for row in rows[1:])
    for figure in claims.FIGURES:
        assert (whole / figure).stat().st_size > 0

    class Killed(Exception):
        pass

    def kill_after_the_leaky_runs(name, summary):
        if name == "parity-multi":
            raise Killed

    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        reproduce_module.reproduce("smoke", killed, on_run=kill_after_the_leaky_runs)
    assert not (killed / "claims.md").exists() and not (killed / "gru-parity-single").exists()
    logs = []
    reproduce_module.reproduce("smoke", killed, log=logs.append)
    assert sum("done earlier" in line for line in logs) == 2  # the leaky runs are not trained again
    for table in ("claims.md", "claims.csv"):
        assert (killed / table).read_text() == (whole / table).read_text()

    # change a run folder's numbers: the table follows
    summary_path = whole / "gru-parity-multi" / "summary.json"
    summary = json.loads(summary_path.read_text())
    single = json.loads((whole / "gru-parity-single" / "summary.json").read_text())["max_n"]
    summary["max_n"] = single + claims.N_MARGIN + 5
    summary_path.write_text(json.dumps(summary))
    before = (whole / "claims.md").read_text()
    claims.write_claims(whole)
    row = (whole / "claims.md").read_text().splitlines()[7]
    assert row != before.splitlines()[7] and f"GRU largest N single {single} vs multi {single + claims.N_MARGIN + 5}" in row


def test_reproduce_refuses_bad_options_before_writing(tmp_path):
    out = tmp_path / "r"
    for options, words in (({"threads": 0}, "threads must be a positive integer"),
                           ({"population_size": 0}, "population_size must be a positive integer"),
                           ({"max_seconds": -1.0}, "max_seconds must be > 0")):
        with pytest.raises(ValueError, match=words):
            reproduce_module.reproduce("laptop", out, **options)
    with pytest.raises(ValueError, match="scale must be one of"):
        reproduce_module.reproduce("laptops", out)
    assert not out.exists()


def test_a_larger_step_budget_trains_the_finished_runs_on(tmp_path, monkeypatch):
    monkeypatch.setitem(reproduce_module.RUNS, "smoke", reproduce_module.RUNS["smoke"][:2])  # leaky parity
    monkeypatch.setitem(reproduce_module.SCALES, "smoke", dataclasses.replace(reproduce_module.SCALES["smoke"],
                                                                              max_steps=40))
    assert [s["steps"] for s in reproduce_module.reproduce("smoke", tmp_path)] == [40, 40]
    monkeypatch.setitem(reproduce_module.SCALES, "smoke", dataclasses.replace(reproduce_module.SCALES["smoke"],
                                                                              max_steps=60))
    logs = []
    assert [s["steps"] for s in reproduce_module.reproduce("smoke", tmp_path, log=logs.append)] == [60, 60]
    assert "(2 resuming)" in logs[0]
    assert [json.loads(line)["step"] for line in (tmp_path / "parity-single" / "metrics.jsonl").read_text().splitlines()] == [20, 40, 60]
