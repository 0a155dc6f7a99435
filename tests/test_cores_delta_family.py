"""DeltaProduct and Gated DeltaNet (agents/cores/delta.py) against plain step-by-step float64 loops of their
papers' equations, the gated chunkwise delta rule against its step loop (values, gradients, gradcheck, split
runs), DeltaProduct with one Householder step against DeltaNet on the same weights, their options, and
(where flash-linear-attention is importable) the recurrences against fla's naive reference functions.
The shared zoo tests (state carried, step == pass, checkpoints, gradcheck of the cores) are in tests/test_cores.py."""

from __future__ import annotations

import importlib.util
import math
import types
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from agents.cores import make_core
from agents.cores.delta import CHUNK, delta_rule

STEPS = 2 * CHUNK + 5  # two whole chunks and a partial one (for DeltaProduct n_h times that many steps)
WIDTH = 32  # two heads of 16


def block_of(kind: str, width: int = WIDTH, seed: int = 0, **options):
    core = make_core(kind, 1, width, generator=torch.Generator().manual_seed(seed), **options).double()
    return core.blocks[0]


def random_inputs(block, device, steps: int = STEPS, batch: int = 3, seed: int = 1):
    """u [steps, B, D] and a random non-zero state of the block's shapes, drawn on the CPU, on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(steps, batch, WIDTH, generator=gen, dtype=torch.float64)
    state = tuple(0.5 * torch.randn(batch, *shape, generator=gen, dtype=torch.float64)
                  for shape in block.state_shapes())
    return u.to(device), tuple(s.to(device) for s in state)


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm().clamp_min(1e-6)


def reference(block, u: torch.Tensor, state: tuple[torch.Tensor, ...]):
    """DeltaProduct (Siems et al. 2025) and Gated DeltaNet (Yang et al. 2025) one token, sequence and head at a
    time with explicit d x d matrices: per token, alpha_t = exp(-exp(A_log) softplus(w_a u_t + dt_bias)) (1
    without a gate), then for each of its n_h keys S <- alpha S (I - beta_j k_j k_j^T) + beta_j v_j k_j^T (the
    gate on the first only), o_t = S q_t / sqrt(d), out_t = W_o (RMSNorm(o_t) [* SiLU(W_g u_t)]). Returns the
    outputs, the final state and the transitions alpha (1 - beta_j ||k_j||^2) [T, B, n_h * heads]."""
    conv = block.conv
    history = list(state[0].unbind(1)) if conv is not None else []
    memory = state[-1].clone()
    heads, d, n = block.heads, block.head_dim, getattr(block, "householders", 1)
    gated = hasattr(block, "a_log")
    eye = torch.eye(d, dtype=u.dtype, device=u.device)
    outs, transitions = [], []
    for t in range(u.shape[0]):
        qkv = u[t] @ block.qkv.weight.T
        if conv is not None:
            window = history[-(conv.kernel - 1):] + [qkv]
            history.append(qkv)
            qkv = sum(conv.weight[:, j] * window[j] for j in range(conv.kernel))
        q, k, v = F.silu(qkv).split([WIDTH, n * WIDTH, n * WIDTH], dim=-1)
        q, k, v = q.reshape(-1, heads, d), k.reshape(-1, n, heads, d), v.reshape(-1, n, heads, d)
        beta = torch.sigmoid(u[t] @ block.beta.weight.T).reshape(-1, n, heads)
        beta = beta * (2 if block.eigenvalues == "signed" else 1)
        alpha = (torch.exp(-block.a_log.exp() * F.softplus(u[t] @ block.a_proj.weight.T + block.dt_bias))
                 if gated else torch.ones(u.shape[1], heads, dtype=u.dtype, device=u.device))
        o = torch.empty_like(q)
        transition = torch.empty(u.shape[1], n, heads, dtype=u.dtype, device=u.device)
        new_memory = torch.empty_like(memory)
        for i in range(u.shape[1]):
            for h in range(heads):
                s = memory[i, h]
                for j in range(n):
                    key = unit(k[i, j, h])
                    a = alpha[i, h] if j == 0 else 1.0
                    b = beta[i, j, h]
                    s = a * s @ (eye - b * torch.outer(key, key)) + b * torch.outer(v[i, j, h], key)
                    transition[i, j, h] = a * (1 - b * (key @ key))
                new_memory[i, h] = s
                o[i, h] = s @ unit(q[i, h]) / math.sqrt(d)
        memory = new_memory
        o = o / torch.sqrt((o * o).mean(-1, keepdim=True) + 1e-5) * block.norm
        if gated:
            o = o * F.silu(u[t] @ block.gate_proj.weight.T).reshape(-1, heads, d)
        outs.append(o.reshape(u.shape[1], -1) @ block.out_proj.weight.T)
        transitions.append(transition.reshape(u.shape[1], -1))
    conv_state = (torch.stack(history[-(conv.kernel - 1):], dim=1),) if conv is not None else ()
    return torch.stack(outs), (*conv_state, memory), torch.stack(transitions)


SETTINGS = [("deltaproduct", {}), ("deltaproduct", {"householders": 3, "eigenvalues": "signed"}),
            ("deltaproduct", {"householders": 1, "conv": None}), ("deltaproduct", {"conv": 2, "eigenvalues": "signed"}),
            ("gated_deltanet", {}), ("gated_deltanet", {"eigenvalues": "signed"}),
            ("gated_deltanet", {"conv": None}), ("gated_deltanet", {"conv": 2, "eigenvalues": "signed"})]


@pytest.mark.parametrize("kind,options", SETTINGS, ids=str)
def test_the_block_equals_the_papers_equations_step_by_step(kind, options, device):
    block = block_of(kind, **options).to(device)
    u, state = random_inputs(block, device)
    out, final, transitions = block.run(u, state)
    ref_out, ref_final, ref_transitions = reference(block, u, state)
    torch.testing.assert_close(out, ref_out)
    assert len(final) == len(ref_final)
    for a, b in zip(final, ref_final):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(transitions, ref_transitions)


@pytest.mark.parametrize("kind,options", [("deltaproduct", {"eigenvalues": "signed"}), ("gated_deltanet", {})], ids=str)
def test_gradients_equal_the_references(kind, options, device):
    block = block_of(kind, **options).to(device)
    u, state = random_inputs(block, device, steps=CHUNK + 3)
    weights = torch.randn(CHUNK + 3, 3, WIDTH, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    grads = []
    for run in (block.run, lambda x, s: reference(block, x, s)):
        block.zero_grad()
        out, final, transitions = run(u, state)
        ((out * weights.to(device)).sum() + (final[-1] ** 2).sum() + transitions.sum()).backward()
        grads.append([p.grad.clone() for p in block.parameters()])
    for (name, _), got, want in zip(block.named_parameters(), *grads):
        torch.testing.assert_close(got, want, msg=name)


def test_one_householder_step_is_deltanet_on_the_same_weights(device):
    deltanet = make_core("deltanet", 1, WIDTH, generator=torch.Generator().manual_seed(4)).double().to(device)
    product = make_core("deltaproduct", 1, WIDTH, householders=1, generator=torch.Generator().manual_seed(5))
    product = product.double().to(device)
    product.load_state_dict(deltanet.state_dict())  # the same parameter names and shapes
    x = torch.randn(STEPS, 2, 1, generator=torch.Generator().manual_seed(6), dtype=torch.float64).to(device)
    for a, b in zip((deltanet(x), deltanet.decays(x)), (product(x), product.decays(x))):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # and two Householder steps are not DeltaNet: the same seed draws different (wider) projections
    assert make_core("deltaproduct", 1, WIDTH).blocks[0].qkv.weight.shape == (5 * WIDTH, WIDTH)


@pytest.mark.parametrize("value,error", [(0, ValueError), ("x", TypeError), (True, TypeError), (1.5, TypeError)])
def test_bad_householders_are_refused_by_name(value, error):
    with pytest.raises(error, match="householders must be an int >= 1"):
        make_core("deltaproduct", 1, WIDTH, householders=value)
    with pytest.raises(TypeError, match="unexpected options \\['householders'\\]"):
        make_core("gated_deltanet", 1, WIDTH, householders=2)


@pytest.mark.parametrize("kind", ["deltaproduct", "gated_deltanet"])
@pytest.mark.parametrize("eigenvalues,low", [("positive", 0.0), ("signed", -1.0)])
def test_transitions_are_signed_and_in_range(kind, eigenvalues, low, device):
    """Saturated betas reach the range's ends: transitions in [0, 1] ([-1, 1] signed), negative ones only signed."""
    block = block_of(kind, eigenvalues=eigenvalues).to(device)
    with torch.no_grad():
        block.beta.weight.mul_(1e3)
    u, state = random_inputs(block, device)
    transitions = block.run(u, state)[2]
    heads = block.heads * (2 if kind == "deltaproduct" else 1)
    assert transitions.shape == (STEPS, 3, heads)
    assert float(transitions.min()) >= low - 1e-12 and float(transitions.max()) <= 1.0
    assert (float(transitions.min()) < -0.5) == (eigenvalues == "signed")


