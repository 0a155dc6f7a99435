"""Issue 32, point 5: what gave a traceback or was silently accepted is refused in one line, naming the option
(or argument) and what is allowed, before anything is written; and point 6: run-folder files are read one line at
a time (metrics.jsonl) or refused above a size and a nesting depth no file this project writes comes near."""

from __future__ import annotations

import json
import math
import tracemalloc
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import agents
import agents.checkpoint
import baselines.run_folder as run_folder
import memory_envs
from agents.checkpoint import CheckpointError
from baselines.backends import BackendConfig
from baselines.benchmark import BenchmarkSpec
from baselines.cli import main
from baselines.run_folder import RunFolderError, check_metrics, read_json, read_metrics
from baselines.trainer import TrainConfig, train
from memory_envs import make_batch
from memory_envs.curriculum import Curriculum, LengthCurriculum

torch.set_num_threads(1)

TINY = ["--hidden-size", "8", "--batch-size", "16", "--eval-every", "10", "--eval-batches", "1", "--max-steps", "20",
        "--device", "cpu", "--quiet", "--no-plots", "--threads", "1"]
RL_TINY = ["--hidden-size", "4", "--n-envs", "2", "--n-steps", "16", "--batch-size", "32", "--n-epochs", "1",
           "--total-timesteps", "64", "--eval-every", "32", "--eval-episodes", "2", "--quiet", "--threads", "1"]
CARD_TINY = ["--cores", "leaky", "--tasks", "parity", "--curricula", "single", "--max-steps", "2", "--eval-every", "1",
             "--eval-batches", "1", "--hidden-size", "4", "--timescale-steps", "10", "--workers", "1"]
