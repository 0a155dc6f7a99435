"""Mamba's selective scan as one autograd Function with a hand-written backward. For Delta_t, x_t [B, E],
B_t, C_t [B, N] and A [E, N] (A <= 0):

    Abar_t = exp(Delta_t A)  (or 2 exp(Delta_t A) - 1, "signed"),   h_t = Abar_t * h_{t-1} + (Delta_t x_t) B_t,
    y_t = h_t C_t

with h_t of [B, E, N] per step. The batch runs in blocks of rows whose state takes about BLOCK_BYTES, so
that a step's few state-sized buffers stay in a core's cache. For each block, the forward runs the
recurrence one step at a time, in place on preallocated [rows, N, E] buffers (E innermost, so that every
broadcast runs along contiguous memory), and keeps the state only at the start of every piece of
``chunk`` steps. The backward recomputes one piece's transitions and states at a time and runs the
adjoint recurrence backwards through it:

    g_t = dL/dh_t = C_t dL/dy_t + Abar_{t+1} g_{t+1}   (g_T = C_T dL/dy_T + dL/dh_T),
    dL/d(Delta_t x_t) = g_t B_t,   dL/dB_t = sum_e g_t (Delta_t x_t),   dL/dC_t = sum_e h_t dL/dy_t,
    q_t = dL/d(Delta_t A) = g_t h_{t-1} Abar_t   (signed: g_t h_{t-1} (Abar_t + 1), the derivative of 2 exp - 1),
    dL/dDelta_t = sum_n q_t A,   dL/dA = sum_{t, b} q_t Delta_t,   dL/dh_0 = Abar_1 g_1.

Same numbers as the step loop under autograd up to float rounding (exp(z) is taken as exp2(z log2 e),
which torch's CPU kernels evaluate 2-3 times faster), while holding T / chunk start states and one
block's 2 chunk + 4 step buffers instead of every step's transitions and states with their graph.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.autograd.function import once_differentiable

#: exp(z) = exp2(z * LOG2_E).
LOG2_E = 1.0 / math.log(2.0)
#: Bytes of one batch block's [rows, N, E] state (see selective_scan): a few of them fit a 2 MiB L2 cache.
BLOCK_BYTES = 2 ** 19


def _step(h: torch.Tensor, delta_t: torch.Tensor, drive_t: torch.Tensor, b_t: torch.Tensor, a2: torch.Tensor,
          signed: bool, abar: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """h_t = Abar_t * h_{t-1} + B_t drive_t into ``out`` [B, N, E], with Abar_t into ``abar``; a2 = A^T log2 e."""
    torch.mul(delta_t.unsqueeze(-2), a2, out=abar).exp2_()
    if signed:
        abar.mul_(2.0).sub_(1.0)
    torch.mul(b_t.unsqueeze(-1), drive_t.unsqueeze(-2), out=out)
    return out.addcmul_(h, abar)


def _forward(delta: torch.Tensor, drive: torch.Tensor, b: torch.Tensor, c: torch.Tensor, a2: torch.Tensor,
             h: torch.Tensor, signed: bool, chunk: int | None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(y [T, B, E], h_T [B, N, E], the start state of every ``chunk`` steps or None) from h_0 [B, N, E]."""
    steps, batch, inner = delta.shape
    y = delta.new_empty(steps, batch, 1, inner)
    abar = torch.empty_like(h)
    buffers = (torch.empty_like(h), torch.empty_like(h))
    starts = []
    for t in range(steps):
        if chunk is not None and t % chunk == 0:
            starts.append(h.clone() if t else h)
        h = _step(h, delta[t], drive[t], b[t], a2, signed, abar, buffers[t % 2])
        torch.bmm(c[t].unsqueeze(1), h, out=y[t])
    return y.squeeze(2), h, (torch.stack(starts) if chunk is not None else None)


