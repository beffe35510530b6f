"""Train one model on one task under the harness's protocol, then score it on the test split.

Everything here is harness-owned and identical for every model: batching, loss,
optimiser, schedule, early stopping, the clocks, NFE bookkeeping and the metrics.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .measure import GpuPeak, Stopwatch
from .metrics import classify_metrics, forecast_metrics
from .protocol import Protocol, learning_rate
from .spec import ModelOutputError, TaskSpec, check_model_output

__all__ = ["TaskData", "Outcome", "train_and_evaluate", "count_parameters", "VAL_SEED"]

#: The validation windows are drawn once with this seed, the same for every model and run seed.
VAL_SEED = 12345


@dataclass
class TaskData:
    """The three splits of a task as arrays, plus the training split's per-dimension σ."""

    train_u: np.ndarray
    val_u: np.ndarray
    test_u: np.ndarray
    times: np.ndarray  # time grid of a test trajectory (starts at 0)
    train_y: np.ndarray | None = None
    val_y: np.ndarray | None = None
    test_y: np.ndarray | None = None
    sigma: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.sigma is None:
            axes = (0, 1)
            self.sigma = np.asarray(self.train_u, dtype=np.float64).std(axis=axes)


@dataclass
class Outcome:
    metrics: dict[str, Any]
    cost: dict[str, Any]
    train: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)


