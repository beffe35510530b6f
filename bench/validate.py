"""``odebench validate MODEL``: the contract check a submitter runs before a long sweep.

For every task the model is built, run forward on a small input of the task's shapes and
backward once, without training. Checked: the factory builds a ``torch.nn.Module`` with an
integer ``nfe``; the output's shape, dtype and finiteness; that NFE is reported (a model whose
``nfe`` stays 0 is flagged in the report: right only without a vector field); that gradients reach the
parameters; the parameter count. Nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from . import registry
from .spec import TaskSpec, check_model_output, read_nfe
from .training import count_parameters

__all__ = ["TaskCheck", "ValidationReport", "validate_model", "check_task"]


@dataclass
class TaskCheck:
    task: str
    status: str  # "ok", "warn" (satisfied, but look at the note), "fail", "skip"
    message: str
    params: int | None = None
    nfe_forward: int | None = None
    nfe_backward: int | None = None


@dataclass
class ValidationReport:
    model: str
    checks: list[TaskCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def format(self) -> str:
        lines = [f"validate {self.model}:"]
        for c in self.checks:
            cost = "" if c.params is None else f" params={c.params} nfe_f={c.nfe_forward} nfe_b={c.nfe_backward}"
            lines.append(f"  {c.status.upper():<4} {c.task:<16}{cost}  {c.message}")
        lines.append("  result: " + ("passed" if self.ok else "FAILED"))
        return "\n".join(lines)


def check_task(name: str, task: TaskSpec, hparams: dict[str, Any], batch: int = 2) -> TaskCheck:
    """Run the contract checks of model ``name`` on one task."""
    objective = task.objective
    try:
        if not registry.model_supports(name, task.kind):
            kinds = tuple(getattr(registry.model_factory(name), "task_kinds", ()))
            return TaskCheck(task.name, "skip", f"declares task_kinds={kinds}")
        model = registry.build_model(name, task, hparams)
    except registry.PluginError as exc:
        return TaskCheck(task.name, "fail", str(exc))
    gen = torch.Generator().manual_seed(0)
    items, t = objective.example(task, batch, gen)
    params = count_parameters(model)
    try:
        nfe0 = read_nfe(model)
        out = objective.call(task, model, items, t)
        check_model_output(task, out, batch, items.shape[1])
        notes = objective.contract_notes(task, out, items)
        loss = objective.example_loss(task, out, items)
        nfe1 = read_nfe(model)
        if out.dtype != torch.float32:
            return TaskCheck(task.name, "fail", f"output dtype {out.dtype}, expected float32 for float32 input", params)
        if params:
            loss.backward()
            nfe2 = read_nfe(model)
            missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
            if missing:
                return TaskCheck(task.name, "fail", f"no finite gradient reaches {missing[:3]}", params, nfe1 - nfe0)
        else:
            nfe2 = nfe1
    except Exception as exc:  # the model's code can raise anything
        return TaskCheck(task.name, "fail", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", params)
    if nfe1 == nfe0:
        notes.append("NFE stays 0, which is right only for a model without a vector field or residual function")
    status = "warn" if notes else "ok"
    return TaskCheck(task.name, status, "; ".join(["contract satisfied", *notes]), params, nfe1 - nfe0, nfe2 - nfe1)


def validate_model(name: str, task_names: Sequence[str], hparams: dict[str, Any] | None = None) -> ValidationReport:
    report = ValidationReport(name)
    for task_name in task_names:
        report.checks.append(check_task(name, registry.load_task(task_name), dict(hparams or {})))
    return report
