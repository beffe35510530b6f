"""Fourier helpers shared by the periodic 1-D systems (heat, Kuramoto–Sivashinsky).

Both systems work on ``numpy.fft`` coefficients of a field sampled at ``x_j = j L / N``
and start from random band-limited fields, so the wavenumber convention and the
initial-field distribution are defined once here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["wavenumbers", "random_fourier_field"]


def wavenumbers(n_points: int, length: float) -> np.ndarray:
    """Angular wavenumbers ``2π/L · [0, 1, …, N/2−1, 0, −N/2+1, …, −1]`` for ``numpy.fft``.

    The Nyquist mode is set to 0, as in Kassam & Trefethen (2005), so that odd
    derivatives of a real field stay real.
    """
    if n_points < 2 or n_points % 2:
        raise ValueError(f"n_points must be even and >= 2, got {n_points}")
    if not length > 0:
        raise ValueError(f"length must be positive, got {length}")
    k = np.fft.fftfreq(n_points, d=1.0 / n_points)
    k[n_points // 2] = 0.0
    return 2.0 * np.pi / length * k


def random_fourier_field(rng: np.random.Generator, n_samples: int, n_points: int, cutoff: int, max_abs: float = 1.0) -> np.ndarray:
    """Random smooth periodic fields: zero-mean truncated Fourier series, scaled to ``max_abs``.

    Modes 1..``cutoff`` get independent normal real/imaginary coefficients; each sample is
    then rescaled so that ``max |u| == max_abs`` (the APEBench convention). Shape
    ``(n_samples, n_points)``, float64.
    """
    if not 1 <= cutoff < n_points // 2:
        raise ValueError(f"cutoff must be in [1, {n_points // 2 - 1}], got {cutoff}")
    coeffs = np.zeros((n_samples, n_points // 2 + 1), dtype=np.complex128)
    coeffs[:, 1 : cutoff + 1] = rng.standard_normal((n_samples, cutoff)) + 1j * rng.standard_normal((n_samples, cutoff))
    u = np.fft.irfft(coeffs, n=n_points, axis=-1)
    return max_abs * u / np.max(np.abs(u), axis=-1, keepdims=True)
