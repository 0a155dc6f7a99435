"""Tests of agents: equations vs naive implementations, exactness vs torch, checkpoints, bad input."""

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import agents
from agents import LeakyGRU, LeakyLSTM, LeakyRNN, MultiHeadModel, make_core
from agents._leaky_rnn_kernel import leaky_recurrence
from conftest import requires_cuda

PHI = {"leaky_relu": lambda z: F.leaky_relu(z, 0.01), "tanh": torch.tanh, "relu": torch.relu}


def naive_leaky(core: LeakyRNN, x, h0):
    """The paper's leaky RNN (docs/agents.md) written out per step, from the raw parameters."""
    raw = core.time_constant.raw
    if core.time_constant.parametrisation == "softplus":
        tau = 1 + F.softplus(raw)
    else:
        tau = torch.maximum(raw, torch.ones_like(raw))
    eye = torch.eye(core.hidden_size, dtype=x.dtype, device=x.device)
    w = core.weight_hh if core.self_connections else core.weight_hh * (1 - eye)
    phi = PHI[core.activation]
    h, out = h0, []
    for t in range(x.shape[0]):
        drive = h @ w.T + core.bias_hh + x[t] @ core.weight_ih.T + core.bias_ih
        if core.variant == "standard":
            h = phi((1 - 1 / tau) * h + drive / tau)
        else:
            h = (1 - 1 / tau) * h + phi(drive) / tau
        out.append(h)
    return torch.stack(out)


def parts(state):
    """The tensors of a core state (a tensor, or the LSTM's (h, c))."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def torch_state(state):
    """A core state in nn.GRU / nn.LSTM's layout (a leading layer dimension)."""
    layered = tuple(p.unsqueeze(0) for p in parts(state))
    return layered if len(layered) == 2 else layered[0]


@pytest.mark.parametrize("variant", ["standard", "mod"])
@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "relu"])
@pytest.mark.parametrize("self_connections", [False, True])
@pytest.mark.parametrize("tau_param", ["clamp", "softplus"])
def test_leaky_rnn_matches_naive(variant, activation, self_connections, tau_param, device):
    g = torch.Generator().manual_seed(1)
    core = LeakyRNN(2, 7, variant=variant, activation=activation, self_connections=self_connections,
                    tau_param=tau_param, tau_init=(1.0, 3.0), generator=g).double().to(device)
    x = torch.rand(9, 4, 2, dtype=torch.float64, generator=g).to(device)
    h0 = core.initial_state(4, generator=g).requires_grad_()
    hidden, final = core(x, h0)
    expected = naive_leaky(core, x, h0)
    torch.testing.assert_close(hidden, expected)
    assert torch.equal(final, hidden[-1])
    w = torch.randn(hidden.shape, dtype=torch.float64, generator=g).to(device)
    got = torch.autograd.grad((hidden * w).sum(), [h0, *core.parameters()])
    want = torch.autograd.grad((expected * w).sum(), [h0, *core.parameters()])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "relu"])
def test_kernel_gradcheck(activation, device):
    """The grouped Function (G = 2 networks side by side), every input differentiated."""
    g = torch.Generator().manual_seed(2)
    kw = dict(dtype=torch.float64, generator=g)

    def leaf(t):
        return t.to(device).requires_grad_()

    v, h0 = leaf(torch.randn(4, 2, 3, 5, **kw)), leaf(torch.rand(2, 3, 5, **kw))
    m = leaf(0.5 * torch.randn(2, 5, 5, **kw))
    leak, scale = leaf(torch.rand(2, 1, 5, **kw)), leaf(torch.rand(2, 1, 5, **kw))
    for lengths in (None, (4, 2)):  # the second network runs 2 of the 4 steps
        assert torch.autograd.gradcheck(lambda *a: leaky_recurrence(*a[:3], activation, lengths=lengths),
                                        (v, h0, m))
        assert torch.autograd.gradcheck(
            lambda v, h, m, l, s: leaky_recurrence(v, h, m, activation, l, s, lengths), (v, h0, m, leak, scale))
        hs, last = leaky_recurrence(v, h0, m, activation, lengths=lengths)
        assert torch.equal(last[1], hs[2 if lengths else 4, 1])
        assert lengths is None or not hs[3:, 1].any()  # zero after its own steps
        (grad_m,) = torch.autograd.grad(last[1].sum(), m, retain_graph=True)  # only the last step read
        (grad_m_hs,) = torch.autograd.grad(hs[2 if lengths else 4, 1].sum(), m)
        torch.testing.assert_close(grad_m, grad_m_hs, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["leaky", "leaky_mod"])
