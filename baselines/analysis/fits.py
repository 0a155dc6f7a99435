"""Exponential fits of a neuron's autocorrelation -> its timescale tau_net (docs/analysis.md), by two rules.

- ``"robust"`` (default): the lag window adapts to the timescale (lags up to WINDOW_FACTOR times
  the current estimate, iterated), both fits are generalized least squares with the covariance of
  the autocorrelation estimate itself (Bartlett's formula under the single-exponential fit), and the
  double exponential is chosen only when its chi-square improvement passes a likelihood-ratio test.
- ``"paper"``: the paper's rule: lags 0..30 (``max_lag``), unweighted least squares, plain AIC.
- ``"authors"``: the fit of the authors' script (``analysis/timescales/timescales_utils.py``): lags
  0..30, a free amplitude a <= 1 (a exp(-k/tau); a (c exp(-k/tau1) + (1 - c) exp(-k/tau2))), every tau
  in [0, 100], scipy's default start, AIC with k = 2 and 4, NaN on a tie; the caller feeds it the
  unbiased autocovariance (each lag divided by T - k), as their script computes it.

Why the robust rule departs from the paper: see docs/analysis.md ("Timescale fits").
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np

from baselines.analysis.runs import AnalysisError

FIT_RULES = ("robust", "paper", "authors")
#: The paper's fitted lags 0..30.
PAPER_MAX_LAG = 30
#: Robust rule: the most lags accumulated (the window never grows past it; steps // 4 if smaller).
ROBUST_MAX_LAG = 2000
#: Robust rule: fit lags 1..WINDOW_FACTOR * tau (at least 1..PAPER_MAX_LAG).
WINDOW_FACTOR = 4.0
#: Robust rule: chi-square improvement the double exponential needs (chi2 with 2 dof at p = 0.001).
LR_CRITICAL = 13.8
#: Bounds of every fitted tau; a tau within 1% of TAU_MAX "hit the bound".
TAU_MIN, TAU_MAX = 1e-3, 1e5
#: The authors' script: every tau in [0, AUTHORS_TAU_MAX]; curve_fit's maxfev.
AUTHORS_TAU_MAX, AUTHORS_MAXFEV = 100.0, 2000
_GRID_HEAD, _GRID_TAIL = 16, 32


def check_rule(rule: str) -> str:
    if rule not in FIT_RULES:
        raise AnalysisError(f"fit rule must be one of {list(FIT_RULES)}, got {rule!r}")
    return rule


def default_max_lag(rule: str, steps: int) -> int:
    """Lags accumulated when the caller does not say: 30 (paper, authors), else min(2000, steps // 4)."""
    return PAPER_MAX_LAG if check_rule(rule) in ("paper", "authors") else max(1, min(ROBUST_MAX_LAG, int(steps) // 4))


def default_min_weight(rule: str) -> float:
    """Smallest component weight of an accepted double fit: 0 (the paper's and the authors' plain choice)
    or 0.05 (robust)."""
    return 0.05 if check_rule(rule) == "robust" else 0.0


def _single(k, tau):
    return np.exp(-k / tau)


def _double(k, a, tau1, tau2):
    return a * np.exp(-k / tau1) + (1.0 - a) * np.exp(-k / tau2)


def aic(rss: float, n: int, params: int) -> float:
    """AIC = 2 k + n ln(RSS / n) (RSS floored at 1e-300 so a perfect fit stays finite)."""
    return 2 * params + n * math.log(max(rss, 1e-300) / n)


def ar1_ac_covariance(tau: float, lags: np.ndarray, samples: float) -> np.ndarray:
    """Covariance of the sample autocorrelations r_i, r_j of a process with autocorrelation
    exp(-k/tau), from ``samples`` time points (Bartlett's formula, closed form for a = exp(-1/tau)):
    [(a^|i-j| - a^(i+j)) (1+a^2)/(1-a^2) + |i-j| a^|i-j| - (i+j) a^(i+j)] / samples."""
    a = math.exp(-1.0 / tau)
    i, j = np.asarray(lags, dtype=np.float64)[:, None], np.asarray(lags, dtype=np.float64)[None, :]
    d, s = np.abs(i - j), i + j
    ad, as_ = a ** d, a ** s
    ratio = (1 + a * a) / (1 - a * a) if a < 1 else 1e300
    cov = ((ad - as_) * ratio + d * ad - s * as_) / samples
    cov[np.diag_indices_from(cov)] += 1e-9 * cov.diagonal().max() + 1e-300  # keep it positive definite
    return cov


def lag_grid(window: int) -> np.ndarray:
    """Lags the robust rule fits in 1..window: every lag up to 16, then 32 log-spaced ones
    (neighbouring lags of an autocorrelation estimate are nearly perfectly correlated)."""
    head = np.arange(1, min(window, _GRID_HEAD) + 1, dtype=np.float64)
    if window <= _GRID_HEAD:
        return head
    return np.concatenate((head, np.unique(np.round(np.geomspace(_GRID_HEAD + 1, window, _GRID_TAIL)))))


def _empty() -> dict[str, Any]:
    return {"tau": math.nan, "model": 0, "tau_single": math.nan, "tau_fast": math.nan, "tau_slow": math.nan,
            "a_slow": math.nan, "window": 0, "flag": "failed"}


def _first_guess(ac: np.ndarray) -> float:
    if ac.shape[0] > 1 and 0.0 < ac[1] < 1.0:
        return float(np.clip(-1.0 / math.log(ac[1]), 0.05, 1e3))
    return 1.0


def _chi2(residual: np.ndarray, cov: np.ndarray | None) -> float:
    if cov is None:
        return float(residual @ residual)
    z = np.linalg.solve(np.linalg.cholesky(cov), residual)
    return float(z @ z)


def _fit_single(lags, y, guess, cov):
    from scipy.optimize import curve_fit

    (tau,), _ = curve_fit(_single, lags, y, p0=[guess], sigma=cov, bounds=([TAU_MIN], [TAU_MAX]), maxfev=2000)
    return float(tau), _chi2(_single(lags, tau) - y, cov)


def _fit_double(lags, y, guess, cov):
    """((a, tau1, tau2), chi2) from the start (0.5, guess / 3, 3 guess), or None if the fit fails."""
    from scipy.optimize import curve_fit

    p0 = [0.5, max(guess / 3.0, 1e-2), min(guess * 3.0, 1e4)]
    try:
        p, _ = curve_fit(_double, lags, y, p0=p0, sigma=cov, maxfev=5000,
                         bounds=([0.0, TAU_MIN, TAU_MIN], [1.0, TAU_MAX, TAU_MAX]))
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return None
    return tuple(float(v) for v in p), _chi2(_double(lags, *p) - y, cov)


def _fit_window(ac: np.ndarray, window: int, rule: str, samples: float, min_weight: float) -> dict[str, Any]:
    """Both fits on lags up to ``window`` and the model choice of ``rule``."""
    out = _empty()
    out["window"] = int(window)
    if rule == "paper":
        lags = np.arange(window + 1, dtype=np.float64)
    else:
        lags = lag_grid(window)
    y = ac[lags.astype(np.int64)]
    guess = _first_guess(ac)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cov, score = None, math.inf
        try:
            tau, score = _fit_single(lags, y, guess, None)
            if rule == "robust":  # GLS: the covariance of the estimate under the single fit
                cov = ar1_ac_covariance(tau, lags, samples)
                tau, score = _fit_single(lags, y, tau, cov)
                cov = ar1_ac_covariance(tau, lags, samples)
                score = _chi2(_single(lags, tau) - y, cov)
            out.update(tau=tau, model=1, tau_single=tau, flag="")
            guess = tau
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            if rule == "robust":
                return out
        double = _fit_double(lags, y, guess, cov)
    if double is None:
        return out
    (a, t1, t2), score2 = double
    fast, slow = (t1, t2) if t1 <= t2 else (t2, t1)
    out.update(tau_fast=fast, tau_slow=slow, a_slow=1 - a if t1 <= t2 else a)
    if min(a, 1 - a) < min_weight:
        return out
    if rule == "paper":
        n = lags.size
        better = aic(score2, n, 3) < (aic(score, n, 1) if out["model"] else math.inf)
    else:
        better = score - score2 > LR_CRITICAL
    if better:
        out.update(tau=slow, model=2, flag="")
    return out


def _authors_single(k, a, tau):
    return a * np.exp(-k / tau)


def _authors_double(k, a, tau1, tau2, c):
    return a * c * np.exp(-k / tau1) + a * (1.0 - c) * np.exp(-k / tau2)


def _fit_authors(ac: np.ndarray, min_weight: float) -> dict[str, Any]:
    """The authors' rule on lags 0..K of ``ac`` (see the module docstring)."""
    from scipy.optimize import curve_fit

    out = _empty()
    lags = np.arange(ac.shape[0], dtype=np.float64)
    out["window"] = int(lags[-1])
    n = lags.size
    aic1 = aic2 = 1e5  # their value for a fit that raised
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tau = 0 on a bound divides by zero inside curve_fit's steps
        try:
            p1, _ = curve_fit(_authors_single, lags, ac, maxfev=AUTHORS_MAXFEV,
                              bounds=((0, 0), (1.0, AUTHORS_TAU_MAX)))
            aic1 = 2 * 2 + n * np.log(float(((_authors_single(lags, *p1) - ac) ** 2).sum()) / n)
            out["tau_single"] = float(p1[1])
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            pass
        try:
            p2, _ = curve_fit(_authors_double, lags, ac, maxfev=AUTHORS_MAXFEV,
                              bounds=((0, 0, 0, 0), (1.0, AUTHORS_TAU_MAX, AUTHORS_TAU_MAX, 1.0)))
            _, t1, t2, c = (float(v) for v in p2)
            out.update(tau_fast=min(t1, t2), tau_slow=max(t1, t2), a_slow=c if t1 > t2 else 1.0 - c)
            if min(c, 1.0 - c) >= min_weight:  # min_weight 0 (default): every double fit competes, as theirs
                aic2 = 2 * 4 + n * np.log(float(((_authors_double(lags, *p2) - ac) ** 2).sum()) / n)
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            pass
    if aic1 < aic2:
        out.update(tau=out["tau_single"], model=1, flag="")
    elif aic2 < aic1:
        out.update(tau=out["tau_slow"], model=2, flag="")
    else:  # a tie (both fits raised, or equal AIC): NaN, as their script gives
        return out
    if out["tau"] >= 0.99 * AUTHORS_TAU_MAX:
        out["flag"] = "bound"
    return out


def fit_timescale(ac: np.ndarray, *, samples: float | None = None, rule: str = "robust",
                  min_weight: float | None = None) -> dict[str, Any]:
    """Fit a neuron's normalized autocorrelation ``ac`` (lags 0..K, ac[0] = 1).

    Single exponential exp(-k/tau) and double a exp(-k/tau1) + (1 - a) exp(-k/tau2) (scipy
    curve_fit); a double fit whose lighter component has weight < ``min_weight`` (default: 0 for the
    paper rule, 0.05 for robust) never wins. ``rule`` "paper": lags 0..K, least squares, plain AIC.
    ``rule`` "robust" (needs ``samples``, the time points behind the estimate, trials x steps):
    window 1..WINDOW_FACTOR * tau within 1..K, iterated; GLS with Bartlett's covariance; double only
    if chi2 drops by more than LR_CRITICAL. ``rule`` "authors": the authors' script (lags 0..K, free
    amplitude, taus in [0, 100], AIC; "bound" = tau at 100). Returns {"tau": the single tau or the slower of the two,
    "model": 1 or 2 (0: failed, tau NaN), "tau_single", "tau_fast", "tau_slow", "a_slow", "window":
    the last lag fitted, "flag": "" | "failed" | "bound" (tau at TAU_MAX, or the window wanted more
    than K lags)}.
    """
    check_rule(rule)
    min_weight = default_min_weight(rule) if min_weight is None else float(min_weight)
    ac = np.asarray(ac, dtype=np.float64)
    max_lag = ac.shape[0] - 1
    if max_lag < 1 or not np.all(np.isfinite(ac)):
        return _empty()
    if rule == "authors":
        return _fit_authors(ac, min_weight)
    if rule == "paper":
        out = _fit_window(ac, max_lag, rule, math.nan, min_weight)
        wanted = max_lag
    else:
        if samples is None or not samples > 0:
            raise AnalysisError(f"the robust fit needs samples (trials x steps) > 0, got {samples}")
        below = np.flatnonzero(ac < math.exp(-1.0))  # first guess: where ac falls below 1/e
        first = float(below[0]) if below.size else float(max_lag)
        window = min(max(PAPER_MAX_LAG, int(round(WINDOW_FACTOR * first))), max_lag)
        for _ in range(5):
            out = _fit_window(ac, window, rule, samples, min_weight)
            if out["model"] == 0:
                return out
            wanted = max(PAPER_MAX_LAG, int(round(WINDOW_FACTOR * min(out["tau"], TAU_MAX))))
            new = min(wanted, max_lag)
            if abs(new - window) <= 0.2 * window:
                break
            window = new
    if out["model"] and (out["tau"] >= 0.99 * TAU_MAX or wanted > max_lag):
        out["flag"] = "bound"
    return out


def fit_timescales(autocov: np.ndarray, *, samples: float | None = None, rule: str = "robust",
                   min_weight: float | None = None, progress: Callable[[int], None] | None = None
                   ) -> list[dict[str, Any]]:
    """``fit_timescale`` for every neuron of an autocovariance [K+1, H]; neurons with no variance -> NaN.
    ``progress(1)``, if given, after each neuron."""
    result = []
    for i in range(autocov.shape[1]):
        c0 = autocov[0, i]
        if np.isfinite(c0) and c0 > 1e-12:
            result.append(fit_timescale(autocov[:, i] / c0, samples=samples, rule=rule, min_weight=min_weight))
        else:
            result.append(_empty())
        if progress is not None:
            progress(1)
    return result