def test_gated_deltanet_initial_decay_follows_fla(device):
    """A = exp(A_log) in (0, 16] and dt = softplus(dt_bias) in [1e-3, 0.1], so alpha_t = exp(g_t) lies in (0, 1)."""
    block = block_of("gated_deltanet", 256, seed=3).to(device)
    a, dt = block.a_log.exp(), F.softplus(block.dt_bias)
    assert float(a.min()) > 0 and float(a.max()) <= 16 and float(a.max()) > 8
    assert float(dt.min()) >= 1e-3 * (1 - 1e-9) and float(dt.max()) <= 0.1 * (1 + 1e-9)
    gate = block.log_gate(torch.randn(5, 2, 256, dtype=torch.float64, device=device))
    assert gate.shape == (5, 2, block.heads) and bool((gate < 0).all())


def gated_steps(q, k, v, beta, memory, log_gate):
    """S_t = alpha_t S_{t-1} + beta_t (v_t - alpha_t S_{t-1} k_t) k_t^T, o_t = S_t q_t, one step at a time."""
    outs = []
    for t in range(q.shape[0]):
        memory = log_gate[t, ..., None, None].exp() * memory
        error = beta[t, ..., None] * (v[t] - (memory @ k[t].unsqueeze(-1)).squeeze(-1))
        memory = memory + error.unsqueeze(-1) * k[t].unsqueeze(-2)
        outs.append((memory @ q[t].unsqueeze(-1)).squeeze(-1))
    return torch.stack(outs), memory


