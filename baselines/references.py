"""References: what is achievable on a task, registered and run like any other model.

They are not learned models to rank; each factory carries ``reference = True`` so the
leaderboard can show them apart. They tell a reader where the ceiling is.

* ``exact`` (forecast): the task's own system integrated from the given ``u0`` in
  float64: heat by its exact Fourier solution, Lorenz-63 by the Taylor-series integrator
  the data were made with (same step, summed to float64 rounding), Kuramoto–Sivashinsky
  by ETDRK4 at the data's step 0.005 (converged over the 200-time-unit horizon: halving
  it changes no test trajectory by more than 5e-3 nRMSE). No parameters; NFE 0, since it evaluates no learned vector field.
* ``perturbed-exact`` (forecast): ``exact`` started from ``u0 + δ · std(u0) · N(0, 1)``
  (δ = 1e-6 by default, a fixed noise seed): the practical limit of predictability, about
  ln(ε/δ)/λ1 minus O(1), ≈ 11 Lyapunov times on Lorenz-63.
* ``physics-features`` (classify): fixed, non-learned physics features of the window and
  a linear head, the only trainable part, which the harness trains like any model. Heat:
  the fit of the exact decay of the Fourier modes with each class's diffusivity, and
  the fitted diffusivity. Lorenz-63: time scales of each component.
  KS: time scales of the Fourier modes and the PDE's two coefficients fitted to the
  window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..spec import HyperParameter, TaskSpec, UnsupportedTaskError
from ..tasks.systems import KuramotoSivashinsky, heat_solution, lorenz_solution
from ..toolkit import check_forecast_input, check_window, for_kind, nonnegative_int, positive_float

__all__ = [
    "KS_STEP",
    "LORENZ_STEP",
    "ExactForecaster",
    "PhysicsFeatureClassifier",
    "build_exact",
    "build_perturbed_exact",
    "build_physics_features",
]

#: ETDRK4 step on KS, that of the ks-forecast data (versions 1.1 and 1.2): 0.005 and 0.0025 agree to
#: nRMSE 1e-2 on every test trajectory at t ≤ 200 and 1e-3 at t ≤ 150 (L = 22, N = 64); version 1.0's
#: 0.05 was ≈ 0.2 off.
KS_STEP = 0.005
#: Largest Taylor step on Lorenz-63, the data generator's (the series is summed to rounding).
LORENZ_STEP = 0.01


# ----------------------------------------------------------------------------- the time grid


def _time_grid(task: TaskSpec, t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The times ``t - t[0]`` in float64 and the interval lengths between them.

    Times within float32 rounding of a multiple of ``task.dt`` are snapped to it (the
    harness passes the task's grid as float32), and intervals between snapped times are
    whole multiples of ``dt``, so the integrators step exactly as the data generator did.
    """
    times = t.detach().to("cpu", torch.float64).numpy()
    times = times - times[0]
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
        raise ValueError("t must be finite and non-decreasing: the reference integrates forward in time only")
    k = np.round(times / task.dt)
    snapped = np.abs(times - k * task.dt) <= 1e-6 * np.maximum(np.abs(times), task.dt)
    times = np.where(snapped, k * task.dt, times)
    steps = np.diff(times)
    both = snapped[1:] & snapped[:-1]
    steps[both] = np.diff(k)[both] * task.dt
    return times, steps


def _runs(steps: np.ndarray) -> list[tuple[float, int]]:
    """Consecutive equal intervals as ``(length, count)``."""
    out: list[tuple[float, int]] = []
    for s in steps.tolist():
        if out and out[-1][0] == s:
            out[-1] = (s, out[-1][1] + 1)
        else:
            out.append((s, 1))
    return out


# ----------------------------------------------------------------------------- the integrators

