"""LM-ResNet baseline (Lu, Zhong, Li, Dong, ICML 2018): a linear two-step ResNet.

``z_{n+1} = (1 − k_n) z_n + k_n z_{n−1} + g_n(z_n)`` with a learnable scalar ``k_n``,
initialised from ``U(−0.1, 0)`` through the torch RNG as in the official code (so
``torch.manual_seed`` reproduces it). The first step has no ``z_{n−1}`` and is a plain
residual step ``z_1 = z_0 + g_0(z_0)``. With ``k = 0`` the scheme is the ResNet.

Forecasting: one shared ``g`` and one shared scalar ``k`` for every step. A per-step
``k_n`` would only be trained for the first ``train_window`` steps and would have no
value beyond them, while the test horizon is far longer; one ``k`` keeps the model a
time-invariant two-step map that extends to any horizon. As for the ResNet, ``depth``
steps are taken per sample interval, the two-step history running across intervals.

Classification: ``depth`` blocks each with its own ``g_n``; blocks 2.. each have their
own ``k_n`` (the first block is the plain residual step, so it has none).
"""

from __future__ import annotations

import torch
from torch import nn

from ..spec import TaskSpec
from ..toolkit import CountedField
from .resnet import RESIDUAL_HYPERPARAMETERS, RESIDUAL_TASK_KINDS, ResNetForecaster, build_residual_model

__all__ = ["K_INIT_RANGE", "init_k", "LMForecaster", "LMStack", "build_lm_resnet"]

K_INIT_RANGE = (-0.1, 0.0)


def init_k(*shape: int) -> nn.Parameter:
    """Learnable ``k`` values drawn from ``U(K_INIT_RANGE)`` with the torch RNG."""
    return nn.Parameter(torch.empty(shape).uniform_(*K_INIT_RANGE))


def _lm_step(z: torch.Tensor, z_prev: torch.Tensor, k: torch.Tensor, gz: torch.Tensor) -> torch.Tensor:
    return (1 - k) * z + k * z_prev + gz


class LMForecaster(ResNetForecaster):
    """Forecast by ``depth`` LM steps of one shared ``g`` and ``k`` per sample interval.

    The rollout is the ResNet's; only the step rule differs, and the two-step history
    runs across sample intervals. Read as a linear two-step method
    ``z_{n+1} − (1 − k) z_n − k z_{n−1} = h (1 + k) f(z_n)``, consistent for any ``k``
    with the vector field ``f = g / (h (1 + k))``; :meth:`with_discretisation` changes
    ``h`` and keeps ``f`` and ``k``, so ``g`` is scaled by ``step_factor`` as in the ResNet.
    """

    def __init__(self, task: TaskSpec, field_kind: str, g: CountedField, state_scale: float, depth: int) -> None:
        super().__init__(task, field_kind, g, state_scale, depth)
        self.k = init_k()

    def step(self, z: torch.Tensor, z_prev: torch.Tensor | None) -> torch.Tensor:
        gz = self.g(z) if self.step_factor == 1.0 else self.step_factor * self.g(z)
        return z + gz if z_prev is None else _lm_step(z, z_prev, self.k, gz)


class LMStack(nn.Module):
    """The hidden dynamics of a classifier: LM blocks with their own ``g_n`` and ``k_n``."""

    def __init__(self, blocks: list[CountedField]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.k = init_k(len(blocks) - 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z_prev, z = z, z + self.blocks[0](z)
        for k, g in zip(self.k, self.blocks[1:]):
            z_prev, z = z, _lm_step(z, z_prev, k, g(z))
        return z


def build_lm_resnet(
    task: TaskSpec,
    *,
    width: int | None = None,
    depth: int | None = None,
    layers: int | None = None,
    activation: str = "silu",
    field: str = "auto",
    state_scale: float | None = None,
    symmetric: bool | None = None,
    conservative: bool | None = None,
) -> nn.Module:
    """An LM-ResNet for ``task`` (forecast or classify); arguments as for ``resnet``."""
    return build_residual_model(
        task, "lm-resnet", LMForecaster, LMStack,
        width=width, depth=depth, layers=layers, activation=activation, field=field, state_scale=state_scale, symmetric=symmetric, conservative=conservative,
    )


build_lm_resnet.task_kinds = RESIDUAL_TASK_KINDS  # type: ignore[attr-defined]
build_lm_resnet.hyperparameters = RESIDUAL_HYPERPARAMETERS  # type: ignore[attr-defined]
