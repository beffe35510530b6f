"""Heat generator against the exact single-mode solution and a converging finite-difference solve."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from odebench.tasks._recipe import SplitPlan
from odebench.tasks.heat import HEAT_CLASSIFY, HEAT_FORECAST, RECIPES
from odebench.tasks.systems.heat import decay_rates, heat_solution

KAPPA = 0.01
LENGTH = 1.0


def grid(n: int, length: float = LENGTH) -> np.ndarray:
    return length * np.arange(n) / n


@pytest.mark.parametrize("mode", [1, 3, 7, 31])
@pytest.mark.parametrize("length", [1.0, 2 * np.pi])
def test_single_mode_is_exact(mode: int, length: float) -> None:
    x = grid(64, length)
    times = np.linspace(0.0, 2.0, 9)
    u0 = np.sin(2 * np.pi * mode * x / length)
    expected = np.exp(-KAPPA * (2 * np.pi * mode / length) ** 2 * times)[:, None] * u0[None, :]
    np.testing.assert_allclose(heat_solution(u0, KAPPA, length, times), expected, rtol=0, atol=1e-13)


def test_batch_with_one_kappa_per_field() -> None:
    x = grid(32)
    u0 = np.stack([np.cos(2 * np.pi * x), np.sin(4 * np.pi * x) + 0.5])
    kappas = np.array([0.01, 0.05])
    times = np.array([0.0, 0.3, 1.0])
    out = heat_solution(u0, kappas, LENGTH, times)
    assert out.shape == (2, 3, 32)
    np.testing.assert_allclose(out[0], np.exp(-0.01 * (2 * np.pi) ** 2 * times)[:, None] * u0[0], atol=1e-13)
    # The mean (mode 0) is conserved; mode 2 decays at kappa (4 pi)^2.
    np.testing.assert_allclose(out[1], 0.5 + np.exp(-0.05 * (4 * np.pi) ** 2 * times)[:, None] * np.sin(4 * np.pi * x), atol=1e-13)


def fd_solution(u0_fine: np.ndarray, kappa: float, length: float, times: np.ndarray) -> np.ndarray:
    """Method of lines: second-order central differences, integrated exactly in time (matrix exponential)."""
    n = u0_fine.shape[-1]
    dx = length / n
    lap = (np.roll(np.eye(n), 1, axis=1) - 2 * np.eye(n) + np.roll(np.eye(n), -1, axis=1)) / dx**2
    return np.stack([expm(kappa * t * lap) @ u0_fine for t in times])


def test_finite_differences_converge_to_the_generator_at_second_order() -> None:
    rng = np.random.default_rng(0)
    coeffs = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    times = np.array([0.0, 0.25, 1.0])
    errors = []
    for n in (32, 64, 128):
        x = grid(n)
        # The same smooth field (Fourier modes 1..5) sampled on each grid.
        u0 = sum((c * np.exp(2j * np.pi * (k + 1) * x)).real for k, c in enumerate(coeffs))
        exact = heat_solution(u0, KAPPA, LENGTH, times)
        errors.append(np.abs(fd_solution(u0, KAPPA, LENGTH, times) - exact).max())
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    assert all(3.8 < r < 4.2 for r in ratios), (errors, ratios)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="times"):
        heat_solution(np.zeros(8), KAPPA, LENGTH, np.array([-0.1]))
    with pytest.raises(ValueError, match="kappa"):
        heat_solution(np.zeros((2, 8)), np.array([0.1, 0.2, 0.3]), LENGTH, np.array([0.0]))
    with pytest.raises(ValueError, match="N even"):
        heat_solution(np.zeros(7), KAPPA, LENGTH, np.array([0.0]))


def test_forecast_task_is_neither_static_nor_trivial() -> None:
    p = HEAT_FORECAST.parameters
    rates = decay_rates(p["n_points"], p["length"], p["kappa"])
    fastest = rates[p["ic_cutoff"]]
    per_step = np.exp(-fastest * HEAT_FORECAST.dt)
    assert 0.5 < per_step < 0.99  # the fastest mode changes visibly each step but survives many
    assert np.exp(-rates[1] * HEAT_FORECAST.horizon) > 0.5  # the slowest mode is still there at the end


def test_forecast_split_starts_from_its_stored_first_frame() -> None:
    recipe = RECIPES["heat-forecast"]
    arrays = recipe.generate(recipe.spec, SplitPlan(4, 101, 7))
    assert arrays.u.shape == (4, 101, 64) and arrays.u.dtype == np.float32
    again = heat_solution(arrays.u[:, 0].astype(np.float64), HEAT_FORECAST.parameters["kappa"], LENGTH, arrays.t)
    np.testing.assert_allclose(again, arrays.u, rtol=0, atol=2e-7)


def test_classify_windows_are_standardised_noisy_decays() -> None:
    recipe = RECIPES["heat-classify"]
    arrays = recipe.generate(recipe.spec, SplitPlan(400, HEAT_CLASSIFY.n_times, 11))
    kappa, mean, std = arrays.params.T
    assert np.array_equal(np.bincount(arrays.y), [100] * 4)
    np.testing.assert_array_equal(kappa, np.asarray(HEAT_CLASSIFY.parameters["kappas"])[arrays.y])
    # Whole-window standardisation, then noise 0.3: per-window sample std is about sqrt(1 + 0.09).
    assert np.allclose(arrays.u.std(axis=(1, 2)), np.sqrt(1 + 0.3**2), atol=0.05)
    # The noise-free part decays faster for larger kappa: the energy of the last frame
    # relative to the first (noise energy removed) orders the classes.
    energy = (arrays.u.astype(np.float64) ** 2).mean(axis=2) - 0.3**2
    ratio = energy[:, -1] / energy[:, 0]
    by_class = [np.median(ratio[arrays.y == c]) for c in range(4)]
    assert all(a > b for a, b in zip(by_class, by_class[1:])), by_class
