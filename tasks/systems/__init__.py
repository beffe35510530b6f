"""The physical systems behind the built-in tasks: integrators and their diagnostics.

One module per system, holding only mathematics: ``heat`` (the exact Fourier solution).
What is shared lives once: ``_etdrk`` (ETDRK4 for any diagonal linear operator) and
``_spectral`` (wavenumbers, random smooth periodic fields). Task specs, split sizes,
seeds and noise levels belong to the task modules one level up, which call these.
"""

from __future__ import annotations

from ._etdrk import ETDRK4, etdrk4_coefficients
from ._spectral import random_fourier_field, wavenumbers
from .heat import decay_rates, heat_solution

__all__ = [
    # shared core
    "ETDRK4",
    "etdrk4_coefficients",
    "wavenumbers",
    "random_fourier_field",
    # heat
    "decay_rates",
    "heat_solution",
]
