"""Analyse one trained forecaster: rebuild it from its run record and look inside it.

:func:`analyse_record` reads an ``ok`` forecast record, rebuilds the model through the
registry with the recorded arguments, loads its weights with ``weights_only=True`` and
computes, for the task's system:

* **long-run statistics** (chaotic systems): :data:`AnalysisConfig.n_rollouts` rollouts
  from the test initial states over ``long_time`` Lyapunov times, the first ``burn_in``
  discarded, against two independent true runs of the same length (one from the same
  test states, one from the validation split's, which gives the sampling floor):
  per-variable 1-Wasserstein distance in units of the true σ, the time-averaged energy
  spectrum's mean log10 error (periodic fields) and the share of rollouts that diverge
  or leave the box ``escape_factor`` times the true range about its centre;
* **the largest Lyapunov exponent** of the model's own map along the same long run
  (:func:`~odebench.analysis.dynamics.long_rollout`) and the regime it settles into;
* **step and solver robustness** on the test split: the main score again with the
  model's step halved and doubled and, for an ODE model, under another solver, through
  the optional ``with_discretisation`` of the model contract ("n/a" without it), each
  with the share of test forecasts that diverge or leave the box ``escape_factor`` times
  the training split's range about its centre anywhere over the horizon;
* **decay rates per Fourier mode** (heat): of the model's linearisation at the zero
  state, against the exact ``−κ(2πk/L)²``.

The true long runs are computed once per task and settings and cached as ``.npz``
(see :func:`true_long_runs`).
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data import file_sha256
from .dynamics import Box, energy_spectrum, long_rollout, mode_decay_rates, regime, resolved_modes, spectrum_error, wasserstein_per_variable
from .records import ANALYSIS_SCHEMA, ANALYSIS_SCHEMA_VERSION, VARIANT_NUMBERS, VARIANTS, analysis_path

__all__ = ["AnalysisConfig", "config_for", "AnalysisError", "TrueRuns", "true_long_runs", "analyse_record", "failed_analysis", "analyse_to_file"]

_ROUND = 4  # significant digits of curves and figure data


@dataclass(frozen=True)
class AnalysisConfig:
    """What an analysis computes; stored in its record, and a change makes old records stale.

    Times of the long run are in Lyapunov times (chaotic systems). ``robustness_items``:
    how many test items the discretisation variants are scored on (``None``: all; a
    subset is batched from its start, so an adaptive solver may step differently from the
    scored run and ``reproduces_record`` is then only approximate).
    ``decay_tau``: the time over which a heat model's linearised map is taken, in
    samples; ``decay_modes``: modes ``0 … decay_modes``.
    """

    n_rollouts: int = 8
    long_time: float = 100.0
    burn_in: float = 10.0
    renormalise_every: float = 0.5
    escape_factor: float = 2.0
    epsilon: float = 1e-7
    robustness_items: int | None = None
    decay_tau: int = 10
    decay_modes: int = 10
    figure_points: int = 2000
    figure_times: int = 201

    def __post_init__(self) -> None:
        from ..toolkit import positive_float, positive_int

        for name in ("n_rollouts", "decay_tau", "figure_points", "figure_times"):
            positive_int(name, getattr(self, name))
        for name in ("long_time", "renormalise_every", "escape_factor", "epsilon"):
            positive_float(name, getattr(self, name))
        if self.robustness_items is not None:
            positive_int("robustness_items", self.robustness_items)
        if isinstance(self.decay_modes, bool) or not isinstance(self.decay_modes, int) or self.decay_modes < 0:
            raise ValueError(f"decay_modes must be an integer >= 0, got {self.decay_modes!r}")
        if not (isinstance(self.burn_in, (int, float)) and 0 <= self.burn_in < self.long_time):
            raise ValueError(f"burn_in must be >= 0 and below long_time={self.long_time:g}, got {self.burn_in!r}")
        if self.escape_factor <= 1 or self.epsilon >= 1e-2:
            raise ValueError(f"escape_factor must exceed 1 and epsilon stay below 1e-2, got {self.escape_factor:g} and {self.epsilon:g}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def config_for(task: Any, **overrides: Any) -> AnalysisConfig:
    """The default settings for ``task`` (its spec), with ``overrides``.

    One set of defaults serves every task today; the task is there so a system can get
    its own without changing any caller.
    """
    return replace(AnalysisConfig(), **overrides)


class AnalysisError(ValueError):
    """A run record that cannot be analysed (not ok, not a forecast, no weights, stale data)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _short(x: Any) -> float | None:
    x = float(x)
    return float(f"{x:.{_ROUND}g}") if math.isfinite(x) else None


