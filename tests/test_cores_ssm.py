"""The state-space zoo kinds (agents/cores/ssm.py): lru and s5 against per-step references of their
papers' equations in float64, their parametrizations' invariants, and their options. What every zoo
kind shares (state carry, gradients, checkpoints, devices) is in tests/test_cores.py."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.nn import functional as F

from agents.cores import make_core
from agents.cores.blocks import linear_scan
from agents.cores.ssm import LRUBlock, S5Block


def build(kind: str, hidden: int = 6, seed: int = 0, **options) -> torch.nn.Module:
    return make_core(kind, 1, hidden, generator=torch.Generator().manual_seed(seed), **options).double()


def inputs(steps: int, batch: int, width: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(steps, batch, width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def complex_matrix(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    return torch.complex(re, im)


def reference(block, u: torch.Tensor, x0: torch.Tensor, lam: torch.Tensor, b_tilde: torch.Tensor,
              full_glu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The papers' equations one step at a time: x_t = lam x_{t-1} + B~ u_t, y_t = Re(C x_t) + D u_t,
    g = GELU(y), out = (W_1 g) * sigmoid(W_2 g) (full GLU) or g * sigmoid(W_2 g) (half GLU)."""
    c = complex_matrix(block.C_re, block.C_im)
    x, outs = x0, []
    for t in range(u.shape[0]):
        x = lam * x + u[t].to(x.dtype) @ b_tilde.T
        y = (x @ c.T).real + block.D * u[t]
        g = F.gelu(y)
        gate = torch.sigmoid(g @ block.glu.gate.weight.T + block.glu.gate.bias)
        value = g @ block.glu.value.weight.T + block.glu.value.bias if full_glu else g
        outs.append(value * gate)
    return torch.stack(outs), x


