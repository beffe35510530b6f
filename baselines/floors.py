"""Floors: the scores any model must beat to have learned something.

``persistence`` and ``majority`` are floors everywhere. ``linear`` is a floor on the
nonlinear systems, but on ``heat-forecast`` it is the exact model class (the heat
propagator over one sample interval is a linear map), so there it is a *ceiling*: the
standard profile trains it to an nRMSE of about 1e-7, which no nonlinear baseline
reaches. The leaderboard shows it as measured; read it as "how close to exact".

* ``persistence`` (forecast): ``u(t) = u0`` for every ``t``; no parameters, NFE 0.
* ``majority`` (classify): one learnable logit per class, independent of the input.
  Trained with cross-entropy its softmax converges to the class frequencies, so it
  predicts the most frequent class; NFE 0.
* ``linear`` (both kinds): the best *linear* model.
  Forecast: a DMD-style affine map per sample interval on the scaled state,
  ``z_{n+1} = z_n + A z_n + b``, starting at ``A = 0, b = 0`` (persistence); a heat
  equation with fixed diffusivity is exactly such a map. Its NFE counts evaluations of
  the map, one per interval, like the ResNet it is a linear special case of.
  Classify: logistic regression on the per-dimension time means of ``z`` and ``z²``
  over the window (first and second moments); NFE 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..spec import TaskSpec
from ..toolkit import check_forecast_input, check_window, for_kind, positive_float
from ._options import STATE_SCALE, system_defaults
from .resnet import check_uniform_grid

__all__ = [
    "Persistence",
    "Majority",
    "LinearForecaster",
    "MomentClassifier",
    "build_persistence",
    "build_majority",
    "build_linear",
]


class Persistence(nn.Module):
    """``forward(u0, t)`` repeats ``u0`` at every time of ``t``."""

    def __init__(self, task: TaskSpec) -> None:
        super().__init__()
        self.task = task
        self.nfe = 0
        self.hparams: dict[str, object] = {}

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_forecast_input(self.task, u0, t)
        return u0.unsqueeze(1).expand(u0.shape[0], t.numel(), *u0.shape[1:]).clone()


class Majority(nn.Module):
    """``forward(x)`` returns the same learnable logits for every input."""

    def __init__(self, task: TaskSpec) -> None:
        super().__init__()
        self.task = task
        self.logits = nn.Parameter(torch.zeros(int(task.n_classes or 0)))
        self.nfe = 0
        self.hparams: dict[str, object] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_window(self.task, x)
        return self.logits.expand(x.shape[0], -1)


class _LinearFloor(nn.Module):
    """What both linear floors hold: the task, the state scale (their only hyperparameter) and ``nfe``."""

    def __init__(self, task: TaskSpec, state_scale: float) -> None:
        super().__init__()
        self.task = task
        self.state_scale = state_scale
        self.hparams: dict[str, object] = {"state_scale": state_scale}
        self.nfe = 0


class LinearForecaster(_LinearFloor):
    """``z_{n+1} = z_n + A z_n + b`` on the flattened scaled state, one step per sample interval."""

    def __init__(self, task: TaskSpec, state_scale: float) -> None:
        super().__init__(task, state_scale)
        dim = math.prod(task.state_shape)
        self.step = nn.Linear(dim, dim)
        with torch.no_grad():
            self.step.weight.zero_()
            self.step.bias.zero_()

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_forecast_input(self.task, u0, t)
        intervals = check_uniform_grid(self.task, t)
        z = u0.to(self.step.weight.dtype).flatten(1) / self.state_scale
        traj = [z]
        for _ in range(intervals):
            self.__dict__["nfe"] += 1  # a plain dict update: nn.Module.__setattr__ costs ~1.4 µs a call
            z = z + self.step(z)
            traj.append(z)
        out = torch.stack(traj, dim=1) * self.state_scale
        return out.reshape(u0.shape[0], intervals + 1, *self.task.state_shape)


class MomentClassifier(_LinearFloor):
    """Logistic regression on the time means of ``z`` and ``z²`` of each state dimension."""

    def __init__(self, task: TaskSpec, state_scale: float) -> None:
        super().__init__(task, state_scale)
        self.linear = nn.Linear(2 * math.prod(task.state_shape), int(task.n_classes or 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_window(self.task, x)
        z = x.to(self.linear.weight.dtype).flatten(2) / self.state_scale
        return self.linear(torch.cat([z.mean(dim=1), (z * z).mean(dim=1)], dim=1))


_PERSISTENCE = {"forecast": Persistence}
_MAJORITY = {"classify": Majority}
_LINEAR: dict[str, type[_LinearFloor]] = {"forecast": LinearForecaster, "classify": MomentClassifier}


def build_persistence(task: TaskSpec) -> nn.Module:
    """The persistence forecast; :class:`~odebench.spec.UnsupportedTaskError` for other kinds."""
    return for_kind(task, _PERSISTENCE, "persistence", hint="use majority to classify")(task)


def build_majority(task: TaskSpec) -> nn.Module:
    """The majority-class classifier; :class:`~odebench.spec.UnsupportedTaskError` for other kinds."""
    return for_kind(task, _MAJORITY, "majority", hint="use persistence to forecast")(task)


def build_linear(task: TaskSpec, *, state_scale: float | None = None) -> nn.Module:
    """The linear floor for either task kind; ``state_scale`` as for the other baselines."""
    build = for_kind(task, _LINEAR, "linear")
    return build(task, positive_float("state_scale", system_defaults(task).state_scale if state_scale is None else state_scale))


# The task kinds each factory can build for; the CLI skips other kinds when running 'all'.
build_persistence.task_kinds = tuple(_PERSISTENCE)  # type: ignore[attr-defined]
build_majority.task_kinds = tuple(_MAJORITY)  # type: ignore[attr-defined]
build_linear.task_kinds = tuple(_LINEAR)  # type: ignore[attr-defined]

# The --model-arg values each factory takes, as 'odebench list models --verbose' shows them.
build_persistence.hyperparameters = ()  # type: ignore[attr-defined]
build_majority.hyperparameters = ()  # type: ignore[attr-defined]
build_linear.hyperparameters = (STATE_SCALE,)  # type: ignore[attr-defined]
