"""The numerics of the analysis, on plain arrays and a forecaster's flow map.

A *flow map* is ``flow(u, n) -> trajectory``: from states ``u`` of shape
``(batch, *state)`` it returns the ``n + 1`` states at ``0, dt, …, n·dt``, shape
``(batch, n + 1, *state)`` — a trained forecaster called on the task's grid. Everything
here takes a flow map, so a model, a reference integrator or a test double are analysed
the same way:

* :func:`long_rollout` — a long run in segments, each started from the last state of the
  previous one, with the tangent of :func:`largest_lyapunov` propagated beside it;
  rollouts that turn non-finite, fail or leave the box around the attractor stop there.
* :func:`wasserstein_per_variable`, :func:`energy_spectrum`, :func:`spectrum_error` —
  is the long run's distribution the true one?
* :func:`regime` — what the long run settled into.
* :func:`mode_decay_rates` — the per-Fourier-mode decay rates of a map's linearisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Flow",
    "LongRun",
    "Box",
    "long_rollout",
    "wasserstein_1d",
    "wasserstein_per_variable",
    "energy_spectrum",
    "resolved_modes",
    "spectrum_error",
    "regime",
    "mode_decay_rates",
]

#: ``flow(u (batch, *state) float64, n_samples) -> (batch, n_samples + 1, *state)``.
Flow = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Box:
    """Where a bounded rollout stays: ``|u − centre| ≤ factor · half_range`` in every variable.

    ``centre`` and ``half_range`` are per variable (one value for a field whose
    statistics are the same at every point), from a long true run.
    """

    centre: np.ndarray
    half_range: np.ndarray
    factor: float

    def inside(self, u: np.ndarray) -> np.ndarray:
        """Per rollout of ``u`` (batch, ..., *state): finite and inside the box at every entry."""
        flat = u.reshape(u.shape[0], -1, self.centre.size) if self.centre.size > 1 else u.reshape(u.shape[0], -1, 1)
        with np.errstate(invalid="ignore", over="ignore"):
            ok = np.abs(flat - self.centre) <= self.factor * self.half_range
        return np.asarray(ok.all(axis=(1, 2)) & np.isfinite(flat).all(axis=(1, 2)))


@dataclass(frozen=True)
class LongRun:
    """A long run of ``batch`` rollouts and, if a tangent was propagated, its growth.

    ``states``: (batch, n_samples + 1, *state); after a rollout stopped (``stopped_at``,
    in samples, ``None`` if it ran to the end) its entries are NaN. ``log_growth``:
    (batch, n_segments) log of the tangent's growth per segment after ``burn_in``
    segments, NaN after a stop; ``None`` without a tangent.
    """

    states: np.ndarray
    stopped_at: list[int | None]
    log_growth: np.ndarray | None
    segment_samples: int

    def lambda1(self, dt: float) -> list[float | None]:
        """Per rollout: the mean log growth per unit time (``None`` for a stopped rollout)."""
        if self.log_growth is None:
            raise ValueError("this long run propagated no tangent")
        out: list[float | None] = []
        for stop, row in zip(self.stopped_at, self.log_growth):
            out.append(None if stop is not None or row.size == 0 else float(row.mean() / (self.segment_samples * dt)))
        return out


def _safe_flow(flow: Flow, u: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``flow(u, n)`` and which rows succeeded; a batch that raises is retried row by row."""
    try:
        out = np.asarray(flow(u, n), dtype=np.float64)
        return out, np.ones(u.shape[0], dtype=bool)
    except Exception:  # noqa: BLE001 - a model that fails on a state has left its domain there
        if u.shape[0] == 1:
            return np.full((1, n + 1, *u.shape[1:]), np.nan), np.zeros(1, dtype=bool)
    rows, ok = [], []
    for i in range(u.shape[0]):
        row, good = _safe_flow(flow, u[i : i + 1], n)
        rows.append(row)
        ok.append(bool(good[0]))
    return np.concatenate(rows), np.asarray(ok)


