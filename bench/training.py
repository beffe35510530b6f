"""Train one model on one task under the harness's protocol, then score it on the test split.

Everything here is harness-owned and identical for every model: the optimiser, the
schedule, early stopping, the clocks and the NFE bookkeeping. What depends on the task
kind (batches, loss, how a test item is fed to the model, the metrics) is asked of the
task's :class:`~odebench.spec.Objective`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .finetune import lbfgs_phase
from .measure import GpuPeak, Stopwatch
from .nfe_guard import NFEGuard
from .optim import Adam, WeightAverage
from .protocol import Protocol, learning_rate
from .spec import ModelOutputError, TaskData, TaskSpec, TrainingSet, check_model_output, read_nfe
from .weights import tensor_state

__all__ = ["Outcome", "train_and_evaluate", "count_parameters"]


@dataclass
class Outcome:
    metrics: dict[str, Any]
    cost: dict[str, Any]
    train: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    items: dict[str, Any] | None = None  # per-test-item scores, if the objective gives them


def count_parameters(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _validation_loss(model: torch.nn.Module, batches: TrainingSet, guard: NFEGuard) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for batch in batches.validation:
            with guard.call("validation"):
                total += float(batches.loss(model, batch))
    model.train()
    return total / len(batches.validation)


#: ``progress(phase, step, val_loss)``: told where a run is, for heartbeats.
Progress = Callable[[str, int, "float | None"], None]


def _train(task: TaskSpec, model: torch.nn.Module, data: TaskData, protocol: Protocol, device: torch.device, seed: int, guard: NFEGuard | None = None, progress: Progress | None = None) -> tuple[dict[str, Any], float, float | None]:
    """The training loop. Returns (facts, train_seconds, mean NFE-B per step)."""
    tensor_state(model)  # a state that cannot be saved fails now, not after the whole budget
    guard = guard or NFEGuard(model, None)
    params = [p for p in model.parameters() if p.requires_grad]
    facts: dict[str, Any] = {"steps": 0, "truncated": False, "stopped_early": False, "best_val_loss": None, "best_step": None, "val_history": []}
    if not params:
        facts["note"] = "no trainable parameters: nothing to train"
        return facts, 0.0, 0.0
    batches = task.objective.training_set(task, data, protocol, device, seed)
    optimiser = Adam(params, lr=protocol.learning_rate, weight_decay=protocol.weight_decay)
    average = WeightAverage(params, protocol.weight_average) if protocol.weight_average else None
    validated_weights = average.applied if average is not None else nullcontext  # validated (and kept) is the average
    clock = Stopwatch(device)
    started = time.perf_counter()
    best_loss = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    since_best = 0
    nfe_backward_total = 0
    nfe_forward_total = 0

    def validate(step: int) -> bool:
        """Validate the weights that would be kept at ``step``; keep them if they are the best so far."""
        nonlocal best_loss, best_state
        with validated_weights():
            val = _validation_loss(model, batches, guard)
            if not math.isfinite(val):
                raise ModelOutputError(f"validation loss is {val} at step {step}: the model produced NaN or Inf")
            facts["val_history"].append([step, val])
            if progress is not None:
                progress("training", step, val)
            if val >= best_loss:
                return False
            best_loss, facts["best_step"] = val, step
            best_state = tensor_state(model)
            return True

    model.train()
    for step in range(protocol.max_steps):
        with clock.running():
            optimiser.lr = learning_rate(protocol, step)
            batch = batches.sample()
            nfe0 = read_nfe(model)
            with guard.call("training forward"):
                loss = batches.loss(model, batch)
            nfe1 = read_nfe(model)
            optimiser.zero_grad()
            with guard.call("training backward"):
                loss.backward()
            nfe2 = read_nfe(model)
            if protocol.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, protocol.grad_clip)
            optimiser.step()
            if average is not None:
                average.update()
        nfe_forward_total += nfe1 - nfe0
        nfe_backward_total += nfe2 - nfe1
        facts["steps"] = step + 1
        last_loss = float(loss.detach())
        if not math.isfinite(last_loss):
            raise ModelOutputError(f"training loss is {last_loss} at step {step + 1}: the model produced NaN or Inf")
        if progress is not None:
            progress("training", step + 1, None)
        last = step + 1 == protocol.max_steps
        if (step + 1) % protocol.eval_every == 0 or last:
            improved = validate(step + 1)
            if improved:
                since_best = 0
            elif step + 1 >= protocol.patience_start_fraction * protocol.max_steps:
                since_best += 1
                if since_best >= protocol.patience:
                    facts["stopped_early"] = True
                    break
        if protocol.wall_clock_cap_s is not None and time.perf_counter() - started > protocol.wall_clock_cap_s:
            facts["truncated"] = True
            break
    if facts["steps"] not in [s for s, _ in facts["val_history"]]:  # truncated by the wall-clock cap between validations
        validate(facts["steps"])
    if best_state is not None:
        model.load_state_dict(best_state)
    if protocol.lbfgs_iters:
        if progress is not None:
            progress("fine-tuning", facts["steps"], best_loss if math.isfinite(best_loss) else None)
        with clock.running():
            facts["lbfgs"] = lbfgs_phase(task, model, data, protocol, device, seed, guard)
    facts["best_val_loss"] = best_loss if math.isfinite(best_loss) else None
    facts["nfe_forward_train_mean"] = nfe_forward_total / max(1, facts["steps"])
    facts["phase_seconds"] = time.perf_counter() - started
    return facts, clock.seconds, nfe_backward_total / max(1, facts["steps"])


def _evaluate(task: TaskSpec, model: torch.nn.Module, data: TaskData, protocol: Protocol, device: torch.device, guard: NFEGuard | None = None) -> tuple[dict[str, Any], float, float]:
    """Score on the test split. Returns (metrics, infer_seconds, mean NFE-F per forward)."""
    objective = task.objective
    guard = guard or NFEGuard(model, None)
    n_all = data.test.u.shape[0]
    n = n_all if protocol.test_limit is None else min(protocol.test_limit, n_all)
    test_u = np.asarray(data.test.u[:n], dtype=np.float32)
    bs = protocol.eval_batch_size
    chunks = [test_u[i : i + bs] for i in range(0, n, bs)]
    t = torch.as_tensor(data.times, dtype=torch.float32, device=device)
    model.eval()
    clock = Stopwatch(device)
    outputs: list[np.ndarray] = []
    nfes: list[int] = []
    with torch.no_grad():
        objective.call(task, model, torch.as_tensor(chunks[0][:1], device=device), t)  # warm-up: first-call allocations, lazy init
        for chunk in chunks:
            x = torch.as_tensor(chunk, device=device)
            nfe0 = read_nfe(model)
            with clock.running():
                with guard.call("test"):
                    out = objective.call(task, model, x, t)
            nfes.append(read_nfe(model) - nfe0)
            out = check_model_output(task, out, x.shape[0], allow_nonfinite=objective.allows_nonfinite(task))
            outputs.append(out.detach().to("cpu", torch.float64).numpy())
    metrics = objective.score(task, np.concatenate(outputs), data, n)
    metrics["n_test"] = int(n)
    return metrics, clock.seconds, float(np.mean(nfes))


def train_and_evaluate(task: TaskSpec, model: torch.nn.Module, data: TaskData, protocol: Protocol, device: torch.device, seed: int, progress: Progress | None = None) -> Outcome:
    """Train ``model`` (already on ``device``) and score it; all measurements included.

    ``progress`` (optional) is told the phase, the step and each validation loss.
    """
    train_peak, infer_peak = GpuPeak(device), GpuPeak(device)
    with NFEGuard(model, protocol.max_nfe_per_call) as guard:
        with train_peak.tracking():
            facts, train_seconds, nfe_backward = _train(task, model, data, protocol, device, seed, guard, progress)
        if progress is not None:
            progress("testing", int(facts["steps"]), facts.get("best_val_loss"))
        with infer_peak.tracking():
            metrics, infer_seconds, nfe_forward = _evaluate(task, model, data, protocol, device, guard)
    peaks = [b for b in (train_peak.bytes, infer_peak.bytes) if b is not None]
    cost = {
        "nfe_forward": nfe_forward,
        "nfe_backward": nfe_backward,
        "train_seconds": train_seconds,
        "infer_seconds": infer_seconds,
        "peak_gpu_bytes": max(peaks) if peaks else None,
        "peak_gpu_bytes_train": train_peak.bytes,
        "peak_gpu_bytes_infer": infer_peak.bytes,
        "params": count_parameters(model),
        "eval_batch_size": protocol.eval_batch_size,
        "n_test_times": int(data.test.u.shape[1]),
    }
    state = tensor_state(model, "cpu")
    items = metrics.pop("items", None)
    return Outcome(metrics=metrics, cost=cost, train=facts, state_dict=state, items=items if isinstance(items, dict) else None)
