"""The supervised trainer: curricula advance, run folder contents, exact resume, the command's errors."""

import json
import os

import pytest
import torch

from baselines.cli import main
from baselines.run_folder import check_resume_config, restore_last, save_last
from baselines.trainer import RunFolderError, TrainConfig, Trainer, finished_summary, train
from conftest import requires_cuda


def tiny(**overrides) -> TrainConfig:
    base = dict(hidden_size=32, batch_size=64, eval_every=50, eval_batches=4, max_steps=1500, device="cpu",
                seed=0, threshold=0.9)
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture(autouse=True)
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


class Killed(Exception):
    """Stands in for a kill of the process."""


def test_multi_head_curriculum_advances_twice_then_resumes(tmp_path, device):
    """On the device: two new heads (N=3, N=4: add_head with the run's CPU generator), a kill, then
    --resume continues the same run there to the target."""
    config = tiny(curriculum="multi", target_n=4, device=str(device))
    trainer = Trainer(config, tmp_path / "run")

    def kill_after_second_advance(line):
        if trainer.model.ns == [2, 3, 4]:
            raise Killed

    with pytest.raises(Killed):
        trainer.run(kill_after_second_advance)
    killed_at = trainer.step
    resumed = Trainer(config, tmp_path / "run", resume=True)
    assert resumed.step == killed_at and resumed.model.ns == resumed.curriculum.ns == [2, 3, 4]
    assert {p.device.type for p in resumed.model.parameters()} == {device.type}
    summary = resumed.run()
    assert summary["max_n"] == 4 and summary["stopped_because"] == "target_reached"
    assert list(summary["steps_to_n"]) == ["2", "3", "4"] and summary["steps_to_n"]["3"] <= killed_at
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "metrics.jsonl", "summary.json", "checkpoints", "last"} <= files
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["n002", "n003", "n004"]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(50, summary["steps"] + 1, 50))  # none lost or doubled
    assert {"step", "time", "ns", "accuracy", "loss", "tau_mean", "tau_min", "tau_max"} <= set(lines[0])
    assert lines[-1]["ns"] == [2, 3, 4] and min(lines[-1]["accuracy"].values()) > 0.9
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved == summary and {"max_n", "steps", "seconds", "stopped_because"} <= set(saved)


def test_paper_config_multi_head_run_advances(tmp_path, device):
    """The paper's configuration (SGD, clipping, 98% rule) advances its multi-head curriculum on the
    device: at the paper's sizes on CUDA (issue 12's crash), at small sizes on the CPU."""
    sizes = {} if device.type == "cuda" else dict(hidden_size=32, batch_size=64, eval_every=50, eval_batches=4)
    summary = train(TrainConfig(target_n=3, max_steps=6000, device=str(device), **sizes), tmp_path / "run")
    assert summary["max_n"] == 3 and list(summary["steps_to_n"]) == ["2", "3"]


@requires_cuda
def test_same_seed_same_initial_network_on_cpu_and_cuda(tmp_path):
    """The device rule: one seed, the same weights and new heads on CPU and on CUDA."""
    cpu, cuda = (Trainer(tiny(device=d), tmp_path / d) for d in ("cpu", "cuda"))
    for trainer in (cpu, cuda):
        trainer.model.add_head(3, generator=trainer.generator)
    assert next(cuda.model.parameters()).device.type == "cuda"
    for (name, a), (_, b) in zip(cpu.model.state_dict().items(), cuda.model.state_dict().items()):
        assert torch.equal(a, b.cpu()), name
    assert torch.equal(cpu.generator.get_state(), cuda.generator.get_state())


def test_single_head_curriculum_reuses_one_readout(tmp_path):
    summary = train(tiny(curriculum="single", task="dms", target_n=4, p=0.5), tmp_path / "run")
    assert summary["max_n"] == 4
    import agents

    model = agents.load(tmp_path / "run" / "checkpoints" / "n004")
    assert model.ns == [4]  # the one head, moved along from N=2
    assert agents.load(tmp_path / "run" / "checkpoints" / "n002").ns == [2]


