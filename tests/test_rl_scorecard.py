"""The RL score card (baselines.rl.scorecard, `memory-envs benchmark --rl`): a tiny card end to end, resume
after a kill, the normalization against the oracle and the random policy, and bad options."""

from __future__ import annotations

import csv
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("sb3_contrib")

import memory_envs  # noqa: E402,F401  (registers the envs)
from baselines.cli import main  # noqa: E402
from baselines.rl import evaluate_policy, train_rl  # noqa: E402
from baselines.rl import scorecard  # noqa: E402
from baselines.rl.scorecard import RLScorecardSpec, reference, run_rl_scorecard  # noqa: E402

torch.set_num_threads(1)
# 2 presets x 2 policies, one seed, 3 rollouts of 8 x 64 timesteps each: 6,144 timesteps in all.
TINY = RLScorecardSpec(presets=("NParity-Easy-v0", "NDMS-Easy-v0"), policies=("stock-lstm", "leaky"), seeds=(0,),
                       timesteps=1536, hidden_size=8, eval_every=512, eval_episodes=100, workers=2)


class Killed(Exception):
    """Raised from on_eval: stops a run the way a kill would."""


def kill_at_second_evaluation():
    seen = []

    def on_eval(line: dict) -> None:
        seen.append(line)
        if len(seen) == 2:  # the state after the first evaluation is saved; this one is not
            raise Killed

    return on_eval


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_tiny_card_end_to_end_resumes_after_a_kill(tmp_path):
    out = tmp_path / "card"
    runs = out / "runs"
    killed = runs / "NDMS-Easy-v0-leaky-s0"
    with pytest.raises(Killed):  # a card killed while this run trained
        train_rl(TINY.config("NDMS-Easy-v0", "leaky", 0), killed, on_eval=kill_at_second_evaluation())
    before = metrics(killed)
    assert [line["timesteps"] for line in before] == [512, 1024] and (killed / "last").is_dir()

    logs = []
    results = run_rl_scorecard(TINY, out, log=logs.append)
    assert len(results) == 4 and "0 finished earlier, 4 to run" in logs[0]
    after = metrics(killed)  # resumed from its saved state: the first line kept as written, the second redone
    assert after[0] == before[0] and [line["timesteps"] for line in after] == [512, 1024, 1536]

    rows = list(csv.DictReader((out / "rl_scorecard.csv").open()))
    assert [(r["preset"], r["policy"]) for r in rows] == [(p, q) for p in TINY.presets for q in TINY.policies]
    for row in rows:  # the card's numbers are the runs' own, normalized by the reference of the same episodes
        run_dir = runs / f"{row['preset']}-{row['policy']}-s0"
        summary = json.loads((run_dir / "summary.json").read_text())
        card = json.loads((run_dir / "rlcard.json").read_text())
        assert summary["timesteps"] == 1536 and card["reference"]["oracle"] == 1.0
        random = card["reference"]["random"]
        want = (summary["final_eval"]["mean_return"] - random) / (1.0 - random)
        assert float(row["normalized_median"]) == pytest.approx(want)
        assert abs(want) < 0.4  # a few thousand timesteps learn nothing: near the random policy's 0
        assert [t for t, _ in card["curve"]] == [512, 1024, 1536]
        assert row["accuracy_median"].startswith(f"N={card['n']}:") and float(row["timesteps_per_second_median"]) > 0
    assert "| NDMS-Easy-v0 | leaky |" in (out / "rl_scorecard.md").read_text()
    assert (out / "normalized_over_timesteps.png").exists()

    # Run again: everything is finished, nothing is redone.
    stamp = (killed / "summary.json").stat().st_mtime_ns
    logs = []
    assert len(run_rl_scorecard(TINY, out, log=logs.append)) == 4
    assert "4 finished earlier, 0 to run" in logs[0] and (killed / "summary.json").stat().st_mtime_ns == stamp
    # Another budget in the same folder is refused, as is the supervised card.
    with pytest.raises(ValueError, match="another budget"):
        run_rl_scorecard(RLScorecardSpec(**{**TINY.__dict__, "timesteps": 2048}), out)
    from baselines.benchmark import BenchmarkSpec, run_benchmark

    with pytest.raises(ValueError, match="holds an RL score card"):
        run_benchmark(BenchmarkSpec(cores=("leaky",)), out)


