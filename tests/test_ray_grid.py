"""Grids on Ray (issue 17): the benchmark through the Ray backend gives the local backend's score card,
a population that raises is reported with its folders while the others finish, and a killed driver's
rerun finishes only what is missing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from baselines.backends import BackendConfig, UnitsFailed
from baselines.benchmark import BenchmarkSpec, run_benchmark
from baselines.cli import main

ray = pytest.importorskip("ray")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TINY = dict(tasks=("dms",), curricula=("single", "multi"), seeds=(0,), max_steps=400, max_seconds=120.0,
            hidden_size=32, eval_every=50, eval_batches=2, test_length=40, test_batch=8, workers=2)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs, no dashboard); its workers import tests/example_core.py."""
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])
    sys.path.insert(0, str(TESTS))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def scorecard(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "scorecard.csv").open()))


def test_ray_backend_gives_the_local_score_card_and_folders(local_ray, tmp_path):
    spec = BenchmarkSpec(cores=("leaky", "gru"), **TINY)
    local = run_benchmark(spec, tmp_path / "local")
    remote = run_benchmark(spec, tmp_path / "ray", backend=BackendConfig(backend="ray"))
    assert scorecard(tmp_path / "local") == scorecard(tmp_path / "ray")
    assert any(float(row["max_n_median"]) >= 2 for row in scorecard(tmp_path / "ray"))  # something was learned
    key = lambda r: (r["core"], r["curriculum"])  # noqa: E731
    assert [(key(a), a["max_n"], a["steps_to_n"], a["heldout"]) for a in sorted(local, key=key)] == \
           [(key(b), b["max_n"], b["steps_to_n"], b["heldout"]) for b in sorted(remote, key=key)]
    layout = lambda out: sorted(str(p.relative_to(out)) for p in out.rglob("*") if "last" not in p.parts)  # noqa: E731
    assert layout(tmp_path / "local") == layout(tmp_path / "ray")


def test_a_failing_population_is_reported_with_its_folders_and_the_rest_finish(local_ray, tmp_path):
    spec = BenchmarkSpec(cores=("leaky", "example_core:BrokenCore"), **TINY)
    logs: list[str] = []
    with pytest.raises(UnitsFailed) as failed:
        run_benchmark(spec, tmp_path / "bench", backend=BackendConfig(backend="ray"), log=logs.append)
    (failure,) = failed.value.failures
    assert "BrokenCore cannot run" in failure.error
    assert sorted(Path(f).name for f in failure.folders) == ["example_core.BrokenCore-dms-multi-s0",
                                                             "example_core.BrokenCore-dms-single-s0"]
    assert [row["core"] for row in scorecard(tmp_path / "bench")] == ["leaky", "leaky"]  # the rest finished
    assert any("BrokenCore cannot run" in line for line in logs)


def test_cli_ray_backend_and_bad_backend_options(local_ray, tmp_path, capsys):
    argv = ["benchmark", "--cores", "leaky", "--tasks", "dms", "--curricula", "single", "--seeds", "0",
            "--max-steps", "40", "--eval-every", "20", "--eval-batches", "1", "--hidden-size", "8"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--backend", "ray", "--storage", str(tmp_path / "shared")]) == 0
    assert (tmp_path / "shared" / "runs" / "leaky-dms-single-s0" / "heldout.json").is_file()
    assert (tmp_path / "a" / "scorecard.md").is_file() and not (tmp_path / "a" / "runs").exists()
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "b"), "--storage", str(tmp_path / "s")]) == 2
    assert "--storage: only with --backend ray" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b"), "--backend", "ray", "--gpus-per-run", "1.5"]) == 2
    assert "--gpus-per-run above 1 must be a whole number" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing written for bad options


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import ray
from baselines.backends import BackendConfig
from baselines.benchmark import BenchmarkSpec, run_benchmark
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
spec = BenchmarkSpec(cores=("leaky", "gru"), tasks=("dms",), curricula=("single",), seeds=(0,), max_steps={steps},
                     max_seconds=300.0, hidden_size=16, eval_every=20, eval_batches=2, test_length=40, test_batch=8,
                     population_size=1)
