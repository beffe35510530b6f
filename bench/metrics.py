"""Task metrics: forecast nRMSE(t) and valid prediction time; classification accuracy and macro-F1.

Conventions (stated in every leaderboard header):

* nRMSE(t) = sqrt(mean_i ((ŷ_i(t) − y_i(t)) / σ_i)²) per trajectory, σ_i the per-dimension
  standard deviation of the *training* split (Vlachas et al. 2020), then averaged over
  test trajectories.
* VPT is the first time a trajectory's nRMSE(t) exceeds the threshold (0.5), times λ1,
  i.e. in Lyapunov times; a trajectory that never exceeds it is capped at the horizon and
  counted in ``vpt_capped_fraction``.
* A prediction with NaN or Inf entries (a rollout that diverged) has nRMSE = inf from
  that time on: it exceeds every threshold, and any mean over trajectories that
  includes it is inf (stored as null in JSON). ``diverged_fraction`` is the share of
  test trajectories with such entries.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nrmse_curve", "valid_prediction_time", "accuracy", "macro_f1", "forecast_metrics", "classify_metrics", "forecast_items", "classify_items"]


def _as_array(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n_trajectories, n_times, *state), got {arr.shape}")
    return arr


def nrmse_curve(pred: np.ndarray, target: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Per-trajectory nRMSE over time, shape ``(n_trajectories, n_times)``.

    ``pred`` and ``target`` have shape ``(n, T, *state)``; ``sigma`` has the state's shape
    (or broadcasts to it) and must be positive.
    """
    pred = _as_array(pred, "pred")
    target = _as_array(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), pred.shape[2:])
    if not np.all(sigma > 0):
        raise ValueError("sigma must be positive in every dimension")
    with np.errstate(over="ignore", invalid="ignore"):
        z = (pred - target) / sigma
        axes = tuple(range(2, z.ndim))
        curve = np.sqrt(np.mean(z * z, axis=axes)) if axes else np.abs(z)
    return np.where(np.isfinite(curve), curve, np.inf)  # NaN (a diverged state) counts as infinitely wrong


