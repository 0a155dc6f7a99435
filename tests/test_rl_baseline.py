"""The RL baseline (baselines.rl): run folder, curriculum during RL, resume, TensorBoard, bad input, docs example."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("sb3_contrib")

import memory_envs  # noqa: E402,F401  (registers the envs)
from baselines.cli import main  # noqa: E402
from baselines.rl import STOP_REASONS, RLConfig, RLRun, train_rl  # noqa: E402
from baselines.resume_state import write_state  # noqa: E402
from baselines.rl.callback import rng_state  # noqa: E402
from baselines.run_folder import RunFolderError  # noqa: E402
from memory_envs import Curriculum, CurriculumWrapper, EpisodeAccuracyTracker  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "rl_baselines.md"
TINY = ["--env", "NDMS-v0", "--n", "2", "--mode", "every_step", "--p", "0.5", "--length-range", "4", "10",
        "--core", "leaky", "--hidden-size", "16", "--total-timesteps", "4096", "--eval-every", "1024",
        "--eval-episodes", "20", "--quiet"]


def rl_main(argv: list[str]) -> int:
    return main(["rl", *argv])


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_time(lines: list[dict]) -> list[dict]:
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


# Parity of 5 bits: not learned in 2048 timesteps, so these runs use their whole budget (rollouts of 512).
HARD = RLConfig(env_id="NParity-v0", n=5, mode="every_step", p=0.5, hidden_size=16, total_timesteps=2048,
                eval_every=512, eval_episodes=10, seed=1)


class Killed(Exception):
    """Raised from on_eval: stops a run the way a kill would, after a metrics line and before its state."""


def kill_at(evaluation: int, when=lambda line: True):
    """An on_eval hook that raises Killed at the ``evaluation``-th line that satisfies ``when``."""
    seen = []

    def on_eval(line: dict) -> None:
        if when(line):
            seen.append(line)
        if len(seen) == evaluation:
            raise Killed

    return on_eval


def test_tiny_run_writes_the_run_folder(tmp_path, capsys):
    from sb3_contrib import RecurrentPPO

    from agents import RecurrentCorePolicy

    run_dir = tmp_path / "run"
    assert rl_main([*TINY, "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "largest N solved" not in out and ("N = 2 solved" in out or "N = 2 not solved" in out)  # a fixed N
    assert "(NDMS-v0, fixed N, leaky core, 16 units)" in out
    assert {p.name for p in run_dir.iterdir()} >= {"config.json", "metrics.jsonl", "model.zip", "summary.json"}
    assert not list(run_dir.glob(".*tmp*"))
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env_id"] == "NDMS-v0" and config["hidden_size"] == 16 and config["length_range"] == [4, 10]
    lines = read_metrics(run_dir)
    assert lines
    for line in lines:
        assert set(line) >= {"timesteps", "time", "ns", "mean_return", "success_rate", "accuracy"}
        assert line["ns"] == [2] and set(line["accuracy"]) == {"2"}
        assert 0.0 <= line["success_rate"] <= 1.0 and 0.0 <= line["accuracy"]["2"] <= 1.0
    assert [line["timesteps"] for line in lines] == sorted(line["timesteps"] for line in lines)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= {"max_n", "timesteps", "seconds", "stopped_because"}
    assert summary["stopped_because"] in STOP_REASONS
    assert summary["timesteps"] == lines[-1]["timesteps"] and summary["final_eval"] == lines[-1]
    solved = lines[-1]["accuracy"]["2"] > 0.98
    assert summary["max_n"] == (2 if solved else None)
    assert (summary["stopped_because"] == "target_reached") == solved
    # This setting learns n=2 within the budget (docs/rl.md); the run then stops early.
    assert summary["max_n"] == 2 and summary["timesteps"] < 4096
    model = RecurrentPPO.load(run_dir / "model.zip")
    assert isinstance(model.policy, RecurrentCorePolicy) and model.policy.core_kind == "leaky"

    # The commands that take a run folder: plot draws an RL run's curves over timesteps; analyze and
    # train --resume refuse it in one line that names what does apply.
    capsys.readouterr()
    assert main(["plot", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"{run_dir}: accuracy.png, return.png"  # one fixed N: no N figure
    for argv, words in ((["analyze", str(run_dir)], "run folder of `memory-envs rl`: the analyses read"),
                        (["train", "--resume", "--run-dir", str(run_dir)],
                         f"continue it with memory-envs rl --resume --run-dir {run_dir}")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1

    # A non-empty run folder is refused without --overwrite, replaced with it.
    assert rl_main([*TINY, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert rl_main([*TINY, "--run-dir", str(run_dir), "--overwrite", "--total-timesteps", "512",
                    "--eval-every", "512"]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["timesteps"] == 512


def test_seeded_runs_repeat(tmp_path):
    config = RLConfig(env_id="NDMS-v0", n=2, mode="every_step", p=0.5, length_range=(4, 10), hidden_size=16,
                      total_timesteps=1024, eval_every=512, eval_episodes=10, seed=3)
    a = train_rl(config, tmp_path / "a")
    b = train_rl(config, tmp_path / "b")
    assert without_time(read_metrics(tmp_path / "a")) == without_time(read_metrics(tmp_path / "b"))
    assert a["timesteps"] == b["timesteps"] == 1024


def test_stock_lstm_on_a_preset_with_the_native_vec_env_repeats(tmp_path):
    """core="stock-lstm" (sb3-contrib's MlpLstmPolicy) on a preset id through make_sb3_vec_env: seeded runs repeat."""
    from sb3_contrib import RecurrentPPO

    config = RLConfig(env_id="NParity-Easy-v0", n=4, core="stock-lstm", vec_env="native", hidden_size=8,
                      total_timesteps=1024, eval_every=512, eval_episodes=10, seed=2)
    a, b = (train_rl(config, tmp_path / name) for name in "ab")
    assert without_time(read_metrics(tmp_path / "a")) == without_time(read_metrics(tmp_path / "b"))
    assert a["timesteps"] == b["timesteps"] == 1024 and a["env_id"] == "NParity-Easy-v0"
    models = [RecurrentPPO.load(tmp_path / name / "model.zip") for name in "ab"]
    assert type(models[0].policy).__name__ == "RecurrentActorCriticPolicy"  # the stock policy, not ours
    for x, y in zip(models[0].policy.state_dict().values(), models[1].policy.state_dict().values()):
        assert torch.equal(x, y)


def test_curriculum_advances_during_rl(tmp_path):
    config = RLConfig(env_id="NDMS-v0", n=2, mode="every_step", p=0.5, length_range=(6, 14), curriculum="single",
                      n_max=3, threshold=0.9, window=50, hidden_size=32, total_timesteps=8192, eval_every=2048,
                      eval_episodes=20, seed=0)
    summary = train_rl(config, tmp_path / "run")
    assert summary["max_n"] is not None and summary["max_n"] >= 2
    assert "2" in summary["timesteps_to_n"] and summary["timesteps_to_n"]["2"] <= summary["timesteps"]
    assert summary["active_ns"] == [3]
    lines = read_metrics(tmp_path / "run")
    assert [3] in [line["ns"] for line in lines]  # evaluated on the curriculum's new N


def test_multi_head_curriculum_run(tmp_path):
    config = RLConfig(env_id="NParity-v0", n=2, mode="every_step", p=0.5, curriculum="multi", n_max=4,
                      hidden_size=16, n_envs=4, n_steps=32, total_timesteps=256, eval_every=128,
                      eval_episodes=5, core="gru")
    progress: list[int] = []
    summary = train_rl(config, tmp_path / "run", on_progress=progress.append)
    assert progress == sorted(progress) and progress[-1] == 256  # reported every step, ending at the last
    assert summary["active_ns"][0] == 2 and summary["stopped_because"] == "max_timesteps"
    assert summary["final_eval"]["timesteps"] == 256
    assert all(set(line["accuracy"]) == {str(n) for n in line["ns"]} for line in read_metrics(tmp_path / "run"))


def test_curriculum_run_with_envs_in_subprocesses(tmp_path):
    """memory-envs rl's curriculum is driven from the main process, so it advances with SubprocVecEnv
    workers too (issue 15, failure 6: before, each worker advanced its own copy and the run's stayed at [2])."""
    config = RLConfig(env_id="NDMS-v0", n=2, mode="every_step", p=0.5, curriculum="multi", n_max=3, threshold=0.05,
                      window=4, hidden_size=8, n_envs=2, vec_env="subproc", n_steps=32, total_timesteps=1024,
                      eval_every=512, eval_episodes=2)
    summary = train_rl(config, tmp_path / "run")
    assert summary["max_n"] == 3 and summary["stopped_because"] == "target_reached"
    assert summary["active_ns"] == [2, 3] and set(summary["timesteps_to_n"]) == {"2", "3"}
    with pytest.raises(ValueError, match=r"vec_env must be one of \('dummy', 'subproc', 'native'\)"):
        dataclasses.replace(config, vec_env="threads").validate()


def test_shared_curriculum_sets_every_env():
    shared = EpisodeAccuracyTracker(Curriculum("multi", 2, 4, threshold=0.9), window=3)
    envs = [CurriculumWrapper(gym.make("NDMS-v0", heads=[2], max_heads=3, mode="every_step"), shared)
            for _ in range(2)]
    for _ in range(3):
        shared.record((2,), np.array([1.0]))
    assert shared.maybe_advance()
    assert shared.curriculum.ns == [2, 3]
    for env in envs:
        env.reset(seed=0)
        assert env.unwrapped.ns == (2, 3)
        _, _, _, _, info = env.step(np.zeros(3, dtype=np.int64))
        assert info["curriculum_ns"].tolist() == [2, 3, 0]  # padded to max_heads, like info["ns"]


def test_resume_continues_a_killed_run(tmp_path):
    from sb3_contrib import RecurrentPPO

    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        train_rl(HARD, run_dir, on_eval=kill_at(2))  # killed at the evaluation at 1024 timesteps
    killed = read_metrics(run_dir)
    state = json.loads((run_dir / "last" / "state.json").read_text())
    assert [line["timesteps"] for line in killed] == [512, 1024] and not (run_dir / "summary.json").exists()
    assert state["timesteps"] == 512 and state["metrics_lines"] == 1  # saved after the first evaluation
    for name in ("same", "other_rng"):
        shutil.copytree(run_dir, tmp_path / name)

    # The time budget counts the earlier part: one that is spent already stops the run without training.
    summary = train_rl(dataclasses.replace(HARD, max_seconds=state["seconds"]), tmp_path / "same", resume=True)
    assert summary["stopped_because"] == "max_seconds" and summary["timesteps"] == 512
    assert read_metrics(tmp_path / "same") == killed[:1]

    seen = []
    summary = train_rl(HARD, run_dir, resume=True, on_eval=seen.append)
    assert [line["timesteps"] for line in seen] == [1024, 1536, 2048]  # went on from 512, not from 0
    lines = read_metrics(run_dir)
    assert lines == killed[:1] + seen  # the line written after the saved state is gone, none is repeated
    assert summary["timesteps"] == 2048 and summary["stopped_because"] == "max_timesteps"
    assert summary["final_eval"] == lines[-1]
    assert json.loads((run_dir / "last" / "state.json").read_text())["timesteps"] == 2048

    # A finished folder returns its summary and trains no more.
    written = (run_dir / "model.zip").stat().st_mtime_ns
    assert train_rl(HARD, run_dir, resume=True) == summary
    assert read_metrics(run_dir) == lines and (run_dir / "model.zip").stat().st_mtime_ns == written

    # The saved RNG states are restored: the same state goes on the same way, other RNG states do not.
    train_rl(HARD, tmp_path / "same", resume=True)
    assert without_time(read_metrics(tmp_path / "same")) == without_time(lines)
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    write_state(tmp_path / "other_rng" / "last", "rng", rng_state(cuda=False))
    train_rl(HARD, tmp_path / "other_rng", resume=True)
    params = {name: RecurrentPPO.load(tmp_path / name / "model.zip").policy.state_dict()
              for name in ("run", "same", "other_rng")}
    assert all(torch.equal(value, params["same"][key]) for key, value in params["run"].items())
    assert not all(torch.equal(value, params["other_rng"][key]) for key, value in params["run"].items())


def test_resume_restores_the_curriculum(tmp_path):
    config = RLConfig(env_id="NDMS-v0", n=2, mode="every_step", p=0.5, length_range=(6, 14), curriculum="single",
                      n_max=3, threshold=0.9, window=50, hidden_size=32, total_timesteps=5120, eval_every=512,
                      eval_episodes=20, seed=0)
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):  # killed at the second evaluation after the advance to N=3
        train_rl(config, run_dir, on_eval=kill_at(2, when=lambda line: line["ns"] == [3]))
    killed = read_metrics(run_dir)
    state = json.loads((run_dir / "last" / "state.json").read_text())
    assert state["curriculum"]["ns"] == [3] and state["curriculum"]["solved"] == 2
    assert set(state["episode_accuracy"]) == {"3"} and state["episode_accuracy"]["3"]
    assert state["metrics_lines"] == len(killed) - 1

    run = RLRun(config, run_dir, resume=True)
    assert run.curriculum.ns == [3] and run.curriculum.solved == 2 and run.shared.curriculum is run.curriculum
    assert run.shared.state_dict() == state["episode_accuracy"]
    seen = []
    summary = run.run(on_eval=seen.append)
    assert seen[0]["ns"] == [3] and seen[0]["timesteps"] == killed[-1]["timesteps"]
    assert set(run.model.get_env().get_attr("ns")) == {(3,)}  # the training envs score N=3
    assert summary["active_ns"] == [3] and summary["timesteps"] == 5120
    assert summary["timesteps_to_n"] == state["timesteps_to_n"] == {"2": state["timesteps_to_n"]["2"]}
    timesteps = [line["timesteps"] for line in read_metrics(run_dir)]
    assert timesteps == sorted(set(timesteps)) and read_metrics(run_dir)[:-len(seen)] == killed[:-1]


