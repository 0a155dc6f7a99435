"""Trust (issue 13): opening a run folder or a checkpoint runs no code, no command destroys a user's files,
bad options change nothing on disk, damaged files get clear errors (or the fallback), sizes are checked
before allocating, and non-finite numbers stop a run."""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import agents
import memory_envs
from agents.checkpoint import CheckpointError
from baselines.cli import main
from baselines.run_folder import MARKER, RunFolderError, RunLock, append_metrics, read_metrics
from baselines.trainer import TrainConfig, Trainer, train
from memory_envs import make_batch, sizes, tasks

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # example_core
torch.set_num_threads(1)


def tiny(**overrides) -> TrainConfig:
    base = dict(hidden_size=8, batch_size=16, eval_every=10, eval_batches=1, max_steps=20, device="cpu", seed=0,
                max_seconds=None)
    base.update(overrides)
    return TrainConfig(**base)


TINY_ARGV = ["--hidden-size", "8", "--batch-size", "16", "--eval-every", "10", "--eval-batches", "1",
             "--max-steps", "20", "--device", "cpu", "--quiet", "--no-plots"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 20-step run (evaluations at 10 and 20: last/ and last.old/ both hold a state)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train(tiny(), run)
    return run


@pytest.fixture
def run(finished, tmp_path) -> Path:
    """A fresh copy of the finished run."""
    return Path(shutil.copytree(finished, tmp_path / "run"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".lock"}


def cli_train(argv, capsys) -> tuple[int, str]:
    try:
        code = main(["train", *TINY_ARGV, *argv])
    except SystemExit as stop:  # an argument type's refusal (argparse), one line as the others
        code = stop.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# ----- 1. no code runs from files ---------------------------------------------------------------------
class Payload:
    """A pickle that would create ``path`` when unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_resume_state_is_safetensors_and_json_and_ignores_a_planted_pickle(run, tmp_path):
    assert {p.name for p in (run / "last").iterdir()} == {"model.json", "model.safetensors", "trainer.json",
                                                           "trainer.safetensors"}
    sentinel = tmp_path / "pwned"
    for name in ("trainer.pt", "rng.pt"):
        (run / "last" / name).write_bytes(pickle.dumps(Payload(sentinel)))
    # never read; and a resume refuses to rotate them away with last.old/ (issue 32: it deletes only what runs write)
    with pytest.raises(RunFolderError, match=r"holds last/rng.pt, and 1 more"):
        train(tiny(max_steps=30), run, resume=True)
    assert not sentinel.exists()
    for name in ("trainer.pt", "rng.pt"):
        (run / "last" / name).unlink()
    summary = train(tiny(max_steps=30), run, resume=True)
    assert summary["steps"] == 30 and not sentinel.exists()


RESTRICTED_UNPICKLERS = {"baselines/authors.py"}
"""The one module that reads a pickle: the authors' stats.npy, through an Unpickler whose find_class admits
numpy's array reconstructors only (tests/test_authors.py feeds it a crafted file)."""


def test_no_module_unpickles_or_loads_with_weights_only_false():
    for package in ("agents", "baselines", "memory_envs"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            where = path.relative_to(ROOT).as_posix()
            for node in ast.walk(tree):
                if isinstance(node, ast.keyword) and node.arg == "weights_only":
                    assert getattr(node.value, "value", None) is True, f"{path}: weights_only=False"
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                    if any(n.split(".")[0] in ("pickle", "dill", "cloudpickle") for n in names):
                        assert where in RESTRICTED_UNPICKLERS, f"{path} imports a pickle module"
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                        and getattr(node.func.value, "id", "") == "torch":
                    assert any(k.arg == "weights_only" for k in node.keywords), f"{path}: torch.load without weights_only=True"
                if isinstance(node, ast.ClassDef) and where in RESTRICTED_UNPICKLERS:
                    if any(getattr(b, "attr", None) == "Unpickler" for b in node.bases):
                        assert any(isinstance(f, ast.FunctionDef) and f.name == "find_class" for f in node.body), \
                            f"{path}: an Unpickler without a restricting find_class"


def test_checkpoint_naming_an_import_path_is_refused_unless_the_caller_opts_in(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "download"
    core = agents.make_core("example_core:ElmanCore", 1, 4, generator=torch.Generator().manual_seed(0))
    agents.save(agents.MultiHeadModel(core, [2]), folder)
    sentinel = tmp_path / "ran"
    (folder / "helper_core.py").write_text(f"open({str(sentinel)!r}, 'w').close()\nfrom example_core import "
                                           "ElmanCore as Core\n")
    meta = json.loads((folder / "model.json").read_text())
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    for kind in ("helper_core:Core", "this:Zen"):
        meta["config"]["core"]["kind"] = kind
        (folder / "model.json").write_text(json.dumps(meta))
        with pytest.raises(CheckpointError, match=r"names the external core .*core_class=.*trust_import=True"):
            agents.load(".")
    assert not sentinel.exists() and "Zen of Python" not in capsys.readouterr().out and "this" not in sys.modules
    from example_core import ElmanCore

    assert agents.load(".", core_class=ElmanCore).ns == [2]  # the caller names the class: nothing imported
    assert not sentinel.exists()
    meta["config"]["core"]["kind"] = "helper_core:Core"
    (folder / "model.json").write_text(json.dumps(meta))
    assert agents.load(".", trust_import=True).ns == [2] and sentinel.exists()  # an explicit opt-in imports


# ----- 2. --overwrite never destroys a user's files ---------------------------------------------------
def test_overwrite_refuses_a_folder_of_user_files(tmp_path, capsys):
    thesis = tmp_path / "mythesis"
    (thesis / "chapters").mkdir(parents=True)
    (thesis / "chapters" / "ch1.tex").write_text("\\chapter{One}")
    (thesis / "results.csv").write_text("a,b\n1,2\n")
    before = snapshot(thesis)
    code, err = cli_train(["--run-dir", str(thesis), "--overwrite"], capsys)
    assert code == 2 and "not a run folder made by memory-envs" in err and snapshot(thesis) == before


def test_overwrite_refuses_the_current_folder_and_its_parents(run, monkeypatch, capsys):
    before = snapshot(run)
    monkeypatch.chdir(run)
    (run / "checkpoints" / "n002").mkdir(exist_ok=True)
    for target in (".", str(run), str(run.parent)):
        code, err = cli_train(["--run-dir", target, "--overwrite"], capsys)
        assert code == 2 and "overwrite refuses" in err
    assert snapshot(run) == before


def test_overwrite_refuses_a_run_folder_holding_other_files(run, capsys):
    (run / "notes.txt").write_text("my notes")
    before = snapshot(run)
    code, err = cli_train(["--run-dir", str(run), "--overwrite"], capsys)
    assert code == 2 and "holds files no run writes (notes.txt)" in err and snapshot(run) == before


def test_overwrite_with_a_bad_option_changes_nothing(run, capsys):
    before = snapshot(run)
    code, err = cli_train(["--run-dir", str(run), "--overwrite", "--core-option", "activaton=tanh"], capsys)
    assert code == 2 and "activaton" in err and snapshot(run) == before


def test_overwrite_replaces_a_run_folder_of_this_project(run, capsys):
    code, _ = cli_train(["--run-dir", str(run), "--overwrite", "--max-steps", "10"], capsys)
    assert code == 0 and (run / MARKER).is_file() and len(read_metrics(run)) == 1


# ----- 3. --resume without a saved state, --resume --overwrite -----------------------------------------
def test_resume_without_saved_state_is_an_error_that_loses_nothing(run, capsys):
    shutil.rmtree(run / "last")
    shutil.rmtree(run / "last.old")
    before = snapshot(run)
    code, err = cli_train(["--run-dir", str(run), "--resume", "--max-steps", "40"], capsys)
    assert code == 2 and f"cannot resume {run}: it has no saved state" in err and "overwrite" in err
    assert snapshot(run) == before


def test_resume_and_overwrite_together_are_refused(run, capsys):
    before = snapshot(run)
    code, err = cli_train(["--run-dir", str(run), "--resume", "--overwrite"], capsys)
    assert code == 2 and "--resume and --overwrite exclude each other" in err and snapshot(run) == before


# ----- 4. one writer per run folder; benchmark workers die with their parent ---------------------------
def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    first = Trainer(tiny(), tmp_path / "run")
    with pytest.raises(RunFolderError, match=f"in use by another process \\(pid {os.getpid()}\\)"):
        Trainer(tiny(), tmp_path / "run", resume=True)
    probe = "from baselines.run_folder import RunLock; import sys; RunLock(__import__('pathlib').Path(sys.argv[1]))"
    other = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "run")], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert other.returncode != 0 and f"pid {os.getpid()}" in other.stderr
    first.run()  # runs to the end, then releases the lock
    Trainer(tiny(max_steps=30), tmp_path / "run", resume=True).close()


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_benchmark_workers_die_with_a_killed_parent(tmp_path):
    out = tmp_path / "bench"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from baselines.benchmark import BenchmarkSpec, run_benchmark
        spec = BenchmarkSpec(cores=("leaky",), tasks=("dms",), curricula=("single",), seeds=(0,), max_steps=10**6,
                             max_seconds=300.0, hidden_size=4, eval_every=5, eval_batches=1, workers=1)
        run_benchmark(spec, {str(out)!r})
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)})
    run_dir = out / "runs" / "leaky-dms-single-s0"
    try:
        deadline = time.monotonic() + 120
        while not ((run_dir / "last").is_dir() and (run_dir / ".lock").is_file()
                   and (run_dir / ".lock").read_text().strip().isdigit()):  # the pid may not be written yet
            assert time.monotonic() < deadline and parent.poll() is None, "the worker did not start training"
            time.sleep(0.2)
        worker = int((run_dir / ".lock").read_text())
        assert worker != parent.pid and alive(worker)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30
    while alive(worker):
        assert time.monotonic() < deadline, f"worker {worker} outlived its killed parent"
        time.sleep(0.1)
    # The dead worker's lock goes with its last thread (its main thread shows as a zombie while the
    # others are still exiting): a rerun may then resume the folder.
    while True:
        try:
            RunLock(run_dir).release()
            break
        except RunFolderError:
            assert time.monotonic() < deadline, "the killed worker's lock was never released"
            time.sleep(0.1)


