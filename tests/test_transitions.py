"""The signed transitions of the cores (``Core.transitions``) and their analysis (baselines.analysis.transitions):
decays are their size, fixed kinds have none, the statistics on a network whose a_t is set by hand, the
analysis in ``analyze_run`` and ``memory-envs analyze``, and a signed network learning running parity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import agents
import baselines.analysis as A
from baselines.cli import main
from baselines.trainer import TrainConfig, build_model, train
from memory_envs.tasks import RUNNING_N

from agents.cores import EIGENVALUE_KINDS, KINDS, core_class, make_core
from agents.cores.blocks import BlockCore
from baselines.analysis import network_transitions, token_inputs, transition_kinds, transition_stats
from baselines.analysis.transitions import ALL, HISTOGRAM_BINS, LAGS

#: The kinds whose ``decays`` average |a_t| over several transitions of one unit (Mamba: the N states of a
#: channel), by the size of that group.
STATE_AVERAGED = {"mamba": 16}
#: ``Core.decays`` of make_core(kind, 2, 8, layers=2, generator seed 3) in float64 on x ~ N(0, 1) [6, 3, 2]
#: (generator seed 4), as main computed them before the transitions API: their sum and one entry.
DECAYS_BEFORE = {("mingru", "positive"): (134.89060054750567, 0.6113020230981198),
                 ("mingru", "signed"): (69.84308581787379, 0.22948983653333888),
                 ("mamba", "positive"): (464.4515445674533, 0.5623122929701149),
                 ("mamba", "signed"): (387.90858452451516, 0.3287344886491875),
                 ("deltanet", "positive"): (21.29073473359982, 0.449150656292318),
                 ("deltanet", "signed"): (11.517080946463143, 0.07541590389500086)}


#: The kinds with the eigenvalues option whose transitions depend on the input (the LRU's are fixed).
SIGNED_TRANSITION_KINDS = [kind for kind in EIGENVALUE_KINDS if make_core(kind, 1, 4).own_timescales() is None]


def build(kind: str, device: torch.device, seed: int = 3, **options) -> torch.nn.Module:
    core = make_core(kind, 2, 8, generator=torch.Generator().manual_seed(seed), **options)
    return core.to(device=device, dtype=torch.float64)


def normal_inputs(device: torch.device, steps: int = 6, batch: int = 3) -> torch.Tensor:
    return torch.randn(steps, batch, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64).to(device)


@pytest.mark.parametrize("kind, eigenvalues", sorted(DECAYS_BEFORE))
def test_decays_keep_their_numbers(kind, eigenvalues, device):
    core = build(kind, device, layers=2, eigenvalues=eigenvalues)
    with torch.no_grad():
        decays = core.decays(normal_inputs(device))
    total, last = DECAYS_BEFORE[kind, eigenvalues]
    assert decays.sum().item() == pytest.approx(total, rel=1e-12)
    assert decays[5, 2, -1].item() == pytest.approx(last, rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_decays_are_the_size_of_the_transitions(kind, device):
    options = {"eigenvalues": "signed"} if kind in EIGENVALUE_KINDS else {}
    if issubclass(core_class(kind), BlockCore):
        options["layers"] = 2
    core = build(kind, device, **options)
    x = normal_inputs(device)
    with torch.no_grad():
        decays, transitions = core.decays(x), getattr(core, "transitions", lambda x: None)(x)
    if decays is None:  # a fixed or non-linear recurrence: neither
        assert transitions is None
        return
    assert transitions.shape[:2] == (6, 3) and not transitions.requires_grad
    group = STATE_AVERAGED.get(kind, 1)
    torch.testing.assert_close(decays, transitions.abs().unflatten(2, (-1, group)).mean(-1))
    assert all(not block.recording for block in core.blocks), "recording is switched off again"


@pytest.mark.parametrize("kind", ["leaky", "leaky_mod", "gru", "lstm", "lru", "s5", "transformer"])
def test_fixed_or_non_linear_kinds_have_no_transitions(kind, device):
    options = {"eigenvalues": "signed"} if kind in EIGENVALUE_KINDS else {}
    core = build(kind, device, **options)
    assert core.transitions(normal_inputs(device)) is None


@pytest.mark.parametrize("kind", SIGNED_TRANSITION_KINDS)
def test_signed_kinds_have_negative_transitions_and_positive_kinds_none(kind, device):
    """At initialisation the signed variants already reach below 0 somewhere; the positive ones never do.
    (DeltaNet's block returns signed values from wdelta's delta.py on; before it, its |a_t|.)"""
    x = normal_inputs(device, steps=20, batch=8)
    with torch.no_grad():
        signed = build(kind, device, eigenvalues="signed").transitions(x)
        positive = build(kind, device).transitions(x)
    assert bool((signed < 0).any()) and bool((signed >= -1).all())
    assert bool((positive >= 0).all()) and bool((positive <= 1).all())


def test_mamba_transitions_are_exp_delta_a_per_channel_and_state(device):
    """Mamba's a_t [T, B, E * N] is 2 exp(Delta_t A) - 1 ("signed") of each channel e and state n, channel by
    channel, Delta_t from the block's own projections."""
    core = build("mamba", device, eigenvalues="signed", conv=None)
    block = core.blocks[0]
    x = normal_inputs(device)
    with torch.no_grad():
        u = core.norms[0](core.embed(x))
        inner, _ = block.in_proj(u).chunk(2, dim=-1)
        dt = block.x_proj(torch.nn.functional.silu(inner))[..., :block.rank]
        delta = torch.nn.functional.softplus(block.dt_proj(dt))  # [T, B, E]
        want = 2 * torch.exp(delta[..., None] * -torch.exp(block.a_log)) - 1  # [T, B, E, N]
        got = core.transitions(x)
    torch.testing.assert_close(got, want.flatten(2))


