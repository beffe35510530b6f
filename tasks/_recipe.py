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
    #: Optional: several splits in one call, ``{split: plan} -> {split: arrays}``, each
    #: exactly what ``generate`` gives it alone (a batched integration only shares the
    #: per-step cost); ``together`` names the groups of splits a build generates this way.
    generate_together: Callable[[TaskSpec, Mapping[str, SplitPlan]], Mapping[str, SplitArrays]] | None = None
    together: tuple[tuple[str, ...], ...] = ()
    #: Rough seconds per stored sample (one trajectory at one time) on one core: it only
    #: orders the files of a parallel build, largest first, so both cores finish together.
    seconds_per_sample: float = 1e-5

    def __post_init__(self) -> None:
        grouped = [split for group in self.together for split in group]
        if grouped and self.generate_together is None:
            raise ValueError(f"recipe {self.spec.name!r}: 'together' needs generate_together")
        unknown = sorted(set(grouped) - set(SPLITS))
        if unknown or len(grouped) != len(set(grouped)):
            raise ValueError(f"recipe {self.spec.name!r}: 'together' must name each split at most once, got {self.together}")

    def units(self) -> list[tuple[str, ...]]:
        """The groups of splits a build generates in one call each (singles for the rest)."""
        grouped = {split for group in self.together for split in group}
        return [tuple(group) for group in self.together] + [(split,) for split in SPLITS if split not in grouped]

    def estimated_seconds(self, split: str) -> float:
        """The rough one-core cost of generating ``split``, for scheduling only."""
        plan = self.splits[split]
        return self.seconds_per_sample * plan.n * plan.n_times
