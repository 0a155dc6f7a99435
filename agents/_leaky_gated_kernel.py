"""The time loops of the tau-leaky LSTM and GRU as custom autograd Functions with a hand-written BPTT.

Per neuron, with alpha = 1 / tau' and torch's gate layouts (LSTM: i, f, g, o; GRU: r, z, n):

    LSTM:  [i, f, g, o] = [sig, sig, tanh, sig](gi_t + h_{t-1} W_hh^T)
           cc_t = f c_{t-1} + i g,    c_t = (1 - alpha) c_{t-1} + alpha cc_t
           h_t = (1 - alpha) h_{t-1} + alpha o tanh(cc_t)
    GRU:   gh_t = h_{t-1} W_hh^T + b_hh
           [r, z] = sig(gi_t[r, z] + gh_t[r, z]),   n = tanh(gi_t[n] + r gh_t[n])
           h_t = h_{t-1} + alpha (1 - z) (n - h_{t-1})

Every tensor carries a leading group dimension G: G independent cores (each with its own weights and
tau, e.g. the actor and the critic of an RL policy) run side by side in ONE loop, with batched
matmuls, so G cores cost about the kernel launches of one.

The caller computes the input projections gi = x W_ih^T + b for all steps at once (autograd handles
that matmul), so these Functions only handle the sequential part, with no autograd graph inside:
the forward runs 10 (LSTM) or 8 (GRU) kernels per step into preallocated buffers; the LSTM backward
runs 16 kernels per step (torch's fused sigmoid/tanh backward kernels on cache-sized [G, B, H] pieces),
the GRU backward 15 per step the same way. The
weight, bias and tau gradients are one reduction over all steps after the loop. Without autograd
(rollouts, evaluation) the forward keeps nothing for a backward. benchmarks/bench_agents.py compares
them with the same loops under autograd.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from ._leaky_rnn_kernel import (
    activation_backward, empty_group_major, group_lengths, needs_graph, per_group_outer, per_group_sum,
)


def one_minus(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """1 - x into ``out`` (torch.rsub has no out= form)."""
    return torch.ops.aten.rsub.Scalar_out(x, 1.0, out=out)


def _lstm_forward(gi, h0, c0, w_hh_t, alpha, keep):
    """The LSTM loop; with keep=True it also returns the gates, cc_t and tanh(cc_t) for the backward."""
    steps, hidden = gi.shape[0], h0.shape[-1]
    hs = h0.new_empty((steps + 1,) + tuple(h0.shape))
    cs = torch.empty_like(hs)
    hs[0], cs[0] = h0, c0
    if keep:
        gates, cell, tanh_cell = torch.empty_like(gi), torch.empty_like(hs[1:]), torch.empty_like(hs[1:])
        buffers = zip(gates.unbind(0), cell.unbind(0), tanh_cell.unbind(0))
    else:
        buffers = ((None, None, None) for _ in range(steps))
    h_list, c_list = hs.unbind(0), cs.unbind(0)
    h2, h3 = 2 * hidden, 3 * hidden
    for t, (gi_t, (g, cc, tc)) in enumerate(zip(gi.unbind(0), buffers)):
        g = torch.baddbmm(gi_t, h_list[t], w_hh_t, out=g)
        g[..., :h2].sigmoid_()
        g[..., h2:h3].tanh_()
        g[..., h3:].sigmoid_()
        i, f, gg, o = g.split(hidden, -1)
        cc = torch.mul(f, c_list[t], out=cc).addcmul_(i, gg)
        tc = torch.tanh(cc, out=tc)
        torch.lerp(c_list[t], cc, alpha, out=c_list[t + 1])
        torch.lerp(h_list[t], o * tc, alpha, out=h_list[t + 1])
    return (hs, cs, gates, cell, tanh_cell) if keep else (hs, cs)


class _LeakyLSTM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi, h0, c0, w_hh_t, alpha, lengths):  # type: ignore[override]
        hs, cs, gates, cell, tanh_cell = _lstm_forward(gi, h0, c0, w_hh_t, alpha, keep=True)
        ctx.lengths = lengths
        ctx.save_for_backward(hs, cs, gates, cell, tanh_cell, w_hh_t, alpha)
        ctx.set_materialize_grads(False)  # the final c is often unused: no zeros to build and copy
        return hs, cs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs, grad_cs):  # type: ignore[override]
        hs, cs, gates, cell, tanh_cell, w_hh_t, alpha = ctx.saved_tensors
        steps, hidden = gates.shape[0], hs.shape[-1]
        leak = 1.0 - alpha
        # gh[t], gc[t] become the total gradients with respect to hs[t], cs[t].
        gh = torch.zeros_like(hs) if grad_hs is None else grad_hs.clone(memory_format=torch.contiguous_format)
        gc = torch.zeros_like(cs) if grad_cs is None else grad_cs.clone(memory_format=torch.contiguous_format)
        dz = empty_group_major(gates)
        w_hh = w_hh_t.transpose(-1, -2)
        gh_list, gc_list, dz_list, c_list = gh.unbind(0), gc.unbind(0), dz.unbind(0), cs.unbind(0)
        dz_i, dz_f, dz_g, dz_o = (part.unbind(0) for part in dz.split(hidden, -1))
        i, f, g, o = (part.unbind(0) for part in gates.split(hidden, -1))
        tanh_list = tanh_cell.unbind(0)
        scaled, dcc, tmp = (torch.empty_like(hs[0]) for _ in range(3))
        for k in range(steps - 1, -1, -1):  # step t = k + 1; torch's fused sigmoid/tanh backward kernels
            g_h, g_c = gh_list[k + 1], gc_list[k + 1]
            torch.mul(g_h, alpha, out=scaled)  # dL/d(o tanh(cc_t))
            activation_backward(torch.mul(scaled, tanh_list[k], out=tmp), o[k], "sigmoid", out=dz_o[k])
            activation_backward(torch.mul(scaled, o[k], out=tmp), tanh_list[k], "tanh", out=dcc)
            dcc.addcmul_(g_c, alpha)  # dcc = dL/dcc_t
            activation_backward(torch.mul(dcc, g[k], out=tmp), i[k], "sigmoid", out=dz_i[k])
            activation_backward(torch.mul(dcc, c_list[k], out=tmp), f[k], "sigmoid", out=dz_f[k])
            activation_backward(torch.mul(dcc, i[k], out=tmp), g[k], "tanh", out=dz_g[k])
            gc_list[k].addcmul_(g_c, leak).addcmul_(dcc, f[k])
            gh_list[k].addcmul_(g_h, leak).baddbmm_(dz_list[k], w_hh)
        need = ctx.needs_input_grad
        grad_w = per_group_outer(hs[:-1], dz, ctx.lengths) if need[3] else None
        grad_alpha = None
        if need[4]:  # dh_t/dalpha = o tanh(cc_t) - h_{t-1}, dc_t/dalpha = cc_t - c_{t-1}
            per_unit = (gates[..., 3 * hidden:] * tanh_cell).sub_(hs[:-1]).mul_(gh[1:])
            per_unit.add_((cell - cs[:-1]).mul_(gc[1:]))
            grad_alpha = per_group_sum(per_unit, ctx.lengths)
        return dz, gh[0], gc[0], grad_w, grad_alpha, None


def _gru_forward(gi, h0, w_hh_t, b_hh, alpha, keep):
    """The GRU loop; with keep=True it also returns gh_t, [r, z] and n for the backward."""
    steps, hidden = gi.shape[0], h0.shape[-1]
    hs = h0.new_empty((steps + 1,) + tuple(h0.shape))
    hs[0] = h0
    if keep:
        gh, rz, n = torch.empty_like(gi), torch.empty_like(gi[..., : 2 * hidden]), torch.empty_like(hs[1:])
        buffers = zip(gh.unbind(0), rz.unbind(0), n.unbind(0))
    else:
        buffers = ((None, None, None) for _ in range(steps))
    h_list = hs.unbind(0)
    h2 = 2 * hidden
    for t, (gi_t, (gh_t, rz_t, n_t)) in enumerate(zip(gi.unbind(0), buffers)):
        gh_t = torch.baddbmm(b_hh, h_list[t], w_hh_t, out=gh_t)
        rz_t = torch.add(gi_t[..., :h2], gh_t[..., :h2], out=rz_t).sigmoid_()
        r, z = rz_t.split(hidden, -1)
        n_t = torch.addcmul(gi_t[..., h2:], r, gh_t[..., h2:], out=n_t).tanh_()
        torch.lerp(h_list[t], n_t, torch.rsub(z, 1.0).mul_(alpha), out=h_list[t + 1])
    return (hs, gh, rz, n) if keep else hs


class _LeakyGRU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi, h0, w_hh_t, b_hh, alpha, lengths):  # type: ignore[override]
        hs, gh, rz, n = _gru_forward(gi, h0, w_hh_t, b_hh, alpha, keep=True)
        ctx.lengths = lengths
        ctx.save_for_backward(hs, gh, rz, n, w_hh_t, alpha)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):  # type: ignore[override]
        hs, gh_all, rz, n, w_hh_t, alpha = ctx.saved_tensors
        steps, hidden = n.shape[0], hs.shape[-1]
        need, lengths = ctx.needs_input_grad, ctx.lengths
        # With G = dL/dh_t, the pre-activation gradients of step t are G * k_[r, z, n] for the input
        # projections and G * [k_r, k_z, k_n r] for the hidden projections. The factors are computed step by
        # step on cache-sized [G, B, H] pieces: as whole-sequence passes they made the backward memory-bound
        # at long sequences. What is summed over the steps afterwards (weight, bias and tau gradients) is
        # kept whole, so the sums run as over whole-sequence tensors.
        g = grad_hs.clone(memory_format=torch.contiguous_format)  # becomes dL/dhs[t] in total
        dgh = empty_group_major(gh_all)
        dn = empty_group_major(n) if need[0] else None  # G k_n: dL/d(gi_n)
        alpha_terms = empty_group_major(n) if need[4] else None  # G (1 - z) (n - h_{t-1}): dL/dalpha's terms
        factors = n.new_empty(n.shape[1:-1] + (3, hidden))  # one step's [k_r, k_z, k_n r], [G, B, 3, H]
        k_r, k_z, k_nr = factors.unbind(-2)
        one_minus_z, step, diff, k_n, scratch = (torch.empty_like(hs[0]) for _ in range(5))
        minus_alpha = -alpha
        w_hh = w_hh_t.transpose(-1, -2)
        g_list, dgh_list = g.unbind(0), dgh.unbind(0)
        dgh_gates = dgh.unflatten(-1, (3, hidden)).unbind(0)
        for k in range(steps - 1, -1, -1):  # step t = k + 1
            r, z, n_k, g_t = rz[k][..., :hidden], rz[k][..., hidden:], n[k], g_list[k + 1]
            torch.mul(alpha, one_minus(z, out=one_minus_z), out=step)  # alpha (1 - z)
            torch.sub(n_k, hs[k], out=diff)
            activation_backward(step, n_k, "tanh", out=k_n)  # step (1 - n^2)
            activation_backward(torch.mul(k_n, gh_all[k][..., 2 * hidden:], out=scratch), r, "sigmoid", out=k_r)
            activation_backward(torch.mul(diff, minus_alpha, out=scratch), z, "sigmoid", out=k_z)
            torch.mul(k_n, r, out=k_nr)
            torch.mul(g_t.unsqueeze(-2), factors, out=dgh_gates[k])
            if dn is not None:
                torch.mul(g_t, k_n, out=dn[k])
            if alpha_terms is not None:
                torch.mul(g_t, one_minus_z, out=alpha_terms[k]).mul_(diff)
            g_list[k].addcmul_(g_t, one_minus(step, out=scratch)).baddbmm_(dgh_list[k], w_hh)
        grad_w = per_group_outer(hs[:-1], dgh, lengths) if need[2] else None
        grad_b = per_group_sum(dgh, lengths) if need[3] else None
        grad_alpha = per_group_sum(alpha_terms, lengths) if need[4] else None
        dgi = None
        if need[0]:  # the r and z blocks of dgi are dgh's: dgh's buffer becomes dgi once the sums above have read it
            dgi = dgh
            dgi[..., 2 * hidden:].copy_(dn)
        return dgi, g[0], grad_w, grad_b, grad_alpha, None


def leaky_lstm_recurrence(
    gi: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_hh_t: torch.Tensor, alpha: torch.Tensor,
    lengths: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """G tau-leaky LSTMs side by side.

    gi [T, G, B, 4H] (x W_ih^T + b_ih + b_hh), h0, c0 [G, B, H], w_hh_t [G, H, 4H], alpha [G, 1, H];
    returns hs, cs [T + 1, G, B, H] with hs[0] = h0 and cs[0] = c0. ``lengths[g]``: the steps of core g's
    own input (gi zero-padded after them); its weight and tau gradients sum over those steps only.
    """
    if needs_graph(gi, h0, c0, w_hh_t, alpha):
        return _LeakyLSTM.apply(gi, h0, c0, w_hh_t, alpha, group_lengths(gi, lengths))
    return _lstm_forward(gi, h0, c0, w_hh_t, alpha, keep=False)


def leaky_gru_recurrence(
    gi: torch.Tensor, h0: torch.Tensor, w_hh_t: torch.Tensor, b_hh: torch.Tensor, alpha: torch.Tensor,
    lengths: Sequence[int] | None = None,
) -> torch.Tensor:
    """G tau-leaky GRUs side by side.

    gi [T, G, B, 3H] (x W_ih^T + b_ih), h0 [G, B, H], w_hh_t [G, H, 3H], b_hh [G, 1, 3H],
    alpha [G, 1, H]; returns hs [T + 1, G, B, H] with hs[0] = h0. ``lengths``: as for the LSTM.
    """
    if needs_graph(gi, h0, w_hh_t, b_hh, alpha):
        return _LeakyGRU.apply(gi, h0, w_hh_t, b_hh, alpha, group_lengths(gi, lengths))
    return _gru_forward(gi, h0, w_hh_t, b_hh, alpha, keep=False)
