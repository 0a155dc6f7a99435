"""The paper's authors' published networks: files written here in their format (small H, random
weights; none of their files is vendored) load as our model with their equations' logits, nothing in
them runs code, and import-authors -> analyze works end to end."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pytest
import torch

import agents
from baselines import analysis as A
from baselines.authors import epochs_to_ns, import_authors, read_stats
from baselines.cli import main

H = 6


def chance_corrected(accuracy: float, baseline: float) -> float:
    """The paper's (accuracy - 0.5) / (baseline - 0.5); NaN for a baseline at or below chance."""
    return (accuracy - 0.5) / (baseline - 0.5) if baseline > 0.5 else float("nan")


def authors_state(heads: int, seed: int, tau_values: int | None = H) -> dict[str, torch.Tensor]:
    """A state_dict laid out as the authors' RNN_Stack saves it (one layer of H units, `heads` readouts),
    with a non-zero recurrent diagonal (their forward zeroes it) and some raw taus below 1."""
    g = torch.Generator().manual_seed(seed)
    state = {"parameterlist.0": (0.7 + 1.5 * torch.rand(tau_values, generator=g)) if tau_values else torch.tensor([2.0]),
             "modulelist.0.weight": torch.randn(H, 1, generator=g), "modulelist.0.bias": torch.randn(H, generator=g),
             "modulelist.1.weight": torch.randn(H, H, generator=g) / H ** 0.5,
             "modulelist.1.bias": 0.1 * torch.randn(H, generator=g)}
    for i in range(heads):
        state[f"modulelist.{2 + i}.weight"] = torch.randn(2, H, generator=g)
        state[f"modulelist.{2 + i}.bias"] = torch.randn(2, generator=g)
    return state


def write_network(path, heads: int = 4, seed: int = 0, **kwargs) -> dict[str, torch.Tensor]:
    state = authors_state(heads, seed, **kwargs)
    torch.save({"state_dict": state}, path)
    return state


def their_logits(state, x, h0, mod: bool) -> list[torch.Tensor]:
    """Their equations, step by step in float64: h = phi((1 - 1/tau') h + (W0 h + b + W_in x + b_in) / tau')
    (mod: h = (1 - 1/tau') h + phi(W0 h + b + W_in x + b_in) / tau'), W0 = W with a zero diagonal,
    tau' = max(tau, 1), phi = LeakyReLU(0.01); the readouts of the last step."""
    s = {k: v.double() for k, v in state.items()}
    tau = s["parameterlist.0"].clamp(min=1.0)
    w = s["modulelist.1.weight"].clone()
    w.fill_diagonal_(0.0)
    phi = torch.nn.functional.leaky_relu
    h = h0.double()
    for t in range(x.shape[0]):
        drive = h @ w.T + s["modulelist.1.bias"] + x[t].double() @ s["modulelist.0.weight"].T + s["modulelist.0.bias"]
        h = (1 - 1 / tau) * h + (phi(drive) if mod else drive) / tau
        h = h if mod else phi(h)
    heads = (len(s) - 5) // 2
    return [h @ s[f"modulelist.{2 + i}.weight"].T + s[f"modulelist.{2 + i}.bias"] for i in range(heads)]