UNCREATABLE = "/proc/memory-envs-test/out"
"""A folder no process can create (/proc takes no new entries)."""


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """The exit code and stderr of ``memory-envs ARGV`` (an argument type's refusal exits through argparse)."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


def assert_one_line_refusal(code: int, err: str, words: str) -> None:
    assert code == 2, err
    assert err.startswith("memory-envs: error: ") and len(err.strip().splitlines()) == 1, err
    assert words in err and "Traceback" not in err, err


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 20-step run folder."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train(TrainConfig(hidden_size=8, batch_size=16, eval_every=10, eval_batches=1, max_steps=20, device="cpu",
                      max_seconds=None), run_dir)
    return run_dir


# ----- point 5: the command line -------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["train", "--seeds", "", *TINY], "argument --seeds: expected one or more comma-separated values, got ''"),
    (["train", "--lr", "", *TINY], "argument --lr: expected comma-separated finite numbers, got ''"),
    (["train", "--threshold", "nan", *TINY], "argument --threshold: expected a finite number, got 'nan'"),
    (["train", "--tau-init", "1", "inf", *TINY], "argument --tau-init: expected a finite number, got 'inf'"),
    (["train", "--gpus-per-run", "-1", *TINY], "--gpus-per-run: only with --backend ray"),
    (["train", "--seeds", "0,1", "--cpus-per-run", "0", *TINY], "--cpus-per-run: only with --backend ray"),
    (["train", "--seeds", "0,1", "--max-retries", "-1", *TINY], "--max-retries: only with --backend ray"),
    (["rl", "--threshold", "nan", *RL_TINY], "argument --threshold: expected a finite number, got 'nan'"),
    (["rl", "--ent-coef", "inf", *RL_TINY], "argument --ent-coef: expected a finite number, got 'inf'"),
    (["rl", "--gamma", "nan", *RL_TINY], "argument --gamma: expected a finite number"),
    (["rl", *RL_TINY, "--batch-size", "3", "--n-envs", "2", "--n-steps", "8"],
     "--batch-size must be >= 2 and leave no mini-batch of 1 step"),
    (["rl", *RL_TINY, "--batch-size", "1"], "--batch-size must be >= 2"),
    (["benchmark", *CARD_TINY, "--seeds", "0,0"], "--seeds must not repeat, got [0, 0]"),
    (["benchmark", *CARD_TINY, "--max-retries", "-1"], "--max-retries: only with --backend ray"),
    (["benchmark", *CARD_TINY, "--max-seconds", "inf"], "argument --max-seconds: expected a finite number"),
    (["reproduce", "--scale", "smoke", "--gpus-per-run", "0.5"], "--gpus-per-run: only with --backend ray"),
])
def test_bad_options_are_one_line_refusals_and_write_nothing(tmp_path, capsys, monkeypatch, argv, words):
    if argv[0] == "rl":
        pytest.importorskip("sb3_contrib")
    monkeypatch.chdir(tmp_path)  # reproduce's default --out, and any default run folder, would land here
    flag = {"train": "--run-dir", "rl": "--run-dir", "benchmark": "--out", "reproduce": "--out"}[argv[0]]
    code, err = run_cli([*argv, flag, str(tmp_path / "out")], capsys)
    assert_one_line_refusal(code, err, words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option, value, words", [
    ("--cpus-per-run", "0", "--cpus-per-run must be a number > 0, got 0.0"),
    ("--gpus-per-run", "-1", "--gpus-per-run must be a number >= 0, got -1.0"),
])
def test_with_ray_the_ray_options_are_checked_before_ray_starts(tmp_path, capsys, option, value, words):
    pytest.importorskip("ray")
    code, err = run_cli(["benchmark", *CARD_TINY, "--backend", "ray", option, value, "--out", str(tmp_path / "out")],
                        capsys)
    assert_one_line_refusal(code, err, words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [
    ["benchmark", *CARD_TINY, "--out", UNCREATABLE],
    ["reproduce", "--scale", "smoke", "--out", UNCREATABLE],
    ["train", *TINY, "--run-dir", UNCREATABLE],
    ["train", *TINY, "--seeds", "0,1", "--run-dir", UNCREATABLE],
])
def test_an_output_folder_that_cannot_be_created_is_one_line(capsys, argv):
    flag = "--run-dir" if argv[0] == "train" else "--out"
    code, err = run_cli(argv, capsys)
    assert_one_line_refusal(code, err, f"{flag} must be a folder this process can create; ")
    assert "cannot be created (No such file or directory)" in err


def test_rl_folders_that_cannot_be_created_are_one_line(capsys):
    pytest.importorskip("sb3_contrib")
    code, err = run_cli(["rl", *RL_TINY, "--run-dir", UNCREATABLE], capsys)
    assert_one_line_refusal(code, err, "--run-dir must be a folder this process can create")
    code, err = run_cli(["benchmark", "--rl", "--presets", "NDMS-Easy-v0", "--policies", "gru", "--seeds", "0",
                         "--timesteps", "64", "--eval-episodes", "2", "--out", UNCREATABLE], capsys)
    assert_one_line_refusal(code, err, "--out must be a folder this process can create")


def test_analyze_refuses_bad_threads_seed_and_compare_dir(finished, tmp_path, capsys):
    code, err = run_cli(["analyze", str(finished), "--threads", "0"], capsys)
    assert_one_line_refusal(code, err, "argument --threads: expected a positive integer, got '0'")
    code, err = run_cli(["analyze", str(finished), "--eps", "0,nan"], capsys)
    assert_one_line_refusal(code, err, "argument --eps: expected comma-separated finite numbers")
    code, err = run_cli(["analyze", str(finished), "--seed", "-1", "--out", str(tmp_path / "a")], capsys)
    assert_one_line_refusal(code, err, "--seed must be an integer in [0, 2**63)")
    assert not (tmp_path / "a").exists()


def test_an_argparse_error_is_one_line_with_a_help_command_that_works(capsys):
    code, err = run_cli(["train", "--task", "copy"], capsys)
    assert_one_line_refusal(code, err, "argument --task: task must be one of parity, dms, 'running_parity' or "
                                       "'running_mod' + K")
    assert err.rstrip().endswith("(`memory-envs train --help` lists the options)")
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0 and "usage: memory-envs train" in capsys.readouterr().out


# ----- point 5: the library ------------------------------------------------------------------------------
@pytest.mark.parametrize("accuracy, words", [
    ({2: 5.0}, r"accuracy\[2\] must be an accuracy, a real number in \[0, 1\], got 5.0"),
    ({2: "0.99"}, r"accuracy\[2\] must be an accuracy, a real number in \[0, 1\], got '0.99'"),
    ({2: float("nan")}, r"accuracy\[2\] must be .* got nan"),
    ({2: True}, r"accuracy\[2\] must be .* got True"),
])
def test_curriculum_update_refuses_what_is_not_an_accuracy(accuracy, words):
    curriculum = Curriculum("multi", 2)
    with pytest.raises(ValueError, match=words):
        curriculum.update(accuracy)
    assert curriculum.ns == [2] and curriculum.solved is None  # nothing advanced
    length = LengthCurriculum("length", (3, 41))
    with pytest.raises(ValueError, match=r"accuracy\[0\] must be an accuracy"):
        length.update({0: accuracy[2]})
    assert length.advances == 0 and length.solved is None


def test_curriculum_update_still_takes_numpy_accuracies():
    curriculum = Curriculum("multi", 2)
    assert curriculum.update({2: np.float32(0.99)}) and curriculum.ns == [2, 3]


def test_make_batch_and_sb3_vec_env_name_a_bad_seed():
    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\*\*63\), got -1"):
        make_batch("parity", [2], 4, seed=-1)
    with pytest.raises(ValueError, match="^seed must be"):
        make_batch("parity", [2], 4, seed=2**64)
    assert make_batch("parity", [2], 4, seed=np.int64(3)).inputs.shape[1] == 4
    pytest.importorskip("stable_baselines3")
    with pytest.raises(ValueError, match="^seed must be an integer"):
        memory_envs.make_sb3_vec_env("NDMS-v0", 2, seed=-1, n=2)


def test_running_parity_modulus_has_an_upper_bound():
    with pytest.raises(ValueError, match=r"modulus must be an integer >= 2 and <= 127 .* got 1000000000000"):
        gym.make("RunningParity-v0", modulus=10**12)
    with pytest.raises(ValueError, match="<= 127"):
        memory_envs.RunningParityVectorEnv(num_envs=1, modulus=128)
    with pytest.raises(ValueError, match="<= 127"):
        make_batch("running_parity", None, 2, seed=0, modulus=128)
    env = gym.make("RunningParity-v0", modulus=127)  # labels up to 126 fit the envs' int8
    env.reset(seed=0)
    assert env.action_space.n == 127


def test_train_config_lists_every_task():
    with pytest.raises(ValueError, match=r"^task must be one of parity, dms, 'running_parity' or 'running_mod' \+ K, "
                                         r".*'mod_arithmetic' or 'word_' \+ a group .*; got 'foo'"):
        TrainConfig(task="foo").validate()


@pytest.mark.parametrize("changes, words", [
    (dict(seeds=(0, 0)), r"seeds must not repeat, got \[0, 0\]"),
    (dict(tasks=("parity", "parity")), "tasks must not repeat"),
    (dict(seeds=(0, -1)), r"seed must be an integer in \[0, 2\*\*63\), got -1"),
    (dict(max_seconds=math.inf), "max_seconds must be > 0 and finite, got inf"),
])
def test_benchmark_spec_refuses_repeats_and_every_bad_seed(changes, words):
    with pytest.raises(ValueError, match=words):
        BenchmarkSpec(cores=("leaky",), **changes).validate()


def test_backend_reserves_at_least_some_cpu():
    with pytest.raises(ValueError, match="cpus_per_unit must be a number > 0, got 0"):
        BackendConfig(backend="local", cpus_per_unit=0).validate()
    assert BackendConfig(backend="local", cpus_per_unit=0.5, gpus_per_unit=0).validate().cpus_per_unit == 0.5


@pytest.mark.parametrize("changes, words", [
    (dict(threshold=math.nan), r"threshold must be a float in \(0, 1\), got nan"),
    (dict(threshold=1.5), r"threshold must be a float in \(0, 1\)"),
    (dict(ent_coef=math.inf), "ent_coef must be >= 0 and finite, got inf"),
    (dict(lr=math.inf), "lr must be > 0 and finite"),
    (dict(gamma=math.nan), "gamma must be >= 0 and finite"),
    (dict(max_seconds=math.nan), "max_seconds must be > 0 and finite"),
    (dict(batch_size=1), "batch_size must be >= 2"),
    (dict(n_envs=2, n_steps=8, batch_size=3), r"rollout of n_envs \* n_steps = 16 steps .* got batch_size=3"),
])
def test_rl_config_refuses_non_finite_numbers_and_mini_batches_of_one(changes, words):
    pytest.importorskip("sb3_contrib")
    from baselines.rl import RLConfig

    with pytest.raises(ValueError, match=words):
        RLConfig(**changes).validate()


def test_a_mini_batch_of_one_step_really_makes_recurrent_ppo_non_finite(device):
    """Why RLConfig refuses it: sb3-contrib normalizes the advantages over each mini-batch; 5 steps in batches
    of 2 leave a last one of 1 step, whose standard deviation is NaN, and every weight becomes NaN. 6 steps
    (3 full mini-batches) stay finite."""
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    finite = {}
    for n_steps in (5, 6):
        venv = make_vec_env("NDMS-v0", n_envs=1, env_kwargs=dict(n=2), seed=0)
        model = RecurrentPPO("MlpLstmPolicy", venv, n_steps=n_steps, batch_size=2, n_epochs=1, seed=0,
                             policy_kwargs=dict(lstm_hidden_size=4), device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns of the one-step standard deviation
            model.learn(n_steps)
        finite[n_steps] = all(torch.isfinite(p).all().item() for p in model.policy.parameters())
    assert finite == {5: False, 6: True}


@pytest.mark.parametrize("changes, words", [
    (dict(eps=(0.0, math.nan)), r"eps values must be finite and >= 0, got \[0.0, nan\]"),
    (dict(tau_eps=(math.inf,)), r"tau_eps values must be finite and >= 0, got \[inf\]"),
])
def test_analysis_options_refuse_non_finite_eps(changes, words):
    from baselines.analysis import AnalysisOptions

    with pytest.raises(ValueError, match=words):
        AnalysisOptions(**changes).check()


def test_rl_reference_names_a_bad_seed():
    pytest.importorskip("sb3_contrib")
    from baselines.rl.scorecard import reference

    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\*\*63\), got -1"):
        reference("NDMS-Easy-v0", 2, -1)


def test_analysis_entry_points_name_a_bad_seed(device):
    from baselines.analysis import (
        AnalysisOptions, ablation, accuracy_on_ns, dimensionality, fit_accuracy, make_stream, network_timescales,
        perturbation,
    )
    from baselines.state_tracking import length_test

    generator = torch.Generator().manual_seed(0)
    model = agents.MultiHeadModel(agents.make_core("leaky", 1, 4, generator=generator), [2],
                                  generator=generator).to(device)
    stream = make_stream("parity", 2, length=20, batch_size=2)
    calls = {
        "AnalysisOptions.check": lambda: AnalysisOptions(seed=-1).check(),
        "network_timescales": lambda: network_timescales(model, trials=1, steps=10, burn_in=1, seed=-1),
        "dimensionality": lambda: dimensionality(model, trials=1, steps=10, burn_in=1, seed=-1),
        "make_stream": lambda: make_stream("parity", 2, seed=-1),
        "ablation": lambda: ablation(model, stream, k=1, seed=-1),
        "perturbation": lambda: perturbation(model, stream, seed=-1),
        "accuracy_on_ns": lambda: accuracy_on_ns(model, "parity", [2], seed=-1),
        "fit_accuracy": lambda: fit_accuracy(seed=-1),
        "length_test": lambda: length_test(model, TrainConfig(task="running_parity"), device, seed=-1),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\*\*63\), got -1"):
            call()


# ----- point 6: files read whole -------------------------------------------------------------------------
def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("argv", [["plot"], ["analyze", "--no-plots"], ["train", "--resume", *TINY, "--run-dir"]])
def test_a_config_nested_100000_deep_is_one_line(finished, tmp_path, capsys, argv):
    run_dir = Path(tmp_path / "run")
    run_dir.mkdir()
    for entry in finished.iterdir():  # the files of a finished run, with a crafted config.json
        if entry.is_file():
            (run_dir / entry.name).write_bytes(entry.read_bytes())
    (run_dir / "config.json").write_text(deep_json(100_000))
    code, err = run_cli([*argv, str(run_dir)], capsys)
    assert_one_line_refusal(code, err, "config.json is not valid JSON (nested more than 64 levels deep: not a file "
                                       "this project wrote)")


def test_json_files_are_refused_above_the_size_and_depth_caps(tmp_path, monkeypatch):
    monkeypatch.setattr(agents.checkpoint, "MAX_JSON_BYTES", 1000)
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"pad": "x" * 990}))  # valid JSON, 1,001 bytes
    with pytest.raises(RunFolderError, match="larger than 1000 bytes: not a file this project wrote"):
        read_json(path)
    path.write_text(json.dumps({"pad": "x" * 980}))
    assert read_json(path)["pad"] == "x" * 980
    path.write_text(deep_json(65))  # deeper than the cap, far below Python's recursion limit
    with pytest.raises(RunFolderError, match="nested more than 64 levels deep"):
        read_json(path, list)
    path.write_text(deep_json(64))
    assert isinstance(read_json(path, list), list)


def test_a_checkpoint_config_is_capped_too(tmp_path, device):
    model = agents.MultiHeadModel(agents.make_core("leaky", 1, 4, generator=torch.Generator()), [2],
                                  generator=torch.Generator()).to(device)
    agents.save(model, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.json").write_text(deep_json(100_000))
    with pytest.raises(CheckpointError, match="model.json is not valid JSON .nested more than 64 levels deep"):
        agents.load(tmp_path / "ckpt")


def write_lines(path: Path, lines: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + tail)


def test_a_metrics_line_longer_than_the_cap_is_refused_unread(tmp_path, monkeypatch):
    for module in (agents.checkpoint, run_folder):
        monkeypatch.setattr(module, "MAX_JSON_BYTES", 1000)
    write_lines(tmp_path / "metrics.jsonl", [{"step": 1}, {"step": 2, "pad": "x" * 2000}])
    with pytest.raises(RunFolderError, match=r"metrics.jsonl, line 2: longer than 1000 bytes, not a line this project"):
        read_metrics(tmp_path)
    with pytest.raises(RunFolderError, match="line 2: longer than 1000 bytes"):
        check_metrics(tmp_path, 2)
    check_metrics(tmp_path, 1)  # the lines after the state's count are dropped unread
    assert read_metrics(tmp_path) == [{"step": 1}]


def test_check_metrics_keeps_the_counted_lines_without_reading_the_rest(tmp_path):
    write_lines(tmp_path / "metrics.jsonl", [{"step": 1}, {"step": 2}], tail="not json\n{\"step\": 4}\n{\"torn")
    check_metrics(tmp_path, 2)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1}\n{"step": 2}\n'
    written = (tmp_path / "metrics.jsonl").stat().st_mtime_ns
    check_metrics(tmp_path, 2)  # nothing to drop: the file is left as it is
    assert (tmp_path / "metrics.jsonl").stat().st_mtime_ns == written
    with pytest.raises(RunFolderError, match="holds 2 complete lines but the saved state in None counts 3"):
        check_metrics(tmp_path, 3)


def peak_bytes(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_metrics_are_streamed_so_memory_does_not_grow_with_the_file(tmp_path):
    """A metrics.jsonl of about 8 MB (4,000 lines with a 2 KB field each): the figures' read keeps only their
    fields and check_metrics reads a line at a time, so neither holds the file (main read it whole, twice)."""
    lines = [{"step": i, "ns": [2], "accuracy": {"2": 0.5}, "tau": ["%.6f" % (i / 7)] * 200} for i in range(4000)]
    write_lines(tmp_path / "metrics.jsonl", lines)
    size = (tmp_path / "metrics.jsonl").stat().st_size
    assert size > 8_000_000
    from baselines.plots import PLOT_FIELDS
    from baselines.plots import read_metrics as plot_metrics

    kept = plot_metrics(tmp_path, PLOT_FIELDS)
    assert kept[5] == {"step": 5, "ns": [2], "accuracy": {"2": 0.5}} and len(kept) == 4000
    assert peak_bytes(lambda: plot_metrics(tmp_path, PLOT_FIELDS)) < size / 4
    assert peak_bytes(lambda: check_metrics(tmp_path, 3999)) < size / 20
    assert len(read_metrics(tmp_path)) == 3999


def test_ctrl_c_in_a_command_without_its_own_stop_is_one_line_not_a_traceback(monkeypatch, capsys):
    """benchmark and reproduce have no stop handling of their own: Ctrl-C ends them with one line, exit 130."""
    import baselines.cli.experiments as experiments
    from baselines.cli import main

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "cmd_benchmark", interrupted)
    assert main(["benchmark", "--cores", "leaky"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("memory-envs: error: interrupted (Ctrl-C)")
    assert "run the same command again to continue" in err
