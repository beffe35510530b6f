"""nRMSE, VPT, accuracy and macro-F1 on hand-made data whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from odebench.metrics import accuracy, classify_metrics, forecast_metrics, macro_f1, nrmse_curve, valid_prediction_time


def test_nrmse_normalises_per_dimension() -> None:
    target = np.zeros((1, 3, 2))
    pred = np.zeros((1, 3, 2))
    pred[0, 1] = [2.0, 0.0]  # error 2 in dim 0 with sigma 2 -> z = 1
    pred[0, 2] = [0.0, 3.0]  # error 3 in dim 1 with sigma 1 -> z = 3
    curve = nrmse_curve(pred, target, np.array([2.0, 1.0]))
    np.testing.assert_allclose(curve, [[0.0, np.sqrt(0.5), np.sqrt(4.5)]])


def test_nrmse_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differs"):
        nrmse_curve(np.zeros((1, 3, 2)), np.zeros((1, 4, 2)), 1.0)
    with pytest.raises(ValueError, match="positive"):
        nrmse_curve(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)), np.array([1.0, 0.0]))


def test_vpt_is_first_exceedance_in_lyapunov_times() -> None:
    times = np.arange(6) * 0.5
    curve = np.array([
        [0.0, 0.1, 0.6, 0.2, 0.9, 1.0],  # first exceedance at t=1.0 even though it dips again
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.45],  # never exceeds: capped at the horizon
        [0.7, 0.8, 0.9, 1.0, 1.0, 1.0],  # exceeds immediately
    ])
    vpt, capped = valid_prediction_time(curve, times, threshold=0.5, lyapunov_exponent=0.9)
    np.testing.assert_allclose(vpt, [1.0 * 0.9, 2.5 * 0.9, 0.0])
    np.testing.assert_array_equal(capped, [False, True, False])


def test_vpt_treats_nan_as_exceedance() -> None:
    vpt, capped = valid_prediction_time(np.array([[0.0, np.nan, 0.1]]), np.array([0.0, 1.0, 2.0]))
    assert vpt[0] == 1.0 and not capped[0]


def test_exponential_error_growth_gives_log_formula() -> None:
    # A perfect chaotic model started delta0 off: nRMSE = delta0 * exp(lambda t) -> VPT = ln(eps/delta0) Lyapunov times.
    lam, delta0 = 0.9056, 1e-3
    times = np.linspace(0, 20, 20001)
    curve = (delta0 * np.exp(lam * times))[None, :]
    vpt, _ = valid_prediction_time(curve, times, 0.5, lam)
    assert vpt[0] == pytest.approx(np.log(0.5 / delta0), abs=1e-3)


def test_forecast_metrics_report_fixed_horizons_and_capped_fraction() -> None:
    times = np.arange(11) * 0.1
    target = np.zeros((2, 11, 1))
    pred = np.zeros((2, 11, 1))
    pred[0, :, 0] = times  # error grows linearly, sigma = 1
    m = forecast_metrics(pred, target, np.ones(1), times, (0.5, 1.0), lyapunov_exponent=2.0)
    assert m["nrmse@0.5"] == pytest.approx(0.25) and m["nrmse@1"] == pytest.approx(0.5)
    assert m["vpt_capped_fraction"] == 0.5  # the second trajectory is perfect
    assert m["vpt"] == pytest.approx((0.6 * 2.0 + 1.0 * 2.0) / 2)
    assert m["horizon_lyapunov"] == pytest.approx(2.0)


def test_accuracy_and_macro_f1() -> None:
    labels = np.array([0, 0, 0, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 2, 0])
    assert accuracy(pred, labels) == pytest.approx(4 / 6)
    f1 = [2 * 2 / (2 * 2 + 1 + 1), 2 * 1 / (2 * 1 + 1 + 0), 2 * 1 / (2 * 1 + 0 + 1)]
    assert macro_f1(pred, labels, 3) == pytest.approx(np.mean(f1))
    m = classify_metrics(np.eye(3)[pred] * 5.0, labels, 3)
    assert m["accuracy"] == pytest.approx(4 / 6)


def test_a_diverged_trajectory_is_infinitely_wrong_from_where_it_diverges() -> None:
    times = np.arange(5) * 1.0
    target = np.zeros((2, 5, 2))
    pred = np.zeros((2, 5, 2))
    pred[0, 1:, 0] = 0.1  # a good trajectory
    pred[1, 1, 0] = 0.2
    pred[1, 2, 0] = 1e30  # then it blows up: overflow to inf in the square, NaN later
    pred[1, 3:, :] = np.nan
    curve = nrmse_curve(pred, target, np.ones(2))
    assert np.all(np.isfinite(curve[0])) and np.isfinite(curve[1, 1])
    assert np.all(curve[1, 2:] > 1e29) and np.all(np.isinf(curve[1, 3:]))
    m = forecast_metrics(pred, target, np.ones(2), times, (1.0, 4.0), lyapunov_exponent=0.5)
    assert m["diverged_fraction"] == 0.5
    assert m["nrmse@1"] == pytest.approx((0.1 / np.sqrt(2) + 0.2 / np.sqrt(2)) / 2)
    assert m["nrmse@4"] == np.inf and m["nrmse_mean"] == np.inf
    # VPT is still measured: the first trajectory is capped at the horizon, the second fails at t = 2.
    assert m["vpt"] == pytest.approx((4.0 * 0.5 + 2.0 * 0.5) / 2) and m["vpt_capped_fraction"] == 0.5


def test_a_finite_forecast_has_no_diverged_trajectories() -> None:
    times = np.arange(3) * 1.0
    m = forecast_metrics(np.ones((2, 3, 1)), np.zeros((2, 3, 1)), np.ones(1), times, (1.0,), lyapunov_exponent=None)
    assert m["diverged_fraction"] == 0.0 and m["nrmse_mean"] == 1.0
