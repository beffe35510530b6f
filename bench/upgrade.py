"""Upgrade result records written by an older odebench to the current schema, in place.

Schema 1 → 2: a record gains the full spec of its task (``task.spec``), so that it is
self-describing, and the protocol moves from ``train.protocol`` to the top level; the
cost entry ``n_output_times`` (which held the *training* window) becomes
``n_test_times`` (samples per test item). The spec is taken from the installed task
of the same name and version: a record of another version is left untouched and
reported, since its data and scoring may differ. Metrics, costs and weights are never
changed. Each file is rewritten atomically; running the upgrade twice changes nothing.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .results import validate_record, write_json_atomic
from .spec import SCHEMA_VERSION, TaskSpec

__all__ = ["UpgradeError", "UpgradeReport", "upgrade_record", "upgrade_results"]


class UpgradeError(ValueError):
    """A record that cannot be upgraded (unknown layout, or a task version not installed)."""


@dataclass
class UpgradeReport:
    upgraded: list[Path] = field(default_factory=list)
    current: list[Path] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"{len(self.upgraded)} record(s) upgraded to schema {SCHEMA_VERSION}, {len(self.current)} already current, {len(self.refused)} left as they were"]
        lines += [f"  left {p}: {why}" for p, why in self.refused]
        return "\n".join(lines)


def _v1_to_v2(rec: dict[str, Any], spec_of: Callable[[str], TaskSpec | None]) -> dict[str, Any]:
    out = copy.deepcopy(rec)
    task = out["task"]
    spec = spec_of(str(task["name"]))
    if task.get("version") is None:  # failed before the task was loaded
        task["spec"] = None
    elif spec is None:
        raise UpgradeError(f"task {task['name']!r} is not installed, so its spec cannot be filled in")
    elif str(spec.version) != str(task["version"]):
        raise UpgradeError(f"the record is of task {task['name']!r} version {task['version']}, the installed one is version {spec.version}: rerun it")
    else:
        task["spec"] = spec.to_dict()
    train = out.get("train") or {}
    out["protocol"] = train.pop("protocol", None)
    out["train"] = train
    cost = out.get("cost") or {}
    if "n_output_times" in cost:
        cost.pop("n_output_times")
        if task.get("spec") is not None and out["status"] == "ok":
            cost["n_test_times"] = int(task["spec"]["n_times"])
    out["schema_version"] = 2
    return out


def upgrade_record(rec: dict[str, Any], spec_of: Callable[[str], TaskSpec | None]) -> dict[str, Any]:
    """``rec`` in the current schema (a new dict); ``spec_of(name)`` gives an installed spec or ``None``."""
    version = rec.get("schema_version") if isinstance(rec, dict) else None
    if version == SCHEMA_VERSION:
        return validate_record(rec)
    if version != 1:
        raise UpgradeError(f"schema_version {version!r} is not one this odebench can upgrade")
    return validate_record(_v1_to_v2(rec, spec_of))


def _installed_spec(name: str) -> TaskSpec | None:
    from . import registry  # the upgrade is the one place that needs the installed tasks

    try:
        return registry.load_task(name)
    except registry.RegistryError:
        return None


def upgrade_results(results_dir: str | os.PathLike[str], spec_of: Callable[[str], TaskSpec | None] = _installed_spec) -> UpgradeReport:
    """Upgrade every record below ``results_dir`` in place (see the module docstring)."""
    report = UpgradeReport()
    for path in sorted(p for p in Path(results_dir).rglob("*.json") if p.is_file() and not p.name.startswith(".")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            report.refused.append((path, f"not readable as JSON ({exc})"))
            continue
        if not isinstance(rec, dict) or "schema_version" not in rec:
            report.refused.append((path, "not a result record"))
            continue
        if rec["schema_version"] == SCHEMA_VERSION:
            report.current.append(path)
            continue
        try:
            new = upgrade_record(rec, spec_of)
        except (UpgradeError, ValueError) as exc:
            report.refused.append((path, str(exc)))
            continue
        write_json_atomic(path, new)
        report.upgraded.append(path)
    return report
