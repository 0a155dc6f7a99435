"""sLSTM and mLSTM (agents/cores/xlstm.py) against step-by-step loops of the xLSTM paper's equations in
float64, against the ``xlstm`` package's torch functions where it is installed, their gradients, their
stabiliser over long sequences and their options. The shared zoo tests are in tests/test_cores.py."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from agents.cores import make_core
from agents.cores.xlstm import mlstm_chunkwise, slstm_scan

STEPS = 37  # more than two of mLSTM's 16-step chunks, the last one partial


def block_of(kind: str, width: int = 8, seed: int = 0, device="cpu", **options):
    core = make_core(kind, 1, width, generator=torch.Generator().manual_seed(seed), **options).double()
    return core.to(device).blocks[0]


def randn(*shape, seed: int, device, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(device)


def conv_step(conv, history: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """bias + sum_j w_j x_{t-K+1+j} over the last K inputs."""
    window = history[-(conv.kernel - 1):] + [x]
    return conv.bias + sum(conv.weight[:, j] * window[j] for j in range(conv.kernel))


def group_norm(h: torch.Tensor, weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Normalise each head's units of h [B, D] to mean 0, variance 1 (eps 1e-5), times weight [D]."""
    g = h.reshape(h.shape[0], heads, -1)
    g = (g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + 1e-5)
    return g.reshape(h.shape) * weight


@torch.no_grad()
def slstm_reference(block, u: torch.Tensor, state: tuple[torch.Tensor, ...]):
    """The sLSTM block one step and one unit at a time (Beck et al. 2024, eqs. 8-17 with the sigmoid
    forget gate, the stabiliser m_t, block-diagonal R per head), then GroupNorm and the gated feed-forward."""
    history = list(state[0].unbind(1)) if block.conv is not None else []
    c, n, m, h = (s.clone() for s in state[-4:])
    width, heads = block.width, block.heads
    d = width // heads
    outs = []
    for t in range(u.shape[0]):
        x = u[t]
        if block.conv is not None:
            x_conv = conv_step(block.conv, history, x)
            history.append(x)
            x = x_conv
        w_if = F.silu(x) @ block.gates_if.weight.T + block.gates_if.bias
        w_zo = u[t] @ block.gates_zo.weight.T + block.gates_zo.bias
        pre = torch.cat((w_if, w_zo), dim=-1).reshape(-1, 4, width).clone()  # i, f, z, o
        for b in range(u.shape[1]):
            for head in range(heads):
                units = slice(head * d, (head + 1) * d)
                recurrent = h[b, units] @ block.recurrent[head]  # [4 d], gate-major
                pre[b, :, units] += recurrent.reshape(4, d)
        new_h = torch.empty_like(h)
        for b in range(u.shape[1]):
            for j in range(width):
                i_raw, f_raw, z_raw, o_raw = (float(v) for v in pre[b, :, j])
                log_f = math.log(1 / (1 + math.exp(-f_raw))) + float(m[b, j])
                m_new = i_raw if float(n[b, j]) == 0 else max(i_raw, log_f)
                i_gate, f_gate = math.exp(i_raw - m_new), min(math.exp(log_f - m_new), 1.0)
                c[b, j] = f_gate * c[b, j] + i_gate * math.tanh(z_raw)
                n[b, j] = f_gate * n[b, j] + i_gate
                m[b, j] = m_new
                new_h[b, j] = c[b, j] / n[b, j] / (1 + math.exp(-o_raw))
        h = new_h
        g = group_norm(h, block.norm, heads)
        gate, up = (g @ block.ffn_up.weight.T).chunk(2, dim=-1)
        outs.append((F.gelu(gate) * up) @ block.ffn_down.weight.T)
    conv_state = (torch.stack(history[-(block.conv.kernel - 1):], dim=1),) if block.conv is not None else ()
    return torch.stack(outs), (*conv_state, c, n, m, h)


