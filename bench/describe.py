"""Human-readable descriptions of a task and of a model factory, for ``odebench list --verbose``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .spec import DeclaresHyperParameters, DeclaresTaskKinds, HyperParameter, TaskSpec

__all__ = ["describe_task", "describe_model", "factory_hyperparameters"]


def describe_task(task: TaskSpec) -> str:
    """Kind, shapes, time grid, horizon, λ1, metrics and description of ``task``."""
    lines = [f"kind {task.kind} · version {task.version} · system {task.system}", f"state shape {tuple(task.state_shape)} · dt {task.dt:g} · {task.n_times} samples per test item"]
    lines.append(task.objective.describe_io(task))
    if task.lyapunov_exponent:
        lines.append(f"λ1 = {task.lyapunov_exponent:g} per time unit · horizon {task.horizon * task.lyapunov_exponent:.3g} Lyapunov times · VPT threshold nRMSE > {task.vpt_threshold:g}")
    arrows = {True: "↑", False: "↓", None: ""}
    metrics = ", ".join(f"{m.label} {arrows[m.higher_is_better]}".strip() for m in task.metrics)
    lines.append(f"main score: {next(m.label for m in task.metrics if m.key == task.main_metric)} · metrics: {metrics}")
    if task.description:
        lines.append(task.description)
    return "\n".join(lines)


def factory_hyperparameters(factory: Callable[..., Any]) -> tuple[HyperParameter, ...]:
    """The factory's declared hyperparameters, or those its signature shows (keyword defaults)."""
    if isinstance(factory, DeclaresHyperParameters):
        return tuple(factory.hyperparameters)
    found = []
    try:
        params = list(inspect.signature(factory).parameters.values())[1:]
    except (TypeError, ValueError):
        return ()
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is p.empty else p.default
        found.append(HyperParameter(p.name, default, "not declared by the model", default_note="" if p.default is not p.empty else "required"))
    return tuple(found)


def describe_model(factory: Callable[..., Any]) -> str:
    """The factory's docstring summary, supported task kinds and hyperparameters."""
    doc = inspect.getdoc(factory) or ""
    lines = [doc.splitlines()[0]] if doc else []
    kinds = tuple(factory.task_kinds) if isinstance(factory, DeclaresTaskKinds) else None
    lines.append(f"task kinds: {', '.join(kinds) if kinds else 'any'}")
    hps = factory_hyperparameters(factory)
    if not hps:
        lines.append("hyperparameters: none")
    for hp in hps:
        text = f"--model-arg {hp.name}=…  default {hp.default_text()} · allowed {hp.allowed}"
        lines.append(text + (f" · {hp.help}" if hp.help else ""))
    return "\n".join(lines)
