"""The networks the baselines are built from: fields, the window encoder and the classifier shell.

A *field* is the learned map a model evaluates repeatedly: the vector field of a Neural
ODE or the residual function of a (LM-)ResNet. Two families:

* :class:`MLP` on a flat latent state ``(batch, dim)`` (Lorenz-63: ``dim = 3``);
* :class:`PeriodicConv` on a latent field ``(batch, channels, n_points)``: 1-D
  convolutions with circular padding, so the map commutes with periodic shifts, as the
  heat and Kuramoto–Sivashinsky equations on a periodic domain do.

Every field counts its own evaluations in the plain integer ``nfe`` (incremented in
``forward``), the number the harness reports as NFE. The last layer starts small
(``OUT_INIT`` times the usual initialisation) so an untrained model is close to the
identity map (persistence) and long rollouts do not blow up before training starts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..spec import TaskSpec
from ._options import system_defaults

__all__ = [
    "OUT_INIT",
    "KERNEL_SIZE",
    "CountedField",
    "MLP",
    "PeriodicConv",
    "make_field",
    "field_channels",
    "to_latent",
    "from_latent",
    "check_forecast_input",
    "check_window",
    "WindowEncoder",
    "WindowClassifier",
]

OUT_INIT = 0.1
KERNEL_SIZE = 5
_ACTIVATIONS = {"silu": nn.SiLU, "tanh": nn.Tanh, "gelu": nn.GELU, "softplus": nn.Softplus, "relu": nn.ReLU}


def _shrink_(layer: nn.Module) -> None:
    with torch.no_grad():
        layer.weight.mul_(OUT_INIT)
        layer.bias.zero_()


class CountedField(nn.Module):
    """A stack of layers whose every evaluation is counted in the integer ``nfe``.

    The last layer starts small (:data:`OUT_INIT`), so an untrained field is close to zero.
    """

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        _shrink_(layers[-1])
        self.net = nn.Sequential(*layers)
        self.nfe = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.__dict__["nfe"] += 1  # a plain dict update: nn.Module.__setattr__ costs ~1.4 µs a call
        return self.net(z)


class MLP(CountedField):
    """``(batch, dim) -> (batch, dim)``: ``depth`` hidden layers of ``width`` units."""

    def __init__(self, dim: int, width: int, depth: int, activation: str) -> None:
        sizes = [dim] + [width] * depth
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), _ACTIVATIONS[activation]()]
        layers.append(nn.Linear(width, dim))
        super().__init__(layers)


class PeriodicConv(CountedField):
    """``(batch, channels, n) -> (batch, channels, n)``: circular 1-D convolutions.

    ``depth`` hidden layers of ``width`` channels, kernel ``KERNEL_SIZE``; translation
    equivariant on the periodic grid.
    """

    def __init__(self, channels: int, width: int, depth: int, activation: str) -> None:
        sizes = [channels] + [width] * depth
        pad = KERNEL_SIZE // 2

        def conv(n_in: int, n_out: int) -> nn.Conv1d:
            return nn.Conv1d(n_in, n_out, KERNEL_SIZE, padding=pad, padding_mode="circular")

        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [conv(n_in, n_out), _ACTIVATIONS[activation]()]
        layers.append(conv(width, channels))
        super().__init__(layers)


def make_field(field: str, channels: int, width: int, depth: int, activation: str) -> MLP | PeriodicConv:
    """An :class:`MLP` (``field='mlp'``, ``channels`` = state dimension) or a :class:`PeriodicConv`."""
    if field == "mlp":
        return MLP(channels, width, depth, activation)
    return PeriodicConv(channels, width, depth, activation)


def field_channels(task: TaskSpec, field: str) -> int:
    """Channels of the latent state a field acts on.

    Forecasting: the state itself (1 channel of a periodic field, or the flattened state
    dimension). Classification: the encoder's ``channels`` from the system defaults.
    """
    if task.kind == "classify":
        return system_defaults(task).channels
    return 1 if field == "conv" else math.prod(task.state_shape)


def to_latent(u: torch.Tensor, field: str, scale: float) -> torch.Tensor:
    """A batch of raw states ``(batch, *state)`` as a field's input, divided by ``scale``."""
    z = u / scale
    return z.unsqueeze(1) if field == "conv" else z.flatten(1)


