"""Kuramoto–Sivashinsky: ETDRK4 against closed forms and an independent stiff solver, the
data step's accuracy, λ1 at L = 22, conservation and symmetries, and the generated splits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from odebench.tasks._recipe import SplitPlan
from odebench.tasks.ks import KS_CLASSIFY, KS_FORECAST, RECIPES
from odebench.tasks.systems import ETDRK4, _fft, etdrk4_coefficients, random_fourier_field
from odebench.tasks.systems.ks import (
    KS_LAMBDA1,
    KuramotoSivashinsky,
    ScreenConfig,
    WindowRequest,
    chaotic_window_sets,
    chaotic_windows,
    finite_time_lyapunov,
    ks_lyapunov,
    simulate_ks,
)

L22 = KuramotoSivashinsky(22.0, 64)


@pytest.fixture(scope="module")
def attractor_states() -> np.ndarray:
    """Four states on the L = 22 attractor (1000 time units after random smooth starts)."""
    rng = np.random.default_rng(7)
    v = L22.stepper(0.25).advance(L22.to_fourier(random_fourier_field(rng, 4, 64, 8)), 4000)
    return L22.to_physical(v)


def _closed_forms(z: np.ndarray, h: float) -> list[np.ndarray]:
    ez = np.exp(z)
    return [
        h * (np.exp(z / 2) - 1) / z,
        h * (-4 - z + ez * (4 - 3 * z + z**2)) / z**3,
        h * (2 + z + ez * (-2 + z)) / z**3,
        h * (-4 - 3 * z - z**2 + ez * (4 - z)) / z**3,
    ]


@pytest.mark.parametrize("h", [0.01, 0.05, 0.25])
def test_coefficients_reduce_to_rk4_weights_where_the_operator_vanishes(h: float) -> None:
    e, e2, q, f1, f2, f3 = etdrk4_coefficients(L22.linear_op, h)
    for i in (0, 32):  # the mean and the Nyquist mode, both with k = 0
        assert e[i] == 1.0 and e2[i] == 1.0
        assert abs(q[i] - h / 2) < 1e-13
        for f in (f1, f2, f3):
            assert abs(f[i] - h / 6) < 1e-13


@pytest.mark.parametrize("h", [0.05, 0.25])
def test_coefficients_match_the_closed_forms_away_from_zero(h: float) -> None:
    z = h * L22.linear_op
    far = np.abs(z) > 0.5
    assert far.sum() > 20
    coefficients = etdrk4_coefficients(L22.linear_op, h)
    for got, want in zip(coefficients[2:], _closed_forms(z[far], h)):
        np.testing.assert_allclose(got[far], want, rtol=1e-12, atol=0)
    np.testing.assert_allclose(coefficients[0], np.exp(z), rtol=1e-15)


def test_fourth_order_convergence_when_halving_the_step() -> None:
    u0 = random_fourier_field(np.random.default_rng(3), 2, 64, 8)
    ends = [simulate_ks(u0, 22.0, 4.0, 2, h)[:, -1] for h in (1 / 32, 1 / 64, 1 / 128)]
    ratio = np.abs(ends[0] - ends[1]).max() / np.abs(ends[1] - ends[2]).max()
    assert 14.0 < ratio < 18.0


def test_etdrk4_agrees_with_an_implicit_stiff_solver(attractor_states: np.ndarray) -> None:
    u0 = attractor_states[0]
    eye = np.eye(64)
    linear = np.fft.irfft(L22.linear_op[:, None] * np.fft.rfft(eye, axis=0), n=64, axis=0)

    def rhs(_t: float, u: np.ndarray) -> np.ndarray:
        return np.fft.irfft(L22.linear_op * np.fft.rfft(u) + L22.nonlinear(np.fft.rfft(u)), n=64)

    def jac(_t: float, u: np.ndarray) -> np.ndarray:
        return linear + np.fft.irfft(-0.5j * L22.k[:, None] * np.fft.rfft(2 * np.diag(u), axis=0), n=64, axis=0)

    ref = solve_ivp(rhs, (0.0, 4.0), u0, method="Radau", jac=jac, rtol=1e-13, atol=1e-13).y[:, -1]
    ours = simulate_ks(u0[None], 22.0, 4.0, 2, 1 / 256)[0, -1]
    assert np.abs(ours - ref).max() < 1e-9
    # and the error of the data step against that reference is what the spec promises
    assert np.abs(simulate_ks(u0[None], 22.0, 4.0, 2, KS_FORECAST.parameters["h"])[0, -1] - ref).max() < 1e-5


def test_classify_step_is_within_1e_5_of_a_fine_reference_over_5_time_units(attractor_states: np.ndarray) -> None:
    h = KS_CLASSIFY.parameters["h"]  # windows of 15 time units: the coarse step suffices there
    ref = simulate_ks(attractor_states, 22.0, 0.5, 11, 0.01)
    data = simulate_ks(attractor_states, 22.0, 0.5, 11, h)
    assert np.abs(data - ref).max() <= 1e-5
    # and the step matters: a 5 times larger one is not accurate enough
    assert np.abs(simulate_ks(attractor_states, 22.0, 0.5, 11, 0.25) - ref).max() > 1e-5


def test_stored_forecast_test_split_is_converged_over_the_whole_horizon() -> None:
    """Halving the data's step changes no stored test trajectory by more than 1e-2 nRMSE up to
    the horizon: chaos amplifies truncation error, so only the whole horizon proves it."""
    from odebench.data import load_split

    u = np.asarray(load_split("ks-forecast", "test").u, dtype=np.float64)
    h = KS_FORECAST.parameters["h"]
    finer = simulate_ks(u[:, 0], 22.0, KS_FORECAST.dt, KS_FORECAST.n_times, h / 2)
    sigma = np.asarray(load_split("ks-forecast", "train").u, dtype=np.float64).std()  # pooled, as scored
    nrmse = np.sqrt((((u - finer) / sigma) ** 2).mean(axis=-1))
    assert nrmse.max() <= 1e-2, (nrmse.max(axis=1).argmax(), nrmse.max())
    # the test has teeth: version 1.0's step 0.05 was far off by the end
    coarse = simulate_ks(u[:8, 0], 22.0, KS_FORECAST.dt, KS_FORECAST.n_times, 0.05)
    assert np.sqrt((((coarse[:, -1] - finer[:8, -1]) / sigma) ** 2).mean(axis=-1)).mean() > 5e-2


def test_spatial_mean_is_conserved() -> None:
    u0 = random_fourier_field(np.random.default_rng(4), 3, 64, 8) + np.array([[0.0], [0.3], [-0.7]])
    u = simulate_ks(u0, 22.0, 1.0, 51, 0.25)
    np.testing.assert_allclose(u.mean(axis=-1), u0.mean(axis=-1, keepdims=True).repeat(51, axis=1), atol=1e-12)
    assert np.abs(u[:, -1] - u0).max() > 0.5  # it did move


def test_translation_and_reflection_symmetries(attractor_states: np.ndarray) -> None:
    u0 = attractor_states[:2]
    u = simulate_ks(u0, 22.0, 1.0, 11, 0.05)
    shifted = simulate_ks(np.roll(u0, 13, axis=-1), 22.0, 1.0, 11, 0.05)
    np.testing.assert_allclose(shifted, np.roll(u, 13, axis=-1), atol=1e-10)
    # u(x) -> -u(-x) maps solutions to solutions
    mirror = lambda a: -np.roll(a[..., ::-1], 1, axis=-1)  # noqa: E731
    np.testing.assert_allclose(simulate_ks(mirror(u0), 22.0, 1.0, 11, 0.05), mirror(u), atol=1e-10)


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_rate_classes_are_standard_ks_run_faster_or_slower(rate: float, attractor_states: np.ndarray) -> None:
    """u_t + u u_x + c (u_xx + u_xxxx) = 0, integrated directly, equals c w(x, c t): what the
    classification generator relies on."""
    w0 = attractor_states[:2]
    direct = ETDRK4(rate * L22.linear_op, L22.nonlinear, 0.01)
    v = L22.to_fourier(rate * w0)
    for _ in range(500):  # 5 time units
        v = direct.step(v)
    w = simulate_ks(w0, 22.0, 5.0 * rate, 2, 0.01 * rate)[:, -1]
    np.testing.assert_allclose(L22.to_physical(v), rate * w, atol=1e-9)


def test_lyapunov_exponent_at_L22() -> None:
    lam = ks_lyapunov(22.0, 64, n_trajectories=32, time=2000.0, h=0.25, seed=11)
    assert 0.045 <= lam.mean() <= 0.050
    assert abs(lam.mean() - KS_LAMBDA1) < 0.002
    assert 0.045 <= KS_FORECAST.lyapunov_exponent <= 0.050


def test_twin_exponent_is_negative_on_a_stable_state() -> None:
    """At L = 16 random starts settle on a stable state: the screen must see no chaos there."""
    lam = ks_lyapunov(16.0, 64, n_trajectories=4, time=200.0, h=0.25, seed=5)
    assert np.all(lam < 0.0)


def test_screen_rejects_a_non_chaotic_length() -> None:
    config = ScreenConfig(transient=500.0, screen_time=100.0, max_rounds=2)
    with pytest.raises(RuntimeError, match="chaos screen"):
        chaotic_windows(np.random.default_rng(0), 2, 3, 0.5, length=16.0, config=config)


def test_chaotic_windows_from_one_trajectory_keep_their_own_spacing() -> None:
    rng = np.random.default_rng(9)
    dt = np.array([0.8, 1.0, 1.25, 1.0])
    out = chaotic_windows(rng, 4, 6, dt, per_trajectory=2, gap=20.0, config=ScreenConfig(transient=200.0, screen_time=100.0))
    for i, d in enumerate(dt):
        again = simulate_ks(out.u[i : i + 1, 0], 22.0, d, 6, 0.05)
        assert np.all(np.abs(again - out.u[i : i + 1]) <= np.spacing(np.abs(out.u[i : i + 1])))
    assert not np.array_equal(out.u[0, 0], out.u[1, 0])


def test_folded_nonlinear_scale_is_the_same_scheme(attractor_states: np.ndarray) -> None:
    """KS's stepper folds −½ik into the coefficients; the plain scheme on the full 𝒩 agrees
    to rounding over 20 time units (chaos amplifies the last bits only slowly there)."""
    plain = ETDRK4(L22.linear_op, L22.nonlinear, 0.05)
    v, w = L22.to_fourier(attractor_states), L22.to_fourier(attractor_states)
    folded = L22.stepper(0.05)
    for _ in range(400):
        v, w = plain.step(v), folded.step(w)
    assert np.abs(L22.to_physical(v) - L22.to_physical(w)).max() < 1e-9
    assert L22.stepper(0.05) is folded  # coefficients computed once per step size


@pytest.mark.parametrize("shape", [(5, 64), (2, 3, 64), (1, 8), (4, 62)])
def test_direct_fft_calls_are_numpy_fft_bit_for_bit(shape: tuple[int, ...]) -> None:
    u = np.random.default_rng(3).standard_normal(shape)
    v = np.fft.rfft(u, axis=-1)
    assert np.array_equal(_fft.rfft(u), v)
    assert np.array_equal(_fft.irfft(v, shape[-1]), np.fft.irfft(v, shape[-1], -1))
    if int(np.__version__.split(".")[0]) >= 2:
        assert _fft.FAST_PATH  # the gufuncs exist from NumPy 2.0 on


def test_window_sets_in_one_batch_equal_each_set_alone() -> None:
    """Batching requests only shares the cost: each request's windows (and screen exponents)
    are bit for bit what it draws alone, with windows of different spacings in one batch."""
    config = ScreenConfig(transient=100.0, screen_time=40.0, align_time=5.0)
    requests = lambda: [WindowRequest(np.random.default_rng(s), n, dt) for s, n, dt in ((1, 3, 0.5), (2, 5, np.array([0.5, 1.0, 0.5, 0.5, 1.0])), (3, 1, 1.0))]  # noqa: E731
    together = chaotic_window_sets(requests(), 4, per_trajectory=2, gap=10.0, config=config, max_dt_sample=1.0)
    for request, batched in zip(requests(), together):
        alone = chaotic_window_sets([request], 4, per_trajectory=2, gap=10.0, config=config, max_dt_sample=1.0)[0]
        assert np.array_equal(alone.u, batched.u) and np.array_equal(alone.exponent, batched.exponent)


def test_splits_generated_together_equal_the_splits_alone() -> None:
    """What a build batches is what a fresh test split generates alone."""
    for name, n_times in (("ks-forecast", 21), ("ks-classify", KS_CLASSIFY.n_times)):
        recipe = RECIPES[name]
        plans = {"val": SplitPlan(2, n_times, 11), "test": SplitPlan(9, n_times, 12)}
        together = recipe.generate_together(recipe.spec, plans)
        for split, plan in plans.items():
            alone = recipe.generate(recipe.spec, plan)
            assert np.array_equal(alone.u, together[split].u) and np.array_equal(alone.params, together[split].params)
            assert (alone.y is None and together[split].y is None) or np.array_equal(alone.y, together[split].y)


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="u0\\[None\\]"):
        simulate_ks(np.zeros(64), 22.0, 0.5, 3, 0.05)
    with pytest.raises(ValueError, match="whole multiple of the step h"):
        simulate_ks(np.zeros((1, 64)), 22.0, 0.5, 3, 0.3)
    with pytest.raises(ValueError, match="real"):
        etdrk4_coefficients(np.ones(3, dtype=complex), 0.1)
    with pytest.raises(ValueError, match="positive"):
        KuramotoSivashinsky(-1.0, 64)
    with pytest.raises(ValueError, match="gap"):
        chaotic_windows(np.random.default_rng(0), 4, 3, 0.5, per_trajectory=2)
    with pytest.raises(ValueError, match="dt_sample"):
        chaotic_windows(np.random.default_rng(0), 4, 3, 0.33)
    with pytest.raises(ValueError, match="ScreenConfig.transient"):
        ScreenConfig(transient=-1.0)


# --- the generated splits -------------------------------------------------------------


def test_specs_and_plans() -> None:
    assert set(RECIPES) == {"ks-forecast", "ks-classify"}
    assert KS_FORECAST.state_shape == KS_CLASSIFY.state_shape == (64,)
    assert KS_FORECAST.horizon * KS_FORECAST.lyapunov_exponent >= 6.0
    assert max(KS_FORECAST.eval_times) == KS_FORECAST.horizon
    for name, recipe in RECIPES.items():
        assert recipe.spec.name == name and recipe.spec.version == "1.2"
        seeds = [plan.seed for plan in recipe.splits.values()]
        assert len(set(seeds)) == 3
        assert recipe.splits["test"].n_times == recipe.spec.n_times
    assert all(plan.n % KS_CLASSIFY.n_classes == 0 for plan in RECIPES["ks-classify"].splits.values())


@pytest.fixture(scope="module")
def forecast_split():
    recipe = RECIPES["ks-forecast"]
    return recipe.generate(recipe.spec, SplitPlan(3, recipe.spec.n_times, 77))


def test_forecast_split_layout(forecast_split) -> None:
    s = forecast_split
    n_times = KS_FORECAST.n_times
    assert s.u.shape == (3, n_times, 64) and s.u.dtype == np.float32
    assert s.t.dtype == np.float64 and np.allclose(s.t, KS_FORECAST.dt * np.arange(n_times))
    assert s.y is None
    assert s.params.shape == (3, 3) and np.all(s.params[:, 0] == 22.0)
    assert np.all(s.params[:, 2] >= KS_FORECAST.parameters["min_exponent"])
    assert np.abs(s.u.mean(axis=-1)).max() < 1e-6  # zero-mean starts stay zero-mean


def test_stored_forecast_u0_is_exact_over_the_whole_horizon(forecast_split) -> None:
    s = forecast_split
    again = simulate_ks(s.u[:, 0], 22.0, KS_FORECAST.dt, KS_FORECAST.n_times, KS_FORECAST.parameters["h"])
    assert np.all(np.abs(again - s.u) <= np.spacing(np.abs(s.u)))
    # whereas a start 1e-7 off (float32 rounding of a float64 state) visibly diverges by the end
    off = simulate_ks(s.u[:, 0] * (1 + 1e-7), 22.0, KS_FORECAST.dt, KS_FORECAST.n_times, KS_FORECAST.parameters["h"])
    assert np.abs(off[:, -1] - s.u[:, -1]).max() > 1e-5


def test_stored_forecast_trajectories_are_chaotic(forecast_split) -> None:
    v = L22.to_fourier(forecast_split.u[:, 0])
    _, lam = finite_time_lyapunov(L22, v, 0.25, 200.0, rng=np.random.default_rng(1))
    assert np.all(lam >= KS_FORECAST.parameters["min_exponent"])


def test_forecast_generation_is_deterministic() -> None:
    recipe = RECIPES["ks-forecast"]
    first, again = (recipe.generate(recipe.spec, SplitPlan(2, 41, 77)) for _ in range(2))
    assert np.array_equal(again.u, first.u) and np.array_equal(again.params, first.params)


def test_classify_split_layout_and_labels() -> None:
    recipe = RECIPES["ks-classify"]
    s = recipe.generate(recipe.spec, SplitPlan(12, recipe.spec.n_times, 78))
    assert s.u.shape == (12, 16, 64) and s.u.dtype == np.float32
    assert s.y is not None and s.y.dtype == np.int64
    assert np.bincount(s.y, minlength=3).tolist() == [4, 4, 4]
    rates = np.asarray(KS_CLASSIFY.parameters["rates"])
    assert s.params.shape == (12, 5)
    np.testing.assert_array_equal(s.params[:, 0], rates[s.y])
    assert np.all(s.params[:, 4] >= rates[s.y] * KS_CLASSIFY.parameters["min_exponent"])
    # standardised windows plus noise of standard deviation 0.5: total variance 1.25
    assert np.allclose(s.u.var(axis=(1, 2)), 1.25, atol=0.15)
    assert np.abs(s.u.mean(axis=(1, 2))).max() < 0.1
    again = recipe.generate(recipe.spec, SplitPlan(12, recipe.spec.n_times, 78))
    assert np.array_equal(again.u, s.u) and np.array_equal(again.y, s.y)