def valid_prediction_time(curve: np.ndarray, times: np.ndarray, threshold: float = 0.5, lyapunov_exponent: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """VPT per trajectory (in Lyapunov times when ``lyapunov_exponent`` is λ1) and a capped mask.

    ``curve`` is ``(n, T)`` from :func:`nrmse_curve`; ``times`` is ``(T,)``. The VPT of a
    trajectory is ``times[k] * λ1`` for the first ``k`` with ``curve[:, k] > threshold``;
    trajectories that never exceed it get ``times[-1] * λ1`` and ``capped=True``.
    """
    curve = np.asarray(curve, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if curve.ndim != 2 or curve.shape[1] != times.shape[0]:
        raise ValueError(f"curve shape {curve.shape} does not match {times.shape[0]} times")
    exceed = ~(curve <= threshold)  # NaN counts as an exceedance
    capped = np.asarray(~exceed.any(axis=1))
    first = np.where(capped, times.shape[0] - 1, exceed.argmax(axis=1))
    return times[first] * lyapunov_exponent, capped


def accuracy(pred_labels: np.ndarray, labels: np.ndarray) -> float:
    pred_labels = np.asarray(pred_labels)
    labels = np.asarray(labels)
    if pred_labels.shape != labels.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"need two equal non-empty 1-D label arrays, got {pred_labels.shape} and {labels.shape}")
    return float(np.mean(pred_labels == labels))


def macro_f1(pred_labels: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over all ``n_classes`` (a class never predicted nor present scores 0)."""
    pred_labels = np.asarray(pred_labels)
    labels = np.asarray(labels)
    scores = []
    for c in range(n_classes):
        tp = np.sum((pred_labels == c) & (labels == c))
        fp = np.sum((pred_labels == c) & (labels != c))
        fn = np.sum((pred_labels != c) & (labels == c))
        denom = 2 * tp + fp + fn
        scores.append(0.0 if denom == 0 else 2.0 * tp / denom)
    return float(np.mean(scores))


def _short(x: float) -> float | None:
    """``x`` to 4 significant digits (per-item curves need no more), ``None`` if not finite."""
    return float(f"{x:.4g}") if np.isfinite(x) else None


def forecast_items(pred: np.ndarray, target: np.ndarray, sigma: np.ndarray, times: np.ndarray, lyapunov_exponent: float | None, threshold: float = 0.5) -> dict[str, object]:
    """Per-trajectory scores, in test-split order: each main-score list averages to the metric.

    ``nrmse_mean`` (time mean of the trajectory's nRMSE after t = 0), ``vpt`` (chaotic
    systems only) and the trajectory's coarse nRMSE curve (the ``nrmse_curve`` times,
    4 significant digits; ``None`` where it is infinite).
    """
    curve = nrmse_curve(pred, target, sigma)
    times = np.asarray(times, dtype=np.float64)
    stride = max(1, (len(times) - 1) // 100)
    with np.errstate(invalid="ignore"):
        per_mean = curve[:, 1:].mean(axis=1)
    out: dict[str, object] = {
        "n": int(curve.shape[0]),
        "nrmse_mean": [float(x) if np.isfinite(x) else None for x in per_mean],
        "nrmse_curve": {"t": [float(x) for x in times[::stride]], "nrmse": [[_short(v) for v in row] for row in curve[:, ::stride]]},
    }
    if lyapunov_exponent:
        vpt, _ = valid_prediction_time(curve, times, threshold, lyapunov_exponent)
        out["vpt"] = [float(v) for v in vpt]
    return out


def classify_items(logits: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Per-window scores, in test-split order: correctness (its mean is the accuracy) and the prediction."""
    pred = np.asarray(logits).argmax(axis=1)
    labels = np.asarray(labels)
    return {"n": int(labels.shape[0]), "accuracy": [int(v) for v in (pred == labels)], "predicted": [int(v) for v in pred]}


def forecast_metrics(pred: np.ndarray, target: np.ndarray, sigma: np.ndarray, times: np.ndarray, eval_times: tuple[float, ...], lyapunov_exponent: float | None, threshold: float = 0.5) -> dict[str, object]:
    """All forecast metrics of a test set, as stored in a record's ``metrics``."""
    curve = nrmse_curve(pred, target, sigma)
    times = np.asarray(times, dtype=np.float64)
    mean_curve = curve.mean(axis=0)
    pred = np.asarray(pred, dtype=np.float64)
    diverged = ~np.isfinite(pred.reshape(pred.shape[0], -1)).all(axis=1)
    out: dict[str, object] = {"nrmse_mean": float(mean_curve[1:].mean()), "diverged_fraction": float(diverged.mean())}
    for s in eval_times:
        k = int(np.argmin(np.abs(times - s)))
        out[f"nrmse@{s:g}"] = float(mean_curve[k])
    # A coarse copy of the mean error curve (at most ~100 points) for error-growth plots.
    stride = max(1, (len(times) - 1) // 100)
    out["nrmse_curve"] = {"t": [float(x) for x in times[::stride]], "nrmse": [float(x) for x in mean_curve[::stride]]}
    if lyapunov_exponent:
        vpt, capped = valid_prediction_time(curve, times, threshold, lyapunov_exponent)
        out["vpt"] = float(vpt.mean())
        out["vpt_median"] = float(np.median(vpt))
        out["vpt_capped_fraction"] = float(capped.mean())
        out["horizon_lyapunov"] = float(times[-1] * lyapunov_exponent)
    return out


def classify_metrics(logits: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, float]:
    pred = np.asarray(logits).argmax(axis=1)
    return {"accuracy": accuracy(pred, labels), "macro_f1": macro_f1(pred, labels, n_classes)}