# ----- 5. every option is checked before the folder is written ----------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--tau-init", "3", "2"], "--tau-init"),
    (["--core-option", "foo=1"], "foo"),
    (["--momentum", "-1"], "--momentum must be >= 0"),
    (["--momentum", "nan"], "argument --momentum: expected a finite number, got 'nan'"),
    (["--seed", "-1"], "--seed must be an integer in [0, 2**63)"),
    (["--seed", str(2**64)], "--seed must be"),
    (["--lr", "inf"], "argument --lr: expected comma-separated finite numbers, got 'inf'"),
    (["--clip-grad", "0"], "--clip-grad must be > 0"),
    (["--target-n", "1"], "--target-n must be an integer >= 2"),
    (["--window", "0"], "window"),
    (["--core", "leaky", "--tau-param", "softplus", "--tau-init", "0.5", "2"], "--tau-init"),
])
def test_bad_options_leave_no_folder_behind(tmp_path, capsys, argv, words):
    code, err = cli_train(["--run-dir", str(tmp_path / "run"), *argv], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, words", [(["--seed", "-1"], "--seed"), (["--tau-init", "3", "2"], "--tau-init"),
                                         (["--n-max", "0", "--curriculum", "single"], "--n-max")])
def test_bad_rl_options_leave_no_folder_behind(tmp_path, capsys, argv, words):
    pytest.importorskip("sb3_contrib")
    assert main(["rl", "--run-dir", str(tmp_path / "run"), "--quiet", *argv]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "run").exists()


