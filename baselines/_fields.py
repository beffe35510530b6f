"""The networks the baselines are built around their fields: the window encoder and the classifier shell.

A *field* is the learned map a model evaluates repeatedly: the vector field of a Neural
ODE or the residual function of a (LM-)ResNet. The fields themselves are public, in
:mod:`odebench.toolkit`: :class:`~odebench.toolkit.MLPField` on a flat latent state
``(batch, dim)`` (Lorenz-63: ``dim = 3``) and :class:`~odebench.toolkit.PeriodicConvField`
on a latent field ``(batch, channels, n_points)``, each counting its own evaluations in
``nfe``. This module holds what only the baselines use: the moves between raw states and
a field's latent layout, the window encoder and the classifier shell.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..spec import TaskSpec
from ..toolkit import ACTIVATIONS, KERNEL_SIZE, ConservativeField, CountedField, CountedModel, check_window, make_field
from ._options import symmetric_field, system_defaults

__all__ = [
    "state_channels",
    "forecast_field",
    "to_latent",
    "from_latent",
    "WindowEncoder",
    "WindowClassifier",
]


def state_channels(field: str, state_shape: tuple[int, ...]) -> int:
    """Channels of a forecasting field acting on the state itself: one channel of a
    periodic field (``conv``), or the flattened state dimension (``mlp``)."""
    return 1 if field == "conv" else math.prod(state_shape)


def forecast_field(task: TaskSpec, hp: dict[str, Any], width: int, depth: int) -> CountedField:
    """The field a forecaster evaluates on the state itself, shared by the Neural ODE, ResNet
    and LM-ResNet: ``hp['field']`` of ``width`` and ``depth``, in flux form
    (:class:`~odebench.toolkit.ConservativeField`) if ``hp['conservative']``, averaged over
    the task's symmetries if ``hp['symmetric']``."""
    field = make_field(hp["field"], state_channels(hp["field"], task.state_shape), width, depth, hp["activation"])
    return symmetric_field(task, ConservativeField(field) if hp["conservative"] else field, hp["symmetric"])


def to_latent(u: torch.Tensor, field: str, scale: float) -> torch.Tensor:
    """A batch of raw states ``(batch, *state)`` as a field's input, divided by ``scale``."""
    z = u / scale
    return z.unsqueeze(1) if field == "conv" else z.flatten(1)


def from_latent(z: torch.Tensor, state_shape: tuple[int, ...], scale: float) -> torch.Tensor:
    """A latent trajectory ``(batch, n_times, *latent)`` back to raw states ``(batch, n_times, *state)``."""
    return (z * scale).reshape(z.shape[0], z.shape[1], *state_shape)


class WindowEncoder(nn.Module):
    """An observed window ``(batch, T, *state)`` (already scaled) to a latent state.

    ``mlp``: ``layers`` strided 1-D convolutions over time on the flattened state, then the
    mean over time, giving ``(batch, channels)``. ``conv``: ``layers`` strided 2-D
    convolutions over (time, space), circular in space, then the mean over time, giving
    ``(batch, channels, n_points)``: still a periodic field, so the hidden dynamics can
    use a :class:`~odebench.toolkit.PeriodicConvField`. Averaging over time makes the encoder indifferent to
    where in the window a pattern appears and accepts any window length; each layer
    doubles the receptive field in time (kernel 5, stride 2: 13 samples with two layers,
    29 with three), which is what sees a time scale before the mean removes time.
    """

    def __init__(self, field: str, state_dim: int, channels: int, activation: str, layers: int = 2) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"the window encoder needs at least one layer, got {layers}")
        self.field = field
        self.layers = int(layers)
        k, pad = KERNEL_SIZE, KERNEL_SIZE // 2
        self.act = ACTIVATIONS[activation]()
        if field == "mlp":
            self.convs = nn.ModuleList(nn.Conv1d(state_dim if i == 0 else channels, channels, k, stride=2, padding=pad) for i in range(self.layers))
        else:
            self.convs = nn.ModuleList(nn.Conv2d(1 if i == 0 else channels, channels, (k, k), stride=(2, 1), padding=(pad, 0)) for i in range(self.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.field == "mlp":
            h = x.flatten(2).transpose(1, 2)
            for conv in self.convs:
                h = self.act(conv(h))
            return h.mean(dim=-1)
        pad = KERNEL_SIZE // 2
        h = x.unsqueeze(1)
        for conv in self.convs:
            h = self.act(conv(F.pad(h, (pad, pad, 0, 0), mode="circular")))
        return h.mean(dim=2)


class WindowClassifier(CountedModel):
    """Encoder, hidden dynamics, linear head: the shell the three classifiers share.

    ``body`` maps the latent state to a latent state of the same shape (its fields
    count into ``nfe``); the head averages a latent field over space and applies one
    linear layer. ``group`` (identity first; default the identity alone): the logits are
    the mean over the group's images of the window, so the classifier is invariant under
    the task's symmetries by construction; the images go through as one batch, one
    evaluation of each field.
    """

    def __init__(self, task: TaskSpec, field: str, channels: int, activation: str, state_scale: float, body: nn.Module, group: tuple = ()) -> None:
        super().__init__()
        self.task = task
        self.group = tuple(group)
        self.state_scale = state_scale
        state_dim = 1
        for n in task.state_shape:
            state_dim *= int(n)
        self.encoder = WindowEncoder(field, state_dim, channels, activation, system_defaults(task).encoder_layers)
        self.body = body
        self.head = nn.Linear(channels, int(task.n_classes or 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_window(self.task, x)
        x = x.to(self.head.weight.dtype) / self.state_scale
        images = len(self.group) > 1
        if images:
            x = torch.cat([g(x) for g in self.group])
        z = self.body(self.encoder(x))
        if z.dim() == 3:
            z = z.mean(dim=-1)
        logits = self.head(z)
        return logits.view(len(self.group), -1, logits.shape[-1]).mean(dim=0) if images else logits