def test_core_gradcheck(kind, device):
    g = torch.Generator().manual_seed(3)
    core = make_core(kind, 2, 4, tau_param="softplus", generator=g).double().to(device)
    x = torch.rand(5, 2, 2, dtype=torch.float64, generator=g).to(device).requires_grad_()
    h0 = core.initial_state(2, generator=g)
    names = [n for n, _ in core.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in core.parameters())

    def f(x, *ps):
        return torch.func.functional_call(core, dict(zip(names, ps)), (x, h0))[0]

    assert torch.autograd.gradcheck(f, (x, *params))


def test_tau_gradient_clamp_and_softplus():
    x = torch.rand(6, 3, 1, generator=torch.Generator().manual_seed(4))
    for param, expect_zero in (("clamp", True), ("softplus", False)):
        core = LeakyRNN(1, 5, tau_param=param, tau_init=1.0, generator=torch.Generator().manual_seed(0))
        if param == "clamp":
            with torch.no_grad():
                core.time_constant.raw.fill_(0.5)  # below 1: the clamp has no gradient
        else:
            with torch.no_grad():
                core.time_constant.raw.fill_(-5.0)  # tau' just above 1: softplus still has one
        core(x)[0].square().sum().backward()
        grad = core.time_constant.raw.grad
        assert (grad == 0).all() if expect_zero else (grad != 0).all()
        assert torch.all(core.tau >= 1)
    core = LeakyRNN(1, 5, tau_init=(1.5, 2.0))
    core(x)[0].square().sum().backward()
    assert (core.time_constant.raw.grad != 0).all()


def test_fixed_tau_has_no_parameter():
    core = LeakyRNN(1, 5, tau_init=3.0, train_tau=False)
    assert "time_constant.raw" not in dict(core.named_parameters())
    assert torch.equal(core.tau, torch.full((5,), 3.0))


def test_diagonal_stays_zero_through_sgd():
    core = LeakyRNN(1, 6, generator=torch.Generator().manual_seed(5))
    head = nn.Linear(6, 1)
    opt = torch.optim.SGD([*core.parameters(), *head.parameters()], lr=0.05, momentum=0.9,
                          nesterov=True, weight_decay=1e-3)
    for i in range(5):
        opt.zero_grad()
        head(core(torch.rand(8, 4, 1))[0][-1]).square().sum().backward()
        assert torch.count_nonzero(core.weight_hh.grad.diagonal()) == 0
        opt.step()
    assert torch.count_nonzero(core.weight_hh.diagonal()) == 0
    assert torch.count_nonzero(core.weight_hh) == 6 * 5


@pytest.mark.parametrize("cls,ref_cls", [(LeakyGRU, nn.GRU), (LeakyLSTM, nn.LSTM)])
@pytest.mark.parametrize("train_tau", [False, True])
def test_gru_lstm_equal_torch_at_tau_one(cls, ref_cls, train_tau, device):
    """On CUDA the reference is cuDNN's nn.GRU / nn.LSTM."""
    g = torch.Generator().manual_seed(6)
    core = cls(3, 8, tau_init=1.0, train_tau=train_tau, generator=g).to(device)
    assert core.is_plain() is not train_tau
    ref = ref_cls(3, 8).to(device)
    ref.load_state_dict(core.rnn.state_dict())
    x = torch.rand(7, 5, 3, generator=g).to(device)
    state = core.initial_state(5, generator=g)
    out, final = core(x, state)
    ref_out, ref_final = ref(x, torch_state(state))
    w = torch.randn(out.shape, generator=g).to(device)
    got = torch.autograd.grad((out * w).sum(), list(core.rnn.parameters()))
    want = torch.autograd.grad((ref_out * w).sum(), list(ref.parameters()))
    check = torch.testing.assert_close if train_tau else lambda a, b: torch.equal(a, b) or pytest.fail()
    check(out, ref_out)
    for a, b in zip(parts(final), parts(ref_final)):
        check(a, b[0])
    for a, b in zip(got, want):
        check(a, b)