# ----- the statistics ---------------------------------------------------------------------------
def test_statistics_by_layer_and_token():
    """Two layers of one unit each over four steps: the rows, shares of negative a_t and histogram bins are
    those counted by hand."""
    transitions = torch.tensor([[[-0.9, 0.5]], [[0.8, -0.2]], [[-0.7, 0.1]], [[0.6, 0.3]]], dtype=torch.float64)
    tokens = torch.tensor([[1], [0], [1], [0]])
    stats = transition_stats(transitions, tokens, layers=2)
    rows = {(r["layer"], r["token"]): r for r in stats["rows"]}
    assert sorted(rows, key=str) == sorted([(layer, token) for layer in (0, 1, ALL) for token in (0, 1, ALL)], key=str)
    assert rows[0, 1]["negative"] == 1.0 and rows[0, 0]["negative"] == 0.0 and rows[0, ALL]["negative"] == 0.5
    assert rows[1, 0]["negative"] == 0.5 and rows[1, 1]["negative"] == 0.0
    assert rows[ALL, ALL]["count"] == 8 and rows[ALL, ALL]["negative"] == stats["negative"] == 3 / 8
    assert rows[0, 1]["min"] == -0.9 and rows[0, 1]["max"] == -0.7 and rows[0, 1]["q50"] == pytest.approx(-0.8)
    assert (rows[0, 1]["units_negative"], rows[0, 0]["units_negative"], rows[ALL, 1]["units"]) == (1, 0, 2)
    assert [(u["layer"], u["token"], u["negative"], u["median"]) for u in stats["units"] if u["token"] != ALL] == [
        (0, 0, 0.0, pytest.approx(0.7)), (0, 1, 1.0, pytest.approx(-0.8)), (1, 0, 0.5, pytest.approx(0.05)),
        (1, 1, 0.0, pytest.approx(0.3))]
    bins = [h for h in stats["histogram"] if h["layer"] == 0 and h["token"] == 1]
    assert len(bins) == HISTOGRAM_BINS and sum(h["count"] for h in bins) == 2
    assert [h["bin_low"] for h in bins if h["count"]] == pytest.approx([-0.9, -0.7])  # bins of width 0.05 from -1
    assert stats["deciding_lag"] == {0: 0, 1: 0, ALL: 0}
    with pytest.raises(ValueError, match="layers must divide"):
        transition_stats(transitions, tokens, layers=3)
    with pytest.raises(ValueError, match=r"lags must be integers in \[0, 4\)"):
        transition_stats(transitions, tokens, lags=(0, 4))
    with pytest.raises(ValueError, match="tokens"):
        transition_stats(transitions, tokens[:3], layers=2)


def test_the_lag_whose_token_decides_the_sign():
    """a_t = -0.9 where the token one step before is a 1, else 0.9 (a convolution before the recurrence allows
    that): at lag 1 the shares are 0 and 1 and every unit is decided, at lag 0 none is."""
    tokens = torch.randint(2, (64, 3), generator=torch.Generator().manual_seed(0))
    previous = torch.cat([torch.zeros(1, 3, dtype=torch.long), tokens[:-1]])
    transitions = (0.9 - 1.8 * previous).unsqueeze(-1).expand(64, 3, 5).double()
    stats = transition_stats(transitions, tokens, lags=(0, 1, 2))
    rows = {(r["lag"], r["token"]): r for r in stats["rows"]}
    assert rows[1, 1]["negative"] == 1.0 and rows[1, 0]["negative"] == 0.0 and rows[1, 0]["count"] == 5 * int(
        (tokens[:-1] == 0).sum())
    assert [rows[lag, ALL]["units_decided"] for lag in (0, 1, 2)] == [0, 5, 0]
    assert 0.3 < rows[0, 1]["negative"] < 0.7 and stats["deciding_lag"] == {0: 1}


