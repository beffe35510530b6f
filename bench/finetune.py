"""The protocol's second training phase: full-batch L-BFGS on long windows, after Adam.

Adam with a finite learning rate leaves the forecasters near, not at, a minimum of the
short-window loss, and a 51-sample rollout weighs the slow error growth of a chaotic
forecast little. This phase draws ``lbfgs_windows`` fixed training windows of
``lbfgs_window`` samples (no augmentation, no input noise: a fixed batch is a
deterministic objective, which L-BFGS needs) and minimises their loss with
``torch.optim.LBFGS`` (strong-Wolfe line search, history 50) for at most
``lbfgs_iters`` iterations, starting from the weights Adam kept. The result is kept only
if the loss on as many validation windows of the same length (drawn once with the
objective's fixed validation seed) is lower than before; otherwise, or if any
evaluation fails (a non-finite loss, a solver past its step limit, the NFE limit), the
Adam weights stay, and the record says why.

The phase is identical for every model; its time is training time, and its
vector-field evaluations are counted in the record (``train.lbfgs``), separately from
the per-step means of the Adam phase.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import torch

from .nfe_guard import NFEGuard
from .protocol import Protocol
from .spec import ModelOutputError, TaskData, TaskSpec, TrainingSet, read_nfe
from .toolkit import SolverError
from .weights import tensor_state

__all__ = ["lbfgs_phase", "lbfgs_settings"]


class _NonFinite(ArithmeticError):
    """A loss evaluation inside the line search was NaN or Inf."""


def lbfgs_settings(protocol: Protocol) -> Protocol:
    """The protocol the phase draws its fixed windows with: ``lbfgs_windows`` windows of
    ``lbfgs_window`` samples (forecasting), one validation batch of as many (at most the
    split), no augmentation or noise."""
    return replace(
        protocol,
        rollout=protocol.lbfgs_window or protocol.rollout,
        batch_size=protocol.lbfgs_windows,
        val_batches=1,
        eval_batch_size=protocol.lbfgs_windows,  # a classification objective's validation batch
        augment=False,
        input_noise=0.0,
    )


def _batch_size(batch: Any) -> int:
    """Items in a batch: a tensor, or a tuple whose first entry is one (inputs and labels)."""
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0])


def _loss_on(model: torch.nn.Module, batches: TrainingSet, batch: torch.Tensor, guard: NFEGuard, what: str) -> float:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), guard.call(what):
            return float(batches.loss(model, batch))
    finally:
        model.train(was_training)


def lbfgs_phase(task: TaskSpec, model: torch.nn.Module, data: TaskData, protocol: Protocol, device: torch.device, seed: int, guard: NFEGuard) -> dict[str, Any]:
    """Run the phase on ``model`` in place; returns the facts for the record's ``train.lbfgs``.

    The model ends with the L-BFGS weights if they lowered the long-window validation
    loss, else with the weights it came in with.
    """
    if protocol.lbfgs_iters < 1:
        raise ValueError(f"lbfgs_phase needs lbfgs_iters >= 1, got {protocol.lbfgs_iters}")
    started = time.perf_counter()
    settings = lbfgs_settings(protocol)
    batches = task.objective.training_set(task, data, settings, device, seed)
    train_batch = batches.sample()
    val_batch = batches.validation[0]
    params = [p for p in model.parameters() if p.requires_grad]
    facts: dict[str, Any] = {
        "window": (settings.rollout or task.train_window) if task.kind == "forecast" else None,
        "windows": _batch_size(train_batch),
        "max_iters": int(protocol.lbfgs_iters),
        "evaluations": 0,
        "nfe_forward": 0,
        "nfe_backward": 0,
        "kept": False,
        "reason": None,
    }
    start_state = tensor_state(model)
    optimiser = torch.optim.LBFGS(params, lr=1.0, max_iter=protocol.lbfgs_iters, history_size=50, line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        nfe0 = read_nfe(model)
        with guard.call("training forward"):
            loss = batches.loss(model, train_batch)
        nfe1 = read_nfe(model)
        if not math.isfinite(float(loss.detach())):
            raise _NonFinite(f"the training loss became {float(loss.detach())} in the line search")
        with guard.call("training backward"):
            loss.backward()
        facts["evaluations"] += 1
        facts["nfe_forward"] += nfe1 - nfe0
        facts["nfe_backward"] += read_nfe(model) - nfe1
        return loss

    try:
        facts["val_loss_before"] = _loss_on(model, batches, val_batch, guard, "validation")
        facts["train_loss_before"] = _loss_on(model, batches, train_batch, guard, "training forward")
        if not math.isfinite(facts["val_loss_before"]):
            raise _NonFinite(f"the validation loss of the weights it starts from is {facts['val_loss_before']}")
        model.train()
        optimiser.step(closure)
        facts["iterations"] = int(optimiser.state[params[0]].get("n_iter", 0))
        facts["train_loss_after"] = _loss_on(model, batches, train_batch, guard, "training forward")
        facts["val_loss_after"] = _loss_on(model, batches, val_batch, guard, "validation")
    except (_NonFinite, ModelOutputError, SolverError) as exc:
        facts["reason"] = f"failed, Adam's weights kept: {exc}"
    else:
        after = facts["val_loss_after"]
        if math.isfinite(after) and after < facts["val_loss_before"]:
            facts["kept"] = True
        else:
            facts["reason"] = f"validation loss {after:.4g} not below {facts['val_loss_before']:.4g}: Adam's weights kept"
    if not facts["kept"]:
        model.load_state_dict(start_state)
    optimiser.zero_grad()
    facts["seconds"] = time.perf_counter() - started
    return facts