#: ``solve(u0 (B, *state) float64, times (T,), steps (T - 1,)) -> (B, T, *state) float64``.
Solve = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _heat(task: TaskSpec, max_step: float | None) -> Solve:
    if max_step is not None:
        raise ValueError("max_step does not apply to heat: its Fourier solution is exact at any time")
    p = task.parameters
    kappa, length = float(p["kappa"]), float(p["length"])

    def solve(u0: np.ndarray, times: np.ndarray, steps: np.ndarray) -> np.ndarray:
        out: np.ndarray = heat_solution(u0, kappa, length, times)
        return out

    return solve


def _lorenz(task: TaskSpec, max_step: float | None) -> Solve:
    p = task.parameters
    rho, sigma, beta = float(p["rho"]), float(p["sigma"]), float(p["beta"])
    step = LORENZ_STEP if max_step is None else max_step

    def solve(u0: np.ndarray, times: np.ndarray, steps: np.ndarray) -> np.ndarray:
        parts = [u0[:, None]]
        state = u0
        for length, count in _runs(steps):
            if length == 0:
                parts.append(np.repeat(state[:, None], count, axis=1))
                continue
            traj = lorenz_solution(state, length, count + 1, rho, sigma, beta, max_step=step)
            parts.append(traj[:, 1:])
            state = traj[:, -1]
        return np.concatenate(parts, axis=1)

    return solve


def _ks(task: TaskSpec, max_step: float | None) -> Solve:
    p = task.parameters
    system = KuramotoSivashinsky(float(p["L"]), int(p["N"]), float(p.get("nu", 1.0)))
    step = KS_STEP if max_step is None else max_step

    def solve(u0: np.ndarray, times: np.ndarray, steps: np.ndarray) -> np.ndarray:
        out = np.empty((u0.shape[0], times.size, u0.shape[1]))
        out[:, 0] = u0
        v = system.to_fourier(u0)
        for i, length in enumerate(steps.tolist()):
            if length > 0:
                n = max(1, math.ceil(length / step - 1e-9))
                v = system.stepper(length / n).advance(v, n)  # coefficients computed once per step length
            out[:, i + 1] = system.to_physical(v)
        return out

    return solve


#: Keyed by ``TaskSpec.system``: ``make(task, max_step) -> solve``.
_SYSTEMS: dict[str, Callable[[TaskSpec, float | None], Solve]] = {"heat1d": _heat, "lorenz63": _lorenz, "ks1d": _ks}


def _solver_for(task: TaskSpec, model: str, max_step: float | None) -> Solve:
    if task.system not in _SYSTEMS:
        raise UnsupportedTaskError(f"{model} knows the systems {', '.join(_SYSTEMS)}; task {task.name!r} is system {task.system!r}")
    return _SYSTEMS[task.system](task, max_step)


