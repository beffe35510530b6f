"""ResNet baseline: ``z_{n+1} = z_n + g(z_n)``, forward Euler with unit step.

Forecasting: one time-invariant residual function ``g`` (the same network a Neural ODE
uses as its vector field) applied ``depth`` times per sample interval, so ``len(t) − 1``
intervals cost ``depth × (len(t) − 1)`` evaluations; ``depth`` lets a user match the
NFE of a fixed-step Neural ODE (``depth=4`` against ``method=rk4``). A shared ``g`` is a
time-invariant map, so a model trained on short rollouts applies unchanged to the
longer test horizon. The grid ``t`` must have the task's spacing ``task.dt``.

Classification: encoder, ``depth`` residual blocks each with its own ``g_n`` (``layers``
hidden layers of ``width``), linear head.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from ..spec import HyperParameter, TaskSpec
from ..toolkit import ACTIVATIONS, CountedField, CountedModel, check_forecast_input, choice, for_kind, make_field, positive_float, positive_int
from ._fields import WindowClassifier, forecast_field, from_latent, to_latent
from ._options import COMMON_HYPERPARAMETERS, model_symmetry_group, per_system, resolve_conservative, resolve_field, resolve_symmetric, system_defaults

__all__ = ["CLASSIFY_DEPTH", "check_uniform_grid", "grid_multiple", "ResNetForecaster", "ResidualStack", "RESIDUAL_TASK_KINDS", "RESIDUAL_HYPERPARAMETERS", "build_residual_model", "build_resnet"]

#: Default number of residual blocks of a classifier (see :data:`neural_ode.CLASSIFY_STEP_SIZE`).
CLASSIFY_DEPTH = 4


def check_uniform_grid(task: TaskSpec, t: torch.Tensor, multiple: bool = False) -> int:
    """The number of sample intervals in ``t``; ``ValueError`` unless its spacing is ``task.dt``.

    A discrete model learns one map per sample interval, so it cannot forecast on another
    spacing. With ``multiple``, a spacing of a whole number of ``task.dt`` is accepted too
    (a model whose step was changed by ``with_discretisation`` is scored on such a grid).
    """
    intervals = t.numel() - 1
    if intervals > 0:
        spacing = float(t[-1] - t[0]) / intervals
        ratio = spacing / task.dt
        whole = round(ratio) >= 1 and math.isclose(ratio, round(ratio), rel_tol=1e-3) if multiple else math.isclose(spacing, task.dt, rel_tol=1e-3)
        if not whole:
            allowed = "a whole multiple of" if multiple else ""
            raise ValueError(
                f"t has mean spacing {spacing:g}, but this discrete model steps by {allowed} the task's dt={task.dt:g}; "
                "pass the task's grid dt * arange(n) or use neural-ode"
            )
    return intervals


def grid_multiple(task: TaskSpec, t: torch.Tensor) -> int:
    """How many ``task.dt`` one interval of the uniform grid ``t`` spans (1 for a single time)."""
    intervals = t.numel() - 1
    return 1 if intervals < 1 else round(float(t[-1] - t[0]) / intervals / task.dt)


class ResNetForecaster(CountedModel):
    """Forecast by ``depth`` residual steps of one shared ``g`` per sample interval.

    Read as forward Euler, a step is ``z + h f(z)`` with the vector field ``f = g / h``
    and ``h = dt / depth``. :meth:`with_discretisation` changes ``h`` by ``step_factor``
    and keeps ``f``: a step becomes ``z + step_factor · g(z)``, taken
    ``depth / step_factor`` times per sample interval.
    """

    def __init__(self, task: TaskSpec, field_kind: str, g: CountedField, state_scale: float, depth: int, step_factor: float = 1.0) -> None:
        super().__init__()
        self.task = task
        self.field_kind = field_kind
        self.g = g
        self.state_scale = state_scale
        self.depth = depth
        self.step_factor = step_factor

    def step(self, z: torch.Tensor, z_prev: torch.Tensor | None) -> torch.Tensor:
        """One residual step (forward Euler); ``z_prev`` is there for multistep subclasses."""
        gz = self.g(z)
        return z + gz if self.step_factor == 1.0 else z + self.step_factor * gz

    def with_discretisation(self, step_factor: float = 1.0, method: str | None = None) -> ResNetForecaster:
        """The same weights with the step ``h`` multiplied by ``step_factor`` (the optional
        discretisation contract, see :mod:`odebench.spec`).

        The steps per sample interval, ``depth / step_factor``, must be a whole number on
        the grid the model is called with: with ``step_factor = 2`` and ``depth = 1``, call
        it on every second sample time. ``method`` (another integrator) is refused: the
        scheme is the architecture.
        """
        if method is not None:
            raise ValueError(f"{type(self).__name__} is its own integrator; it has no method={method!r} to switch to")
        clone = copy.copy(self)
        clone._modules = dict(self._modules)  # shares g (and k): the weights are the same objects
        clone._parameters = dict(self._parameters)
        clone.step_factor = self.step_factor * positive_float("step_factor", step_factor)
        return clone

    def _steps_per_interval(self, t: torch.Tensor) -> int:
        exact = grid_multiple(self.task, t) * self.depth / self.step_factor
        steps = round(exact)
        if steps < 1 or not math.isclose(exact, steps, rel_tol=1e-6):
            raise ValueError(
                f"with step_factor={self.step_factor:g} and depth={self.depth}, one grid interval of {grid_multiple(self.task, t)} dt "
                f"holds {exact:g} steps; call it on a grid whose spacing makes that a whole number"
            )
        return steps

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_forecast_input(self.task, u0, t)
        intervals = check_uniform_grid(self.task, t, multiple=self.step_factor != 1.0)
        steps = self.depth if self.step_factor == 1.0 else self._steps_per_interval(t)
        z = to_latent(u0.to(next(self.g.parameters()).dtype), self.field_kind, self.state_scale)
        z_prev = None
        traj = [z]
        for _ in range(intervals):
            for _ in range(steps):
                z_prev, z = z, self.step(z, z_prev)
            traj.append(z)
        return from_latent(torch.stack(traj, dim=1), self.task.state_shape, self.state_scale)


class ResidualStack(nn.Module):
    """The hidden dynamics of a classifier: ``z ← z + g_n(z)`` for each block ``n``."""

    def __init__(self, blocks: list[CountedField]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for g in self.blocks:
            z = z + g(z)
        return z


def _sizes(width: Any, depth: Any, layers: Any, defaults: tuple[int, int, int]) -> dict[str, int]:
    given = {"width": width, "depth": depth, "layers": layers}
    return {name: positive_int(name, default if given[name] is None else given[name]) for name, default in zip(given, defaults)}


def _assemble_forecaster(task: TaskSpec, common: dict[str, Any], sizes: tuple[Any, Any, Any], forecaster: type[ResNetForecaster], stack: type[nn.Module]) -> nn.Module:
    """One shared ``g`` sized like the Neural ODE's field, ``depth`` steps per interval (default 1)."""
    defaults = system_defaults(task)
    hp = {**_sizes(*sizes, (defaults.width, 1, defaults.depth)), **common}
    g = forecast_field(task, hp, hp["width"], hp["layers"])
    model = forecaster(task, hp["field"], g, hp["state_scale"], hp["depth"])
    model.hparams = hp
    return model