def naive_gated(core, x, state):
    """The tau-leak written out per step around torch's own nn.GRUCell / nn.LSTMCell."""
    cell = (nn.LSTMCell if isinstance(core, LeakyLSTM) else nn.GRUCell)(core.input_size, core.hidden_size)
    cell = cell.to(dtype=x.dtype, device=x.device)
    names = {"weight_ih": "weight_ih_l0", "weight_hh": "weight_hh_l0", "bias_ih": "bias_ih_l0", "bias_hh": "bias_hh_l0"}
    params = {k: getattr(core.rnn, v) for k, v in names.items()}
    alpha = 1 / core.tau
    out = []
    for t in range(x.shape[0]):
        new = torch.func.functional_call(cell, params, (x[t], state))
        state = tuple(p + alpha * (n - p) for p, n in zip(parts(state), parts(new)))
        state = state if len(state) == 2 else state[0]
        out.append(parts(state)[0])
    return torch.stack(out), state


@pytest.mark.parametrize("cls", [LeakyGRU, LeakyLSTM])
def test_gru_lstm_match_naive_with_gradients(cls, device):
    """Outputs, final state and the gradients of every weight, tau and h0 (the hand-written BPTT)."""
    g = torch.Generator().manual_seed(11)
    core = cls(3, 6, tau_init=(1.0, 5.0), generator=g).double().to(device)
    x = torch.rand(9, 4, 3, generator=g, dtype=torch.float64).to(device)
    state = tuple(p.requires_grad_() for p in parts(core.initial_state(4, generator=g)))
    state = state if len(state) == 2 else state[0]
    inputs = [*core.parameters(), *parts(state)]
    results = []
    for run in (core, lambda x, s: naive_gated(core, x, s)):
        out, final = run(x, state)
        w = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(device)
        loss = (out * w).sum() + sum(p.square().sum() for p in parts(final))
        results.append((out, parts(final), torch.autograd.grad(loss, inputs)))
    (out, final, grads), (ref_out, ref_final, ref_grads) = results
    torch.testing.assert_close(out, ref_out)
    for a, b in zip(final + grads, ref_final + ref_grads):
        torch.testing.assert_close(a, b)
    names = [n for n, _ in core.named_parameters()]
    assert grads[names.index("time_constant.raw")].abs().sum() > 0  # tau is trained through the kernel


def test_gated_kernels_gradcheck(device):
    """Both Functions with G = 2 cores side by side, every input differentiated."""
    from agents._leaky_gated_kernel import leaky_gru_recurrence, leaky_lstm_recurrence

    g = torch.Generator().manual_seed(12)

    def rand(*shape, lo=-1.0):
        return (lo + (1 - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)).to(device).requires_grad_()

    h0, c0, alpha = rand(2, 3, 4), rand(2, 3, 4), rand(2, 1, 4, lo=0.2)
    assert torch.autograd.gradcheck(leaky_lstm_recurrence, (rand(5, 2, 3, 16), h0, c0, rand(2, 4, 16), alpha))
    assert torch.autograd.gradcheck(leaky_gru_recurrence, (rand(5, 2, 3, 12), h0, rand(2, 4, 12), rand(2, 1, 12),
                                                           alpha))


GROUPS = [("lstm", "lstm"), ("gru", "gru"), ("leaky", "leaky"), ("leaky_mod", "leaky_mod"), ("lstm", "gru"),
          ("leaky", "gru"), ("leaky", "leaky_mod")]


def _side_by_side_case(kinds, device, lengths, options=None):
    g = torch.Generator().manual_seed(13)
    options = options or [{} for _ in kinds]
    cores = [make_core(k, 2, 5, generator=g, **o).double().to(device) for k, o in zip(kinds, options)]
    xs = [torch.rand(n, 3, 2, generator=g, dtype=torch.float64).to(device) for n in lengths]
    states = [c.initial_state(3, generator=g) for c in cores]
    return cores, xs, states


