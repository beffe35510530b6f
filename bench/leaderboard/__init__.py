"""The leaderboard: result records aggregated over seeds, rendered as markdown and plots.

The board is a pure function of the records: how each task is scored (main score, every
metric's label, format and direction, λ1, the VPT threshold) comes from the spec stored
in its records, so rendering needs neither the tasks nor the registry installed, and
the same records always give byte-identical markdown and PNGs.

* :mod:`.aggregate` — records → :class:`Aggregate` (screening, stale data, dedupe,
  labels, means over seeds, ranks), with :mod:`.keys` (row keys, labels) and
  :mod:`.taskinfo` (a record's task spec, read as plain values);
* :mod:`.formats` — number formats and the harness-level cost catalogue;
* :mod:`.markdown` — :class:`Aggregate` → markdown;
* :mod:`.plots` — :class:`Aggregate` → PNG bytes;
* :mod:`.dynamics` — analysis records paired with the board's runs (:class:`Dynamics`),
  the "Learned dynamics" tables, and :mod:`.dynamics_figures` their PNG bytes;
* this module — :func:`write_leaderboard`, which reads a results directory and writes
  the files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .._io import write_bytes_atomic
from ..analysis.records import read_analyses
from ..results import SkippedFile, read_records
from .aggregate import Aggregate, Failure, TaskSummary, aggregate
from .dynamics import DYNAMICS_KINDS, Dynamics, pair_analyses
from .dynamics_figures import dynamics_plots
from .markdown import DEFAULT_TITLE, PLOT_KINDS, render_markdown
from .plots import CURVE_TOP, error_growth_png, pareto_front, pareto_png, task_plots
from .taskinfo import MetricInfo, SpecError, TaskInfo, read_task_info

__all__ = [
    "DEFAULT_TITLE",
    "PLOT_KINDS",
    "DYNAMICS_KINDS",
    "CURVE_TOP",
    "Failure",
    "TaskSummary",
    "Aggregate",
    "Dynamics",
    "MetricInfo",
    "TaskInfo",
    "SpecError",
    "LeaderboardReport",
    "aggregate",
    "pair_analyses",
    "dynamics_plots",
    "read_task_info",
    "render_markdown",
    "task_plots",
    "error_growth_png",
    "pareto_png",
    "pareto_front",
    "write_leaderboard",
]


@dataclass(frozen=True)
class LeaderboardReport:
    """What :func:`write_leaderboard` wrote and found."""

    out_file: Path
    plot_files: tuple[Path, ...]
    n_records: int
    n_ok: int
    n_failed: int
    n_excluded: int
    n_rows: int
    warnings: tuple[str, ...]
    skipped: tuple[SkippedFile, ...]
    n_analyses: int = 0

    @property
    def empty(self) -> bool:
        """True when the leaderboard has nothing to rank."""
        return self.n_ok == 0 and self.n_failed == 0


def _relative(skip: SkippedFile, root: Path) -> SkippedFile:
    """Name a skipped file relative to the results directory, and drop the path from its reason."""
    try:
        name = skip.path.relative_to(root)
    except ValueError:
        name = Path(skip.path.name)
    reason = skip.reason
    prefix = f"{skip.path}: "
    if reason.startswith(prefix):
        reason = reason[len(prefix) :]
    return SkippedFile(Path(name.as_posix()), reason)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def write_leaderboard(
    results_dir: str | os.PathLike[str],
    out_file: str | os.PathLike[str],
    current_hashes: Mapping[str, str] | None = None,
    plots: bool = True,
    *,
    title: str = DEFAULT_TITLE,
) -> LeaderboardReport:
    """Read every record under ``results_dir``, render the leaderboard and write it.

    Malformed files are skipped and named in the output. With ``plots`` the PNGs go to
    ``plots/`` next to ``out_file`` and are linked relatively. Every file is written
    atomically. ``current_hashes`` (task → data sha256) excludes records made on other
    data, with a warning. Analysis records (``*.analysis.json``) of the board's runs add
    a "Learned dynamics" subsection under their task, and its figures
    (``<task>__dynamics_<kind>.png``); without any the board is exactly as before.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist; pass the directory the benchmark runs wrote their records to")
    records, skipped = read_records(root)
    analyses, skipped_analyses = read_analyses(root)
    skipped += [SkippedFile(path, reason) for path, reason in skipped_analyses]
    agg = aggregate(records, current_hashes, skipped=[_relative(s, root) for s in skipped])
    dynamics = pair_analyses(agg, analyses) if analyses else None
    out = Path(out_file)
    links: dict[str, dict[str, str]] = {}
    written: list[Path] = []
    if plots and not agg.rows.empty:
        images_by_task = task_plots(agg)
        for task, images in (dynamics_plots(dynamics) if dynamics is not None else {}).items():
            images_by_task.setdefault(task, {}).update(images)
        for task, images in sorted(images_by_task.items()):
            for kind, png in images.items():
                path = out.parent / "plots" / f"{_UNSAFE.sub('_', task)}__{kind}.png"
                write_bytes_atomic(path, png)
                written.append(path)
                links.setdefault(task, {})[kind] = f"plots/{path.name}"
    write_bytes_atomic(out, render_markdown(agg, links, title=title, dynamics=dynamics).encode("utf-8"))
    return LeaderboardReport(
        out_file=out,
        plot_files=tuple(written),
        n_records=agg.n_records,
        n_ok=agg.n_used - len(agg.failures),
        n_failed=len(agg.failures),
        n_excluded=agg.n_excluded,
        n_rows=len(agg.rows),
        warnings=agg.warnings,
        skipped=agg.skipped,
        n_analyses=dynamics.n_paired if dynamics is not None else 0,
    )
