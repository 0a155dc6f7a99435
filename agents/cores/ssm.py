"""Fixed (input-independent) complex diagonal linear recurrences: state-space layers.

Both kinds run, per state unit j = 1..P on the block's input u_t [D],

    x_t = lambda_j x_{t-1} + (B~ u_t)_j         (complex x, lambda, B~)
    y_t = Re(C x_t) + D * u_t                    (C [D, P] complex, D [D] real)

as one parallel ``linear_scan``, followed by the mixing of their papers. They differ in how lambda and
B~ come from the parameters. The state is x as a real tensor [P, 2] (real and imaginary parts), so the
zero state is the reset state. Both have a fixed per-unit timescale -1/ln|lambda_j| (``own_timescales``).

lru: Linear Recurrent Unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu, De, 2023, "Resurrecting
Recurrent Neural Networks for Long Sequences", arXiv:2303.06349):

    lambda_j = exp(-exp(nu_j) + i exp(theta_j))          (exponential parametrization, |lambda_j| < 1)
    B~ = diag(gamma) (B_re + i B_im),  gamma_j = exp(gamma_log_j), initialised to sqrt(1 - |lambda_j|^2)
    out = (W_1 g) * sigmoid(W_2 g),  g = GELU(y)         (the paper's block: LRU -> GELU -> GLU)

Ring initialisation as the paper: |lambda_j|^2 ~ U(r_min^2, r_max^2), theta_j ~ U(0, max_phase);
B_re, B_im ~ N(0, 1/(2D)), C_re, C_im ~ N(0, 1/P), D ~ N(0, 1). As in the paper's code gamma is a trained
parameter initialised to the normalization (not tied to lambda); that keeps d gamma / d nu from blowing up
as |lambda| -> 1. Defaults r_min = 0.4, r_max = 0.99 span timescales of 1 to 100 steps, the range of N
these tasks ask for (the paper's r_min, r_max are tuned for sequences of length 1k-16k); max_phase = pi/10
is the paper's setting for long-range tasks and keeps the positive/signed comparison meaningful (below).

``eigenvalues`` for the LRU. A fixed diagonal recurrence already has complex eigenvalues and its phase
exp(theta_j) is free during training, so a hard map like Grazzi et al.'s a -> 2a - 1 has nothing to
restrict. What the published ring init fixes is where the eigenvalues start: the sector
{r e^{i theta}: theta in [0, max_phase]} around the positive real axis. "signed" (the analogue of
[0, 1] -> [-1, 1], Grazzi et al., ICLR 2025) mirrors that sector through the origin for every second
unit (theta_j + pi, i.e. lambda_j -> -lambda_j), so the initial real parts span [-r_max, r_max] and
half the units start alternating in sign (x_t weights u_{t-k} by (-r)^k, and an alternating sum is
what parity needs: |u_t - u_{t-1}| of two bits is their XOR). Phase init over [0, pi] was not chosen: with conjugate symmetry it covers the whole disc,
making "signed" the paper's max_phase = 2 pi setting rather than a sign extension of a given sector.
A real-valued signed variant was not chosen: it would change two things at once (complex -> real and
the sign), so a positive/signed difference could not be read.

s5: a diagonal state-space layer with zero-order-hold discretization (Smith, Warrington, Linderman,
2023, "Simplified State Space Layers for Sequence Modeling", arXiv:2208.04933; S4D-Lin init from Gu,
Gupta, Goel, Re, 2022, "On the Parameterization and Initialization of Diagonal State Space Models",
arXiv:2206.11893):

    A_j = -exp(a_log_j) + i a_im_j,  Delta_j = exp(log_dt_j)
    lambda_j = exp(Delta_j A_j),  B~ = diag((lambda - 1) / A) (B_re + i B_im)      (ZOH)
    out = g * sigmoid(W g),  g = GELU(y)                  (S5's "half GLU" mixing)

S4D-Lin init A_j = -1/2 + i pi j (j = 0..P-1), log Delta ~ U(log dt_min, log dt_max), B_re, B_im ~
N(0, 1/(2D)), C_re, C_im ~ N(0, 1/P), D ~ N(0, 1). Differences from S5: S4D-Lin instead of the
diagonalised HiPPO-LegS init (closed form, no eigendecomposition; S4D shows both perform alike), no
conjugate-pair halving (C is a free complex matrix, so Re(C x) covers 2 Re(C x) of the paper), B drawn
directly in the diagonal basis (S5 draws it in HiPPO's basis and rotates by V^{-1}), and default
dt range [0.01, 1] instead of [0.001, 0.1], so that |lambda| = exp(-Delta/2) spans timescales 2 to 200
steps for these tasks' sequences of tens to hundreds of steps (S5's range targets thousands).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._validate import normal_, uniform_
from .blocks import Block, BlockCore, BlockState, linear, linear_scan


def _number(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real number, else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _state_size(value: object, width: int) -> int:
    """The state size P: ``value`` (an int >= 1) or, for None, the block's width."""
    if value is None:
        return width
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"state_size must be an int >= 1 or None, got {value!r}")
    return value


