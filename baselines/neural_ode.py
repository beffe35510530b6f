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

The solver guard: torchdiffeq 0.2.5 only *asserts* on ``max_num_steps`` (gone under
``python -O``), counts steps per output interval rather than per solve, and raises an
``AssertionError``. Here every solver step is counted through torchdiffeq's step
callbacks over the whole solve (and separately over the adjoint's backward solve), and
exceeding ``max_num_steps`` raises :class:`SolverStepLimitError` at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from ..spec import TaskSpec
from ._fields import MLP, PeriodicConv, WindowClassifier, check_forecast_input, field_channels, from_latent, make_field, to_latent
from ._options import ACTIVATIONS, boolean, choice, positive_float, positive_int, resolve_field, system_defaults

__all__ = [
    "ADAPTIVE_METHODS",
    "FIXED_METHODS",
    "METHODS",
    "CLASSIFY_STEP_SIZE",
    "SolverStepLimitError",
    "Solver",
    "ODEForecaster",
    "ODEBlock",
    "build_neural_ode",
]

ADAPTIVE_METHODS: tuple[str, ...] = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED_METHODS: tuple[str, ...] = ("rk4", "euler", "midpoint", "heun2", "heun3", "explicit_adams", "implicit_adams")
METHODS: tuple[str, ...] = ADAPTIVE_METHODS + FIXED_METHODS

#: Default fixed step of a classifier's hidden ODE on [0, 1]: four steps, matching the
#: default four blocks of the ResNet classifier under ``method='euler'``.
CLASSIFY_STEP_SIZE = 0.25
_DEFAULT_RTOL = 1e-4
_DEFAULT_ATOL = 1e-5
_DEFAULT_MAX_STEPS = 100_000


class SolverStepLimitError(RuntimeError):
    """An ODE solve needed more steps than ``max_num_steps`` allows."""


class _Dynamics:
    """``(t, z) -> field(z) * rate`` for torchdiffeq, counting solver steps.

    A plain callable, not an ``nn.Module``: the field counts its own evaluations, and a
    wrapper module would only add call overhead. One instance serves one forward solve
    and the adjoint solve that may follow it.
    """

    def __init__(self, field: nn.Module, rate: float, method: str, max_num_steps: int) -> None:
        self.field = field
        self.rate = rate
        self.method = method
        self.max_num_steps = max_num_steps
        self.steps = 0
        self.backward_steps = 0

    def __call__(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.field(z) * self.rate

    def _exceeded(self, direction: str, t0: torch.Tensor, dt: torch.Tensor) -> SolverStepLimitError:
        return SolverStepLimitError(
            f"neural-ode: the {direction} {self.method} solve exceeded max_num_steps={self.max_num_steps} "
            f"(at t={float(t0.detach()):.6g}, step {float(dt.detach()):.3g}); the learned vector field has become stiff or has blown up. "
            "Raise max_num_steps, loosen rtol/atol, or use a fixed-step method such as method=rk4"
        )

    def callback_step(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
        self.steps += 1
        if self.steps > self.max_num_steps:
            raise self._exceeded("forward", t0, dt)

    def callback_step_adjoint(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
        self.backward_steps += 1
        if self.backward_steps > self.max_num_steps:
            raise self._exceeded("adjoint (backward)", t0, dt)


def _grid_constructor(step_size: float, method: str, max_num_steps: int) -> Any:
    """A torchdiffeq grid constructor with steps of ``step_size`` from ``t[0]`` to ``t[-1]``.

    Unlike torchdiffeq's own ``step_size`` option it tolerates rounding: a span that is
    ``n`` steps up to float32 error gets ``n`` steps, not ``n`` plus a sliver. The last
    step is shortened to end exactly at ``t[-1]``. Too many steps fail before solving.
    """

    def construct(func: Any, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        span = float(t[-1] - t[0])
        n = max(1, math.ceil(span / step_size * (1.0 - 1e-6)))
        if n > max_num_steps:
            raise SolverStepLimitError(
                f"neural-ode: {method} with step_size={step_size:g} needs {n} steps over a span of {span:g}, "
                f"more than max_num_steps={max_num_steps}; raise max_num_steps or step_size"
            )
        steps = torch.arange(n + 1, dtype=torch.float64, device=t.device) * step_size
        grid = (t[0].to(torch.float64) + steps).to(t.dtype)
        grid[-1] = t[-1]
        return grid

    return construct


@dataclass(frozen=True)
class Solver:
    """How the ODE is solved: the method, its tolerances or step, adjoint, step limit."""

    method: str
    rtol: float | None
    atol: float | None
    step_size: float | None
    adjoint: bool
    max_num_steps: int

    def solve(self, field: nn.Module, rate: float, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``z`` at the times ``t``, shape ``(len(t), *z0.shape)``, for ``dz/dt = field(z) * rate``."""
        dynamics = _Dynamics(field, rate, self.method, self.max_num_steps)
        kwargs: dict[str, Any] = {"method": self.method}
        if self.step_size is None:
            kwargs.update(rtol=self.rtol, atol=self.atol)
        else:
            kwargs["options"] = {"grid_constructor": _grid_constructor(self.step_size, self.method, self.max_num_steps)}
        try:
            if self.adjoint:
                params = tuple(p for p in field.parameters() if p.requires_grad)
                return odeint_adjoint(dynamics, z0, t, adjoint_params=params, **kwargs)
            return odeint(dynamics, z0, t, **kwargs)
        except AssertionError as exc:  # torchdiffeq reports step underflow and NaN states by assert
            raise RuntimeError(f"neural-ode: the {self.method} solver failed: {exc}") from exc


class ODEForecaster(nn.Module):
    """Forecast by integrating ``dz/dt = field(z) / task.dt`` from ``u0`` over ``t``."""

    def __init__(self, task: TaskSpec, field_kind: str, field: MLP | PeriodicConv, state_scale: float, solver: Solver) -> None:
        super().__init__()
        self.task = task
        self.field_kind = field_kind
        self.field = field
        self.state_scale = state_scale
        self.solver = solver

    @property
    def nfe(self) -> int:
        return self.field.nfe

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_forecast_input(self.task, u0, t)
        dtype = next(self.field.parameters()).dtype
        z0 = to_latent(u0.to(dtype), self.field_kind, self.state_scale)
        if t.numel() == 1:
            traj = z0.unsqueeze(1)
        else:
            traj = self.solver.solve(self.field, 1.0 / self.task.dt, z0, t.to(u0.device)).transpose(0, 1)
        return from_latent(traj, self.task.state_shape, self.state_scale)


class ODEBlock(nn.Module):
    """The hidden ODE of a classifier: ``dz/dt = field(z)`` over ``t ∈ [0, 1]``, returns ``z(1)``."""

    def __init__(self, field: MLP | PeriodicConv, solver: Solver) -> None:
        super().__init__()
        self.field = field
        self.solver = solver

    @property
    def nfe(self) -> int:
        return self.field.nfe

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        t = torch.tensor([0.0, 1.0], dtype=z.dtype, device=z.device)
        return self.solver.solve(self.field, 1.0, z, t)[-1]


def build_neural_ode(
    task: TaskSpec,
    *,
    method: str = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    step_size: float | None = None,
    adjoint: bool = False,
    width: int | None = None,
    depth: int | None = None,
    activation: str = "silu",
    field: str = "auto",
    state_scale: float | None = None,
    max_num_steps: int = _DEFAULT_MAX_STEPS,
) -> nn.Module:
    """A Neural ODE for ``task`` (forecast or classify).

    ``method``: a torchdiffeq method, adaptive (``ADAPTIVE_METHODS``, using ``rtol``,
    default 1e-4, and ``atol``, default 1e-5, on the scaled state) or fixed-step
    (``FIXED_METHODS``, using ``step_size``, default ``task.dt`` for forecasting and
    0.25 for a classifier's hidden ODE on [0, 1]). Giving tolerances to a fixed-step
    method, or a step to an adaptive one, is an error rather than silently ignored.
    ``adjoint``: backpropagate with the adjoint method (``odeint_adjoint``).
    ``width``/``depth``: hidden width and number of hidden layers of the vector field
    (defaults per system for forecasting; ``2 × channels`` and 2 for classification).
    ``activation``: one of ``ACTIVATIONS``. ``field``: ``auto``, ``mlp`` or ``conv``.
    ``state_scale``: raw states are divided by it (default per system, 10 for Lorenz-63).
    ``max_num_steps``: the most solver steps one solve may take before
    :class:`SolverStepLimitError`.
    """
    defaults = system_defaults(task)
    field_kind = resolve_field(task, field)
    method = choice("method", method, METHODS)
    adjoint = boolean("adjoint", adjoint)
    activation = choice("activation", activation, ACTIVATIONS)
    state_scale = positive_float("state_scale", defaults.state_scale if state_scale is None else state_scale)
    max_num_steps = positive_int("max_num_steps", max_num_steps)
    hparams: dict[str, Any] = {"method": method}
    if method in ADAPTIVE_METHODS:
        if step_size is not None:
            raise ValueError(f"step_size applies to fixed-step methods ({', '.join(FIXED_METHODS)}), not to method={method}; drop it or pick a fixed-step method")
        rtol = positive_float("rtol", _DEFAULT_RTOL if rtol is None else rtol)
        atol = positive_float("atol", _DEFAULT_ATOL if atol is None else atol)
        hparams.update(rtol=rtol, atol=atol)
    else:
        if rtol is not None or atol is not None:
            raise ValueError(f"rtol and atol apply to adaptive methods ({', '.join(ADAPTIVE_METHODS)}), not to method={method}; drop them or pick an adaptive method")
        default_step = task.dt if task.kind == "forecast" else CLASSIFY_STEP_SIZE
        step_size = positive_float("step_size", default_step if step_size is None else step_size)
        hparams["step_size"] = step_size
    solver = Solver(method, rtol, atol, step_size, adjoint, max_num_steps)

    if task.kind == "forecast":
        width = positive_int("width", defaults.width if width is None else width)
        depth = positive_int("depth", defaults.depth if depth is None else depth)
        vector_field = make_field(field_kind, field_channels(task, field_kind), width, depth, activation)
        model: nn.Module = ODEForecaster(task, field_kind, vector_field, state_scale, solver)
    else:
        channels = field_channels(task, field_kind)
        width = positive_int("width", 2 * channels if width is None else width)
        depth = positive_int("depth", 2 if depth is None else depth)
        body = ODEBlock(make_field(field_kind, channels, width, depth, activation), solver)
        model = WindowClassifier(task, field_kind, channels, activation, state_scale, body)
    hparams.update(
        adjoint=adjoint, width=width, depth=depth, activation=activation, field=field_kind,
        state_scale=state_scale, max_num_steps=max_num_steps,
    )
    model.hparams = hparams
    return model
