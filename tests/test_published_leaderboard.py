"""Every board committed under leaderboard/ is exactly a re-render of its committed records.

So the published tables can never drift from the data they claim to summarise: change a
record (or the renderer) without regenerating, and this fails. The current board is
judged against the installed data's manifest; an archived board (made on an earlier task
version) against the manifest archived with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from odebench.analysis import analysis_path, read_analysis
from odebench.data import manifest_hashes
from odebench.leaderboard import write_leaderboard
from odebench.results import read_records

PUBLISHED = Path(__file__).resolve().parents[1] / "leaderboard"
ARCHIVED = sorted(p for p in (PUBLISHED / "archive").iterdir() if (p / "MANIFEST.json").is_file())
BOARDS = [PUBLISHED, *ARCHIVED]


def board_hashes(board: Path) -> dict[str, str]:
    """The data hashes a board is judged against: its own archived manifest, else the installed one."""
    return manifest_hashes(board) if (board / "MANIFEST.json").is_file() else manifest_hashes()


def _label(board: Path) -> str:
    return board.relative_to(PUBLISHED.parent).as_posix()


def test_the_first_complete_board_is_archived() -> None:
    assert [p.name for p in ARCHIVED][:1] == ["tasks-v1.0"]


@pytest.mark.parametrize("board", BOARDS, ids=_label)
def test_published_leaderboard_equals_a_rerender_of_its_records(tmp_path: Path, board: Path) -> None:
    out = tmp_path / "README.md"
    report = write_leaderboard(board / "results", out, current_hashes=board_hashes(board))
    where = _label(board)
    assert out.read_text(encoding="utf-8") == (board / "README.md").read_text(encoding="utf-8"), (
        f"{where}/README.md is stale: regenerate it with "
        f"'odebench leaderboard --results {where}/results --out {where}/README.md'"
        + (f" --data-dir {where}" if board != PUBLISHED else "")
    )
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == sorted(p.name for p in (board / "plots").glob("*.png"))
    assert report.n_excluded == 0 and not report.skipped


@pytest.mark.parametrize("board", [b for b in BOARDS if any((b / "results").glob("*.json"))], ids=_label)
def test_published_records_cover_every_baseline_task_and_seed(board: Path) -> None:
    records, skipped = read_records(board / "results")
    assert not skipped
    seen = {(r["task"]["name"], r["model"]["name"], r["seed"]) for r in records if r["profile"] == "standard"}
    forecast = ("heat-forecast", "lorenz-forecast", "ks-forecast")
    classify = ("heat-classify", "lorenz-classify", "ks-classify")
    tasks = forecast + classify  # every board, archived or current, is complete
    expected = {(t, m, s) for s in (0, 1, 2) for t in tasks for m in ("neural-ode", "resnet", "lm-resnet", "linear")}
    expected |= {(t, "persistence", s) for t in tasks if t in forecast for s in (0, 1, 2)}
    expected |= {(t, "majority", s) for t in tasks if t in classify for s in (0, 1, 2)}
    if board == PUBLISHED:
        expected |= {(t, m, s) for t in tasks if t in forecast for m in ("exact", "perturbed-exact") for s in (0, 1, 2)}
        expected |= {(t, "physics-features", s) for t in tasks if t in classify for s in (0, 1, 2)}
    assert expected <= seen, f"missing runs: {sorted(expected - seen)}"
    assert all(not r["env"].get("git_dirty") for r in records)
    if board == PUBLISHED:  # the step budget, never a clock, ends every published run
        truncated = sorted(f"{r['task']['name']} {r['model']['name']} seed {r['seed']}" for r in records if (r.get("train") or {}).get("truncated"))
        assert truncated == [], f"truncated runs on the board: {truncated}"


@pytest.mark.parametrize("board", [b for b in BOARDS if any((b / "results").glob("*.analysis.json"))], ids=_label)
def test_every_published_forecast_run_has_its_analysis(board: Path) -> None:
    records, _ = read_records(board / "results")
    runs = [r for r in records if r["status"] == "ok" and r["task"]["kind"] == "forecast"]
    assert runs
    for rec in runs:
        (path,) = (board / "results").glob(f"{rec['task']['name']}__{rec['model']['name']}__{rec['profile']}__seed{rec['seed']}.json")
        analysis = read_analysis(analysis_path(path))
        assert analysis["status"] == "ok", f"{path.name}: {analysis['error']}"
        assert analysis["run"]["run_id"] == rec["run_id"], f"{path.name}: its analysis is of another run; rerun 'odebench analyze'"
