"""The learned vector fields an augmented Neural ODE integrates.

Each field counts its own evaluations in the integer ``nfe``, incremented in ``forward``:
that is the number odebench reports as NFE, and because the count lives in the field it
also sees the evaluations an adjoint solve makes during ``loss.backward()``.

The last layer starts at a tenth of the usual initialisation with a zero bias, so an
untrained field is small and a long rollout stays bounded before training begins.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["KERNEL_SIZE", "MLPField", "ConvField"]

KERNEL_SIZE = 5
_OUT_INIT = 0.1


def _shrink_(layer: nn.Module) -> None:
    with torch.no_grad():
        layer.weight.mul_(_OUT_INIT)
        layer.bias.zero_()


class MLPField(nn.Module):
    """``(batch, dim) -> (batch, dim)``: ``depth`` hidden layers of ``width`` units, SiLU."""

    def __init__(self, dim: int, width: int, depth: int) -> None:
        super().__init__()
        sizes = [dim] + [width] * depth
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.SiLU()]
        layers.append(nn.Linear(width, dim))
        _shrink_(layers[-1])
        self.net = nn.Sequential(*layers)
        self.nfe = 0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        self.__dict__["nfe"] += 1  # a plain dict update: nn.Module.__setattr__ costs ~1.4 µs a call
        return self.net(h)


class ConvField(nn.Module):
    """``(batch, channels, n) -> (batch, channels, n)``: circular 1-D convolutions, SiLU.

    Circular padding makes the field commute with periodic shifts of the grid, as the
    heat and Kuramoto–Sivashinsky equations on a periodic domain do.
    """

    def __init__(self, channels: int, width: int, depth: int) -> None:
        super().__init__()
        sizes = [channels] + [width] * depth
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [_circular_conv(n_in, n_out), nn.SiLU()]
        layers.append(_circular_conv(width, channels))
        _shrink_(layers[-1])
        self.net = nn.Sequential(*layers)
        self.nfe = 0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        self.__dict__["nfe"] += 1  # a plain dict update: nn.Module.__setattr__ costs ~1.4 µs a call
        return self.net(h)


def _circular_conv(n_in: int, n_out: int) -> nn.Conv1d:
    return nn.Conv1d(n_in, n_out, KERNEL_SIZE, padding=KERNEL_SIZE // 2, padding_mode="circular")
