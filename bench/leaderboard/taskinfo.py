"""What the board needs to know about a task, read from the spec stored in its records.

A record carries ``task.spec`` (``TaskSpec.to_dict()``): the main score and every
metric's label, format and direction, λ1 and the VPT threshold. The board reads these
plain values and never loads the task, its objective or the registry, so a board is a
function of its records alone and a plugin's metrics are shown the way the plugin
declared them. (``TaskSpec.from_dict`` would ask the task's objective, so it is not
used here.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .formats import check_format, format_value, header

__all__ = ["SpecError", "MetricInfo", "TaskInfo", "read_task_info"]


class SpecError(ValueError):
    """A record's ``task.spec`` is not one the board can read."""


@dataclass(frozen=True)
class MetricInfo:
    """One declared test metric: record key, label, direction (``None``: informational) and format."""

    key: str
    label: str
    higher_is_better: bool | None
    format: str

    @property
    def header(self) -> str:
        """The column header: the label with its direction arrow."""
        return header(self.label, self.higher_is_better)

    def fmt(self, value: float) -> str:
        """One finite value as shown."""
        return format_value(value, self.format)


@dataclass(frozen=True)
class TaskInfo:
    """A task as its spec describes it to the board."""

    name: str
    version: str
    kind: str
    main_metric: str
    metrics: tuple[MetricInfo, ...]  # display order, main score first
    lyapunov_exponent: float | None
    vpt_threshold: float | None

    @property
    def main(self) -> MetricInfo:
        """The main score's metric."""
        return next(m for m in self.metrics if m.key == self.main_metric)

    @property
    def secondary(self) -> tuple[MetricInfo, ...]:
        """Every other declared metric, in the spec's order."""
        return tuple(m for m in self.metrics if m.key != self.main_metric)

    @property
    def has_vpt(self) -> bool:
        """Whether the task reports a valid prediction time (and so has a VPT threshold)."""
        return any(m.key == "vpt" for m in self.metrics)

    @property
    def time_scale(self) -> float:
        """Factor from the task's time unit to the unit its times are shown in (λ1 for Lyapunov times)."""
        return float(self.lyapunov_exponent) if self.lyapunov_exponent else 1.0

    @property
    def time_label(self) -> str:
        """The axis label of time: Lyapunov times for a chaotic task, else the task's time unit."""
        return "t [Lyapunov times]" if self.lyapunov_exponent else "t [task time units]"


def _text(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise SpecError(f"'{key}' must be a non-empty string, got {value!r}")
    return value


def _positive(spec: Mapping[str, Any], key: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise SpecError(f"'{key}' must be a positive number or null, got {value!r}")
    return float(value)


def _metric(entry: Any, i: int) -> MetricInfo:
    if not isinstance(entry, Mapping):
        raise SpecError(f"metrics[{i}] must be an object with key, label, higher_is_better and format, got {entry!r}")
    try:
        key, label = _text(entry, "key"), _text(entry, "label")
    except SpecError as exc:
        raise SpecError(f"metrics[{i}]: {exc}") from None
    direction = entry.get("higher_is_better")
    if not (direction is None or isinstance(direction, bool)):
        raise SpecError(f"metric {key!r}: higher_is_better must be true, false or null, got {direction!r}")
    try:
        fmt = check_format(entry.get("format", "#.3g"))
    except ValueError as exc:
        raise SpecError(f"metric {key!r}: {exc}") from None
    return MetricInfo(key=key, label=label, higher_is_better=direction, format=fmt)


def read_task_info(spec: Any) -> TaskInfo:
    """The :class:`TaskInfo` of a record's ``task.spec``; :class:`SpecError` says what is wrong."""
    if not isinstance(spec, Mapping):
        raise SpecError(f"the task spec must be an object, got {type(spec).__name__}")
    raw = spec.get("metrics")
    if not isinstance(raw, list) or not raw:
        raise SpecError("'metrics' must be a non-empty list of metric objects")
    metrics = tuple(_metric(entry, i) for i, entry in enumerate(raw))
    keys = [m.key for m in metrics]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise SpecError(f"metric keys {repeated} are declared more than once")
    main = _text(spec, "main_metric")
    if main not in keys:
        raise SpecError(f"main_metric {main!r} is not among the declared metrics {keys}")
    if metrics[keys.index(main)].higher_is_better is None:
        raise SpecError(f"main_metric {main!r} is informational (higher_is_better null); a main score needs a direction to be ranked")
    version = spec.get("version")
    if version is None or isinstance(version, (dict, list)):
        raise SpecError(f"'version' must be a string or number, got {version!r}")
    return TaskInfo(
        name=_text(spec, "name"),
        version=str(version),
        kind=_text(spec, "kind"),
        main_metric=main,
        metrics=metrics,
        lyapunov_exponent=_positive(spec, "lyapunov_exponent"),
        vpt_threshold=_positive(spec, "vpt_threshold"),
    )