@pytest.mark.parametrize("kinds", GROUPS)
def test_run_side_by_side_equals_one_by_one(kinds, device):
    """Grouped cores (one kernel loop) give each core's own outputs and every gradient (float64), also
    for inputs of different lengths (run to the longest); cores that cannot group fall back."""
    lengths = [6, 4][: len(kinds)]
    options = [{"self_connections": True}, {}] if kinds[0] == "leaky" else None
    cores, xs, states = _side_by_side_case(kinds, device, lengths, options)
    for x in xs:
        x.requires_grad_()
    together = agents.cores.run_side_by_side(cores, xs, states)
    alone = [c(x, s) for c, x, s in zip(cores, xs, states)]
    inputs = [p for c in cores for p in c.parameters()] + list(xs)
    losses = [sum(o.square().sum() + sum(p.sin().sum() for p in parts(f)) for o, f in r) for r in (together, alone)]
    for (o1, f1), (o2, f2), n in zip(together, alone, lengths):
        assert o1.shape[0] == n
        torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-12)
        for a, b in zip(parts(f1), parts(f2)):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(losses[0], inputs), torch.autograd.grad(losses[1], inputs)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_large_gated_groups_run_in_chunks_on_cpu(kind, monkeypatch):
    """On CPU a group of gated cores larger than CPU_GROUP_BYTES allows runs in chunks, with the same results."""
    cores, xs, states = _side_by_side_case((kind,) * 3, "cpu", [5, 3, 4])
    assert cores[0].group_limit(5, 3) >= 3  # small inputs: one loop
    together = agents.cores.run_side_by_side(cores, xs, states)
    monkeypatch.setattr(agents.cores.gated, "CPU_GROUP_BYTES", 1)
    assert cores[0].group_limit(5, 3) == 1
    chunked = agents.cores.run_side_by_side(cores, xs, states)
    for (o1, f1), (o2, f2) in zip(together, chunked):
        torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-12)
        for a, b in zip(parts(f1), parts(f2)):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["leaky", "leaky_mod", "gru", "lstm"])
def test_groups_with(kind):
    """Cores of one kind and hidden size group; another size, variant or activation does not."""
    g = torch.Generator().manual_seed(5)
    a, b = make_core(kind, 1, 4, generator=g), make_core(kind, 1, 4, generator=g)
    assert a.groups_with([a, b])
    assert not a.groups_with([a, make_core(kind, 1, 6, generator=g)])
    if kind.startswith("leaky"):
        assert not a.groups_with([a, make_core(kind, 1, 4, activation="tanh", generator=g)])
    else:
        assert not a.groups_with([a, make_core(kind, 1, 4, tau_init=1.0, train_tau=False, generator=g)])


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_gated_no_grad_path_equals_graph_path(kind, device):
    g = torch.Generator().manual_seed(14)
    core = make_core(kind, 2, 5, tau_init=(1.0, 3.0), generator=g).to(device)
    x, state = torch.rand(4, 3, 2, generator=g).to(device), core.initial_state(3, generator=g)
    out, final = core(x, state)
    assert out.requires_grad
    with torch.no_grad():
        out2, final2 = core(x, state)
    assert torch.equal(out, out2) and all(torch.equal(a, b) for a, b in zip(parts(final), parts(final2)))


@pytest.mark.parametrize("cls", [LeakyGRU, LeakyLSTM])
def test_gru_lstm_tau_leak(cls):
    """With tau' = 2 one step is the average of the previous state and torch's cell output."""
    core = cls(1, 4, tau_init=2.0, train_tau=False, generator=torch.Generator().manual_seed(7))
    x = torch.rand(1, 3, 1)
    state = core.initial_state(3)
    _, new = core.step(x[0], state)
    _, cell = core.rnn(x, torch_state(state))
    for leaked, prev, c in zip(parts(new), parts(state), parts(cell)):
        torch.testing.assert_close(leaked, 0.5 * prev + 0.5 * c[0])


@pytest.mark.parametrize("kind", ["leaky", "leaky_mod", "gru", "lstm"])
def test_step_equals_forward(kind, device):
    core = make_core(kind, 2, 6, generator=torch.Generator().manual_seed(8)).to(device)
    x = torch.rand(5, 3, 2).to(device)
    state0 = core.initial_state(3, generator=torch.Generator().manual_seed(9))
    hidden, final = core(x, state0)
    state = state0
    for t in range(5):
        h, state = core.step(x[t], state)
        torch.testing.assert_close(h, hidden[t])
    for a, b in zip(parts(state), parts(final)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["leaky", "leaky_mod", "gru", "lstm"])
def test_seeded_construction_repeats(kind):
    def build():
        g = torch.Generator().manual_seed(10)
        model = MultiHeadModel(make_core(kind, 1, 5, generator=g), [2, 3], generator=g)
        return model, model.core.initial_state(4, generator=g)

    (a, sa), (b, sb) = build(), build()
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k
    for u, v in zip(parts(sa), parts(sb)):
        assert torch.equal(u, v)
    torch.manual_seed(0)
    x = torch.rand(4, 2, 1)
    torch.manual_seed(1)
    first = a(x)
    torch.manual_seed(1)
    assert all(torch.equal(first[n], v) for n, v in a(x).items())