# ----- 6. damaged files -------------------------------------------------------------------------------
def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "model.safetensors cut": lambda last: cut(last / "model.safetensors"),
    "model.safetensors garbage": lambda last: (last / "model.safetensors").write_bytes(b"\x00" * 64),
    "trainer.safetensors cut": lambda last: cut(last / "trainer.safetensors"),
    "trainer.json cut": lambda last: cut(last / "trainer.json"),
    "trainer.json garbled field": lambda last: (last / "trainer.json").write_text(
        (last / "trainer.json").read_text().replace('"step": 20', '"step": "twenty"')),
    "trainer.json a list": lambda last: (last / "trainer.json").write_text("[]"),
    "trainer.json wrong tensor": lambda last: (last / "trainer.json").write_text(
        (last / "trainer.json").read_text().replace('"$tensor": "t0"', '"$tensor": "t999"')),
    "model.json config 5": lambda last: (last / "model.json").write_text(json.dumps(
        {**json.loads((last / "model.json").read_text()), "config": 5})),
    "model.json a list": lambda last: (last / "model.json").write_text("[1, 2]"),
    "model.json missing": lambda last: (last / "model.json").unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_last_falls_back_to_last_old(run, damage):
    DAMAGE[damage](run / "last")
    trainer = Trainer(tiny(max_steps=30), run, resume=True)
    assert trainer.resumed_from == run / "last.old" and trainer.step == 10
    assert len(read_metrics(run)) == 1  # the line after the older state is dropped
    assert trainer.run()["steps"] == 30


def test_every_saved_state_damaged_names_each_file(run, capsys):
    cut(run / "last" / "model.safetensors")
    (run / "last.old" / "trainer.json").write_text("{not json")
    before = snapshot(run)
    code, err = cli_train(["--run-dir", str(run), "--resume", "--max-steps", "30"], capsys)  # to train on
    assert code == 2 and "every saved state is damaged" in err
    assert f"{run / 'last' / 'model.safetensors'} is not a readable safetensors file" in err
    assert f"{run / 'last.old' / 'trainer.json'} is not valid JSON" in err
    assert snapshot(run) == before


@pytest.mark.parametrize("text, words", [("[1, 2]", "must hold a JSON dict, found list"),
                                         ("{\"task\": ", "is not valid JSON")])
def test_a_damaged_config_json_is_named(run, capsys, text, words):
    (run / "config.json").write_text(text)
    code, err = cli_train(["--run-dir", str(run), "--resume"], capsys)
    assert code == 2 and f"{run / 'config.json'}" in err and words in err


def test_a_torn_metrics_line_is_cut_on_resume_and_plot_reads_the_rest(run, capsys):
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 30, "acc')  # killed mid-write
    assert main(["plot", str(run)]) == 0  # the torn line is left out
    trainer = Trainer(tiny(max_steps=30), run, resume=True)
    assert (run / "metrics.jsonl").read_text().endswith("}\n") and len(read_metrics(run)) == 2
    trainer.run()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [10, 20, 30]


def test_metrics_shorter_than_the_saved_state_or_garbled_is_refused(run, capsys):
    metrics = run / "metrics.jsonl"
    first, second = metrics.read_text().splitlines()
    for text, words in ((first + "\n", "holds 1 complete lines but the saved state"),
                        (first + "\nnot json\n", "line 2: not valid JSON")):
        metrics.write_text(text)
        code, err = cli_train(["--run-dir", str(run), "--resume", "--max-steps", "40"], capsys)
        assert code == 2 and str(metrics) in err and words in err and metrics.read_text() == text


def test_summary_is_removed_when_a_resume_trains_on_and_rewritten_when_it_stops(run):
    class Killed(Exception):
        pass

    def kill(line):
        raise Killed

    with pytest.raises(Killed):
        Trainer(tiny(max_steps=40), run, resume=True).run(kill)
    assert not (run / "summary.json").exists()  # no stale summary beside the longer metrics
    summary = Trainer(tiny(max_steps=40), run, resume=True).run()
    assert json.loads((run / "summary.json").read_text()) == summary and summary["steps"] == 40


CHECKPOINT_DAMAGE = [
    ("model.json", "{", "is not valid JSON"),
    ("model.json", "[]", "must hold a JSON object"),
    ("model.json", {"config": 5}, "config must be an object"),
    ("model.json", {"dtype": "pickle"}, "dtype must be one of"),
    ("model.json", {"format_version": 99}, r"saved by a newer memory-envs \(checkpoint format 99"),
    ("model.json", {"format_version": 0}, "unsupported checkpoint"),
    ("model.json", {"config": {"core": {"kind": "leaky", "input_size": 1, "hidden_size": 8}, "heads": 2}},
     "config.heads must be a list"),
    ("model.json", {"config": {"core": {"kind": "leaky", "input_size": 1, "hidden_size": 8, "bogus": 1},
                               "heads": [2]}}, "does not build a model"),
    ("model.json", {"config": {"core": {"kind": "leaky", "input_size": 1, "hidden_size": 10**6}, "heads": [2]}},
     r"hidden_size 1000000 \(at least 1000001000000 values"),  # 4 TB if it were allocated before the check
    ("model.json", {"config": {"core": {"kind": "leaky", "input_size": 1, "hidden_size": 4}, "heads": [2]}},
     "wrong shapes"),
    ("model.safetensors", b"", "is not a readable safetensors file"),
    ("model.safetensors", "cut", "is not a readable safetensors file"),
]


FORMAT_1_TENSORS = {"mamba": ["core.norms.0.bias", "core.norm_out.bias"],  # LayerNorm before RMSNorm
                    "deltanet": ["core.blocks.0.conv.bias"]}  # its convolution had a bias
"""The tensors that checkpoints of format 1 held and this version's cores do not."""


def as_format_1(folder: Path, tensors: list[str]) -> None:
    """Make the checkpoint in ``folder`` one saved by the version before Mamba's and DeltaNet's last change."""
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    for name in tensors:
        like = name.replace(".bias", ".weight")
        weights[name] = torch.zeros(weights[like].shape[0])
    save_file(weights, folder / "model.safetensors")
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "format_version": 1}))


