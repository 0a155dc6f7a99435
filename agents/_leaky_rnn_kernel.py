"""The leaky RNN's time loop as a custom autograd Function with a hand-written backward through time.

It computes, for t = 1..T and G networks side by side (a leading group dimension),

    h_t = phi(h_{t-1} @ M + v_t)                          (leak=None, scale=None)
    h_t = leak * h_{t-1} + scale * phi(h_{t-1} @ M + v_t)  (leak, scale: [G, 1, H])

with v [T, G, B, H], h [G, B, H] and M [G, H, H]. The caller folds tau into M, v (or leak, scale), so
autograd handles those cheap products and this Function only handles the sequential part. Forward is
one baddbmm and one in-place activation per step into a preallocated buffer; backward is one fused
activation backward and one baddbmm per step, and the weight gradient one matmul per network over its
own steps. G networks cost about the kernel launches of one (agents.cores.run_side_by_side; a single
core runs with G = 1). Networks whose inputs differ in length come longest first: each step runs only
the ones still running (a prefix of the group), so none pays for another's longer sequence.
Derivatives are taken from phi's output, so only the trajectory (and phi's outputs in the leak form)
is stored, laid out group by group; without autograd (evaluation) nothing is kept for a backward.
The backward keeps two [G, B, H] gradient buffers, not a [T + 1, G, B, H] one, and when only each
network's last state is read (a trainer's readout) it needs no [T + 1, G, B, H] gradient either.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

ACTIVATIONS = ("leaky_relu", "tanh", "relu")
LEAKY_SLOPE = 0.01


def activate_(z: torch.Tensor, activation: str) -> torch.Tensor:
    """Apply phi in place."""
    if activation == "leaky_relu":
        return F.leaky_relu_(z, LEAKY_SLOPE)
    if activation == "tanh":
        return z.tanh_()
    return z.relu_()


def activation_backward(grad: torch.Tensor, y: torch.Tensor, activation: str,
                        out: torch.Tensor | None = None) -> torch.Tensor:
    """grad * phi'(x), with phi' taken from y = phi(x) by torch's fused backward kernels; written into
    `out` when given. `activation` is one of ACTIVATIONS or "sigmoid"."""
    aten = torch.ops.aten
    if activation == "leaky_relu":
        op, args = aten.leaky_relu_backward, (grad, y, LEAKY_SLOPE, True)
    elif activation == "tanh":
        op, args = aten.tanh_backward, (grad, y)
    elif activation == "sigmoid":
        op, args = aten.sigmoid_backward, (grad, y)
    else:
        op, args = aten.threshold_backward, (grad, y, 0)
    return op(*args) if out is None else op.grad_input(*args, grad_input=out)


def empty_group_major(like: torch.Tensor, steps: int | None = None) -> torch.Tensor:
    """An empty tensor shaped like ``like`` [T, G, ...] (or with ``steps`` instead of T) but laid out group
    by group ([G, T, ...] in memory).

    Trajectories and the gradients of the per-step inputs use it, so each network's slice is contiguous,
    as when it runs alone: the sums over its steps (weight and bias gradients) add in the same order.
    """
    steps = like.shape[0] if steps is None else steps
    return like.new_empty((like.shape[1], steps) + tuple(like.shape[2:])).transpose(0, 1)


def per_group_outer(a: torch.Tensor, b: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    """Per group g, the sum over its own first lengths[g] steps and the batch of a^T b:
    a [T, G, B, I], b [T, G, B, J] -> [G, I, J]. One matmul per group on contiguous operands, so a network
    gets the same sum, to the last bit, side by side as alone."""
    return torch.stack([a[:n, g].reshape(-1, a.shape[-1]).t().mm(b[:n, g].reshape(-1, b.shape[-1]))
                        for g, n in enumerate(lengths)])


def per_group_sum(x: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:  # the gated kernels' sums
    """Per group g, the sum over its own first lengths[g] steps and the batch: [T, G, B, H] -> [G, 1, H]
    (on contiguous copies, for the same bits side by side as alone)."""
    return torch.stack([x[:n, g].contiguous().sum((0, 1)) for g, n in enumerate(lengths)]).unsqueeze(1)


def group_lengths(v: torch.Tensor, lengths: Sequence[int] | None) -> tuple[int, ...]:
    """The steps of each group's own input, longest first (default: all T steps for every group)."""
    steps, groups = v.shape[0], v.shape[1]
    if lengths is None:
        return (steps,) * groups
    lengths = tuple(int(n) for n in lengths)
    if (len(lengths) != groups or not all(1 <= n <= steps for n in lengths)
            or any(a < b for a, b in zip(lengths, lengths[1:]))):
        raise ValueError(f"lengths must give one length in [1, {steps}] per group ({groups}), longest first, "
                         f"got {lengths}")
    return lengths


