"""The interfaces every other module depends on: task spec, objective, model contract.

The split of responsibilities follows AlgoPerf: the harness owns the data, the loss,
the optimiser, the budget, the evaluation and every measurement; a model owns only its
architecture and its declared hyperparameters. What a *task kind* means (how batches
are drawn, the loss, the test metrics and their directions, the main score, the
contract checks) lives in one :class:`Objective` per kind; the harness asks it and
never branches on the kind itself. The built-in objectives are ``forecast`` and
``classify`` (:mod:`odebench.objectives`); a plugin adds a kind through the
``odebench.objectives`` entry-point group.

Model contract (what a factory registered under the ``odebench.models`` entry-point
group must build):

* A factory is called as ``factory(task, **hparams)`` with a :class:`TaskSpec` and the
  user's ``--model-arg`` values, and returns a :class:`torch.nn.Module`. It raises
  ``TypeError``/``ValueError`` for hyperparameters it does not know or accept, and
  :class:`UnsupportedTaskError` for a task kind it cannot handle.
* Forecasting (kind ``forecast``): ``forward(u0, t)`` with ``u0`` of shape
  ``(batch, *task.state_shape)`` and ``t`` of shape ``(n_times,)`` (``t[0] == 0``)
  returns the trajectory ``(batch, n_times, *task.state_shape)``, whose first entry is
  the prediction at ``t[0]`` (normally ``u0`` itself).
* Classification (kind ``classify``): ``forward(x)`` with ``x`` of shape
  ``(batch, n_times, *task.state_shape)`` returns logits ``(batch, task.n_classes)``.
* NFE (:class:`CountsEvaluations`): the module has an integer attribute ``nfe`` that
  grows by one at every evaluation of its vector field or residual function, including
  evaluations made during ``loss.backward()`` (the adjoint). The harness only reads
  differences of it, so a model never resets it. A model without such a function (a
  floor) keeps it 0. :class:`odebench.toolkit.CountedField` does the counting.
* Optionally, ``hparams`` (:class:`ReportsHParams`): a dict of the resolved
  hyperparameters, copied into records.
* Optionally, the factory has an attribute ``task_kinds`` (:class:`DeclaresTaskKinds`,
  e.g. ``("forecast",)``): the task kinds it supports. ``odebench run --model all``
  skips the other kinds, and naming an unsupported combination explicitly is refused
  before anything runs.
* Optionally, the factory has an attribute ``reference = True``: the model is a
  reference (the true system, a physics-feature classifier), shown apart on the
  leaderboard and never ranked.
* Optionally, a forecaster has a method ``with_discretisation(step_factor=1.0,
  method=None)`` (:class:`ChangesDiscretisation`): it returns a model with the *same
  weights* whose internal step is multiplied by ``step_factor`` and, if ``method`` is
  given, integrated by another method (a torchdiffeq name). ``odebench analyze`` uses it
  to ask whether a model learned a vector field or only a map for its training step (a
  ResNet read as forward Euler, an LM-ResNet as a two-step scheme, a Neural ODE under
  another solver). With ``step_factor = 2`` the analysis calls the model on every
  second sample time. A change the model cannot make raises ``ValueError`` and is
  reported as "n/a"; a model without the method shows "n/a" throughout.
* Optionally, the factory has an attribute ``hyperparameters``
  (:class:`DeclaresHyperParameters`): one :class:`HyperParameter` per accepted
  ``--model-arg``, listed by ``odebench list models --verbose``.

:mod:`odebench.toolkit` has what a submitter needs to satisfy this contract: a counted
vector-field base, an ODE solve with a real step guard, and the input checks.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from .symmetries import check_symmetries

if TYPE_CHECKING:  # torch is imported where it is used: reading and writing task data needs none of it
    import torch

if TYPE_CHECKING:  # the protocol module imports this one
    from .protocol import Protocol as TrainingProtocol

__all__ = [
    "SCHEMA_VERSION",
    "TaskSpec",
    "MetricSpec",
    "HyperParameter",
    "Split",
    "TaskData",
    "Objective",
    "TrainingSet",
    "ModelFactory",
    "CountsEvaluations",
    "ReportsHParams",
    "DeclaresTaskKinds",
    "DeclaresHyperParameters",
    "ChangesDiscretisation",
    "UnsupportedTaskError",
    "ModelOutputError",
    "check_model_output",
    "check_output_shape",
    "read_nfe",
]

#: Version of the JSON result-record layout written by :mod:`odebench.results`.
SCHEMA_VERSION = 2


class UnsupportedTaskError(ValueError):
    """A model factory was asked to build a model for a task kind it does not support."""


class ModelOutputError(ValueError):
    """A model returned something that breaks the contract (shape, dtype, NaN/Inf)."""


@dataclass(frozen=True)
class MetricSpec:
    """One test metric of a task: its record key, how it is shown, and which way is better.

    ``higher_is_better`` is ``None`` for an informational metric (shown, never ranked
    nor bolded). ``format`` is a Python format spec for one value (``".2f"``, ``"#.3g"``,
    ``".0%"``); a trailing ``.`` left by ``#`` formats is dropped when shown.
    """

    key: str
    label: str
    higher_is_better: bool | None
    format: str = "#.3g"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "higher_is_better": self.higher_is_better, "format": self.format}


@dataclass(frozen=True)
class HyperParameter:
    """One ``--model-arg`` a factory accepts, as ``odebench list models --verbose`` shows it.

    ``default`` is a JSON value, or ``None`` with ``default_note`` saying what it depends
    on (e.g. "per system: 16 on KS, 64 elsewhere"); ``allowed`` is human-readable
    ("int >= 1", "one of: rk4, dopri5").
    """

    name: str
    default: Any
    allowed: str
    help: str = ""
    default_note: str = ""

    def default_text(self) -> str:
        return self.default_note or repr(self.default)


@dataclass(frozen=True)
class TaskSpec:
    """What a model may know about a task: shapes, time grid and physics constants.

    ``kind`` names the task's :class:`Objective` (``"forecast"``, ``"classify"`` or a
    plugin's). ``n_times`` is the number of samples per test trajectory: for a forecast
    the initial state plus the horizon, for a classification the observed window.
    ``train_window`` is the rollout length (in samples, initial state included) the
    harness trains forecasting models on. ``eval_times`` are the times (in the task's
    time unit) at which forecast nRMSE is reported. ``lyapunov_exponent`` is the
    largest Lyapunov exponent per time unit, used to express valid prediction time in
    Lyapunov times; ``None`` for non-chaotic systems. ``pooled_sigma``: the state is a
    field whose statistics do not depend on position (heat, KS on a periodic domain), so
    nRMSE divides by one σ pooled over every grid point instead of one σ per dimension,
    which would make the score depend on each point's sampling noise. ``symmetries``:
    names from :data:`odebench.symmetries.SYMMETRIES` that map the system's solutions
    (and a window's label) to others; a protocol with ``augment`` applies them at random
    to every training batch.
    """

    name: str
    version: str
    kind: str
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
    pooled_sigma: bool = False
    symmetries: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a task needs a non-empty string name, got {self.name!r}")
        if not self.state_shape or any(int(n) <= 0 for n in self.state_shape):
            raise ValueError(f"task {self.name!r}: state_shape must be non-empty and positive, got {self.state_shape}")
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ValueError(f"task {self.name!r}: dt must be positive, got {self.dt}")
        if self.n_times < 2:
            raise ValueError(f"task {self.name!r}: n_times must be >= 2, got {self.n_times}")
        check_symmetries(self.symmetries, self.state_shape, self.name)
        self.objective.check_spec(self)

    @property
    def objective(self) -> Objective:
        """The :class:`Objective` of this task's kind (``ValueError`` for an unknown kind)."""
        from .objectives import objective_for  # the objectives import this module

        return objective_for(self.kind, task=self.name)

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        """The test metrics shown for this task, main score first, in display order."""
        return self.objective.metrics(self)

    @property
    def main_metric(self) -> str:
        """The record key of the main score (ranked on the leaderboard)."""
        return self.objective.main_metric(self)

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
        """A JSON-ready description, as stored in result records.

        It carries everything needed to read a result without the task installed: the
        time grid, the physics constants, the description, the main score and every
        metric's label, format and direction.
        """
        return {
            **self.defining_dict(),
            "description": self.description,
            "symmetries": list(self.symmetries),
            "main_metric": self.main_metric,
            "metrics": [m.to_dict() for m in self.metrics],
        }

    def defining_dict(self) -> dict[str, Any]:
        """The fields that define the task's data, as stored in the split files' attributes.

        ``pooled_sigma`` came after the first task versions and is written only when set,
        so a spec without it reads back, and writes, exactly as before.
        """
        defining = {
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
        if self.pooled_sigma:
            defining["pooled_sigma"] = True
        return defining

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskSpec:
        """The spec back from :meth:`to_dict` (derived entries are recomputed, not read)."""
        fields = {
            "name": data["name"],
            "version": data["version"],
            "kind": data["kind"],
            "system": data["system"],
            "state_shape": tuple(int(n) for n in data["state_shape"]),
            "dt": float(data["dt"]),
            "n_times": int(data["n_times"]),
            "description": data.get("description", ""),
            "n_classes": data.get("n_classes"),
            "class_names": tuple(data.get("class_names") or ()),
            "train_window": data.get("train_window"),
            "eval_times": tuple(float(t) for t in data.get("eval_times") or ()),
            "lyapunov_exponent": data.get("lyapunov_exponent"),
            "vpt_threshold": float(data.get("vpt_threshold", 0.5)),
            "parameters": dict(data.get("parameters") or {}),
            "pooled_sigma": bool(data.get("pooled_sigma", False)),
            "symmetries": tuple(data.get("symmetries") or ()),
        }
        return cls(**fields)


@dataclass(frozen=True)
class Split:
    """One split as arrays: ``u`` (n, n_times, *state), its time grid ``t`` and, for
    tasks with labels, ``y`` (n,) integer labels."""

    u: np.ndarray
    t: np.ndarray
    y: np.ndarray | None = None


@dataclass(frozen=True)
class TaskData:
    """The three splits of a task, as an objective receives them."""

    train: Split
    val: Split
    test: Split

    @property
    def times(self) -> np.ndarray:
        """The time grid of a test item, shifted to start at 0 (float64)."""
        t = np.asarray(self.test.t, dtype=np.float64)
        return t - t[0]


class TrainingSet(ABC):
    """The per-run training side of an objective: batches, loss, fixed validation batches."""

    #: Fixed validation batches, the same for every model and run seed.
    validation: Sequence[Any]

    @abstractmethod
    def sample(self) -> Any:
        """One training batch, drawn with the run's seed."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """The scalar training (and validation) loss of ``model`` on ``batch``."""


class Objective(ABC):
    """Everything a task kind means, in one place: the harness asks it, never the kind.

    A kind declares its spec requirements, its data layout, how batches are drawn, the
    loss, how a model is called on a test item, the output contract, the test metrics
    with their directions, and the main score. Register a new kind's instance under the
    ``odebench.objectives`` entry-point group.
    """

    kind: ClassVar[str]

    # --- the spec and the data ---------------------------------------------------
    @abstractmethod
    def check_spec(self, task: TaskSpec) -> None:
        """Raise ``ValueError`` if ``task`` lacks what this kind needs."""

    @abstractmethod
    def split_times(self, task: TaskSpec, split: str) -> tuple[int, bool]:
        """Samples a trajectory of ``split`` needs: ``(n, exact)``, exactly ``n`` or at least ``n``."""

    @abstractmethod
    def check_labels(self, task: TaskSpec, where: str, y: np.ndarray | None, n: int) -> None:
        """Raise ``ValueError`` (naming ``where``) if a split's labels do not fit this kind."""

    def adapt_protocol(self, task: TaskSpec, protocol: TrainingProtocol) -> TrainingProtocol:
        """The profile's protocol adapted to this kind (default: unchanged)."""
        return protocol

    # --- training ----------------------------------------------------------------
    @abstractmethod
    def training_set(self, task: TaskSpec, data: TaskData, protocol: TrainingProtocol, device: torch.device, seed: int) -> TrainingSet:
        """Training and validation batches and the loss for one run."""

    # --- the model's interface ---------------------------------------------------
    @abstractmethod
    def output_shape(self, task: TaskSpec, batch: int, n_times: int | None = None) -> tuple[int, ...]:
        """The output shape the contract requires for ``batch`` items of ``n_times`` samples."""

    @abstractmethod
    def call(self, task: TaskSpec, model: torch.nn.Module, items: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Run ``model`` on whole items ``(batch, n_times, *state)`` observed at times ``t``."""

    def allows_nonfinite(self, task: TaskSpec) -> bool:
        """Whether a test output may hold NaN/Inf (a diverged forecast is scored, not failed)."""
        return False

    @abstractmethod
    def example(self, task: TaskSpec, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random items and their times for ``odebench validate``: ``(items, t)``."""

    @abstractmethod
    def example_loss(self, task: TaskSpec, out: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """A loss on an example output, for the backward check of ``odebench validate``."""

    def describe_io(self, task: TaskSpec) -> str:
        """One line on what the model gets and returns, for ``odebench list tasks --verbose``."""
        return f"a {self.kind} task"

    def contract_notes(self, task: TaskSpec, out: torch.Tensor, items: torch.Tensor) -> list[str]:
        """Warnings about an output that satisfies the contract but looks wrong."""
        return []

    # --- scoring -----------------------------------------------------------------
    @abstractmethod
    def metrics(self, task: TaskSpec) -> tuple[MetricSpec, ...]:
        """The test metrics shown for ``task``, main score first, in display order."""

    @abstractmethod
    def main_metric(self, task: TaskSpec) -> str:
        """The record key of the main score."""

    @abstractmethod
    def score(self, task: TaskSpec, outputs: np.ndarray, data: TaskData, n: int) -> dict[str, Any]:
        """The test metrics of ``outputs`` (float64, for the first ``n`` test items).

        Optionally under ``"items"``: per-item scores in test-split order, with at least
        the main metric as a list whose mean is the metric (``None`` for an infinite
        value); the record keeps them apart from the metrics, and the leaderboard
        computes confidence intervals and significance from them.
        """


# --- the model contract, as types ----------------------------------------------------


@runtime_checkable
class CountsEvaluations(Protocol):
    """A model that counts its vector-field (or residual-function) evaluations."""

    nfe: int


@runtime_checkable
class ReportsHParams(Protocol):
    """A model that reports its resolved hyperparameters."""

    hparams: dict[str, Any]


class ModelFactory(Protocol):
    """``factory(task, **hparams) -> torch.nn.Module``, registered under ``odebench.models``."""

    def __call__(self, task: TaskSpec, /, **hparams: Any) -> torch.nn.Module: ...


@runtime_checkable
class DeclaresTaskKinds(Protocol):
    """A factory that declares the task kinds it supports."""

    task_kinds: tuple[str, ...]


@runtime_checkable
class ChangesDiscretisation(Protocol):
    """A forecaster that can return itself (same weights) under another discretisation."""

    def with_discretisation(self, step_factor: float = 1.0, method: str | None = None) -> torch.nn.Module: ...


@runtime_checkable
class DeclaresHyperParameters(Protocol):
    """A factory that declares the ``--model-arg`` values it accepts."""

    hyperparameters: tuple[HyperParameter, ...]


def read_nfe(model: torch.nn.Module) -> int:
    """The model's evaluation counter; :class:`ModelOutputError` if it is not an ``int``."""
    value = getattr(model, "nfe", None)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ModelOutputError(f"model attribute 'nfe' is {type(value).__name__}, expected int")
    return value


def check_model_output(task: TaskSpec, out: Any, batch: int, n_times: int | None = None, *, allow_nonfinite: bool = False) -> torch.Tensor:
    """Check a model's output against the contract; raise :class:`ModelOutputError` if broken.

    The expected shape comes from the task's objective. ``allow_nonfinite`` lets NaN/Inf
    through: a forecast that diverges on a long test rollout is a result to score (it
    exceeds every error threshold), not a broken model. Returns the output tensor so
    callers can write ``y = check_model_output(...)``.
    """
    import torch

    check_output_shape(task, out, task.objective.output_shape(task, batch, n_times))
    if not out.is_floating_point():
        raise ModelOutputError(f"model returned dtype {out.dtype}, expected a floating-point tensor")
    if not allow_nonfinite and not torch.isfinite(out).all():
        raise ModelOutputError("model returned NaN or Inf values")
    return out


def check_output_shape(task: TaskSpec, out: Any, expected: tuple[int, ...]) -> None:
    """Type and shape only, so a training step never waits on the GPU."""
    import torch

    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(f"model returned {type(out).__name__}, expected a torch.Tensor")
    if tuple(out.shape) != tuple(expected):
        raise ModelOutputError(f"model returned shape {tuple(out.shape)}, expected {tuple(expected)} for a {task.kind} task")
