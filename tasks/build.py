"""Generate the frozen splits from their recipes, or check that regenerating reproduces them.

``build`` writes ``<task>.<split>.h5`` for the chosen tasks and rewrites their entries of
``MANIFEST.json`` (other tasks' entries are kept). ``build(check=True)`` generates into a
temporary directory instead and compares with the files in place: bit-identical sha256
passes; so does a file whose arrays are *equivalent* — the float32 fields ``u`` and the
labels bit-identical, the float64 arrays (``t``, ``params``) within :data:`FLOAT64_ULPS`
units in the last place, since NumPy builds may round a float64 expression differently
by an ulp; anything else fails with the largest absolute deviation reported.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import data
from ..spec import TaskSpec
from ._recipe import SPLITS, Recipe

__all__ = ["FLOAT64_ULPS", "FileReport", "BuildReport", "build", "build_recipes"]

#: How many units in the last place a regenerated float64 array may differ by.
FLOAT64_ULPS = 4


@dataclass(frozen=True)
class FileReport:
    """One generated file: its digest, and in check mode how it compares with the canonical one.

    ``identical`` is ``None`` when nothing was compared (a plain build);
    ``equivalent`` is true when the bytes differ but the arrays agree (see the module
    docstring); ``max_abs_deviation`` is the largest |difference| over ``u``, ``t`` and
    ``params`` when the bytes differ but the arrays could be compared.
    """

    task: str
    name: str
    sha256: str
    size: int
    seconds: float
    identical: bool | None = None
    max_abs_deviation: float | None = None
    note: str = ""
    equivalent: bool = False

    @property
    def passed(self) -> bool:
        return self.identical is not False or self.equivalent


@dataclass
class BuildReport:
    """What a build or a check did, file by file."""

    directory: Path
    check: bool
    rows: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A build is ok once written; a check only if every file is identical or equivalent."""
        return all(row.passed for row in self.rows) and bool(self.rows)

    @property
    def seconds(self) -> float:
        return sum(row.seconds for row in self.rows)

    def format(self) -> str:
        """A fixed-width text table for the command line."""
        action = "checked against" if self.check else "written to"
        lines = [f"{len(self.rows)} file(s) {action} {self.directory} in {self.seconds:.1f} s"]
        width = max([len(r.name) for r in self.rows] + [4])
        lines.append(f"{'file':<{width}}  {'sha256':<12}  {'bytes':>9}  {'seconds':>7}  result")
        for r in self.rows:
            if r.identical is None:
                result = "written"
            elif r.identical:
                result = "identical"
            elif r.equivalent:
                result = f"equivalent: max |deviation| {r.max_abs_deviation or 0.0:.3g}"
            elif r.max_abs_deviation is not None:
                result = f"DIFFERS: max |deviation| {r.max_abs_deviation:.3g}"
            else:
                result = "DIFFERS"
            if r.note:
                result += f" ({r.note})"
            lines.append(f"{r.name:<{width}}  {r.sha256[:12]:<12}  {r.size:>9}  {r.seconds:>7.2f}  {result}")
        lines.append("OK" if self.ok else "FAILED: regenerated data differ from the canonical files")
        return "\n".join(lines)


def _required_times(spec: TaskSpec, split: str) -> tuple[int, bool]:
    """How many samples the trajectories of ``split`` need, and whether exactly that many.

    The task's objective says so: a split scored whole needs exactly ``spec.n_times``
    (every classification split, a forecast's test split); a split cut into training
    windows needs at least ``spec.train_window``.
    """
    return spec.objective.split_times(spec, split)


def _check_plans(recipe: Recipe) -> None:
    spec = recipe.spec
    missing = [s for s in SPLITS if s not in recipe.splits]
    if missing:
        raise ValueError(f"recipe {spec.name!r} has no plan for split(s) {missing}")
    for split, plan in recipe.splits.items():
        n_times, exact = _required_times(spec, split)
        if exact and plan.n_times != n_times:
            raise ValueError(f"recipe {spec.name!r}: {split} trajectories need n_times = {n_times}, got {plan.n_times}")
        if not exact and plan.n_times < n_times:
            raise ValueError(f"recipe {spec.name!r}: {split} trajectories are shorter than train_window = {n_times}")
    seeds = [plan.seed for plan in recipe.splits.values()]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"recipe {spec.name!r}: every split needs its own seed, got {seeds}")


def _within_ulps(x: np.ndarray, y: np.ndarray, ulps: int) -> bool:
    """Whether two float64 arrays agree to ``ulps`` units in the last place, element by element."""
    x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    scale = np.spacing(np.maximum(np.abs(x64), np.abs(y64)))
    return bool(np.all((x64 == y64) | (np.abs(x64 - y64) <= ulps * scale)))