def _parameter(shape: tuple[int, ...], std: float, generator: torch.Generator | None) -> nn.Parameter:
    """A parameter drawn from N(0, std^2) on the generator's device."""
    p = nn.Parameter(torch.empty(shape))
    normal_(p, std, generator)
    return p


class GLU(nn.Module):
    """The gated mixing after a state-space recurrence, g = GELU(y): out = (W_1 g) * sigmoid(W_2 g) (the
    LRU's full GLU), or out = g * sigmoid(W_2 g) with ``full=False`` (S5's half GLU)."""

    def __init__(self, width: int, generator: torch.Generator | None, full: bool) -> None:
        super().__init__()
        self.gate = linear(width, width, generator)
        self.value = linear(width, width, generator) if full else None

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        g = F.gelu(y)
        return (g if self.value is None else self.value(g)) * torch.sigmoid(self.gate(g))


class DiagonalSSMBlock(Block):
    """x_t = lambda x_{t-1} + B~ u_t (complex diagonal, P units), y = Re(C x) + D u, then a GLU.

    Subclasses define ``transition()`` -> (lambda [P], scale [P]), both complex, with B~ = diag(scale) B.
    """

    full_glu: bool = True

    def __init__(self, width: int, state_size: int | None, generator: torch.Generator | None) -> None:
        super().__init__()
        self.width = width
        self.state_size = _state_size(state_size, width)
        p = self.state_size
        self.B_re = _parameter((p, width), 1.0 / math.sqrt(2 * width), generator)
        self.B_im = _parameter((p, width), 1.0 / math.sqrt(2 * width), generator)
        self.C_re = _parameter((width, p), 1.0 / math.sqrt(p), generator)
        self.C_im = _parameter((width, p), 1.0 / math.sqrt(p), generator)
        self.D = _parameter((width,), 1.0, generator)
        self.glu = GLU(width, generator, self.full_glu)

    def transition(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def state_shapes(self) -> tuple[tuple[int, ...], ...]:
        return ((self.state_size, 2),)

    def run(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState, None]:
        lam, scale = self.transition()
        bu = scale * torch.complex(u @ self.B_re.T, u @ self.B_im.T)  # two real products: faster than complex
        x = linear_scan(lam.expand(u.shape[0], 1, -1), bu, torch.complex(state[0][..., 0], state[0][..., 1]))
        y = x.real @ self.C_re.T - x.imag @ self.C_im.T + self.D * u
        return self.glu(y), (torch.stack((x[-1].real, x[-1].imag), dim=-1),), None


class LRUBlock(DiagonalSSMBlock):
    """An LRU layer (Orvieto et al. 2023) of P complex units followed by GELU and a GLU."""

    def __init__(self, width: int, *, state_size: int | None = None, r_min: float = 0.4, r_max: float = 0.99,
                 max_phase: float = math.pi / 10, eigenvalues: str = "positive",
                 generator: torch.Generator | None = None) -> None:
        super().__init__(width, state_size, generator)
        r_min, r_max, max_phase = (_number(*item) for item in
                                   (("r_min", r_min), ("r_max", r_max), ("max_phase", max_phase)))
        if not 0.0 <= r_min < r_max < 1.0:
            raise ValueError(f"r_min and r_max must satisfy 0 <= r_min < r_max < 1, got {r_min}, {r_max}")
        if not max_phase > 0.0:
            raise ValueError(f"max_phase must be > 0, got {max_phase}")
        p = self.state_size
        radius2, phase = torch.empty(p, dtype=torch.float64), torch.empty(p, dtype=torch.float64)
        uniform_(radius2, r_min ** 2, r_max ** 2, generator)
        uniform_(phase, 0.0, max_phase, generator)
        if eigenvalues == "signed":
            phase[1::2] += math.pi  # every second unit mirrored: lambda -> -lambda
        dtype = torch.get_default_dtype()  # drawn in float64 for the logs near |lambda| = 1, stored as usual
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(radius2)).to(dtype))
        self.theta_log = nn.Parameter(torch.log(phase).to(dtype))
        self.gamma_log = nn.Parameter(0.5 * torch.log(1.0 - radius2).to(dtype))

    def transition(self) -> tuple[torch.Tensor, torch.Tensor]:
        lam = torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))
        return lam, torch.exp(self.gamma_log).to(lam.dtype)

    def own_timescales(self) -> torch.Tensor:
        return torch.exp(-self.nu_log).detach()  # -1/ln|lambda| = 1/exp(nu)