def active_groups(lengths: Sequence[int], steps: int) -> list[int]:
    """Per step t (0-based), how many groups are still running: groups run longest first, so the running
    ones are a prefix [:k] and the loops skip the padded steps of the shorter ones."""
    return [sum(n > t for n in lengths) for t in range(steps)]


def zero_tails(x: torch.Tensor, lengths: Sequence[int], offset: int = 0) -> None:
    """Zero x[n + offset:, g] for every group g of length n: the steps the loops skipped."""
    for g, n in enumerate(lengths):
        if n + offset < x.shape[0]:
            x[n + offset:, g].zero_()


class _GroupProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lengths):  # type: ignore[override]
        steps, groups, batch = x.shape[:3]
        out = torch.baddbmm(bias.unsqueeze(1), x.transpose(0, 1).reshape(groups, steps * batch, -1),
                            weight.transpose(1, 2))
        ctx.lengths = lengths
        ctx.save_for_backward(x, weight)
        return out.unflatten(1, (steps, batch)).transpose(0, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        need = ctx.needs_input_grad
        grad_x = torch.matmul(grad, weight.unsqueeze(0)) if need[0] else None
        grad_w = per_group_outer(grad, x, ctx.lengths) if need[1] else None
        grad_b = per_group_sum(grad, ctx.lengths).squeeze(1) if need[2] else None
        return grad_x, grad_w, grad_b, None


def group_projection(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, lengths: Sequence[int]
                     ) -> torch.Tensor:
    """The input projections of G networks in one batched matmul: x [T, G, B, F], weight [G, K, F],
    bias [G, K] -> x W_g^T + b_g [T, G, B, K], laid out group by group like the kernels' gradients of it.
    Network g's weight and bias gradients are sums over its own first lengths[g] steps only, one matmul
    per network, so they are a solo run's to the last bit."""
    return _GroupProjection.apply(x, weight, bias, tuple(lengths))


def needs_graph(*tensors: torch.Tensor | None) -> bool:
    """True when autograd must record a Function over `tensors` (None entries are ignored)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def last_steps(hs: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    """hs[lengths[g], g] for every group: each network's state at its own last step, [G, B, H]."""
    groups = torch.arange(len(lengths), device=hs.device)
    return hs[torch.tensor(lengths, device=hs.device), groups]


def _forward(v, h0, m, activation, leak, scale, lengths, keep):
    """The loop; returns hs [T + 1, G, B, H] (group-major, zero after each group's own steps) and, in the
    leak form with keep=True, phi's outputs [T, G, B, H]."""
    steps = v.shape[0]
    hs = empty_group_major(v, steps + 1)
    hs[0] = h0
    h_list, v_list = hs.unbind(0), v.unbind(0)
    active = active_groups(lengths, steps)
    phi_out = None
    if leak is None:
        for t, k in enumerate(active):
            activate_(torch.baddbmm(v_list[t][:k], h_list[t][:k], m[:k], out=h_list[t + 1][:k]), activation)
    else:
        phi_out = empty_group_major(v) if keep else None
        scratch = torch.empty_like(h0)
        for t, k in enumerate(active):
            out = phi_out[t][:k] if keep else scratch[:k]
            z = activate_(torch.baddbmm(v_list[t][:k], h_list[t][:k], m[:k], out=out), activation)
            torch.mul(h_list[t][:k], leak[:k], out=h_list[t + 1][:k]).addcmul_(z, scale[:k])
    zero_tails(hs, lengths, 1)
    if phi_out is not None:
        zero_tails(phi_out, lengths)
    return hs, phi_out


class _LeakyRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, h0, m, activation, leak, scale, lengths):  # type: ignore[override]
        hs, phi_out = _forward(v, h0, m, activation, leak, scale, lengths, keep=True)
        ctx.activation, ctx.lengths = activation, lengths
        ctx.set_materialize_grads(False)  # a trainer reads only `last`: no [T + 1, G, B, H] of zeros
        ctx.save_for_backward(hs, phi_out, m, leak, scale)
        return hs, last_steps(hs, lengths)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs, grad_last):  # type: ignore[override]
        hs, phi_out, m, leak, scale = ctx.saved_tensors
        steps, lengths = hs.shape[0] - 1, ctx.lengths
        need = ctx.needs_input_grad

        def outside(t: int, out: torch.Tensor) -> torch.Tensor:
            """dL/dh_t from outside the recurrence: grad_hs[t], plus grad_last for the groups ending at t."""
            out.zero_() if grad_hs is None else out.copy_(grad_hs[t])
            if grad_last is not None:
                for g, n in enumerate(lengths):
                    if n == t:
                        out[g].add_(grad_last[g])
            return out

        # g_t, g_prev: the total gradients with respect to h_t and h_{t-1} (two rolling buffers);
        # dz[t - 1] = dL/dz_t, the gradient of v[t - 1].
        g_t, g_prev = outside(steps, torch.empty_like(hs[0])), torch.empty_like(hs[0])
        dz = empty_group_major(hs[1:])
        mt = m.transpose(1, 2).contiguous()
        h_list, dz_list = hs.unbind(0), dz.unbind(0)
        leaky_form = phi_out is not None
        if leaky_form:
            scaled = torch.empty_like(g_t)
            grad_leak, grad_scale = torch.zeros_like(leak), torch.zeros_like(scale)
        for t, k in reversed(list(enumerate(active_groups(lengths, steps), 1))):  # k groups run step t
            gk, dz_t = g_t[:k], dz_list[t - 1][:k]
            outside(t - 1, g_prev)
            if not leaky_form:
                activation_backward(gk, h_list[t][:k], ctx.activation, out=dz_t)
            else:
                activation_backward(torch.mul(gk, scale[:k], out=scaled[:k]), phi_out[t - 1][:k], ctx.activation,
                                    out=dz_t)
                grad_leak[:k] += (gk * h_list[t - 1][:k]).sum(1, keepdim=True)
                grad_scale[:k] += (gk * phi_out[t - 1][:k]).sum(1, keepdim=True)
                g_prev[:k].addcmul_(gk, leak[:k])
            g_prev[:k].baddbmm_(dz_t, mt[:k])
            g_t, g_prev = g_prev, g_t
        zero_tails(dz, lengths)
        grad_m = per_group_outer(hs[:-1], dz, lengths) if need[2] else None
        if not leaky_form:
            grad_leak = grad_scale = None
        return dz, g_t, grad_m, None, grad_leak if need[4] else None, grad_scale if need[5] else None, None


def leaky_recurrence(
    v: torch.Tensor,
    h0: torch.Tensor,
    m: torch.Tensor,
    activation: str,
    leak: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    lengths: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """G leaky RNNs side by side: v [T, G, B, H] from h0 [G, B, H] with m [G, H, H] (and leak, scale
    [G, 1, H]); returns hs [T + 1, G, B, H] with hs[0] = h0, and each network's state at its own last
    step [G, B, H] (use it rather than indexing hs when only the last step is read: the backward then
    needs no [T + 1, G, B, H] gradient). ``lengths[g]``, longest first: the steps of network g's own input
    (v padded after them); it runs those steps only (hs zero after them), and its weight and tau
    gradients sum over them."""
    lengths = group_lengths(v, lengths)
    if needs_graph(v, h0, m, leak, scale):
        return _LeakyRecurrence.apply(v, h0, m, activation, leak, scale, lengths)
    hs = _forward(v, h0, m, activation, leak, scale, lengths, keep=False)[0]
    return hs, last_steps(hs, lengths)