def long_rollout(
    flow: Flow,
    u0: np.ndarray,
    n_segments: int,
    segment_samples: int,
    box: Box,
    *,
    tangent: bool = True,
    burn_in_segments: int = 0,
    epsilon: float = 1e-7,
    seed: int = 0,
) -> LongRun:
    """Roll ``u0`` out for ``n_segments × segment_samples`` samples, segment by segment.

    With ``tangent``, a twin ``u + ε‖u‖ v`` rides along in a separate call of ``flow``
    each segment: ``(flow(u + ε‖u‖v) − flow(u)) / (ε‖u‖)`` is the Jacobian–vector product of the
    segment's map by a forward difference, ``v`` is renormalised to unit length after every
    segment (Benettin et al. 1980), and the log of its growth is kept after the first
    ``burn_in_segments``. A separate call keeps a twin's solver steps (and any per-item
    randomness of the model) those of its base state. ``ε`` should be about the square
    root of the working precision (1e-7 in float64). A rollout that becomes non-finite,
    raises or leaves ``box`` stops there.
    """
    if n_segments < 1 or segment_samples < 1:
        raise ValueError(f"a long run needs at least one segment of one sample, got {n_segments} × {segment_samples}")
    u = np.asarray(u0, dtype=np.float64)
    batch = u.shape[0]
    n_total = n_segments * segment_samples
    states = np.full((batch, n_total + 1, *u.shape[1:]), np.nan)
    states[:, 0] = u
    stopped: list[int | None] = [None] * batch
    alive = np.ones(batch, dtype=bool)
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(u.shape)
    v /= np.linalg.norm(v.reshape(batch, -1), axis=1).reshape(-1, *([1] * (u.ndim - 1)))
    growth = np.full((batch, max(0, n_segments - burn_in_segments)), np.nan) if tangent else None
    for seg in range(n_segments):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        start = seg * segment_samples
        base = states[idx, start]
        out, ok = _safe_flow(flow, base, segment_samples)
        if tangent:
            scale = epsilon * np.maximum(np.linalg.norm(base.reshape(idx.size, -1), axis=1), 1e-12)
            shape = (-1, *([1] * (base.ndim - 1)))
            twin, twin_ok = _safe_flow(flow, base + scale.reshape(shape) * v[idx], segment_samples)
            ok &= twin_ok
        ok &= box.inside(out)
        for j, i in enumerate(idx):
            if not ok[j]:
                alive[i] = False
                stopped[i] = start
                continue
            states[i, start + 1 : start + segment_samples + 1] = out[j, 1:]
        if tangent and growth is not None:
            good = np.flatnonzero(ok)
            if good.size:
                delta = (twin[good, -1] - out[good, -1]) / scale[good].reshape(shape)
                norm = np.linalg.norm(delta.reshape(good.size, -1), axis=1)
                v[idx[good]] = delta / np.maximum(norm, 1e-300).reshape(shape)
                if seg >= burn_in_segments:
                    with np.errstate(divide="ignore"):
                        growth[idx[good], seg - burn_in_segments] = np.log(norm)
    return LongRun(states=states, stopped_at=stopped, log_growth=growth, segment_samples=segment_samples)


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """The 1-Wasserstein distance between the empirical distributions of ``a`` and ``b``.

    The integral of the difference of the two empirical CDFs, evaluated exactly on the
    merged sorted samples (the same quantity as ``scipy.stats.wasserstein_distance``).
    """
    a = np.sort(np.asarray(a, dtype=np.float64).ravel())
    b = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError("the Wasserstein distance needs samples on both sides")
    grid = np.concatenate([a, b])
    grid.sort(kind="mergesort")
    deltas = np.diff(grid)
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * deltas))


def wasserstein_per_variable(model: np.ndarray, truth: np.ndarray, sigma: np.ndarray, pooled: bool) -> list[float]:
    """W1 per state variable in units of the true ``sigma``; a field's grid points are pooled into one.

    ``model``/``truth``: samples (..., *state) with non-finite entries already removed or absent.
    """
    if pooled:
        return [wasserstein_1d(model[np.isfinite(model)], truth[np.isfinite(truth)]) / float(np.ravel(sigma)[0])]
    d = model.shape[-1]
    m = model.reshape(-1, d)
    t = truth.reshape(-1, d)
    return [wasserstein_1d(m[np.isfinite(m[:, i]), i], t[np.isfinite(t[:, i]), i]) / float(sigma[i]) for i in range(d)]


def energy_spectrum(fields: np.ndarray) -> np.ndarray:
    """Time- and ensemble-averaged energy per wavenumber of periodic fields ``(..., n_points)``.

    ``E(k) = ⟨|û_k|²⟩ / n²`` for ``k = 0 … n/2``, with ``û = rfft(u)``; non-finite fields
    are left out of the average.
    """
    x = np.asarray(fields, dtype=np.float64).reshape(-1, fields.shape[-1])
    x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] == 0:
        raise ValueError("no finite field to take a spectrum of")
    return np.asarray((np.abs(np.fft.rfft(x, axis=1)) ** 2).mean(axis=0) / x.shape[1] ** 2)


