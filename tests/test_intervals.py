"""Confidence intervals and tied ranks from per-item scores: noise ties, a clear gap does not."""

from __future__ import annotations

import numpy as np
import pytest

from odebench.leaderboard.intervals import bootstrap_interval, paired_difference_interval, significance_ranks

N_ITEMS = 64


def _scores(rng: np.random.Generator, shift: float, item_effect: np.ndarray, seeds: int = 3, seed_noise: float = 0.3) -> list[list[float]]:
    """VPT-like scores: a per-item difficulty shared by every model, seed noise, item noise."""
    return [list(np.clip(3.0 + shift + item_effect + rng.normal(0, seed_noise) + rng.normal(0, 0.5, N_ITEMS), 0, None)) for _ in range(seeds)]


@pytest.fixture
def items() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 2.0, N_ITEMS)  # hard and easy trajectories, as on Lorenz


def test_the_interval_covers_the_mean_and_shrinks_with_more_items() -> None:
    rng = np.random.default_rng(1)
    small = [list(rng.normal(5, 1, 16)) for _ in range(3)]
    large = [list(rng.normal(5, 1, 1024)) for _ in range(3)]
    lo_s, hi_s = bootstrap_interval(small, "a")
    lo_l, hi_l = bootstrap_interval(large, "b")
    assert lo_s < np.mean(small) < hi_s and lo_l < np.mean(large) < hi_l
    assert hi_l - lo_l < 0.5 * (hi_s - lo_s)
    assert bootstrap_interval([[2.0] * 8] * 3) == (2.0, 2.0)
    assert bootstrap_interval(small, "a") == (lo_s, hi_s)  # deterministic


def test_an_infinite_item_gives_no_interval() -> None:
    lo, hi = bootstrap_interval([[1.0, None, 2.0], [1.0, 1.5, 2.0]])
    assert np.isnan(lo) and np.isnan(hi)


def test_a_difference_inside_the_noise_ties_and_a_clear_one_does_not(items: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    a, b, c = _scores(rng, 0.0, items), _scores(rng, 0.05, items), _scores(rng, 1.5, items)
    lo, hi = paired_difference_interval(b, a, "b-a")
    assert lo < 0 < hi
    lo, hi = paired_difference_interval(c, a, "c-a")
    assert lo > 0
    assert significance_ranks({"a": a, "b": b}, higher_is_better=True) == {"a": 1.0, "b": 1.0}
    ranks = significance_ranks({"a": a, "b": b, "c": c}, higher_is_better=True)
    assert ranks == {"c": 1.0, "a": 2.0, "b": 2.0}
    # Lower is better: the same scores read as errors rank the other way round.
    assert significance_ranks({"a": a, "c": c}, higher_is_better=False) == {"a": 1.0, "c": 2.0}


def test_pairing_on_shared_items_sees_through_item_difficulty(items: np.ndarray) -> None:
    """Unpaired, the hard/easy spread of the items would swamp a 0.4 gap; paired, it cancels."""
    rng = np.random.default_rng(3)
    a, b = _scores(rng, 0.0, items, seed_noise=0.02), _scores(rng, 0.4, items, seed_noise=0.02)
    lo_a, hi_a = bootstrap_interval(a, "a")
    lo_b, hi_b = bootstrap_interval(b, "b")
    assert lo_b < hi_a  # the two intervals overlap
    lo, hi = paired_difference_interval(b, a, "b-a")
    assert lo > 0  # yet b is significantly better
