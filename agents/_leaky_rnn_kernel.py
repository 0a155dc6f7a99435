"""The leaky RNN's time loop as a custom autograd Function with a hand-written backward through time.

It computes, for t = 1..T,

    h_t = phi(h_{t-1} @ M + v_t)                          (leak=None, scale=None)
    h_t = leak * h_{t-1} + scale * phi(h_{t-1} @ M + v_t)  (leak, scale: [H])

The caller folds tau into M, v (or leak, scale), so autograd handles those cheap products and this
Function only handles the sequential part. Forward is one addmm and one in-place activation per step
into a preallocated buffer; backward is one fused activation backward and one addmm per step, and the weight gradient
is one large matmul over all steps. Derivatives are taken from phi's output, so only the
trajectory (and phi's outputs in the leak form) is stored.
"""

from __future__ import annotations

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


class _LeakyRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, h0, m, activation, leak, scale):  # type: ignore[override]
        steps = v.shape[0]
        hs = v.new_empty((steps + 1,) + tuple(h0.shape))
        hs[0] = h0
        phi_out = None
        if leak is None:
            for t in range(steps):
                activate_(torch.addmm(v[t], hs[t], m, out=hs[t + 1]), activation)
        else:
            phi_out = torch.empty_like(v)
            for t in range(steps):
                activate_(torch.addmm(v[t], hs[t], m, out=phi_out[t]), activation)
                torch.mul(hs[t], leak, out=hs[t + 1]).addcmul_(phi_out[t], scale)
        ctx.activation = activation
        ctx.save_for_backward(hs, phi_out, m, leak, scale)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):  # type: ignore[override]
        hs, phi_out, m, leak, scale = ctx.saved_tensors
        steps, hidden = hs.shape[0] - 1, hs.shape[-1]
        # g[t] becomes the total gradient with respect to hs[t]; dz[t] = dL/dz_{t+1}.
        g = grad_hs.clone(memory_format=torch.contiguous_format)
        dz = torch.empty_like(g[1:])
        mt = m.t().contiguous()
        for t in range(steps, 0, -1):
            if phi_out is None:
                activation_backward(g[t], hs[t], ctx.activation, out=dz[t - 1])
            else:
                activation_backward(g[t] * scale, phi_out[t - 1], ctx.activation, out=dz[t - 1])
                g[t - 1].addcmul_(g[t], leak)
            g[t - 1].addmm_(dz[t - 1], mt)
        need = ctx.needs_input_grad
        grad_m = hs[:-1].reshape(-1, hidden).t().mm(dz.reshape(-1, hidden)) if need[2] else None
        grad_leak = (g[1:] * hs[:-1]).sum((0, 1)) if leak is not None and need[4] else None
        grad_scale = (g[1:] * phi_out).sum((0, 1)) if scale is not None and need[5] else None
        return dz, g[0], grad_m, None, grad_leak, grad_scale


def leaky_recurrence(
    v: torch.Tensor,
    h0: torch.Tensor,
    m: torch.Tensor,
    activation: str,
    leak: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the recurrence over v [T, B, H] from h0 [B, H]; returns [T + 1, B, H] with hs[0] = h0."""
    return _LeakyRecurrence.apply(v, h0, m, activation, leak, scale)