@pytest.mark.parametrize("variant", ["standard", "mod"])
def test_loaded_network_gives_their_logits_in_float64(tmp_path, device, variant):
    state = write_network(tmp_path / "rnn_N2_N5", heads=6)  # 6 heads stored, 4 Ns named: 2 readouts unused
    model = agents.load_authors(tmp_path / "rnn_N2_N5", variant=variant).double().to(device)
    assert model.ns == [2, 3, 4, 5] and model.core.variant == variant
    assert not model.core.weight_hh.diagonal().any()  # dropped, as their forward does
    assert torch.equal(model.core.time_constant.raw.cpu().float(), state["parameterlist.0"])  # raw, < 1 kept
    x = torch.bernoulli(torch.full((40, 3, 1), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    h0 = 0.1 * torch.rand(3, H, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ours = model(x.to(device), state=h0.to(device))
    theirs = their_logits(state, x, h0, mod=variant == "mod")
    for i, n in enumerate(model.ns):
        torch.testing.assert_close(ours[n].cpu(), theirs[i], rtol=0, atol=1e-12)


def test_single_head_file_and_fixed_tau(tmp_path):
    write_network(tmp_path / "rnn_N7_N7", heads=3, tau_values=None)  # fixed tau: parameterlist.0 = [2.0]
    model = agents.load_authors(tmp_path / "rnn_N7_N7")
    assert model.ns == [7] and not model.core.time_constant.trainable
    assert torch.equal(model.tau, torch.full((H,), 2.0))
    state = torch.load(tmp_path / "rnn_N7_N7", weights_only=True)["state_dict"]
    assert torch.equal(model.head(7).weight, state["modulelist.2.weight"])  # head 0 answers the file's N


def test_variant_from_folder_name_and_ns_argument(tmp_path):
    folder = tmp_path / "cumulative_parity_mod_leakyrelu_network_1"
    folder.mkdir()
    write_network(folder / "rnn_init")
    with pytest.raises(ValueError, match="ns: rnn_init does not name its Ns"):
        agents.load_authors(folder / "rnn_init")
    model = agents.load_authors(folder / "rnn_init", ns=[2, 3])
    assert model.ns == [2, 3] and model.core.variant == "mod"
    with pytest.raises(ValueError, match="ns must be distinct integers"):
        agents.load_authors(folder / "rnn_init", ns=[2, 2])
    with pytest.raises(agents.CheckpointError, match="has 4 readout heads, fewer than the 5 Ns"):
        agents.load_authors(folder / "rnn_init", ns=[1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="variant must be one of"):
        agents.load_authors(folder / "rnn_init", ns=[2], variant="other")


class Trap:
    """An object whose unpickling would create the file `marker` (code a loader must never run)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_network_file_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"state_dict": authors_state(2, 0), "trap": Trap(marker)}, tmp_path / "rnn_N2_N3")
    with pytest.raises(agents.CheckpointError, match="rnn_N2_N3 is not a weights-only torch file"):
        agents.load_authors(tmp_path / "rnn_N2_N3")
    assert not marker.exists()
    (tmp_path / "rnn_N2_N4").write_bytes(b"not a torch file")
    with pytest.raises(agents.CheckpointError, match="rnn_N2_N4"):
        agents.load_authors(tmp_path / "rnn_N2_N4")
    torch.save({"state_dict": {"parameterlist.0": torch.ones(3)}}, tmp_path / "rnn_N2_N5")
    with pytest.raises(agents.CheckpointError, match="no tensor 'modulelist.1.weight'"):
        agents.load_authors(tmp_path / "rnn_N2_N5")


def write_stats(path, accuracy: list[list[float]], loss: list[float] | None = None) -> None:
    """stats.npy as their train.py writes it: np.save of a dict of lists (a pickled 0-d object array)."""
    loss = [float(i) for i in range(len(accuracy))] if loss is None else loss
    np.save(path, {"loss": [np.float64(v) for v in loss], "accuracy": [np.array(a) for a in accuracy]})


def test_read_stats_reads_theirs_and_runs_no_code(tmp_path):
    write_stats(tmp_path / "stats.npy", [[100.0], [90.0, 60.0]], [0.5, 0.25])
    stats = read_stats(tmp_path / "stats.npy")
    assert stats["loss"] == [0.5, 0.25] and [a.tolist() for a in stats["accuracy"]] == [[100.0], [90.0, 60.0]]
    marker = tmp_path / "ran"
    header = np.lib.format.header_data_from_array_1_0(np.empty((), dtype=object))
    with open(tmp_path / "crafted.npy", "wb") as f:  # a valid .npy header, then a pickle that calls open()
        np.lib.format.write_array_header_1_0(f, header)
        pickle.dump({"loss": [Trap(marker)], "accuracy": []}, f, protocol=2)
    with pytest.raises(ValueError, match=r"crafted.npy is not one of the authors' stats.npy files \(global "
                                         r"(builtins|io)\.open is not allowed"):
        read_stats(tmp_path / "crafted.npy")
    assert not marker.exists()
    np.save(tmp_path / "floats.npy", np.zeros(3))
    with pytest.raises(ValueError, match="expected a pickled dict"):
        read_stats(tmp_path / "floats.npy")


def test_epochs_to_ns_replays_their_curriculum():
    acc = [np.array(a) for a in ([99.0], [100.0, 97.0], [100.0, 99.0], [99.0, 99.0, 99.5])]
    active, solved = epochs_to_ns(acc, "multi", [2])
    assert active == [[2], [2, 3], [2, 3], [2, 3, 4]] and solved == {2: 1, 3: 3, 4: 4}
    active, solved = epochs_to_ns([np.array([99.0]), np.array([50.0]), np.array([99.0])], "single", [5])
    assert active == [[5], [6], [6]] and solved == {5: 1, 6: 3}
    active, solved = epochs_to_ns([np.array([99.0] * 3), np.array([99.0] * 3)], "sliding", [2, 3, 4], drop=2)
    assert active == [[2, 3, 4], [4, 5, 6]] and solved == {4: 1, 6: 2}
    with pytest.raises(ValueError, match="epoch 2: 1 head accuracies"):
        epochs_to_ns([np.array([99.0]), np.array([99.0])], "multi", [2])


def authors_folder(tmp_path, name: str = "cumulative_parity_network_1"):
    folder = tmp_path / "trained_models" / name
    folder.mkdir(parents=True)
    for seed, last in enumerate((2, 3)):
        write_network(folder / f"rnn_N2_N{last}", heads=5, seed=seed)
    write_network(folder / "rnn_init", heads=5, seed=9)
    write_stats(folder / "stats.npy", [[100.0], [95.0, 60.0], [100.0, 99.0], [99.0, 70.0, 55.0]])
    return folder


def test_import_authors_then_analyze_end_to_end(tmp_path, capsys):
    src = authors_folder(tmp_path)
    out = tmp_path / "imported"
    assert main(["import-authors", str(src), str(out)]) == 0
    assert "epochs to each N (stats.npy): N=2: 1, N=3: 3" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["curriculum"] == "multi" and config["hidden_size"] == H and config["eval_every"] == 600
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [600, 1200, 1800, 2400] and lines[3]["ns"] == [2, 3, 4]
    assert lines[1]["accuracy"] == {"2": 0.95, "3": 0.6}
    assert json.loads((out / "summary.json").read_text())["epochs_to_n"] == {"2": 1, "3": 3}
    loaded = agents.load(out / "checkpoints" / "n003")
    theirs = agents.load_authors(src / "rnn_N2_N3")
    assert loaded.ns == [2, 3] and all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                                          theirs.state_dict().values()))
    assert agents.load(out / "checkpoints" / "init").ns == [2]
    assert main(["analyze", str(out), "--fit", "authors", "--drive-p", "uniform", "--steps", "400", "--trials", "2",
                 "--k", "2", "--draws", "1", "--eps", "0,0.5", "--tau-eps", "0,0.5", "--stream-length", "200",
                 "--pca-steps", "100", "--eval-batches", "1", "--eval-batch-size", "16", "--no-plots"]) == 0
    with open(out / "analysis" / "timescales.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["n"] for r in rows] == ["2", "3"] and {r["fit_rule"] for r in rows} == {"authors"}
    assert {r["drive_p"] for r in rows} == {"uniform"}
    with open(out / "analysis" / "ablation.csv") as f:
        ablation = list(csv.DictReader(f))
    for r in ablation:
        acc, intact = float(r["accuracy"]), float(r["intact"])
        assert float(r["relative_chance"]) == pytest.approx(chance_corrected(acc, intact), nan_ok=True)
    # a second import into the same folder is refused, and the folder is unchanged
    before = (out / "metrics.jsonl").read_bytes()
    assert main(["import-authors", str(src), str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err and (out / "metrics.jsonl").read_bytes() == before


def test_import_authors_refuses_bad_input_before_writing(tmp_path, capsys):
    src = authors_folder(tmp_path, "my_network")
    out = tmp_path / "imported"
    assert main(["import-authors", str(src), str(out)]) == 2
    assert "cannot tell the curriculum from the folder name 'my_network'" in capsys.readouterr().err
    assert not out.exists()
    (src / "stats.npy").write_bytes(b"garbage")
    assert main(["import-authors", str(src), str(out), "--curriculum", "multi", "--task", "parity"]) == 2
    assert "stats.npy is not one of the authors' stats.npy files" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        main(["import-authors", str(src), str(out), "--curriculum", "cumulative"])
    assert "invalid choice: 'cumulative'" in capsys.readouterr().err


def test_single_head_folder_imports_one_head_per_checkpoint(tmp_path):
    folder = tmp_path / "single_parity_network_1"
    folder.mkdir()
    for n in (2, 3):
        write_network(folder / f"rnn_N{n}_N{n}", heads=2, seed=n)
    write_stats(folder / "stats.npy", [[99.0], [90.0], [99.5]])
    summary = import_authors(folder, tmp_path / "out")
    assert summary["curriculum"] == "single" and summary["epochs_to_n"] == {"2": 1, "3": 3}
    assert A.load_run(tmp_path / "out").load(3).ns == [3]


def test_drive_p_uniform_draws_one_p_per_trial(device):
    core = agents.make_core("leaky", 1, 4, generator=torch.Generator().manual_seed(0)).to(device)
    seen = {}
    for p in (0.5, "uniform"):
        chunks = []
        A.drive(core, lambda hidden, x, state: chunks.append(x.cpu()), trials=12, steps=4000, burn_in=10, seed=3, p=p)
        seen[p] = torch.cat(chunks)[:, :, 0]  # [T, trials]
    half = (seen[0.5].mean(0) - 0.5).abs()
    assert float(half.max()) < 0.05  # p = 0.5 for every trial
    rates = seen["uniform"]
    first, second = rates[:2000].mean(0), rates[2000:].mean(0)
    assert float(first.std()) > 0.15  # the trials' bit rates spread over (0, 1) ...
    assert float((first - second).abs().max()) < 0.05  # ... and each trial keeps its own p
    for bad in (1.5, "half", True):
        with pytest.raises(A.AnalysisError, match="drive p must be a number in \\[0, 1\\] or 'uniform'"):
            A.drive(core, lambda *a: None, trials=1, steps=5, p=bad)


def test_authors_fit_caps_taus_at_100_and_frees_the_amplitude():
    lags = np.arange(31.0)
    fit = A.fit_timescale(0.8 * np.exp(-lags / 4.0), rule="authors")  # amplitude 0.8 < 1 is fitted, not assumed
    assert fit["tau_single"] == pytest.approx(4.0, rel=1e-4) and fit["tau"] == pytest.approx(4.0, rel=1e-4)
    assert fit["flag"] == ""
    slow = A.fit_timescale(np.exp(-lags / 500.0), rule="authors")
    assert slow["tau"] == pytest.approx(100.0) and slow["flag"] == "bound"
    mix = A.fit_timescale(0.5 * np.exp(-lags / 2.0) + 0.5 * np.exp(-lags / 20.0), rule="authors")
    assert mix["model"] == 2 and mix["tau"] == pytest.approx(20.0, rel=1e-3)


def test_lesions_rank_by_raw_tau_with_seeded_ties_and_report_chance_corrected(tmp_path, device):
    state = authors_state(2, 0)
    state["parameterlist.0"] = torch.tensor([0.5, 0.9, 1.0, 1.0, 1.0, 3.0])  # tau' ties at 1, raw distinct below
    torch.save({"state_dict": state}, tmp_path / "rnn_N2_N3")
    model = agents.load_authors(tmp_path / "rnn_N2_N3").to(device)
    stream = A.make_stream("parity", 3, length=200, batch_size=2)
    rows = A.ablation(model, stream, k=3, seed=0)
    fast = [r["neuron"] for r in rows if r["group"] == "fast"]
    assert fast[:2] == [0, 1] and fast[2] in (2, 3, 4)  # raw tau 0.5, 0.9, then one of the tied 1.0s
    assert [r["neuron"] for r in rows if r["group"] == "slow"][0] == 5
    assert [r["tau"] for r in rows if r["group"] == "fast"][:2] == [0.5, pytest.approx(0.9)]
    tied = {tuple(A.tau_order(np.array([1.0] * 6), seed)) for seed in range(6)}
    assert len(tied) > 1 and A.tau_order(np.array([1.0] * 6), 4).tolist() == A.tau_order(np.array([1.0] * 6), 4).tolist()
    for r in rows:
        assert r["relative_chance"] == pytest.approx(chance_corrected(r["accuracy"], r["intact"]), nan_ok=True)
        assert r["relative"] == pytest.approx(r["accuracy"] / r["intact"])
    assert A.relative_accuracies(0.75, 1.0) == {"relative": 0.75, "relative_chance": 0.5}