run_benchmark(spec, {out!r}, backend=BackendConfig(backend="ray"))
"""


def test_rerun_after_the_driver_was_killed_finishes_what_is_missing(local_ray, tmp_path):
    out = tmp_path / "bench"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    # the leaky run is quick; the gru run's budget keeps it training when the driver is killed
    script = textwrap.dedent(DRIVER).format(tests=str(TESTS), out=str(out), steps=80)
    script = script.replace('population_size=1)', 'population_size=1)\nimport baselines.benchmark as b\n'
                            'config = b.BenchmarkSpec.config\n'
                            'b.BenchmarkSpec.config = lambda self, core, *a: __import__("dataclasses").replace('
                            'config(self, core, *a), max_steps=10**6) if core == "gru" else config(self, core, *a)')
    driver = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    quick, slow = out / "runs" / "leaky-dms-single-s0", out / "runs" / "gru-dms-single-s0"
    try:
        deadline = time.monotonic() + 180
        while not ((quick / "heldout.json").is_file() and (slow / "last").is_dir()):
            assert time.monotonic() < deadline and driver.poll() is None, "the grid did not get going"
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
        driver.wait()
    kept = (quick / "heldout.json").stat().st_mtime_ns
    spec = BenchmarkSpec(cores=("leaky", "gru"), tasks=("dms",), curricula=("single",), seeds=(0,), max_steps=80,
                         max_seconds=300.0, hidden_size=16, eval_every=20, eval_batches=2, test_length=40,
                         test_batch=8, population_size=1)
    deadline = time.monotonic() + 60
    while True:  # the killed Ray's workers may take a moment to go and release the folder's lock
        try:
            results = run_benchmark(spec, out, backend=BackendConfig(backend="ray"))
            break
        except UnitsFailed as error:
            assert "in use by another process" in str(error) and time.monotonic() < deadline, error
            time.sleep(1)
    assert sorted(r["core"] for r in results) == ["gru", "leaky"]
    assert (quick / "heldout.json").stat().st_mtime_ns == kept  # the finished run was not redone
    assert len(scorecard(out)) == 2


def same_metrics(a: Path, b: Path) -> bool:
    """Two run folders' metrics agree: every field but time equal, the loss to float rounding (a member
    sums its loss with other members in another order when the populations are cut differently)."""
    import json

    lines = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b)]
    assert len(lines[0]) == len(lines[1]) > 0
    for x, y in zip(*lines):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-6)
        assert {k: v for k, v in x.items() if k not in ("time", "loss")} == \
               {k: v for k, v in y.items() if k not in ("time", "loss")}
    return True


def test_train_grid_and_reproduce_on_ray_equal_the_in_process_population(local_ray, tmp_path, capsys):
    from baselines.reproduce import reproduce

    argv = ["train", "--seeds", "0,1", "--task", "dms", "--hidden-size", "16", "--max-steps", "60", "--eval-every",
            "20", "--eval-batches", "1", "--quiet", "--no-plots", "--device", "cpu"]
    assert main([*argv, "--run-dir", str(tmp_path / "here")]) == 0
    assert main([*argv, "--run-dir", str(tmp_path / "ray"), "--backend", "ray", "--population-size", "1"]) == 0
    assert "2 networks" in capsys.readouterr().out
    for name in ("dms-multi-lr0.05-s0", "dms-multi-lr0.05-s1"):
        assert same_metrics(tmp_path / "here" / name, tmp_path / "ray" / name)
    reproduce("smoke", tmp_path / "repro-here")
    reproduce("smoke", tmp_path / "repro-ray", backend=BackendConfig(backend="ray"), population_size=3)
    for name in ("parity-single", "parity-multi", "dms-single", "dms-multi"):
        assert same_metrics(tmp_path / "repro-here" / name, tmp_path / "repro-ray" / name)


def test_rl_card_on_ray_gives_the_local_card(local_ray, tmp_path):
    """`benchmark --rl --backend ray`: each run a Ray task; the same run folders and card as local processes
    (seeded RL runs repeat on the CPU), the timesteps per second aside."""
    pytest.importorskip("sb3_contrib")
    from baselines.rl.scorecard import RLScorecardSpec, run_rl_scorecard

    spec = RLScorecardSpec(presets=("NDMS-Easy-v0",), policies=("leaky", "stock-lstm"), seeds=(0,), timesteps=1024,
                           hidden_size=8, eval_every=512, eval_episodes=50)
    run_rl_scorecard(spec, tmp_path / "local")
    run_rl_scorecard(spec, tmp_path / "ray", backend=BackendConfig(backend="ray"))

    def card(out: Path) -> list[dict[str, str]]:
        rows = list(csv.DictReader((out / "rl_scorecard.csv").open()))
        return [{k: v for k, v in row.items() if k != "timesteps_per_second_median"} for row in rows]

    assert card(tmp_path / "local") == card(tmp_path / "ray") and len(card(tmp_path / "ray")) == 2
    for name in ("NDMS-Easy-v0-leaky-s0", "NDMS-Easy-v0-stock-lstm-s0"):
        lines = [(tmp_path / where / "runs" / name / "metrics.jsonl").read_text().splitlines() for where in ("local", "ray")]
        local, remote = ([{k: v for k, v in json.loads(t).items() if k != "time"} for t in text] for text in lines)
        assert local == remote
