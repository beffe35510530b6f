"""Confidence intervals and significance from per-item scores: seeds, then test items.

A main score is a mean over seeds of a mean over test items, and both are samples: the
seeds of training randomness, the items of the test distribution. The interval is a
*hierarchical bootstrap*: each replicate draws the seeds with replacement, then the test
items with replacement (one draw of items shared by the drawn seeds), and takes the
mean; the 95 % interval is the 2.5 and 97.5 percentiles of :data:`REPLICATES`
replicates. Two models are compared by a *paired* bootstrap of their difference: the
same draw of test items for both (they are scored on the same items), their seeds
drawn independently. A model is significantly better than another when the 95 %
interval of the difference excludes 0; a model's rank is 1 + the number of models
significantly better than it, so models whose difference is inside the noise tie.

The random draws come from a generator seeded by a fixed seed and the names involved,
so a re-render gives the same numbers whatever the order of the records.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["REPLICATES", "LEVEL", "BOOTSTRAP_SEED", "bootstrap_interval", "paired_difference_interval", "significance_ranks"]

REPLICATES = 2000
LEVEL = 0.95
BOOTSTRAP_SEED = 20261202


def _rng(*names: str) -> np.random.Generator:
    return np.random.default_rng([BOOTSTRAP_SEED, *(zlib.crc32(n.encode("utf-8")) for n in names)])


def _matrix(per_seed: Sequence[Sequence[float | None]]) -> np.ndarray:
    """Seeds × items as float64, ``None`` (an infinite score) as +inf."""
    rows = [[math.inf if v is None else float(v) for v in seed] for seed in per_seed]
    if not rows or len({len(r) for r in rows}) != 1 or not rows[0]:
        raise ValueError("every seed needs the same, non-zero number of item scores")
    return np.asarray(rows, dtype=np.float64)


def _replicates(x: np.ndarray, items: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Replicate means: ``items`` (B, n) item draws, ``seeds`` (B, S) seed draws."""
    with np.errstate(invalid="ignore"):
        per_seed = x[:, items].mean(axis=2)  # (S, B): each seed's mean over the drawn items
    b = np.arange(items.shape[0])
    with np.errstate(invalid="ignore"):
        return per_seed[seeds, b[:, None]].mean(axis=1)


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    if not np.all(np.isfinite(values)):
        return math.nan, math.nan
    lo, hi = np.percentile(values, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return float(lo), float(hi)


def bootstrap_interval(per_seed: Sequence[Sequence[float | None]], name: str = "") -> tuple[float, float]:
    """The 95 % hierarchical-bootstrap interval of the mean over seeds of the mean over items.

    ``per_seed`` holds one list of item scores per seed (the same items in the same
    order); an interval with an infinite score in it is ``(nan, nan)``.
    """
    x = _matrix(per_seed)
    rng = _rng("interval", name)
    n_seeds, n_items = x.shape
    items = rng.integers(0, n_items, (REPLICATES, n_items))
    seeds = rng.integers(0, n_seeds, (REPLICATES, n_seeds))
    return _percentiles(_replicates(x, items, seeds))


def paired_difference_interval(a: Sequence[Sequence[float | None]], b: Sequence[Sequence[float | None]], name: str = "") -> tuple[float, float]:
    """The 95 % interval of mean(a) − mean(b): shared item draws, independent seed draws."""
    xa, xb = _matrix(a), _matrix(b)
    if xa.shape[1] != xb.shape[1]:
        raise ValueError("a paired comparison needs scores on the same test items")
    rng = _rng("paired", name)
    n_items = xa.shape[1]
    items = rng.integers(0, n_items, (REPLICATES, n_items))
    seeds_a = rng.integers(0, xa.shape[0], (REPLICATES, xa.shape[0]))
    seeds_b = rng.integers(0, xb.shape[0], (REPLICATES, xb.shape[0]))
    with np.errstate(invalid="ignore"):
        diff = _replicates(xa, items, seeds_a) - _replicates(xb, items, seeds_b)
    return _percentiles(diff)


def significance_ranks(scores: Mapping[str, Sequence[Sequence[float | None]]], higher_is_better: bool, table: str = "") -> dict[str, float]:
    """Rank = 1 + the number of rows significantly better (paired bootstrap), per row name.

    A row whose mean is not finite (a diverged forecast) is unranked (NaN) and is not
    compared with the others.
    """
    names = sorted(scores)
    means = {n: float(np.mean(_matrix(scores[n]))) for n in names}
    better: dict[str, int] = {n: 0 for n in names}
    finite = [n for n in names if math.isfinite(means[n])]
    for i, p in enumerate(finite):
        for q in finite[i + 1 :]:
            lo, hi = paired_difference_interval(scores[p], scores[q], f"{table}|{p}|{q}")
            if not (math.isfinite(lo) and math.isfinite(hi)):
                continue
            if not higher_is_better:
                lo, hi = -hi, -lo  # positive now means p is better
            if lo > 0:
                better[q] += 1
            elif hi < 0:
                better[p] += 1
    return {n: (float(1 + better[n]) if math.isfinite(means[n]) else math.nan) for n in names}
