"""Heat diffusion u_t = κ u_xx on a periodic domain [0, L): its exact solution.

Every Fourier mode decays independently, û_k(t) = û_k(0) exp(−κ (2πk/L)² t), so a
band-limited initial field is advanced exactly, to float64 rounding, by one ``rfft``,
a multiplication and one ``irfft``; no time stepper and no step-size error.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["decay_rates", "heat_solution"]


def decay_rates(n_points: int, length: float, kappa: float) -> np.ndarray:
    """Decay rate κ(2πk/L)² of every ``numpy.fft.rfft`` mode k = 0 … N/2 (Nyquist included)."""
    if n_points < 2 or n_points % 2:
        raise ValueError(f"n_points must be even and >= 2, got {n_points}")
    if not (length > 0 and math.isfinite(length)):
        raise ValueError(f"length must be positive, got {length}")
    k = 2.0 * np.pi / length * np.arange(n_points // 2 + 1)
    return kappa * k * k


def heat_solution(u0: np.ndarray, kappa: float | np.ndarray, length: float, times: np.ndarray) -> np.ndarray:
    """The exact periodic solution at ``times`` from initial fields ``u0``.

    ``u0``: ``(n, N)`` (or ``(N,)``) samples on the grid ``x_j = j L / N``; ``kappa``: a
    scalar or one value per field. Returns ``(n, T, N)`` (or ``(T, N)``) float64.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    if u0.ndim not in (1, 2) or u0.shape[-1] < 2 or u0.shape[-1] % 2:
        raise ValueError(f"u0 must have shape (N,) or (n, N) with N even, got {u0.shape}; stack fields along axis 0")
    if not np.all(np.isfinite(u0)):
        raise ValueError("u0 contains NaN or Inf")
    if not (length > 0 and math.isfinite(length)):
        raise ValueError(f"length must be positive, got {length}")
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError("times must be a 1-D array of finite times >= 0 (the backward heat equation is ill-posed)")
    single = u0.ndim == 1
    fields = np.atleast_2d(u0)
    kappa = np.asarray(kappa, dtype=np.float64)
    if kappa.ndim > 1 or (kappa.ndim == 1 and kappa.shape[0] != fields.shape[0]) or np.any(kappa < 0):
        raise ValueError(f"kappa must be a scalar or one value >= 0 per field ({fields.shape[0]}), got shape {kappa.shape}")
    n_points = fields.shape[-1]
    rates = decay_rates(n_points, length, 1.0)
    kappa = np.broadcast_to(kappa, (fields.shape[0],))
    spectrum = np.fft.rfft(fields, axis=-1)
    decay = np.exp(-kappa[:, None, None] * times[None, :, None] * rates[None, None, :])
    out = np.fft.irfft(spectrum[:, None, :] * decay, n=n_points, axis=-1)
    return out[0] if single else out