@pytest.mark.parametrize("preset", ["NParity-Easy-v0", "NDMS-Easy-v0"])
def test_oracle_normalizes_to_exactly_1_and_random_to_about_0(preset):
    ref = reference(preset, episodes=400, seed=5)
    assert ref.oracle == 1.0 and ref.normalize(ref.oracle) == 1.0 and ref.normalize(ref.random) == 0.0
    assert abs(ref.random - 0.5) < 0.05
    env = gym.make(preset)  # another random policy on the same episodes
    other = scorecard._RandomModel(env.action_space, np.random.default_rng(123))
    played = evaluate_policy(other, env, 400, 5, [memory_envs.PRESETS[preset].n])["mean_return"]
    assert abs(ref.normalize(played)) < 0.2
    oracle = evaluate_policy(scorecard._OracleModel(env), env, 400, 5, [memory_envs.PRESETS[preset].n])
    assert ref.normalize(oracle["mean_return"]) == 1.0 and oracle["success_rate"] == 1.0
    assert reference(preset, episodes=400, seed=5) == ref  # seeded: the same reference again


def test_a_degenerate_reference_is_refused(monkeypatch):
    monkeypatch.setattr(scorecard, "_RandomModel", lambda space, rng: scorecard._OracleModel(gym.make("NDMS-Easy-v0")))
    with pytest.raises(ValueError, match="normalized return is undefined"):
        reference("NDMS-Easy-v0", episodes=20, seed=0)


def test_the_curriculum_scores_on_the_presets_episodes():
    """Under --curriculum multi the evaluation env (the base id, heads up to N) draws the preset's episodes once
    N is active, so the preset's reference applies to its head for N."""
    spec = RLScorecardSpec(curriculum="multi")
    config = spec.config("NDMS-Easy-v0", "gru", 0)
    assert (config.env_id, config.n, config.n_max, config.curriculum, config.vec_env) == ("NDMS-v0", 2, 6, "multi",
                                                                                           "dummy")
    multi, preset = gym.make(config.env_id, **config.env_kwargs()), gym.make("NDMS-Easy-v0")
    multi.unwrapped.set_ns([2, 3, 4, 5, 6])
    for episode in range(40):
        seed = 9 if episode == 0 else None
        a, b = [multi.reset(seed=seed)[0]], [preset.reset(seed=seed)[0]]
        done = False
        while not done:
            a.append(multi.step(np.zeros(5, dtype=np.int64))[0])
            obs, _, done, _, _ = preset.step(0)
            b.append(obs)
        assert np.array_equal(a, b)


@pytest.mark.parametrize("argv, words", [
    (["--rl", "--cores", "gru"], "--cores: only without --rl"),
    (["--rl", "--max-steps", "5"], "--max-steps: only without --rl"),
    (["--presets", "Easy"], "--presets: only with --rl"),
    (["--lr", "0.01", "--timesteps", "5"], "--timesteps, --lr: only with --rl"),
    (["--rl", "--presets", "Trivial"], "presets must be preset ids"),
    (["--rl", "--policies", "rnn"], "policies must be stock-lstm or core kinds"),
    (["--rl", "--policies", "gru,gru"], "policies must not repeat"),
    (["--rl", "--timesteps", "0"], "--timesteps must be a positive integer"),
    (["--rl", "--curriculum", "single"], "--curriculum must be None or one of"),
    (["--rl", "--lr", "-1"], "--lr must be > 0"),
    (["--rl", "--seeds", ""], "argument --seeds: expected one or more comma-separated values, got ''"),
    (["--rl", "--eval-episodes", "0"], "--eval-episodes must be a positive integer"),
    (["--rl", "--address", "auto"], "--address: only with --backend ray"),
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, capsys, argv, words):
    out = tmp_path / "card"
    try:
        code = main(["benchmark", "--out", str(out), *argv])
    except SystemExit as stop:  # an argument type's refusal (argparse), one line as the others
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("memory-envs: error: ") and words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_folder_with_a_supervised_card_is_refused(tmp_path, capsys):
    (tmp_path / "benchmark.json").write_text("{}")
    assert main(["benchmark", "--rl", "--out", str(tmp_path), "--timesteps", "512"]) == 2
    assert "holds a supervised benchmark" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmark.json"]


def test_the_commands_defaults_are_the_cards():
    from baselines.cli import build_parser
    from baselines.cli.experiments import RL_OPTIONS, resolve_benchmark_args

    args = resolve_benchmark_args(build_parser().parse_args(["benchmark", "--rl"]))
    spec = RLScorecardSpec()
    for name in RL_OPTIONS:
        if name != "presets":
            assert getattr(args, name) == getattr(spec, name), name
    assert args.out == "runs/rl-benchmark"
    from baselines.benchmark import BenchmarkSpec
    from baselines.cli.experiments import SUPERVISED_OPTIONS

    supervised = resolve_benchmark_args(build_parser().parse_args(["benchmark"]))
    assert [getattr(supervised, n) for n in SUPERVISED_OPTIONS] == [getattr(BenchmarkSpec(), n) for n in SUPERVISED_OPTIONS]
    assert supervised.out == "runs/benchmark"
    assert scorecard.expand_presets(args.presets) == spec.presets
