"""Fresh test splits: drawn anew from a seed, cached and verified, and never mixed with the shipped one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from odebench import data, registry
from odebench.cli import main
from odebench.protocol import protocol_for
from odebench.tasks.fresh import fresh_test_split
from odebench.tasks.specs import ALL_RECIPES

TASK = "lorenz-forecast"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ODEBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_fresh_split_has_the_shipped_shapes_and_new_states(cache: Path) -> None:
    split = fresh_test_split(TASK, 7)
    assert split.generated and split.directory.is_relative_to(cache)
    fresh = data.load_split(TASK, "test", split.directory)
    shipped = data.load_split(TASK, "test")
    assert fresh.u.shape == shipped.u.shape and np.array_equal(fresh.t, shipped.t)
    assert not np.isin(fresh.u[:, 0, 0], shipped.u[:, 0, 0]).any()  # no shipped initial state reappears
    assert np.abs(fresh.u).max() < 60  # on the same attractor
    again = fresh_test_split(TASK, 7)
    assert not again.generated and again.sha256 == split.sha256


def test_a_damaged_cached_split_is_regenerated_identically(cache: Path) -> None:
    split = fresh_test_split("heat-classify", 11)
    path = split.directory / data.split_filename("heat-classify", "test")
    original = path.read_bytes()
    middle = len(original) // 2
    path.write_bytes(original[:middle] + bytes([original[middle] ^ 0xFF]) + original[middle + 1 :])
    again = fresh_test_split("heat-classify", 11)
    assert again.generated and path.read_bytes() == original


def test_seeds_of_the_shipped_splits_and_unknown_tasks_are_refused(cache: Path) -> None:
    shipped_seed = ALL_RECIPES[TASK].splits["test"].seed
    with pytest.raises(ValueError, match="seed of the shipped test split"):
        fresh_test_split(TASK, shipped_seed)
    with pytest.raises(ValueError, match="no generator"):
        fresh_test_split("no-such-task", 3)


def test_a_model_that_memorised_the_shipped_test_split_scores_honestly_on_a_fresh_one(fake_models, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    base = ["run", "--model", "fake-memorizer,persistence", "--task", TASK, "--profile", "quick", "--results", str(results)]
    assert main(base) == 0
    assert main([*base, "--test-seed", "7"]) == 0
    assert "fresh test split of lorenz-forecast from seed 7" in capsys.readouterr().err
    recs = {(r["model"]["name"], r["task"]["test_split"]["source"]): r for r in (json.loads(p.read_text()) for p in results.glob("*.json"))}
    assert len(recs) == 4
    cheat_shipped, cheat_fresh = recs[("fake-memorizer", "shipped")], recs[("fake-memorizer", "fresh")]
    honest = recs[("persistence", "fresh")]
    horizon = cheat_shipped["metrics"]["horizon_lyapunov"]
    assert cheat_shipped["metrics"]["vpt"] == pytest.approx(horizon) and cheat_shipped["metrics"]["vpt_capped_fraction"] == 1.0
    assert cheat_fresh["metrics"]["vpt"] == pytest.approx(honest["metrics"]["vpt"]) and cheat_fresh["metrics"]["vpt"] < 1.0
    assert cheat_fresh["task"]["test_split"]["seed"] == 7 and len(cheat_fresh["task"]["test_split"]["sha256"]) == 64
    # The board ranks the two test splits in tables of their own.
    out = tmp_path / "board.md"
    assert main(["leaderboard", "--results", str(results), "--out", str(out), "--no-plots"]) == 0
    text = out.read_text()
    version = protocol_for(registry.load_task(TASK), "quick").version
    assert f"### profile quick (protocol v{version})\n" in text and f"### profile quick (protocol v{version}), fresh test split seed 7\n" in text