def random_block_state(block, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A non-zero state as the block carries it ([B, P, 2]) and as the complex x it stands for."""
    state = torch.randn(batch, block.state_size, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    return state, torch.complex(state[..., 0], state[..., 1])


@pytest.mark.parametrize("eigenvalues", ["positive", "signed"])
def test_lru_block_is_the_papers_recurrence(eigenvalues):
    block = LRUBlock(5, state_size=7, eigenvalues=eigenvalues, generator=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():  # move gamma off its init so that the test sees it is used as a parameter
        block.gamma_log.add_(0.3)
    u = inputs(19, 3, 5)
    state, x0 = random_block_state(block, 3)
    lam = torch.exp(-torch.exp(block.nu_log) + 1j * torch.exp(block.theta_log))
    b_tilde = torch.exp(block.gamma_log)[:, None] * complex_matrix(block.B_re, block.B_im)
    expected, x_end = reference(block, u, x0, lam, b_tilde, full_glu=True)
    out, (final,), decays = block.run(u, (state,))
    assert decays is None
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(final, torch.stack((x_end.real, x_end.imag), dim=-1), atol=1e-12, rtol=1e-10)


def test_s5_block_is_the_zoh_discretized_ssm():
    block = S5Block(5, state_size=7, generator=torch.Generator().manual_seed(0)).double()
    u = inputs(19, 3, 5)
    state, x0 = random_block_state(block, 3)
    a = -torch.exp(block.a_log) + 1j * block.a_im
    lam = torch.exp(torch.exp(block.log_dt) * a)
    b_tilde = ((lam - 1) / a)[:, None] * complex_matrix(block.B_re, block.B_im)
    expected, x_end = reference(block, u, x0, lam, b_tilde, full_glu=False)
    out, (final,), decays = block.run(u, (state,))
    assert decays is None
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(final, torch.stack((x_end.real, x_end.imag), dim=-1), atol=1e-12, rtol=1e-10)


def test_s5_zoh_step_solves_the_continuous_system_over_delta():
    """x' = A x + B u with u held constant over one step Delta ends at exp(Delta A) x0 + B~ u (ZOH)."""
    block = S5Block(3, state_size=4, generator=torch.Generator().manual_seed(1)).double()
    lam, scale = block.transition()
    a = -torch.exp(block.a_log) + 1j * block.a_im
    bu = complex_matrix(block.B_re, block.B_im) @ torch.tensor([0.5, -1.0, 2.0], dtype=torch.complex128)
    x0 = torch.tensor([1.0 - 0.5j, 0.2j, -0.3, 0.7 + 0.1j], dtype=torch.complex128)
    x, substeps = x0.clone(), 4000
    h = torch.exp(block.log_dt) / substeps
    for _ in range(substeps):  # classical Runge-Kutta 4 on the continuous system
        k1 = a * x + bu
        k2 = a * (x + h / 2 * k1) + bu
        k3 = a * (x + h / 2 * k2) + bu
        k4 = a * (x + h * k3) + bu
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    torch.testing.assert_close(lam * x0 + scale * bu, x.detach(), atol=1e-8, rtol=1e-8)


def test_lru_ring_init_and_normalization():
    r_min, r_max, max_phase = 0.5, 0.9, 0.4
    block = LRUBlock(16, state_size=400, r_min=r_min, r_max=r_max, max_phase=max_phase,
                     generator=torch.Generator().manual_seed(2)).double().requires_grad_(False)
    lam, gamma = block.transition()
    radius, phase = lam.abs(), torch.exp(block.theta_log)
    assert bool(((radius >= r_min - 1e-6) & (radius <= r_max + 1e-6)).all())
    assert bool(((phase > 0) & (phase <= max_phase + 1e-6)).all())
    # the ring: |lambda|^2 uniform on [r_min^2, r_max^2], so its mean is the interval's midpoint
    assert abs(float((radius ** 2).mean()) - (r_min ** 2 + r_max ** 2) / 2) < 0.03
    # gamma starts at sqrt(1 - |lambda|^2): a unit's impulse response has energy 1 (sum_k |gamma lambda^k|^2)
    torch.testing.assert_close(gamma.real, torch.sqrt(1 - radius ** 2), atol=1e-6, rtol=1e-6)
    powers = torch.arange(2000, dtype=torch.float64)[:, None]
    energy = (gamma.abs() ** 2 * radius ** (2 * powers)).sum(0)
    torch.testing.assert_close(energy, torch.ones_like(energy), atol=1e-5, rtol=0)


def test_lru_eigenvalues_stay_inside_the_unit_disc_for_any_parameters():
    block = LRUBlock(4, generator=torch.Generator().manual_seed(3)).double()
    with torch.no_grad():
        block.nu_log.copy_(torch.linspace(-12, 5, 4))
        block.theta_log.copy_(torch.linspace(-3, 4, 4))
    assert bool((block.transition()[0].abs() < 1).all())


def test_signed_lru_mirrors_every_second_unit_through_the_origin():
    positive = LRUBlock(8, generator=torch.Generator().manual_seed(4)).double()
    signed = LRUBlock(8, eigenvalues="signed", generator=torch.Generator().manual_seed(4)).double()
    lam_p, lam_s = positive.transition()[0], signed.transition()[0]
    torch.testing.assert_close(lam_s[0::2], lam_p[0::2])
    torch.testing.assert_close(lam_s[1::2], -lam_p[1::2])
    assert bool((lam_p.real > 0).all())  # max_phase pi/10: the published sector around the positive axis
    assert bool((lam_s[1::2].real < 0).all())
    torch.testing.assert_close(signed.own_timescales(), positive.own_timescales())  # same radii


def test_s5_init_is_s4d_lin_with_log_uniform_steps():
    block = S5Block(8, state_size=300, dt_min=0.02, dt_max=0.5, generator=torch.Generator().manual_seed(5))
    block.requires_grad_(False)
    a = -torch.exp(block.a_log) + 1j * block.a_im
    torch.testing.assert_close(a.real, torch.full((300,), -0.5))
    torch.testing.assert_close(a.imag, math.pi * torch.arange(300, dtype=torch.float32))
    dt = torch.exp(block.log_dt)
    assert bool(((dt >= 0.02 * (1 - 1e-6)) & (dt <= 0.5 * (1 + 1e-6))).all())
    assert abs(float(block.log_dt.mean()) - (math.log(0.02) + math.log(0.5)) / 2) < 0.2
    assert bool((block.transition()[0].abs() < 1).all())


@pytest.mark.parametrize("kind", ["lru", "s5"])
def test_own_timescales_are_minus_one_over_log_abs_lambda(kind):
    core = build(kind, layers=2)
    expected = torch.cat([-1.0 / torch.log(block.transition()[0].abs()) for block in core.blocks])
    torch.testing.assert_close(core.own_timescales(), expected.detach())
    assert core.own_timescales().shape == (2 * 6,)
    assert core.decays(torch.zeros(4, 2, 1, dtype=torch.float64)) is None


@pytest.mark.parametrize("kind", ["lru", "s5"])
def test_state_size_sets_the_state_and_the_config_round_trips_through_json(kind):
    core = build(kind, hidden=6, layers=2, state_size=3)
    assert core.state_shapes() == ((3, 2), (3, 2))
    assert core.state_size == 12
    assert build(kind, hidden=6).state_shapes() == ((6, 2),)  # default P = hidden_size
    config = json.loads(json.dumps(core.to_config()))
    rebuilt = make_core(**config, generator=torch.Generator().manual_seed(0)).double()
    assert rebuilt.to_config() == core.to_config()
    for a, b in zip(rebuilt.parameters(), core.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind,options,match", [
    ("lru", {"state_size": 0}, "state_size"),
    ("lru", {"r_min": 0.9, "r_max": 0.5}, "r_min and r_max"),
    ("lru", {"r_max": 1.0}, "r_min and r_max"),
    ("lru", {"max_phase": 0}, "max_phase"),
    ("s5", {"state_size": 2.5}, "state_size"),
    ("lru", {"r_min": "0.5"}, "r_min must be a finite number"),
    ("s5", {"dt_min": 0.5, "dt_max": 0.1}, "dt_min and dt_max must satisfy"),
    ("s5", {"dt_min": -1.0}, "dt_min and dt_max must satisfy"),
])
def test_bad_ssm_options_are_refused_by_name(kind, options, match):
    with pytest.raises(ValueError, match=match):
        make_core(kind, 1, 8, **options)


