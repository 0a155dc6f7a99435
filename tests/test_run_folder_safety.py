"""Run folders under hostile conditions (issue 32, points 1, 3 and 7): a symbolic link anywhere in a run folder is
never written through, followed or deleted; ``--overwrite`` deletes only what runs write, at every depth; a full
disk is one error line, and a folder whose setup it cut short is the project's own (a re-run, ``--resume`` and
``--overwrite`` take it); two writers started at once: the loser is told the folder is in use, with the pid."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agents.checkpoint import WriteError, write_error
from baselines.cli import main
from baselines.run_folder import (
    MARKER, RunFolderError, RunLock, append_metrics, atomic_write_text, read_metrics, save_last, write_json,
)
from baselines.trainer import TrainConfig, Trainer, train

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")

TINY_ARGV = ["--hidden-size", "8", "--batch-size", "16", "--eval-every", "10", "--eval-batches", "1",
             "--max-steps", "20", "--device", "cpu", "--quiet", "--no-plots", "--threads", "1"]


def tiny(**overrides) -> TrainConfig:
    base = dict(hidden_size=8, batch_size=16, eval_every=10, eval_batches=1, max_steps=20, device="cpu", seed=0,
                max_seconds=None)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 20-step run with a checkpoint folder (last/, last.old/, checkpoints/n002/)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train(tiny(), run)
    (run / "checkpoints" / "n002").mkdir()
    for name in ("model.json", "model.safetensors"):
        shutil.copy(run / "last" / name, run / "checkpoints" / "n002" / name)
    return run


@pytest.fixture
def run(finished, tmp_path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def everything(folder: Path) -> dict[str, object]:
    """Every path under ``folder`` with its contents (a file), its target (a link) or None (a folder)."""
    found: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        found[key] = (os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() and
                      path.name != ".lock" else None)
    return found


def cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def one_line(err: str) -> bool:
    return err.startswith("memory-envs: error: ") and err.count("\n") == 1


# ----- point 1: symbolic links -------------------------------------------------------------------------
LINKED = [".lock", "config.json", "metrics.jsonl", "summary.json", "last", "last.old", "checkpoints",
          "checkpoints/n002", "last/trainer.json"]


@pytest.mark.parametrize("name", LINKED)
def test_resume_refuses_a_symbolic_link_anywhere_and_changes_nothing(run, tmp_path, capsys, name):
    target = tmp_path / "outside" / name.replace("/", "_")
    target.parent.mkdir()
    shutil.move(run / name, target)
    os.symlink(target, run / name)
    outside, before = everything(target.parent), everything(run)
    code, err = cli(["train", *TINY_ARGV, "--run-dir", str(run), "--resume", "--max-steps", "40"], capsys)
    assert code == 2 and one_line(err) and f"{name} (a symbolic link)" in err
    assert everything(target.parent) == outside and everything(run) == before and (run / name).is_symlink()


def test_the_shared_write_paths_refuse_a_link_and_leave_its_target_alone(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's file\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in (".lock", "metrics.jsonl", "summary.json"):
        (run_dir / name).symlink_to(outside)
    with pytest.raises(RunFolderError, match=r"\.lock is a symbolic link"):
        RunLock(run_dir)
    with pytest.raises(WriteError, match=r"metrics.jsonl: it is a symbolic link"):
        append_metrics(run_dir, {"step": 1})
    with pytest.raises(WriteError, match=r"summary.json: it is a symbolic link"):
        write_json(run_dir / "summary.json", {"max_n": 2})
    assert outside.read_text() == "the user's file\n"
    assert all((run_dir / name).is_symlink() for name in (".lock", "metrics.jsonl", "summary.json"))


def test_save_last_never_deletes_what_a_run_did_not_write(run):
    (run / "last.old" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match=r"last.old/notes.txt.*nothing was deleted"):
        save_last(run, lambda folder: None)
    assert (run / "last.old" / "notes.txt").read_text() == "mine"


# ----- point 1: --overwrite deletes only what runs write, at every depth --------------------------------
def plant(run: Path, where: str, outside: Path) -> str:
    """Put a user's file (or link) at ``where`` in ``run``; returns the entry the refusal must name."""
    if where == "summary.json/user.txt":  # a folder named like a file runs write
        (run / "summary.json").unlink()
    if where.startswith("link:"):
        name = where.removeprefix("link:")
        outside.mkdir()
        (outside / "user.txt").write_text("mine")
        shutil.rmtree(run / name) if (run / name).is_dir() else None
        (run / name).symlink_to(outside)
        return f"{name} (a symbolic link)"
    (run / where).parent.mkdir(parents=True, exist_ok=True)
    (run / where).write_text("mine")
    return {"summary.json/user.txt": "summary.json (a folder, where runs write a file)",
            "tb/mine/events.txt": "tb/mine"}.get(where, where)