def _compare(new: Path, old: Path, task: str, split: str) -> tuple[float | None, bool, str]:
    """(largest |difference|, equivalent, note) between two versions of a split file."""
    try:
        a = data.load_split(task, split, new.parent, verify=False)
        b = data.load_split(task, split, old.parent, verify=False)
    except Exception as exc:  # the canonical file may be truncated or not HDF5 at all
        return None, False, f"canonical file unreadable: {type(exc).__name__}"
    notes = []
    deviation = 0.0
    equivalent = True
    for key in ("u", "t", "params"):
        x, y = getattr(a, key), getattr(b, key)
        if x.shape != y.shape or x.dtype != y.dtype:
            return None, False, f"{key} shape/dtype {x.shape} {x.dtype} vs canonical {y.shape} {y.dtype}"
        if not x.size:
            continue
        deviation = max(deviation, float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))))
        if x.dtype == np.float64:
            if not _within_ulps(x, y, FLOAT64_ULPS):
                equivalent = False
                notes.append(f"{key} differs by more than {FLOAT64_ULPS} ulp")
            elif not np.array_equal(x, y):
                notes.append(f"{key} within {FLOAT64_ULPS} ulp")
        elif not np.array_equal(x, y):
            equivalent = False
            notes.append(f"{key} ({x.dtype}) not bit-identical")
    if a.y is None or b.y is None:
        labels_differ = (a.y is None) != (b.y is None)
    else:
        labels_differ = not np.array_equal(a.y, b.y)
    if labels_differ:
        equivalent = False
        notes.append("labels differ")
    if deviation == 0.0 and not notes:
        notes.append("arrays equal, bytes differ")
    return deviation, equivalent, "; ".join(notes)


def build_recipes(recipes: Mapping[str, Recipe], directory: str | os.PathLike[str] | None = None, check: bool = False) -> BuildReport:
    """Build (or, with ``check``, regenerate and compare) the splits of the given recipes."""
    target = Path(directory) if directory is not None else data.data_dir()
    for recipe in recipes.values():
        _check_plans(recipe)
    report = BuildReport(directory=target, check=check)
    with tempfile.TemporaryDirectory(prefix="odebench-build-") as scratch:
        out_dir = Path(scratch) if check else target
        for name in sorted(recipes):
            recipe = recipes[name]
            files: dict[str, dict[str, object]] = {}
            for split in SPLITS:
                plan = recipe.splits[split]
                start = time.perf_counter()
                arrays = recipe.generate(recipe.spec, plan)
                filename = data.split_filename(name, split)
                path = data.write_split(out_dir / filename, recipe.spec, split, arrays, plan.seed, recipe.generator, recipe.extra_attrs)
                seconds = time.perf_counter() - start
                sha, size = data.file_sha256(path), path.stat().st_size
                files[filename] = {"sha256": sha, "size": size}
                row = FileReport(task=name, name=filename, sha256=sha, size=size, seconds=seconds)
                if check:
                    canonical = target / filename
                    if not canonical.is_file():
                        row = FileReport(name, filename, sha, size, seconds, identical=False, note="canonical file missing")
                    elif data.file_sha256(canonical) == sha:
                        row = FileReport(name, filename, sha, size, seconds, identical=True)
                    else:
                        deviation, equivalent, note = _compare(path, canonical, name, split)
                        row = FileReport(name, filename, sha, size, seconds, False, deviation, note, equivalent)
                report.rows.append(row)
            if not check:
                # Per task, so that a failure later on leaves every finished task verifiable.
                data.write_manifest(target, {name: {"version": recipe.spec.version, "files": files}})
    return report


def build(tasks: Sequence[str] | None = None, directory: str | os.PathLike[str] | None = None, check: bool = False) -> BuildReport:
    """Build the named built-in tasks (all when ``None``) into ``directory`` (default: the data directory).

    With ``check``, nothing in ``directory`` changes: the splits are regenerated in a
    temporary directory and compared with the files there.
    """
    from .specs import ALL_RECIPES  # imported here: it pulls in every task and system module

    names = list(ALL_RECIPES) if tasks is None else list(dict.fromkeys(tasks))
    unknown = [n for n in names if n not in ALL_RECIPES]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; built-in tasks: {', '.join(sorted(ALL_RECIPES))}")
    if not names:
        raise ValueError("no task to build; name at least one, or pass None for all")
    return build_recipes({n: ALL_RECIPES[n] for n in names}, directory, check)