def _short_array(a: np.ndarray) -> Any:
    return [_short_array(r) for r in a] if np.ndim(a) > 1 else [_short(v) for v in np.ravel(a)]


# ----------------------------------------------------------------------------- the model as a flow map


def _flow_of(model: Any, dt: float, dtype: Any) -> Callable[[np.ndarray, int], np.ndarray]:
    import torch

    def flow(u: np.ndarray, n: int) -> np.ndarray:
        t = (torch.arange(n + 1, dtype=torch.float64) * dt).to(dtype)
        with torch.no_grad():
            out = model(torch.as_tensor(u, dtype=dtype), t)
        return np.asarray(out.detach().to("cpu", torch.float64).numpy())

    return flow


def _float64(model: Any) -> Any:
    """A float64 copy of ``model`` for tangents by finite differences (the original is kept)."""
    clone = copy.deepcopy(model)
    return clone.double()


# ----------------------------------------------------------------------------- the truth


@dataclass(frozen=True)
class TrueRuns:
    """Two independent long runs of the true system, sampled at the task's ``dt``.

    ``a`` starts from the first test initial states, ``b`` from the validation split's;
    both ``(n_rollouts, n_samples + 1, *state)``.
    """

    a: np.ndarray
    b: np.ndarray


def _samples(task: Any, lyapunov_times: float) -> int:
    return max(1, round(lyapunov_times / task.lyapunov_exponent / task.dt))


def _segment_samples(task: Any, config: AnalysisConfig) -> int:
    return _samples(task, config.renormalise_every)


def _long_segments(task: Any, config: AnalysisConfig) -> tuple[int, int]:
    """(segments in the long run, segments of burn-in)."""
    seg = _segment_samples(task, config)
    return max(1, math.ceil(_samples(task, config.long_time) / seg)), math.ceil(_samples(task, config.burn_in) / seg)