USER_FILES = ["last/notes.txt", "last.old/notes.txt", "last.new/trainer.pt", "checkpoints/notes.txt",
              "checkpoints/n002/notes.txt", "tb/mine/events.txt", "tb/rl_1/notes.txt", "analysis/notes.txt",
              "summary.json/user.txt", "link:checkpoints", "link:last", "link:tb"]


@pytest.mark.parametrize("where", USER_FILES)
def test_overwrite_refuses_anything_runs_do_not_write_at_any_depth(run, tmp_path, capsys, where):
    named = plant(run, where, tmp_path / "outside")
    before = everything(run)
    outside = everything(tmp_path / "outside") if (tmp_path / "outside").exists() else None
    code, err = cli(["train", *TINY_ARGV, "--run-dir", str(run), "--overwrite"], capsys)
    assert code == 2 and one_line(err) and f"holds files no run writes ({named})" in err
    assert everything(run) == before
    if outside is not None:
        assert everything(tmp_path / "outside") == outside


def test_overwrite_replaces_everything_runs_write_at_every_depth(run, capsys):
    made = {"tb/rl_1/events.out.tfevents.1700000000.host.1.0": "", "analysis/timescales.csv": "n\n",
            "analysis/ablation.png": "", "accuracy.png": "", "heldout.json": "{}", "timescales.json": "{}",
            "last.new/model.json": "{}", "last/.model.json.0123456789ab.tmp": "", "checkpoints/final/model.json": "{}"}
    for where, text in made.items():
        (run / where).parent.mkdir(parents=True, exist_ok=True)
        (run / where).write_text(text)
    code, _ = cli(["train", *TINY_ARGV, "--run-dir", str(run), "--overwrite", "--max-steps", "10"], capsys)
    assert code == 0 and len(read_metrics(run)) == 1
    assert not any((run / where).exists() for where in made) and not (run / "checkpoints" / "n002").exists()


def test_rl_overwrite_uses_the_same_layout(tmp_path):
    pytest.importorskip("sb3_contrib")
    from baselines.rl import RLConfig, RLRun

    config = RLConfig(hidden_size=8)
    RLRun(config, tmp_path / "rl").close()
    for where in ("tb/mine/events.txt", "last/notes.txt"):
        (tmp_path / "rl" / where).parent.mkdir(parents=True)
        (tmp_path / "rl" / where).write_text("mine")
    with pytest.raises(RunFolderError, match=r"holds files no run writes \(last/notes.txt, and 1 more\)"):
        RLRun(config, tmp_path / "rl", overwrite=True)
    assert (tmp_path / "rl" / "tb" / "mine" / "events.txt").read_text() == "mine"
    (tmp_path / "rl" / "last" / "notes.txt").unlink()
    shutil.rmtree(tmp_path / "rl" / "tb" / "mine")
    RLRun(config, tmp_path / "rl", overwrite=True).close()  # what is left, runs write: replaced
    assert not (tmp_path / "rl" / "tb").exists() and not (tmp_path / "rl" / "last").exists()


