"""The leaderboard committed in leaderboard/ is exactly a re-render of the committed records.

So the published tables can never drift from the data they claim to summarise: change a
record (or the renderer) without regenerating, and this fails.
"""

from __future__ import annotations

from pathlib import Path

from odebench.data import manifest_hashes
from odebench.leaderboard import write_leaderboard
from odebench.results import read_records

PUBLISHED = Path(__file__).resolve().parents[1] / "leaderboard"


def test_published_leaderboard_equals_a_rerender_of_its_records(tmp_path: Path) -> None:
    out = tmp_path / "README.md"
    report = write_leaderboard(PUBLISHED / "results", out, current_hashes=manifest_hashes())
    assert out.read_text(encoding="utf-8") == (PUBLISHED / "README.md").read_text(encoding="utf-8"), (
        "leaderboard/README.md is stale: regenerate it with "
        "'odebench leaderboard --results leaderboard/results --out leaderboard/README.md'"
    )
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == sorted(p.name for p in (PUBLISHED / "plots").glob("*.png"))
    assert report.n_excluded == 0 and not report.skipped


def test_published_records_cover_every_baseline_task_and_seed() -> None:
    records, skipped = read_records(PUBLISHED / "results")
    assert not skipped
    seen = {(r["task"]["name"], r["model"]["name"], r["seed"]) for r in records if r["profile"] == "standard"}
    forecast = ("heat-forecast", "lorenz-forecast", "ks-forecast")
    classify = ("heat-classify", "lorenz-classify", "ks-classify")
    expected = {(t, m, s) for s in (0, 1, 2) for t in forecast + classify for m in ("neural-ode", "resnet", "lm-resnet", "linear")}
    expected |= {(t, "persistence", s) for t in forecast for s in (0, 1, 2)}
    expected |= {(t, "majority", s) for t in classify for s in (0, 1, 2)}
    assert expected <= seen
    assert all(not r["env"].get("git_dirty") for r in records)
