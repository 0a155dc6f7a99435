"""Issue 32, points 2 and 4: requests whose memory, processes or time cannot fit the machine are refused before
anything is written, with the estimate and the limit; workers end with their parent; a stop request is honoured
in every long phase (docs/trust.md, "Sizes", "Worker processes" and "Signals")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baselines.backends import BackendConfig
from baselines.benchmark import BenchmarkSpec, expand_cores, run_benchmark
from baselines.cli import main
from baselines.trainer import TrainConfig
from memory_envs import sizes

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ARGV = ["--hidden-size", "8", "--batch-size", "16", "--eval-every", "5", "--eval-batches", "1", "--device", "cpu",
              "--quiet", "--no-plots", "--threads", "1", "--max-steps", "20"]
"""The issue's ``T`` options."""


@pytest.fixture
def two_cores(monkeypatch):
    """A machine with 2 CPU cores and 16 GiB available, whatever this one has."""
    monkeypatch.setattr(sizes, "cpu_cores", lambda: 2)
    monkeypatch.setattr(sizes, "available_bytes", lambda: 16 << 30)


def refused(capsys, argv: list[str], folder: Path, *words: str) -> str:
    """Run the command ``argv``: exit code 2, one error line holding ``words``, and ``folder`` not created."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("memory-envs: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err
    assert not folder.exists()
    return err


# ----- time: one phase of work (an evaluation, the length test) fits a day ---------------------------------------
def test_phase_estimate_and_limit():
    assert sizes.phase_seconds(10, 1000, 0.0) == pytest.approx(10 * sizes.SECONDS_PER_CALL + 1000 * sizes.SECONDS_PER_STEP)
    assert sizes.phase_seconds(0, 0, 1e15, "cuda") == pytest.approx(1.0)
    sizes.check_duration(sizes.PHASE_SECONDS_LIMIT, "x")
    with pytest.raises(ValueError, match=r"^x asks for at least 1.5 days of work in one phase .* the limit is 1.0 days"):
        sizes.check_duration(1.5 * 86_400, "x")


def test_running_parity_test_sequences_beyond_a_day_are_refused_from_python(device, tmp_path):
    config = TrainConfig(task="running_parity", test_sequences=10**9, hidden_size=8, batch_size=16, device=str(device))
    with pytest.raises(ValueError, match=r"test_sequences=1000000000 at 9 test lengths up to 1000 steps \(the length "
                                         r"test\) asks for at least [\d.]+ days .* limit is 1.0 days"):
        config.validate()
    from baselines.trainer import train

    with pytest.raises(ValueError, match="test_sequences=1000000000"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_sane_requests_are_accepted(device, two_cores):
    """The defaults, and sizes well beyond them, fit every limit."""
    from agents.cores import LAYER_KINDS
    from baselines.rl import RLConfig

    device = str(device)
    TrainConfig(device=device).validate()
    TrainConfig(task="running_parity", device=device).validate()
    TrainConfig(task="running_parity", test_sequences=100_000, device=device).validate()  # 100 x the protocol's
    TrainConfig(eval_batches=10_000, hidden_size=1024, device=device).validate()  # 200 x the default's batches
    BenchmarkSpec(device=device).validate()
    BenchmarkSpec(tasks=("running_parity",), eval_batches=10_000, device=device).validate()
    card = BenchmarkSpec(cores=expand_cores(("all",)), layers=(1, 2), optimizer="adam", lrs=(1e-3, 3e-3, 1e-2),
                         seeds=tuple(range(5)), max_steps=100_000, device=device).validate()
    depths = sum(len(card.depths(core)) for core in card.cores)  # the zoo's kinds at 1 and 2 layers, the others at 1
    assert depths == len(card.cores) + sum(core.removesuffix("+signed") in LAYER_KINDS for core in card.cores)
    assert card.run_count() == depths * 2 * 2 * 5 * 3  # x 2 tasks x 2 curricula x 5 seeds x 3 lrs, 100,000 steps each
    RLConfig(device=device).validate()
    RLConfig(eval_episodes=100_000, device=device).validate()
    RLConfig(vec_env="subproc", n_envs=8, device=device).validate()  # 4 per core
    RLConfig(vec_env="native", n_envs=10_000, device=device).validate()


def test_cli_train_refuses_a_length_test_beyond_a_day(tmp_path, capsys):
    run = tmp_path / "run"
    refused(capsys, ["train", "--task", "running_parity", "--test-sequences", "1000000000", *TRAIN_ARGV,
                     "--run-dir", str(run)], run, "--test-sequences=1000000000", "days of work", "the limit is 1.0 days")


def test_benchmark_refuses_an_evaluation_beyond_a_day_before_writing(tmp_path, capsys):
    out = tmp_path / "bench"
    refused(capsys, ["benchmark", "--hidden-size", "8", "--eval-every", "5", "--max-steps", "20", "--eval-batches",
                     "1000000000", "--out", str(out)], out, "--eval-batches=1000000000 (one evaluation", "the limit is")
    spec = BenchmarkSpec(cores=("leaky",), tasks=("parity",), curricula=("single",), seeds=(0,), hidden_size=8,
                         eval_batches=10**9, device="cpu")
    with pytest.raises(ValueError, match="eval_batches=1000000000"):
        run_benchmark(spec, out)
    assert not out.exists()


# ----- RL: processes, memory and evaluation time --------------------------------------------------------------
def test_rl_subproc_workers_are_limited_per_core_unless_allowed(two_cores, tmp_path, capsys):
    pytest.importorskip("sb3_contrib")
    from baselines.rl import RLConfig

    run = tmp_path / "run"
    refused(capsys, ["rl", "--vec-env", "subproc", "--n-envs", "100", "--threads", "1", "--quiet", "--run-dir",
                     str(run)], run, "--n-envs=100", "starts 100 processes but this machine allows 8 (4 per CPU core, "
                                     "2 cores)", "--allow-oversubscribe")
    RLConfig(vec_env="subproc", n_envs=50, allow_oversubscribe=True).validate()  # 50 x 180 MiB fit in 16 GiB
    with pytest.raises(ValueError, match=r"n_envs=100 with vec_env='subproc' \(100 worker processes of 180.0 MiB.*\) "
                                         r"needs 17.6 GiB .* but 16.0 GiB are available"):
        RLConfig(vec_env="subproc", n_envs=100, allow_oversubscribe=True).validate()
    with pytest.raises(ValueError, match="allow_oversubscribe must be True or False"):
        RLConfig(allow_oversubscribe="yes").validate()


def test_rl_envs_and_evaluations_that_cannot_fit_are_refused(two_cores, tmp_path, capsys):
    pytest.importorskip("sb3_contrib")
    run = tmp_path / "run"
    refused(capsys, ["rl", "--n-envs", "1000000", "--threads", "1", "--quiet", "--run-dir", str(run)], run,
            "--n-envs=1000000", "GiB (", "of memory but 16.0 GiB are available")
    refused(capsys, ["rl", "--eval-episodes", "1000000000", "--threads", "1", "--quiet", "--run-dir", str(run)], run,
            "--eval-episodes=1000000000 (one evaluation) asks for at least", "the limit is 1.0 days")


def test_rl_memory_estimate_counts_the_dummy_envs_and_the_rollout(monkeypatch):
    """1,000,000 DummyVecEnv envs take about 9 GB and their rollout of 64 steps about 78 GB (measured per env and per
    step; before, the estimate was 12 GB in all and such a run grew until the machine ran out)."""
    from baselines.rl import RLConfig

    needed = []
    monkeypatch.setattr(sizes, "check_fits", lambda bytes_, argument: needed.append(bytes_))
    RLConfig(n_envs=10**6, hidden_size=8).validate()
    assert max(needed) > 80 * 10**9


# ----- Ray: an address where nothing answers ------------------------------------------------------------------
def test_an_unreachable_ray_address_fails_fast_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("ray")
    out = tmp_path / "bench"
    refused(capsys, ["benchmark", "--hidden-size", "8", "--eval-every", "5", "--max-steps", "20", "--backend", "ray",
                     "--address", "127.0.0.1:1", "--out", str(out)], out,
            "--address must be that of a running Ray head node: nothing accepts a connection at '127.0.0.1:1'")
    with pytest.raises(ValueError, match="nothing accepts a connection at 'ray://127.0.0.1:1'"):
        BackendConfig(backend="ray", address="ray://127.0.0.1:1").validate()
    with pytest.raises(ValueError, match="address must be host:port"):
        BackendConfig(backend="ray", address="somewhere").validate()
    spec = BenchmarkSpec(cores=("leaky",), tasks=("parity",), curricula=("single",), seeds=(0,), hidden_size=8,
                         device="cpu")
    with pytest.raises(ValueError, match="nothing accepts a connection"):
        run_benchmark(spec, out, backend=BackendConfig(backend="ray", address="127.0.0.1:1"))
    assert not out.exists()


# ----- worker processes end with their parent ----------------------------------------------------------------
def descendants(pid: int) -> set[int]:
    """The processes below ``pid`` now (Linux: read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rfind(")") + 2:].split()[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def unit_worker(driver: subprocess.Popen, folder: Path, seconds: float) -> int:
    """The pid of the worker running the unit, which writes it to ``folder/pid``, once it started (at most
    ``seconds``, while ``driver`` lives)."""
    deadline = time.monotonic() + seconds
    while not (folder / "pid").is_file() or not (folder / "pid").read_text():
        assert driver.poll() is None and time.monotonic() < deadline, "the unit did not start"
        time.sleep(0.2)
    return int((folder / "pid").read_text())


def kill_parent_and_wait(parent: subprocess.Popen, workers: set[int], seconds: float = 30.0) -> set[int]:
    """SIGKILL ``parent`` alone and poll until ``workers`` are gone or ``seconds`` pass; returns those left alive
    (then killed, with the parent's session, so the test leaves nothing behind)."""
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + seconds
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {w for w in workers if alive(w)}
    for w in left:
        os.kill(w, signal.SIGKILL)
    return left


CHILD = """
import os, sys, time
from baselines.orphans import die_with_parent
die_with_parent(int(sys.argv[1]))
open(sys.argv[2], "w").write("ready")
time.sleep(600)  # a worker busy with something that would never notice its parent is gone
"""
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(__import__("os").getpid()), sys.argv[2]])
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_ends_when_its_parent_is_killed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ready = tmp_path / "ready"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(ready)], stdout=subprocess.PIPE, text=True,
                              env=env, start_new_session=True)
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert alive(child) and time.monotonic() < deadline, "the child did not start"
        time.sleep(0.1)
    assert kill_parent_and_wait(parent, {child}) == set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_rl_subproc_workers_end_when_the_run_is_killed(tmp_path):
    pytest.importorskip("sb3_contrib")
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "baselines.cli", "rl", "--vec-env", "subproc", "--n-envs", "2", "--hidden-size", "8",
            "--n-steps", "16", "--batch-size", "32", "--eval-every", "32", "--eval-episodes", "2",
            "--total-timesteps", "10000000", "--threads", "1", "--quiet", "--run-dir", str(run)]
    parent = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text()):  # the workers step
            assert parent.poll() is None and time.monotonic() < deadline, "the run did not get going"
            time.sleep(0.2)
        workers = descendants(parent.pid)
        assert len(workers) >= 2
        assert kill_parent_and_wait(parent, workers) == set()
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()