def gated_inputs(steps: int, device, seed: int = 3, batch: int = 2, heads: int = 2, d: int = 4, strong: bool = False):
    """Float64 q, unit k, v, beta in [0, 2], a state and log gates (down to -30 per step with ``strong``)."""
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(steps, batch, heads, d, generator=gen, dtype=torch.float64) for _ in range(3))
    beta = 2 * torch.rand(steps, batch, heads, generator=gen, dtype=torch.float64)
    memory = torch.randn(batch, heads, d, d, generator=gen, dtype=torch.float64)
    log_gate = -torch.rand(steps, batch, heads, generator=gen, dtype=torch.float64) * (30 if strong else 0.5)
    return [x.to(device) for x in (q, F.normalize(k, dim=-1), v, beta, memory, log_gate)]


@pytest.mark.parametrize("steps,chunk,strong", [(1, CHUNK, False), (CHUNK, CHUNK, False), (3 * CHUNK + 5, CHUNK, False),
                                                (30, 4, False), (2 * CHUNK + 1, CHUNK, True)])
def test_gated_chunkwise_delta_rule_equals_the_step_loop(steps, chunk, strong, device):
    """Whole and partial chunks, and gates strong enough that a chunk's cumulative decay underflows to 0."""
    *inputs, log_gate = gated_inputs(steps, device, strong=strong)
    out, final = delta_rule(*inputs, log_gate=log_gate, chunk=chunk)
    ref_out, ref_final = gated_steps(*inputs, log_gate)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(final, ref_final)