def from_latent(z: torch.Tensor, state_shape: tuple[int, ...], scale: float) -> torch.Tensor:
    """A latent trajectory ``(batch, n_times, *latent)`` back to raw states ``(batch, n_times, *state)``."""
    return (z * scale).reshape(z.shape[0], z.shape[1], *state_shape)


def check_forecast_input(task: TaskSpec, u0: torch.Tensor, t: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``u0`` is ``(batch, *state)`` and ``t`` a 1-D time grid."""
    if not isinstance(u0, torch.Tensor) or tuple(u0.shape[1:]) != tuple(task.state_shape) or u0.dim() != 1 + len(task.state_shape):
        shape = tuple(u0.shape) if isinstance(u0, torch.Tensor) else type(u0).__name__
        raise ValueError(f"u0 must have shape (batch, {', '.join(map(str, task.state_shape))}) for task {task.name!r}, got {shape}")
    if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.numel() < 1:
        raise ValueError(f"t must be a non-empty 1-D tensor of times, got {getattr(t, 'shape', t)!r}")


def check_window(task: TaskSpec, x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is a batch of windows ``(batch, n_times, *state)``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 + len(task.state_shape) or tuple(x.shape[2:]) != tuple(task.state_shape):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        dims = ", ".join(map(str, task.state_shape))
        raise ValueError(f"x must have shape (batch, n_times, {dims}) for task {task.name!r}, got {shape}")


class WindowEncoder(nn.Module):
    """An observed window ``(batch, T, *state)`` (already scaled) to a latent state.

    ``mlp``: two strided 1-D convolutions over time on the flattened state, then the mean
    over time, giving ``(batch, channels)``. ``conv``: two strided 2-D convolutions over
    (time, space), circular in space, then the mean over time, giving
    ``(batch, channels, n_points)``: still a periodic field, so the hidden dynamics can
    use a :class:`PeriodicConv`. Averaging over time makes the encoder indifferent to
    where in the window a pattern appears and accepts any window length.
    """

    def __init__(self, field: str, state_dim: int, channels: int, activation: str) -> None:
        super().__init__()
        self.field = field
        k, pad = KERNEL_SIZE, KERNEL_SIZE // 2
        act = _ACTIVATIONS[activation]
        if field == "mlp":
            self.net = nn.Sequential(
                nn.Conv1d(state_dim, channels, k, stride=2, padding=pad), act(),
                nn.Conv1d(channels, channels, k, stride=2, padding=pad), act(),
            )
        else:
            self.conv1 = nn.Conv2d(1, channels, (k, k), stride=(2, 1), padding=(pad, 0))
            self.conv2 = nn.Conv2d(channels, channels, (k, k), stride=(2, 1), padding=(pad, 0))
            self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.field == "mlp":
            return self.net(x.flatten(2).transpose(1, 2)).mean(dim=-1)
        pad = KERNEL_SIZE // 2
        h = x.unsqueeze(1)
        h = self.act(self.conv1(F.pad(h, (pad, pad, 0, 0), mode="circular")))
        h = self.act(self.conv2(F.pad(h, (pad, pad, 0, 0), mode="circular")))
        return h.mean(dim=2)


class WindowClassifier(nn.Module):
    """Encoder, hidden dynamics, linear head: the shell the three classifiers share.

    ``body`` maps the latent state to a latent state of the same shape and exposes
    ``nfe``; the head averages a latent field over space and applies one linear layer.
    """

    def __init__(self, task: TaskSpec, field: str, channels: int, activation: str, state_scale: float, body: nn.Module) -> None:
        super().__init__()
        self.task = task
        self.state_scale = state_scale
        state_dim = 1
        for n in task.state_shape:
            state_dim *= int(n)
        self.encoder = WindowEncoder(field, state_dim, channels, activation)
        self.body = body
        self.head = nn.Linear(channels, int(task.n_classes or 0))

    @property
    def nfe(self) -> int:
        return self.body.nfe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_window(self.task, x)
        x = x.to(self.head.weight.dtype) / self.state_scale
        z = self.body(self.encoder(x))
        if z.dim() == 3:
            z = z.mean(dim=-1)
        return self.head(z)