def test_budget_stops_the_run(tmp_path):
    summary = train(tiny(max_steps=60, eval_every=30), tmp_path / "run")
    assert summary["stopped_because"] == "max_steps" and summary["steps"] == 60


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    config = tiny(max_steps=400, eval_every=50, curriculum="multi")
    full = train(config, tmp_path / "full")
    train(tiny(max_steps=200, eval_every=50, curriculum="multi"), tmp_path / "split")
    # simulate a kill after the last saved state: a stray metrics line that must be dropped
    with open(tmp_path / "split" / "metrics.jsonl", "a") as f:
        f.write('{"step": 999}\n')
    resumed = train(config, tmp_path / "split", resume=True)
    strip = lambda path: [{k: v for k, v in json.loads(line).items() if k != "time"}
                          for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert strip(tmp_path / "split") == strip(tmp_path / "full")
    assert resumed["max_n"] == full["max_n"] and resumed["steps"] == full["steps"]
    assert resumed["steps_to_n"] == full["steps_to_n"]


def snapshot(folder):
    """Every file under ``folder`` (but the lock, which records the last holder's pid): bytes and mtime."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_resume_of_a_finished_run_changes_nothing_unless_the_budget_grows(tmp_path, device):
    run = tmp_path / "run"
    summary = train(tiny(max_steps=60, eval_every=30, device=str(device)), run)
    before = snapshot(run)
    trainer = Trainer(tiny(max_steps=60, eval_every=30, device=str(device)), run, resume=True)
    assert trainer.finished == summary and "is finished" in trainer.resume_note and "60 steps" in trainer.resume_note
    assert trainer.run() == summary and snapshot(run) == before
    assert trainer.run() == summary  # the lock was released: the folder can be opened again
    Trainer(tiny(max_steps=60, eval_every=30, device=str(device)), run, resume=True).close()
    more = train(tiny(max_steps=90, eval_every=30, device=str(device)), run, resume=True)
    assert more["steps"] == 90 and more["stopped_because"] == "max_steps"
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [30, 60, 90]


@pytest.mark.parametrize("stopped, steps, seconds, config, finished", [
    ("target_reached", 500, 9.0, dict(max_steps=10**6), True),
    ("max_steps", 60, 9.0, dict(max_steps=60), True),
    ("max_steps", 60, 9.0, dict(max_steps=61), False),
    ("max_steps", 60, 9.0, dict(max_steps=61, max_seconds=9.0), True),  # the time budget is used too
    ("max_seconds", 60, 9.0, dict(max_seconds=9.0), True),
    ("max_seconds", 60, 9.0, dict(max_seconds=10.0), False),
    ("max_seconds", 60, 9.0, dict(max_seconds=None), False),
    ("interrupted", 60, 9.0, dict(max_steps=60), False),
    ("non_finite", 60, 9.0, dict(max_steps=60), False),
])
def test_finished_summary_says_whether_the_budget_is_used(tmp_path, stopped, steps, seconds, config, finished):
    summary = {"stopped_because": stopped, "steps": steps, "seconds": seconds, "max_n": 3}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert finished_summary(tmp_path, tiny(**config)) == (summary if finished else None)
    (tmp_path / "summary.json").write_text("{torn")
    assert finished_summary(tmp_path, tiny(**config)) is None  # a damaged summary: the resume trains on


@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_result_files_keep_the_users_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        train(tiny(max_steps=30, eval_every=30, target_n=2, threshold=0.01), tmp_path / "run")
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    suffixes = {p.suffix for p in files}
    assert {".json", ".jsonl", ".safetensors"} <= suffixes and any("checkpoints" in p.parts for p in files)
    assert {p.relative_to(tmp_path): oct(p.stat().st_mode & 0o777) for p in files} == {
        p.relative_to(tmp_path): oct(0o666 & ~umask) for p in files}
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_resume_before_the_first_saved_state_starts_again(tmp_path):
    Trainer(tiny(), tmp_path / "run").close()  # a run killed before its first evaluation: nothing to lose
    trainer = Trainer(tiny(), tmp_path / "run", resume=True)
    trainer.close()
    assert trainer.step == 0 and (tmp_path / "run" / "metrics.jsonl").read_text() == ""


def test_existing_folder_is_not_overwritten_unless_asked(tmp_path):
    run = tmp_path / "run"
    train(tiny(max_steps=10, eval_every=10), run)
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(RunFolderError, match="not empty"):
        Trainer(tiny(max_steps=10, eval_every=10), run)
    assert (run / "metrics.jsonl").read_text() == before
    Trainer(tiny(max_steps=10, eval_every=10), run, overwrite=True)
    assert (run / "metrics.jsonl").read_text() == ""


def test_resume_checks_folder_and_config(tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        Trainer(tiny(), tmp_path / "nothing", resume=True)
    train(tiny(max_steps=10, eval_every=10), tmp_path / "run")
    with pytest.raises(RunFolderError, match=r"differs in \['hidden_size'\]"):
        Trainer(tiny(max_steps=10, eval_every=10, hidden_size=16), tmp_path / "run", resume=True)


def test_last_is_swapped_in_whole_with_the_old_copy_as_fallback(tmp_path):
    def read(folder):
        text = (folder / "state").read_text()
        if text == "damaged":
            raise ValueError(f"{folder / 'state'} is damaged")
        return text

    assert restore_last(tmp_path, read) is None  # nothing saved yet
    for text in ("1", "2"):
        save_last(tmp_path, lambda folder: (folder / "state").write_text(text))
    assert restore_last(tmp_path, read) == (tmp_path / "last", "2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last", "last.old"]  # the previous state is kept

    def killed(folder):
        (folder / "state").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_last(tmp_path, killed)
    assert restore_last(tmp_path, read) == (tmp_path / "last", "2")  # a half-written last.new/ is ignored
    (tmp_path / "last" / "state").write_text("damaged")
    assert restore_last(tmp_path, read) == (tmp_path / "last.old", "1")  # a damaged last/ falls back
    (tmp_path / "last.old" / "state").write_text("damaged")
    with pytest.raises(RunFolderError, match=r"every saved state is damaged: .*last/state is damaged; "
                                             r".*last.old/state is damaged"):
        restore_last(tmp_path, read)


def test_resume_refuses_a_folder_of_the_other_command_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"env_id": "NDMS-v0", "n": 2}))
    with pytest.raises(RunFolderError, match=r"run folder of `memory-envs rl`; continue it with memory-envs rl "):
        check_resume_config(tmp_path, tiny().to_json(), may_change=())
    (tmp_path / "config.json").write_text(json.dumps(tiny().to_json()))
    with pytest.raises(RunFolderError, match=r"run folder of `memory-envs train`; continue it with memory-envs train "):
        check_resume_config(tmp_path, {"env_id": "NDMS-v0", "n": 2}, may_change=())


def test_resume_config_check_counts_fields_on_either_side(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"a": 1, "budget": 5, "gone": 0}))
    check_resume_config(tmp_path, {"a": 1, "budget": 9, "gone": 0}, may_change=("budget",))
    with pytest.raises(RunFolderError, match=r"differs in \['a', 'gone'\]"):
        check_resume_config(tmp_path, {"a": 2, "budget": 5}, may_change=("budget",))
    # a field the folder lacks: an older version wrote it, and the line says so (issue 34, point 7)
    with pytest.raises(RunFolderError, match=r"written by an older memory-envs \(its config.json lacks \['new'\]"):
        check_resume_config(tmp_path, {"a": 2, "budget": 5, "gone": 0, "new": 1}, may_change=("budget",))


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(task="copy"), "task must be one of"),
        (dict(curriculum="spiral"), "kind must be one of"),
        (dict(core="no_such_core"), "core must be one of"),
        (dict(optimizer="rmsprop"), "optimizer must be one of"),
        (dict(hidden_size=0), "hidden_size must be a positive integer"),
        (dict(max_steps=0), "max_steps must be a positive integer"),
        (dict(lr=0.0), "lr must be > 0"),
        (dict(max_seconds=0), "max_seconds must be > 0"),
        (dict(task="dms", start_n=1), "start_n must be an integer >= 2"),
        (dict(device="tpu"), "device must be"),
    ],
)
def test_config_bad_input(overrides, words):
    with pytest.raises(ValueError, match=words):
        tiny(**overrides).validate()


def test_command_trains_and_prints_summary(tmp_path, capsys):
    code = main(["train", "--hidden-size", "32", "--batch-size", "64", "--eval-every", "50", "--eval-batches", "4",
                 "--target-n", "3", "--threshold", "0.9", "--device", "cpu", "--quiet",
                 "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    assert "largest N solved: 3" in out and "stopped because: target_reached" in out
    for name in ("accuracy.png", "n_over_steps.png", "tau_per_checkpoint.png"):
        assert (tmp_path / "run" / name).read_bytes()[:4] == b"\x89PNG"
    before = snapshot(tmp_path / "run")
    assert main(["train", "--hidden-size", "32", "--batch-size", "64", "--eval-every", "50", "--eval-batches", "4",
                 "--target-n", "3", "--threshold", "0.9", "--device", "cpu", "--quiet", "--resume",
                 "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "is finished, it solved its target N=3; nothing was changed" in out and "stopped because: target_reached" in out
    assert snapshot(tmp_path / "run") == before  # no training, no figure rewritten


def test_plot_command_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_reproduce_smoke_writes_table_and_resumes(tmp_path, capsys):
    from baselines.reproduce import reproduce

    out = tmp_path / "repro"
    assert main(["reproduce", "--scale", "smoke", "--out", str(out)]) == 0
    assert "training 4 networks as one population (0 resuming)" in capsys.readouterr().out
    table = (out / "reproduce.md").read_text()
    assert table.count("\n") == 10 and "| leaky | parity | single | 0 |" in table and "| dms | multi | 0 |" in table
    assert "| gru | parity | multi | 0 |" in table and "| lstm | parity | single | 0 |" in table
    summaries = {(s["task"], s["curriculum"]): s for s in
                 (json.loads((out / f"{t}-{c}" / "summary.json").read_text())
                  for t, c in [("parity", "single"), ("parity", "multi"), ("dms", "single"), ("dms", "multi")])}
    assert all(s["steps"] == 60 for s in summaries.values())  # the same budget each
    rows = (out / "reproduce.csv").read_text().splitlines()
    assert rows[0] == "core,task,curriculum,seed,n,steps_to_n,tau_mean_at_n"
    assert len(rows) - 1 == sum(len(s["steps_to_n"]) for s in summaries.values())
    assert (out / "n_over_steps_parity.png").exists()
    logs = []
    again = reproduce("smoke", out, log=logs.append)  # finished runs are kept, not retrained
    assert sum("done earlier" in line for line in logs) == 8 and not any(line.startswith("training") for line in logs)
    assert logs[-1].startswith("claims table: ")  # the claims table is written again from the finished runs
    assert [s["steps"] for s in again] == [60] * 8


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--hidden-size", "0"], "--hidden-size must be a positive integer"),
        (["--max-steps", "0"], "--max-steps must be a positive integer"),
        (["--resume"], "not a run folder"),
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--device", "tpu"], "device"),
    ],
)
def test_command_user_errors_exit_2_without_traceback(tmp_path, capsys, argv, words):
    code = main(["train", "--quiet", "--run-dir", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err


def test_command_rejects_unknown_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--task", "copy"])
    assert exit_info.value.code == 2 and "argument --task: task must be one of" in capsys.readouterr().err
    assert main(["train", "--core", "no_such_core", "--quiet"]) == 2
    assert "core must be one of" in capsys.readouterr().err
    assert main(["train", "--core-option", "novalue", "--quiet"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    for command in ("train", "rl"):  # one argument type checks --threads for every command
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--threads", "0"])
        assert exit_info.value.code == 2 and "expected a positive integer, got '0'" in capsys.readouterr().err


def test_reproduce_command_rejects_bad_budget(tmp_path, capsys):
    assert main(["reproduce", "--scale", "smoke", "--max-seconds", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--max-seconds must be > 0" in capsys.readouterr().err
    assert main(["reproduce", "--scale", "smoke", "--device", "tpu", "--out", str(tmp_path / "r")]) == 2
    assert "device must be" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # checked before anything is written