def test_gated_chunkwise_delta_rule_gradients(device):
    """Finite differences (gradcheck, 2 chunks of 4 and a partial one), then autograd through the step loop at
    a longer length: the gradients for q, k, v, beta, the state and the gates."""
    inputs = [x.requires_grad_() for x in gated_inputs(9, device, batch=1, heads=1, d=3)]
    assert torch.autograd.gradcheck(lambda q, k, v, b, m, g: delta_rule(q, k, v, b, m, log_gate=g, chunk=4), inputs)
    inputs = [x.requires_grad_() for x in gated_inputs(2 * CHUNK + 3, device)]
    weights = torch.randn(2 * CHUNK + 3, 2, 2, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    grads = []
    for run in (lambda *x: delta_rule(*x[:5], log_gate=x[5]), lambda *x: gated_steps(*x)):
        out, final = run(*inputs)
        grads.append(torch.autograd.grad((out * weights.to(device)).sum() + (final ** 2).sum(), inputs))
    for name, got, want in zip(("q", "k", "v", "beta", "memory", "log_gate"), *grads):
        torch.testing.assert_close(got, want, msg=name)


def test_split_runs_of_the_gated_delta_rule_equal_one_pass(device):
    *inputs, log_gate = gated_inputs(2 * CHUNK + 9, device)
    out, final = delta_rule(*inputs, log_gate=log_gate)
    cut = CHUNK + 3
    first, mid = delta_rule(*(x[:cut] for x in inputs[:4]), inputs[4], log_gate=log_gate[:cut])
    second, end = delta_rule(*(x[cut:] for x in inputs[:4]), mid, log_gate=log_gate[cut:])
    torch.testing.assert_close(torch.cat([first, second]), out)
    torch.testing.assert_close(end, final)


# flash-linear-attention's naive reference functions (fla-core on PyPI, not a dependency of this project)

def fla_naive(relative: str):
    """fla's naive module at ``relative`` (under fla/ops), loaded from its file without importing the fla package
    (whose __init__ needs triton), with float32 read as float64 in it: the naive functions cast their inputs
    and buffers to float32, and here run the same steps in float64. Skips the test where fla is absent."""
    spec = importlib.util.find_spec("fla")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("flash-linear-attention (fla-core) is not installed")
    pytest.importorskip("einops")
    path = Path(next(iter(spec.submodule_search_locations))) / "ops" / relative
    if not path.is_file():
        pytest.skip(f"this fla version has no {relative}")
    float64_torch = types.ModuleType("torch")
    float64_torch.__dict__.update(torch.__dict__)
    float64_torch.float32 = float64_torch.float = torch.float64
    module = types.ModuleType(f"fla_naive_{path.parent.name}")
    module.__dict__["torch"] = float64_torch
    source = path.read_text().replace("import torch\n", "", 1)  # keep the float64 stand-in as its torch
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def fla_inputs(steps: int, n: int, device, batch: int = 2, heads: int = 2, d: int = 4):
    """Float32-representable float64 inputs (fla's ``.float()`` then changes no value): q, unit k, v, beta in
    [0, 2] of n_h T steps, a state S and log gates; fla's layout is [B, T, H, d] and its state S^T."""
    gen = torch.Generator().manual_seed(11)
    q = torch.randn(steps, batch, heads, d, generator=gen)
    k = F.normalize(torch.randn(n * steps, batch, heads, d, generator=gen), dim=-1)
    v = torch.randn(n * steps, batch, heads, d, generator=gen)
    beta = 2 * torch.rand(n * steps, batch, heads, generator=gen)
    memory = torch.randn(batch, heads, d, d, generator=gen)
    log_gate = -torch.rand(steps, batch, heads, generator=gen)
    return [x.double().to(device) for x in (q, k, v, beta, memory, log_gate)]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_deltaproduct_recurrence_equals_flas_naive_gated_delta_product(n, device):
    """Our delta rule on each token's n_h steps, read after the last, against fla's
    naive_recurrent_gated_delta_product(g=None, num_householder=n_h) (n_h = 1: DeltaNet)."""
    naive = fla_naive("gated_delta_product/naive.py").naive_recurrent_gated_delta_product
    q, k, v, beta, memory, _ = fla_inputs(STEPS, n, device)
    expanded = torch.stack([torch.zeros_like(q)] * (n - 1) + [q], dim=1).flatten(0, 1)
    out, final = delta_rule(expanded, k, v, beta, memory)
    want, want_final = naive(*(x.transpose(0, 1) for x in (q, k, v)), None, beta.transpose(0, 1), scale=1.0,
                             initial_state=memory.mT.clone(), output_final_state=True, num_householder=n)
    assert want.dtype == torch.float64
    torch.testing.assert_close(out.unflatten(0, (STEPS, n))[:, -1], want.transpose(0, 1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final, want_final.mT, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reference", ["gated_delta_rule", "gated_delta_product"])
def test_gated_recurrence_equals_flas_naive_gated_delta_rule(reference, device):
    """Our gated delta rule against fla's naive_recurrent_gated_delta_rule and, with num_householder=1, its
    naive_recurrent_gated_delta_product."""
    q, k, v, beta, memory, log_gate = fla_inputs(STEPS, 1, device)
    out, final = delta_rule(q, k, v, beta, memory, log_gate=log_gate)
    fla = [x.transpose(0, 1) for x in (q, k, v, beta, log_gate)]
    if reference == "gated_delta_rule":
        naive = fla_naive("gated_delta_rule/naive.py").naive_recurrent_gated_delta_rule
        want, want_final = naive(*fla, scale=1.0, initial_state=memory.mT.clone(), output_final_state=True)
    else:
        naive = fla_naive("gated_delta_product/naive.py").naive_recurrent_gated_delta_product
        want, want_final = naive(*fla[:3], fla[4], fla[3], scale=1.0, initial_state=memory.mT.clone(),
                                 output_final_state=True, num_householder=1)
    assert want.dtype == torch.float64
    torch.testing.assert_close(out, want.transpose(0, 1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final, want_final.mT, rtol=1e-12, atol=1e-12)
