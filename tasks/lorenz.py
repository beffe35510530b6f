"""The two Lorenz-63 tasks: forecast the chaotic flow, or tell its dynamical regime from a noisy window.

Policy only (specs, split sizes, seeds, ρ ranges, burn-in, noise, labels); trajectories
come from the Taylor-series integrator of :mod:`.systems.lorenz`, and every classification
window is verified with its regime check there, else redrawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec import TaskSpec
from ._recipe import Recipe, SplitArrays, SplitPlan
from .systems import (
    BETA,
    LORENZ_LAMBDA1,
    REGIME_CHECKS,
    RHO,
    SIGMA,
    lorenz_advance,
    lorenz_initial_states,
    lorenz_solution,
    shows_regime,
)

__all__ = ["REGIMES", "LORENZ_FORECAST", "LORENZ_CLASSIFY", "RECIPES"]

_FORECAST_DT = 0.01
_FORECAST_TIMES = 2501  # 25 time units = 22.6 Lyapunov times, so VPT of a strong model is not capped
_TRANSIENT = 10.0  # time units discarded before a trajectory counts as on the attractor

LORENZ_FORECAST = TaskSpec(
    name="lorenz-forecast",
    version="1.1",
    kind="forecast",
    system="lorenz63",
    state_shape=(3,),
    dt=_FORECAST_DT,
    n_times=_FORECAST_TIMES,
    train_window=51,
    eval_times=tuple(round(k / LORENZ_LAMBDA1, 2) for k in (1, 2, 5, 10)),
    lyapunov_exponent=LORENZ_LAMBDA1,
    parameters={"sigma": SIGMA, "rho": RHO, "beta": BETA, "transient": _TRANSIENT},
    symmetries=("z-rotation",),
    description=(
        "Lorenz-63 at sigma=10, rho=28, beta=8/3 (lambda1=0.9056, one Lyapunov time = 1.10 time units). "
        "From the state at t0, forecast 25 time units (22.6 Lyapunov times) sampled every 0.01. "
        "Initial states lie on the attractor (10 time units of transient discarded); each trajectory is "
        "integrated from its float32-rounded initial state, so the stored first state is exact. "
        "Training uses 0.5-time-unit rollouts cut from 10-time-unit train trajectories. "
        "nRMSE is reported at 1, 2, 5 and 10 Lyapunov times; VPT uses threshold 0.5."
    ),
)


def _forecast_split(spec: TaskSpec, plan: SplitPlan) -> SplitArrays:
    p = spec.parameters
    rng = np.random.default_rng(plan.seed)
    rho = np.full(plan.n, float(p["rho"]))
    start = lorenz_advance(lorenz_initial_states(rng, plan.n, rho), float(p["transient"]), rho)
    # Round the initial state first, then integrate: the stored u[:, 0] is the exact initial state.
    start = start.astype(np.float32).astype(np.float64)
    traj = lorenz_solution(start, spec.dt, plan.n_times, rho, float(p["sigma"]), float(p["beta"]))
    params = np.stack([np.full(plan.n, p["sigma"]), rho, np.full(plan.n, p["beta"])], axis=1)
    return SplitArrays(u=traj.astype(np.float32), t=spec.dt * np.arange(plan.n_times, dtype=np.float64), params=params)


_CLASSIFY_DT = 0.025
_CLASSIFY_TIMES = 101  # a 2.5-time-unit window
_CHECK_EXTENSION = 1.5  # time units simulated past the window to check what the trajectory does
_SUBSTEPS = 2  # internal samples per observation interval, for the regime checks
_MAX_ROUNDS = 8

#: Class name -> rho ranges (one picked at random), burn-in range (time units from a random
#: initial state to the window) and candidates drawn per sample (more where acceptance is low).
#: The periodic class draws from the periodic windows around rho = 160 and 240-360 (every
#: window is checked to be on a closed orbit); rho = 99.96 is left out because random
#: initial states take up to ~60 time units to settle on its cycle.
REGIMES: dict[str, dict[str, Any]] = {
    "fixed-point": {"rho": [(5.0, 13.5)], "burn_in": (0.5, 4.0), "candidates": 1},
    "transient-chaos": {"rho": [(21.0, 23.5)], "burn_in": (1.0, 4.0), "candidates": 6},
    "chaos": {"rho": [(25.0, 32.0)], "burn_in": (6.0, 8.0), "candidates": 1},
    "periodic": {"rho": [(155.0, 165.0), (240.0, 360.0)], "burn_in": (6.0, 8.0), "candidates": 1},
}
if not set(REGIMES) <= set(REGIME_CHECKS):
    raise ValueError(f"REGIMES names {sorted(set(REGIMES) - set(REGIME_CHECKS))}, which no regime check knows: {sorted(REGIME_CHECKS)}")

_NOISE = 0.3

LORENZ_CLASSIFY = TaskSpec(
    name="lorenz-classify",
    version="1.1",
    kind="classify",
    system="lorenz63",
    state_shape=(3,),
    dt=_CLASSIFY_DT,
    n_times=_CLASSIFY_TIMES,
    n_classes=len(REGIMES),
    class_names=tuple(REGIMES),
    parameters={
        "sigma": SIGMA,
        "beta": BETA,
        "regimes": {name: {k: v for k, v in r.items()} for name, r in REGIMES.items()},
        "noise": _NOISE,
        "check_extension": _CHECK_EXTENSION,
    },
    symmetries=("z-rotation",),  # (x, y, z) -> (-x, -y, z) swaps C+ and C-, keeps every regime
    description=(
        "The dynamical regime of a short noisy Lorenz-63 window (sigma=10, beta=8/3; 101 samples 0.025 apart, "
        "2.5 time units): fixed-point (rho in [5, 13.5], spiralling into C+ or C-), transient-chaos (rho in "
        "[21, 23.5], still wandering between the lobes although no chaotic attractor exists and it will settle "
        "on C+-), chaos (rho in [25, 32], on the strange attractor) and periodic (rho in [155, 165] or [240, 360], "
        "on a stable limit cycle). Every window is checked, on its clean trajectory and 1.5 time units beyond, "
        "to show its class's behaviour (fixed-point: no lobe change and the distance to C+- shrinks by >= 10 %; "
        "transient-chaos: changes lobe again after the window; chaos: not periodic; periodic: its Poincare "
        "section points repeat to 1 %), else redrawn. Shortcuts removed on purpose: the position of C+- and the "
        "amplitude both grow with rho, so each window is standardised per component (window mean 0, standard "
        "deviation 1) before Gaussian noise of standard deviation 0.3 is added; what remains is the shape and "
        "time scale of the motion (the rotation frequency grows with rho, which is physics and kept). So "
        "transient-chaos and chaos are told apart partly by their regime and partly by that rho-dependent time "
        "scale: their rho ranges do not overlap, and a classifier may separate them by how fast the window "
        "turns rather than by whether the motion would last."
    ),
)


def _draw_rho(rng: np.random.Generator, ranges: list[tuple[float, float]], n: int) -> np.ndarray:
    which = rng.integers(0, len(ranges), n)
    lo = np.array([r[0] for r in ranges])[which]
    hi = np.array([r[1] for r in ranges])[which]
    return rng.uniform(lo, hi)


def _classify_split(spec: TaskSpec, plan: SplitPlan) -> SplitArrays:
    """Balanced classes; every window is checked to show its class's behaviour, else redrawn."""
    p = spec.parameters
    rng = np.random.default_rng(plan.seed)
    names = list(spec.class_names)
    labels = rng.permutation(np.arange(plan.n) % len(names))
    fine_dt = spec.dt / _SUBSTEPS
    n_fine = _SUBSTEPS * (plan.n_times - 1) + 1
    n_ext = int(round(float(p["check_extension"]) / fine_dt))
    rho_out = np.full(plan.n, np.nan)
    burn_out = np.zeros(plan.n)
    start_out = np.zeros((plan.n, 3))
    clean = np.zeros((plan.n, plan.n_times, 3))
    pending = np.arange(plan.n)
    for attempt in range(_MAX_ROUNDS):
        if not pending.size:
            break
        # Several candidates per missing sample (more where acceptance is low): the cost of a
        # batch is set by its number of steps far more than by its number of trajectories.
        per_class = np.array([int(p["regimes"][name]["candidates"]) for name in names])
        cand = np.repeat(pending, per_class[labels[pending]] * 2 ** min(attempt, 5))
        cls = labels[cand]
        rho = np.empty(cand.size)
        burn = np.empty(cand.size)
        for c, name in enumerate(names):
            sel = cls == c
            regime = p["regimes"][name]
            rho[sel] = _draw_rho(rng, [tuple(r) for r in regime["rho"]], int(sel.sum()))
            lo, hi = regime["burn_in"]
            burn[sel] = fine_dt * np.round(rng.uniform(lo, hi, int(sel.sum())) / fine_dt)
        u0 = lorenz_initial_states(rng, cand.size, rho)
        first = np.round(burn / fine_dt).astype(int)
        traj = lorenz_solution(u0, fine_dt, int(first.max()) + n_fine + n_ext, rho, p["sigma"], p["beta"], max_step=fine_dt)
        for j, i in enumerate(cand):
            if not np.isnan(rho_out[i]):
                continue
            segment = traj[j, first[j] : first[j] + n_fine + n_ext]
            if shows_regime(names[labels[i]], segment, rho[j], fine_dt, n_fine):
                rho_out[i], burn_out[i], start_out[i] = rho[j], burn[j], segment[0]
                clean[i] = segment[:n_fine:_SUBSTEPS]
        pending = np.nonzero(np.isnan(rho_out))[0]
    if pending.size:
        missing = sorted({names[c] for c in labels[pending]})
        raise RuntimeError(f"no trajectory showing regime(s) {missing} after {_MAX_ROUNDS} rounds; widen their rho ranges")
    mean = clean.mean(axis=1)
    std = clean.std(axis=1)
    noise = float(p["noise"]) * rng.standard_normal(clean.shape)
    u = (clean - mean[:, None]) / std[:, None] + noise
    params = np.column_stack([rho_out, burn_out, start_out, mean, std])
    return SplitArrays(u=u.astype(np.float32), t=spec.dt * np.arange(plan.n_times, dtype=np.float64), params=params, y=labels.astype(np.int64))