def test_initial_state_options():
    core = LeakyRNN(1, 50, h0="zero")
    assert torch.equal(core.initial_state(3), torch.zeros(3, 50))
    h = LeakyRNN(1, 50).initial_state(200)
    assert 0 <= h.min() and h.max() <= 0.1 and h.max() > 0.09
    h, c = LeakyLSTM(1, 4).initial_state(2)
    assert h.shape == c.shape == (2, 4)


def test_multi_head_model(device):
    g = torch.Generator().manual_seed(11)
    model = MultiHeadModel(LeakyRNN(1, 6, generator=g).to(device), [3, 2], generator=g)
    assert model.ns == [3, 2]
    assert {"heads.2.weight", "heads.3.bias"} <= set(model.state_dict())
    x = torch.rand(7, 4, 1, generator=g).to(device)
    state = model.core.initial_state(4, generator=g)
    final = model(x, state=state)
    every = model(x, every_step=True, state=state)
    assert final[2].shape == (4, 2) and every[3].shape == (7, 4, 2)
    torch.testing.assert_close(every[2][-1], final[2])
    logits, hidden, last = model(x, ns=[2], state=state, return_hidden=True)
    assert list(logits) == [2] and hidden.shape == (7, 4, 6) and torch.equal(last, hidden[-1])
    assert torch.equal(model.hidden(x, state), hidden)
    step_logits, _ = model.step(x[0], state)
    torch.testing.assert_close(step_logits[3], model(x[:1], state=state)[3])
    model.add_head(5, generator=g)  # the run's CPU generator, whatever the model's device (issue 12)
    assert model.ns == [3, 2, 5] and model.tau.shape == (6,)
    assert {p.device for p in model.parameters()} == {x.device}
    with pytest.raises(KeyError, match=r"N=4.*\[3, 2, 5\]"):
        model(x, ns=[4])
    with pytest.raises(ValueError, match="already exists"):
        model.add_head(2)


@pytest.mark.parametrize("kind,options", [("leaky", {}), ("leaky_mod", {}), ("gru", {}), ("lstm", {}),
                                          ("gru", {"train_tau": False, "tau_init": 1.0}), ("mingru", {})])
def test_last_step_readout_equals_the_trajectory_reference(kind, options, device):
    """The model reads its last-step readouts through Core.last (no gradient of the whole trajectory): the
    same logits, final state and gradients, to the last bit, as reading hidden[-1] of the trajectory."""
    g = torch.Generator().manual_seed(5)
    model = MultiHeadModel(make_core(kind, 1, 8, generator=g, **options).to(device), [2, 3, 4], generator=g)
    x = torch.rand(9, 6, 1, generator=g).to(device)
    state = model.core.initial_state(6, generator=g)

    def grads(logits):
        model.zero_grad(set_to_none=True)
        sum((v * (k + 1)).sum() for k, v in enumerate(logits.values())).backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    fast = model(x, state=state)
    reference = model(x, state=state, return_hidden=True)[0]  # the readout of the trajectory's hidden[-1]
    for n in (2, 3, 4):
        assert torch.equal(fast[n], reference[n])
    fast_grads, reference_grads = grads(fast), grads(reference)
    assert fast_grads.keys() == reference_grads.keys() and "heads.4.weight" in fast_grads
    for name in fast_grads:
        assert torch.equal(fast_grads[name], reference_grads[name]), name
    last, final = model.core.last(x, state)
    hidden, reference_final = model.core(x, state)
    assert torch.equal(last, hidden[-1])
    for a, b in zip(parts(final), parts(reference_final)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind,options", [
    ("leaky", {}), ("leaky_mod", {"activation": "tanh", "tau_param": "softplus"}),
    ("leaky", {"self_connections": True, "h0": "zero", "tau_init": 2.5, "train_tau": False}),
    ("gru", {}), ("lstm", {"tau_init": 1.0, "train_tau": False}),
])
def test_checkpoint_round_trip(tmp_path, kind, options, device):
    model = MultiHeadModel(make_core(kind, 1, 5, **options).to(device), [2, 4])
    with torch.no_grad():
        model.core.time_constant.raw.add_(0.25)  # trained values, not the initial ones
    agents.save(model, tmp_path / "ckpt")
    loaded = agents.load(tmp_path / "ckpt", map_location=device)
    assert loaded.to_config() == model.to_config()
    x = torch.rand(6, 3, 1).to(device)
    state = model.core.initial_state(3)
    a, b = model(x, state=state, every_step=True), loaded(x, state=state, every_step=True)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["model.json", "model.safetensors"]


