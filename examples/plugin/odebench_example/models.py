"""An augmented Neural ODE (ANODE; Dupont, Doucet & Teh 2019) for every odebench task.

The flow of a plain Neural ODE is a homeomorphism of its state space: trajectories
cannot cross, so some maps are out of reach and others need a stiff, costly field.
ANODE lifts the state ``h`` to ``[h, a]`` with ``augment_dim`` extra channels starting
at ``a(0) = 0``, integrates ``d[h, a]/dt = f([h, a])`` and reads ``h`` back; the extra
room lets the flow go around obstacles, which lowers the NFE of an adaptive solver.

* Forecasting: ``h`` is the scaled state ``u / state_scale`` (a vector for Lorenz-63,
  one channel of a periodic field for heat and KS) integrated over the requested grid
  ``t``; the field is expressed per sample interval, ``dh/dt = f(h) / task.dt``.
* Classification: an encoder turns the window into ``h`` (a linear map of the flattened
  window or, for a periodic field, a circular convolution taking the frames as input
  channels), ``[h, 0]`` is integrated over ``t ∈ [0, 1]`` and a linear head reads the
  whole augmented state, averaged over the grid for a field.

The harness owns data, loss, optimiser and budget; this module owns only the
architecture and its keyword-only hyperparameters (see :func:`build_anode`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from odebench.spec import TaskSpec

from .fields import KERNEL_SIZE, ConvField, MLPField

__all__ = [
    "ADAPTIVE_METHODS",
    "FIXED_METHODS",
    "PERIODIC_SYSTEMS",
    "Solver",
    "AugmentedODE",
    "ANODEForecaster",
    "ANODEClassifier",
    "build_anode",
]

ADAPTIVE_METHODS: tuple[str, ...] = ("dopri5", "dopri8", "bosh3", "adaptive_heun")
FIXED_METHODS: tuple[str, ...] = ("rk4", "midpoint", "euler")

#: Systems whose state is a field on a periodic 1-D grid; they get circular convolutions.
PERIODIC_SYSTEMS: tuple[str, ...] = ("heat1d", "ks1d")

#: Adaptive steps allowed between two output times before the solve is abandoned, so a
#: field that has blown up fails the job instead of stepping until the timeout.
MAX_STEPS_PER_INTERVAL = 10_000


@dataclass(frozen=True)
class Solver:
    """How ``[h, a]`` is integrated: a torchdiffeq method with its tolerances or step."""

    method: str
    rtol: float | None = None
    atol: float | None = None
    step_size: float | None = None
    adjoint: bool = False

    def solve(self, func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], y0: torch.Tensor, t: torch.Tensor, params: tuple[nn.Parameter, ...]) -> torch.Tensor:
        """``y`` at the times ``t``, shape ``(len(t), *y0.shape)``."""
        kwargs: dict[str, Any] = {"method": self.method}
        if self.method in ADAPTIVE_METHODS:
            kwargs.update(rtol=self.rtol, atol=self.atol, options={"max_num_steps": MAX_STEPS_PER_INTERVAL})
        elif self.step_size is not None:
            kwargs["options"] = {"step_size": self.step_size}
        if self.adjoint:
            return odeint_adjoint(func, y0, t, adjoint_params=params, **kwargs)
        return odeint(func, y0, t, **kwargs)


class AugmentedODE(nn.Module):
    """``[h, a](t)`` for ``d[h, a]/dt = rate · field([h, a])`` from ``[h0, 0]``.

    ``h0`` has its channels on dimension 1: ``(batch, channels)`` for a vector or
    ``(batch, channels, n_points)`` for a field; ``augment_dim`` zero channels are
    appended there. Returns ``(len(t), batch, channels + augment_dim, ...)``.
    """

    def __init__(self, field: MLPField | ConvField, augment_dim: int, rate: float, solver: Solver) -> None:
        super().__init__()
        self.field = field
        self.augment_dim = augment_dim
        self.rate = rate
        self.solver = solver

    @property
    def nfe(self) -> int:
        return self.field.nfe

    def _rhs(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.field(y) * self.rate

    def forward(self, h0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a0 = h0.new_zeros((h0.shape[0], self.augment_dim, *h0.shape[2:]))
        params = tuple(p for p in self.field.parameters() if p.requires_grad)
        return self.solver.solve(self._rhs, torch.cat([h0, a0], dim=1), t, params)


def _check_batch(name: str, x: Any, trailing: tuple[int, ...], layout: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 1 + len(trailing) or tuple(x.shape[1:]) != trailing:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape {layout} = (batch, {', '.join(map(str, trailing))}), got {got}")


class ANODEForecaster(nn.Module):
    """``forward(u0, t) -> (batch, len(t), *state)``: integrate ``[u0 / scale, 0]``, read ``u`` back."""

    def __init__(self, task: TaskSpec, ode: AugmentedODE, grid: bool, state_scale: float) -> None:
        super().__init__()
        self.task = task
        self.ode = ode
        self.grid = grid
        self.state_scale = state_scale
        self.channels = 1 if grid else math.prod(task.state_shape)

    @property
    def nfe(self) -> int:
        return self.ode.nfe

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        _check_batch("u0", u0, tuple(self.task.state_shape), "(batch, *state_shape)")
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.numel() < 2:
            raise ValueError(f"t must be a 1-D tensor of at least two increasing times, got {getattr(t, 'shape', t)!r}")
        h0 = u0 / self.state_scale
        h0 = h0.unsqueeze(1) if self.grid else h0.flatten(1)
        y = self.ode(h0, t.to(device=u0.device, dtype=u0.dtype))
        u = y[1:, :, : self.channels].transpose(0, 1) * self.state_scale
        u = u.reshape(u0.shape[0], t.numel() - 1, *self.task.state_shape)
        return torch.cat([u0.unsqueeze(1), u], dim=1)


class ANODEClassifier(nn.Module):
    """``forward(x) -> logits``: encode the window, integrate ``[h, 0]`` over [0, 1], linear head."""

    def __init__(self, task: TaskSpec, encoder: nn.Module, ode: AugmentedODE, head: nn.Linear, grid: bool, state_scale: float) -> None:
        super().__init__()
        self.task = task
        self.encoder = encoder
        self.ode = ode
        self.head = head
        self.grid = grid
        self.state_scale = state_scale

    @property
    def nfe(self) -> int:
        return self.ode.nfe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_batch("x", x, (self.task.n_times, *self.task.state_shape), "(batch, n_times, *state_shape)")
        h = self.encoder(x / self.state_scale)
        t = torch.tensor([0.0, 1.0], dtype=h.dtype, device=h.device)
        y = self.ode(h, t)[-1]
        return self.head(y.mean(dim=-1) if self.grid else y)


# ----------------------------------------------------------------------------- the factory


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def build_anode(
    task: TaskSpec,
    *,
    augment_dim: int | None = None,
    width: int | None = None,
    depth: int = 2,
    latent: int | None = None,
    method: str = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    step_size: float | None = None,
    adjoint: bool = False,
    state_scale: float | None = None,
) -> nn.Module:
    """An augmented Neural ODE for ``task`` (forecast or classify; any state shape).

    ``augment_dim``: zero-initialised extra channels (default 5 for a vector state, 2 for a
    periodic field, whose channels are whole fields); 0 gives a plain Neural ODE.
    ``width``/``depth``: hidden units (or channels) and hidden layers of the vector field
    (default width 64 for a vector, 16 for a field). ``latent``: classification only, the
    channels the encoder produces (default 16). ``method``: a torchdiffeq method, adaptive
    (``ADAPTIVE_METHODS``, with ``rtol``/``atol``, default 1e-3/1e-4) or fixed-step
    (``FIXED_METHODS``, with ``step_size``, default: one step per output interval, so
    a classifier takes a single step over [0, 1]).
    ``adjoint``: backpropagate by the adjoint method. ``state_scale``: states are divided by
    it (default 10 for Lorenz-63 forecasting, whose states are O(10–40); 1 otherwise).
    """
    grid = task.system in PERIODIC_SYSTEMS and len(task.state_shape) == 1
    augment_dim = _integer("augment_dim", (2 if grid else 5) if augment_dim is None else augment_dim, 0)
    width = _integer("width", (16 if grid else 64) if width is None else width, 1)
    depth = _integer("depth", depth, 1)
    if not isinstance(adjoint, bool):
        raise ValueError(f"adjoint must be true or false, got {adjoint!r}")
    default_scale = 10.0 if task.system.startswith("lorenz") and task.kind == "forecast" else 1.0
    state_scale = _positive("state_scale", default_scale if state_scale is None else state_scale)
    hparams: dict[str, Any] = {"augment_dim": augment_dim, "width": width, "depth": depth, "method": method}

    if method in ADAPTIVE_METHODS:
        if step_size is not None:
            raise ValueError(f"step_size applies to the fixed-step methods {FIXED_METHODS}, not to method={method!r}; drop it or pick one of those")
        rtol = _positive("rtol", 1e-3 if rtol is None else rtol)
        atol = _positive("atol", 1e-4 if atol is None else atol)
        hparams.update(rtol=rtol, atol=atol)
    elif method in FIXED_METHODS:
        if rtol is not None or atol is not None:
            raise ValueError(f"rtol/atol apply to the adaptive methods {ADAPTIVE_METHODS}, not to method={method!r}; drop them or pick one of those")
        step_size = None if step_size is None else _positive("step_size", step_size)
        hparams["step_size"] = step_size
    else:
        raise ValueError(f"method must be one of {ADAPTIVE_METHODS + FIXED_METHODS}, got {method!r}")
    solver = Solver(method, rtol, atol, step_size, adjoint)

    if task.kind == "forecast":
        if latent is not None:
            raise ValueError("latent applies to classification tasks only; drop it for a forecasting task")
        channels = 1 if grid else math.prod(task.state_shape)
        ode = AugmentedODE(_field(grid, channels + augment_dim, width, depth), augment_dim, 1.0 / task.dt, solver)
        model: nn.Module = ANODEForecaster(task, ode, grid, state_scale)
    else:
        latent = _integer("latent", 16 if latent is None else latent, 1)
        hparams["latent"] = latent
        if grid:
            encoder: nn.Module = nn.Conv1d(task.n_times, latent, KERNEL_SIZE, padding=KERNEL_SIZE // 2, padding_mode="circular")
        else:
            encoder = nn.Sequential(nn.Flatten(1), nn.Linear(task.n_times * math.prod(task.state_shape), latent))
        ode = AugmentedODE(_field(grid, latent + augment_dim, width, depth), augment_dim, 1.0, solver)
        model = ANODEClassifier(task, encoder, ode, nn.Linear(latent + augment_dim, int(task.n_classes or 0)), grid, state_scale)
    hparams.update(adjoint=adjoint, state_scale=state_scale, field="conv" if grid else "mlp")
    model.hparams = hparams
    return model


def _field(grid: bool, channels: int, width: int, depth: int) -> MLPField | ConvField:
    return ConvField(channels, width, depth) if grid else MLPField(channels, width, depth)


build_anode.task_kinds = ("forecast", "classify")
