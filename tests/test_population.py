"""The population trainer: members equal solo runs, leave when done, resume exactly; bad input is refused."""

import json

import pytest
import torch

from baselines.population import Population, train_population
from baselines.run_folder import RunFolderError
from baselines.trainer import TrainConfig, Trainer, train


def tiny(**overrides) -> TrainConfig:
    base = dict(hidden_size=16, batch_size=32, eval_every=20, eval_batches=2, max_steps=200, device="cpu",
                threshold=0.9)
    base.update(overrides)
    return TrainConfig(**base)


#: Members that differ in seed, task, curriculum, start N, target, lr, momentum, threshold, p and budget.
MEMBERS = [
    tiny(seed=0),
    tiny(seed=1, task="dms", curriculum="single", p=0.5, lr=0.1, momentum=0.5),
    tiny(seed=2, curriculum="sliding", window=2, start_n=3, threshold=0.8, max_steps=120),
    tiny(seed=3, target_n=3, eval_every=10, eval_batches=3, threshold=0.8, lr=0.3),
]


def metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_members_draw_and_train_like_solo_runs(tmp_path):
    fresh = Population(MEMBERS, [tmp_path / f"fresh{k}" for k in range(len(MEMBERS))])
    for k, (member, config) in enumerate(zip(fresh.members, MEMBERS)):
        solo = Trainer(config, tmp_path / f"solo_fresh{k}")
        for name, value in solo.model.state_dict().items():  # the same initial weights, exactly
            assert torch.equal(member.model.state_dict()[name], value), name
        for a, b in zip(member.batch(member.data_rng), solo.batch(solo.data_rng)):  # the same batches
            assert torch.equal(a, b)

    seen, progress = [], []
    summaries = train_population(MEMBERS, [tmp_path / f"member{k}" for k in range(len(MEMBERS))],
                                 on_eval=lambda k, line: seen.append((k, line["step"])), on_progress=progress.append)
    for k, config in enumerate(MEMBERS):
        solo = train(config, tmp_path / f"solo{k}")
        member_lines, solo_lines = metrics(tmp_path / f"member{k}"), metrics(tmp_path / f"solo{k}")
        assert [m["step"] for m in member_lines] == [s["step"] for s in solo_lines]
        for m, s in zip(member_lines, solo_lines):
            assert m["ns"] == s["ns"]  # the same curriculum advances at the same evaluations
            assert m["loss"] == pytest.approx(s["loss"], rel=1e-3)
            assert all(abs(m["accuracy"][n] - s["accuracy"][n]) <= 0.02 for n in s["accuracy"])
        for key in ("max_n", "steps", "stopped_because", "steps_to_n", "active_ns"):
            assert summaries[k][key] == solo[key], (k, key)
        files = {p.name for p in (tmp_path / f"member{k}").iterdir()}
        assert files == {p.name for p in (tmp_path / f"solo{k}").iterdir()}
        assert [step for g, step in seen if g == k] == [m["step"] for m in member_lines]  # on_eval per member
    assert progress[-1]["running"] == 0 and progress[0]["running"] == len(MEMBERS)
    # members left the group at different steps: a target reached early, a smaller budget, the rest
    assert summaries[3]["stopped_because"] == "target_reached" and summaries[3]["steps"] < 200
    assert summaries[2]["steps"] == 120 and summaries[0]["steps"] == 200


def test_resume_continues_every_unfinished_member_exactly(tmp_path):
    configs = [tiny(seed=0, max_steps=120), tiny(seed=1, curriculum="single", max_steps=120),
               tiny(seed=2, target_n=3, max_steps=120)]
    full = train_population(configs, [tmp_path / f"full{k}" for k in range(3)])
    short = [tiny(**{**c.to_json(), "max_steps": 60, "tau_init": tuple(c.tau_init)}) for c in configs]
    train_population(short, [tmp_path / f"split{k}" for k in range(3)])
    with open(tmp_path / "split0" / "metrics.jsonl", "a") as f:  # a kill after the last saved state
        f.write('{"step": 999}\n')
    resumed = train_population(configs, [tmp_path / f"split{k}" for k in range(3)], resume=True)
    strip = lambda lines: [{k: v for k, v in line.items() if k != "time"} for line in lines]
    for k in range(3):
        assert strip(metrics(tmp_path / f"split{k}")) == strip(metrics(tmp_path / f"full{k}"))
        assert {key: resumed[k][key] for key in ("max_n", "steps", "steps_to_n")} == \
               {key: full[k][key] for key in ("max_n", "steps", "steps_to_n")}


def test_a_member_folder_resumes_as_a_solo_run(tmp_path):
    train_population([tiny(seed=0, max_steps=60), tiny(seed=1, max_steps=60)], [tmp_path / "a", tmp_path / "b"])
    resumed = train(tiny(seed=1, max_steps=100), tmp_path / "b", resume=True)
    solo = train(tiny(seed=1, max_steps=100), tmp_path / "solo")
    assert resumed["steps"] == 100 and resumed["steps_to_n"] == solo["steps_to_n"]
    assert [m["ns"] for m in metrics(tmp_path / "b")] == [s["ns"] for s in metrics(tmp_path / "solo")]