# ----- point 3: a full disk -----------------------------------------------------------------------------
class Disk:
    """``os.write`` / ``os.pwrite`` (what the project's writes go through) raise ENOSPC for files in ``folder``
    once ``after`` writes there went through, until :meth:`free`."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.folder: str | None = None
        self.left = 0
        write, pwrite = os.write, os.pwrite
        monkeypatch.setattr(os, "write", lambda fd, data: (self._check(fd), write(fd, data))[1])
        monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: (self._check(fd), pwrite(fd, data, offset))[1])

    def _check(self, fd: int) -> None:
        if self.folder is None:
            return
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return
        if path.startswith(self.folder):
            if self.left <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.left -= 1

    def fill(self, folder: Path, after: int = 0) -> None:
        self.folder, self.left = str(folder.resolve()) + os.sep, after

    def free(self) -> None:
        self.folder = None


@pytest.fixture
def disk(monkeypatch) -> Disk:
    return Disk(monkeypatch)


@linux_only
def test_a_full_disk_is_one_line_naming_the_file_and_the_bytes_and_the_old_file_stays(tmp_path, disk):
    path = tmp_path / "run" / "summary.json"
    path.parent.mkdir()
    path.write_text("old")
    disk.fill(path.parent)
    with pytest.raises(WriteError) as error:
        atomic_write_text(path, "new text")
    assert str(error.value) == f"cannot write {path}: No space left on device (8 bytes needed)"
    assert path.read_text() == "old" and [p.name for p in path.parent.iterdir()] == ["summary.json"]
    error = write_error(path, OSError(errno.ENOSPC, "No space left on device"), 10**6)
    assert pickle_roundtrip(error) == "cannot write " + str(path) + ": No space left on device (1,000,000 bytes needed)"


def pickle_roundtrip(error: Exception) -> str:
    import pickle

    return str(pickle.loads(pickle.dumps(error)))  # a benchmark worker sends it back to the parent


@linux_only
@pytest.mark.parametrize("after", [0, 1, 2, 4, 12])
def test_train_into_a_full_disk_says_so_in_one_line_and_every_way_on_works_once_space_is_freed(
        tmp_path, capsys, disk, after):
    run_dir = tmp_path / "run"
    disk.fill(run_dir, after)
    code, err = cli(["train", *TINY_ARGV, "--run-dir", str(run_dir)], capsys)
    assert code == 1 and one_line(err) and "No space left on device" in err and "bytes needed" in err
    assert f"free some space, then `memory-envs train --resume --run-dir {run_dir}` continues the run" in err
    disk.free()
    ways = [["--resume"], ["--overwrite"]] + ([[]] if not (run_dir / "config.json").exists() else [])
    for way in ways:  # the hint as printed, replacing it, and (a folder whose setup was cut short) the same command
        copy = Path(shutil.copytree(run_dir, tmp_path / f"copy{len(way)}{''.join(way)}", symlinks=True))
        code, err = cli(["train", *TINY_ARGV, "--run-dir", str(copy), *way], capsys)
        assert code == 0, (way, err)
        assert json.loads((copy / "summary.json").read_text())["steps"] == 20 and (copy / MARKER).is_file()


@linux_only
def test_rl_saves_its_first_state_before_its_first_metrics_line(tmp_path, capsys, disk):
    pytest.importorskip("sb3_contrib")
    run_dir = tmp_path / "rl"
    argv = ["rl", "--env", "NDMS-v0", "--n", "2", "--mode", "every_step", "--p", "0.5", "--length-range", "4", "8",
            "--hidden-size", "8", "--n-envs", "2", "--n-steps", "16", "--batch-size", "32", "--n-epochs", "1",
            "--eval-every", "32", "--eval-episodes", "2", "--total-timesteps", "64", "--threads", "1", "--quiet",
            "--run-dir", str(run_dir)]
    disk.fill(run_dir / "last.new")  # the first saved state hits the full disk
    code, err = cli(argv, capsys)
    assert code == 1 and one_line(err) and "last.new/model.zip: No space left on device" in err
    assert read_metrics(run_dir) == []  # no result without a state to resume it from
    disk.free()
    code, err = cli([*argv, "--resume"], capsys)
    assert code == 0, err
    assert json.loads((run_dir / "summary.json").read_text())["timesteps"] >= 64 and read_metrics(run_dir)


@linux_only
@pytest.mark.parametrize("after, again", [(3, ["--overwrite"]), (6, ["--resume"])])
def test_a_population_on_a_full_disk_prints_the_command_that_goes_on(tmp_path, capsys, disk, after, again):
    grid = tmp_path / "grid"
    argv = ["train", *TINY_ARGV, "--seeds", "0,1", "--run-dir", str(grid)]
    disk.fill(grid, after)  # 3: while the members' folders are set up; 6: at the first saved state
    code, err = cli(argv, capsys)
    hint = (f"`memory-envs train --resume --run-dir {grid}` continues every member" if again == ["--resume"] else
            "the same command with --overwrite ")
    assert code == 1 and one_line(err) and hint in err
    disk.free()
    again_argv = ["train", "--resume", "--run-dir", str(grid)] if again == ["--resume"] else [*argv, *again]
    assert cli(again_argv, capsys)[0] == 0  # the printed command, as printed
    assert all(json.loads((grid / f"parity-multi-lr0.05-s{seed}" / "summary.json").read_text())["steps"] == 20
               for seed in (0, 1))


@linux_only
def test_benchmark_on_a_full_disk_is_one_line_and_the_same_command_goes_on(tmp_path, capsys, disk):
    argv = ["benchmark", "--cores", "leaky", "--tasks", "dms", "--curricula", "single", "--seeds", "0",
            "--max-steps", "10", "--eval-every", "5", "--hidden-size", "4", "--out", str(tmp_path / "bench")]
    disk.fill(tmp_path / "bench")
    code, err = cli(argv, capsys)
    error = err[err.index("memory-envs: error: "):]  # after the progress bar, one line
    assert code == 1 and one_line(error) and "benchmark.json: No space left on device" in error
    assert error.endswith("free some space, then the same command continues\n")
    disk.free()
    assert cli(argv, capsys)[0] == 0 and (tmp_path / "bench" / "scorecard.md").is_file()


def test_benchmark_reports_its_workers_full_disk_not_an_index_error(tmp_path, capsys, monkeypatch):
    from baselines import backends, benchmark

    def full(units, backend, on_done, on_failure, storage):
        failures = [backends._failure(unit, write_error(Path(unit.folders[0]) / "config.json",
                                                        OSError(errno.ENOSPC, "No space left on device"), 1234))
                    for unit in units]
        for failure in failures:
            on_failure(failure)
        return [], failures

    monkeypatch.setattr(benchmark, "run_units", full)
    code, err = cli(["benchmark", "--cores", "leaky", "--tasks", "dms", "--curricula", "single", "--seeds", "0",
                     "--max-steps", "10", "--hidden-size", "4", "--out", str(tmp_path / "bench")], capsys)
    assert code == 1 and "IndexError" not in err
    assert "WriteError: cannot write" in err and "No space left on device (1,234 bytes needed)" in err


# ----- point 7: two writers started at the same instant ---------------------------------------------------
@pytest.mark.parametrize("stage", ["locked", "marked", "set up"])
def test_a_writer_arriving_while_another_sets_the_folder_up_is_told_it_is_in_use(tmp_path, stage):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lock = RunLock(run_dir)  # the first writer, interleaved: it holds the lock and has written up to `stage`
    try:
        if stage != "locked":
            (run_dir / MARKER).write_text("memory-envs run folder\n")
        if stage == "set up":
            (run_dir / "config.json").write_text(json.dumps(tiny().to_json()))
            (run_dir / "metrics.jsonl").write_text("")
        for how in ({}, {"resume": True}, {"overwrite": True}):
            with pytest.raises(RunFolderError, match=rf"in use by another process \(pid {os.getpid()}\)"):
                Trainer(tiny(), run_dir, **how)
    finally:
        lock.release()
    Trainer(tiny(), run_dir, resume=True).close()  # once it lets go, the folder is its own again


RACER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from baselines.run_folder import RunFolderError, create_run_folder
    run, me, other, done = map(Path, sys.argv[1:5])
    me.touch()
    while not other.exists():  # both start at the same instant
        time.sleep(0.001)
    try:
        lock = create_run_folder(run, {"task": "parity"}, overwrite=False)
    except RunFolderError as error:
        print(error, flush=True)
        sys.exit(3)
    deadline = time.monotonic() + 300
    while not done.exists() and time.monotonic() < deadline:  # hold the folder until the other has answered
        time.sleep(0.01)
""")


def test_two_writers_started_at_once_the_loser_is_told_the_winners_pid(tmp_path):
    run_dir, done = tmp_path / "run", tmp_path / "done"
    ready = [tmp_path / "a", tmp_path / "b"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(run_dir), str(me), str(other), str(done)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for me, other in (ready, ready[::-1])]
    try:
        deadline = time.monotonic() + 300
        while all(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "neither writer answered"
            time.sleep(0.05)
        done.touch()
        outcomes = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    codes = [code for code, _, _ in outcomes]
    assert sorted(codes) == [0, 3], outcomes
    winner, loser = (procs[0], outcomes[1]) if codes[0] == 0 else (procs[1], outcomes[0])
    assert f"in use by another process (pid {winner.pid})" in loser[1], loser
    assert "may hold your own files" not in loser[1]
