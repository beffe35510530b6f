"""Schema 1 records upgrade in place to self-describing schema 2 records, losing nothing."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from odebench.cli import main
from odebench.results import RecordError, read_record, read_records
from odebench.tasks.specs import ALL_SPECS
from odebench.upgrade import upgrade_results

OLD = Path(__file__).resolve().parent / "data" / "record_schema1.json"


def _copy(tmp_path: Path, *, installed_version: bool = False) -> Path:
    """The schema-1 record (made on task version 1.0), optionally relabelled with the installed
    task's version so that the installed spec can upgrade it."""
    shutil.copy(OLD, tmp_path / OLD.name)
    path = tmp_path / OLD.name
    if installed_version:
        record = json.loads(path.read_text())
        record["task"]["version"] = ALL_SPECS[record["task"]["name"]].version
        path.write_text(json.dumps(record, indent=2))
    return path


def test_a_schema1_record_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="odebench records upgrade"):
        read_record(_copy(tmp_path))


def test_upgrade_fills_in_the_spec_and_moves_the_protocol(tmp_path: Path) -> None:
    path = _copy(tmp_path, installed_version=True)
    before = json.loads(path.read_text())
    report = upgrade_results(tmp_path)
    assert report.upgraded == [path] and not report.refused
    after = read_record(path)
    spec = ALL_SPECS[before["task"]["name"]]
    assert after["schema_version"] == 2 and after["task"]["spec"] == spec.to_dict()
    assert after["protocol"] == before["train"]["protocol"] and "protocol" not in after["train"]
    assert after["metrics"] == before["metrics"] and after["model"] == before["model"] and after["env"] == before["env"]
    assert after["cost"]["n_test_times"] == spec.n_times and "n_output_times" not in after["cost"]
    assert {k: v for k, v in after["cost"].items() if k != "n_test_times"} == {k: v for k, v in before["cost"].items() if k != "n_output_times"}
    again = upgrade_results(tmp_path)
    assert again.current == [path] and not again.upgraded
    assert read_records(tmp_path)[0] == [after]


def test_a_record_of_another_task_version_is_left_alone(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = path.read_text()
    name = json.loads(text)["task"]["name"]
    report = upgrade_results(tmp_path, spec_of=lambda n: replace(ALL_SPECS[n], version="9.9") if n == name else None)
    assert not report.upgraded and "version 9.9" in report.refused[0][1] and "rerun" in report.refused[0][1]
    assert path.read_text() == text


def test_records_upgrade_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _copy(tmp_path)  # task version 1.0: the installed task is newer, so it is left alone, saying why
    assert main(["records", "upgrade", "--results", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "0 record(s) upgraded" in out and "version 1.0, the installed one is version 1.1: rerun it" in out
    _copy(tmp_path, installed_version=True)
    assert main(["records", "upgrade", "--results", str(tmp_path)]) == 0
    assert "1 record(s) upgraded to schema 2" in capsys.readouterr().out
    assert main(["records", "upgrade", "--results", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