@torch.no_grad()
def mlstm_reference(block, u: torch.Tensor, state: tuple[torch.Tensor, ...]):
    """The mLSTM block one step, sequence and head at a time with explicit d x d matrices (Beck et al. 2024,
    eqs. 19-27 with the stabiliser m_t, and the pre-up-projection block of their Figure 11)."""
    history = list(state[0].unbind(1)) if block.conv is not None else []
    memory, normalizer, m = (s.clone() for s in state[-3:])
    heads, d, inner = block.heads, block.head_dim, block.inner
    outs, forgets = [], []
    for t in range(u.shape[0]):
        x, z = (u[t] @ block.up.weight.T).chunk(2, dim=-1)
        x_conv = x
        if block.conv is not None:
            x_conv = conv_step(block.conv, history, x)
            history.append(x)
        x_conv = F.silu(x_conv)
        q, k, v = (torch.empty_like(x) for _ in range(3))
        size = block.v.block
        for g in range(inner // size):  # block-diagonal projections, one block of channels at a time
            channels = slice(g * size, (g + 1) * size)
            q[:, channels] = x_conv[:, channels] @ block.qk.weight[g, :size].T
            k[:, channels] = x_conv[:, channels] @ block.qk.weight[g, size:].T
            v[:, channels] = x[:, channels] @ block.v.weight[g].T
        i_raw, f_raw = (torch.cat((q, k, v), dim=-1) @ block.gates.weight.T + block.gates.bias).chunk(2, dim=-1)
        h = torch.empty_like(q)
        forget = torch.empty_like(i_raw)
        for b in range(u.shape[1]):
            for head in range(heads):
                units = slice(head * d, (head + 1) * d)
                query, key, value = q[b, units], k[b, units] / math.sqrt(d), v[b, units]
                log_f = -math.log1p(math.exp(-float(f_raw[b, head])))
                m_new = max(log_f + float(m[b, head]), float(i_raw[b, head]))
                f_gate = math.exp(log_f + float(m[b, head]) - m_new)
                i_gate = math.exp(float(i_raw[b, head]) - m_new)
                memory[b, head] = f_gate * memory[b, head] + i_gate * torch.outer(value, key)
                normalizer[b, head] = f_gate * normalizer[b, head] + i_gate * key
                m[b, head] = m_new
                denominator = max(abs(float(normalizer[b, head] @ query)), math.exp(-m_new))
                h[b, units] = memory[b, head] @ query / denominator
                forget[b, head] = math.exp(log_f)
        h = group_norm(h, block.norm, heads) + block.skip * x_conv
        outs.append((h * F.silu(z)) @ block.down.weight.T)
        forgets.append(forget)
    conv_state = (torch.stack(history[-(block.conv.kernel - 1):], dim=1),) if block.conv is not None else ()
    return torch.stack(outs), (*conv_state, memory, normalizer, m), torch.stack(forgets)


def prefix_state(block, batch: int, device, seed: int = 2) -> tuple[torch.Tensor, ...]:
    """A non-zero state the block can reach: its state after 7 random steps from the zero state."""
    width = block.down.weight.shape[0] if hasattr(block, "down") else block.width
    zero = tuple(torch.zeros(batch, *shape, dtype=torch.float64, device=device) for shape in block.state_shapes())
    return block.run(randn(7, batch, width, seed=seed, device=device), zero)[1]


SLSTM_OPTIONS = [{}, {"conv": None}, {"heads": 2, "conv": 2}]
MLSTM_OPTIONS = [{}, {"conv": None}, {"heads": 2, "expand": 1, "conv": 2}]


BLOCK_CASES = [pytest.param(kind, options, id=f"{kind}-{options}")
               for kind, every in (("slstm", SLSTM_OPTIONS), ("mlstm", MLSTM_OPTIONS)) for options in every]


@pytest.mark.parametrize("kind, options", BLOCK_CASES)
@pytest.mark.parametrize("start", ["zero", "reached"])
def test_xlstm_blocks_equal_the_papers_equations_step_by_step(kind, options, start, device):
    block = block_of(kind, **options, device=device)
    u = randn(STEPS, 2, 8, seed=1, device=device, scale=2.0)
    state = prefix_state(block, 2, device) if start == "reached" else \
        tuple(torch.zeros(2, *shape, dtype=torch.float64, device=device) for shape in block.state_shapes())
    out, final, transitions = block.run(u, state)
    if kind == "slstm":
        (ref_out, ref_final), ref_forget = slstm_reference(block, u, state), None
    else:
        ref_out, ref_final, ref_forget = mlstm_reference(block, u, state)
    torch.testing.assert_close(out, ref_out)
    assert len(final) == len(ref_final)
    for a, b in zip(final, ref_final):
        torch.testing.assert_close(a, b)
    if ref_forget is None:
        assert transitions is None  # sLSTM is a non-linear recurrence: no transition eigenvalues
    else:
        torch.testing.assert_close(transitions, ref_forget)  # mLSTM's signed transition: sigmoid(f~) per head
        assert transitions.shape == (STEPS, 2, block.heads) and bool(((transitions > 0) & (transitions < 1)).all())


def cell_inputs(steps: int, batch: int, heads: int, d: int, device, scale: float = 1.0, seed: int = 3):
    """Random q, k, v, i~, log sigmoid(f~) and a reached (C, n, m) for the mLSTM cell."""
    q, k, v = (randn(steps, batch, heads, d, seed=seed + j, device=device) for j in range(3))
    i_raw = randn(steps, batch, heads, seed=seed + 3, device=device, scale=scale)
    log_f = F.logsigmoid(randn(steps, batch, heads, seed=seed + 4, device=device, scale=scale))
    zero = (q.new_zeros(batch, heads, d, d), q.new_zeros(batch, heads, d), q.new_zeros(batch, heads))
    return q, k, v, i_raw, log_f, mlstm_chunkwise(q[:5], k[:5], v[:5], i_raw[:5], log_f[:5], zero)[1]


def test_cells_pass_gradcheck(device):
    q, k, v, i_raw, log_f, state = cell_inputs(7, 1, 2, 2, device)

    def mlstm(*inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:  # chunks of 4: two, the last one partial
        h, final = mlstm_chunkwise(*inputs[:5], inputs[5:], chunk=4)
        return (h, *final)

    inputs = tuple(x.detach().requires_grad_(True) for x in (q, k, v, i_raw, log_f, *state))
    assert torch.autograd.gradcheck(mlstm, inputs)

    def slstm(gates: torch.Tensor, recurrent: torch.Tensor, *cell: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h, final = slstm_scan(gates, recurrent, cell)
        return (h, *final)

    gates = randn(4, 1, 4, 4, seed=5, device=device).requires_grad_(True)
    recurrent = randn(2, 2, 8, seed=6, device=device, scale=0.5).requires_grad_(True)
    c, n, m, h = (randn(1, 4, seed=7 + j, device=device) for j in range(4))
    cell = (c, n.abs() + 0.5, m, h)  # a reached normaliser is positive
    assert torch.autograd.gradcheck(slstm, (gates, recurrent, *(x.requires_grad_(True) for x in cell)))


@pytest.mark.parametrize("kind", ["slstm", "mlstm"])
def test_split_runs_across_chunks_equal_one_pass(kind, device):
    block = block_of(kind, device=device)
    u = randn(70, 3, 8, seed=4, device=device)
    state = prefix_state(block, 3, device)
    out, final, _ = block.run(u, state)
    first, mid, _ = block.run(u[:33], state)
    second, end, _ = block.run(u[33:], mid)
    torch.testing.assert_close(torch.cat([first, second]), out, atol=1e-12, rtol=1e-10)
    for a, b in zip(end, final):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_the_stabiliser_keeps_2000_steps_with_large_gates_finite(device):
    """Input-gate pre-activations up to about +-150 overflow exp() in float32 (beyond 88) without m_t: with it
    2,000 steps stay finite, forward and backward, and h stays a convex mixture of tanh(z~) for sLSTM."""
    steps, batch = 2000, 2
    q, k, v, i_raw, log_f, _ = cell_inputs(steps, batch, 2, 4, device, scale=50.0)
    zero = (q.new_zeros(batch, 2, 4, 4), q.new_zeros(batch, 2, 4), q.new_zeros(batch, 2))
    inputs = [x.float().requires_grad_(True) for x in (q, k, v, i_raw, log_f)]
    h, state = mlstm_chunkwise(*inputs, tuple(s.float() for s in zero))
    assert float(i_raw.abs().max()) > 100
    h.sum().backward()
    assert all(bool(torch.isfinite(x).all()) for x in (h, *state, *(x.grad for x in inputs)))
    gates = randn(steps, batch, 4, 8, seed=8, device=device, scale=50.0).float().requires_grad_(True)
    recurrent = randn(2, 4, 16, seed=9, device=device).float().requires_grad_(True)
    hidden, cell = slstm_scan(gates, recurrent, tuple(torch.zeros(batch, 8, device=device) for _ in range(4)))
    hidden.sum().backward()
    assert all(bool(torch.isfinite(x).all()) for x in (hidden, *cell, gates.grad, recurrent.grad))
    assert bool((hidden.abs() <= 1).all()) and bool((cell[1] >= 1).all())  # |c / n| <= 1, n >= 1 once written


@pytest.mark.parametrize("kind", ["slstm", "mlstm"])
def test_bad_options_are_refused_by_name(kind):
    with pytest.raises(ValueError, match="heads must divide hidden_size 8, got 3"):
        make_core(kind, 1, 8, heads=3)
    with pytest.raises(TypeError, match="heads must be an int"):
        make_core(kind, 1, 8, heads="4")
    with pytest.raises(ValueError, match="conv must be 0, None or a kernel size >= 2, got 1"):
        make_core(kind, 1, 8, conv=1)
    if kind == "mlstm":
        with pytest.raises(ValueError, match="expand must be an int >= 1, got 0"):
            make_core(kind, 1, 8, expand=0)
    else:
        with pytest.raises(TypeError, match="unexpected options \\['expand'\\]"):
            make_core(kind, 1, 8, expand=2)


# --- the public reference: the xlstm package (NX-AI/xlstm), where installed ---------------------------


def test_mlstm_cell_equals_the_xlstm_package(device):
    backends = pytest.importorskip("xlstm.blocks.mlstm.backends")
    steps, batch, heads, d = STEPS, 2, 3, 4
    q, k, v, i_raw, _, _ = cell_inputs(steps, batch, heads, d, device, scale=3.0)
    f_raw = randn(steps, batch, heads, seed=11, device=device, scale=3.0)
    zero = (q.new_zeros(batch, heads, d, d), q.new_zeros(batch, heads, d), q.new_zeros(batch, heads))
    ours, final = mlstm_chunkwise(q, k / math.sqrt(d), v, i_raw, F.logsigmoid(f_raw), zero)
    layout = lambda x: x.permute(1, 2, 0, *range(3, x.dim())).unsqueeze(-1) if x.dim() == 3 else x.permute(1, 2, 0, 3)  # noqa: E731
    parallel = backends.parallel_stabilized_simple(layout(q), layout(k), layout(v), layout(i_raw), layout(f_raw), eps=0.0)
    torch.testing.assert_close(ours, parallel.permute(2, 0, 1, 3), atol=1e-12, rtol=1e-10)
    c, n, m = q.new_zeros(batch, heads, d, d), q.new_zeros(batch, heads, d, 1), q.new_zeros(batch, heads, 1, 1)
    for t in range(steps):
        one = lambda x: x[t].unsqueeze(2) if x.dim() == 4 else x[t][..., None, None]  # noqa: E731
        h, (c, n, m) = backends.recurrent_step_stabilized_simple(c, n, m, one(q), one(k), one(v), one(i_raw),
                                                                  one(f_raw), eps=0.0)
        torch.testing.assert_close(ours[t], h.squeeze(2), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(final[0], c.mT)  # the reference stores k v^T
    torch.testing.assert_close(final[1], n.squeeze(-1))
    torch.testing.assert_close(final[2], m.squeeze(-1).squeeze(-1))


def test_slstm_cell_equals_the_xlstm_package(device):
    vanilla = pytest.importorskip("xlstm.blocks.slstm.src.vanilla")
    steps, batch, heads, d = STEPS, 2, 2, 3
    width = heads * d
    gates = randn(steps, batch, 4, width, seed=12, device=device, scale=3.0)
    recurrent = randn(heads, d, 4 * d, seed=13, device=device)
    zero = tuple(gates.new_zeros(batch, width) for _ in range(4))
    ours, final = slstm_scan(gates, recurrent, zero)
    # the reference: x [S, B, 4 H] gate-major, R [heads, 4 d, d], states [4, B, H] (y, c, n, m), bias apart
    states_all, states, _ = vanilla.slstm_forward(
        gates.reshape(steps, batch, 4 * width), gates.new_zeros(4, batch, width), recurrent.mT.contiguous(),
        gates.new_zeros(4 * width), vanilla.slstm_pointwise_function_registry["slstm"])
    torch.testing.assert_close(ours, states_all[0, 1:], atol=1e-12, rtol=1e-10)
    y, c, n, m = states
    for a, b in zip(final, (c, n, m, y)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
