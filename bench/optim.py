"""The protocol's optimiser, Adam, without the import cost of ``torch.optim``, and its weight average.

Constructing ``torch.optim.Adam`` imports ``torch._dynamo`` (its parameter-group setup is
wrapped to keep the compiler out): about 2 s of CPU in every fresh job process on the
2-core reference machine, more than a quick job's whole training. The harness owns the
optimiser, so it carries its own: :class:`Adam` is ``torch.optim.Adam``'s single-tensor
algorithm (Kingma & Ba 2015, bias-corrected moments, L2 weight decay added to the
gradient, no AMSGrad) and gives the same parameters to rounding (a test compares them).

:class:`WeightAverage` keeps an exponential moving average of the parameters (Polyak
averaging), which a protocol may validate and keep instead of the last iterate: it
averages out the optimiser's noise around the minimum that a finite learning rate
leaves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

__all__ = ["Adam", "WeightAverage"]


class Adam:
    """Adam over ``params`` at learning rate ``lr`` (set ``lr`` between steps to schedule it)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("Adam needs at least one parameter")
        if not (lr >= 0 and 0 <= betas[0] < 1 and 0 <= betas[1] < 1 and eps >= 0 and weight_decay >= 0):
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self._steps = [0] * len(self.params)
        self._first = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self._second = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        """Drop every gradient (``set_to_none``), so the next backward pass writes fresh ones."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        beta1, beta2 = self.betas
        for i, p in enumerate(self.params):
            grad = p.grad
            if grad is None:
                continue
            if self.weight_decay:
                grad = grad.add(p, alpha=self.weight_decay)
            self._steps[i] += 1
            step = self._steps[i]
            first, second = self._first[i], self._second[i]
            first.lerp_(grad, 1 - beta1)
            second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = self.lr / (1 - beta1**step)
            denom = (second.sqrt() / math.sqrt(1 - beta2**step)).add_(self.eps)
            p.addcdiv_(first, denom, value=-step_size)


class WeightAverage:
    """An exponential moving average of ``params``, updated after every optimiser step.

    After update ``n`` (counting from 1) the average is ``a ← d a + (1 − d) p`` with
    ``d = min(decay, n / (n + 9))``: the early, far-from-converged iterates are
    forgotten quickly, and from about ``9 / (1 − decay)`` updates on the average spans
    the last ``1 / (1 − decay)`` steps.
    """

    def __init__(self, params: Iterable[torch.Tensor], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must lie in (0, 1), got {decay}")
        self.params = [p for p in params]
        self.decay = float(decay)
        self.updates = 0
        self._average = [p.detach().clone() for p in self.params]
        self._current = [p.detach() for p in self.params]  # views: they follow the in-place optimiser steps

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters into the average."""
        self.updates += 1
        d = min(self.decay, self.updates / (self.updates + 9.0))
        torch._foreach_lerp_(self._average, self._current, 1.0 - d)

    @torch.no_grad()
    def _swap(self) -> None:
        for p, a in zip(self.params, self._average):
            current = p.detach().clone()
            p.copy_(a)
            a.copy_(current)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the parameters hold the average; afterwards the iterate again."""
        self._swap()
        try:
            yield
        finally:
            self._swap()