def set_by_hand(core: torch.nn.Module, strength: float = 2.5, offset: float = 5.0) -> None:
    """A one-layer minGRU of width 4 on one input whose gate z_t reads the input bit only: the embedding sends a 1
    to (1, -1, 1, -1) (normalised by its LayerNorm to the same up to eps) and a 0 to zeros, and every unit's gate
    is sigmoid(strength * (1, -1, 1, -1) . u_t - offset): z = sigmoid(-5) after a 0, sigmoid(5) after a 1."""
    pattern = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    with torch.no_grad():
        core.embed.weight.copy_(pattern[:, None])
        core.embed.bias.zero_()
        gate = core.blocks[0].gates
        gate.weight.zero_()
        gate.bias.zero_()
        gate.weight[:4] = strength * pattern
        gate.bias[:4] = -offset


def expected_transitions(core: torch.nn.Module, bit: float) -> float:
    """a = 2 (1 - z) - 1 = 1 - 2 z of the hand-set minGRU on reading ``bit``."""
    with torch.no_grad():
        u = core.norms[0](core.embed(torch.tensor([[bit]], dtype=torch.float64)))
        return float(1 - 2 * torch.sigmoid(core.blocks[0].gates(u)[0, 0]))


def test_a_hand_set_signed_mingru_flips_after_a_1_and_keeps_after_a_0(device):
    core = make_core("mingru", 1, 4, eigenvalues="signed", generator=torch.Generator().manual_seed(0)).double()
    set_by_hand(core)
    after_0, after_1 = expected_transitions(core, 0.0), expected_transitions(core, 1.0)
    assert after_0 == pytest.approx(1 - 2 * torch.sigmoid(torch.tensor(-5.0)).item())
    assert after_1 == pytest.approx(-after_0, abs=1e-4)
    stats = network_transitions(core.to(device), steps=50, batch=4, seed=1)
    rows = {r["token"]: r for r in stats["rows"] if r["lag"] == 0}
    assert stats["deciding_lag"] == {0: 0} and rows[ALL]["units_decided"] == 4
    assert rows[0]["negative"] == 0.0 and rows[1]["negative"] == 1.0
    for token, value in ((0, after_0), (1, after_1)):
        assert rows[token]["min"] == pytest.approx(value) and rows[token]["max"] == pytest.approx(value)
    tokens = torch.randint(2, (50, 4), generator=torch.Generator().manual_seed(1))  # the drive network_transitions drew
    assert rows[1]["count"] == 4 * int(tokens.sum())
    assert stats["negative"] == pytest.approx(float(tokens.float().mean()))
    assert rows[ALL]["count"] == 50 * 4 * 4
    assert network_transitions(core, steps=50, batch=4, seed=1) == stats  # seeded: the same numbers again


def test_one_hot_tokens_for_a_network_of_several_inputs(device):
    """A core of F > 1 inputs reads one-hot tokens: the statistics have a row per token of F."""
    core = make_core("mamba", 3, 8, generator=torch.Generator().manual_seed(0)).to(device)
    stats = network_transitions(core, steps=20, batch=2, seed=0)
    assert {r["token"] for r in stats["rows"]} == {0, 1, 2, ALL}
    assert torch.equal(token_inputs(3, torch.tensor([[2, 0]])), torch.tensor([[[0.0, 0, 1], [1, 0, 0]]]))


def test_a_core_without_transitions_is_refused_in_one_line(device):
    with pytest.raises(ValueError, match="core LeakyGRU has no input-dependent transitions"):
        network_transitions(make_core("gru", 1, 4).to(device))
    assert transition_kinds()[:3] == ["mingru", "mamba", "deltanet"]


# ----- analyze ----------------------------------------------------------------------------------
def running_parity_run(path: Path, core: str, hand_set: bool = False, **core_options) -> Path:
    """A running-parity run folder whose final network is freshly built (hand-set: see set_by_hand)."""
    config = TrainConfig(task="running_parity", core=core, hidden_size=4, core_options=core_options, device="cpu")
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config.to_json()))
    model = build_model(config, [RUNNING_N], torch.Generator().manual_seed(0))
    if hand_set:
        set_by_hand(model.core.double())
        model.float()
    agents.save(model, path / "checkpoints" / "final")
    return path


