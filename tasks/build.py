"""Generate the frozen splits from their recipes, or check that regenerating reproduces them.

``build`` writes ``<task>.<split>.h5`` for the chosen tasks and rewrites their entries of
``MANIFEST.json`` (other tasks' entries are kept). ``build(check=True)`` generates into a
temporary directory instead and compares with the files in place: bit-identical sha256
passes; so does a file whose arrays are *equivalent* — the float32 fields ``u`` and the
labels bit-identical, the float64 arrays (``t``, ``params``) within :data:`FLOAT64_ULPS`
units in the last place of the array's largest magnitude, since NumPy builds and CPUs
(SIMD width, summation order) round a float64 expression differently; anything else fails
with the largest absolute deviation reported.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import data
from .._cores import available_cores
from ..spec import TaskSpec
from ._recipe import SPLITS, Recipe

__all__ = ["FLOAT64_ULPS", "FileReport", "BuildReport", "build", "build_recipes"]

#: How many units in the last place (of the array's largest magnitude) a regenerated float64
#: array may differ by. Another CPU's summation order was measured at 1 ulp; a real change to a
#: recipe (a parameter scaled by 1 + 1e-12 is already ~10^4 ulp) stays far outside.
FLOAT64_ULPS = 16


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
    together: tuple[str, ...] = ()  # the files generated in one batch with it; ``seconds`` is the batch's

    @property
    def passed(self) -> bool:
        return self.identical is not False or self.equivalent


@dataclass
class BuildReport:
    """What a build or a check did, file by file."""

    directory: Path
    check: bool
    rows: list[FileReport] = field(default_factory=list)
    wall_seconds: float | None = None  # the whole build, start to end
    jobs: int = 1

    @property
    def ok(self) -> bool:
        """A build is ok once written; a check only if every file is identical or equivalent."""
        return all(row.passed for row in self.rows) and bool(self.rows)

    @property
    def seconds(self) -> float:
        """Generation time summed over the files, a batch counted once (core-seconds when ``jobs`` > 1)."""
        batches = {row.together or (row.name,): row.seconds for row in self.rows}
        return sum(batches.values())

    def format(self) -> str:
        """A fixed-width text table for the command line."""
        action = "checked against" if self.check else "written to"
        wall = f"{self.wall_seconds:.1f} s wall, " if self.wall_seconds is not None else ""
        lines = [f"{len(self.rows)} file(s) {action} {self.directory} in {wall}{self.seconds:.1f} s of generation in {self.jobs} process(es)"]
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
            if r.together:
                result += f" [one batch: {' + '.join(n.split('.')[1] for n in r.together)}]"
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
    """Whether two float64 arrays agree to ``ulps`` units in the last place of their largest magnitude.

    Rounding error is relative to the size of what a value was computed from, not to the
    value: the mean of a zero-mean field cancels to ~1e-17 and keeps the rounding of terms
    of order one, so an element-wise ulp count would call another CPU's summation order a
    change. Anything a recipe could really change (a parameter, a time grid) moves by far more.
    """
    x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    magnitude = max(float(np.max(np.abs(x64))), float(np.max(np.abs(y64))))
    return bool(np.all(np.abs(x64 - y64) <= ulps * np.spacing(magnitude)))


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


@dataclass(frozen=True)
class _Written:
    """One split file as a worker wrote it; ``seconds`` is its batch's when ``together``."""

    name: str
    sha256: str
    size: int
    seconds: float
    together: tuple[str, ...] = ()


def _generate_unit(recipe: Recipe, task: str, splits: tuple[str, ...], out_dir: str) -> list[_Written]:
    """Generate and write the files of ``splits`` in one call (in a worker process of a
    parallel build, or here): one split by ``generate``, a group by ``generate_together``."""
    start = time.perf_counter()
    if len(splits) == 1:
        arrays = {splits[0]: recipe.generate(recipe.spec, recipe.splits[splits[0]])}
    elif recipe.generate_together is None:
        raise ValueError(f"recipe {task!r} has no generate_together for the splits {splits}")
    else:
        arrays = dict(recipe.generate_together(recipe.spec, {split: recipe.splits[split] for split in splits}))
    paths = {}
    for split in splits:
        plan = recipe.splits[split]
        paths[split] = data.write_split(Path(out_dir) / data.split_filename(task, split), recipe.spec, split, arrays[split], plan.seed, recipe.generator, recipe.extra_attrs)
    seconds = time.perf_counter() - start
    names = tuple(paths[split].name for split in splits) if len(splits) > 1 else ()
    return [_Written(paths[split].name, data.file_sha256(paths[split]), paths[split].stat().st_size, seconds, names) for split in splits]


