"""The transformer core (agents/cores/attention.py) against the equations of its module docstring,
written out step by step here in float64, and the properties of a sliding window: its reach, its
validity mask, its relative positions."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from agents.cores import NO_OWN_TIMESCALE, make_core
from agents.cores import attention as attention_module
from agents.cores.attention import Transformer, alibi_slopes, attention


def build(hidden: int = 8, seed: int = 0, **options) -> Transformer:
    core = make_core("transformer", 1, hidden, generator=torch.Generator().manual_seed(seed), **options)
    return core.to(torch.float64)


def bits(steps: int, batch: int, seed: int = 1) -> torch.Tensor:
    return torch.bernoulli(torch.full((steps, batch, 1), 0.5, dtype=torch.float64),
                           generator=torch.Generator().manual_seed(seed))


def reference(core: Transformer, x: torch.Tensor, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The core's output by the docstring's equations, one sequence, layer, step and head at a time."""
    steps, batch, width = x.shape[0], x.shape[1], core.hidden_size
    out = torch.empty(steps, batch, width, dtype=x.dtype)
    for b in range(batch):
        u = [core.embed(x[t, b]) for t in range(steps)]
        for layer, (norm, block) in enumerate(zip(core.norms, core.blocks)):
            past, valid = state[2 * layer][b], state[2 * layer + 1][b]
            history = [(past[i], bool(valid[i] > 0.5)) for i in range(past.shape[0])]
            heads, size, context = block.heads, width // block.heads, block.context
            w_k, w_v = block.key_value.weight[:width], block.key_value.weight[width:]
            b_k, b_v = block.key_value.bias[:width], block.key_value.bias[width:]
            new_u = []
            for t in range(steps):
                history.append((norm(u[t]), True))
                window = history[-context:]  # offsets len(window) - 1 .. 0
                q = block.query(history[-1][0])
                heads_out = []
                for h in range(heads):
                    part = slice(h * size, (h + 1) * size)
                    scores, vals = [], []
                    for i, (z, real) in enumerate(window):
                        if real:
                            offset = len(window) - 1 - i
                            k = w_k[part] @ z + b_k[part]
                            scores.append(q[part] @ k / math.sqrt(size) + block.position_bias[h, offset])
                            vals.append(w_v[part] @ z + b_v[part])
                    weights = torch.exp(torch.stack(scores) - max(scores))
                    heads_out.append((weights / weights.sum()) @ torch.stack(vals))
                x_t = u[t] + block.out(torch.cat(heads_out))
                inner = block.mlp.inner(F.layer_norm(x_t, (width,), block.norm_mlp.weight, block.norm_mlp.bias))
                new_u.append(x_t + block.mlp.outer(F.gelu(inner)))
            u = new_u
        out[:, b] = torch.stack([core.norm_out(v) for v in u])
    return out


def partial_state(core: Transformer, batch: int, seed: int = 3) -> tuple[torch.Tensor, ...]:
    """A state whose windows hold random vectors with a random validity mask (as after resets)."""
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for shape in core.state_shapes():
        if len(shape) == 2:
            parts.append(torch.randn(batch, *shape, generator=gen, dtype=torch.float64))
        else:
            parts.append(torch.bernoulli(torch.full((batch, *shape), 0.5, dtype=torch.float64), generator=gen))
    return tuple(parts)


@pytest.mark.parametrize("layers", [1, 2])
def test_forward_matches_the_step_by_step_equations_past_the_window(layers):
    core = build(context=4, heads=2, layers=layers)
    x = bits(11, 3)  # longer than the window: it slides
    with torch.no_grad():
        for state in (core.initial_state(3), partial_state(core, 3)):
            hidden, _ = core(x, state)
            torch.testing.assert_close(hidden, reference(core, x, state), atol=1e-10, rtol=1e-9)