def test_analyze_run_writes_the_transitions_table_and_figure(tmp_path, device):
    run = running_parity_run(tmp_path / "signed", "mingru", hand_set=True, eigenvalues="signed")
    lines: list[str] = []
    options = A.AnalysisOptions(analyses=("transitions",), transition_steps=40, transition_batch=4,
                                device=str(device))
    results = A.analyze_run(run, tmp_path / "out", options, log=lines.append)
    out = tmp_path / "out"
    assert {p.name for p in results["files"]} == {"transitions.csv", "transitions_units.csv",
                                                  "transitions_histogram.csv", "transitions.png"}
    assert all(p.is_file() for p in results["files"])
    table = {r["token"]: r for r in A.read_csv(out / "transitions.csv") if r["layer"] == 0 and r["lag"] == 0}
    assert table[0]["negative"] == 0.0 and table[1]["negative"] == 1.0 and table[1]["n"] == RUNNING_N
    assert len(A.read_csv(out / "transitions_histogram.csv")) == len(LAGS) * 3 * HISTOGRAM_BINS  # tokens 0, 1, all
    line, = (line for line in lines if line.startswith("transitions"))
    assert line.startswith("transitions, the final network: ") and "after a 0: 0.0% negative" in line
    assert "4 of 4 units' sign decided by the token read at the same step: " in line
    assert "after a 1: 100.0% negative (median -0.99; 4 units mostly negative)" in line
    units = A.read_csv(out / "transitions_units.csv")
    assert sorted((r["unit"], r["token"], r["negative"]) for r in units if r["token"] != "all" and r["lag"] == 0) == [
        (unit, token, float(token)) for unit in range(4) for token in (0, 1)]

def test_analyze_skips_or_refuses_transitions_for_a_core_without(tmp_path, capsys):
    run = running_parity_run(tmp_path / "gru", "gru")
    options = A.AnalysisOptions(trials=2, steps=200, burn_in=10, pca_steps=100, plots=False, device="cpu")
    lines: list[str] = []
    results = A.analyze_run(run, tmp_path / "out", options, log=lines.append)
    assert "transitions" not in results and "skipping transitions: core 'gru' has no input-dependent transitions " \
        "(a fixed or non-linear recurrence; the kinds with them: mingru, mamba, deltanet" in "\n".join(lines)
    assert main(["analyze", str(run), "--analyses", "transitions", "--no-plots", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memory-envs: error: transitions: core 'gru' has no input-dependent transitions")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_analyze_command_prints_the_shares(tmp_path, capsys):
    run = running_parity_run(tmp_path / "signed", "mingru", hand_set=True, eigenvalues="signed")
    assert main(["analyze", str(run), "--analyses", "transitions", "--transition-steps", "30",
                 "--transition-batch", "2", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "  transitions, the final network: " in printed and "after a 1: 100.0% negative" in printed
    assert (run / "analysis" / "transitions.png").is_file()
    with pytest.raises(SystemExit, match="2"):
        main(["analyze", str(run), "--transition-steps", "0"])
    assert "argument --transition-steps: expected a positive integer" in capsys.readouterr().err


def test_a_signed_mingru_that_learned_running_parity_flips_on_a_1(tmp_path, device):
    """The learned mechanism: trained as test_state_tracking's signed minGRU (width 32, 150 steps, seed 0), the
    network's a_t is negative far more often on reading a 1 than on reading a 0."""
    config = TrainConfig(task="running_parity", core="mingru", core_options={"eigenvalues": "signed"}, hidden_size=32,
                         batch_size=64, eval_every=50, eval_batches=2, max_steps=150, test_lengths=(128,),
                         far_length=None, test_sequences=128, device=str(device))
    summary = train(config, tmp_path / "run")
    assert summary["length_test"]["scaled"]["128"] > 0.8
    model = agents.load(tmp_path / "run" / "checkpoints" / "final", map_location=device)
    stats = network_transitions(model.core, steps=128, batch=8)
    assert stats["deciding_lag"] == {0: 0}  # no convolution: the token read at the same step
    rows = {r["token"]: r for r in stats["rows"] if r["lag"] == 0}
    assert rows[1]["negative"] > 2 * rows[0]["negative"], rows
    assert rows[1]["units_negative"] > 2 * rows[0]["units_negative"], rows


def test_a_token_task_drives_the_network_with_its_own_sequences(device):
    """Modular arithmetic's sequences alternate digits (tokens 0-4) and operators (5-7): a_t at the odd steps is
    counted under the operators only; a core whose inputs do not match the task's tokens is refused."""
    core = make_core("mingru", 8, 8, eigenvalues="signed", generator=torch.Generator().manual_seed(0)).to(device)
    stats = network_transitions(core, steps=20, batch=3, seed=0, lags=(0,), task="mod_arithmetic")
    counts = {r["token"]: r["count"] for r in stats["rows"]}
    assert sum(counts[token] for token in (5, 6, 7) if token in counts) == 10 * 3 * 8  # the 10 odd steps
    assert sum(counts[token] for token in range(5) if token in counts) == 10 * 3 * 8
    with pytest.raises(ValueError, match="task 'word_s3' has 6 tokens but the core reads 8 inputs"):
        network_transitions(core, task="word_s3")
