"""baselines.backends: the same units through local processes and a local Ray, failures reported
with their folder, a unit whose worker died retried (and resumed) by Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from baselines.backends import BackendConfig, Unit, UnitFailure, check_storage, connected, run_units

TESTS = str(Path(__file__).resolve().parent)


@pytest.fixture(autouse=True)
def importable_units(monkeypatch):
    """Workers (spawned processes, Ray workers) import tests/backend_units.py."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(TESTS)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs, no dashboard) for the module's Ray tests."""
    ray = pytest.importorskip("ray")
    os.environ["PYTHONPATH"] = os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_writes_its_session_folder_where_the_suite_removes_it(local_ray):
    """Not /tmp/ray/session_*: under the test session's RAY_TMPDIR (tests/conftest.py), removed at its end."""
    from ray._private import worker

    assert worker._global_node.get_session_dir_path().startswith(os.environ["RAY_TMPDIR"] + os.sep)


def grid(tmp_path: Path) -> list[Unit]:
    import backend_units

    units = [Unit(f"sq{x}", (str(tmp_path / f"sq{x}"),), backend_units.square, (str(tmp_path / f"sq{x}"), x))
             for x in range(4)]
    units.append(Unit("bad", (str(tmp_path / "bad"),), backend_units.fail, (str(tmp_path / "bad"), "no such N")))
    return units


@pytest.mark.parametrize("kwargs, name", [
    (dict(backend="slurm"), "backend"), (dict(workers=0), "workers"), (dict(cpus_per_unit=-1), "cpus_per_unit"),
    (dict(gpus_per_unit=float("nan")), "gpus_per_unit"), (dict(gpus_per_unit=1.5), "gpus_per_unit"),
    (dict(max_retries=-1), "max_retries"), (dict(address="ray://head:10001"), "address"),
])
def test_bad_config_names_the_option(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BackendConfig(**kwargs).validate()


def check_grid(results, failures, tmp_path):
    assert sorted(r["square"] for r in results) == [0, 1, 4, 9]
    assert [(Path(f.folders[0]).name, f.name) for f in failures] == [("bad", "bad")]
    assert "ValueError" in failures[0].error and "no such N" in failures[0].error
    assert all((tmp_path / f"sq{x}" / "result.txt").read_text() == str(x * x) for x in range(4))


def test_local_backend_runs_every_unit_and_reports_the_failing_one(tmp_path):
    done, failed = [], []
    results, failures = run_units(grid(tmp_path), BackendConfig(workers=2), on_done=lambda u, r: done.append(u.name),
                                  on_failure=failed.append)
    check_grid(results, failures, tmp_path)
    assert sorted(done) == ["sq0", "sq1", "sq2", "sq3"] and failed == failures


def test_ray_backend_gives_the_local_results(local_ray, tmp_path):
    done: list[str] = []
    results, failures = run_units(grid(tmp_path), BackendConfig(backend="ray"), on_done=lambda u, r: done.append(u.name))
    check_grid(results, failures, tmp_path)
    assert sorted(done) == ["sq0", "sq1", "sq2", "sq3"]
    assert local_ray.is_initialized()  # a Ray the caller opened stays open


def test_ray_retries_a_unit_whose_worker_died(local_ray, tmp_path):
    import backend_units

    folder = str(tmp_path / "dies")
    unit = Unit("dies", (folder,), backend_units.die_once, (folder, 3))
    results, failures = run_units([unit], BackendConfig(backend="ray", max_retries=1))
    assert failures == [] and results == [{"x": 3, "square": 9}]
    folder = str(tmp_path / "dies-again")
    unit = Unit("dies-again", (folder,), backend_units.die_once, (folder, 3))
    results, failures = run_units([unit], BackendConfig(backend="ray", max_retries=0))
    assert results == [] and len(failures) == 1 and isinstance(failures[0], UnitFailure)
    assert failures[0].folders == (folder,) and folder in str(failures[0])


def test_storage_check(local_ray, tmp_path):
    with connected(BackendConfig(backend="ray")):
        check_storage(tmp_path / "storage", BackendConfig(backend="ray"))
    assert list((tmp_path / "storage").iterdir()) == []  # the probe's marker is gone
    check_storage(tmp_path / "elsewhere", BackendConfig())  # the local backend needs no check
    assert not (tmp_path / "elsewhere").exists()