def _generate_all(recipes: Mapping[str, Recipe], out_dir: Path, jobs: int, finished: Callable[[str, dict[str, _Written]], None]) -> dict[tuple[str, str], _Written]:
    """Every split of every recipe, the largest units first over ``jobs`` processes;
    ``finished(task, files)`` runs as soon as all of a task's files are written."""
    units = [(name, splits) for name in recipes for splits in recipes[name].units()]
    units.sort(key=lambda u: -sum(recipes[u[0]].estimated_seconds(split) for split in u[1]))
    done: dict[tuple[str, str], _Written] = {}

    def record(task: str, splits: tuple[str, ...], written: list[_Written]) -> None:
        for split, w in zip(splits, written):
            done[(task, split)] = w
        if all((task, split) in done for split in SPLITS):
            finished(task, {split: done[(task, split)] for split in SPLITS})

    if jobs <= 1 or len(units) == 1:
        for name, splits in sorted(units):
            record(name, splits, _generate_unit(recipes[name], name, splits, str(out_dir)))
        return done
    # Workers are forked where the platform can (the parent's modules are already
    # imported, so a worker starts in milliseconds); every split depends only on its own
    # seed, so the files are the same whatever runs where.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=min(jobs, len(units)), mp_context=context) as pool:
        futures = {pool.submit(_generate_unit, recipes[name], name, splits, str(out_dir)): (name, splits) for name, splits in units}
        try:
            for future in as_completed(futures):
                record(*futures[future], future.result())
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return done


def build_recipes(recipes: Mapping[str, Recipe], directory: str | os.PathLike[str] | None = None, check: bool = False, jobs: int = 1) -> BuildReport:
    """Build (or, with ``check``, regenerate and compare) the splits of the given recipes.

    ``jobs`` > 1 generates the files in that many worker processes, the largest first
    (by :meth:`Recipe.estimated_seconds`); the recipes must then be picklable (module-level
    generator functions). A file's ``seconds`` is its own generation and writing time, or
    its batch's when it was generated with others (``FileReport.together``).
    """
    target = Path(directory) if directory is not None else data.data_dir()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    for recipe in recipes.values():
        _check_plans(recipe)
    started = time.perf_counter()
    report = BuildReport(directory=target, check=check, jobs=jobs)

    def finished(task: str, written: dict[str, _Written]) -> None:
        if not check:
            # Per task, so that a failure later on leaves every finished task verifiable.
            files = {w.name: {"sha256": w.sha256, "size": w.size} for w in written.values()}
            data.write_manifest(target, {task: {"version": recipes[task].spec.version, "files": files}})

    with tempfile.TemporaryDirectory(prefix="odebench-build-") as scratch:
        out_dir = Path(scratch) if check else target
        done = _generate_all(recipes, out_dir, jobs, finished)
        for name in sorted(recipes):
            for split in SPLITS:
                w = done[(name, split)]
                row = FileReport(task=name, name=w.name, sha256=w.sha256, size=w.size, seconds=w.seconds, together=w.together)
                if check:
                    canonical = target / w.name
                    if not canonical.is_file():
                        row = dataclasses.replace(row, identical=False, note="canonical file missing")
                    elif data.file_sha256(canonical) == w.sha256:
                        row = dataclasses.replace(row, identical=True)
                    else:
                        deviation, equivalent, note = _compare(out_dir / w.name, canonical, name, split)
                        row = dataclasses.replace(row, identical=False, max_abs_deviation=deviation, note=note, equivalent=equivalent)
                report.rows.append(row)
    report.wall_seconds = time.perf_counter() - started
    return report


def build(tasks: Sequence[str] | None = None, directory: str | os.PathLike[str] | None = None, check: bool = False, jobs: int | None = None) -> BuildReport:
    """Build the named built-in tasks (all when ``None``) into ``directory`` (default: the data directory).

    With ``check``, nothing in ``directory`` changes: the splits are regenerated in a
    temporary directory and compared with the files there. ``jobs`` worker processes
    share the files (default: the cores this process may use).
    """
    from .specs import ALL_RECIPES  # imported here: it pulls in every task and system module

    names = list(ALL_RECIPES) if tasks is None else list(dict.fromkeys(tasks))
    unknown = [n for n in names if n not in ALL_RECIPES]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; built-in tasks: {', '.join(sorted(ALL_RECIPES))}")
    if not names:
        raise ValueError("no task to build; name at least one, or pass None for all")
    return build_recipes({n: ALL_RECIPES[n] for n in names}, directory, check, available_cores() if jobs is None else jobs)
