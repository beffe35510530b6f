"""The interfaces every other module depends on: task spec, model contract, result record.

The split of responsibilities follows AlgoPerf: the harness owns the data, the loss,
the optimiser, the budget, the evaluation and every measurement; a model owns only its
architecture and its declared hyperparameters.

Model contract (what a factory registered under the ``odebench.models`` entry-point
group must build):

* A factory is called as ``factory(task, **hparams)`` with a :class:`TaskSpec` and the
  user's ``--model-arg`` values, and returns a :class:`torch.nn.Module`. It raises
  ``TypeError``/``ValueError`` for hyperparameters it does not know or accept, and
  :class:`UnsupportedTaskError` for a task kind it cannot handle.
* Forecasting (``task.kind == "forecast"``): ``forward(u0, t)`` with ``u0`` of shape
  ``(batch, *task.state_shape)`` and ``t`` of shape ``(n_times,)`` (``t[0] == 0``)
  returns the trajectory ``(batch, n_times, *task.state_shape)``, whose first entry is
  the prediction at ``t[0]`` (normally ``u0`` itself).
* Classification (``task.kind == "classify"``): ``forward(x)`` with ``x`` of shape
  ``(batch, n_times, *task.state_shape)`` returns logits ``(batch, task.n_classes)``.
* NFE: the module has an integer attribute ``nfe`` that grows by one at every
  evaluation of its vector field or residual function, including evaluations made
  during ``loss.backward()`` (the adjoint). The harness only reads differences of it,
  so a model never resets it. A model without such a function (a floor) keeps it 0.
  Increment it as ``self.__dict__["nfe"] += 1`` inside the function's own ``forward``:
  ``self.nfe += 1`` on a module goes through ``nn.Module.__setattr__`` and costs about
  1.4 µs a call (measured), a few per cent of a small field's evaluation.
* Optionally, ``hparams``: a dict of the resolved hyperparameters, copied into records.
* Optionally, the factory has an attribute ``task_kinds`` (e.g. ``("forecast",)``): the
  task kinds it supports. ``odebench run --model all`` skips the other kinds, and naming
  an unsupported combination explicitly is refused before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

import numpy as np
import torch

__all__ = [
    "SCHEMA_VERSION",
    "TASK_KINDS",
    "TaskKind",
    "TaskSpec",
    "ModelFactory",
    "UnsupportedTaskError",
    "check_model_output",
    "ModelOutputError",
]

#: Version of the JSON result-record layout written by :mod:`odebench.results`.
SCHEMA_VERSION = 1

TaskKind = Literal["forecast", "classify"]
TASK_KINDS: tuple[str, ...] = ("forecast", "classify")


class UnsupportedTaskError(ValueError):
    """A model factory was asked to build a model for a task kind it does not support."""


class ModelOutputError(ValueError):
    """A model returned something that breaks the contract (shape, dtype, NaN/Inf)."""


@dataclass(frozen=True)
class TaskSpec:
    """What a model may know about a task: shapes, time grid and physics constants.

    ``n_times`` is the number of samples per test trajectory: for a forecast the
    initial state plus the horizon, for a classification the observed window.
    ``train_window`` is the rollout length (in samples, initial state included) the
    harness trains forecasting models on. ``eval_times`` are the times (in the task's
    time unit) at which forecast nRMSE is reported. ``lyapunov_exponent`` is the
    largest Lyapunov exponent per time unit, used to express valid prediction time in
    Lyapunov times; ``None`` for non-chaotic systems.
    """

    name: str
    version: str
    kind: TaskKind
    system: str
    state_shape: tuple[int, ...]
    dt: float
    n_times: int
    description: str = ""
    n_classes: int | None = None
    class_names: tuple[str, ...] = ()
    train_window: int | None = None
    eval_times: tuple[float, ...] = ()
    lyapunov_exponent: float | None = None
    vpt_threshold: float = 0.5
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task {self.name!r}: kind must be one of {TASK_KINDS}, got {self.kind!r}")
        if not self.state_shape or any(int(n) <= 0 for n in self.state_shape):
            raise ValueError(f"task {self.name!r}: state_shape must be non-empty and positive, got {self.state_shape}")
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ValueError(f"task {self.name!r}: dt must be positive, got {self.dt}")
        if self.n_times < 2:
            raise ValueError(f"task {self.name!r}: n_times must be >= 2, got {self.n_times}")
        if self.kind == "classify":
            if not self.n_classes or self.n_classes < 2:
                raise ValueError(f"task {self.name!r}: a classification task needs n_classes >= 2")
            if self.class_names and len(self.class_names) != self.n_classes:
                raise ValueError(f"task {self.name!r}: {len(self.class_names)} class names for {self.n_classes} classes")
        else:
            if self.train_window is None or not 2 <= self.train_window <= self.n_times:
                raise ValueError(f"task {self.name!r}: a forecast task needs 2 <= train_window <= n_times")
            horizon = self.dt * (self.n_times - 1)
            if any(not 0 < s <= horizon + 1e-9 for s in self.eval_times):
                raise ValueError(f"task {self.name!r}: eval_times must lie in (0, {horizon}]")

    @property
    def times(self) -> np.ndarray:
        """The time grid of one test trajectory, ``dt * arange(n_times)`` (float64)."""
        return self.dt * np.arange(self.n_times, dtype=np.float64)

    @property
    def horizon(self) -> float:
        """The forecast horizon (time units) or the observed window length."""
        return self.dt * (self.n_times - 1)

    @property
    def lyapunov_time(self) -> float | None:
        """One Lyapunov time, 1/λ1, in the task's time unit (``None`` if not chaotic)."""
        return None if not self.lyapunov_exponent else 1.0 / self.lyapunov_exponent

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, as stored in result records and split attributes."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "system": self.system,
            "state_shape": list(self.state_shape),
            "dt": self.dt,
            "n_times": self.n_times,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "train_window": self.train_window,
            "eval_times": list(self.eval_times),
            "lyapunov_exponent": self.lyapunov_exponent,
            "vpt_threshold": self.vpt_threshold,
            "parameters": dict(self.parameters),
        }


#: ``factory(task, **hparams) -> torch.nn.Module``, registered under ``odebench.models``.
ModelFactory = Callable[..., torch.nn.Module]


def check_model_output(task: TaskSpec, out: Any, batch: int, n_times: int | None = None, *, allow_nonfinite: bool = False) -> torch.Tensor:
    """Check a model's output against the contract; raise :class:`ModelOutputError` if broken.

    ``allow_nonfinite`` lets NaN/Inf through: a forecast that diverges on a long test
    rollout is a result to score (it exceeds every error threshold), not a broken model.
    Returns the output tensor so callers can write ``y = check_model_output(...)``.
    """
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(f"model returned {type(out).__name__}, expected a torch.Tensor")
    if task.kind == "forecast":
        expected = (batch, n_times if n_times is not None else task.n_times, *task.state_shape)
    else:
        expected = (batch, int(task.n_classes or 0))
    if tuple(out.shape) != expected:
        raise ModelOutputError(f"model returned shape {tuple(out.shape)}, expected {expected} for a {task.kind} task")
    if not out.is_floating_point():
        raise ModelOutputError(f"model returned dtype {out.dtype}, expected a floating-point tensor")
    if not allow_nonfinite and not torch.isfinite(out).all():
        raise ModelOutputError("model returned NaN or Inf values")
    return out
