"""Mamba's selective scan (agents.cores.mamba_scan) against the plain step loop under autograd, in float64:
outputs, final states and every input's gradient, at lengths on and off its chunk, positive and
signed, with the batch split into blocks; gradcheck of its Function; and the Mamba core's mamba-ssm
defaults (RMSNorm, out_proj rescaled by sqrt(layers))."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from agents.cores import make_core, mamba_scan
from agents.cores.mamba_scan import _SelectiveScan, selective_scan

CHUNK = 4
BATCH, INNER, STATES = 5, 3, 4


def reference(delta, drive, b, c, a, h0, signed):
    """h_t = Abar_t * h_{t-1} + drive_t B_t, y_t = h_t C_t one step at a time."""
    h, ys = h0, []
    for t in range(delta.shape[0]):
        abar = torch.exp(delta[t].unsqueeze(-1) * a)
        if signed:
            abar = 2 * abar - 1
        h = abar * h + drive[t].unsqueeze(-1) * b[t].unsqueeze(-2)
        ys.append((h * c[t].unsqueeze(-2)).sum(-1))
    return torch.stack(ys), h


def scan_inputs(steps: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """delta > 0 and drive [T, B, E], B and C [T, B, N], A < 0 [E, N] and h0 [B, E, N], drawn on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    draw = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
    inputs = (nn.functional.softplus(draw(steps, BATCH, INNER)), draw(steps, BATCH, INNER), draw(steps, BATCH, STATES),
              draw(steps, BATCH, STATES), -2 * torch.rand(INNER, STATES, generator=gen, dtype=torch.float64),
              draw(BATCH, INNER, STATES))
    return tuple(t.to(device).requires_grad_(True) for t in inputs)


@pytest.fixture
def small_blocks(monkeypatch):
    """Two batch rows per block: BATCH = 5 runs as blocks of 2, 2 and 1."""
    monkeypatch.setattr(mamba_scan, "BLOCK_BYTES", 2 * INNER * STATES * 8)


@pytest.mark.parametrize("signed", [False, True], ids=["positive", "signed"])
@pytest.mark.parametrize("steps", [1, CHUNK - 1, CHUNK, 2 * CHUNK + 3])
def test_the_scan_equals_the_step_loop(steps, signed, small_blocks, device):
    inputs = scan_inputs(steps, device)
    gen = torch.Generator().manual_seed(1)
    weight_y = torch.randn(steps, BATCH, INNER, generator=gen, dtype=torch.float64).to(device)
    weight_h = torch.randn(BATCH, INNER, STATES, generator=gen, dtype=torch.float64).to(device)
    results = []
    for run in (lambda *x: selective_scan(*x, signed=signed, chunk=CHUNK), lambda *x: reference(*x, signed)):
        y, h = run(*inputs)
        grads = torch.autograd.grad((y * weight_y).sum() + (h * weight_h).sum(), inputs)
        results.append((y, h, *grads))
    names = ["y", "h_T", "dL/ddelta", "dL/ddrive", "dL/dB", "dL/dC", "dL/dA", "dL/dh0"]
    for name, got, want in zip(names, *results):
        assert got.shape == want.shape, name
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("signed", [False, True], ids=["positive", "signed"])
def test_without_gradients_the_forward_is_the_same(signed, small_blocks, device):
    inputs = scan_inputs(2 * CHUNK + 1, device)
    with_graph = selective_scan(*inputs, signed=signed, chunk=CHUNK)
    with torch.no_grad():
        without = selective_scan(*inputs, signed=signed, chunk=CHUNK)
    for got, want in zip(without, with_graph):
        assert not got.requires_grad
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("signed", [False, True], ids=["positive", "signed"])
def test_the_function_passes_gradcheck(signed, device):
    delta, drive, b, c, a, h0 = scan_inputs(CHUNK + 2, device, seed=3)
    h0_bne = h0.detach().transpose(1, 2).contiguous().requires_grad_(True)  # the Function's [B, N, E] layout
    assert torch.autograd.gradcheck(lambda *x: _SelectiveScan.apply(*x, signed, CHUNK)[:2],
                                    (delta, drive, b, c, a, h0_bne))
    assert torch.autograd.gradcheck(lambda *x: selective_scan(*x, signed=signed, chunk=CHUNK)[:2],
                                    (delta, drive, b, c, a, h0))


def test_mamba_norms_and_out_proj_follow_mamba_ssm(device):
    one, four = (make_core("mamba", 1, 8, layers=n, generator=torch.Generator().manual_seed(0)).to(device)
                 for n in (1, 4))
    assert all(isinstance(norm, nn.RMSNorm) and norm.eps == 1e-5 for norm in [*four.norms, four.norm_out])
    torch.testing.assert_close(four.blocks[0].out_proj.weight, one.blocks[0].out_proj.weight / math.sqrt(4))
    assert isinstance(make_core("mingru", 1, 8).norm_out, nn.LayerNorm)  # the other kinds keep LayerNorm
