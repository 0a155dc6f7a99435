"""Correctness of the analyses (baselines.analysis): the tau_net estimator on known timescales,
ablation and perturbation semantics, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path
import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

import agents
from baselines import analysis as A
from baselines.cli import main
from baselines.trainer import TrainConfig, build_model


def ar1(tau: float, steps: int, trials: int, rng: np.random.Generator) -> np.ndarray:
    """x_t = exp(-1/tau) x_{t-1} + noise, [T, B]; unit stationary variance."""
    a = math.exp(-1.0 / tau)
    noise = rng.standard_normal((steps, trials)) * math.sqrt(1 - a * a)
    return lfilter([1.0], [1.0, -a], noise, axis=0)


# ----- tau_net against ground truth (issue 16) ------------------------------------------------
@pytest.mark.parametrize("case", A.PAPER_CHECK_CASES, ids=lambda c: c.label)
def test_tau_net_recovers_known_timescales_at_paper_size(case):
    """20 synthetic neurons per case, 10 trials x 1e5 steps, through network_timescales' fitting path:
    >= 95% within 10% of the truth (the slower timescale of a mixture), none at a bound. The weak
    mixture (slow share 0.1) is held to 90%: over 200-300 neurons it measures 92.5-93%
    (docs/analysis.md), so a 95% pass on 20 neurons would be luck, not a property."""
    (row,) = A.fit_accuracy([case], trials=10, steps=100_000, neurons=20, seed=0)
    weak_mixture = case.fast is not None and case.slow_share < 0.5
    assert row["share_within"] >= (0.90 if weak_mixture else 0.95) and row["neurons_at_bound"] == 0, row


def test_paper_rule_fits_lags_0_to_30_with_aic():
    rng = np.random.default_rng(3)
    ac = np.exp(-np.arange(301) / 20.0) + 0.01 * rng.standard_normal(301).cumsum() / 10
    ac[0] = 1.0
    paper = A.fit_timescale(ac[:31], rule="paper")
    assert paper["window"] == 30 and paper == A.fit_timescale(ac[:31], rule="paper", min_weight=0.0)
    tail = ac.copy()
    tail[31:] = 0.5  # lags past 30 never enter the paper fit
    assert A.fit_timescale(tail[:31], rule="paper") == paper
    lags = np.arange(31.0)
    fits = {1: np.exp(-lags / paper["tau_single"]),
            2: paper["a_slow"] * np.exp(-lags / paper["tau_slow"])
            + (1 - paper["a_slow"]) * np.exp(-lags / paper["tau_fast"])}
    scores = {m: A.aic(float(np.sum((f - ac[:31]) ** 2)), 31, 1 if m == 1 else 3) for m, f in fits.items()}
    assert paper["model"] == min(scores, key=scores.get)  # plain AIC, no weight guard


def test_robust_rule_window_adapts_and_flags_the_lag_bound():
    lags = np.arange(2001.0)
    single = A.fit_timescale(np.exp(-lags / 200.0), samples=10**6)
    assert single["model"] == 1 and single["tau"] == pytest.approx(200.0, rel=1e-3)
    assert single["window"] == pytest.approx(800, rel=0.2) and single["flag"] == ""
    short = A.fit_timescale(np.exp(-lags[:101] / 200.0), samples=10**6)  # wants 800 lags, has 100
    assert short["flag"] == "bound" and short["window"] == 100
    mixture = A.fit_timescale(0.7 * np.exp(-lags / 3.0) + 0.3 * np.exp(-lags / 40.0), samples=10**6)
    assert mixture["model"] == 2 and mixture["tau"] == pytest.approx(40.0, rel=1e-3)
    assert mixture["tau_fast"] == pytest.approx(3.0, rel=1e-3)
    with pytest.raises(A.AnalysisError, match="samples"):
        A.fit_timescale(np.exp(-lags[:31] / 5.0))
    with pytest.raises(A.AnalysisError, match="fit rule"):
        A.fit_timescale(np.exp(-lags[:31] / 5.0), rule="aic")


def test_bartlett_covariance_matches_simulated_estimates():
    """ar1_ac_covariance (the GLS weights) against the spread of autocorrelation estimates of 400 series."""
    tau, steps, lags = 5.0, 4000, np.array([1.0, 5.0, 15.0])
    x = ar1(tau, steps, 400, np.random.default_rng(11))
    x = x - x.mean(0)
    r = np.stack([(x[: steps - int(k)] * x[int(k):]).sum(0) for k in lags]) / (x * x).sum(0)
    want = A.ar1_ac_covariance(tau, lags, steps)
    np.testing.assert_allclose(np.cov(r), want, rtol=0.25, atol=0.1 * want.max())


def test_tau_net_summary_median_and_shares():
    taus = np.array([2.0, 3.0, 4.0, 99_999.0, math.nan, 0.5])
    flags = ["", "", "", "bound", "failed", ""]
    s = A.tau_net_summary(taus, [{"flag": f} for f in flags])
    assert s["tau_net_median"] == pytest.approx(3.5) and s["tau_net_mean"] == pytest.approx(100_008 / 4)
    assert (s["neurons_tau_net_gt1"], s["neurons_failed"], s["neurons_at_bound"]) == (4, 1, 1)
    assert s["share_failed_or_bound"] == pytest.approx(2 / 6)


def test_chunked_fft_autocovariance_is_exact():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1003, 3, 4)).cumsum(0) * 0.1 + 5.0  # a large mean: exact mean subtraction
    got = A.autocorrelation(x, max_lag=30, chunk=97)
    xm = x - x.mean(0)
    want = np.stack([(xm[: 1003 - k] * xm[k:]).sum(0) / 1003 for k in range(31)]).mean(1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    long = A.autocorrelation(x, max_lag=400, chunk=401)  # lags past the chunk length, one pass
    want = np.stack([(xm[: 1003 - k] * xm[k:]).sum(0) / 1003 for k in range(401)]).mean(1)
    np.testing.assert_allclose(long, want, rtol=1e-9, atol=1e-12)


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
    tau = A.trained_tau(model.core).detach()  # ranked by the raw tau, as the authors do
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


def test_tau_perturbation_on_raw_tau_then_clamp(runs, device):
    """The paper perturbs the raw tau (which may sit below 1) and clamps after; "clamped" perturbs tau'."""
    model = A.load_run(runs["multi"]).load(4, device)
    raw = torch.linspace(0.2, 2.5, 12)
    with torch.no_grad():
        model.core.time_constant.raw.copy_(raw)
    clamped = raw.clamp_min(1.0).to(torch.float64)
    d = torch.randn(12, generator=torch.Generator().manual_seed(5), dtype=torch.float64).abs()
    paper = A.perturb_tau(model, 0.5, torch.Generator().manual_seed(5))
    want_raw = raw.to(torch.float64) + 0.5 * raw.to(torch.float64).norm() / d.norm() * d
    torch.testing.assert_close(paper.core.time_constant.raw.cpu().double(), want_raw, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(paper.tau.cpu().double(), want_raw.clamp_min(1.0), rtol=1e-6, atol=1e-6)
    ours = A.perturb_tau(model, 0.5, torch.Generator().manual_seed(5), on="clamped")
    torch.testing.assert_close(ours.tau.cpu().double(), clamped + 0.5 * clamped.norm() / d.norm() * d,
                               rtol=1e-6, atol=1e-6)
    assert not torch.allclose(paper.tau, ours.tau)
    assert torch.equal(model.core.time_constant.raw.cpu(), raw)  # the model itself is untouched
    with pytest.raises(A.AnalysisError, match="clamped"):
        A.perturb_tau(model, 0.1, torch.Generator(), on="tau'")


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
    assert r["tau_net"].shape == (12,) and r["population_ac"].shape == (A.default_max_lag("robust", 400) + 1,)
    assert A.network_timescales(model, trials=2, steps=400, burn_in=20, rule="paper")["autocov"].shape == (31, 12)
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
    assert all(r["fit_rule"] == "robust" and r["tau_net_median"] > 0 and 0 <= r["share_failed_or_bound"] <= 1
               for r in table)
    printed = capsys.readouterr().out
    assert "note: reduced size (2 trials x 200 steps" in printed
    wrote = next(line for line in printed.splitlines() if line.strip().startswith("wrote"))
    assert wrote.strip().startswith(f"wrote into {out}: ")  # where, not only what (issue 34, point 6)
    listed = set(wrote.strip().removeprefix(f"wrote into {out}: ").split(", "))
    assert {p.name for p in out.glob("*.png")} <= listed and "population_ac.png" in listed  # every figure named


class Bar:
    """A progress bar that records what analyze_run shows."""

    def __init__(self, shown: list, description: str, total: int) -> None:
        self.description, self.total, self.count, self.closed = description, total, 0, False
        shown.append(self)

    def update(self, n: int) -> None:
        self.count += n

    def close(self) -> None:
        self.closed = True


def test_analyze_run_shows_a_bar_for_each_analysis_of_each_checkpoint(runs, tmp_path):
    shown: list[Bar] = []
    options = A.scaled_options("quick", steps=200, trials=2, burn_in=10, pca_steps=100, k=2, eps=(0.0, 0.5),
                               tau_eps=(0.0, 0.5), stream_length=100, stream_batch=2, eval_batches=1,
                               eval_batch_size=16, beyond=1, ns=(2, 4), plots=False)
    A.analyze_run(runs["multi"], tmp_path / "out", options, progress=lambda d, t: Bar(shown, d, t))
    assert [(b.description, b.total) for b in shown] == [
        ("timescales N=2 (1/2), steps driven", 200), ("timescales N=2 (1/2), neurons fitted", 12),
        ("timescales N=4 (2/2), steps driven", 200), ("timescales N=4 (2/2), neurons fitted", 12),
        ("ablation N=4, neurons", 4), ("weight perturbation N=4, evaluations", 3),
        ("tau perturbation N=4, evaluations", 3), ("forgetting, checkpoints", 3),
        ("dimensionality N=2 (1/2), steps", 100), ("dimensionality N=4 (2/2), steps", 100)]
    assert all(b.closed and b.count == b.total for b in shown)  # each bar ran to its end


@pytest.mark.parametrize("argv, sizes", [
    ([], A.SCALES["quick"]),
    (["--scale", "paper"], {"trials": 10, "steps": 100_000, "k": 20, "draws": 10}),
    (["--scale", "paper", "--k", "3", "--steps", "5000"], {"trials": 10, "steps": 5000, "k": 3}),
    (["--k", "3"], {**A.SCALES["quick"], "k": 3}),
])
def test_cli_runs_a_quick_pass_by_default_with_bars(runs, argv, sizes, capsys, monkeypatch):
    from baselines.cli import analyze as command

    seen = []
    monkeypatch.setattr(command, "reduced_size_warning", lambda options: "note")
    monkeypatch.setattr(command, "analyze_run", lambda run, out, options, log, core_class, progress: seen.append(
        (options, progress)) or {"files": []})
    assert run_cli(runs["multi"], *argv) == 0
    (options, progress), = seen
    assert {name: getattr(options, name) for name in sizes} == sizes
    assert progress is command.progress_bar
    quick = "a quick pass (--scale quick); --scale paper runs the paper's sizes" in capsys.readouterr().out
    assert quick == ("paper" not in argv)


def test_bars_show_on_a_terminal_only(monkeypatch):
    import io
    import sys

    from baselines.cli.analyze import progress_bar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stderr, shown in ((Terminal(), True), (io.StringIO(), False)):  # a log or a pipe: no redraws
        monkeypatch.setattr(sys, "stderr", stderr)
        bar = progress_bar("ablation N=4, neurons", 10)
        bar.update(3)
        bar.close()
        assert ("ablation N=4, neurons:   0%|" in stderr.getvalue()) == shown  # redrawn at most 10 times a second


def test_forgetting_figure_holds_its_whole_title(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from baselines.analysis import report

    seen = []

    def save(fig, path):  # the saved figure's title lies inside the figure, after the layout save_figure makes
        fig.tight_layout()
        fig.canvas.draw()
        title = fig.axes[0].title.get_window_extent()
        box = fig.bbox
        seen.append(title.x0 >= box.x0 and title.x1 <= box.x1 and title.y1 <= box.y1)
        return save_figure(fig, path)

    save_figure = report.save_figure
    monkeypatch.setattr(report, "save_figure", save)
    A.plot_forgetting([2, 3], [2, 3, 4], np.full((2, 3), 0.9), "parity-multi-leaky-h128-s0", tmp_path / "f.png")
    assert seen == [True] and (tmp_path / "f.png").is_file()


def test_the_timescales_figure_draws_what_it_promises(tmp_path, monkeypatch):
    """Issue 34, point 5: the own-timescale marker is promised only where drawn; the neurons' panel shows
    tau_net > 1 on a log axis from 1 and counts the others instead of drawing values down to 1e-3."""
    pytest.importorskip("matplotlib")
    from baselines.analysis import report

    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    summary = [{"n": n, "tau_mean": 1.5, "tau_net_mean": 2.0, "tau_net_median": 1.8, "own_timescale_median": math.nan,
                "own_timescale_measure": "none"} for n in (2, 3)]
    neurons = [{"n": 3, "tau": 1.2, "tau_net": 0.001}, {"n": 3, "tau": 1.5, "tau_net": 3.0},
               {"n": 3, "tau": 1.7, "tau_net": math.nan}, {"n": 2, "tau": 1.1, "tau_net": 5.0}]
    report.plot_timescales([summary], ["run"], tmp_path / "t.png", neurons)
    middle, right = figures[0].axes[1], figures[0].axes[2]
    assert "own" not in middle.get_title()
    assert right.get_title() == "N=3: 1 of 3 neurons with tau_net > 1" and right.get_ylim()[0] == 1
    assert right.collections[0].get_offsets().tolist() == [[1.5, 3.0]]
    own = [{**row, "own_timescale_median": 4.0, "own_timescale_measure": "eigenvalue"} for row in summary]
    report.plot_timescales([own], ["run"], tmp_path / "t.png")
    assert "own timescale (^)" in figures[1].axes[1].get_title() and len(figures[1].axes[1].lines) == 3


def test_a_running_parity_run_is_analyzed_without_nan_or_n(tmp_path):
    """Issue 34, point 6: a core without tau on running parity: its lines name the final network and print
    no "tau mean nan"."""
    from memory_envs.tasks import RUNNING_N

    config = TrainConfig(task="running_parity", core="mamba", hidden_size=8, device="cpu")
    path = tmp_path / "run"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config.to_json()))
    agents.save(build_model(config, [RUNNING_N], torch.Generator().manual_seed(0)), path / "checkpoints" / "final")
    lines = []
    options = A.AnalysisOptions(trials=2, steps=200, burn_in=10, pca_steps=100, plots=False, device="cpu")
    A.analyze_run(path, tmp_path / "out", options, log=lines.append)
    assert any(line.startswith("timescales, the final network: ") for line in lines), lines
    assert not any("nan" in line or "N=0" in line for line in lines), lines


