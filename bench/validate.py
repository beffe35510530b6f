"""``odebench validate MODEL``: the contract check a submitter runs before a long sweep.

For every task the model is built and run forward and backward :data:`CALLS` times on
small random inputs of the task's shapes, without training. Checked: the factory builds a
``torch.nn.Module`` with an integer ``nfe``; the output's shape, dtype and finiteness on
every call (a NaN that appears only on the third call is reported as such); that NFE is
reported (a model whose ``nfe`` stays 0 is flagged: right only without a vector field);
that finite gradients reach the parameters; the parameter count. Nothing is written.

The checks run in a child process (``python -m odebench.validate``) with a time limit
per task, as jobs do: a model that hangs is reported as hung, one that kills its
interpreter (a segfault, the out-of-memory killer) as crashed, and the remaining tasks
are checked in a fresh child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import registry
from .joblog import tail_lines
from .runner import exit_reason, kill_group
from .spec import TaskSpec, check_model_output, read_nfe
from .training import count_parameters

__all__ = ["CALLS", "DEFAULT_TIMEOUT_S", "TaskCheck", "ValidationReport", "validate_model", "check_task"]

#: Forward and backward calls per task: faults that appear only on a later call are caught.
CALLS = 3
#: Seconds one task's checks may take before the model is reported as hung.
DEFAULT_TIMEOUT_S = 120.0


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


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def check_task(name: str, task: TaskSpec, hparams: dict[str, Any], batch: int = 2, calls: int = CALLS) -> TaskCheck:
    """Run the contract checks of model ``name`` on one task, in this process."""
    objective = task.objective
    try:
        if not registry.model_supports(name, task.kind):
            kinds = tuple(getattr(registry.model_factory(name), "task_kinds", ()))
            return TaskCheck(task.name, "skip", f"declares task_kinds={kinds}")
        model = registry.build_model(name, task, hparams)
    except registry.PluginError as exc:
        return TaskCheck(task.name, "fail", str(exc))
    gen = torch.Generator().manual_seed(0)
    params = count_parameters(model)
    notes: list[str] = []
    nfe_f: list[int] = []
    nfe_b: list[int] = []
    for call in range(1, calls + 1):
        items, t = objective.example(task, batch, gen)
        where = "" if call == 1 else f" on call {call} of {calls} (calls 1-{call - 1} were fine)"
        try:
            nfe0 = read_nfe(model)
            out = objective.call(task, model, items, t)
            check_model_output(task, out, batch, items.shape[1])
            if call == 1:
                notes += objective.contract_notes(task, out, items)
            loss = objective.example_loss(task, out, items)
            nfe1 = read_nfe(model)
            if out.dtype != torch.float32:
                return TaskCheck(task.name, "fail", f"output dtype {out.dtype}, expected float32 for float32 input{where}", params)
            nfe2 = nfe1
            if params:
                model.zero_grad(set_to_none=True)
                loss.backward()
                nfe2 = read_nfe(model)
                missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
                if missing:
                    return TaskCheck(task.name, "fail", f"no finite gradient reaches {missing[:3]}{where}", params, nfe1 - nfe0)
        except Exception as exc:  # the model's code can raise anything
            return TaskCheck(task.name, "fail", f"{_error(exc)}{where}", params)
        nfe_f.append(nfe1 - nfe0)
        nfe_b.append(nfe2 - nfe1)
    if nfe_f[0] == 0:
        notes.append("NFE stays 0, which is right only for a model without a vector field or residual function")
    status = "warn" if notes else "ok"
    return TaskCheck(task.name, status, "; ".join([f"contract satisfied on {calls} calls", *notes]), params, nfe_f[0], nfe_b[0])


# --- the child process -------------------------------------------------------------------


def _child(request: dict[str, Any]) -> None:
    """Check each task of ``request`` and append one JSON line per event to its result file."""
    out = Path(request["result"])

    def emit(event: dict[str, Any]) -> None:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    for task_name in request["tasks"]:
        emit({"start": task_name})
        try:
            check = check_task(request["model"], registry.load_task(task_name), dict(request["hparams"]), calls=int(request["calls"]))
        except Exception as exc:  # a task plugin can fail too
            check = TaskCheck(task_name, "fail", _error(exc))
        emit({"done": asdict(check)})


def _events(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            break
    return events


def _run_child(name: str, tasks: list[str], hparams: dict[str, Any], calls: int, timeout_s: float, workdir: Path) -> list[TaskCheck]:
    """One child for ``tasks``; stops at the first task that hangs or crashes it."""
    result, log = workdir / "result.jsonl", workdir / "child.log"
    result.unlink(missing_ok=True)
    request = {"model": name, "tasks": tasks, "hparams": hparams, "calls": calls, "result": str(result)}
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen([sys.executable, "-m", "odebench.validate"], stdin=subprocess.PIPE, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True)
        stdin = proc.stdin
        if stdin is not None:
            try:
                stdin.write(json.dumps(request).encode())
                stdin.close()
            except BrokenPipeError:
                pass
        started, current = time.monotonic(), None
        while True:
            code = proc.poll()
            events = _events(result)
            starts = [e["start"] for e in events if "start" in e]
            if starts and starts[-1] != current:
                current, started = starts[-1], time.monotonic()
            if code is not None:
                break
            if time.monotonic() - started > timeout_s:
                kill_group(proc)
                code = None
                break
            time.sleep(0.05)
    events = _events(result)
    checks = [TaskCheck(**e["done"]) for e in events if "done" in e]
    done = {c.task for c in checks}
    pending = [t for t in tasks if t not in done]
    if pending:
        stuck = current if current in pending else pending[0]
        tail = tail_lines(log, lines=3)
        detail = f"; last output: {tail.splitlines()[-1]}" if tail else ""
        if code is None:
            checks.append(TaskCheck(stuck, "fail", f"hung: no answer within {timeout_s:g} s (a model call that never returns){detail}"))
        else:
            checks.append(TaskCheck(stuck, "fail", f"crashed: {exit_reason(code, 'the checking process')}{detail}"))
    return checks


def validate_model(name: str, task_names: Sequence[str], hparams: dict[str, Any] | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S, calls: int = CALLS) -> ValidationReport:
    """Check model ``name`` on each task in child processes (see the module docstring)."""
    if timeout_s <= 0 or calls < 1:
        raise ValueError("validate needs a positive timeout and at least one call")
    report = ValidationReport(name)
    remaining = list(task_names)
    with tempfile.TemporaryDirectory(prefix="odebench-validate-") as scratch:
        while remaining:
            checks = _run_child(name, remaining, dict(hparams or {}), calls, timeout_s, Path(scratch))
            report.checks += checks
            finished = {c.task for c in checks}
            remaining = [t for t in remaining if t not in finished]
    order = {t: i for i, t in enumerate(task_names)}
    report.checks.sort(key=lambda c: order.get(c.task, len(order)))
    return report


if __name__ == "__main__":
    from .worker import die_with_parent

    die_with_parent()
    _child(json.loads(sys.stdin.read()))