def test_checkpoint_bare_core_and_dtype(tmp_path):
    core = LeakyGRU(2, 3).double()
    agents.save(core, tmp_path)
    loaded = agents.load(tmp_path)
    assert isinstance(loaded, LeakyGRU) and loaded.rnn.weight_hh_l0.dtype == torch.float64
    assert torch.equal(loaded.rnn.weight_hh_l0, core.rnn.weight_hh_l0)


def _edit_config(path, edit):
    meta = json.loads((path / "model.json").read_text())
    edit(meta["config"])
    (path / "model.json").write_text(json.dumps(meta))


def test_mismatched_checkpoint_raises(tmp_path):
    model = MultiHeadModel(LeakyRNN(1, 5), [2])
    agents.save(model, tmp_path)
    _edit_config(tmp_path, lambda c: c["core"].update(hidden_size=6))
    with pytest.raises(ValueError, match="wrong shapes.*weight_hh"):
        agents.load(tmp_path)
    agents.save(model, tmp_path)
    _edit_config(tmp_path, lambda c: c.update(heads=[2, 3]))
    with pytest.raises(ValueError, match=r"missing tensors \['heads.3.bias'"):
        agents.load(tmp_path)
    agents.save(model, tmp_path)
    _edit_config(tmp_path, lambda c: c.update(heads=[]))
    with pytest.raises(ValueError, match="unexpected tensors.*heads.2"):
        agents.load(tmp_path)
    agents.save(model, tmp_path)
    _edit_config(tmp_path, lambda c: c["core"].update(kind="no_such_core"))
    with pytest.raises(ValueError, match="kind must be one of"):
        agents.load(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        agents.load(tmp_path)
    with pytest.raises(TypeError, match="model must be"):
        agents.save(nn.Linear(2, 2), tmp_path)


@pytest.mark.parametrize("kind", ["leaky", "gru", "lstm"])
def test_mixed_devices_are_a_clear_error(kind):
    """A core on another device ("meta" stands in for cuda here) given CPU inputs or state names the
    tensor and both devices, before any kernel runs; so does run_side_by_side (the RL policy's path)."""
    core = make_core(kind, 1, 4).to("meta")
    x, state = torch.rand(5, 2, 1), core.initial_state(2)
    with pytest.raises(ValueError, match=r"^x is on cpu but the core's parameters are on meta"):
        core(x, state)
    cpu_state = make_core(kind, 1, 4).initial_state(2)
    name = "state c" if kind == "lstm" else "state"
    bad = (state[0], cpu_state[1]) if kind == "lstm" else cpu_state
    with pytest.raises(ValueError, match=rf"^{name} is on cpu but the core's parameters are on meta"):
        core(x.to("meta"), bad)
    with pytest.raises(ValueError, match=r"^x is on cpu .* on meta"):
        agents.cores.run_side_by_side([core, core], [x.to("meta"), x], [state, state])
    assert core(x.to("meta"), state)[0].device.type == "meta"


@pytest.mark.parametrize("kind", ["leaky", "lstm"])
def test_draws_on_another_device_come_from_the_cpu_generator(kind):
    """add_head and initial_state on a model on another device ("meta" here) draw exactly what they draw
    on the CPU from the run's CPU generator (issue 12: add_head crashed on cuda with a CPU generator)."""
    generators = [torch.Generator().manual_seed(3) for _ in range(2)]
    models = [MultiHeadModel(make_core(kind, 1, 6, generator=g), [2], generator=g) for g in generators]
    models[1].to("meta")
    for model, g in zip(models, generators):
        head = model.add_head(3, generator=g)
        state = model.core.initial_state(4, generator=g)
        assert head.weight.device == parts(state)[0].device == next(model.core.parameters()).device
    assert torch.equal(generators[0].get_state(), generators[1].get_state())
    assert models[1].head(3).weight.device.type == "meta"


@requires_cuda
@pytest.mark.parametrize("kind", ["leaky", "leaky_mod", "gru", "lstm"])
def test_same_seed_same_initial_network_on_cpu_and_cuda(kind):
    """One seed: the same weights, new heads and initial states on CPU and on CUDA (the device rule)."""
    built = []
    for device in ("cpu", "cuda"):
        g = torch.Generator().manual_seed(5)
        model = MultiHeadModel(make_core(kind, 1, 8, generator=g).to(device), [2, 3], generator=g)
        model.add_head(4, generator=g)
        built.append((model, parts(model.core.initial_state(6, generator=g))))
    (cpu, cpu_state), (cuda, cuda_state) = built
    assert cuda.core.tau.device.type == "cuda"
    for (name, a), (_, b) in zip(cpu.state_dict().items(), cuda.state_dict().items()):
        assert torch.equal(a, b.cpu()), name
    for a, b in zip(cpu_state, cuda_state):
        assert b.device.type == "cuda" and torch.equal(a, b.cpu())


@pytest.mark.parametrize("call,error,match", [
    (lambda: LeakyRNN(0, 5), ValueError, "input_size"),
    (lambda: LeakyRNN(1, -3), ValueError, "hidden_size"),
    (lambda: LeakyRNN(1, 2.5), TypeError, "hidden_size"),
    (lambda: LeakyGRU(True, 4), TypeError, "input_size"),
    (lambda: LeakyRNN(1, 4, tau_init=0.5), ValueError, "tau_init"),
    (lambda: LeakyLSTM(1, 4, tau_init=(0.9, 2.0)), ValueError, "tau_init"),
    (lambda: LeakyRNN(1, 4, tau_init=(3.0, 2.0)), ValueError, "tau_init"),
    (lambda: LeakyRNN(1, 4, tau_init="2"), TypeError, "tau_init"),
    (lambda: LeakyRNN(1, 4, tau_init=float("nan")), ValueError, "tau_init"),
    (lambda: LeakyRNN(1, 4, activation="sigmoid"), ValueError, "activation.*leaky_relu"),
    (lambda: LeakyRNN(1, 4, tau_param="exp"), ValueError, "tau_param.*softplus"),
    (lambda: LeakyRNN(1, 4, variant="fancy"), ValueError, "variant.*mod"),
    (lambda: LeakyRNN(1, 4, h0="ones"), ValueError, "h0.*zero"),
    (lambda: make_core("no_such_core", 1, 4), ValueError, "kind.*leaky_mod"),
    (lambda: make_core("gru", 1, 4, activation="tanh"), TypeError, "activation"),
    (lambda: LeakyRNN(1, 4)(torch.rand(5, 1)), ValueError, r"\[T, B, F\]"),
    (lambda: LeakyRNN(1, 4)(torch.rand(5, 2, 3)), ValueError, "input_size == 1"),
    (lambda: LeakyRNN(1, 4)(torch.rand(0, 2, 1)), ValueError, "non-empty"),
    (lambda: LeakyRNN(1, 4)(torch.ones(5, 2, 1, dtype=torch.int64)), TypeError, "dtype"),
    (lambda: LeakyGRU(1, 4)(torch.rand(5, 2, 1, dtype=torch.float64)), TypeError, "dtype"),
    (lambda: LeakyRNN(1, 4)([[0.0]]), TypeError, "torch.Tensor"),
    (lambda: LeakyRNN(1, 4).step(torch.rand(5, 2, 1), None), ValueError, r"\[B, F\]"),
    (lambda: LeakyRNN(1, 4)(torch.rand(5, 2, 1), torch.rand(3, 4)), ValueError, "state"),
    (lambda: LeakyLSTM(1, 4)(torch.rand(5, 2, 1), torch.rand(2, 4)), ValueError, r"tuple \(state h, state c\)"),
    (lambda: LeakyRNN(1, 4).initial_state(0), ValueError, "batch_size"),
    (lambda: MultiHeadModel(nn.GRU(1, 4), [2]), TypeError, "core"),
    (lambda: MultiHeadModel(LeakyRNN(1, 4), [-1]), ValueError, "n must be"),
    (lambda: MultiHeadModel(LeakyRNN(1, 4), [2]).head(3), KeyError, r"N=3.*\[2\]"),
    (lambda: LeakyRNN(1, 4).time_constant.set_(torch.full((4,), 0.5)), ValueError, ">= 1"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