@pytest.mark.parametrize("field, value", [("hidden_size", 8), ("core", "gru"), ("batch_size", 16)])
def test_members_must_share_core_size_and_batch(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        Population([tiny(), tiny(**{field: value})], [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists()


def test_bad_population_is_refused_before_any_folder_is_written(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("keep")
    with pytest.raises(RunFolderError, match="not empty"):
        Population([tiny(seed=0), tiny(seed=1)], [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists() and (tmp_path / "b" / "mine.txt").read_text() == "keep"
    with pytest.raises(ValueError, match="member 1: lr"):
        Population([tiny(), tiny(lr=-1.0)], [tmp_path / "c", tmp_path / "d"])
    with pytest.raises(ValueError, match="distinct"):
        Population([tiny(), tiny(seed=1)], [tmp_path / "c", tmp_path / "c"])
    with pytest.raises(ValueError, match="one folder per member"):
        Population([tiny(), tiny(seed=1)], [tmp_path / "c"])
    assert not (tmp_path / "c").exists()


def test_train_command_trains_a_grid_as_one_population_and_resumes(tmp_path, capsys):
    from baselines.cli import main

    argv = ["train", "--seeds", "0,1", "--curriculum", "single,multi", "--lr", "0.05", "--hidden-size", "16",
            "--batch-size", "32", "--eval-every", "20", "--eval-batches", "2", "--device", "cpu", "--quiet",
            "--no-plots", "--run-dir", str(tmp_path / "grid")]
    assert main([*argv, "--max-steps", "40"]) == 0
    out = capsys.readouterr().out
    names = ["parity-single-lr0.05-s0", "parity-single-lr0.05-s1", "parity-multi-lr0.05-s0", "parity-multi-lr0.05-s1"]
    assert "population of 4" in out and all(name in out for name in names)
    assert sorted(p.name for p in (tmp_path / "grid").iterdir()) == sorted(names)
    config = json.loads((tmp_path / "grid" / names[3] / "config.json").read_text())
    assert (config["seed"], config["curriculum"], config["lr"]) == (1, "multi", 0.05)
    assert main([*argv, "--max-steps", "60", "--resume"]) == 0  # every member continues
    assert all(metrics(tmp_path / "grid" / name)[-1]["step"] == 60 for name in names)
    assert main([*argv, "--max-steps", "60", "--seeds", "0,0"]) == 2
    assert "repeats a combination" in capsys.readouterr().err


def test_a_population_too_large_for_the_device_fails_before_training(tmp_path):
    from baselines.population_memory import memory_per_member

    configs = [tiny(seed=s, target_n=5) for s in range(4)]
    need = memory_per_member(configs[0])
    assert need > 2 * 4 * 22 * 32 * 16  # more than the float32 trajectory and its gradient at N=5 (22 states)
    assert memory_per_member(tiny(hidden_size=32, target_n=5)) > need  # grows with the hidden size
    with pytest.raises(ValueError, match=r"population of 4 needs about .* use at most 2 members"):
        Population(configs, [tmp_path / f"m{k}" for k in range(4)], available_memory=int(2.5 * need))
    assert not any(tmp_path.iterdir())  # nothing written
    population = Population(configs[:2], [tmp_path / "a", tmp_path / "b"], available_memory=int(2.5 * need))
    progress = population.progress([])
    assert progress["memory_per_member_estimate"] == need and progress["peak_memory_per_member"] > 0


def test_reproduce_trains_every_seed_as_one_population(tmp_path):
    from baselines.reproduce import reproduce

    logs = []
    summaries = reproduce("smoke", tmp_path / "repro", seeds=(0, 1), log=logs.append)
    # one population per core: the leaky RNN's 8 networks, then the GRU's 4 and the LSTM's 4
    assert [line.split(" as one")[0] for line in logs if "as one population" in line] == [
        "training 8 networks", "training 4 networks", "training 4 networks"]
    assert [(s["task"], s["curriculum"], s["seed"]) for s in summaries][:3] == [
        ("parity", "single", 0), ("parity", "single", 1), ("parity", "multi", 0)]
    assert (tmp_path / "repro" / "dms-multi-s1" / "summary.json").exists()
    assert (tmp_path / "repro" / "lstm-parity-multi-s1" / "summary.json").exists()
    assert (tmp_path / "repro" / "reproduce.md").read_text().count("\n") == 18  # header, rule, 16 runs


def test_a_non_finite_member_stops_alone_like_its_solo_run(tmp_path):
    configs = [tiny(seed=0, max_steps=100), tiny(seed=1, lr=1e30, max_steps=100)]
    summaries = train_population(configs, [tmp_path / "fine", tmp_path / "diverged"])
    solo = train(configs[1], tmp_path / "solo")
    assert summaries[1]["stopped_because"] == "non_finite" and "lr" in summaries[1]["message"]
    assert {k: summaries[1][k] for k in ("steps", "stopped_because", "message")} == \
           {k: solo[k] for k in ("steps", "stopped_because", "message")}
    assert summaries[0]["stopped_because"] == "max_steps" and summaries[0]["steps"] == 100  # the other goes on