def test_steps_and_halves_equal_one_pass_as_the_window_slides():
    core = build(context=3, layers=2)
    x, state = bits(13, 2), partial_state(core, 2)
    hidden, final = core(x, state)
    outs, carried = [], state
    for t in range(13):
        h, carried = core.step(x[t], carried)
        outs.append(h)
    torch.testing.assert_close(torch.stack(outs), hidden, atol=1e-10, rtol=1e-9)
    first, mid = core(x[:1], state)
    second, end = core(x[1:], mid)
    torch.testing.assert_close(torch.cat([first, second]), hidden, atol=1e-10, rtol=1e-9)
    for a, b, c in zip(end, final, carried):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-9)
        torch.testing.assert_close(c, b, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("layers", [1, 2])
def test_an_input_reaches_exactly_context_length_steps(layers):
    core = build(context=5, layers=layers)
    reach = core.context_length()
    assert reach == layers * 4 + 1
    x = bits(reach + 3, 2)
    flipped = x.clone()
    flipped[0] = 1 - flipped[0]
    with torch.no_grad():
        a, b = core(x)[0], core(flipped)[0]
    changed = (a - b).abs().amax(dim=(1, 2))
    assert bool((changed[:reach] > 1e-6).all()), "the input at step 0 must reach every step of the window"
    assert bool((changed[reach:] == 0).all()), "nothing beyond the window may reach the output"


def test_the_final_state_is_the_last_window_of_normed_inputs_and_zeros_are_an_empty_history():
    core = build(context=4)
    x = bits(2, 3)
    _, (past, valid) = core(x)
    assert past.shape == (3, 3, 8) and valid.shape == (3, 3)
    assert valid.tolist() == [[0.0, 1.0, 1.0]] * 3
    torch.testing.assert_close(past[:, 1:], core.norms[0](core.embed(x)).transpose(0, 1))
    assert bool((past[:, 0] == 0).all())
    # whatever an invalid slot holds is ignored: a reset (mask zeros) equals a fresh start
    garbage = (torch.randn(3, 3, 8, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64))
    torch.testing.assert_close(core(x, garbage)[0], core(x)[0], atol=1e-12, rtol=0)
    assert not torch.allclose(core(x, (garbage[0], torch.ones(3, 3, dtype=torch.float64)))[0], core(x)[0])


def test_positions_are_relative_the_same_window_gives_the_same_output():
    core = build(context=4)
    tail = bits(4, 2, seed=5)
    long_a = torch.cat([bits(7, 2, seed=6), tail])
    long_b = torch.cat([bits(3, 2, seed=7), tail])
    with torch.no_grad():
        torch.testing.assert_close(core(long_a)[0][-1], core(long_b)[0][-1], atol=1e-12, rtol=0)


def test_position_bias_starts_as_alibi_and_trains():
    core = build(hidden=16, heads=4, context=6)
    slopes = alibi_slopes(4)
    torch.testing.assert_close(slopes, torch.tensor([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8], dtype=torch.float64))
    bias = core.blocks[0].position_bias
    assert bias.shape == (4, 6)
    torch.testing.assert_close(bias, -slopes[:, None] * torch.arange(6, dtype=torch.float64))
    assert bool((bias[:, 1:] < bias[:, :-1]).all()), "every head starts preferring recent steps"
    hidden = core(bits(8, 2))[0]
    readout = torch.randn(hidden.shape, generator=torch.Generator().manual_seed(0), dtype=hidden.dtype)
    (hidden * readout).sum().backward()  # not hidden.sum(): the final LayerNorm makes that a constant
    assert bool((bias.grad != 0).all()), "every offset in the window gets a gradient"


def test_options_and_their_errors():
    core = make_core("transformer", 1, 12, heads=3, context=9, layers=2)
    assert core.to_config() == {"kind": "transformer", "input_size": 1, "hidden_size": 12, "layers": 2,
                                "heads": 3, "context": 9}
    assert core.state_shapes() == ((8, 12), (8,), (8, 12), (8,))
    assert core.own_timescales() is None and core.decays(torch.zeros(3, 2, 1)) is None
    assert "transformer" in NO_OWN_TIMESCALE
    with pytest.raises(ValueError, match="heads must divide hidden_size 10"):
        make_core("transformer", 1, 10, heads=4)
    with pytest.raises(ValueError, match="context must be an int >= 2"):
        make_core("transformer", 1, 8, context=1)
    with pytest.raises(TypeError, match="context"):
        make_core("transformer", 1, 8, context=2.5)


def reference_attention(q, k, v, bias, key_mask=None):
    """The attention by SDPA's math with one float mask (what the core computed before its own kernel)."""
    mask = bias if key_mask is None else bias + key_mask[:, None, None, :]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("steps, keys", [(1, 1), (1, 5), (3, 7), (6, 6), (9, 14)])
def test_attention_and_its_gradients_match_the_math_path_in_pieces(device, monkeypatch, steps, keys):
    gen = torch.Generator().manual_seed(steps * 100 + keys)
    q = torch.randn(5, 2, steps, 3, generator=gen, dtype=torch.float64)
    k, v = (torch.randn(5, 2, keys, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    bias = torch.randn(2, steps, keys, generator=gen, dtype=torch.float64)
    offset = torch.arange(steps)[:, None] + keys - steps - torch.arange(keys)[None, :]
    bias = bias.masked_fill((offset < 0) | (offset > 3), float("-inf"))  # a window of 4 steps
    held = torch.rand(5, keys, generator=gen) < 0.6
    held[:, keys - steps:] = True  # the new steps are always held
    key_mask = torch.zeros(5, keys, dtype=torch.float64).masked_fill(~held, float("-inf"))
    q, k, v, bias, key_mask = (t.to(device) for t in (q, k, v, bias, key_mask))
    for rows, pieces in ((32, 1), (2, 2), (1, 5)):  # query blocks of 32, 2 or 1 rows; 1, 3 or 5 pieces of the batch
        monkeypatch.setattr(attention_module, "QUERY_BLOCK", rows)
        monkeypatch.setattr(attention_module, "CACHED_SCORES", pieces * 2 * min(rows, steps) * keys)
        for mask in (None, key_mask):
            inputs = [t.clone().requires_grad_() for t in (q, k, v, bias)]
            expected = [t.clone().requires_grad_() for t in (q, k, v, bias)]
            out = attention(*inputs, mask)
            ref = reference_attention(*expected, mask)
            torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
            weights = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(device)
            (out * weights).sum().backward()
            (ref * weights).sum().backward()
            for mine, theirs in zip(inputs, expected):
                torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-11, rtol=1e-9)
            with torch.no_grad():  # no gradient to keep (one step of it: SDPA's fused kernel)
                torch.testing.assert_close(attention(q, k, v, bias, mask), ref, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("steps", [1, 2, 5, 12])
def test_core_gradients_equal_the_math_path_from_a_partly_valid_window(device, monkeypatch, steps):
    monkeypatch.setattr(attention_module, "QUERY_BLOCK", 4)  # at 12 steps: 3 blocks, the window sliding
    core = build(context=6, heads=2, layers=2).to(device)
    x, state = bits(steps, 3).to(device), tuple(t.to(device) for t in partial_state(core, 3))
    readout = torch.randn(steps, 3, 8, generator=torch.Generator().manual_seed(steps), dtype=torch.float64)

    def run() -> tuple[torch.Tensor, ...]:
        core.zero_grad()
        hidden, final = core(x, state)
        (hidden * readout.to(device)).sum().backward()
        return (hidden, *final, *(p.grad.clone() for p in core.parameters()))

    fast = run()
    monkeypatch.setattr(attention_module, "attention", reference_attention)
    for mine, theirs in zip(fast, run()):
        torch.testing.assert_close(mine, theirs, atol=1e-11, rtol=1e-9)


@pytest.mark.parametrize("heads, expected", [
    (1, [2 ** -8]),
    (3, [2 ** -4, 2 ** -8, 2 ** -2]),
    (6, [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]),
    (8, [2 ** -h for h in range(1, 9)]),
])
def test_alibi_slopes_follow_the_reference_code_for_any_head_count(heads, expected):
    # the reference code: a power of two's geometric slopes, then every other slope of the next power
    torch.testing.assert_close(alibi_slopes(heads), torch.tensor(expected, dtype=torch.float64))