def test_s5_has_no_eigenvalues_option():
    with pytest.raises(TypeError, match="unexpected options \\['eigenvalues'\\]"):
        make_core("s5", 1, 8, eigenvalues="signed")


@pytest.mark.parametrize("kind", ["lru", "s5"])
def test_the_zero_state_with_zero_input_stays_zero_and_the_recurrence_is_time_invariant(kind):
    core = build(kind)
    block = core.blocks[0]
    u = inputs(9, 2, 6)
    zeros = torch.zeros(2, block.state_size, 2, dtype=torch.float64)
    _, (still,), _ = block.run(torch.zeros(5, 2, 6, dtype=torch.float64), (zeros,))
    assert bool((still == 0).all())
    late, _, _ = block.run(torch.cat([torch.zeros(4, 2, 6, dtype=torch.float64), u]), (zeros,))
    early, _, _ = block.run(u, (zeros,))
    torch.testing.assert_close(late[4:], early, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("a_shape", [(13, 3, 4), (13, 1, 4), (4,)], ids=["per-step", "time-invariant", "fixed"])
def test_linear_scan_and_its_adjoint_backward_match_the_step_by_step_recurrence(dtype, a_shape):
    """The scan the state-space kinds run on, with a complex and time-invariant a: values and gradients."""
    gen = torch.Generator().manual_seed(6)
    a = (0.95 * torch.rand(a_shape, dtype=dtype, generator=gen)).requires_grad_(True)
    b = torch.randn(13, 3, 4, dtype=dtype, generator=gen, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=dtype, generator=gen, requires_grad=True)
    h, steps = h0, []
    for t in range(13):
        h = a.expand_as(b)[t] * h + b[t]
        steps.append(h)
    torch.testing.assert_close(linear_scan(a, b, h0), torch.stack(steps), atol=1e-12, rtol=1e-10)
    assert torch.autograd.gradcheck(linear_scan, (a, b, h0))
