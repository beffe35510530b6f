"""How a task's frozen splits are generated: one :class:`Recipe` per task.

Each task module (``heat.py``, ``lorenz.py``, ``ks.py``) defines its task specs and a
``RECIPES`` dict of name -> :class:`Recipe` whose generators call the mathematics in
``systems/``; ``build.py`` turns recipes into HDF5 files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec import TaskSpec

__all__ = ["SPLITS", "SplitArrays", "SplitPlan", "Recipe"]

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class SplitArrays:
    """The arrays of one split, before they are written.

    ``u``: (n, n_times, *state) float32; ``t``: (n_times,) float64; ``y``: (n,) int64 labels
    or ``None`` for forecasting; ``params``: (n, p) float64 physical parameters per sample.
    """

    u: np.ndarray
    t: np.ndarray
    params: np.ndarray
    y: np.ndarray | None = None


@dataclass(frozen=True)
class SplitPlan:
    """How many trajectories a split has, how many samples each, and its RNG seed."""

    n: int
    n_times: int
    seed: int


@dataclass(frozen=True)
class Recipe:
    """A task's spec, its split plans and its generator ``generate(spec, plan) -> SplitArrays``."""

    spec: TaskSpec
    splits: Mapping[str, SplitPlan]
    generate: Callable[[TaskSpec, SplitPlan], SplitArrays]
    generator: str  # human-readable description stored in the files' attributes
    extra_attrs: Mapping[str, Any] = field(default_factory=dict)