def sleep_in_worker(folder: str) -> None:
    """A unit of work that never ends on its own (module-level: the spawned worker imports it)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / "pid").write_text(str(os.getpid()))
    time.sleep(600)


DRIVER = """
import sys
from baselines.backends import BackendConfig, Unit, run_units
from test_limits import sleep_in_worker
run_units([Unit("sleep", (sys.argv[1],), sleep_in_worker, (sys.argv[1],))], BackendConfig(workers=1))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_backend_workers_end_when_the_driver_is_killed(tmp_path):
    folder = tmp_path / "unit"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(folder)], env=env, start_new_session=True)
    try:
        worker = unit_worker(driver, folder, seconds=120)
        assert alive(worker) and kill_parent_and_wait(driver, descendants(driver.pid) | {worker}) == set()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()


TWO_UNITS = """
import signal
import sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's background job starts with SIGINT ignored
from baselines.backends import BackendConfig, Unit, run_units
from test_limits import sleep_in_worker
first, second = sys.argv[1:]
run_units([Unit(n, (f,), sleep_in_worker, (f,)) for n, f in (("first", first), ("second", second))],
          BackendConfig(workers=1))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigint_to_the_local_driver_stops_its_workers_and_starts_no_queued_unit(tmp_path):
    """Ctrl-C (here SIGINT to the driver alone, as `kill -INT` sends it) ends the grid: the running worker is
    stopped and the queued unit never starts (the pool's own exit would have waited for both)."""
    first, second = tmp_path / "first", tmp_path / "second"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    driver = subprocess.Popen([sys.executable, "-c", TWO_UNITS, str(first), str(second)], env=env,
                              start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        worker = unit_worker(driver, first, seconds=120)
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=60)
        assert driver.returncode != 0 and "KeyboardInterrupt" in err
        deadline = time.monotonic() + 30
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(worker) and not second.exists()
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()


# ----- a stop request is honoured in every long phase ----------------------------------------------------------
def without_time(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


def signal_in(phase: str, calls: int, monkeypatch) -> None:
    """Send this process SIGTERM from inside ``phase`` (a function of ``baselines.interrupt``'s users, patched)
    at its ``calls``-th call: a signal that arrives in the middle of that phase."""
    import baselines.interrupt as interrupt

    seen = []
    check = interrupt.check

    def check_and_signal() -> None:
        if phase in [frame.function for frame in __import__("inspect").stack()[1:3]]:
            seen.append(1)
            if len(seen) == calls:
                os.kill(os.getpid(), signal.SIGTERM)
        check()

    monkeypatch.setattr(interrupt, "check", check_and_signal)


def test_sigterm_in_an_evaluation_stops_there_and_resume_evaluates_first(device, tmp_path, monkeypatch):
    from baselines.interrupt import stop_on_signals
    from baselines.run_folder import read_metrics
    from baselines.trainer import train

    config = TrainConfig(hidden_size=8, batch_size=16, eval_every=10, eval_batches=20, max_steps=20, device=str(device),
                         max_seconds=None)
    signal_in("evaluate", 20 + 5, monkeypatch)  # the 5th batch of the second, last evaluation (step 20)
    with stop_on_signals() as stop:
        summary = train(config, tmp_path / "run")
    assert stop.name == "SIGTERM" and summary["stopped_because"] == "interrupted" and summary["steps"] == 20
    assert [line["step"] for line in read_metrics(tmp_path / "run")] == [10]  # the abandoned one wrote nothing
    assert json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())["eval_pending"] is True
    monkeypatch.undo()
    resumed = train(config, tmp_path / "run", resume=True)  # at its step budget, it still evaluates first
    assert resumed["stopped_because"] == "max_steps" and resumed["steps"] == 20
    train(config, tmp_path / "uninterrupted")
    assert without_time(read_metrics(tmp_path / "run")) == without_time(read_metrics(tmp_path / "uninterrupted"))


def test_sigterm_in_a_population_evaluation_stops_every_member(device, tmp_path, monkeypatch):
    from baselines.interrupt import stop_on_signals
    from baselines.population import train_population
    from baselines.run_folder import read_metrics

    configs = [TrainConfig(hidden_size=8, batch_size=16, eval_every=10, eval_batches=20, max_steps=20, seed=seed,
                           device=str(device)) for seed in (0, 1)]
    folders = [tmp_path / "a", tmp_path / "b"]
    signal_in("evaluate", 3, monkeypatch)
    with stop_on_signals():
        summaries = train_population(configs, folders)
    assert [s["stopped_because"] for s in summaries] == ["interrupted", "interrupted"]
    assert all(not read_metrics(f) for f in folders)
    monkeypatch.undo()
    assert [s["stopped_because"] for s in train_population(configs, folders, resume=True)] == ["max_steps"] * 2
    assert [[line["step"] for line in read_metrics(f)] for f in folders] == [[10, 20], [10, 20]]


RUNNING_ARGV = ["train", "--task", "running_parity", "--hidden-size", "8", "--batch-size", "16", "--eval-every", "10",
                "--eval-batches", "1", "--max-steps", "20", "--device", "cpu", "--threads", "1", "--quiet", "--no-plots",
                "--test-lengths", "40", "--far-length", "0", "--test-sequences", "64000"]
"""A running-parity run whose length test (4,000 batches of 40 steps) takes seconds after 20 training steps."""


def test_sigterm_during_the_length_test_stops_cleanly_and_resume_tests(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "baselines.cli", *RUNNING_ARGV, "--run-dir", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 180
        final = run / "checkpoints" / "final"
        while not ((final / "model.json").is_file() and (final / "model.safetensors").is_file()):  # the test began
            assert proc.poll() is None and time.monotonic() < deadline, f"the test never began: {proc.communicate()}"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143 and "stopped by SIGTERM" in out and "Traceback" not in err, (out, err)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_because"] == "interrupted" and summary["length_test"] is None and summary["steps"] == 20
    assert json.loads((run / "last" / "trainer.json").read_text())["step"] == 20
    assert main([*RUNNING_ARGV, "--run-dir", str(run), "--resume"]) == 0
    resumed = json.loads((run / "summary.json").read_text())
    assert resumed["stopped_because"] == "max_steps" and resumed["length_test"]["sequences_per_length"] == 64000


def test_sigterm_in_an_rl_evaluation_stops_there_and_resume_evaluates_first(device, tmp_path, monkeypatch):
    pytest.importorskip("sb3_contrib")
    from baselines.interrupt import stop_on_signals
    from baselines.rl import RLConfig, train_rl
    from baselines.run_folder import read_metrics

    config = RLConfig(env_id="NDMS-v0", n=2, mode="every_step", p=0.5, length_range=(4, 8), hidden_size=8, n_envs=4,
                      n_steps=32, batch_size=64, n_epochs=1, total_timesteps=256, eval_every=128, eval_episodes=4,
                      seed=0, device=str(device))
    signal_in("evaluate_policy", 2, monkeypatch)  # the second episode of the first evaluation
    with stop_on_signals():
        summary = train_rl(config, tmp_path / "run", threads=1)
    assert summary["stopped_because"] == "interrupted" and summary["timesteps"] == 128
    assert read_metrics(tmp_path / "run") == []
    assert json.loads((tmp_path / "run" / "last" / "state.json").read_text())["eval_pending"] is True
    monkeypatch.undo()
    assert train_rl(config, tmp_path / "run", resume=True, threads=1)["stopped_because"] == "max_timesteps"
    train_rl(config, tmp_path / "uninterrupted", threads=1)
    assert without_time(read_metrics(tmp_path / "run")) == without_time(read_metrics(tmp_path / "uninterrupted"))


RAY_DRIVER = """
import sys, time
import ray
from baselines.backends import BackendConfig, Unit, run_units
from test_limits import sleep_in_worker
run_units([Unit("sleep", (sys.argv[1],), sleep_in_worker, (sys.argv[1],))], BackendConfig(backend="ray"))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_ray_driver_leaves_no_process_of_its_ray_behind(tmp_path):
    """``--backend ray`` without ``--address`` starts a Ray of its own: killing the driver (alone, by SIGKILL) ends
    the worker running our unit and Ray's core processes (Ray's kernel fate sharing: its processes get the
    parent-death signal, and its workers end with their raylet); Ray's dashboard and runtime-env agents linger."""
    pytest.importorskip("ray")
    folder = tmp_path / "unit"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    driver = subprocess.Popen([sys.executable, "-c", RAY_DRIVER, str(folder)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        worker = unit_worker(driver, folder, seconds=180)
        ours = descendants(driver.pid) | {worker}
        names = {pid: Path(f"/proc/{pid}/cmdline").read_text().split("\0")[0].strip() for pid in ours if alive(pid)}
        assert alive(worker) and len(ours) > 2  # Ray's processes and the worker
        left = kill_parent_and_wait(driver, ours, seconds=60)
        assert worker not in left
        # Ray's own agents outlive a killed driver by over a minute (Ray's doing, docs/trust.md); nothing else does
        assert {names.get(pid) for pid in left} <= {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}, left
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
