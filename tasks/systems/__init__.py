"""The physical systems behind the built-in tasks: integrators and their diagnostics.

One module per system, holding only mathematics: ``heat`` (the exact Fourier solution),
``lorenz`` (a Taylor-series integrator exact to rounding, λ1, fixed points, regime
checks) and ``ks`` (Kuramoto–Sivashinsky by ETDRK4, Lyapunov exponents, the chaos
screen). What is shared lives once: ``_etdrk`` (ETDRK4 for any diagonal linear operator)
and ``_spectral`` (wavenumbers, random smooth periodic fields). Task specs, split sizes,
seeds and noise levels belong to the task modules one level up, which call these.
"""

from __future__ import annotations

from ._etdrk import ETDRK4, etdrk4_coefficients
from ._spectral import random_fourier_field, wavenumbers
from .heat import decay_rates, heat_solution
from .ks import (
    KS_LAMBDA1,
    ChaoticWindows,
    KuramotoSivashinsky,
    ScreenConfig,
    WindowRequest,
    chaotic_window_sets,
    chaotic_windows,
    finite_time_lyapunov,
    ks_lyapunov,
    simulate_ks,
)
from .lorenz import (
    BETA,
    LORENZ_LAMBDA1,
    REGIME_CHECKS,
    RHO,
    SIGMA,
    is_periodic,
    lobe_switch_times,
    lorenz_advance,
    lorenz_fixed_points,
    lorenz_initial_states,
    lorenz_lyapunov,
    lorenz_rhs,
    lorenz_solution,
    shows_regime,
)

__all__ = [
    # shared core
    "ETDRK4",
    "etdrk4_coefficients",
    "wavenumbers",
    "random_fourier_field",
    # heat
    "decay_rates",
    "heat_solution",
    # Lorenz-63
    "SIGMA",
    "RHO",
    "BETA",
    "LORENZ_LAMBDA1",
    "lorenz_rhs",
    "lorenz_solution",
    "lorenz_advance",
    "lorenz_fixed_points",
    "lorenz_initial_states",
    "lorenz_lyapunov",
    "lobe_switch_times",
    "is_periodic",
    "REGIME_CHECKS",
    "shows_regime",
    # Kuramoto–Sivashinsky
    "KS_LAMBDA1",
    "KuramotoSivashinsky",
    "simulate_ks",
    "finite_time_lyapunov",
    "ks_lyapunov",
    "ScreenConfig",
    "ChaoticWindows",
    "WindowRequest",
    "chaotic_windows",
    "chaotic_window_sets",
]