def test_resume_checks_folder_and_config(tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder"):
        RLRun(HARD, tmp_path / "nothing", resume=True)
    assert not (tmp_path / "nothing").exists()
    run_dir = tmp_path / "run"
    RLRun(HARD, run_dir)  # what a run killed before its first saved state leaves: config.json, no last/
    with pytest.raises(RunFolderError, match=r"differs in \['hidden_size', 'seed'\]"):
        RLRun(dataclasses.replace(HARD, hidden_size=8, seed=2), run_dir, resume=True)
    with pytest.raises(ValueError, match="resume=True and overwrite=True exclude each other"):
        RLRun(HARD, run_dir, resume=True, overwrite=True)
    (run_dir / "metrics.jsonl").write_text('{"timesteps": 512}\n')
    with pytest.raises(RunFolderError, match="it has no saved state .* but holds results"):  # a restart would lose them
        RLRun(HARD, run_dir, resume=True)
    assert (run_dir / "metrics.jsonl").read_text() == '{"timesteps": 512}\n'
    (run_dir / "metrics.jsonl").write_text("")
    run = RLRun(dataclasses.replace(HARD, total_timesteps=4096, max_seconds=60.0, device="auto"), run_dir,
                resume=True)  # the budgets and the device may change
    run.close()
    assert run.state is None and run.curriculum is None  # no saved state, nothing lost: the run starts again
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["total_timesteps"] == 4096 and saved["max_seconds"] == 60.0


def test_resume_from_the_command_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["rl", *TINY, "--eval-every", "512", "--run-dir", str(run_dir)]
    assert main([*argv, "--total-timesteps", "1024"]) == 0  # stops on the budget, before the target
    first = read_metrics(run_dir)
    assert json.loads((run_dir / "summary.json").read_text())["stopped_because"] == "max_timesteps"
    assert main([*argv, "--resume"]) == 0  # the full 4096 timesteps: goes on to the target
    lines = read_metrics(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert lines[: len(first)] == first
    assert [line["timesteps"] for line in lines] == [512 * (i + 1) for i in range(len(lines))]  # none repeated
    assert summary["stopped_because"] == "target_reached" and 1024 < summary["timesteps"] < 4096
    capsys.readouterr()
    written = (run_dir / "model.zip").stat().st_mtime_ns
    assert main([*argv, "--resume", "--total-timesteps", "8192"]) == 0  # finished: prints the summary only
    assert "N = 2 solved  (NDMS-v0, fixed N" in capsys.readouterr().out
    assert read_metrics(run_dir) == lines and (run_dir / "model.zip").stat().st_mtime_ns == written
    for extra, words in ((["--hidden-size", "8"], "with --hidden-size=8 (the run's: "),
                         (["--overwrite"], "--resume and --overwrite exclude each other")):
        assert main([*argv, "--resume", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("memory-envs: error: ") and words in err and len(err.strip().splitlines()) == 1


def test_tensorboard_logs_the_evaluations(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = train_rl(dataclasses.replace(HARD, total_timesteps=1024), tmp_path / "run")
    assert summary["tensorboard"] is True
    events = list((tmp_path / "run" / "tb").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    logs = EventAccumulator(str(events[0].parent))
    logs.Reload()
    lines = read_metrics(tmp_path / "run")
    expected = {"eval/mean_return": [line["mean_return"] for line in lines],
                "eval/success_rate": [line["success_rate"] for line in lines],
                "eval/accuracy_n5": [line["accuracy"]["5"] for line in lines],
                "eval/newest_n": [5] * len(lines)}
    assert set(expected) <= set(logs.Tags()["scalars"])
    for tag, values in expected.items():
        scalars = logs.Scalars(tag)
        assert [event.step for event in scalars] == [line["timesteps"] for line in lines] == [512, 1024]
        assert [event.value for event in scalars] == pytest.approx(values, rel=1e-6)
    assert "train/loss" in logs.Tags()["scalars"]


@pytest.mark.parametrize("argv, field", [
    (["--env", "Foo-v0"], "--env"),
    (["--core", "rnn"], "--core"),
    (["--curriculum", "sliding", "--n-max", "4"], "--curriculum"),
    (["--curriculum", "single"], "--n-max"),
    (["--n-max", "4"], "--n-max"),
    (["--curriculum", "multi", "--n-max", "1"], "--n-max"),
    (["--total-timesteps", "0"], "--total-timesteps"),
    (["--eval-every", "-5"], "--eval-every"),
    (["--n-envs", "0"], "--n-envs"),
    (["--n", "1"], "--n"),
    (["--lr", "0"], "--lr"),
    (["--mode", "sometimes"], "--mode"),
    (["--p", "1.5"], "--p"),
    (["--curriculum", "single", "--n-max", "6", "--length-range", "4", "8"], "--length-range"),
    (["--resume"], "cannot resume"),
])
def test_bad_input_exits_2(tmp_path, capsys, argv, field):
    assert rl_main([*argv, "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memory-envs: error: ") and field in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("changes, field", [
    ({"env_id": "CartPole-v1"}, "env_id"), ({"core": "no_such_core"}, "core"), ({"curriculum": "sliding"}, "curriculum"),
    ({"total_timesteps": 0}, "total_timesteps"), ({"eval_episodes": 0}, "eval_episodes"),
    ({"max_seconds": 0}, "max_seconds"), ({"core_options": {"nonsense": 1}}, "core_options"),
    ({"tau_init": (0.5, 2.0)}, "tau_init"), ({"hidden_size": 0}, "hidden_size"), ({"batch_size": -1}, "batch_size"),
    ({"core": "lru", "train_tau": False}, "train_tau only apply to the cores with a per-neuron tau"),
    ({"core": "mamba", "tau_init": (1.0, 3.0)}, "tau_init only apply to the cores with a per-neuron tau"),
    ({"env_id": "NDMS-Easy-v0", "n": 2}, "n must be 6 for the preset NDMS-Easy-v0 .* got 2; use the base id 'NDMS-v0'"),
    ({"env_id": "NDMS-Easy-v0", "n": 6, "p": 0.3}, "p must be 0.5 or None for the preset"),
    ({"env_id": "NParity-Easy-v0", "n": 4, "mode": "every_step"}, "mode must be 'final' for the preset"),
    ({"env_id": "NParity-Easy-v0", "n": 4, "curriculum": "multi", "n_max": 5}, "curriculum: NParity-Easy-v0 is a preset"),
    ({"core": "stock-lstm", "core_options": {"variant": "mod"}}, "core_options apply to our cores"),
    ({"core": "stock-lstm", "train_tau": False}, "train_tau only apply"),
    ({"vec_env": "native", "curriculum": "multi", "n_max": 4}, "vec_env='native' runs no curriculum"),
    ({"vec_env": "ray"}, "vec_env must be one of"),
])
def test_config_validation_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        RLConfig(**changes).validate()


def test_a_preset_runs_at_its_n_with_the_tuned_ppo_settings_in_the_folder_help_names(tmp_path, monkeypatch, capsys):
    """`memory-envs rl --env PRESET` needs no --n (the preset's own N), trains with the RL score card's tuned lr
    and entropy bonus, and writes the run folder that --help names as its default."""
    from baselines.cli import build_parser
    from baselines.rl.scorecard import RLScorecardSpec

    monkeypatch.chdir(tmp_path)
    assert rl_main(["--env", "NDMS-Easy-v0", "--vec-env", "native", "--hidden-size", "8", "--total-timesteps", "512",
                    "--eval-every", "512", "--eval-episodes", "5", "--quiet"]) == 0
    parser = build_parser()
    rl_parser = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith(" rl"))
    (run_dir_help,) = [a.help for a in rl_parser._actions if a.dest == "run_dir"]
    template = re.search(r"default: (\S+),", run_dir_help).group(1)
    values = {"<env>": "NDMS-Easy-v0", "<N>": "6", "[-<curriculum>]": "", "<core>": "leaky", "<hidden-size>": "8",
              "<seed>": "0"}
    for field, value in values.items():
        assert field in template
        template = template.replace(field, value)
    assert [str(p.relative_to(tmp_path)) for p in (tmp_path / "runs").iterdir()] == [template]
    config = json.loads((tmp_path / template / "config.json").read_text())
    card = RLScorecardSpec()
    assert config["n"] == 6 and (config["lr"], config["ent_coef"]) == (card.lr, card.ent_coef) == (3e-3, 0.01)
    # Repeating the preset's N is allowed; another N is refused, naming the base id.
    assert rl_main(["--env", "NDMS-Easy-v0", "--n", "3", "--quiet"]) == 2
    assert "--n must be 6 for the preset NDMS-Easy-v0" in capsys.readouterr().err


def test_docs_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/rl_baselines.md has no python example"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {})