def true_long_runs(task: Any, data: Any, config: AnalysisConfig, cache_dir: str | os.PathLike[str] | None = None) -> TrueRuns:
    """The true system's two long runs for ``task``, cached in ``cache_dir`` if given.

    The cache key holds the task's name, version, data and the settings that shape the
    runs, so a stale file is never read; it is written atomically, and a lock file
    keeps two workers from computing the same runs at once.
    """
    from ..baselines.references import build_exact

    n = config.n_rollouts
    segments, _ = _long_segments(task, config)
    total = segments * _segment_samples(task, config)
    key = hashlib.sha256(json.dumps([task.name, task.version, task.to_dict(), n, total], sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = None if cache_dir is None else Path(cache_dir) / f"{task.name}-truth-{key}.npz"

    def compute() -> TrueRuns:
        exact = build_exact(task)
        flow = _flow_of(exact, task.dt, _torch_float64())
        start = np.concatenate([np.asarray(data.test.u[:n, 0], dtype=np.float64), np.asarray(data.val.u[:n, 0], dtype=np.float64)])
        both = flow(start, total)
        return TrueRuns(a=both[:n], b=both[n:])

    if path is None:
        return compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            with np.load(path) as z:
                return TrueRuns(a=z["a"], b=z["b"])
        runs = compute()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, a=runs.a, b=runs.b)
        os.replace(tmp, path)
        return runs


def _torch_float64() -> Any:
    import torch

    return torch.float64


# ----------------------------------------------------------------------------- the pieces


def _box(truth: np.ndarray, pooled: bool, factor: float) -> Box:
    x = truth.reshape(-1, truth.shape[-1]) if not pooled else truth.reshape(-1, 1)
    lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
    return Box(centre=(lo + hi) / 2, half_range=(hi - lo) / 2, factor=factor)


def _sigma(truth: np.ndarray, pooled: bool) -> np.ndarray:
    return np.array([np.nanstd(truth)]) if pooled else np.nanstd(truth.reshape(-1, truth.shape[-1]), axis=0)


def _long_run_and_lyapunov(task: Any, model64: Any, data: Any, config: AnalysisConfig, truth: TrueRuns) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The ``long_run`` and ``lyapunov`` blocks, and the figure data they give."""
    lam = float(task.lyapunov_exponent)
    pooled = bool(task.pooled_sigma)
    seg = _segment_samples(task, config)
    segments, burn_segments = _long_segments(task, config)
    burn = burn_segments * seg
    box = _box(truth.a, pooled, config.escape_factor)
    sigma = _sigma(truth.a[:, burn:], pooled)
    u0 = np.asarray(data.test.u[: config.n_rollouts, 0], dtype=np.float64)
    run = long_rollout(_flow_of(model64, task.dt, _torch_float64()), u0, segments, seg, box, burn_in_segments=burn_segments, epsilon=config.epsilon)
    bounded = [i for i, s in enumerate(run.stopped_at) if s is None]
    per_lambda = run.lambda1(task.dt)
    late = max(1, _samples(task, 10.0))
    regimes = []
    for i, l1 in enumerate(per_lambda):
        spread = float(np.max(np.nanstd(run.states[i, -late:].reshape(late, -1), axis=0) / np.resize(sigma, run.states.shape[2:]).ravel())) if l1 is not None else 0.0
        regimes.append(regime(l1, spread, lam))
    counts = Counter(regimes)
    finite = [x for x in per_lambda if x is not None]
    lambda1 = float(np.mean(finite)) if finite else None
    variables = ["u"] if pooled else [f"u{i}" for i in range(int(np.prod(task.state_shape)))]
    if task.system == "lorenz63":
        variables = ["x", "y", "z"]
    model_samples = run.states[bounded, burn:] if bounded else None
    floor = wasserstein_per_variable(truth.b[:, burn:], truth.a[:, burn:], sigma, pooled)
    w1 = wasserstein_per_variable(model_samples, truth.a[:, burn:], sigma, pooled) if model_samples is not None else None
    long_run: dict[str, Any] = {
        "time": config.long_time,
        "burn_in": config.burn_in,
        "n_rollouts": int(u0.shape[0]),
        "escape_factor": config.escape_factor,
        "variables": variables,
        "diverged_fraction": 1.0 - len(bounded) / u0.shape[0],
        "diverged_at": [None if s is None else float(s * task.dt * lam) for s in run.stopped_at],
        "wasserstein": w1,
        "wasserstein_floor": floor,
        "spectrum_error": None,
        "spectrum_error_floor": None,
        "spectrum": None,
    }
    if pooled and len(task.state_shape) == 1:
        e_true = energy_spectrum(truth.a[:, burn:])
        e_floor = energy_spectrum(truth.b[:, burn:])
        modes = resolved_modes(e_true)
        e_model = energy_spectrum(model_samples) if model_samples is not None else None
        long_run["spectrum_error_floor"] = spectrum_error(e_floor, e_true, modes)
        long_run["spectrum_error"] = spectrum_error(e_model, e_true, modes) if e_model is not None else None
        k = np.arange(e_true.size)
        long_run["spectrum"] = {
            "k": [int(x) for x in k[modes]],
            "model": _short_array(e_model[modes]) if e_model is not None else None,
            "true": _short_array(e_true[modes]),
            "floor": _short_array(e_floor[modes]),
        }
    lyapunov = {
        "lambda1": lambda1,
        "lambda1_true": lam,
        "relative_error": None if lambda1 is None else (lambda1 - lam) / lam,
        "per_rollout": per_lambda,
        "regime": counts.most_common(1)[0][0] if counts else "diverged",
        "regimes": dict(sorted(counts.items())),
        "method": "tangent by forward differences of the model's segment map in float64 (a separate call per twin), renormalised every segment",
        "time": config.long_time - config.burn_in,
        "renormalise_every": config.renormalise_every,
        "epsilon": config.epsilon,
    }
    figures: dict[str, Any] = {}
    if task.system == "lorenz63" or (not pooled and int(np.prod(task.state_shape)) >= 2):
        i, j = (0, 2) if int(np.prod(task.state_shape)) >= 3 else (0, 1)
        names = [variables[i], variables[j]]
        stride = max(1, (truth.a.shape[1] - burn) // config.figure_points)

        def pair(x: np.ndarray) -> dict[str, Any]:
            x = x[burn::stride].reshape(-1, int(np.prod(task.state_shape)))
            return {"a": _short_array(x[:, i]), "b": _short_array(x[:, j])}

        figures["attractor"] = {"variables": [i, j], "names": names, "true": pair(truth.a[0]), "model": pair(run.states[bounded[0]]) if bounded else None}
    return long_run, lyapunov, figures


def _main_score(task: Any) -> str:
    return "vpt" if task.lyapunov_exponent else "nrmse_mean"


def _score(task: Any, pred: np.ndarray, target: np.ndarray, sigma: np.ndarray, times: np.ndarray, box: Box) -> dict[str, Any]:
    """The main score and nRMSE mean of ``pred``, and the shares of its rollouts that diverge or escape ``box``."""
    from ..metrics import nrmse_curve, valid_prediction_time

    curve = nrmse_curve(pred, target, sigma)
    with np.errstate(invalid="ignore"):
        per_mean = curve[:, 1:].mean(axis=1)
    out: dict[str, Any] = {
        "nrmse_mean": float(np.mean(per_mean)),
        "diverged_fraction": float((~np.isfinite(pred.reshape(pred.shape[0], -1)).all(axis=1)).mean()),
        "escaped_fraction": float((~box.inside(pred)).mean()),
        "per_item": per_mean,
    }
    if task.lyapunov_exponent:
        vpt, _ = valid_prediction_time(curve, times, task.vpt_threshold, task.lyapunov_exponent)
        out["vpt"] = float(vpt.mean())
        out["per_item"] = vpt
    out["score"] = out[_main_score(task)]
    return out


#: The numbers of a robustness variant, None where it did not run.
_NO_NUMBERS: dict[str, Any] = dict.fromkeys(VARIANT_NUMBERS)


def _variant_numbers(scored: Mapping[str, Any]) -> dict[str, Any]:
    return {k: scored[k] for k in _NO_NUMBERS}


def _predict(model: Any, u0: np.ndarray, times: np.ndarray, batch: int) -> np.ndarray:
    import torch

    t = torch.as_tensor(times, dtype=torch.float32)
    parts = []
    with torch.no_grad():
        for i in range(0, u0.shape[0], batch):
            out = model(torch.as_tensor(u0[i : i + batch], dtype=torch.float32), t)
            parts.append(out.detach().to("cpu", torch.float64).numpy())
    return np.concatenate(parts)


def _other_method(model: Any) -> str:
    """The solver to swap to: a fixed-step one for an adaptive model, an adaptive one otherwise."""
    from ..toolkit import ADAPTIVE_METHODS

    solver = getattr(model, "solver", None)
    method = getattr(solver, "method", None) or (getattr(model, "hparams", None) or {}).get("method")
    return "dopri5" if isinstance(method, str) and method not in ADAPTIVE_METHODS else "rk4"


def _describe(variant: Any, what: str) -> str:
    solver = getattr(variant, "solver", None)
    if solver is not None and hasattr(solver, "hparams"):
        settings = {k: v for k, v in solver.hparams().items() if k in ("method", "rtol", "atol", "step_size") and v is not None}
        return f"{what} ({', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}' for k, v in settings.items())})"
    return what


def _robustness(task: Any, model: Any, rec: Mapping[str, Any], data: Any, config: AnalysisConfig) -> tuple[dict[str, Any], np.ndarray]:
    """The ``robustness`` block and the native prediction of the first test item."""
    from ..objectives import training_sigma
    from ..spec import ChangesDiscretisation

    n_all = int(data.test.u.shape[0])
    n_rec = int((rec.get("metrics") or {}).get("n_test", n_all))
    n = min(n_rec, n_all if config.robustness_items is None else config.robustness_items)
    batch = int((rec.get("protocol") or {}).get("eval_batch_size") or 64)
    u0 = np.asarray(data.test.u[:n, 0], dtype=np.float32)
    target = np.asarray(data.test.u[:n], dtype=np.float32).astype(np.float64)
    times = np.asarray(data.times, dtype=np.float64)
    sigma = training_sigma(data, task)
    # The range a forecast may not leave: escape_factor × the training split's range about
    # its centre, the long runs' criterion applied to the data a submitter trains on.
    box = _box(np.asarray(data.train.u, dtype=np.float64), bool(task.pooled_sigma), config.escape_factor)
    metric = _main_score(task)
    variants: dict[str, dict[str, Any]] = {}
    native = _predict(model, u0, times, batch)
    scored = _score(task, native, target, sigma, times, box)
    variants["native"] = {"status": "ok", "description": "as trained", **_variant_numbers(scored), "note": None}
    recorded = (rec.get("items") or {}).get(metric)
    reproduces = None
    if isinstance(recorded, list) and len(recorded) >= n:
        want = np.array([np.inf if v is None else v for v in recorded[:n]], dtype=np.float64)
        reproduces = bool(np.allclose(scored["per_item"], want, rtol=1e-3, atol=1e-6, equal_nan=True))
    can = isinstance(model, ChangesDiscretisation)
    other = _other_method(model)
    plans: dict[str, tuple[str, dict[str, Any], int]] = {
        "half_step": ("step × 0.5", {"step_factor": 0.5}, 1),
        "double_step": ("step × 2, scored every second sample", {"step_factor": 2.0}, 2),
        "other_solver": (f"method {other}", {"method": other}, 1),
    }
    for name, (what, kwargs, stride) in plans.items():
        if not can:
            variants[name] = {"status": "n/a", "description": what, **_NO_NUMBERS, "note": "the model has no with_discretisation"}
            continue
        try:
            variant = model.with_discretisation(**kwargs)
        except (ValueError, TypeError, NotImplementedError) as exc:
            variants[name] = {"status": "n/a", "description": what, **_NO_NUMBERS, "note": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
            continue
        try:
            pred = _predict(variant.eval(), u0, times[::stride], batch)
            s = _score(task, pred, target[:, ::stride], sigma, times[::stride], box)
            variants[name] = {"status": "ok", "description": _describe(variant, what), **_variant_numbers(s), "note": None}
        except Exception as exc:  # noqa: BLE001 - a variant that fails says so; the others still count
            variants[name] = {"status": "failed", "description": what, **_NO_NUMBERS, "note": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    block = {"metric": metric, "n_items": n, "reproduces_record": reproduces, "variants": {k: variants[k] for k in VARIANTS}}
    return block, native[0]


def _decay_rates(task: Any, model64: Any, config: AnalysisConfig) -> dict[str, Any]:
    import torch

    p = task.parameters
    kappa, length = float(p["kappa"]), float(p["length"])
    n_points = int(task.state_shape[-1])
    flow = _flow_of(model64, task.dt, torch.float64)
    tau = config.decay_tau * task.dt
    modes = list(range(min(config.decay_modes, n_points // 2) + 1))
    rates = mode_decay_rates(lambda u: flow(u, config.decay_tau)[:, -1], n_points, modes, tau)
    true = [-kappa * (2 * math.pi * k / length) ** 2 for k in modes]
    scored = [k for k in modes if 1 <= k <= int(p.get("ic_cutoff", config.decay_modes))]
    errors = [abs(r - true[k]) / abs(true[k]) for k in scored if (r := rates[k]) is not None]
    return {
        "k": modes,
        "model": rates,
        "true": true,
        "kappa": kappa,
        "length": length,
        "tau": tau,
        "modes_scored": scored,
        "relative_error": float(np.mean(errors)) if len(errors) == len(scored) and errors else None,
        "linearised_at": "the zero state",
    }


# ----------------------------------------------------------------------------- one record


def _env(threads: int) -> dict[str, Any]:
    import torch

    from ..measure import cpu_model

    return {"python": platform.python_version(), "torch": torch.__version__, "threads": threads, "cpu_model": cpu_model(), "device": "cpu"}


def _run_block(record_file: Path, rec: Mapping[str, Any]) -> dict[str, Any]:
    task = rec.get("task") or {}
    model = rec.get("model") or {}
    weights = record_file.with_name(str(rec.get("weights") or ""))
    return {
        "file": record_file.name,
        "run_id": rec.get("run_id"),
        "task": task.get("name"),
        "task_version": task.get("version"),
        "kind": task.get("kind"),
        "model": model.get("name"),
        "args": dict(model.get("args") or {}),
        "seed": rec.get("seed"),
        "profile": rec.get("profile"),
        "data_sha256": task.get("data_sha256"),
        "weights_sha256": file_sha256(weights) if rec.get("weights") and weights.is_file() else None,
        "reference": bool(model.get("reference", False)),
    }


def _base(record_file: Path, rec: Mapping[str, Any], config: AnalysisConfig | None) -> dict[str, Any]:
    return {
        "schema": ANALYSIS_SCHEMA,
        "analysis_schema_version": ANALYSIS_SCHEMA_VERSION,
        "created": _now(),
        "status": "failed",
        "error": None,
        "traceback": None,
        "seconds": None,
        "run": _run_block(record_file, rec),
        "config": config.to_dict() if config is not None else {},
        "env": {},
        "truth": {},
        "long_run": None,
        "lyapunov": None,
        "robustness": {},
        "decay_rates": None,
        "figures": {"attractor": None, "spacetime": None},
    }


def failed_analysis(record_file: str | os.PathLike[str], error: str, tb: str | None = None, config: AnalysisConfig | None = None) -> dict[str, Any]:
    """A ``failed`` analysis record for the run record in ``record_file``."""
    from ..results import read_record

    path = Path(record_file)
    try:
        rec: Mapping[str, Any] = read_record(path)
    except Exception:  # noqa: BLE001 - the failure may be exactly an unreadable record
        rec = {"run_id": None, "seed": None}
    out = _base(path, rec, config)
    out["run"]["file"] = path.name
    out["error"] = error.strip().splitlines()[0] if error.strip() else "unknown failure"
    out["traceback"] = tb
    return out


def _check_record(rec: Mapping[str, Any], path: Path) -> None:
    if rec.get("status") != "ok":
        raise AnalysisError(f"{path.name}: the run failed ({rec.get('error')}); only ok runs are analysed")
    if (rec.get("task") or {}).get("kind") != "forecast":
        raise AnalysisError(f"{path.name}: a {(rec.get('task') or {}).get('kind')} run; only forecast runs are analysed")
    weights = rec.get("weights")
    if not weights or not (path.parent / str(weights)).is_file():
        raise AnalysisError(f"{path.name}: its weights file {weights or '(none named)'} is not next to it; re-run the job to get them")


def analyse_record(record_file: str | os.PathLike[str], config: AnalysisConfig | None = None, *, cache_dir: str | os.PathLike[str] | None = None, data_dir: str | None = None, threads: int = 1) -> dict[str, Any]:
    """Analyse the run record in ``record_file``; returns the analysis record (not written).

    Raises :class:`AnalysisError` for a record that cannot be analysed; any fault of the
    model while it is analysed propagates (the caller records it as a failure).
    """
    import torch

    from .. import registry
    from ..jobs import load_task_data
    from ..measure import set_threads
    from ..results import read_record

    started = time.perf_counter()
    path = Path(record_file)
    rec = read_record(path)
    _check_record(rec, path)
    set_threads(threads)
    task = registry.load_task(rec["task"]["name"])
    if task.version != rec["task"].get("version"):
        raise AnalysisError(f"{path.name}: made on {task.name} version {rec['task'].get('version')}, the installed task is version {task.version}; re-run the job")
    data, _, _ = load_task_data(task, data_dir, rec["task"].get("data_sha256"))
    config = config or config_for(task)
    out = _base(path, rec, config)
    out["env"] = _env(threads)
    lam = task.lyapunov_exponent
    out["truth"] = {"lyapunov_exponent": lam, "lyapunov_time": task.lyapunov_time, "time_unit": "Lyapunov times" if lam else "time units"}
    torch.manual_seed(int(rec["seed"]))
    model = registry.build_model(rec["model"]["name"], task, rec["model"].get("args") or {})
    _check_same_architecture(path, rec, model)
    state = torch.load(path.with_name(str(rec["weights"])), map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # the architecture the installed code builds from the record's args changed
        raise AnalysisError(
            f"{path.name}: its weights do not fit the {rec['model']['name']!r} model this odebench builds from the record's "
            f"arguments {rec['model'].get('args') or {}} (made by version {rec['model'].get('version')}, perhaps with other defaults: "
            f"{str(exc).splitlines()[0]}); rerun the job, or analyse it with the odebench that made it"
        ) from None
    model.eval()
    out["robustness"], first = _robustness(task, model, rec, data, config)
    if lam and len(task.state_shape) == 1 and task.pooled_sigma:
        stride = max(1, (len(data.times) - 1) // (config.figure_times - 1))
        out["figures"]["spacetime"] = {
            "t": _short_array(np.asarray(data.times)[::stride]),
            "time_unit": "time units",
            "length": float(task.parameters.get("L", task.state_shape[0])),
            "true": _short_array(np.asarray(data.test.u[0], dtype=np.float64)[::stride]),
            "model": _short_array(first[::stride]),
        }
    model64 = _float64(model)
    if lam:
        truth = true_long_runs(task, data, config, cache_dir)
        out["long_run"], out["lyapunov"], figures = _long_run_and_lyapunov(task, model64, data, config, truth)
        out["figures"].update(figures)
    elif task.system == "heat1d":
        out["decay_rates"] = _decay_rates(task, model64, config)
    out["status"] = "ok"
    out["seconds"] = time.perf_counter() - started
    return out


def _check_same_architecture(path: Path, rec: Mapping[str, Any], model: Any) -> None:
    """Refuse a record whose hyperparameters the installed code no longer resolves the same way.

    Weights can load into a changed architecture without error (a wrapper with no parameters
    of its own, such as the flux form, keeps every shape), so the resolved hyperparameters
    are compared: every one the record lists must be equal, and one it does not list (added
    since) must be off (false or none), as it was before it existed.
    """
    built = json.loads(json.dumps(getattr(model, "hparams", None) or {}, default=str))
    recorded = rec["model"].get("hparams") or {}
    changed = sorted(k for k, value in built.items() if (recorded[k] != value if k in recorded else value not in (False, None)))
    if changed:
        shown = ", ".join(f"{k}: record {repr(recorded[k]) if k in recorded else 'absent'}, now {built[k]!r}" for k in changed)
        raise AnalysisError(
            f"{path.name}: the {rec['model']['name']!r} model this odebench builds from the record's arguments "
            f"{rec['model'].get('args') or {}} differs from the one that was trained ({shown}; made by version "
            f"{rec['model'].get('version')}); rerun the job, or analyse it with the odebench that made it"
        )


def analyse_to_file(record_file: str | os.PathLike[str], config_overrides: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """:func:`analyse_record`, then write the analysis (ok or failed) next to the record."""
    from .records import write_analysis

    path = Path(record_file)
    config = None
    try:
        if config_overrides:
            from .. import registry
            from ..results import read_record

            config = config_for(registry.load_task(read_record(path)["task"]["name"]), **dict(config_overrides))
        out = analyse_record(path, config, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every fault becomes a failed analysis record
        out = failed_analysis(path, f"{type(exc).__name__}: {exc}", "".join(traceback.format_exc().splitlines(True)[-25:]), config)
    write_analysis(analysis_path(path), out)
    return out
