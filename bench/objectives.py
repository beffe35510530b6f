"""The built-in objectives, one per task kind: ``forecast`` and ``classify``.

An :class:`~odebench.spec.Objective` is the one place that knows what a task kind
means; training, evaluation, ``validate``, the runner's summary line and (through the
spec stored in every record) the leaderboard all ask it. A plugin adds a kind by
registering an ``Objective`` instance (or a class with a no-argument constructor)
under the ``odebench.objectives`` entry-point group; :func:`objective_for` finds it.

* ``forecast``: the model maps an initial state to a trajectory. Training rolls out
  over windows of ``task.train_window`` samples drawn uniformly from the training
  trajectories, with the squared error normalised by the training split's
  per-dimension σ. Scores: nRMSE(t) and, for chaotic systems, the valid prediction
  time in Lyapunov times (the main score); otherwise the mean nRMSE.
* ``classify``: the model maps a window to class logits. Training uses cross-entropy
  on whole windows, with twice the profile's batch size. Scores: accuracy (the main
  score) and macro-F1.
"""

from __future__ import annotations

import importlib.metadata as metadata
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .metrics import classify_items, classify_metrics, forecast_items, forecast_metrics
from .spec import MetricSpec, Objective, TaskData, TaskSpec, TrainingSet, check_output_shape
from .symmetries import augment

if TYPE_CHECKING:  # torch is imported where used: a task spec (and data building) needs none of it
    import torch

    from .protocol import Protocol

__all__ = ["OBJECTIVE_GROUP", "VAL_SEED", "ForecastObjective", "ClassifyObjective", "BUILTIN_OBJECTIVES", "objective_for", "training_sigma"]

OBJECTIVE_GROUP = "odebench.objectives"

#: The validation windows are drawn once with this seed, the same for every model and run seed.
VAL_SEED = 12345


def training_sigma(data: TaskData, task: TaskSpec | None = None) -> np.ndarray:
    """nRMSE's σ, from the training split (float64), one value per state dimension.

    Per dimension by default; for a task with ``pooled_sigma`` (a field whose statistics
    do not depend on position) the one standard deviation over every grid point,
    repeated over the state's shape.
    """
    u = np.asarray(data.train.u, dtype=np.float64)
    if task is not None and task.pooled_sigma:
        return np.full(u.shape[2:], u.std())
    return u.std(axis=(0, 1))


# --- forecast --------------------------------------------------------------------------