class ExactForecaster(nn.Module):
    """``forward(u0, t)``: the true system from ``u0`` (optionally perturbed) at the times ``t``.

    Integrates in float64 NumPy and returns float32 on ``u0``'s device (float64 for a
    float64 ``u0``, as a tangent computed by finite differences needs). With
    ``perturbation`` δ > 0 it starts from ``u0 + δ · std(u0) · N(0, 1)``, the standard
    deviation taken over each state and the noise drawn afresh from ``seed`` at every call,
    so item ``i`` of a batch always gets the same noise.
    """

    def __init__(self, task: TaskSpec, solve: Solve, hparams: dict[str, object], perturbation: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        self.task = task
        self.solve = solve
        self.perturbation = perturbation
        self.seed = seed
        self.hparams = hparams
        self.nfe = 0  # no learned vector field: nothing to count

    def with_discretisation(self, step_factor: float = 1.0, method: str | None = None) -> ExactForecaster:
        """The same system integrated with its largest step multiplied by ``step_factor``
        (the optional discretisation contract of :mod:`odebench.spec`).

        Heat has no step (its Fourier solution is exact at any time) and no integrator
        takes another ``method``: both are refused with ``ValueError``.
        """
        step = self.hparams.get("max_step")
        if method is not None:
            raise ValueError(f"the exact reference integrates {self.task.system} with its own scheme; it has no method={method!r} to switch to")
        if not isinstance(step, float):
            raise ValueError(f"the exact reference of {self.task.system} has no step to change: its solution is exact at any time")
        new_step = step * positive_float("step_factor", step_factor)
        hparams = {**self.hparams, "max_step": new_step}
        return ExactForecaster(self.task, _solver_for(self.task, "exact", new_step), hparams, self.perturbation, self.seed)

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_forecast_input(self.task, u0, t)
        times, steps = _time_grid(self.task, t)
        start = u0.detach().to("cpu", torch.float64).numpy()
        if self.perturbation:
            flat = start.reshape(start.shape[0], -1)
            scale = flat.std(axis=1)
            scale = np.where(scale > 0, scale, 1.0)  # a constant state: perturb in absolute units
            noise = np.random.default_rng(self.seed).standard_normal(flat.shape)
            start = (flat + self.perturbation * scale[:, None] * noise).reshape(start.shape)
        out = self.solve(start, times, steps)
        dtype = torch.float64 if u0.dtype == torch.float64 else torch.float32
        return torch.as_tensor(out, dtype=dtype, device=u0.device)


def _max_step(value: Any) -> float | None:
    return None if value is None else positive_float("max_step", value)


def _exact_hparams(task: TaskSpec, max_step: float | None) -> dict[str, object]:
    defaults = {"heat1d": None, "lorenz63": LORENZ_STEP, "ks1d": KS_STEP}
    return {"max_step": defaults.get(task.system) if max_step is None else max_step}


def build_exact(task: TaskSpec, *, max_step: float | None = None) -> nn.Module:
    """The true system integrated from ``u0``; forecast tasks of heat1d, lorenz63 and ks1d."""
    for_kind(task, {"forecast": ExactForecaster}, "exact")
    step = _max_step(max_step)
    return ExactForecaster(task, _solver_for(task, "exact", step), _exact_hparams(task, step))


def build_perturbed_exact(task: TaskSpec, *, perturbation: float = 1e-6, seed: int = 0, max_step: float | None = None) -> nn.Module:
    """``exact`` from an initial state perturbed by the relative ``perturbation``."""
    for_kind(task, {"forecast": ExactForecaster}, "perturbed-exact")
    step = _max_step(max_step)
    delta = positive_float("perturbation", perturbation)
    seed = nonnegative_int("seed", seed)
    hparams = {**_exact_hparams(task, step), "perturbation": delta, "seed": seed}
    return ExactForecaster(task, _solver_for(task, "perturbed-exact", step), hparams, delta, seed)


# ----------------------------------------------------------------------------- physics features


def _affine(values: torch.Tensor, centre: float, scale: float) -> torch.Tensor:
    return (values - centre) / scale


class _Features:
    """Fixed features of a window ``(batch, n_times, *state)`` (float64) -> ``(batch, size)``.

    Where a group is shifted and scaled, the constants are its typical centre and spread
    on the training split, rounded. An affine map of its inputs changes nothing a linear
    head can represent; it only puts every feature on an O(1) scale for the harness's
    optimiser.
    """

    size: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _HeatFeatures(_Features):
    """How well the exact decay law fits the window with each class's diffusivity, and the fitted κ.

    Mode k of the solution is û_k(t) = û_k(0) exp(−κ q_k² t), for the modes 1..``ic_cutoff``
    that the initial fields carry. For each class diffusivity κ_c the amplitudes û_k(0) are
    fitted by least squares; the explained energy over the noise variance of a coefficient
    is the log-likelihood of κ_c up to a constant (shown relative to the best class, floored
    at −100). The second feature is the diffusivity fitted to the log-amplitudes: each mode
    is read along its window-mean phase (heat never turns a mode's phase), floored at the
    noise level, and log-amplitude against t is fitted with one slope −κ q_k² shared by all
    modes, weighted by amplitude² (the inverse variance of a log of noisy data); it enters
    as log2(κ / the geometric mean of the class diffusivities).
    """

    def __init__(self, task: TaskSpec) -> None:
        p = task.parameters
        if "kappas" not in p:
            raise ValueError(f"heat features need the class diffusivities, parameters['kappas'], in task {task.name!r}")
        self.kappas = np.asarray(p["kappas"], dtype=np.float64)
        self.modes = int(p.get("ic_cutoff", 5))
        n_points = int(task.state_shape[0])
        if not 1 <= self.modes < n_points // 2:
            raise ValueError(f"heat features need 1 <= ic_cutoff < {n_points // 2}, got {self.modes}")
        self.kappa_ref = float(np.exp(np.log(self.kappas).mean()))
        self.q2 = (2 * math.pi * np.arange(1, self.modes + 1) / float(p["length"])) ** 2
        # White noise of standard deviation s puts variance N s² / 2 in each real component
        # of an rfft coefficient; a tiny floor stands in for noise-free data.
        self.floor = max(float(p.get("noise", 0.0)) * math.sqrt(n_points / 2), 1e-6)
        self.times = task.dt * np.arange(task.n_times)
        self.size = self.kappas.size + 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.fft.rfft(x, dim=-1)[..., 1 : self.modes + 1]  # (B, T, K)
        t = torch.as_tensor(self.times, dtype=x.dtype, device=x.device)[None, :, None]
        q2 = torch.as_tensor(self.q2, dtype=x.dtype, device=x.device)
        return torch.cat([self._likelihood(z, t, q2), self._fitted(z, t, q2)], dim=1)

    def _likelihood(self, z: torch.Tensor, t: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
        kappas = torch.as_tensor(self.kappas, dtype=t.dtype, device=t.device)
        decay = torch.exp(-kappas[:, None, None] * q2 * t[0])  # (C, T, K)
        projected = torch.einsum("btk,ctk->bck", z, decay.to(z.dtype)).abs() ** 2
        explained = (projected / (decay * decay).sum(1)).sum(-1) / (2 * self.floor**2)  # (B, C)
        return (explained - explained.max(1, keepdim=True).values).clamp_min(-100.0)

    def _fitted(self, z: torch.Tensor, t: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
        mean = z.mean(dim=1, keepdim=True)
        phase = mean / mean.abs().clamp_min(1e-300)
        amp = (z * phase.conj()).real.clamp_min(self.floor)
        y, w = amp.log(), amp * amp
        tw = (w * t).sum(1, keepdim=True) / w.sum(1, keepdim=True)
        yw = (w * y).sum(1, keepdim=True) / w.sum(1, keepdim=True)
        sxy = (w * (t - tw) * (y - yw)).sum(1)  # (B, K)
        sxx = (w * (t - tw) ** 2).sum(1)
        kappa = -(q2 * sxy).sum(1, keepdim=True) / (q2 * q2 * sxx).sum(1, keepdim=True)
        return torch.log2(kappa.clamp_min(self.kappa_ref / 64) / self.kappa_ref)


class _LorenzFeatures(_Features):
    """Time scales of each standardised component.

    Autocorrelation at lags from 0.025 to 1.2 time units (the rotation period about C± is
    ~0.6-0.7 at ρ = 28 and shrinks as ρ grows), the zero-crossing rate of a 5-sample
    moving average (lobe changes of x and y, half-turns of z), the mean absolute increment
    per sample, and log(std of the second half / std of the first), which is negative for
    a spiral into C±.
    """

    LAGS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.2)  # time units
    SMOOTH = 5

    def __init__(self, task: TaskSpec) -> None:
        lags = sorted({max(1, round(lag / task.dt)) for lag in self.LAGS})
        if lags[-1] >= task.n_times - 1 or task.n_times < 2 * self.SMOOTH:
            raise ValueError(f"lorenz features need windows longer than {lags[-1] + 1} samples of {task.dt:g}; task {task.name!r} has {task.n_times}")
        self.lags = lags
        self.size = 3 * (len(lags) + 3)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        z = x - x.mean(dim=1, keepdim=True)
        z = z / z.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
        n = z.shape[1]
        acf = torch.stack([(z[:, lag:] * z[:, : n - lag]).mean(1) for lag in self.lags], dim=1).flatten(1)
        kernel = torch.full((1, 1, self.SMOOTH), 1.0 / self.SMOOTH, dtype=z.dtype, device=z.device)
        smooth = torch.nn.functional.conv1d(z.transpose(1, 2).reshape(-1, 1, n), kernel).reshape(z.shape[0], 3, -1)
        crossings = (torch.signbit(smooth[..., 1:]) != torch.signbit(smooth[..., :-1])).to(z.dtype).mean(-1)
        increment = (z[:, 1:] - z[:, :-1]).abs().mean(1)
        half = n // 2
        damping = torch.log(z[:, half:].std(1).clamp_min(1e-12) / z[:, :half].std(1).clamp_min(1e-12))
        return torch.cat([_affine(acf, 0.5, 0.5), _affine(crossings, 0.05, 0.05), _affine(increment, 0.4, 0.1), _affine(damping, 0.0, 0.5)], dim=1)


class _KSFeatures(_Features):
    """Time scales of the Fourier modes and the PDE's coefficients fitted to the window.

    For modes k = 1..6 (rfft/√N, so white noise of standard deviation s has power s²):
    the autocorrelation at lags of 1-10 samples (the real part of the lagged product,
    unbiased by the noise, over the noise-corrected power), the log noise-corrected power,
    and the log ratio of the power of temporal increments to the power. Then the
    equation: a window of class c standardised by its clean std σ obeys
    u_t = −σ u u_x − c (u_xx + u_xxxx), so the increments of modes 1..3 are fitted by
    least squares to the trapezoidal averages of the linear and the nonlinear term (the
    field low-passed to modes 1..6 first): c and σ fitted together, each fitted alone,
    and one coefficient fitted to both terms at once.
    """

    MODES = 6
    LAGS = (1, 2, 3, 4, 5, 6, 8, 10)
    FIT_MODES = 3

    def __init__(self, task: TaskSpec) -> None:
        p = task.parameters
        self.n_points = int(task.state_shape[0])
        self.lags = tuple(lag for lag in self.LAGS if lag < task.n_times - 1)
        if not self.lags:
            raise ValueError(f"ks features need windows of at least 3 samples; task {task.name!r} has {task.n_times}")
        self.noise_power = float(p.get("noise", 0.0)) ** 2
        q = 2 * math.pi * np.arange(self.n_points // 2 + 1) / float(p["L"])
        q[self.n_points // 2] = 0.0  # the Nyquist convention of the simulator
        self.q = q
        self.size = self.MODES * (len(self.lags) + 2) + 5

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.rfft(x, dim=-1) / math.sqrt(self.n_points)
        z = spectrum[..., 1 : self.MODES + 1]
        n = z.shape[1]
        floor = max(0.2 * self.noise_power, 1e-6)
        power = ((z.abs() ** 2).mean(1) - self.noise_power).clamp_min(floor)
        dz = z[:, 1:] - z[:, :-1]
        inc_power = ((dz.abs() ** 2).mean(1) - 2 * self.noise_power).clamp_min(floor)
        acf = torch.stack([(z[:, lag:] * z[:, : n - lag].conj()).real.mean(1) for lag in self.lags], dim=1) / power[:, None]
        feats = [_affine(acf.flatten(1), 0.5, 0.5), _affine(power.log(), -1.0, 1.5), _affine((inc_power / power).log(), -1.0, 1.0)]
        return torch.cat([*feats, self._equation(spectrum)], dim=1)

    def _equation(self, spectrum: torch.Tensor) -> torch.Tensor:
        q = torch.as_tensor(self.q, dtype=spectrum.real.dtype, device=spectrum.device)
        low = spectrum.clone()
        low[..., 0] = 0
        low[..., self.MODES + 1 :] = 0
        u = torch.fft.irfft(low, n=self.n_points, dim=-1) * math.sqrt(self.n_points)
        nonlinear = -0.5j * q * torch.fft.rfft(u * u, dim=-1) / math.sqrt(self.n_points)
        linear = (q**2 - q**4) * low
        fit = slice(1, self.FIT_MODES + 1)
        dz = (spectrum[:, 1:] - spectrum[:, :-1])[..., fit]
        a = 0.5 * (linear[:, 1:] + linear[:, :-1])[..., fit]
        b = 0.5 * (nonlinear[:, 1:] + nonlinear[:, :-1])[..., fit]

        def dot(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            return (f * g.conj()).real.sum(dim=(1, 2))

        aa, ab, bb, ad, bd = dot(a, a), dot(a, b), dot(b, b), dot(a, dz), dot(b, dz)
        det = (aa * bb - ab * ab).clamp_min(1e-12)
        rate, scale = (bb * ad - ab * bd) / det, (aa * bd - ab * ad) / det
        both = a + b
        joint = dot(both, dz) / dot(both, both).clamp_min(1e-12)
        coeffs = torch.stack([rate, scale, ad / aa.clamp_min(1e-12), bd / bb.clamp_min(1e-12), joint], dim=1)
        return _affine(coeffs, 0.5, 0.3)


_FEATURES: dict[str, Callable[[TaskSpec], _Features]] = {"heat1d": _HeatFeatures, "lorenz63": _LorenzFeatures, "ks1d": _KSFeatures}


class PhysicsFeatureClassifier(nn.Module):
    """Logistic regression on fixed physics features of the window; the head is all that trains."""

    def __init__(self, task: TaskSpec, features: _Features) -> None:
        super().__init__()
        self.task = task
        self.features = features
        self.head = nn.Linear(features.size, int(task.n_classes or 0))
        self.nfe = 0  # no vector field
        self.hparams: dict[str, object] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_window(self.task, x, self.task.n_times)
        feats = self.features(x.detach().to(torch.float64))
        return self.head(feats.to(self.head.weight.dtype))


def build_physics_features(task: TaskSpec) -> nn.Module:
    """Fixed physics features and a linear head; classify tasks of heat1d, lorenz63 and ks1d."""
    for_kind(task, {"classify": PhysicsFeatureClassifier}, "physics-features")
    if task.system not in _FEATURES:
        raise UnsupportedTaskError(f"physics-features knows the systems {', '.join(_FEATURES)}; task {task.name!r} is system {task.system!r}")
    return PhysicsFeatureClassifier(task, _FEATURES[task.system](task))


_MAX_STEP = HyperParameter(
    "max_step", None, "float > 0; not on heat",
    help="the largest integrator step: Taylor series on Lorenz-63, ETDRK4 on KS; heat's solution is exact",
    default_note=f"per system: lorenz63 {LORENZ_STEP:g} (the data's), ks1d {KS_STEP:g} (converged over the horizon), heat1d none",
)

build_exact.task_kinds = ("forecast",)  # type: ignore[attr-defined]
build_perturbed_exact.task_kinds = ("forecast",)  # type: ignore[attr-defined]
build_physics_features.task_kinds = ("classify",)  # type: ignore[attr-defined]

build_exact.hyperparameters = (_MAX_STEP,)  # type: ignore[attr-defined]
build_perturbed_exact.hyperparameters = (  # type: ignore[attr-defined]
    HyperParameter("perturbation", 1e-6, "float > 0", help="relative size of the initial perturbation, in units of each state's standard deviation"),
    HyperParameter("seed", 0, "int >= 0", help="seed of the perturbation's noise, drawn afresh at every call"),
    _MAX_STEP,
)
build_physics_features.hyperparameters = ()  # type: ignore[attr-defined]

# References show what is achievable; the leaderboard lists them apart from ranked models.
build_exact.reference = True  # type: ignore[attr-defined]
build_perturbed_exact.reference = True  # type: ignore[attr-defined]
build_physics_features.reference = True  # type: ignore[attr-defined]

