"""Lorenz-63: an exact-to-rounding batched integrator, λ1, and the two Lorenz tasks.

ẋ = σ(y − x), ẏ = x(ρ − z) − y, ż = xy − βz. The vector field is quadratic, so its
Taylor coefficients follow from a short recurrence (Cauchy products); summing the series
until its terms fall below float64 rounding gives a fixed-step integrator whose error over
one time unit is that of the float64 arithmetic itself (about 1e-11 against DOP853 at
rtol = atol = 1e-13, where RK4 at h = 0.01 is ~1e-3 off), vectorised over trajectories.
The order adapts per step to the largest state of the batch, so every ρ used here
(up to 500 checked) needs no tuning.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..spec import TaskSpec
from ._recipe import Recipe, SplitArrays, SplitPlan

__all__ = [
    "SIGMA",
    "RHO",
    "BETA",
    "LAMBDA1",
    "lorenz_rhs",
    "lorenz_solution",
    "lorenz_fixed_points",
    "lorenz_lyapunov",
    "lobe_switch_times",
    "is_periodic",
    "REGIMES",
    "LORENZ_FORECAST",
    "LORENZ_CLASSIFY",
    "RECIPES",
]

SIGMA = 10.0
RHO = 28.0
BETA = 8.0 / 3.0
#: Largest Lyapunov exponent at the classic parameters (SCIENCE reference; `lorenz_lyapunov` reproduces it).
LAMBDA1 = 0.9056

_MAX_ORDER = 40
_TOL = 1e-16  # series terms below this (relative to the state) are beyond float64 rounding


def lorenz_rhs(u: np.ndarray, rho: float | np.ndarray = RHO, sigma: float = SIGMA, beta: float = BETA) -> np.ndarray:
    """The vector field at states ``u`` of shape ``(..., 3)``; ``rho`` broadcasts over ``...``."""
    u = np.asarray(u, dtype=np.float64)
    if u.shape[-1:] != (3,):
        raise ValueError(f"u must have shape (..., 3), got {u.shape}")
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=-1)


def _taylor_step(state: np.ndarray, rho: np.ndarray, sigma: float, beta: float, h: float) -> np.ndarray:
    """One step of length ``h`` for states ``(3, n)``: the Taylor series summed to rounding."""
    n = state.shape[1]
    c = np.empty((_MAX_ORDER + 1, 3, n))
    c[0] = state
    xy_xz = np.empty((2, n))
    threshold = _TOL * max(1.0, float(np.abs(state).max()))
    hk, small = 1.0, 0
    for k in range(_MAX_ORDER):
        x, y, z = c[k]
        # Coefficient k of (xy, xz) is the Cauchy product sum_j x_j (y, z)_{k-j}.
        np.einsum("jn,jcn->cn", c[: k + 1, 0], c[k::-1, 1:], out=xy_xz)
        nxt = c[k + 1]
        np.subtract(y, x, out=nxt[0])
        nxt[0] *= sigma
        np.multiply(rho, x, out=nxt[1])
        nxt[1] -= y
        nxt[1] -= xy_xz[1]
        np.multiply(z, -beta, out=nxt[2])
        nxt[2] += xy_xz[0]
        nxt *= 1.0 / (k + 1)
        hk *= h
        # Two consecutive negligible terms: a single small one may be an accidental zero.
        small = small + 1 if float(np.abs(nxt).max()) * hk <= threshold else 0
        if small == 2:
            break
    else:
        raise ValueError(f"the Taylor series did not converge within {_MAX_ORDER} terms at step {h}; lower max_step")
    out = c[k + 1].copy()
    for j in range(k, -1, -1):
        out *= h
        out += c[j]
    return out


def _check_state(u0: np.ndarray) -> np.ndarray:
    u0 = np.asarray(u0, dtype=np.float64)
    if u0.ndim not in (1, 2) or u0.shape[-1] != 3:
        raise ValueError(f"u0 must have shape (3,) or (n, 3), got {u0.shape}; stack trajectories along axis 0")
    if not np.all(np.isfinite(u0)):
        raise ValueError("u0 contains NaN or Inf")
    return u0


def lorenz_solution(
    u0: np.ndarray,
    dt: float,
    n_times: int,
    rho: float | np.ndarray = RHO,
    sigma: float = SIGMA,
    beta: float = BETA,
    max_step: float = 0.01,
) -> np.ndarray:
    """States at ``t = dt · arange(n_times)`` from ``u0`` (``(n, 3)`` → ``(n, n_times, 3)``; ``(3,)`` → ``(n_times, 3)``).

    ``rho`` is a scalar or one value per trajectory. Each output interval is split into
    ``ceil(dt / max_step)`` equal Taylor steps; ``max_step = 0.01`` converges for every ρ
    up to at least 500 (a step too long for the series raises ``ValueError``).
    """
    u0 = _check_state(u0)
    single = u0.ndim == 1
    states = np.atleast_2d(u0)
    n = states.shape[0]
    if not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"dt must be positive and finite, got {dt}")
    if int(n_times) < 1:
        raise ValueError(f"n_times must be >= 1, got {n_times}")
    if not max_step > 0:
        raise ValueError(f"max_step must be positive, got {max_step}")
    rho_arr = np.asarray(rho, dtype=np.float64)
    if rho_arr.shape not in ((), (n,)) or not np.all(np.isfinite(rho_arr)):
        raise ValueError(f"rho must be a finite scalar or have one value per trajectory, shape ({n},); got shape {rho_arr.shape}")
    rho_arr = np.broadcast_to(rho_arr, (n,)).copy()
    substeps = max(1, math.ceil(dt / max_step - 1e-9))
    h = dt / substeps
    s = states.T.copy()
    out = np.empty((int(n_times), 3, n))
    out[0] = s
    for i in range(1, int(n_times)):
        for _ in range(substeps):
            s = _taylor_step(s, rho_arr, float(sigma), float(beta), h)
        out[i] = s
    traj = out.transpose(2, 0, 1)
    return traj[0] if single else np.ascontiguousarray(traj)


def _advance(u0: np.ndarray, duration: float, rho: float | np.ndarray, max_step: float = 0.01) -> np.ndarray:
    """The states ``duration`` time units after ``u0`` (``(n, 3)``)."""
    if duration <= 0:
        return np.array(u0, dtype=np.float64)
    return lorenz_solution(u0, duration, 2, rho, max_step=max_step)[:, -1]


def lorenz_fixed_points(rho: float | np.ndarray, beta: float = BETA) -> np.ndarray:
    """C+ = (√(β(ρ−1)), √(β(ρ−1)), ρ−1) for ρ > 1, shape ``(..., 3)``; C− is its mirror in x and y."""
    rho = np.asarray(rho, dtype=np.float64)
    if np.any(rho <= 1):
        raise ValueError("C± exist only for rho > 1")
    r = np.sqrt(beta * (rho - 1.0))
    return np.stack([r, r, rho - 1.0], axis=-1)


def _random_initial_states(rng: np.random.Generator, n: int, rho: np.ndarray) -> np.ndarray:
    """Points in a box around the attractor, scaled with √ρ so that every ρ starts comparably."""
    scale = np.sqrt(np.asarray(rho) / RHO)
    box = np.stack([rng.uniform(-15.0, 15.0, n), rng.uniform(-20.0, 20.0, n), rng.uniform(5.0, 40.0, n)], axis=-1)
    box[:, :2] *= scale[:, None]
    box[:, 2] = box[:, 2] * scale + (rho - RHO)
    return box


def lorenz_lyapunov(
    n_trajectories: int = 16,
    duration: float = 100.0,
    rho: float = RHO,
    sigma: float = SIGMA,
    beta: float = BETA,
    seed: int = 0,
    transient: float = 10.0,
    renormalise_every: float = 0.1,
    separation: float = 1e-8,
) -> float:
    """Largest Lyapunov exponent by Benettin's twin-trajectory method, averaged over trajectories.

    Each trajectory on the attractor gets a twin ``separation`` away; every
    ``renormalise_every`` time units the log-growth of their distance is accumulated and
    the twin is pulled back along the separation. The first 5 time units align the
    separation with the most unstable direction and are not counted.
    """
    if n_trajectories < 1 or duration <= 0 or renormalise_every <= 0 or not 0 < separation < 1e-3:
        raise ValueError("need n_trajectories >= 1, duration > 0, renormalise_every > 0 and 0 < separation < 1e-3")
    rng = np.random.default_rng(seed)
    rho_arr = np.full(n_trajectories, float(rho))
    base = _advance(_random_initial_states(rng, n_trajectories, rho_arr), transient, rho_arr)
    direction = rng.standard_normal(base.shape)
    twin = base + separation * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    pair = np.concatenate([base, twin])
    rho2 = np.concatenate([rho_arr, rho_arr])
    align = int(round(5.0 / renormalise_every))
    count = int(round(duration / renormalise_every))
    log_growth = np.zeros(n_trajectories)
    for i in range(align + count):
        pair = lorenz_solution(pair, renormalise_every, 2, rho2, sigma, beta)[:, -1]
        delta = pair[n_trajectories:] - pair[:n_trajectories]
        dist = np.linalg.norm(delta, axis=1)
        if i >= align:
            log_growth += np.log(dist / separation)
        pair[n_trajectories:] = pair[:n_trajectories] + delta * (separation / dist)[:, None]
    return float(np.mean(log_growth) / (count * renormalise_every))


def lobe_switch_times(traj: np.ndarray, dt: float) -> list[np.ndarray]:
    """Per trajectory ``(n, T, 3)``: the sample times at which x changes sign (the orbit changes lobe)."""
    x = np.asarray(traj)[..., 0]
    switched = np.signbit(x[:, 1:]) != np.signbit(x[:, :-1])
    return [dt * (np.nonzero(row)[0] + 1) for row in switched]


def is_periodic(traj: np.ndarray, rho: float, dt: float, tol: float = 1e-2) -> bool:
    """Whether a trajectory ``(T, 3)`` sampled every ``dt`` is on a closed orbit.

    The upward crossings of the plane z = ρ − 1 (linearly interpolated) must repeat with
    some period of q crossings to within ``tol`` times the orbit's size, and the segment
    must hold at least two periods.
    """
    traj = np.asarray(traj, dtype=np.float64)
    z = traj[:, 2] - (rho - 1.0)
    idx = np.nonzero((z[:-1] < 0) & (z[1:] >= 0))[0]
    if len(idx) < 3:
        return False
    w = (-z[idx] / (z[idx + 1] - z[idx]))[:, None]
    points = (traj[idx] * (1.0 - w) + traj[idx + 1] * w)[:, :2]
    scale = tol * float(np.abs(traj).max())
    for q in range(1, len(points) // 2 + 1):
        if np.all(np.linalg.norm(points[q:] - points[:-q], axis=1) <= scale):
            return True
    return False


# --------------------------------------------------------------------------- tasks

_FORECAST_DT = 0.01
_FORECAST_TIMES = 2501  # 25 time units = 22.6 Lyapunov times, so VPT of a strong model is not capped
_TRANSIENT = 10.0  # time units discarded before a trajectory counts as on the attractor

LORENZ_FORECAST = TaskSpec(
    name="lorenz-forecast",
    version="1.0",
    kind="forecast",
    system="lorenz63",
    state_shape=(3,),
    dt=_FORECAST_DT,
    n_times=_FORECAST_TIMES,
    train_window=51,
    eval_times=tuple(round(k / LAMBDA1, 2) for k in (1, 2, 5, 10)),
    lyapunov_exponent=LAMBDA1,
    parameters={"sigma": SIGMA, "rho": RHO, "beta": BETA, "transient": _TRANSIENT},
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
    start = _advance(_random_initial_states(rng, plan.n, rho), float(p["transient"]), rho)
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
_NOISE = 0.3

LORENZ_CLASSIFY = TaskSpec(
    name="lorenz-classify",
    version="1.0",
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
        "time scale of the motion (the rotation frequency grows with rho, which is physics and kept)."
    ),
)


def _draw_rho(rng: np.random.Generator, ranges: list[tuple[float, float]], n: int) -> np.ndarray:
    which = rng.integers(0, len(ranges), n)
    lo = np.array([r[0] for r in ranges])[which]
    hi = np.array([r[1] for r in ranges])[which]
    return rng.uniform(lo, hi)


def _shows_regime(regime: str, segment: np.ndarray, rho: float, dt: float, n_window: int) -> bool:
    """Whether a clean segment (window of ``n_window`` samples, then the extension) does what ``regime`` says.

    fixed-point: no change of lobe, and the distance to the nearer of C± shrinks over the
    window by at least 10 %; transient-chaos: still wandering, i.e. it changes lobe again
    after the window, and not periodic; chaos: not periodic; periodic: a closed orbit.
    """
    if regime == "fixed-point":
        if lobe_switch_times(segment[None], dt)[0].size:
            return False
        centre = lorenz_fixed_points(rho) * np.array([np.sign(segment[0, 0]), np.sign(segment[0, 0]), 1.0])
        dist = np.linalg.norm(segment[:n_window] - centre, axis=1)
        return bool(dist[-1] < 0.9 * dist[0])
    if regime == "transient-chaos":
        after = lobe_switch_times(segment[None], dt)[0]
        return bool(np.any(after > dt * (n_window - 1))) and not is_periodic(segment, rho, dt)
    if regime == "chaos":
        return not is_periodic(segment, rho, dt)
    if regime == "periodic":
        return is_periodic(segment, rho, dt)
    raise ValueError(f"unknown regime {regime!r}; known: {sorted(REGIMES)}")


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
        u0 = _random_initial_states(rng, cand.size, rho)
        first = np.round(burn / fine_dt).astype(int)
        traj = lorenz_solution(u0, fine_dt, int(first.max()) + n_fine + n_ext, rho, p["sigma"], p["beta"], max_step=fine_dt)
        for j, i in enumerate(cand):
            if not np.isnan(rho_out[i]):
                continue
            segment = traj[j, first[j] : first[j] + n_fine + n_ext]
            if _shows_regime(names[labels[i]], segment, rho[j], fine_dt, n_fine):
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
    ),
}
