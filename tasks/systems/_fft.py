"""Real FFTs along the last axis, with the per-call overhead of ``numpy.fft`` taken out.

The KS integrator makes eight transforms of 64 points per step; on the batches the data
use, ``numpy.fft``'s Python wrapper (argument normalisation, output allocation) costs
about 3.5 µs a call against 1.5 µs for the transform itself. Where NumPy exposes the
gufuncs its wrapper calls, :func:`rfft` and :func:`irfft` call them directly; they are
used only after a probe has shown them bit-identical to ``numpy.fft`` on this NumPy, and
``numpy.fft`` is used otherwise. Either way the results are the public API's, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["rfft", "irfft", "FAST_PATH"]


def _public_rfft(u: np.ndarray) -> np.ndarray:
    return np.fft.rfft(u, axis=-1)


def _public_irfft(v: np.ndarray, n: int) -> np.ndarray:
    return np.fft.irfft(v, n, -1)


def _gufuncs() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, int], np.ndarray]] | None:
    """The direct calls, if this NumPy has the gufuncs and they agree with ``numpy.fft`` bit for bit."""
    try:
        from numpy.fft import _pocketfft_umath as pfu  # type: ignore[attr-defined]  # the gufuncs behind numpy.fft (NumPy >= 2.0)

        forward, inverse = pfu.rfft_n_even, pfu.irfft
        axes = [(-1,), (), (-1,)]

        def fast_rfft(u: np.ndarray) -> np.ndarray:
            return forward(u, 1.0, axes=axes, out=np.empty((*u.shape[:-1], u.shape[-1] // 2 + 1), dtype=np.complex128))

        def fast_irfft(v: np.ndarray, n: int) -> np.ndarray:
            return inverse(v, 1.0 / n, axes=axes, out=np.empty((*v.shape[:-1], n), dtype=np.float64))

        probe = np.random.default_rng(0).standard_normal((3, 2, 64))
        spectrum = np.fft.rfft(probe, axis=-1)
        if not (np.array_equal(fast_rfft(probe), spectrum) and np.array_equal(fast_irfft(spectrum, 64), np.fft.irfft(spectrum, 64, -1))):
            return None
    except Exception:  # any NumPy without them, or with another signature: the public API
        return None

    def checked_rfft(u: np.ndarray) -> np.ndarray:
        # the gufunc for even lengths only, float64 in
        return fast_rfft(u) if u.shape[-1] % 2 == 0 and u.dtype == np.float64 else _public_rfft(u)

    def checked_irfft(v: np.ndarray, n: int) -> np.ndarray:
        return fast_irfft(v, n) if v.dtype == np.complex128 and v.shape[-1] == n // 2 + 1 else _public_irfft(v, n)

    return checked_rfft, checked_irfft


_FAST = _gufuncs()
#: Whether the direct calls are in use on this NumPy.
FAST_PATH: bool = _FAST is not None
#: ``numpy.fft.rfft(u, axis=-1)``, bit for bit.
rfft: Callable[[np.ndarray], np.ndarray] = _FAST[0] if _FAST is not None else _public_rfft
#: ``numpy.fft.irfft(v, n, axis=-1)``, bit for bit.
irfft: Callable[[np.ndarray, int], np.ndarray] = _FAST[1] if _FAST is not None else _public_irfft
