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
architecture and its keyword-only hyperparameters (see :func:`build_anode`). The
pieces every submission needs come from :mod:`odebench.toolkit`: the counted vector
fields, the ODE solve with its step guard, and the checks on inputs and
hyperparameters.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from odebench.spec import HyperParameter, TaskSpec
from odebench.toolkit import (
    KERNEL_SIZE,
    CountedField,
    CountedModel,
    Solver,
    check_forecast_input,
    check_window,
    for_kind,
    make_field,
    nonnegative_int,
    positive_float,
    positive_int,
    solver_hyperparameters,
)

__all__ = [
    "PERIODIC_SYSTEMS",
    "DEFAULT_STATE_SCALE",
    "AugmentedODE",
    "ANODEForecaster",
    "ANODEClassifier",
    "build_anode",
]

#: Systems whose state is a field on a periodic 1-D grid; they get circular convolutions.
PERIODIC_SYSTEMS: tuple[str, ...] = ("heat1d", "ks1d")

#: The default ``state_scale`` by ``(system, kind)``; 1 for any other pair. Lorenz-63
#: states are O(10–40).
DEFAULT_STATE_SCALE: dict[tuple[str, str], float] = {("lorenz63", "forecast"): 10.0}


class AugmentedODE(nn.Module):
    """``[h, a](t)`` for ``d[h, a]/dt = rate · field([h, a])`` from ``[h0, 0]``.

    ``h0`` has its channels on dimension 1: ``(batch, channels)`` for a vector or
    ``(batch, channels, n_points)`` for a field; ``augment_dim`` zero channels are
    appended there. Returns ``(len(t), batch, channels + augment_dim, ...)``.
    """

    def __init__(self, field: CountedField, augment_dim: int, rate: float, solver: Solver) -> None:
        super().__init__()
        self.field = field
        self.augment_dim = augment_dim
        self.rate = rate
        self.solver = solver

    def forward(self, h0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a0 = h0.new_zeros((h0.shape[0], self.augment_dim, *h0.shape[2:]))
        return self.solver.solve(self.field, torch.cat([h0, a0], dim=1), t, rate=self.rate)


class ANODEForecaster(CountedModel):
    """``forward(u0, t) -> (batch, len(t), *state)``: integrate ``[u0 / scale, 0]``, read ``u`` back.

    ``h`` is the scaled state itself and the field is expressed per sample interval,
    ``dh/dt = f(h) / task.dt``. ``latent`` is a classifier's; giving it is an error.
    """

    def __init__(self, task: TaskSpec, hp: dict[str, Any], solver: Solver, latent: Any = None) -> None:
        if latent is not None:
            raise ValueError("latent applies to classification tasks only; drop it for a forecasting task")
        super().__init__()
        self.task = task
        self.grid = hp["field"] == "conv"
        self.state_scale = hp["state_scale"]
        self.channels = 1 if self.grid else math.prod(task.state_shape)
        field = make_field(hp["field"], self.channels + hp["augment_dim"], hp["width"], hp["depth"])
        self.ode = AugmentedODE(field, hp["augment_dim"], 1.0 / task.dt, solver)
        self.hparams = dict(hp)

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_forecast_input(self.task, u0, t)
        h0 = u0 / self.state_scale
        h0 = h0.unsqueeze(1) if self.grid else h0.flatten(1)
        y = self.ode(h0, t.to(device=u0.device, dtype=u0.dtype))
        u = y[1:, :, : self.channels].transpose(0, 1) * self.state_scale
        u = u.reshape(u0.shape[0], t.numel() - 1, *self.task.state_shape)
        return torch.cat([u0.unsqueeze(1), u], dim=1)


class ANODEClassifier(CountedModel):
    """``forward(x) -> logits``: encode the window, integrate ``[h, 0]`` over [0, 1], linear head.

    The encoder is a linear map of the flattened window or, for a periodic field, a
    circular convolution taking the frames as input channels, to ``latent`` channels
    (default 16); the head reads the whole augmented state, averaged over the grid for a
    field.
    """

    def __init__(self, task: TaskSpec, hp: dict[str, Any], solver: Solver, latent: Any = None) -> None:
        super().__init__()
        latent = positive_int("latent", 16 if latent is None else latent)
        self.task = task
        self.grid = hp["field"] == "conv"
        self.state_scale = hp["state_scale"]
        if self.grid:
            self.encoder: nn.Module = nn.Conv1d(task.n_times, latent, KERNEL_SIZE, padding=KERNEL_SIZE // 2, padding_mode="circular")
        else:
            self.encoder = nn.Sequential(nn.Flatten(1), nn.Linear(task.n_times * math.prod(task.state_shape), latent))
        field = make_field(hp["field"], latent + hp["augment_dim"], hp["width"], hp["depth"])
        self.ode = AugmentedODE(field, hp["augment_dim"], 1.0, solver)
        self.head = nn.Linear(latent + hp["augment_dim"], int(task.n_classes or 0))
        self.hparams = {**hp, "latent": latent}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_window(self.task, x, n_times=self.task.n_times)  # the encoder reads whole windows
        h = self.encoder(x / self.state_scale)
        t = torch.tensor([0.0, 1.0], dtype=h.dtype, device=h.device)
        y = self.ode(h, t)[-1]
        return self.head(y.mean(dim=-1) if self.grid else y)


# ----------------------------------------------------------------------------- the factory

_MODELS = {"forecast": ANODEForecaster, "classify": ANODEClassifier}


def build_anode(
    task: TaskSpec,
    *,
    augment_dim: int | None = None,
    width: int | None = None,
    depth: int = 2,
    latent: int | None = None,
    state_scale: float | None = None,
    **solver: Any,
) -> nn.Module:
    """An augmented Neural ODE for ``task`` (forecast or classify; any state shape).

    ``augment_dim``: zero-initialised extra channels (default 5 for a vector state, 2 for a
    periodic field, whose channels are whole fields); 0 gives a plain Neural ODE.
    ``width``/``depth``: hidden units (or channels) and hidden layers of the vector field
    (default width 64 for a vector, 16 for a field). ``latent``: classification only, the
    channels the encoder produces (default 16). ``state_scale``: states are divided by it
    (default 10 for Lorenz-63 forecasting, whose states are O(10–40); 1 otherwise).

    Every other keyword is a setting of :class:`odebench.toolkit.Solver`, passed through:
    ``method`` (default ``dopri5``), ``rtol``/``atol`` for an adaptive method (default
    1e-3/1e-4), ``step_size`` for a fixed-step one (default: one step per output interval,
    so a classifier takes a single step over [0, 1]), ``adjoint`` and ``max_num_steps``
    (beyond it a solve raises :class:`odebench.toolkit.SolverStepLimitError`). Any other
    name is a ``TypeError`` from there.
    """
    model = for_kind(task, _MODELS, "anode")
    grid = task.system in PERIODIC_SYSTEMS and len(task.state_shape) == 1
    settings = Solver(**solver, label="anode").with_defaults(rtol=1e-3, atol=1e-4)
    hp: dict[str, Any] = {
        "augment_dim": nonnegative_int("augment_dim", (2 if grid else 5) if augment_dim is None else augment_dim),
        "width": positive_int("width", (16 if grid else 64) if width is None else width),
        "depth": positive_int("depth", depth),
        **settings.hparams(),
        "state_scale": positive_float("state_scale", DEFAULT_STATE_SCALE.get((task.system, task.kind), 1.0) if state_scale is None else state_scale),
        "field": "conv" if grid else "mlp",
    }
    return model(task, hp, settings, latent)


build_anode.task_kinds = tuple(_MODELS)  # type: ignore[attr-defined]
# Every --model-arg build_anode takes, as 'odebench list models --verbose' shows them.
build_anode.hyperparameters = (  # type: ignore[attr-defined]
    HyperParameter("augment_dim", None, "int >= 0", help="zero-initialised extra channels; 0 is a plain Neural ODE", default_note="5 for a vector state, 2 for a periodic field (heat1d, ks1d)"),
    HyperParameter("width", None, "int >= 1", help="hidden units (channels) of the vector field", default_note="64 for a vector state, 16 for a periodic field"),
    HyperParameter("depth", 2, "int >= 1", help="hidden layers of the vector field"),
    HyperParameter("latent", None, "int >= 1, classification only", help="channels of the encoded window", default_note="16 for classification; refused for forecasting"),
    HyperParameter("state_scale", None, "float > 0", help="states are divided by it before the network sees them", default_note="10 for Lorenz-63 forecasting, 1 otherwise"),
    *solver_hyperparameters(rtol=1e-3, atol=1e-4, step_size_note="one step per output interval (a single step over [0, 1] for classification)"),
)