@pytest.mark.parametrize("kind", FORMAT_1_TENSORS)
def test_a_checkpoint_of_an_older_version_is_refused_in_one_line(kind, device, tmp_path):
    """Issue 34, point 7: not a shape error, but which version saved it and what to do."""
    folder = tmp_path / "old"
    agents.save(agents.MultiHeadModel(agents.make_core(kind, input_size=1, hidden_size=8), [2]).to(device), folder)
    assert json.loads((folder / "model.json").read_text())["format_version"] == 2
    as_format_1(folder, FORMAT_1_TENSORS[kind])
    with pytest.raises(agents.CheckpointVersionError) as error:
        agents.load(folder, map_location=device)
    assert str(error.value).startswith(f"{folder} was saved by an older memory-envs (format 1; this version writes 2) "
                                       f"and the '{kind}' core's weights have changed since")
    assert "train it again with this version, or load it with the version that saved it" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_format_1_checkpoint_of_an_unchanged_core_loads(finished, tmp_path, device):
    folder = Path(shutil.copytree(finished / "last", tmp_path / "ckpt"))
    as_format_1(folder, [])
    loaded = agents.load(folder, map_location=device).state_dict()
    saved = agents.load(finished / "last").state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k].cpu(), saved[k]) for k in saved)


def test_resuming_a_run_of_an_older_version_says_so_in_one_line(tmp_path, capsys):
    run_dir = tmp_path / "mamba"
    assert main(["train", *TINY_ARGV, "--core", "mamba", "--run-dir", str(run_dir), "--threads", "1"]) == 0
    for state in ("last", "last.old"):
        as_format_1(run_dir / state, FORMAT_1_TENSORS["mamba"])
    before = snapshot(run_dir)
    capsys.readouterr()
    assert main(["train", "--resume", "--run-dir", str(run_dir), "--max-steps", "40", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (f"memory-envs: error: cannot resume {run_dir}: {run_dir / 'last'} was saved by an older memory-envs "
                   "(format 1; this version writes 2) and the 'mamba' core's weights have changed since "
                   + err.split("have changed since ", 1)[1])
    assert err.count("\n") == 1 and "the version that saved it" in err and snapshot(run_dir) == before


@pytest.mark.parametrize("name, damage, words", CHECKPOINT_DAMAGE)
def test_a_damaged_checkpoint_names_the_file(finished, tmp_path, name, damage, words):
    folder = Path(shutil.copytree(finished / "last", tmp_path / "ckpt"))  # a checkpoint, and the trainer state
    path = folder / name
    if isinstance(damage, dict):
        path.write_text(json.dumps({**json.loads(path.read_text()), **damage}))
    elif damage == "cut":
        cut(path)
    else:
        path.write_bytes(damage.encode() if isinstance(damage, str) else damage)
    with pytest.raises(CheckpointError, match=words) as error:
        agents.load(folder)
    assert str(folder) in str(error.value)


# ----- 7. sizes are checked before allocating ---------------------------------------------------------
@pytest.fixture
def four_gib(monkeypatch):
    """A machine with 4 GiB available (what the issue's laptop had), whatever this one has."""
    monkeypatch.setattr(sizes, "available_bytes", lambda: 4 << 30)


def test_env_and_vector_env_sizes_are_checked_before_allocating(four_gib):
    with pytest.raises(ValueError, match=r"n/heads up to 100000000,.* needs .* bytes\) of memory"):
        gym.make("NParity-v0", n=10**8)
    with pytest.raises(ValueError, match=r"num_envs=100000\) needs"):
        gym.make_vec("NParity-v0", num_envs=10**5, vectorization_mode="vector_entry_point", n=1000)
    env = gym.make("NParity-v0", n=10**4)  # fits: 32 trials of up to 40,000 bits, as uint8
    env.reset(seed=0)
    assert env.unwrapped._block_bits.dtype == np.uint8
    with pytest.raises(ValueError, match="needs"):
        env.unwrapped.set_ns([10**8])


def test_sample_bits_draws_uint8_in_chunks_with_the_same_stream():
    length = tasks.DRAW_CHUNK + 17
    for p in (0.3, "uniform"):
        chunked = tasks.sample_bits(np.random.default_rng(1), 3, length, p)
        rng = np.random.default_rng(1)
        probs = rng.random((3, 1)) if p == "uniform" else p
        assert chunked.dtype == np.uint8 and np.array_equal(chunked, rng.random((3, length)) < probs)


def test_batch_and_trainer_sizes_are_checked_before_allocating(four_gib):
    with pytest.raises(ValueError, match=r"batch_size=100000000 with 1 Ns and sequences of up to 9 bits needs"):
        make_batch("parity", [2], 10**8, seed=0)
    with pytest.raises(ValueError, match=r"target_n.* needs"):
        tiny(target_n=10**5, hidden_size=500, batch_size=256).validate()


def test_rl_curriculum_size_is_checked_before_allocating(four_gib):
    from baselines.rl import RLConfig

    with pytest.raises(ValueError, match=r"n_max=1000000 \(a multi curriculum, 999999 action heads\).* needs"):
        RLConfig(curriculum="multi", n_max=10**6).validate()
    with pytest.raises(ValueError, match=r"n_max=3000 .* n_envs=256.* needs"):  # fits one env, not 257
        RLConfig(curriculum="multi", n_max=3000, n_envs=256, length_range=(3000, 3002)).validate()


# ----- 8. non-finite numbers stop the run -------------------------------------------------------------
def test_a_non_finite_loss_stops_the_run_and_metrics_stay_strict_json(tmp_path, capsys):
    code = main(["train", *TINY_ARGV, "--lr", "1e30", "--max-steps", "200", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "memory-envs: error: the training loss became" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped_because"] == "non_finite" and summary["steps"] < 200 and "lr" in summary["message"]

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)
    if (tmp_path / "run" / "last").exists():  # the saved state is the last finite one
        model = agents.load(tmp_path / "run" / "last")
        assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_metrics_write_non_finite_numbers_as_null(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    append_metrics(tmp_path, {"loss": float("nan"), "accuracy": {"2": float("inf")}, "ns": [2]})
    assert (tmp_path / "metrics.jsonl").read_text() == '{"loss": null, "accuracy": {"2": null}, "ns": [2]}\n'


# ----- the same for RL run folders ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def rl_finished(tmp_path_factory):
    pytest.importorskip("sb3_contrib")
    from baselines.rl import RLConfig, train_rl

    config = RLConfig(env_id="NDMS-v0", n=2, mode="every_step", p=0.5, length_range=(4, 8), hidden_size=8,
                      n_envs=4, n_steps=32, batch_size=64, n_epochs=1, total_timesteps=256, eval_every=128,
                      eval_episodes=2, seed=0)
    run = tmp_path_factory.mktemp("rl") / "run"
    train_rl(config, run)
    return config, run


def test_a_resume_of_a_finished_rl_run_says_so(rl_finished, tmp_path, capsys):
    _, finished_run = rl_finished
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    before = snapshot(run)
    assert main(["rl", "--resume", "--run-dir", str(run), "--quiet"]) == 0
    assert (f"{run} is finished, it used its timestep budget (256 timesteps); nothing was changed: a larger "
            "--total-timesteps / --max-seconds continues it") in capsys.readouterr().out
    assert snapshot(run) == before


def test_an_rl_state_of_an_older_version_that_does_not_load_is_refused_in_one_line(rl_finished, tmp_path, capsys,
                                                                                 monkeypatch):
    """Issue 34, point 7: a policy saved before its core's weights changed (simulated: the state has no
    format_version, as before it was recorded, and loading fails as a shape mismatch would) gets one line."""
    import sb3_contrib

    _, finished_run = rl_finished
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    for state in ("last", "last.old"):
        path = run / state / "state.json"
        assert json.loads(path.read_text())["format_version"] == 2
        path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "format_version"}))

    def mismatch(*args, **kwargs):
        raise RuntimeError("Error(s) in loading state_dict for RecurrentCorePolicy:\n\tsize mismatch for core.x")

    monkeypatch.setattr(sb3_contrib.RecurrentPPO, "load", mismatch)
    assert main(["rl", "--resume", "--run-dir", str(run), "--total-timesteps", "512", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (f"memory-envs: error: {run / 'last'} was saved by an older memory-envs (format 1; this version "
                   f"writes 2) and the 'leaky' core's weights have changed since ({run / 'last' / 'model.zip'} does "
                   "not load): finish the run with the version that saved it, or start it again with --overwrite\n")


RL_DAMAGE = {
    "state.json cut": lambda last: cut(last / "state.json"),
    "state.json garbled field": lambda last: (last / "state.json").write_text(json.dumps(
        {**json.loads((last / "state.json").read_text()), "metrics_lines": "two"})),
    "rng.json a list": lambda last: (last / "rng.json").write_text("[]"),
    "rng.json garbled state": lambda last: (last / "rng.json").write_text(
        (last / "rng.json").read_text().replace('"MT19937"', '"PCG64"')),
    "rng.safetensors cut": lambda last: cut(last / "rng.safetensors"),
    "model.zip cut": lambda last: cut(last / "model.zip"),
}


@pytest.mark.parametrize("damage", list(RL_DAMAGE))
def test_a_damaged_rl_last_falls_back_to_last_old(rl_finished, tmp_path, damage):
    from baselines.rl import RLRun

    config, finished = rl_finished
    run_dir = Path(shutil.copytree(finished, tmp_path / "run"))
    assert {p.name for p in (run_dir / "last").iterdir()} == {"model.zip", "state.json", "rng.json",
                                                              "rng.safetensors"}
    RL_DAMAGE[damage](run_dir / "last")
    longer = config.__class__(**{**config.__dict__, "total_timesteps": 512})
    run = RLRun(longer, run_dir, resume=True)
    run.close()
    assert run.last == run_dir / "last.old" and run.state["timesteps"] < 256
    RL_DAMAGE[damage](run_dir / "last.old")
    with pytest.raises(RunFolderError, match=r"every saved state is damaged: .*/last/.*; .*/last.old/"):
        RLRun(longer, run_dir, resume=True)


def test_rl_folders_are_locked_and_overwrite_refuses_user_files(rl_finished, tmp_path):
    from baselines.rl import RLRun

    config, finished = rl_finished
    run_dir = Path(shutil.copytree(finished, tmp_path / "run"))
    longer = config.__class__(**{**config.__dict__, "total_timesteps": 512})
    first = RLRun(longer, run_dir, resume=True)
    with pytest.raises(RunFolderError, match=f"pid {os.getpid()}"):
        RLRun(longer, run_dir, resume=True)
    first.close()
    (run_dir / "summary.json").write_text("[]")
    with pytest.raises(RunFolderError, match="summary.json must hold a JSON dict"):
        RLRun(longer, run_dir, resume=True)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "data.csv").write_text("1,2\n")
    with pytest.raises(RunFolderError, match="not a run folder made by memory-envs"):
        RLRun(config, user, overwrite=True)
    assert (user / "data.csv").read_text() == "1,2\n"


def test_a_non_finite_rl_policy_stops_the_run(rl_finished, tmp_path):
    from baselines.rl import train_rl

    config, _ = rl_finished
    summary = train_rl(config.__class__(**{**config.__dict__, "lr": 1e30}), tmp_path / "run")
    assert summary["stopped_because"] == "non_finite" and "lr" in summary["message"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == summary
    assert not (tmp_path / "run" / "model.zip").exists()  # no non-finite policy is saved


# ----- 9. a signal stops a run cleanly (issue 23, point 8) ---------------------------------------------
SIGNAL_ARGV = ["--hidden-size", "8", "--batch-size", "16", "--eval-every", "10", "--eval-batches", "1",
               "--max-steps", "1000000", "--max-seconds", "300", "--device", "cpu", "--threads", "1", "--quiet",
               "--no-plots"]


def signal_when_started(argv: list[str], folders: list[Path], signum: int, lines: int = 1
                        ) -> subprocess.CompletedProcess:
    """Run ``memory-envs ARGV`` from this tree in a process of its own, send it ``signum`` once every folder
    holds ``lines`` metrics lines (it is training), and return the ended process."""
    proc = subprocess.Popen([sys.executable, "-m", "baselines.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 180
        while not all((f / "metrics.jsonl").is_file() and (f / "metrics.jsonl").read_text().count("\n") >= lines
                      for f in folders):
            assert time.monotonic() < deadline and proc.poll() is None, f"it did not start: {proc.communicate()}"
            time.sleep(0.1)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def assert_interrupted(folder: Path, state: str = "trainer.json", count: str = "step") -> dict:
    """The folder's summary says interrupted, its lock is free and its saved state (``last/STATE``, whose
    ``count`` is the steps taken) is at the summary's step: no step after the signal is lost."""
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["stopped_because"] == "interrupted"
    RunLock(folder).release()  # free: the process let go of it
    saved = json.loads((folder / "last" / state).read_text())[count]
    assert saved == summary["steps" if count == "step" else count]
    return summary


def without_time(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


def test_sigint_stops_train_at_a_step_and_resume_goes_on_as_if_uninterrupted(tmp_path, capsys):
    run_dir = tmp_path / "run"
    ended = signal_when_started(["train", *SIGNAL_ARGV, "--run-dir", str(run_dir)], [run_dir], signal.SIGINT)
    assert ended.returncode == 130, ended.stderr
    assert "stopped by SIGINT" in ended.stdout and "Traceback" not in ended.stderr
    summary = assert_interrupted(run_dir)
    target = (summary["steps"] // 10 + 2) * 10  # two evaluations on: one of them in the interrupted block
    assert main(["train", *SIGNAL_ARGV, "--run-dir", str(run_dir), "--resume", "--max-steps", str(target)]) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["stopped_because"] == "max_steps" and resumed["steps"] == target
    train(tiny(max_steps=target), tmp_path / "uninterrupted")
    # the same losses and accuracies to the last bit: the interrupted block's steps were saved, not lost
    assert without_time(read_metrics(run_dir)) == without_time(read_metrics(tmp_path / "uninterrupted"))


def test_sigterm_stops_a_population_and_each_member_resumes(tmp_path):
    grid = tmp_path / "grid"
    members = [grid / f"parity-multi-lr0.05-s{seed}" for seed in (0, 1)]
    argv = ["train", *SIGNAL_ARGV, "--seeds", "0,1", "--run-dir", str(grid)]
    ended = signal_when_started(argv, members, signal.SIGTERM)
    assert ended.returncode == 143, ended.stderr
    summaries = [assert_interrupted(member) for member in members]
    target = max(s["steps"] for s in summaries) + 10
    hint = printed_resume_command(ended.stdout)  # the population's folder alone: its members' settings
    assert hint == ["train", "--resume", "--run-dir", str(grid)]
    assert main([*hint, "--max-steps", str(target), "--quiet", "--threads", "1"]) == 0
    for member, before in zip(members, summaries):
        after = json.loads((member / "summary.json").read_text())
        assert after["stopped_because"] == "max_steps" and after["steps"] == target > before["steps"]


def test_a_resume_of_a_finished_population_says_so_and_redraws_nothing(tmp_path, capsys):
    grid = tmp_path / "grid"
    argv = ["train", *TINY_ARGV, "--seeds", "0,1", "--run-dir", str(grid), "--threads", "1"]
    assert main([a for a in argv if a != "--no-plots"]) == 0
    pytest.importorskip("matplotlib")
    figures = {p: p.stat().st_mtime_ns for p in grid.glob("*/*.png")}
    assert figures
    capsys.readouterr()
    assert main(["train", "--resume", "--run-dir", str(grid), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"the population in {grid} is finished" in out and "figures of" not in out
    assert {p: p.stat().st_mtime_ns for p in grid.glob("*/*.png")} == figures


def test_sigint_stops_rl_with_its_state_saved_and_resume_goes_on(tmp_path):
    pytest.importorskip("sb3_contrib")
    run_dir = tmp_path / "rl"
    argv = ["rl", "--env", "NDMS-v0", "--n", "2", "--mode", "every_step", "--p", "0.5", "--length-range", "4", "8",
            "--hidden-size", "8", "--n-envs", "2", "--n-steps", "16", "--batch-size", "32", "--n-epochs", "1",
            "--eval-every", "64", "--eval-episodes", "2", "--total-timesteps", "10000000", "--threads", "1",
            "--quiet", "--run-dir", str(run_dir)]
    ended = signal_when_started(argv, [run_dir], signal.SIGINT)
    assert ended.returncode == 130, ended.stderr
    summary = assert_interrupted(run_dir, "state.json", "timesteps")
    lines = read_metrics(run_dir)
    total = summary["timesteps"] + 64
    assert main([*argv, "--resume", "--total-timesteps", str(total)]) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["stopped_because"] in ("max_timesteps", "target_reached") and resumed["timesteps"] >= total
    assert read_metrics(run_dir)[: len(lines)] == lines and len(read_metrics(run_dir)) > len(lines)


def printed_resume_command(stdout: str) -> list[str]:
    """The argv after ``memory-envs`` of the resume hint an interrupted run printed (``... `CMD` continues``)."""
    hints = re.findall(r"`(memory-envs [^`]+)` continues the run", stdout)
    assert len(hints) == 1, stdout
    return shlex.split(hints[0])[1:]


@pytest.mark.parametrize("command", ["train", "rl"])
def test_the_printed_resume_hint_works_as_printed(tmp_path, command):
    """Issue 34, point 1: the hint an interrupted run prints is run exactly as printed (settings from the
    folder, none repeated) and continues the run, at the run's own non-default settings."""
    run_dir = tmp_path / "run"
    if command == "rl":
        pytest.importorskip("sb3_contrib")
        argv = ["rl", "--env", "NDMS-v0", "--n", "3", "--mode", "every_step", "--length-range", "5", "9",
                "--hidden-size", "8", "--n-envs", "2", "--n-steps", "16", "--batch-size", "32", "--n-epochs", "1",
                "--eval-every", "64", "--eval-episodes", "2", "--total-timesteps", "10000000", "--threads", "1",
                "--quiet", "--run-dir", str(run_dir)]
        state, count = "state.json", "timesteps"
    else:
        argv = ["train", *SIGNAL_ARGV, "--task", "dms", "--curriculum", "single", "--run-dir", str(run_dir)]
        state, count = "trainer.json", "step"
    first = signal_when_started(argv, [run_dir], signal.SIGINT)
    assert first.returncode == 130, first.stderr
    before = assert_interrupted(run_dir, state, count)
    hint = printed_resume_command(first.stdout)
    assert hint == [command, "--resume", "--run-dir", str(run_dir)]
    lines = len(read_metrics(run_dir))
    # two lines more: on a loaded machine the first may be the resumed run's replay of the step it stopped at
    again = signal_when_started(hint, [run_dir], signal.SIGINT, lines=lines + 2)
    assert again.returncode == 130 and "error" not in again.stderr, again.stderr
    after = assert_interrupted(run_dir, state, count)
    assert after[count if command == "rl" else "steps"] > before[count if command == "rl" else "steps"]
    assert json.loads((run_dir / "config.json").read_text())["hidden_size"] == 8  # the run's own settings
    assert printed_resume_command(again.stdout) == hint


def test_a_resume_of_a_run_of_another_version_names_it_in_one_line(run, capsys):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "gate_bias": 1}))  # a field this version does not know
    code, err = cli_train(["--run-dir", str(run), "--resume"], capsys)
    assert code == 2 and err == (f"memory-envs: error: cannot resume {run}: {run / 'config.json'}: unknown config "
                                 "fields ['gate_bias']: written by another version of memory-envs (use that version, "
                                 "or start the run again)\n")
    del config["seed"]  # a field an older version did not record
    (run / "config.json").write_text(json.dumps(config))
    code, err = cli_train(["--run-dir", str(run), "--resume"], capsys)
    assert code == 2 and "it was written by an older memory-envs (its config.json lacks ['seed']" in err


def test_a_resume_refuses_an_option_that_differs_from_the_run(run, capsys):
    code, err = cli_train(["--run-dir", str(run), "--resume", "--core", "gru"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "--core='gru' (the run's: 'leaky')" in err and "--max-steps" in err
    assert main(["train", "--run-dir", str(run), "--resume", "--max-steps", "30", "--quiet", "--no-plots",
                 "--threads", "1"]) == 0  # a budget given beside it extends the run
    assert json.loads((run / "summary.json").read_text())["steps"] == 30


def test_a_second_signal_ends_the_process_at_once():
    script = textwrap.dedent("""
        import os, signal, time
        from baselines.interrupt import requested, stop_on_signals
        with stop_on_signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            print("first:", requested(), stop.exit_code, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
            print("not reached", flush=True)
    """)
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert ended.returncode == -signal.SIGTERM and ended.stdout == "first: True 143\n"


# ----- 10. the command's own words, and a second run of the same command (issue 23, points 3, 4, 9) -----
def test_cli_errors_name_the_flags_and_the_library_its_fields(tmp_path, capsys):
    from baselines.rl import RLConfig

    code, err = cli_train(["--run-dir", str(tmp_path / "run"), "--max-seconds", "-5"], capsys)
    assert code == 2 and err == "memory-envs: error: --max-seconds must be > 0 and finite, got -5.0\n"
    with pytest.raises(ValueError, match="^max_seconds must be > 0"):
        tiny(max_seconds=-5).validate()
    pytest.importorskip("sb3_contrib")
    assert main(["rl", "--curriculum", "multi", "--run-dir", str(tmp_path / "rl"), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("memory-envs: error: --n-max is required with a curriculum")
    with pytest.raises(ValueError, match="^n_max is required"):
        RLConfig(curriculum="multi").validate()
    assert not (tmp_path / "run").exists() and not (tmp_path / "rl").exists()


@pytest.mark.parametrize("argv, words", [
    (["train", "--optimizer", "rmsprop"], ["argument --optimizer: invalid choice: 'rmsprop'", "'sgd'", "train --help"]),
    (["train", "--no-such-option", "1"], ["unrecognized arguments: --no-such-option 1", "`memory-envs train --help`"]),
    (["plot"], ["the following arguments are required: RUN_DIR", "`memory-envs plot --help`"]),
    (["trian"], ["invalid choice: 'trian'", "'train'", "`memory-envs --help`"]),
    (["rl", "--hidden-size", "many"], ["argument --hidden-size: invalid int value: 'many'", "rl --help"]),
    (["reproduce", "--scale", "huge"], ["argument --scale: invalid choice: 'huge'", "'quick'", "reproduce --help"]),
    (["train", "--tau-init", "1"], ["argument --tau-init: expected 2 arguments", "train --help"]),
])
def test_argparse_errors_are_one_line_without_usage(argv, words, capsys):
    """Issue 34, point 4: argparse's own refusals are the one error line, naming the option (and the allowed
    values) and pointing to the command's --help, as every other refusal."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("memory-envs: error: ") and err.count("\n") == 1, err
    assert "usage" not in err and all(word in err for word in words), err


def test_plot_of_a_file_names_the_folder_to_give(run, capsys):
    assert main(["plot", str(run / "metrics.jsonl")]) == 2
    assert capsys.readouterr().err == (f"memory-envs: error: {run / 'metrics.jsonl'} is a file, not a run folder: "
                                       f"give the folder that holds it, {run}\n")


@pytest.mark.parametrize("module, argv, extra", [
    ("scipy", ["analyze", "{run}"], "analysis"),
    ("scipy", ["analyze", "{run}", "--no-plots"], "analysis"),
    ("matplotlib", ["analyze", "{run}", "--analyses", "ablation"], "plot"),
    ("matplotlib", ["plot", "{run}"], "plot"),
    ("sb3_contrib", ["rl", "--run-dir", "{tmp}/rl"], "rl"),
    ("sb3_contrib", ["benchmark", "--rl", "--out", "{tmp}/card"], "rl"),
])
def test_a_missing_optional_module_is_named_with_its_extra(module, argv, extra, run, tmp_path, monkeypatch, capsys):
    """Issue 34, point 2: a command whose optional module is missing (simulated: None in sys.modules) says
    which install brings it, in one line, before any work; nothing is written."""
    monkeypatch.setitem(sys.modules, module, None)
    before = snapshot(run)
    assert main([a.format(run=run, tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and module in err and f'in the clone, pip install -e ".[{extra}]"' in err, err
    assert snapshot(run) == before and not (tmp_path / "rl").exists() and not (tmp_path / "card").exists()


def test_train_without_matplotlib_says_which_install_draws_its_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["train", *TINY_ARGV[:-1], "--run-dir", str(tmp_path / "run"), "--threads", "1"]) == 0
    assert 'no figures: figures need matplotlib: in the clone, pip install -e ".[plot]"' in capsys.readouterr().out


def test_flag_names_leave_prose_alone():
    from baselines.cli.args import flag_names

    flags = {"resume": "--resume", "overwrite": "--overwrite", "n": "--n", "n_max": "--n-max", "seed": "--seed"}
    assert (flag_names("cannot resume runs/n_max: pass resume=True; n must be >= 2, n_max=3, seed= 4; the seed", flags)
            == "cannot resume runs/n_max: pass --resume; --n must be >= 2, --n-max=3, --seed= 4; the seed")


def test_running_train_twice_without_run_dir_starts_a_numbered_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [*TINY_ARGV, "--threads", "1"]
    assert main(["train", *argv]) == 0
    assert main(["train", *argv]) == 0
    out = capsys.readouterr().out
    first, second = Path("runs/parity-multi-leaky-h8-s0"), Path("runs/parity-multi-leaky-h8-s0-2")
    assert f"{first} holds an earlier run: this run writes {second}" in out
    assert without_time(read_metrics(first)) == without_time(read_metrics(second))  # two whole runs, one seed
    assert main(["train", *argv, "--resume", "--max-steps", "30"]) == 0  # --resume means the default folder itself
    assert json.loads((first / "summary.json").read_text())["steps"] == 30
    assert not Path("runs/parity-multi-leaky-h8-s0-3").exists()
    code, err = cli_train(["--run-dir", str(second)], capsys)  # a folder the user named is refused, in flags
    assert code == 2 and "pass --resume to continue it or --overwrite to replace it" in err


def test_a_resume_with_nothing_saved_says_it_starts_again(tmp_path, capsys):
    Trainer(tiny(), tmp_path / "run").close()  # a run killed before its first evaluation
    assert main(["train", *TINY_ARGV, "--run-dir", str(tmp_path / "run"), "--resume"]) == 0
    assert "has no saved state yet (its run stopped before its first evaluation): resume starts it again" in \
        capsys.readouterr().out
    pytest.importorskip("sb3_contrib")
    from baselines.rl import RLConfig, RLRun

    RLRun(RLConfig(hidden_size=8), tmp_path / "rl").close()
    run = RLRun(RLConfig(hidden_size=8), tmp_path / "rl", resume=True)
    run.close()
    assert "has no saved state yet" in run.resume_note


# ----- 11. small words: the version, the licence, only the options that would work, "none" for nothing solved -----
def test_version_is_the_packages_and_the_licence_file_is_there(capsys):
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0 and capsys.readouterr().out == f"memory-envs {project['version']}\n"
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_a_full_folder_is_offered_only_what_it_would_accept(tmp_path, capsys):
    """A folder of the user's own files is offered neither --resume (no run) nor --overwrite (refused); a run
    folder holding a foreign file is offered --resume only; a clean run folder both."""
    own = tmp_path / "thesis"
    own.mkdir()
    (own / "chapter1.tex").write_text("mine")
    code, err = cli_train(["--run-dir", str(own)], capsys)
    assert code == 2 and "--resume" not in err and "pass --overwrite" not in err
    assert "holds no run to resume" in err and "not a run folder made by memory-envs" in err
    run = tmp_path / "run"
    assert main(["train", *TINY_ARGV, "--run-dir", str(run), "--threads", "1"]) == 0
    capsys.readouterr()
    code, err = cli_train(["--run-dir", str(run)], capsys)
    assert code == 2 and "pass --resume to continue it or --overwrite to replace it" in err
    (run / "notes.txt").write_text("mine")
    code, err = cli_train(["--run-dir", str(run)], capsys)
    assert code == 2 and "pass --resume to continue its run, or pick another run folder" in err
    assert "pass --overwrite" not in err and "holds files no run writes (notes.txt)" in err
    assert (run / "notes.txt").read_text() == "mine" and (own / "chapter1.tex").read_text() == "mine"


def test_import_authors_names_its_options_as_flags(tmp_path, capsys):
    src = tmp_path / "weird_parity_net"
    src.mkdir()
    (src / "rnn_N2_N2").write_bytes(b"")
    assert main(["import-authors", str(src), str(tmp_path / "out")]) == 2
    assert "pass --curriculum, one of single, multi, sliding" in capsys.readouterr().err


def test_nothing_solved_reads_none_everywhere():
    from baselines.benchmark import SCORECARD_NOTES, largest_n_cell, scorecard_rows
    from baselines.cli.train import format_summary
    from baselines.run_folder import solved_text

    assert (solved_text(None), solved_text(7)) == ("none", "7")

    def result(seed, max_n):
        return {"core": "gru", "task": "dms", "curriculum": "single", "seed": seed, "max_n": max_n, "steps": 10,
                "steps_to_n": {} if max_n is None else {str(max_n): 10}, "heldout": {} if max_n is None else {str(max_n): 0.7},
                "timescales": {}}

    (nothing,) = scorecard_rows([result(0, None), result(1, None)])
    (some,) = scorecard_rows([result(0, None), result(1, 4)])
    assert (largest_n_cell(nothing), largest_n_cell(some)) == ("none", "2 [none, 4]")
    assert "counts as 0 in the median" in SCORECARD_NOTES and "Held-out accuracy can lie well below" in SCORECARD_NOTES
    summary = {"max_n": None, "task": "dms", "curriculum": "single", "core": "gru", "hidden_size": 8, "steps": 10,
               "seconds": 1.0, "stopped_because": "max_steps", "steps_to_n": {}}
    assert format_summary(summary).startswith("largest N solved: none  (dms")


def test_messages_say_an_integer_and_no_python_none(capsys, tmp_path):
    with pytest.raises(ValueError, match=r"^n must be an integer >= 2 for task 'dms', got 1$"):
        tasks.check_ns("dms", 1, argument="n")
    with pytest.raises(ValueError, match=r"^ns must be integers >= 2"):
        tasks.check_ns("dms", [3, 1])
    for argv in (["--max-seconds", "0"], ["--target-n", "1", "--task", "dms"]):
        code, err = cli_train(["--run-dir", str(tmp_path / "run"), *argv], capsys)
        assert code == 2 and "None" not in err and "integers" not in err, err