class _SelectiveScan(torch.autograd.Function):
    """The scan on (delta, drive, b, c, a, h0 [B, N, E]) -> (y, h_T [B, N, E]); backward: the adjoint."""

    @staticmethod
    def forward(ctx: Any, delta: torch.Tensor, drive: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                a: torch.Tensor, h0: torch.Tensor, signed: bool, chunk: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        a_t = a.t().contiguous()
        y, h, starts = _forward(delta, drive, b, c, a_t * LOG2_E, h0, signed, chunk)
        ctx.save_for_backward(delta, drive, b, c, a_t, starts)
        ctx.signed, ctx.chunk = signed, chunk
        return y, h

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: torch.Tensor | None, grad_h: torch.Tensor | None
                 ) -> tuple[torch.Tensor | None, ...]:
        delta, drive, b, c, a_t, starts = ctx.saved_tensors
        signed, chunk, a2 = ctx.signed, ctx.chunk, a_t * LOG2_E
        steps, batch, inner = delta.shape
        shape = starts.shape[1:]
        abar, states = delta.new_empty(min(chunk, steps), *shape), delta.new_empty(min(chunk, steps) + 1, *shape)
        g, q, grad_a = delta.new_empty(shape), delta.new_empty(shape), delta.new_zeros(shape)
        grad_y = delta.new_zeros(steps, batch, inner) if grad_y is None else grad_y.contiguous()
        carry = delta.new_zeros(shape) if grad_h is None else grad_h.clone(memory_format=torch.contiguous_format)
        grad_delta, grad_drive = torch.empty_like(delta), torch.empty_like(drive)
        grad_b, grad_c = torch.empty_like(b), torch.empty_like(c)
        for k in range(len(starts) - 1, -1, -1):
            start, n = k * chunk, min(chunk, steps - k * chunk)
            states[0].copy_(starts[k])
            for i in range(n):
                t = start + i
                _step(states[i], delta[t], drive[t], b[t], a2, signed, abar[i], states[i + 1])
            for i in range(n - 1, -1, -1):
                t = start + i
                torch.addcmul(carry, c[t].unsqueeze(-1), grad_y[t].unsqueeze(-2), out=g)  # g_t
                torch.bmm(b[t].unsqueeze(1), g, out=grad_drive[t].unsqueeze(1))
                torch.sum(torch.mul(g, drive[t].unsqueeze(1), out=q), -1, out=grad_b[t])
                torch.sum(torch.mul(states[i + 1], grad_y[t].unsqueeze(1), out=q), -1, out=grad_c[t])
                torch.mul(g, abar[i], out=carry)  # Abar_t g_t = dL/dh_{t-1}
                (torch.add(carry, g, out=q) if signed else q.copy_(carry)).mul_(states[i])  # q_t
                torch.sum(torch.mul(q, a_t, out=g), -2, out=grad_delta[t])
                grad_a.addcmul_(q, delta[t].unsqueeze(1))
        return grad_delta, grad_drive, grad_b, grad_c, grad_a.sum(0).t(), carry, None, None


def selective_scan(delta: torch.Tensor, drive: torch.Tensor, b: torch.Tensor, c: torch.Tensor, a: torch.Tensor,
                   h0: torch.Tensor, *, signed: bool = False, chunk: int = 16
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The selective scan h_t = Abar_t * h_{t-1} + drive_t B_t, Abar_t = exp(Delta_t A) (2 exp(Delta_t A) - 1
    if ``signed``), for delta and drive [T, B, E], b and c [T, B, N], a [E, N] and h0 [B, E, N]: returns
    y_t = h_t C_t [T, B, E] and h_T [B, E, N]. The backward keeps a state every ``chunk`` steps and
    recomputes the rest.

    The batch runs in blocks of rows whose [rows, N, E] state takes about BLOCK_BYTES, so that one step's
    few state-sized buffers stay in a core's cache."""
    rows = max(1, BLOCK_BYTES // (a.numel() * a.element_size()))
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (delta, drive, b, c, a, h0))
    a_t = a.t().contiguous()
    parts = []
    for i in range(0, delta.shape[1], rows):
        block = slice(i, i + rows)
        inputs = (*(t[:, block].contiguous() for t in (delta, drive, b, c)),)
        h = h0[block].transpose(1, 2).contiguous()  # [rows, N, E]
        if grad:
            parts.append(_SelectiveScan.apply(*inputs, a, h, signed, chunk))
        else:
            parts.append(_forward(*inputs, a_t * LOG2_E, h, signed, None)[:2])
    y, h = (torch.cat(part, dim) for part, dim in zip(zip(*parts), (1, 0)))
    return y, h.transpose(1, 2)


__all__ = ["selective_scan"]