class _ForecastTraining(TrainingSet):
    def __init__(self, task: TaskSpec, data: TaskData, protocol: Protocol, device: torch.device, seed: int) -> None:
        import torch

        self.task = task
        self.device = device
        self.batch_size = protocol.batch_size
        self.rng = np.random.default_rng(seed)
        self.symmetries = task.symmetries if protocol.augment else ()
        self.generator = torch.Generator().manual_seed(seed)
        self.train_u = torch.as_tensor(np.asarray(data.train.u, dtype=np.float32), device=device)
        window = int(protocol.rollout or task.train_window or 2)
        if self.train_u.shape[1] < window or data.val.u.shape[1] < window:
            short = min(self.train_u.shape[1], data.val.u.shape[1])
            raise ValueError(f"training or validation trajectories have {short} samples, fewer than the rollout of {window}")
        self.window = window
        self.t = torch.as_tensor(task.dt * np.arange(window), dtype=torch.float32, device=device)
        self.sigma = torch.as_tensor(np.asarray(training_sigma(data, task), dtype=np.float32), device=device)
        self.input_noise = float(protocol.input_noise)
        val_u = data.val.u
        val_rng = np.random.default_rng(VAL_SEED)
        n_val = protocol.val_batches * protocol.batch_size
        idx = val_rng.integers(0, val_u.shape[0], n_val)
        start = val_rng.integers(0, val_u.shape[1] - window + 1, n_val)
        val = np.stack([val_u[i, s : s + window] for i, s in zip(idx, start)])
        self.validation = [torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for v in np.array_split(val, protocol.val_batches)]

    def sample(self) -> torch.Tensor:
        import torch

        n = self.batch_size
        idx = torch.as_tensor(self.rng.integers(0, self.train_u.shape[0], n), device=self.device)
        start = torch.as_tensor(self.rng.integers(0, self.train_u.shape[1] - self.window + 1, n), device=self.device)
        offsets = start[:, None] + torch.arange(self.window, device=self.device)[None, :]
        # advanced indexing copies, so the in-place edit below never touches train_u
        batch = augment(self.train_u[idx[:, None], offsets], self.symmetries, self.generator)
        if self.input_noise > 0:  # the start only: the model learns to pull a perturbed state back to the truth
            noise = torch.randn(batch[:, 0].shape, generator=self.generator).to(batch.device)
            batch[:, 0] += self.input_noise * self.sigma * noise
        return batch

    def loss(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        pred = model(batch[:, 0], self.t)
        check_output_shape(self.task, pred, tuple(batch.shape))
        z = (pred[:, 1:] - batch[:, 1:]) / self.sigma
        return (z * z).mean()


class ForecastObjective(Objective):
    """Initial state → trajectory; scored by nRMSE(t) and valid prediction time."""

    kind = "forecast"

    def check_spec(self, task: TaskSpec) -> None:
        if task.train_window is None or not 2 <= task.train_window <= task.n_times:
            raise ValueError(f"task {task.name!r}: a forecast task needs 2 <= train_window <= n_times")
        if any(not 0 < s <= task.horizon + 1e-9 for s in task.eval_times):
            raise ValueError(f"task {task.name!r}: eval_times must lie in (0, {task.horizon}]")

    def split_times(self, task: TaskSpec, split: str) -> tuple[int, bool]:
        # The test split is scored over the whole horizon; training and validation
        # trajectories only need room for one training window.
        return (task.n_times, True) if split == "test" else (int(task.train_window or 2), False)

    def check_labels(self, task: TaskSpec, where: str, y: np.ndarray | None, n: int) -> None:
        if y is not None:
            raise ValueError(f"{where}: a forecast split has no labels")

    def training_set(self, task: TaskSpec, data: TaskData, protocol: Protocol, device: torch.device, seed: int) -> TrainingSet:
        return _ForecastTraining(task, data, protocol, device, seed)

    def output_shape(self, task: TaskSpec, batch: int, n_times: int | None = None) -> tuple[int, ...]:
        return (batch, n_times if n_times is not None else task.n_times, *task.state_shape)

    def call(self, task: TaskSpec, model: torch.nn.Module, items: torch.Tensor, t: torch.Tensor) -> torch.Tensor:

        out: torch.Tensor = model(items[:, 0], t)
        return out

    def allows_nonfinite(self, task: TaskSpec) -> bool:
        return True

    def describe_io(self, task: TaskSpec) -> str:
        return f"input: the initial state · output: the trajectory over {task.horizon:g} time units · trained on windows of {task.train_window} samples"

    def example(self, task: TaskSpec, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        steps = int(task.train_window or task.n_times)
        items = torch.randn((batch, steps, *task.state_shape), generator=generator)
        t = torch.as_tensor(task.dt * torch.arange(steps, dtype=torch.float64), dtype=torch.float32)
        return items, t

    def example_loss(self, task: TaskSpec, out: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (out[:, 1:] - items[:, 1:]).pow(2).mean()

    def contract_notes(self, task: TaskSpec, out: torch.Tensor, items: torch.Tensor) -> list[str]:
        import torch

        if not torch.allclose(out[:, 0].detach(), items[:, 0], atol=1e-5, rtol=1e-5):
            return ["the forecast's first entry differs from u0"]
        return []

    def metrics(self, task: TaskSpec) -> tuple[MetricSpec, ...]:
        lam = task.lyapunov_exponent
        if lam:
            # Chaotic: every time is read in Lyapunov times, the unit of the main score.
            horizons = [MetricSpec(f"nrmse@{s:g}", f"nRMSE@{s * lam:.2g} LT", False, "#.3g") for s in task.eval_times]
            return (
                MetricSpec("vpt", "VPT (Lyapunov times)", True, ".2f"),
                *horizons,
                MetricSpec("nrmse_mean", "nRMSE mean", False, "#.3g"),
                MetricSpec("vpt_capped_fraction", "capped", None, ".0%"),
            )
        horizons = [MetricSpec(f"nrmse@{s:g}", f"nRMSE@{s:g}", False, "#.3g") for s in task.eval_times]
        return (MetricSpec("nrmse_mean", "nRMSE mean", False, "#.3g"), *horizons)

    def main_metric(self, task: TaskSpec) -> str:
        return "vpt" if task.lyapunov_exponent else "nrmse_mean"

    def score(self, task: TaskSpec, outputs: np.ndarray, data: TaskData, n: int) -> dict[str, Any]:
        target = np.asarray(data.test.u[:n], dtype=np.float32).astype(np.float64)
        sigma = training_sigma(data, task)
        metrics = forecast_metrics(outputs, target, sigma, data.times, task.eval_times, task.lyapunov_exponent, task.vpt_threshold)
        metrics["items"] = forecast_items(outputs, target, sigma, data.times, task.lyapunov_exponent, task.vpt_threshold)
        return metrics


# --- classify --------------------------------------------------------------------------


class _ClassifyTraining(TrainingSet):
    def __init__(self, task: TaskSpec, data: TaskData, protocol: Protocol, device: torch.device, seed: int) -> None:
        import torch

        if data.train.y is None or data.val.y is None:
            raise ValueError(f"task {task.name!r}: classification needs labels in the train and val splits")
        self.task = task
        self.device = device
        self.batch_size = protocol.batch_size
        self.rng = np.random.default_rng(seed)
        self.symmetries = task.symmetries if protocol.augment else ()
        self.generator = torch.Generator().manual_seed(seed)
        self.train_u = torch.as_tensor(np.asarray(data.train.u, dtype=np.float32), device=device)
        self.train_y = torch.as_tensor(np.asarray(data.train.y, dtype=np.int64), device=device)
        n_val = min(data.val.u.shape[0], protocol.val_batches * protocol.eval_batch_size)
        xs = np.asarray(data.val.u[:n_val], dtype=np.float32)
        ys = np.asarray(data.val.y[:n_val], dtype=np.int64)
        chunks = max(1, math.ceil(n_val / protocol.eval_batch_size))
        self.validation = [
            (torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)) for x, y in zip(np.array_split(xs, chunks), np.array_split(ys, chunks))
        ]

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        idx = torch.as_tensor(self.rng.integers(0, self.train_u.shape[0], self.batch_size), device=self.device)
        return augment(self.train_u[idx], self.symmetries, self.generator), self.train_y[idx]

    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        import torch.nn.functional as F

        x, y = batch
        logits = model(x)
        check_output_shape(self.task, logits, (x.shape[0], int(self.task.n_classes or 0)))
        return F.cross_entropy(logits, y)


class ClassifyObjective(Objective):
    """Observed window → class logits; scored by accuracy and macro-F1."""

    kind = "classify"

    def check_spec(self, task: TaskSpec) -> None:
        if not task.n_classes or task.n_classes < 2:
            raise ValueError(f"task {task.name!r}: a classification task needs n_classes >= 2")
        if task.class_names and len(task.class_names) != task.n_classes:
            raise ValueError(f"task {task.name!r}: {len(task.class_names)} class names for {task.n_classes} classes")

    def split_times(self, task: TaskSpec, split: str) -> tuple[int, bool]:
        return task.n_times, True

    def check_labels(self, task: TaskSpec, where: str, y: np.ndarray | None, n: int) -> None:
        if y is None or y.shape != (n,):
            raise ValueError(f"{where}: a classification split needs labels y of shape ({n},)")
        if y.min() < 0 or y.max() >= int(task.n_classes or 0):
            raise ValueError(f"{where}: labels must lie in [0, {task.n_classes})")

    def adapt_protocol(self, task: TaskSpec, protocol: Protocol) -> Protocol:
        # A window is one sample; twice the batch keeps the gradient noise comparable.
        return replace(protocol, batch_size=2 * protocol.batch_size)

    def training_set(self, task: TaskSpec, data: TaskData, protocol: Protocol, device: torch.device, seed: int) -> TrainingSet:
        return _ClassifyTraining(task, data, protocol, device, seed)

    def output_shape(self, task: TaskSpec, batch: int, n_times: int | None = None) -> tuple[int, ...]:
        return (batch, int(task.n_classes or 0))

    def call(self, task: TaskSpec, model: torch.nn.Module, items: torch.Tensor, t: torch.Tensor) -> torch.Tensor:

        out: torch.Tensor = model(items)
        return out

    def describe_io(self, task: TaskSpec) -> str:
        names = f" ({', '.join(task.class_names)})" if task.class_names else ""
        return f"input: a window of {task.n_times} samples · output: logits over {task.n_classes} classes{names}"

    def example(self, task: TaskSpec, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        items = torch.randn((batch, task.n_times, *task.state_shape), generator=generator)
        return items, torch.as_tensor(task.times, dtype=torch.float32)

    def example_loss(self, task: TaskSpec, out: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        return F.cross_entropy(out, torch.zeros(out.shape[0], dtype=torch.long))

    def metrics(self, task: TaskSpec) -> tuple[MetricSpec, ...]:
        return (MetricSpec("accuracy", "accuracy", True, ".3f"), MetricSpec("macro_f1", "macro-F1", True, ".3f"))

    def main_metric(self, task: TaskSpec) -> str:
        return "accuracy"

    def score(self, task: TaskSpec, outputs: np.ndarray, data: TaskData, n: int) -> dict[str, Any]:
        if data.test.y is None:
            raise ValueError(f"task {task.name!r}: the test split has no labels")
        labels = np.asarray(data.test.y[:n])
        metrics: dict[str, Any] = dict(classify_metrics(outputs, labels, int(task.n_classes or 0)))
        metrics["items"] = classify_items(outputs, labels)
        return metrics


# --- lookup ----------------------------------------------------------------------------

BUILTIN_OBJECTIVES: dict[str, Objective] = {o.kind: o for o in (ForecastObjective(), ClassifyObjective())}


_PLUGIN_OBJECTIVES: dict[str, Objective] = {}


def _plugin_objective(kind: str) -> Objective | None:
    """The plugin objective of ``kind``, loaded once (a miss is not remembered: it may be installed later)."""
    if kind in _PLUGIN_OBJECTIVES:
        return _PLUGIN_OBJECTIVES[kind]
    for ep in metadata.entry_points(group=OBJECTIVE_GROUP, name=kind):
        try:
            obj = ep.load()
        except Exception as exc:  # a plugin's import can raise anything
            raise ValueError(f"task kind {kind!r}: entry point {ep.value!r} failed to load: {type(exc).__name__}: {exc}") from exc
        if isinstance(obj, type) and issubclass(obj, Objective):
            obj = obj()
        if not isinstance(obj, Objective):
            raise ValueError(f"task kind {kind!r}: entry point {ep.value!r} is a {type(obj).__name__}, expected an odebench.spec.Objective")
        if obj.kind != kind:
            raise ValueError(f"task kind {kind!r}: entry point {ep.value!r} is the objective of kind {obj.kind!r}")
        _PLUGIN_OBJECTIVES[kind] = obj
        return obj
    return None


def objective_for(kind: str, task: str | None = None) -> Objective:
    """The objective of task kind ``kind``: a built-in one, or a plugin's from ``odebench.objectives``."""
    if kind in BUILTIN_OBJECTIVES:
        return BUILTIN_OBJECTIVES[kind]
    found = _plugin_objective(str(kind))
    if found is not None:
        return found
    where = f"task {task!r}: " if task else ""
    known = sorted(BUILTIN_OBJECTIVES) + sorted(ep.name for ep in metadata.entry_points(group=OBJECTIVE_GROUP) if ep.name not in BUILTIN_OBJECTIVES)
    raise ValueError(f"{where}unknown task kind {kind!r}: known kinds are {', '.join(known)}; a new kind registers an odebench.spec.Objective under the {OBJECTIVE_GROUP!r} entry-point group")