_GENERATOR = (
    "odebench.tasks.lorenz: Taylor series summed to float64 rounding (adaptive order; fixed step 0.01, "
    "0.0125 for the classification windows), float64, stored as float32"
)

RECIPES: dict[str, Recipe] = {
    LORENZ_FORECAST.name: Recipe(
        spec=LORENZ_FORECAST,
        splits={
            "train": SplitPlan(64, 1001, 2101),
            "val": SplitPlan(16, 1001, 2102),
            "test": SplitPlan(64, _FORECAST_TIMES, 2103),
        },
        generate=_forecast_split,
        generator=_GENERATOR,
        extra_attrs={"param_names": ["sigma", "rho", "beta"]},
        seconds_per_sample=6e-6,  # measured on one core, for scheduling only
    ),
    LORENZ_CLASSIFY.name: Recipe(
        spec=LORENZ_CLASSIFY,
        splits={
            "train": SplitPlan(512, _CLASSIFY_TIMES, 2201),
            "val": SplitPlan(128, _CLASSIFY_TIMES, 2202),
            "test": SplitPlan(256, _CLASSIFY_TIMES, 2203),
        },
        generate=_classify_split,
        generator=_GENERATOR,
        extra_attrs={
            "param_names": ["rho", "burn_in", "x_start", "y_start", "z_start", "mean_x", "mean_y", "mean_z", "std_x", "std_y", "std_z"]
        },
        seconds_per_sample=2.7e-5,  # measured on one core, for scheduling only
    ),
}
