"""Neural ODE baseline (Chen et al. 2018): ``u' = f_θ(u)``, integrated with torchdiffeq.

The vector field works on the scaled state ``z = u / state_scale`` and is expressed per
sample interval: ``dz/dt = field(z) / τ`` with ``τ = task.dt`` for forecasting (``τ = 1``
for the hidden ODE of a classifier). The field's output is then the change of ``z``
over one sample interval, the same quantity a ResNet's residual function produces, so a
Neural ODE solved with ``method='euler'`` and ``step_size=task.dt`` takes exactly the
steps of a ResNet with the same weights.

Forecasting integrates from ``u0`` over the given time grid. Classification encodes the
window into a latent state, integrates that over ``t ∈ [0, 1]`` and applies a linear
head.

The solve is :class:`odebench.toolkit.Solver`: its step guard counts every solver step
over the whole solve (and separately over the adjoint's backward solve) and raises
:class:`~odebench.toolkit.SolverStepLimitError` once ``max_num_steps`` is exceeded,
where torchdiffeq's own ``max_num_steps`` only asserts per output interval.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from ..spec import HyperParameter, TaskSpec
from ..toolkit import (
    ACTIVATIONS,
    ADAPTIVE_METHODS,
    DEFAULT_MAX_NUM_STEPS,
    CountedField,
    CountedModel,
    Solver,
    check_forecast_input,
    choice,
    for_kind,
    make_field,
    positive_float,
    positive_int,
    solver_hyperparameters,
)
from ._fields import WindowClassifier, forecast_field, from_latent, to_latent
from ._options import COMMON_HYPERPARAMETERS, model_symmetry_group, per_system, resolve_conservative, resolve_field, resolve_symmetric, system_defaults

__all__ = ["ADAPTIVE_ORDERS", "CLASSIFY_STEP_SIZE", "DEFAULT_METHODS", "ODEForecaster", "ODEBlock", "build_neural_ode"]

#: Default fixed step of a classifier's hidden ODE on [0, 1]: four steps, matching the
#: default four blocks of the ResNet classifier under ``method='euler'``.
CLASSIFY_STEP_SIZE = 0.25
#: Default solver per task kind. A classifier's hidden ODE on [0, 1] uses fixed-step RK4
#: (four steps, 16 evaluations): adaptive dopri5 took 36–59 evaluations per call there
#: and 0.3–0.4 s per training step on one CPU thread, for no accuracy gained (heat-classify
#: validation accuracy, seed 0: 0.969 with rk4 in 120 s; version 1's dopri5 ran out of
#: its 600 s cap at 1,430 of 2,000 steps with 0.915 on test). A forecaster takes its
#: system's ``forecast_method`` (``SystemDefaults``): dopri5, whose steps span several
#: sample intervals on Lorenz-63, except RK4 at the sample interval on Kuramoto–Sivashinsky.
DEFAULT_METHODS = {"forecast": "dopri5", "classify": "rk4"}
#: Order of the error estimate of each adaptive method: the local error the controller
#: holds to ``rtol``/``atol`` scales as ``h ** order``.
ADAPTIVE_ORDERS = {"dopri5": 5, "dopri8": 8, "bosh3": 3, "fehlberg2": 2, "adaptive_heun": 2}
_DEFAULT_RTOL = 1e-4
_DEFAULT_ATOL = 1e-5


class ODEForecaster(CountedModel):
    """Forecast by integrating ``dz/dt = field(z) / task.dt`` from ``u0`` over ``t``."""

    def __init__(self, task: TaskSpec, field_kind: str, field: CountedField, state_scale: float, solver: Solver) -> None:
        super().__init__()
        self.task = task
        self.field_kind = field_kind
        self.field = field
        self.state_scale = state_scale
        self.solver = solver

    def with_discretisation(self, step_factor: float = 1.0, method: str | None = None) -> ODEForecaster:
        """The same vector field under another discretisation (the optional contract of
        :mod:`odebench.spec`): the same weights, a changed :class:`~odebench.toolkit.Solver`.

        ``method``: another torchdiffeq method (a fixed-step one steps by ``task.dt``, an
        adaptive one uses this model's tolerances if it has them, else the defaults).
        ``step_factor`` then multiplies the step: a fixed step directly; an adaptive
        method's ``rtol`` and ``atol`` by ``step_factor ** order`` (:data:`ADAPTIVE_ORDERS`),
        which changes the step its controller picks by about ``step_factor``, since the
        local error of an order-``p`` pair scales as ``h ** p``.
        """
        factor = positive_float("step_factor", step_factor)
        solver = self.solver
        if method is not None and method != solver.method:
            if method in ADAPTIVE_METHODS:
                rtol, atol = (solver.rtol, solver.atol) if solver.adaptive else (_DEFAULT_RTOL, _DEFAULT_ATOL)
                solver = dataclasses.replace(solver, method=method, rtol=rtol, atol=atol, step_size=None)
            else:
                solver = dataclasses.replace(solver, method=method, rtol=None, atol=None, step_size=self.task.dt)
        if factor != 1.0:
            if solver.adaptive:
                scale = factor ** ADAPTIVE_ORDERS[solver.method]
                solver = dataclasses.replace(solver, rtol=(solver.rtol or _DEFAULT_RTOL) * scale, atol=(solver.atol or _DEFAULT_ATOL) * scale)
            else:
                solver = dataclasses.replace(solver, step_size=(solver.step_size or self.task.dt) * factor)
        return ODEForecaster(self.task, self.field_kind, self.field, self.state_scale, solver)

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_forecast_input(self.task, u0, t)
        dtype = next(self.field.parameters()).dtype
        z0 = to_latent(u0.to(dtype), self.field_kind, self.state_scale)
        traj = self.solver.solve(self.field, z0, t.to(u0.device), rate=1.0 / self.task.dt).transpose(0, 1)
        return from_latent(traj, self.task.state_shape, self.state_scale)


class ODEBlock(nn.Module):
    """The hidden ODE of a classifier: ``dz/dt = field(z)`` over ``t ∈ [0, 1]``, returns ``z(1)``."""

    def __init__(self, field: CountedField, solver: Solver) -> None:
        super().__init__()
        self.field = field
        self.solver = solver

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        t = torch.tensor([0.0, 1.0], dtype=z.dtype, device=z.device)
        return self.solver.solve(self.field, z, t)[-1]


def _build_forecaster(task: TaskSpec, solver: Solver, hp: dict[str, Any], width: Any, depth: Any) -> nn.Module:
    """Vector field on the state itself, sized by the system defaults; default step ``task.dt``."""
    defaults = system_defaults(task)
    solver = solver.with_defaults(step_size=task.dt)
    width = positive_int("width", defaults.width if width is None else width)
    depth = positive_int("depth", defaults.depth if depth is None else depth)
    field = forecast_field(task, hp, width, depth)
    model = ODEForecaster(task, hp["field"], field, hp["state_scale"], solver)
    model.hparams = {**solver.hparams(), "width": width, "depth": depth, **hp}
    return model


def _build_classifier(task: TaskSpec, solver: Solver, hp: dict[str, Any], width: Any, depth: Any) -> nn.Module:
    """Hidden ODE on the encoder's ``channels`` (width ``2 × channels``, depth 2); default step 0.25."""
    channels = system_defaults(task).channels
    solver = solver.with_defaults(step_size=CLASSIFY_STEP_SIZE)
    width = positive_int("width", 2 * channels if width is None else width)
    depth = positive_int("depth", 2 if depth is None else depth)
    body = ODEBlock(make_field(hp["field"], channels, width, depth, hp["activation"]), solver)
    model = WindowClassifier(task, hp["field"], channels, hp["activation"], hp["state_scale"], body, model_symmetry_group(task, hp["symmetric"]))
    model.hparams = {**solver.hparams(), "width": width, "depth": depth, **hp}
    return model


_BUILDERS = {"forecast": _build_forecaster, "classify": _build_classifier}


def build_neural_ode(
    task: TaskSpec,
    *,
    method: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    step_size: float | None = None,
    adjoint: bool = False,
    width: int | None = None,
    depth: int | None = None,
    activation: str = "silu",
    field: str = "auto",
    state_scale: float | None = None,
    max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
    symmetric: bool | None = None,
    conservative: bool | None = None,
) -> nn.Module:
    """A Neural ODE for ``task`` (forecast or classify).

    ``method``: a torchdiffeq method (default per kind, :data:`DEFAULT_METHODS`, and for
    forecasting per system, ``SystemDefaults.forecast_method``), adaptive (``odebench.toolkit.ADAPTIVE_METHODS``,
    using ``rtol``, default 1e-4, and ``atol``, default 1e-5, on the scaled state) or
    fixed-step (``FIXED_METHODS``, using ``step_size``, default ``task.dt`` for
    forecasting and 0.25 for a classifier's hidden ODE on [0, 1]). Giving tolerances to a
    fixed-step method, or a step to an adaptive one, is an error rather than silently
    ignored. ``adjoint``: backpropagate with the adjoint method (``odeint_adjoint``).
    ``width``/``depth``: hidden width and number of hidden layers of the vector field
    (defaults per system for forecasting; ``2 × channels`` and 2 for classification).
    ``activation``: one of ``ACTIVATIONS``. ``field``: ``auto``, ``mlp`` or ``conv``.
    ``state_scale``: raw states are divided by it (default per system, 10 for Lorenz-63).
    ``max_num_steps``: the most solver steps one solve may take before
    :class:`~odebench.toolkit.SolverStepLimitError`. ``symmetric``: average over the
    task's declared finite symmetries (default per system), which makes a forecaster's
    vector field equivariant (:class:`~odebench.toolkit.SymmetricField`) and a
    classifier's logits invariant. ``conservative``: a forecasting ``conv`` field in flux
    form (:class:`~odebench.toolkit.ConservativeField`), which conserves the spatial mean
    (default per system).
    """
    build = for_kind(task, _BUILDERS, "neural-ode")
    field_kind = resolve_field(task, field)
    if method is None:  # for_kind checked the kind
        method = system_defaults(task).forecast_method if task.kind == "forecast" else DEFAULT_METHODS[task.kind]
    solver = Solver(method, rtol, atol, step_size, adjoint, max_num_steps, label="neural-ode")
    solver = solver.with_defaults(rtol=_DEFAULT_RTOL, atol=_DEFAULT_ATOL)
    hp = {
        "activation": choice("activation", activation, ACTIVATIONS),
        "field": field_kind,
        "state_scale": positive_float("state_scale", system_defaults(task).state_scale if state_scale is None else state_scale),
        "symmetric": resolve_symmetric(task, symmetric),
        "conservative": resolve_conservative(task, conservative, field_kind),
    }
    return build(task, solver, hp, width, depth)


build_neural_ode.task_kinds = tuple(_BUILDERS)  # type: ignore[attr-defined]
build_neural_ode.hyperparameters = (  # type: ignore[attr-defined]
    *solver_hyperparameters(
        method=None, method_note="forecast, per system: " + per_system(lambda d: d.forecast_method) + "; classify: rk4",
        rtol=_DEFAULT_RTOL, atol=_DEFAULT_ATOL,
        step_size_note=f"forecast: the task's dt (one step per sample interval); classify: {CLASSIFY_STEP_SIZE:g} over [0, 1]",
    ),
    HyperParameter(
        "width", None, "int >= 1", help="hidden units (channels) of the vector field",
        default_note=f"forecast, per system: {per_system(lambda d: d.width)}; classify: 2 × channels, {per_system(lambda d: 2 * d.channels)}",
    ),
    HyperParameter(
        "depth", None, "int >= 1", help="hidden layers of the vector field",
        default_note=f"forecast, per system: {per_system(lambda d: d.depth)}; classify: 2",
    ),
    *COMMON_HYPERPARAMETERS,
)