class S5Block(DiagonalSSMBlock):
    """An S5-style diagonal SSM layer (ZOH, S4D-Lin init) of P complex units followed by GELU and a half GLU."""

    full_glu = False

    def __init__(self, width: int, *, state_size: int | None = None, dt_min: float = 0.01, dt_max: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(width, state_size, generator)
        dt_min, dt_max = _number("dt_min", dt_min), _number("dt_max", dt_max)
        if not 0.0 < dt_min <= dt_max:
            raise ValueError(f"dt_min and dt_max must satisfy 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        p = self.state_size
        self.log_dt = nn.Parameter(torch.empty(p))
        uniform_(self.log_dt, math.log(dt_min), math.log(dt_max), generator)
        self.a_log = nn.Parameter(torch.full((p,), math.log(0.5)))
        self.a_im = nn.Parameter(math.pi * torch.arange(p, dtype=torch.get_default_dtype()))

    def transition(self) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.complex(-torch.exp(self.a_log), self.a_im)
        lam = torch.exp(torch.exp(self.log_dt) * a)
        return lam, (lam - 1.0) / a

    def own_timescales(self) -> torch.Tensor:
        return torch.exp(-self.log_dt - self.a_log).detach()  # -1/ln|exp(Delta A)| = 1/(Delta exp(a_log))


class LRU(BlockCore):
    """LRU core (Orvieto et al. 2023): options ``layers``, ``state_size`` (P, None: hidden_size), the ring
    init ``r_min``, ``r_max``, ``max_phase``, and ``eigenvalues`` (see the module docstring)."""

    kind = "lru"
    block_type = LRUBlock
    block_options = {"state_size": None, "r_min": 0.4, "r_max": 0.99, "max_phase": math.pi / 10,
                     "eigenvalues": "positive"}


class S5(BlockCore):
    """S5-style diagonal SSM core (Smith et al. 2023, S4D-Lin init): options ``layers``, ``state_size``
    (P, None: hidden_size) and the step range ``dt_min``, ``dt_max``."""

    kind = "s5"
    block_type = S5Block
    block_options = {"state_size": None, "dt_min": 0.01, "dt_max": 1.0}


__all__ = ["GLU", "LRU", "S5", "DiagonalSSMBlock", "LRUBlock", "S5Block"]