def resolved_modes(true_spectrum: np.ndarray, dynamic_range: float = 1e-6) -> np.ndarray:
    """The wavenumbers ``k ≥ 1`` whose true energy is within ``dynamic_range`` of the largest.

    Below that the field holds no energy worth comparing (the spectrum of a chaotic PDE
    falls off exponentially to rounding noise).
    """
    e = np.asarray(true_spectrum, dtype=np.float64)
    k = np.arange(e.size)
    return k[(k >= 1) & (e >= dynamic_range * e[1:].max())]


def spectrum_error(model_spectrum: np.ndarray, true_spectrum: np.ndarray, modes: np.ndarray) -> float:
    """``mean_k |log10 E_model(k) − log10 E_true(k)|`` over ``modes`` (a decade is 1.0)."""
    m = np.asarray(model_spectrum, dtype=np.float64)[modes]
    t = np.asarray(true_spectrum, dtype=np.float64)[modes]
    with np.errstate(divide="ignore"):
        return float(np.mean(np.abs(np.log10(np.maximum(m, 1e-300)) - np.log10(t))))


def regime(lambda1: float | None, late_spread: float, lambda_true: float, *, tolerance: float = 0.1, still: float = 1e-3) -> str:
    """What one bounded or stopped rollout settled into.

    ``diverged`` (no λ1: it stopped), ``fixed point`` (its late spread, in units of the
    true σ, is below ``still``), ``chaotic`` (λ1 above ``tolerance · λ_true``),
    ``cycle`` (|λ1| within it: a periodic or quasi-periodic orbit has λ1 = 0),
    ``contracting`` (λ1 below ``−tolerance · λ_true``: still falling onto an attractor
    the run did not reach).
    """
    if lambda1 is None:
        return "diverged"
    if late_spread < still:
        return "fixed point"
    band = tolerance * abs(lambda_true)
    if lambda1 > band:
        return "chaotic"
    if lambda1 >= -band:
        return "cycle"
    return "contracting"


def mode_decay_rates(step_map: Callable[[np.ndarray], np.ndarray], n_points: int, modes: Sequence[int], tau: float, *, at: np.ndarray | None = None, epsilon: float = 1e-4) -> list[float | None]:
    """Per Fourier mode ``k``: ``log|a_k| / tau``, ``a_k = ⟨e_k, J e_k⟩ / ⟨e_k, e_k⟩``.

    ``J`` is the Jacobian of ``step_map`` (states ``(batch, n_points)`` → states after
    ``tau``) at ``at`` (default the zero state), applied to ``cos`` and ``sin`` of each
    mode by central differences of size ``epsilon``; ``e_k = exp(2πikx/L)``. For a
    translation-invariant linear map (the heat equation: ``a_k = exp(−κ(2πk/L)² tau)``)
    this is exact; a mode the map amplifies has a positive rate. ``None`` where
    ``a_k`` is zero or not finite.
    """
    x = np.arange(n_points) / n_points
    base = np.zeros(n_points) if at is None else np.asarray(at, dtype=np.float64)
    dirs = []
    for k in modes:
        dirs += [np.cos(2 * np.pi * k * x), np.sin(2 * np.pi * k * x)]
    d = np.stack(dirs)
    plus = step_map(base + epsilon * d)
    minus = step_map(base - epsilon * d)
    jd = (np.asarray(plus, dtype=np.float64) - np.asarray(minus, dtype=np.float64)) / (2 * epsilon)
    rates: list[float | None] = []
    for i, k in enumerate(modes):
        e = np.exp(2j * np.pi * k * x)
        je = jd[2 * i] + 1j * jd[2 * i + 1]
        a = complex(np.vdot(e, je) / np.vdot(e, e))
        if k == 0 or 2 * k == n_points:  # sin vanishes on the grid: the mode is real
            a = complex(np.dot(d[2 * i], jd[2 * i]) / np.dot(d[2 * i], d[2 * i]))
        mag = abs(a)
        rates.append(float(np.log(mag) / tau) if mag > 0 and np.isfinite(mag) else None)
    return rates
