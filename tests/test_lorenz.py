"""Lorenz generator against DOP853, λ1, and the stored splits' precision and class regimes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from odebench.data import load_split
from odebench.tasks.lorenz import LORENZ_CLASSIFY, LORENZ_FORECAST
from odebench.tasks.systems.lorenz import (
    BETA,
    LORENZ_LAMBDA1,
    SIGMA,
    is_periodic,
    lobe_switch_times,
    lorenz_fixed_points,
    lorenz_lyapunov,
    lorenz_rhs,
    lorenz_solution,
    shows_regime,
)

RHO_H = SIGMA * (SIGMA + BETA + 3) / (SIGMA - BETA - 1)  # Hopf point of C±, ≈ 24.74


def reference(u0: np.ndarray, rho: float, times: np.ndarray) -> np.ndarray:
    sol = solve_ivp(lambda t, s: lorenz_rhs(s, rho), (0.0, times[-1]), u0, method="DOP853", rtol=1e-12, atol=1e-12, t_eval=times)
    return sol.y.T


@pytest.fixture(scope="module")
def attractor_states() -> np.ndarray:
    """A few states on the rho = 28 attractor (from the generator itself, 10 time units in)."""
    rng = np.random.default_rng(1)
    u0 = np.column_stack([rng.uniform(-15, 15, 6), rng.uniform(-20, 20, 6), rng.uniform(5, 40, 6)])
    return lorenz_solution(u0, 10.0, 2)[:, -1]


def test_matches_dop853_over_one_time_unit(attractor_states: np.ndarray) -> None:
    times = 0.01 * np.arange(101)
    ours = lorenz_solution(attractor_states, 0.01, 101)
    worst = max(np.abs(ours[i] - reference(s, 28.0, times)).max() for i, s in enumerate(attractor_states))
    assert worst <= 1e-6
    assert worst <= 1e-9  # the Taylor series is summed to rounding: far inside the requirement


@pytest.mark.parametrize("rho", [10.0, 160.0, 350.0])
def test_matches_dop853_across_regimes(rho: float) -> None:
    u0 = np.array([1.0, 2.0, rho - 5.0])
    start = lorenz_solution(u0, 8.0, 2, rho)[-1]
    times = 0.025 * np.arange(41)
    ours = lorenz_solution(start, 0.025, 41, rho)
    scale = np.abs(ours).max()
    assert np.abs(ours - reference(start, rho, times)).max() <= 1e-6 * scale


def test_per_trajectory_rho_matches_separate_runs() -> None:
    u0 = np.array([[1.0, 1.0, 20.0], [-3.0, 2.0, 30.0]])
    both = lorenz_solution(u0, 0.02, 50, np.array([14.0, 28.0]))
    np.testing.assert_allclose(both[0], lorenz_solution(u0[0], 0.02, 50, 14.0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(both[1], lorenz_solution(u0[1], 0.02, 50, 28.0), rtol=0, atol=1e-10)


def test_fixed_points_are_equilibria() -> None:
    for rho in (5.0, 20.0, 28.0):
        c = lorenz_fixed_points(rho)
        for point in (c, c * np.array([-1, -1, 1]), np.zeros(3)):
            np.testing.assert_allclose(lorenz_rhs(point, rho), 0.0, atol=1e-12)


def test_largest_lyapunov_exponent() -> None:
    # 32 trajectories x 50 time units: seed-to-seed spread measured at about 0.004.
    assert lorenz_lyapunov(n_trajectories=32, duration=50.0, seed=3) == pytest.approx(0.906, abs=0.02)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="u0"):
        lorenz_solution(np.zeros((2, 2)), 0.01, 3)
    with pytest.raises(ValueError, match="rho"):
        lorenz_solution(np.zeros((2, 3)), 0.01, 3, rho=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="dt"):
        lorenz_solution(np.zeros(3), 0.0, 3)


def test_periodicity_and_lobe_detectors() -> None:
    dt = 0.005
    cycle = lorenz_solution(np.array([1.0, 1.0, 340.0]), 10.0, 2, 350.0)[-1]
    assert is_periodic(lorenz_solution(cycle, dt, 801, 350.0), 350.0, dt)
    chaos = lorenz_solution(np.array([1.0, 1.0, 20.0]), 10.0, 2)[-1]
    segment = lorenz_solution(chaos, dt, 801)
    assert not is_periodic(segment, 28.0, dt)
    switches = lobe_switch_times(segment[None], dt)[0]
    assert switches.size > 0
    x = segment[:, 0]
    assert all(np.sign(x[round(t / dt) - 1]) != np.sign(x[round(t / dt)]) for t in switches)


def test_regime_check_of_a_spiral_into_c_plus() -> None:
    rho, dt = 10.0, 0.0125
    segment = lorenz_solution(lorenz_fixed_points(rho) + np.array([1.0, -1.0, 2.0]), dt, 321, rho)
    assert shows_regime("fixed-point", segment, rho, dt, 201)
    assert not shows_regime("periodic", segment, rho, dt, 201)
    assert not shows_regime("transient-chaos", segment, rho, dt, 201)
    with pytest.raises(ValueError, match="unknown regime"):
        shows_regime("fixed point", segment, rho, dt, 201)
    with pytest.raises(ValueError, match="segment"):
        shows_regime("chaos", segment[None], rho, dt, 201)
    with pytest.raises(ValueError, match="n_window"):
        shows_regime("chaos", segment, rho, dt, 400)


# --------------------------------------------------------------- the stored splits


@pytest.fixture(scope="module")
def forecast_test():
    return load_split("lorenz-forecast", "test")


def test_forecast_split_has_the_spec_layout(forecast_test) -> None:
    assert forecast_test.u.shape == (forecast_test.u.shape[0], LORENZ_FORECAST.n_times, 3)
    np.testing.assert_allclose(forecast_test.t, LORENZ_FORECAST.times)
    assert LORENZ_FORECAST.horizon * LORENZ_LAMBDA1 >= 15.0


def test_stored_initial_state_reproduces_the_stored_trajectory(forecast_test) -> None:
    u = forecast_test.u
    regenerated = lorenz_solution(u[:, 0].astype(np.float64), LORENZ_FORECAST.dt, u.shape[1])
    # The stored first state is the exact initial state: regenerating gives the same float32 data.
    assert np.array_equal(regenerated.astype(np.float32), u)


def test_stored_data_is_the_lorenz_flow(forecast_test) -> None:
    # An independent solver from the stored first state follows the stored trajectory to
    # nearly float32 rounding for 10 time units (9 Lyapunov times).
    u = forecast_test.u
    n = int(round(10.0 / LORENZ_FORECAST.dt)) + 1
    times = forecast_test.t[:n]
    for i in range(2):
        ref = reference(u[i, 0].astype(np.float64), 28.0, times)
        assert np.abs(ref - u[i, :n]).max() < 1e-4


@pytest.fixture(scope="module")
def classify_test():
    return load_split("lorenz-classify", "test")


def regenerate_clean(split) -> tuple[np.ndarray, np.ndarray]:
    """The clean trajectories from each window's stored start state: (window, window + 2 time units)."""
    rho = split.params[:, 0]
    start = split.params[:, 2:5]
    n_win = LORENZ_CLASSIFY.n_times
    dt = LORENZ_CLASSIFY.dt
    traj = lorenz_solution(start, dt, n_win + int(round(2.0 / dt)), rho)
    return traj[:, :n_win], traj