def test_cli_paper_rule_and_options(runs, tmp_path, capsys):
    out = tmp_path / "paper"
    argv = [runs["single"], *SMALL, "--no-plots", "--out", out, "--tau-perturb", "clamped"]
    assert run_cli(*argv, "--analyses", "timescales,perturbation", "--fit", "paper") == 0
    neurons = A.read_csv(out / "timescales_neurons.csv")
    assert {r["window"] for r in neurons if r["fit"]} == {30}
    assert A.read_csv(out / "timescales.csv")[0]["fit_rule"] == "paper"
    assert "note: reduced size" in capsys.readouterr().out
    assert run_cli(*argv, "--analyses", "ablation") == 0
    assert "reduced size" not in capsys.readouterr().out  # no timescales, no note
    for bad, message in ((["--max-lag", "200"], "--max-lag must"), (["--min-weight", "0.7"], "--min-weight")):
        assert run_cli(*argv, *bad) == 2 and message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(*argv, "--fit", "aic")
    with pytest.raises(A.AnalysisError, match="tau_perturb"):
        A.AnalysisOptions(tau_perturb="tau'").check()


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


def test_runs_of_an_external_core_need_its_class_named(tmp_path, capsys, monkeypatch):
    """A run folder never makes analyze import a module: the user names the core's class (issue 13)."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # example_core
    run = fake_run(tmp_path / "elman", core="example_core:ElmanCore", ns=(2,))
    argv = [run, "--analyses", "forgetting", "--eval-batches", "1", "--eval-batch-size", "16", "--beyond", "1",
            "--no-plots"]
    assert run_cli(*argv) == 2
    assert "core_class" in capsys.readouterr().err
    assert run_cli(*argv, "--core-class", "example_core:ElmanCore") == 0
    assert (run / "analysis" / "forgetting.csv").is_file()
    assert run_cli(*argv, "--core-class", "example_core:Nope") == 2
    assert "no attribute 'Nope'" in capsys.readouterr().err
    (tmp_path / "listed").mkdir()
    (tmp_path / "listed" / "config.json").write_text("[]")  # not an object: named, no traceback
    assert run_cli(tmp_path / "listed", "--no-plots") == 2
    assert "config.json must hold a JSON dict" in capsys.readouterr().err


def test_the_perturbation_figure_draws_accuracies_below_chance(tmp_path, monkeypatch):
    """A perturbed network below chance (chance-corrected < 0) is drawn, not cut off at -0.1."""
    pytest.importorskip("matplotlib")
    from baselines.analysis import report

    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    rows = [{"kind": kind, "eps": eps, "relative_chance": value} for kind in ("weight", "tau")
            for eps, value in ((0.1, 0.9), (1.0, -0.4))]
    report.plot_perturbation([rows], ["run"], tmp_path / "p.png")
    assert all(ax.get_ylim()[0] <= -0.45 for ax in figures[0].axes)


def test_the_forgetting_figure_leaves_out_the_ns_no_checkpoint_has_a_head_for(tmp_path, monkeypatch):
    """A multi-head network has no head past its largest N: those columns would be blank; they are left out."""
    pytest.importorskip("matplotlib")
    from baselines.analysis import report

    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    matrix = np.array([[1.0, np.nan, np.nan, np.nan], [1.0, 0.9, np.nan, np.nan]])
    report.plot_forgetting([2, 3], [2, 3, 4, 5], matrix, "multi", tmp_path / "f.png")
    ax = figures[0].axes[0]
    assert ax.images[0].get_extent()[:2] == [1.5, 3.5] and ax.images[0].get_array().shape == (2, 2)
    assert ax.get_xlabel() == "evaluated N (blank: no head for it)"
