"""Mamba and DeltaNet against naive per-step implementations of their papers' equations (float64),
their parametrisations' invariants and their options. The shared zoo tests are in tests/test_cores.py."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from agents.cores import make_core
from agents.cores.blocks import EIGENVALUES, CausalConv
from agents.cores.delta import CHUNK as DELTA_CHUNK
from agents.cores.delta import EPS, default_heads, delta_rule, l2_normalize
from agents.cores.selective import CHUNK, DT_MAX, DT_MIN

STEPS = CHUNK * 2 + 5  # more than two of the pieces between the states Mamba's scan keeps, the last one partial


def block_of(kind: str, width: int = 8, seed: int = 0, **options):
    core = make_core(kind, 1, width, generator=torch.Generator().manual_seed(seed), **options).double()
    return core.blocks[0]


def random_inputs(block, width: int, batch: int = 3, seed: int = 1):
    """u [STEPS, B, D] and a random non-zero state of the block's shapes."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(STEPS, batch, width, generator=gen, dtype=torch.float64)
    state = tuple(0.5 * torch.randn(batch, *shape, generator=gen, dtype=torch.float64)
                  for shape in block.state_shapes())
    return u, state


def conv_step(conv, history: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """One output of a depthwise causal conv: bias + sum_j w_j x_{t-K+1+j} over the last K inputs (DeltaNet's
    conv has no bias)."""
    window = history[-(conv.kernel - 1):] + [x]
    return (0 if conv.bias is None else conv.bias) + sum(conv.weight[:, j] * window[j] for j in range(conv.kernel))


def mamba_reference(block, u: torch.Tensor, state: tuple[torch.Tensor, ...]):
    """Mamba-1 (Gu & Dao 2023, Algorithm 2 with Delta B x) one step at a time, with its signed transitions
    Abar_t [B, E * N]."""
    history = list(state[0].unbind(1)) if block.conv is not None else []
    h, outs, decays = state[-1], [], []
    a = -torch.exp(block.a_log)  # [E, N]
    for t in range(u.shape[0]):
        x, z = (u[t] @ block.in_proj.weight.T).chunk(2, dim=-1)
        if block.conv is not None:
            x_conv = conv_step(block.conv, history, x)
            history.append(x)
            x = x_conv
        x = x * torch.sigmoid(x)
        dt, b, c = (x @ block.x_proj.weight.T).split([block.rank, block.d_state, block.d_state], dim=-1)
        delta = torch.log1p(torch.exp(dt @ block.dt_proj.weight.T + block.dt_proj.bias))  # [B, E]
        abar = torch.exp(delta[:, :, None] * a[None])  # [B, E, N]
        if block.eigenvalues == "signed":
            abar = 2 * abar - 1
        h = abar * h + delta[:, :, None] * b[:, None, :] * x[:, :, None]
        y = torch.einsum("ben,bn->be", h, c) + block.skip * x
        outs.append((y * z * torch.sigmoid(z)) @ block.out_proj.weight.T)
        decays.append(abar.flatten(1))
    conv_state = (torch.stack(history[-(block.conv.kernel - 1):], dim=1),) if block.conv is not None else ()
    return torch.stack(outs), (*conv_state, h), torch.stack(decays)


def deltanet_reference(block, u: torch.Tensor, state: tuple[torch.Tensor, ...]):
    """DeltaNet (Yang et al. 2024): S_t = S_{t-1} (I - beta k k^T) + beta v k^T, o_t = S_t q_t / sqrt(d), per
    sequence and head with explicit d x d matrices; RMSNorm eps 1e-5 (flash-linear-attention's)."""
    history = list(state[0].unbind(1)) if block.conv is not None else []
    memory = state[-1].clone()
    heads, d = block.heads, block.head_dim
    eye = torch.eye(d, dtype=u.dtype)
    outs, decays = [], []
    for t in range(u.shape[0]):
        qkv = u[t] @ block.qkv.weight.T
        if block.conv is not None:
            qkv_conv = conv_step(block.conv, history, qkv)
            history.append(qkv)
            qkv = qkv_conv
        q, k, v = (part.reshape(-1, heads, d) for part in F.silu(qkv).chunk(3, dim=-1))
        beta = torch.sigmoid(u[t] @ block.beta.weight.T) * (2 if block.eigenvalues == "signed" else 1)
        o = torch.empty_like(q)
        decay = torch.empty_like(beta)
        new_memory = torch.empty_like(memory)
        for i in range(u.shape[1]):
            for j in range(heads):
                key = k[i, j] / k[i, j].norm().clamp_min(1e-6)
                query = q[i, j] / q[i, j].norm().clamp_min(1e-6)
                s = memory[i, j] @ (eye - beta[i, j] * torch.outer(key, key)) + beta[i, j] * torch.outer(v[i, j], key)
                new_memory[i, j] = s
                o[i, j] = s @ query / math.sqrt(d)
                decay[i, j] = 1 - beta[i, j] * (key @ key)  # signed: the eigenvalue along k_t
        memory = new_memory
        o = o / torch.sqrt((o * o).mean(-1, keepdim=True) + 1e-5) * block.norm
        outs.append(o.reshape(u.shape[1], -1) @ block.out_proj.weight.T)
        decays.append(decay)
    conv_state = (torch.stack(history[-(block.conv.kernel - 1):], dim=1),) if block.conv is not None else ()
    return torch.stack(outs), (*conv_state, memory), torch.stack(decays)


REFERENCES = {"mamba": mamba_reference, "deltanet": deltanet_reference}
OPTIONS = [{}, {"eigenvalues": "signed"}, {"conv": None}, {"conv": 2, "eigenvalues": "signed"}]


@pytest.mark.parametrize("kind", sorted(REFERENCES))
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_the_block_equals_the_papers_equations_step_by_step(kind, options):
    width = 32 if kind == "deltanet" else 8  # two DeltaNet heads
    block = block_of(kind, width, **options)
    u, state = random_inputs(block, width)
    block.recording = True  # Mamba returns its transitions only then
    out, final, decay = block.run(u, state)
    ref_out, ref_final, ref_decay = REFERENCES[kind](block, u, state)
    torch.testing.assert_close(out, ref_out)
    assert len(final) == len(ref_final)
    for a, b in zip(final, ref_final):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(decay, ref_decay)


@pytest.mark.parametrize("kind", sorted(REFERENCES))
def test_gradients_equal_the_references(kind):
    """Mamba's scan (its hand-written backward) and DeltaNet's loop give the reference's gradients for every weight."""
    width = 32 if kind == "deltanet" else 8
    block = block_of(kind, width)
    u, state = random_inputs(block, width)
    weights = torch.randn(STEPS, 3, width, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    grads = []
    for run in (block.run, lambda x, s: REFERENCES[kind](block, x, s)):
        block.zero_grad()
        out, final, _ = run(u, state)
        ((out * weights).sum() + (final[-1] ** 2).sum()).backward()
        grads.append([p.grad.clone() for p in block.parameters()])
    for (name, _), got, want in zip(block.named_parameters(), *grads):
        torch.testing.assert_close(got, want, msg=name)


@torch.no_grad()
def test_mamba_initialisation_follows_the_reference_code():
    block = block_of("mamba", 32, expand=3, d_state=5)
    inner = 96
    assert block.rank == 2 and block.skip.shape == (inner,)
    torch.testing.assert_close(-torch.exp(block.a_log), -torch.arange(1.0, 6.0, dtype=torch.float64).expand(inner, 5))
    dt = F.softplus(block.dt_proj.bias)
    assert bool((dt >= DT_MIN * (1 - 1e-9)).all()) and bool((dt <= DT_MAX * (1 + 1e-9)).all())
    assert float(dt.min()) < 3 * DT_MIN and float(dt.max()) > DT_MAX / 3  # log-uniform over the whole range
    assert float(block.dt_proj.weight.abs().max()) <= block.rank ** -0.5
    torch.testing.assert_close(block.skip, torch.ones(inner, dtype=torch.float64))
    assert block.state_shapes() == ((3, inner), (inner, 5))


@torch.no_grad()
def test_mamba_transition_is_stable_and_signed_is_its_reflection():
    positive, signed = block_of("mamba", 8), block_of("mamba", 8, eigenvalues="signed")
    steps = torch.cat([torch.tensor([0.0, 1e-9, 50.0], dtype=torch.float64), torch.rand(13, dtype=torch.float64)])
    delta = steps[:, None].expand(16, 16)  # 16 step sizes for each of the 16 channels
    a = positive.transition(delta)
    assert bool(((a >= 0) & (a <= 1)).all()) and bool((positive.transition(delta[1:]) < 1).all())
    torch.testing.assert_close(signed.transition(delta), 2 * a - 1)
    assert float(signed.transition(torch.full((16,), 50.0, dtype=torch.float64)).min()) == pytest.approx(-1.0)


def test_deltanet_writes_the_value_at_its_key_when_beta_is_one():
    """The delta rule with beta = 1 (signed, w_beta = 0) overwrites what key k_t retrieves: S_t k_t = v_t."""
    block = block_of("deltanet", 32, eigenvalues="signed")
    with torch.no_grad():
        block.beta.weight.zero_()
    u, state = random_inputs(block, 32)
    q, k, v, beta, _ = block.features(u[:1], state[0])
    torch.testing.assert_close(beta, torch.ones_like(beta))
    _, final, decay = block.run(u[:1], state)
    torch.testing.assert_close((final[-1] @ k[0].unsqueeze(-1)).squeeze(-1), v[0])
    torch.testing.assert_close(decay, torch.zeros_like(decay), atol=1e-9, rtol=0)
    assert bool(torch.allclose(k.norm(dim=-1), torch.ones(k.shape[:-1], dtype=torch.float64)))


@pytest.mark.parametrize("eigenvalues,top", [("positive", 1.0), ("signed", 2.0)])
def test_deltanet_beta_range(eigenvalues, top):
    block = block_of("deltanet", 16, eigenvalues=eigenvalues)
    with torch.no_grad():
        block.beta.weight.mul_(1e3)  # saturate the sigmoid
    u, state = random_inputs(block, 16)
    beta = block.features(u, state[0])[3]
    assert float(beta.min()) >= 0 and float(beta.max()) <= top
    assert float(beta.max()) > 0.99 * top


@pytest.mark.parametrize("width,heads", [(4, 1), (31, 1), (32, 2), (48, 3), (50, 2), (64, 4), (256, 16)])
def test_deltanet_default_heads_are_about_16_wide(width, heads):
    assert default_heads(width) == heads
    assert block_of("deltanet", width).state_shapes() == ((3, 3 * width), (heads, width // heads, width // heads))


@pytest.mark.parametrize("kind", sorted(REFERENCES))
def test_conv_option(kind):
    assert len(block_of(kind, 16, conv=0).state_shapes()) == 1
    assert block_of(kind, 16, conv=None).state_shapes() == block_of(kind, 16, conv=0).state_shapes()
    assert block_of(kind, 16, conv=3).state_shapes()[0][0] == 2
    with pytest.raises(ValueError, match="conv must be 0, None or a kernel size >= 2"):
        make_core(kind, 1, 16, conv=1)
    with pytest.raises(TypeError, match="conv"):
        make_core(kind, 1, 16, conv=2.5)


def test_bad_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match="heads must divide hidden_size 16"):
        make_core("deltanet", 1, 16, heads=3)
    for option in ("expand", "d_state"):
        with pytest.raises(ValueError, match=option):
            make_core("mamba", 1, 16, **{option: 0})


def test_mamba_options_round_trip_through_the_config():
    core = make_core("mamba", 1, 8, expand=1, d_state=4, conv=None, generator=torch.Generator().manual_seed(0))
    assert core.to_config() == {"kind": "mamba", "input_size": 1, "hidden_size": 8, "layers": 1, "expand": 1,
                                "d_state": 4, "conv": None, "eigenvalues": "positive"}
    assert math.prod(core.state_shapes()[0]) == 8 * 4


def delta_rule_steps(q, k, v, beta, memory):
    """The delta rule one step at a time, all sequences and heads at once: S_t = S_{t-1} + beta_t (v_t - S_{t-1} k_t)
    k_t^T, o_t = S_t q_t (q, k, v [T, B, heads, d], beta [T, B, heads], memory [B, heads, d, d])."""
    outs = []
    for t in range(q.shape[0]):
        error = beta[t, ..., None] * (v[t] - (memory @ k[t].unsqueeze(-1)).squeeze(-1))
        memory = memory + error.unsqueeze(-1) * k[t].unsqueeze(-2)
        outs.append((memory @ q[t].unsqueeze(-1)).squeeze(-1))
    return torch.stack(outs), memory


def delta_rule_inputs(steps: int, eigenvalues: str, device, seed: int = 3, batch: int = 3, heads: int = 2, d: int = 5):
    """Float64 q, v, unit k, beta in [0, 1] or [0, 2] and a random state, drawn on the CPU, on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(steps, batch, heads, d, generator=gen, dtype=torch.float64) for _ in range(3))
    beta = torch.rand(steps, batch, heads, generator=gen, dtype=torch.float64) * (2 if eigenvalues == "signed" else 1)
    memory = torch.randn(batch, heads, d, d, generator=gen, dtype=torch.float64)
    return [x.to(device) for x in (q, F.normalize(k, dim=-1), v, beta, memory)]


@pytest.mark.parametrize("eigenvalues", EIGENVALUES)
@pytest.mark.parametrize("steps,chunk", [(steps, DELTA_CHUNK) for steps in (1, 7, DELTA_CHUNK - 1, DELTA_CHUNK,
                                                                          DELTA_CHUNK + 1, 3 * DELTA_CHUNK + 5)]
                         + [(30, 4), (33, 8)])
def test_chunkwise_delta_rule_equals_the_step_loop(steps, chunk, eigenvalues, device):
    """Outputs and final state of the WY form, whole and partial (zero-padded) last chunks, equal the loop's."""
    inputs = delta_rule_inputs(steps, eigenvalues, device)
    out, final = delta_rule(*inputs, chunk=chunk)
    ref_out, ref_final = delta_rule_steps(*inputs)
    assert out.shape == ref_out.shape and final.shape == ref_final.shape
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(final, ref_final)


@pytest.mark.parametrize("eigenvalues", EIGENVALUES)
@pytest.mark.parametrize("steps", [DELTA_CHUNK, 2 * DELTA_CHUNK + 3])
def test_chunkwise_delta_rule_gradients_equal_the_step_loops(steps, eigenvalues, device):
    """Float64 gradients for q, k, v, beta and the initial state through the chunks (incl. the triangular
    inverse's adjoint) equal autograd through the loop."""
    inputs = [x.requires_grad_() for x in delta_rule_inputs(steps, eigenvalues, device)]
    gen = torch.Generator().manual_seed(4)
    weights = torch.randn(steps, 3, 2, 5, generator=gen, dtype=torch.float64).to(device)
    grads = []
    for run in (delta_rule, delta_rule_steps):
        out, final = run(*inputs)
        grads.append(torch.autograd.grad((out * weights).sum() + (final ** 2).sum(), inputs))
    for name, got, want in zip(("q", "k", "v", "beta", "memory"), *grads):
        torch.testing.assert_close(got, want, msg=name)


def test_split_runs_of_the_chunkwise_delta_rule_equal_one_pass(device):
    inputs = delta_rule_inputs(2 * DELTA_CHUNK + 9, "signed", device)
    out, final = delta_rule(*inputs)
    first, mid = delta_rule(*(x[:DELTA_CHUNK + 3] for x in inputs[:4]), inputs[4])
    second, end = delta_rule(*(x[DELTA_CHUNK + 3:] for x in inputs[:4]), mid)
    torch.testing.assert_close(torch.cat([first, second]), out)
    torch.testing.assert_close(end, final)


def test_l2_normalisation_and_its_gradient_equal_f_normalize(device):
    """Including a row whose norm is below eps (clamped: x / eps, whose gradient is g / eps)."""
    x = torch.randn(4, 3, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x[0, 0] *= 1e-8
    x = x.to(device).requires_grad_()
    grad = torch.randn(4, 3, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64).to(device)
    results = []
    for normalise in (lambda z: l2_normalize(z, EPS), lambda z: F.normalize(z, dim=-1, eps=EPS)):
        y = normalise(x)
        results.append((y, *torch.autograd.grad(y, x, grad)))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("bias", [True, False])
def test_causal_conv_gradients(bias, device):
    """The conv's hand-written backward against finite differences, with and without a bias."""
    conv = CausalConv(3, 4, torch.Generator().manual_seed(7), bias=bias).double().to(device)
    assert (conv.bias is not None) == bias
    gen = torch.Generator().manual_seed(8)
    x, past = (torch.randn(*shape, generator=gen, dtype=torch.float64).to(device).requires_grad_()
               for shape in ((6, 2, 3), (2, 3, 3)))
    assert torch.autograd.gradcheck(lambda *a: conv(*a)[0], (x, past))
    assert torch.autograd.gradcheck(lambda w: torch.func.functional_call(conv, {"weight": w}, (x, past))[0],
                                    (conv.weight.detach().clone().requires_grad_(),))
