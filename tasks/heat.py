"""The two heat tasks: forecast the diffusing field, or tell its diffusivity from a noisy window.

Policy only (specs, split sizes, seeds, noise, labels); the data are the exact Fourier
solution from :mod:`.systems.heat`, started from random band-limited fields.
"""

from __future__ import annotations

import numpy as np

from ..spec import TaskSpec
from ._recipe import Recipe, SplitArrays, SplitPlan
from .systems import heat_solution, random_fourier_field

__all__ = ["HEAT_FORECAST", "HEAT_CLASSIFY", "RECIPES"]


_N_POINTS = 64
_LENGTH = 1.0
_CUTOFF = 5  # initial fields use Fourier modes 1..5 (the APEBench convention), max |u0| = 1
_FORECAST_KAPPA = 0.01
_CLASS_KAPPAS = (0.0025, 0.005, 0.01, 0.02)
_NOISE = 0.3
# Periodic and linear with a constant coefficient: shifts, mirror images and sign changes
# of a solution are solutions (standardisation and i.i.d. noise commute with all three).
_SYMMETRIES = ("translation", "reflection", "negation")

HEAT_FORECAST = TaskSpec(
    name="heat-forecast",
    version="1.1",
    kind="forecast",
    system="heat1d",
    state_shape=(_N_POINTS,),
    dt=0.01,
    n_times=101,
    train_window=21,
    eval_times=(0.1, 0.25, 0.5, 1.0),
    lyapunov_exponent=None,
    parameters={"kappa": _FORECAST_KAPPA, "length": _LENGTH, "n_points": _N_POINTS, "ic_cutoff": _CUTOFF, "ic_max_abs": 1.0},
    pooled_sigma=True,
    symmetries=_SYMMETRIES,
    description=(
        "Heat equation u_t = kappa u_xx, kappa = 0.01, periodic on [0, 1) with 64 grid points; data are the exact "
        "Fourier solution. Initial fields are random zero-mean Fourier series in modes 1-5 with max |u| = 1. "
        "Mode k decays at kappa (2 pi k)^2 = 0.395 k^2 per time unit: over the horizon of 1 time unit "
        "(100 steps of 0.01) mode 1 keeps 67 % of its amplitude and mode 2 20 %, while mode 5 loses 9.4 % "
        "per step and is gone (5e-5) by the end, so the forecast is neither static nor trivial. "
        "Training uses 20-step rollouts; nRMSE is reported at t = 0.1, 0.25, 0.5 and 1, with one sigma pooled over "
        "the 64 grid points (version 1.0 used one per point, whose sampling noise spread them by 38 %)."
    ),
)

HEAT_CLASSIFY = TaskSpec(
    name="heat-classify",
    version="1.1",
    kind="classify",
    system="heat1d",
    state_shape=(_N_POINTS,),
    dt=0.01,
    n_times=11,
    n_classes=len(_CLASS_KAPPAS),
    class_names=tuple(f"kappa={k:g}" for k in _CLASS_KAPPAS),
    parameters={
        "kappas": list(_CLASS_KAPPAS),
        "length": _LENGTH,
        "n_points": _N_POINTS,
        "ic_cutoff": _CUTOFF,
        "ic_max_abs": 1.0,
        "noise": _NOISE,
    },
    symmetries=_SYMMETRIES,
    description=(
        "Which diffusivity kappa in {0.0025, 0.005, 0.01, 0.02} produced a short noisy heat trajectory "
        "(periodic [0, 1), 64 points, 11 samples 0.01 apart starting at t = 0). The initial fields are drawn "
        "from the same distribution in every class (modes 1-5, max |u| = 1), so a single frame says nothing "
        "about the class: it has to be read from the decay of the Fourier modes within the window "
        "(mode k decays at kappa (2 pi k)^2). Each window is standardised (whole-window mean 0, standard "
        "deviation 1), then i.i.d. Gaussian noise of standard deviation 0.3 is added."
    ),
)


def _forecast_split(spec: TaskSpec, plan: SplitPlan) -> SplitArrays:
    p = spec.parameters
    rng = np.random.default_rng(plan.seed)
    u0 = random_fourier_field(rng, plan.n, int(p["n_points"]), int(p["ic_cutoff"]), float(p["ic_max_abs"]))
    u0 = u0.astype(np.float32).astype(np.float64)  # the stored first frame is then the exact initial field
    t = spec.dt * np.arange(plan.n_times, dtype=np.float64)
    u = heat_solution(u0, float(p["kappa"]), float(p["length"]), t)
    return SplitArrays(u=u.astype(np.float32), t=t, params=np.full((plan.n, 1), float(p["kappa"])))


def _classify_split(spec: TaskSpec, plan: SplitPlan) -> SplitArrays:
    p = spec.parameters
    rng = np.random.default_rng(plan.seed)
    kappas = np.asarray(p["kappas"], dtype=np.float64)
    labels = rng.permutation(np.arange(plan.n) % kappas.size)
    u0 = random_fourier_field(rng, plan.n, int(p["n_points"]), int(p["ic_cutoff"]), float(p["ic_max_abs"]))
    t = spec.dt * np.arange(plan.n_times, dtype=np.float64)
    clean = heat_solution(u0, kappas[labels], float(p["length"]), t)
    mean = clean.mean(axis=(1, 2))
    std = clean.std(axis=(1, 2))
    u = (clean - mean[:, None, None]) / std[:, None, None] + float(p["noise"]) * rng.standard_normal(clean.shape)
    params = np.column_stack([kappas[labels], mean, std])
    return SplitArrays(u=u.astype(np.float32), t=t, params=params, y=labels.astype(np.int64))


_GENERATOR = "odebench.tasks.heat: exact Fourier solution (numpy rfft), float64, stored as float32"

RECIPES: dict[str, Recipe] = {
    HEAT_FORECAST.name: Recipe(
        spec=HEAT_FORECAST,
        splits={"train": SplitPlan(64, 101, 1101), "val": SplitPlan(16, 101, 1102), "test": SplitPlan(32, 101, 1103)},
        generate=_forecast_split,
        generator=_GENERATOR,
        extra_attrs={"param_names": ["kappa"]},
        seconds_per_sample=1e-6,  # measured on one core, for scheduling only
    ),
    HEAT_CLASSIFY.name: Recipe(
        spec=HEAT_CLASSIFY,
        splits={"train": SplitPlan(512, 11, 1201), "val": SplitPlan(128, 11, 1202), "test": SplitPlan(256, 11, 1203)},
        generate=_classify_split,
        generator=_GENERATOR,
        extra_attrs={"param_names": ["kappa", "clean_mean", "clean_std"]},
        seconds_per_sample=1e-6,  # measured on one core, for scheduling only
    ),
}
