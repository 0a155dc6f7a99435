"""The architecture zoo's cores (agents/cores/, BlockCore kinds): every kind by name, its state carried
exactly across calls, step == forward, float64 gradients, checkpoints, devices, its own timescales,
and its bad options. A kind added to agents.cores.CORES is covered here without new tests."""

from __future__ import annotations

import math

import pytest
import torch

import agents
from agents.cores import EIGENVALUE_KINDS, KINDS, NO_OWN_TIMESCALE, core_class, make_core
from agents.cores.blocks import BlockCore

ZOO = [kind for kind in KINDS if issubclass(core_class(kind), BlockCore)]
SIGNED = list(EIGENVALUE_KINDS)
SETTINGS = [(kind, {}) for kind in ZOO] + [(kind, {"layers": 2}) for kind in ZOO] + \
           [(kind, {"eigenvalues": "signed"}) for kind in SIGNED]


def build(kind: str, hidden: int = 8, seed: int = 0, dtype=torch.float64, **options) -> torch.nn.Module:
    return make_core(kind, 1, hidden, generator=torch.Generator().manual_seed(seed), **options).to(dtype)


def bits(steps: int, batch: int, seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    return torch.bernoulli(torch.full((steps, batch, 1), 0.5, dtype=dtype), generator=torch.Generator().manual_seed(seed))


def random_state(core, batch: int, seed: int = 2):
    """A non-zero state (so that carrying it matters): the core's state after a random prefix."""
    return core(bits(5, batch, seed, next(core.parameters()).dtype))[1]


def test_the_zoo_has_its_kinds():
    assert set(ZOO) == {"mingru", "mamba", "deltanet", "lru", "s5", "transformer", "deltaproduct", "gated_deltanet",
                        "slstm", "mlstm"}
    assert set(SIGNED) == {"lru", "mingru", "mamba", "deltanet", "deltaproduct", "gated_deltanet"}  # the kinds Grazzi et al. extend


@pytest.mark.parametrize("kind,options", SETTINGS, ids=lambda v: str(v))
def test_state_is_carried_exactly_across_calls(kind, options, device):
    core = build(kind, **options).to(device)
    x, state = bits(23, 3).to(device), random_state(core, 3)
    hidden, final = core(x, state)
    assert hidden.shape == (23, 3, 8)
    first, mid = core(x[:9], state)
    second, end = core(x[9:], mid)
    torch.testing.assert_close(torch.cat([first, second]), hidden, atol=1e-10, rtol=1e-9)
    for a, b in zip(core.state_parts(end), core.state_parts(final)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("kind,options", SETTINGS, ids=lambda v: str(v))
def test_step_by_step_equals_one_pass(kind, options, device):
    core = build(kind, **options).to(device)
    x = bits(11, 2).to(device)
    hidden, final = core(x)
    state, outs = None, []
    for t in range(x.shape[0]):
        h, state = core.step(x[t], state)
        outs.append(h)
    torch.testing.assert_close(torch.stack(outs), hidden, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("kind,options", SETTINGS, ids=lambda v: str(v))
def test_every_parameter_gets_a_finite_float64_gradient(kind, options, device):
    core = build(kind, **options).to(device)
    hidden, _ = core(bits(17, 4).to(device), random_state(core, 4))
    (hidden[-1] ** 2).sum().backward()
    for name, p in core.named_parameters():
        assert p.grad is not None, f"{kind}: {name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{kind}: {name} has a non-finite gradient"
    assert any(bool(p.grad.abs().sum() > 0) for p in core.parameters())


@pytest.mark.parametrize("kind", ZOO)
def test_gradients_match_finite_differences(kind):
    core = build(kind, hidden=4)
    x = bits(6, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda inp: core(inp)[0], (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("kind", ZOO)
def test_checkpoint_round_trip(kind, tmp_path, device):
    core = make_core(kind, 1, 8, generator=torch.Generator().manual_seed(3), layers=2)
    model = agents.MultiHeadModel(core, [2, 3], generator=torch.Generator().manual_seed(4)).to(device)
    agents.save(model, tmp_path / "ckpt")
    loaded = agents.load(tmp_path / "ckpt", map_location=device)
    assert loaded.to_config() == model.to_config()
    x = bits(9, 2, dtype=torch.float32).to(device)
    for n in (2, 3):
        torch.testing.assert_close(loaded(x)[n], model(x)[n])


@pytest.mark.parametrize("kind", ZOO)
def test_a_seed_gives_one_network_and_cpu_draws_move_to_the_device(kind, device):
    a, b, c = build(kind, seed=5), build(kind, seed=5), build(kind, seed=6)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    x = bits(13, 3)
    moved = build(kind, seed=5).to(device)
    torch.testing.assert_close(moved(x.to(device))[0].cpu(), a(x)[0], atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("kind", ZOO)
def test_flat_state_round_trip_and_zero_state(kind):
    core = build(kind, layers=2)
    state = random_state(core, 3)
    flat = core.flatten_state(state)
    assert flat.shape == (3, core.state_size)
    for a, b in zip(core.state_parts(core.unflatten_state(flat)), core.state_parts(state)):
        assert torch.equal(a, b)
    assert bool((core.flatten_state(core.initial_state(3)) == 0).all())
    with pytest.raises(ValueError, match="flat state must have shape"):
        core.unflatten_state(flat[:, :-1])


@pytest.mark.parametrize("kind", ZOO)
def test_own_timescale_or_decays(kind):
    core = build(kind)
    x = bits(12, 3)
    fixed, decays = core.own_timescales(), core.decays(x)
    if kind in NO_OWN_TIMESCALE:  # memory without a timescale (the transformer's window)
        assert fixed is None and decays is None
        return
    assert (fixed is None) != (decays is None), "a core has a fixed timescale or input-dependent decays"
    if fixed is not None:
        assert fixed.dim() == 1 and bool(torch.isfinite(fixed).all()) and bool((fixed > 0).all())
    else:
        assert decays.shape[:2] == (12, 3)
        assert bool(((decays >= 0) & (decays <= 1)).all())


@pytest.mark.parametrize("kind", ZOO)
def test_bad_options_are_refused_by_name(kind):
    with pytest.raises(TypeError, match="unexpected options \\['bogus'\\]"):
        make_core(kind, 1, 8, bogus=1)
    with pytest.raises(ValueError, match="layers"):
        make_core(kind, 1, 8, layers=0)
    with pytest.raises((TypeError, ValueError), match="hidden_size"):
        make_core(kind, 1, 0)
    core = build(kind)
    with pytest.raises(ValueError, match="state must be"):
        core(bits(3, 2), torch.zeros(2, 999, dtype=torch.float64))


@pytest.mark.parametrize("kind", SIGNED)
def test_eigenvalues_option(kind):
    with pytest.raises(ValueError, match="eigenvalues must be one of \\['positive', 'signed'\\]"):
        make_core(kind, 1, 8, eigenvalues="negative")
    positive, signed = build(kind, seed=7), build(kind, seed=7, eigenvalues="signed")
    assert signed.to_config()["eigenvalues"] == "signed"
    x = bits(10, 2)
    assert not torch.allclose(positive(x)[0], signed(x)[0])
