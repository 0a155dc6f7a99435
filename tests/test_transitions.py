"""The signed transitions of the cores (``Core.transitions``) and their analysis (baselines.analysis.transitions):
decays are their size, fixed kinds have none, the statistics on a network whose a_t is set by hand, the
analysis in ``analyze_run`` and ``memory-envs analyze``, and a signed network learning running parity."""

from __future__ import annotations

import pytest
import torch

from agents.cores import EIGENVALUE_KINDS, KINDS, core_class, make_core
from agents.cores.blocks import BlockCore

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
