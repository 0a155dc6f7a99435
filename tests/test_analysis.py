"""Correctness of the analyses (baselines.analysis): the tau_net estimator on known timescales,
ablation and perturbation semantics, and clear errors for bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

import agents
from baselines import analysis as A
from baselines.cli import main
from baselines.trainer import TrainConfig, build_model

torch.set_num_threads(2)


def ar1(tau: float, steps: int, trials: int, rng: np.random.Generator) -> np.ndarray:
    """x_t = exp(-1/tau) x_{t-1} + noise, [T, B]; unit stationary variance."""
    a = math.exp(-1.0 / tau)
    noise = rng.standard_normal((steps, trials)) * math.sqrt(1 - a * a)
    return lfilter([1.0], [1.0, -a], noise, axis=0)


def normalized_ac(x: np.ndarray) -> np.ndarray:
    ac = A.autocorrelation(x, max_lag=30)[:, 0]
    return ac / ac[0]


@pytest.mark.parametrize("tau", [3.0, 10.0, 30.0])
def test_tau_net_recovers_ar1_timescale(tau):
    x = ar1(tau, 50_000, 10, np.random.default_rng(int(tau)))
    fit = A.fit_timescale(normalized_ac(x))
    assert abs(fit["tau"] - tau) < 0.1 * tau, fit


def test_tau_net_recovers_slow_timescale_of_a_mixture():
    rng = np.random.default_rng(7)
    x = ar1(3.0, 50_000, 10, rng) + ar1(30.0, 50_000, 10, rng)  # AC = (e^{-k/3} + e^{-k/30}) / 2
    fit = A.fit_timescale(normalized_ac(x))
    assert fit["model"] == 2 and abs(fit["tau"] - 30.0) < 3.0, fit
    assert abs(fit["tau_fast"] - 3.0) < 0.3


def test_chunked_fft_autocovariance_is_exact():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1003, 3, 4)).cumsum(0) * 0.1 + 5.0  # a large mean: exact mean subtraction
    got = A.autocorrelation(x, max_lag=30, chunk=97)
    xm = x - x.mean(0)
    want = np.stack([(xm[: 1003 - k] * xm[k:]).sum(0) / 1003 for k in range(31)]).mean(1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_fit_fails_to_nan_and_silent_neuron():
    assert math.isnan(A.fit_timescale(np.full(31, np.nan))["tau"])
    fits = A.fit_timescales(np.zeros((31, 2)))
    assert all(math.isnan(f["tau"]) and f["model"] == 0 for f in fits)


# ----- run folders --------------------------------------------------------------------------
def fake_run(path, curriculum: str = "multi", core: str = "leaky", ns=(2, 3, 4), hidden: int = 12):
    """A run folder with the trainer's layout whose checkpoints are freshly initialised models
    (the analyses' semantics do not depend on training; this keeps the tests fast)."""
    config = TrainConfig(curriculum=curriculum, core=core, hidden_size=hidden, device="cpu")
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config.to_json()))
    for n in ns:
        heads = [n] if curriculum == "single" else list(range(2, n + 1))
        model = build_model(config, heads, torch.Generator().manual_seed(n))
        agents.save(model, path / "checkpoints" / f"n{n:03d}")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"multi": fake_run(root / "multi"), "single": fake_run(root / "single", "single"),
            "lstm": fake_run(root / "lstm", core="lstm", ns=(2,))}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real (tiny) training run, as the trainer writes it."""
    from baselines.trainer import train

    path = tmp_path_factory.mktemp("trained") / "run"
    train(TrainConfig(hidden_size=16, batch_size=32, eval_every=20, eval_batches=2, max_steps=60, threshold=0.9,
                      target_n=4, optimizer="adam", lr=0.01, device="cpu"), path)
    return path


def test_ablation_copies_and_zeroes(runs):
    model = A.load_run(runs["multi"]).load(4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ablated = A.ablate(model, [3, 5])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    core = ablated.core
    for i in (3, 5):
        assert not core.weight_hh[i].any() and not core.weight_hh[:, i].any()
        assert not core.weight_ih[i].any() and core.bias_ih[i] == 0 and core.bias_hh[i] == 0
        for n in ablated.ns:
            assert not ablated.head(n).weight[:, i].any()
    assert core.weight_hh[4].any() and torch.equal(core.weight_ih[4], model.core.weight_ih[4])
    kept = A.ablate(model, 3, zero_bias=False)
    assert kept.core.bias_hh[3] == model.core.bias_hh[3]


def test_ablation_of_lstm_zeroes_every_gate(runs):
    model = A.load_run(runs["lstm"]).load(2)
    rnn = A.ablate(model, 1).core.rnn
    h = model.core.hidden_size
    for g in range(4):
        assert not rnn.weight_hh_l0[g * h + 1].any() and not rnn.weight_ih_l0[g * h + 1].any()
    assert not rnn.weight_hh_l0[:, 1].any()


def test_ablation_rows(runs, device):
    model = A.load_run(runs["single"]).load(3, device)
    assert model.tau.device.type == device.type
    stream = A.make_stream("parity", 3, length=300, batch_size=2)
    rows = A.ablation(model, stream, k=2)
    assert [r["group"] for r in rows] == ["slow", "slow", "fast", "fast"]
    tau = model.tau.detach()
    assert rows[0]["tau"] == pytest.approx(float(tau.max())) and rows[2]["tau"] == pytest.approx(float(tau.min()))
    assert all(r["relative"] == pytest.approx(r["accuracy"] / r["intact"]) for r in rows)


@pytest.mark.parametrize("kind", ["weight", "tau"])
def test_perturbation_eps_zero_is_exact_baseline(runs, kind, device):
    model = A.load_run(runs["multi"]).load(4, device)
    stream = A.make_stream("parity", 4, length=300, batch_size=2)
    baseline = A.streaming_accuracy(model, stream)
    rows = A.perturbation(model, stream, kind=kind, eps=[0.0, 0.5], draws=2, seed=1)
    zero = [r for r in rows if r["eps"] == 0]
    assert zero and all(r["accuracy"] == baseline and r["relative"] == 1.0 for r in zero)
    again = A.perturbation(model, stream, kind=kind, eps=[0.0, 0.5], draws=2, seed=1)
    assert again == rows  # seeded


def test_perturbations_change_only_their_target(runs, device):
    model = A.load_run(runs["multi"]).load(4, device)
    g = torch.Generator().manual_seed(0)  # the run's CPU generator, whatever the model's device
    w = A.perturb_weights(model, 0.2, g)
    diff = (w.core.weight_hh - model.core.weight_hh).detach()
    assert torch.equal(torch.diagonal(w.core.weight_hh), torch.zeros(12, device=device))  # no self-connections
    assert diff.norm().item() == pytest.approx(0.2 * model.core.recurrent_weight().norm().item(), rel=1e-4)
    t = A.perturb_tau(model, 0.1, g)
    assert bool((t.tau >= model.tau).all()) and (t.tau - model.tau).norm().item() == pytest.approx(
        0.1 * model.tau.norm().item(), rel=1e-4)
    assert torch.equal(A.perturb_weights(model, 0.0, g).core.weight_hh, model.core.weight_hh)


def test_forgetting_matrix_heads(runs, device):
    run = A.load_run(runs["multi"])
    rows, cols, m = A.forgetting_matrix(run, beyond=2, batches=1, batch_size=32, device=device)
    assert rows == [2, 3, 4] and cols == list(range(2, 7))
    assert math.isnan(m[0, cols.index(3)]) and not math.isnan(m[2, cols.index(4)])  # head 3 only from n003
    single = A.load_run(runs["single"])
    _, _, ms = A.forgetting_matrix(single, beyond=2, batches=1, batch_size=32, device=device)
    assert not np.isnan(ms).any()  # the one head answers every N


def test_network_timescales_and_dimensionality_shapes(runs, device):
    model = A.load_run(runs["lstm"]).load(2, device)
    r = A.network_timescales(model, trials=2, steps=400, burn_in=20, chunk=128)
    assert r["tau_net"].shape == (12,) and r["population_ac"].shape == (31,)
    assert r["population_ac"][0] == pytest.approx(1.0)
    assert 0 < r["forget_timescale"]["mean_forget_gate"] < 1 and r["forget_timescale"]["timescale"] > 1
    d = A.dimensionality(model, trials=2, steps=300, burn_in=10)
    assert 1 <= d["components"] <= 12 and d["explained_ratio"].sum() == pytest.approx(1.0)


# ----- command line -------------------------------------------------------------------------
def run_cli(*argv) -> int:
    return main(["analyze", *map(str, argv)])


SMALL = ["--steps", "200", "--trials", "2", "--burn-in", "10", "--pca-steps", "100", "--k", "2", "--draws", "2",
         "--eps", "0,0.5", "--tau-eps", "0,0.5", "--stream-length", "200", "--stream-batch", "2",
         "--eval-batches", "1", "--eval-batch-size", "32", "--beyond", "1"]


def test_cli_writes_tables_figures_and_comparison(runs, trained, tmp_path, capsys):
    assert run_cli(runs["multi"], trained, *SMALL, "--compare-dir", tmp_path / "cmp") == 0
    out = runs["multi"] / "analysis"
    for name in ("timescales", "ablation", "perturbation", "forgetting", "dimensionality"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.png").is_file()
    assert (trained / "analysis" / "timescales.csv").is_file()
    assert (tmp_path / "cmp" / "compare_timescales.png").is_file()
    table = A.read_csv(out / "timescales.csv")
    assert [r["n"] for r in table] == [2, 3, 4]


@pytest.mark.parametrize("case", ["not_a_run", "bare_core", "no_head", "bad_analysis", "no_checkpoints", "bad_device"])
def test_cli_bad_input_exits_2(runs, tmp_path, capsys, case):
    argv: list = [runs["multi"], *SMALL, "--no-plots", "--out", tmp_path / "o"]
    if case == "not_a_run":
        argv[0] = tmp_path
    elif case == "bare_core":
        bad = fake_run(tmp_path / "core", ns=(2,))
        agents.save(agents.make_core("gru", 1, 4), bad / "checkpoints" / "n002")
        (bad / "checkpoints" / "n002" / "model.safetensors").unlink()
        agents.save(agents.make_core("gru", 1, 4), bad / "checkpoints" / "n002")
        argv[0] = bad
    elif case == "no_head":
        argv += ["--analyses", "ablation", "--n", "9"]
    elif case == "bad_analysis":
        argv += ["--analyses", "timescales,spectra"]
    elif case == "bad_device":
        argv += ["--device", "tpu"]
    else:
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text("{}")
        argv[0] = tmp_path / "empty"
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("memory-envs: error:") and "Traceback" not in err
    assert {"not_a_run": "not a run folder", "bare_core": "not a MultiHeadModel", "no_head": "N=9",
            "bad_analysis": "spectra", "no_checkpoints": "no checkpoints", "bad_device": "device must be"}[case] in err


def test_head_check_in_library(runs):
    model = A.load_run(runs["single"]).load(3)
    with pytest.raises(A.AnalysisError, match="no head for N=4"):
        A.streaming_accuracy(model, A.make_stream("parity", 4, length=50, batch_size=1))


def test_docs_example_runs():
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "analysis.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(doc), "exec"), {})