def count_parameters(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _nfe(model: torch.nn.Module) -> int:
    value = getattr(model, "nfe", None)
    if not isinstance(value, int):
        raise ModelOutputError(f"model attribute 'nfe' is {type(value).__name__}, expected int")
    return value


class _Batches:
    """Training/validation inputs and targets for one task kind, on the run's device."""

    def __init__(self, task: TaskSpec, data: TaskData, protocol: Protocol, device: torch.device, seed: int) -> None:
        self.task = task
        self.device = device
        self.protocol = protocol
        self.rng = np.random.default_rng(seed)
        self.train_u = torch.as_tensor(np.asarray(data.train_u, dtype=np.float32), device=device)
        if task.kind == "forecast":
            window = int(task.train_window or 2)
            if self.train_u.shape[1] < window:
                raise ValueError(f"training trajectories have {self.train_u.shape[1]} samples, fewer than train_window={window}")
            self.window = window
            self.t = torch.as_tensor(task.dt * np.arange(window), dtype=torch.float32, device=device)
            self.sigma = torch.as_tensor(np.asarray(data.sigma, dtype=np.float32), device=device)
            val_rng = np.random.default_rng(VAL_SEED)
            n_val = protocol.val_batches * protocol.batch_size
            idx = val_rng.integers(0, data.val_u.shape[0], n_val)
            start = val_rng.integers(0, data.val_u.shape[1] - window + 1, n_val)
            val = np.stack([data.val_u[i, s : s + window] for i, s in zip(idx, start)])
            self.val = [torch.as_tensor(np.asarray(v, dtype=np.float32), device=device) for v in np.array_split(val, protocol.val_batches)]
        else:
            self.train_y = torch.as_tensor(np.asarray(data.train_y, dtype=np.int64), device=device)
            n_val = min(data.val_u.shape[0], protocol.val_batches * protocol.eval_batch_size)
            xs = np.asarray(data.val_u[:n_val], dtype=np.float32)
            ys = np.asarray(data.val_y[:n_val], dtype=np.int64)
            chunks = max(1, math.ceil(n_val / protocol.eval_batch_size))
            self.val = [
                (torch.as_tensor(x, device=device), torch.as_tensor(y, device=device))
                for x, y in zip(np.array_split(xs, chunks), np.array_split(ys, chunks))
            ]

    def sample(self) -> Any:
        n = self.protocol.batch_size
        if self.task.kind == "forecast":
            idx = torch.as_tensor(self.rng.integers(0, self.train_u.shape[0], n), device=self.device)
            start = torch.as_tensor(self.rng.integers(0, self.train_u.shape[1] - self.window + 1, n), device=self.device)
            offsets = start[:, None] + torch.arange(self.window, device=self.device)[None, :]
            return self.train_u[idx[:, None], offsets]
        idx = torch.as_tensor(self.rng.integers(0, self.train_u.shape[0], n), device=self.device)
        return self.train_u[idx], self.train_y[idx]

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        if self.task.kind == "forecast":
            pred = model(batch[:, 0], self.t)
            _shape_only(self.task, pred, tuple(batch.shape))
            z = (pred[:, 1:] - batch[:, 1:]) / self.sigma
            return (z * z).mean()
        x, y = batch
        logits = model(x)
        _shape_only(self.task, logits, (x.shape[0], int(self.task.n_classes or 0)))
        return F.cross_entropy(logits, y)


def _shape_only(task: TaskSpec, out: Any, expected: tuple[int, ...]) -> None:
    """The per-step contract check: type and shape only, so training never waits on the GPU."""
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(f"model returned {type(out).__name__}, expected a torch.Tensor")
    if tuple(out.shape) != tuple(expected):
        raise ModelOutputError(f"model returned shape {tuple(out.shape)}, expected {tuple(expected)} for a {task.kind} task")


def _validation_loss(model: torch.nn.Module, batches: _Batches) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for batch in batches.val:
            total += float(batches.loss(model, batch))
    model.train()
    return total / len(batches.val)


def _train(task: TaskSpec, model: torch.nn.Module, data: TaskData, protocol: Protocol, device: torch.device, seed: int) -> tuple[dict[str, Any], float, float | None]:
    """The training loop. Returns (facts, train_seconds, mean NFE-B per step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    facts: dict[str, Any] = {"steps": 0, "truncated": False, "stopped_early": False, "best_val_loss": None, "best_step": None, "val_history": []}
    if not params:
        facts["note"] = "no trainable parameters: nothing to train"
        return facts, 0.0, 0.0
    batches = _Batches(task, data, protocol, device, seed)
    optimiser = torch.optim.Adam(params, lr=protocol.learning_rate, weight_decay=protocol.weight_decay)
    clock = Stopwatch(device)
    started = time.perf_counter()
    best_loss = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    since_best = 0
    nfe_backward_total = 0
    nfe_forward_total = 0
    model.train()
    for step in range(protocol.max_steps):
        with clock.running():
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(protocol, step)
            batch = batches.sample()
            nfe0 = _nfe(model)
            loss = batches.loss(model, batch)
            nfe1 = _nfe(model)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nfe2 = _nfe(model)
            if protocol.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, protocol.grad_clip)
            optimiser.step()
        nfe_forward_total += nfe1 - nfe0
        nfe_backward_total += nfe2 - nfe1
        facts["steps"] = step + 1
        last = step + 1 == protocol.max_steps
        if (step + 1) % protocol.eval_every == 0 or last:
            last_loss = float(loss.detach())
            if not math.isfinite(last_loss):
                raise ModelOutputError(f"training loss is {last_loss} at step {step + 1}: the model produced NaN or Inf")
            val = _validation_loss(model, batches)
            if not math.isfinite(val):
                raise ModelOutputError(f"validation loss is {val} at step {step + 1}: the model produced NaN or Inf")
            facts["val_history"].append([step + 1, val])
            if val < best_loss:
                best_loss, since_best = val, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                facts["best_step"] = step + 1
            else:
                since_best += 1
                if since_best >= protocol.patience:
                    facts["stopped_early"] = True
                    break
        if time.perf_counter() - started > protocol.wall_clock_cap_s:
            facts["truncated"] = True
            break
    validated = [s for s, _ in facts["val_history"]]
    if facts["steps"] not in validated:  # truncated by the wall-clock cap between validations
        val = _validation_loss(model, batches)
        facts["val_history"].append([facts["steps"], val])
        if math.isfinite(val) and val < best_loss:
            best_loss, facts["best_step"] = val, facts["steps"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    facts["best_val_loss"] = best_loss if math.isfinite(best_loss) else None
    facts["nfe_forward_train_mean"] = nfe_forward_total / max(1, facts["steps"])
    facts["phase_seconds"] = time.perf_counter() - started
    return facts, clock.seconds, nfe_backward_total / max(1, facts["steps"])


def _evaluate(task: TaskSpec, model: torch.nn.Module, data: TaskData, protocol: Protocol, device: torch.device) -> tuple[dict[str, Any], float, float]:
    """Score on the test split. Returns (metrics, infer_seconds, mean NFE-F per forward)."""
    n = data.test_u.shape[0] if protocol.test_limit is None else min(protocol.test_limit, data.test_u.shape[0])
    test_u = np.asarray(data.test_u[:n], dtype=np.float32)
    bs = protocol.eval_batch_size
    chunks = [test_u[i : i + bs] for i in range(0, n, bs)]
    model.eval()
    clock = Stopwatch(device)
    outputs: list[np.ndarray] = []
    nfes: list[int] = []
    with torch.no_grad():
        if task.kind == "forecast":
            t = torch.as_tensor(data.times - data.times[0], dtype=torch.float32, device=device)
            run = lambda x: model(x[:, 0], t)  # noqa: E731
        else:
            run = lambda x: model(x)  # noqa: E731
        run(torch.as_tensor(chunks[0][:1], device=device))  # warm-up: first-call allocations, lazy init
        for chunk in chunks:
            x = torch.as_tensor(chunk, device=device)
            nfe0 = _nfe(model)
            with clock.running():
                out = run(x)
            nfes.append(_nfe(model) - nfe0)
            # A forecast may diverge on the long test horizon; the metrics score that (nRMSE = inf).
            out = check_model_output(task, out, x.shape[0], allow_nonfinite=task.kind == "forecast")
            outputs.append(out.detach().to("cpu", torch.float64).numpy())
    pred = np.concatenate(outputs)
    if task.kind == "forecast":
        metrics = forecast_metrics(pred, test_u.astype(np.float64), data.sigma, data.times - data.times[0], task.eval_times, task.lyapunov_exponent, task.vpt_threshold)
    else:
        metrics = classify_metrics(pred, np.asarray(data.test_y[:n]), int(task.n_classes or 0))
    metrics["n_test"] = int(n)
    return metrics, clock.seconds, float(np.mean(nfes))


def train_and_evaluate(task: TaskSpec, model: torch.nn.Module, data: TaskData, protocol: Protocol, device: torch.device, seed: int) -> Outcome:
    """Train ``model`` (already on ``device``) and score it; all measurements included."""
    train_peak, infer_peak = GpuPeak(device), GpuPeak(device)
    with train_peak.tracking():
        facts, train_seconds, nfe_backward = _train(task, model, data, protocol, device, seed)
    with infer_peak.tracking():
        metrics, infer_seconds, nfe_forward = _evaluate(task, model, data, protocol, device)
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
        "n_output_times": int(task.train_window or task.n_times) if task.kind == "forecast" else None,
    }
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    return Outcome(metrics=metrics, cost=cost, train=facts, state_dict=state)