def _assemble_classifier(task: TaskSpec, common: dict[str, Any], sizes: tuple[Any, Any, Any], forecaster: type[ResNetForecaster], stack: type[nn.Module]) -> nn.Module:
    """``depth`` blocks (default :data:`CLASSIFY_DEPTH`) of one hidden layer of ``channels`` units,
    which matches the parameter count of the Neural ODE's default hidden field."""
    channels = system_defaults(task).channels
    hp = {**_sizes(*sizes, (channels, CLASSIFY_DEPTH, 1)), **common}
    blocks = [make_field(hp["field"], channels, hp["width"], hp["layers"], hp["activation"]) for _ in range(hp["depth"])]
    model = WindowClassifier(task, hp["field"], channels, hp["activation"], hp["state_scale"], stack(blocks), model_symmetry_group(task, hp["symmetric"]))
    model.hparams = hp
    return model


_ASSEMBLERS = {"forecast": _assemble_forecaster, "classify": _assemble_classifier}
#: The task kinds the residual families build for.
RESIDUAL_TASK_KINDS: tuple[str, ...] = tuple(_ASSEMBLERS)
#: The ``--model-arg`` values the ResNet and the LM-ResNet take.
RESIDUAL_HYPERPARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter(
        "width", None, "int >= 1", help="hidden units (channels) of each residual function",
        default_note=f"forecast, per system: {per_system(lambda d: d.width)}; classify: the channels, {per_system(lambda d: d.channels)}",
    ),
    HyperParameter(
        "depth", None, "int >= 1", help="residual steps per sample interval (forecast) or residual blocks (classify)",
        default_note=f"forecast: 1; classify: {CLASSIFY_DEPTH}",
    ),
    HyperParameter(
        "layers", None, "int >= 1", help="hidden layers of each residual function",
        default_note=f"forecast, per system: {per_system(lambda d: d.depth)}; classify: 1",
    ),
    *COMMON_HYPERPARAMETERS,
)


def build_residual_model(
    task: TaskSpec, name: str, forecaster: type[ResNetForecaster], stack: type[nn.Module], *,
    width: Any, depth: Any, layers: Any, activation: Any, field: Any, state_scale: Any, symmetric: Any = None, conservative: Any = None,
) -> nn.Module:
    """The model a residual family builds: ``forecaster`` around one shared ``g`` for
    forecasting, ``stack`` of ``depth`` blocks inside the classifier shell.

    The ResNet and the LM-ResNet differ only in these two classes; ``name`` is the
    model's, for errors.
    """
    assemble = for_kind(task, _ASSEMBLERS, name)
    field_kind = resolve_field(task, field)
    common = {
        "activation": choice("activation", activation, ACTIVATIONS),
        "field": field_kind,
        "state_scale": positive_float("state_scale", system_defaults(task).state_scale if state_scale is None else state_scale),
        "symmetric": resolve_symmetric(task, symmetric),
        "conservative": resolve_conservative(task, conservative, field_kind),
    }
    return assemble(task, common, (width, depth, layers), forecaster, stack)


def build_resnet(
    task: TaskSpec,
    *,
    width: int | None = None,
    depth: int | None = None,
    layers: int | None = None,
    activation: str = "silu",
    field: str = "auto",
    state_scale: float | None = None,
    symmetric: bool | None = None,
    conservative: bool | None = None,
) -> nn.Module:
    """A ResNet for ``task`` (forecast or classify).

    ``depth``: residual steps per sample interval (forecast, default 1) or residual blocks
    (classify, default 4). ``layers``/``width``: hidden layers and width of each residual
    function. ``activation``, ``field``, ``state_scale``, ``symmetric``, ``conservative``: as for ``neural-ode``.
    """
    return build_residual_model(
        task, "resnet", ResNetForecaster, ResidualStack,
        width=width, depth=depth, layers=layers, activation=activation, field=field, state_scale=state_scale, symmetric=symmetric, conservative=conservative,
    )


build_resnet.task_kinds = RESIDUAL_TASK_KINDS  # type: ignore[attr-defined]
build_resnet.hyperparameters = RESIDUAL_HYPERPARAMETERS  # type: ignore[attr-defined]