def test_classify_windows_are_standardised_clean_data_plus_noise(classify_test) -> None:
    window, _ = regenerate_clean(classify_test)
    mean, std = classify_test.params[:, 5:8], classify_test.params[:, 8:11]
    np.testing.assert_allclose(window.mean(axis=1), mean, rtol=1e-6, atol=1e-6 * np.abs(mean).max())
    standardised = (window - mean[:, None]) / std[:, None]
    residual = classify_test.u - standardised
    noise = LORENZ_CLASSIFY.parameters["noise"]
    assert abs(residual.std() - noise) < 0.01 and abs(residual.mean()) < 0.01
    assert np.bincount(classify_test.y).min() == np.bincount(classify_test.y).max()  # balanced


def test_classify_labels_describe_what_each_trajectory_does(classify_test) -> None:
    window, extended = regenerate_clean(classify_test)
    rho = classify_test.params[:, 0]
    dt = LORENZ_CLASSIFY.dt
    names = LORENZ_CLASSIFY.class_names
    end = dt * (LORENZ_CLASSIFY.n_times - 1)
    periodic: list[int] = []
    for i, label in enumerate(classify_test.y):
        regime = names[label]
        switches = lobe_switch_times(extended[i : i + 1], dt)[0]
        if regime == "fixed-point":
            assert rho[i] < RHO_H
            side = np.sign(window[i, 0, 0])
            centre = lorenz_fixed_points(rho[i]) * np.array([side, side, 1.0])
            dist = np.linalg.norm(window[i] - centre, axis=1)
            assert not np.any(switches <= end) and dist[-1] < dist[0], i  # converging on one fixed point
        elif regime == "transient-chaos":
            assert 13.93 < rho[i] < 24.06  # no chaotic attractor: the wandering is transient
            assert np.any(switches > end), i  # ... but it still wanders after the window
        elif regime == "chaos":
            assert RHO_H < rho[i] < 99.5  # C± unstable, before the first periodic window
            assert not is_periodic(extended[i], rho[i], dt), i
        else:
            assert regime == "periodic" and rho[i] > 145
            periodic.append(i)
    # Closed orbits, judged on a five times finer sampling than the generator's check used.
    fine = lorenz_solution(classify_test.params[periodic, 2:5], dt / 5, 5 * 4 * round(1 / dt) + 1, rho[periodic])
    assert all(is_periodic(fine[j], rho[i], dt / 5, tol=5e-3) for j, i in enumerate(periodic))
