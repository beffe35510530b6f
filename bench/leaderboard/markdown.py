"""The leaderboard as markdown: a pure, deterministic function of an :class:`Aggregate`.

Rows and columns are sorted, numbers have fixed formats and nothing in the body comes
from the clock, so rendering the same records twice gives byte-identical text. A
task's columns are: rank, model, the main score (mean ± sd (n=…)), the spec's other
metrics in the spec's order, the costs, memory, params, hardware and notes. Bold marks
the best displayed value of every column with a direction (the spec's for metrics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .aggregate import Aggregate, Failure, TaskSummary
from .dynamics import DYNAMICS_KINDS, Dynamics, dynamics_legend, dynamics_section
from .formats import COSTS, TIME_COSTS, Formatter, dec2, mib, percent, shown
from .mdtable import esc as _esc
from .mdtable import md_table as _md_table
from .taskinfo import MetricInfo

__all__ = ["DEFAULT_TITLE", "PLOT_KINDS", "render_markdown"]

DEFAULT_TITLE = "odebench leaderboard"
#: Plot kinds in the order they appear under a task, with their captions.
PLOT_KINDS: dict[str, str] = {
    "error_growth": "error growth: nRMSE(t), mean curve over seeds",
    "pareto": "main score against cost (NFE-F, train time); Pareto front marked",
}

@dataclass
class _Column:
    header: str
    cells: list[str]
    numbers: list[float]  # displayed values used for bolding (NaN: not compared)
    higher_is_better: bool | None
    groups: list[str] = field(default_factory=list)  # bold the best within each group
    right: bool = True

    def rendered(self) -> list[str]:
        if self.higher_is_better is None:
            return self.cells
        groups = self.groups or [""] * len(self.cells)
        best: dict[str, float] = {}
        for g, v in zip(groups, self.numbers):
            if math.isfinite(v):
                best[g] = v if g not in best else (max if self.higher_is_better else min)(best[g], v)
        out = []
        for cell, g, v in zip(self.cells, groups, self.numbers):
            if math.isfinite(v) and v == best.get(g):
                # Bold the value only, not its spread, count or label: "**5.33** ± 1.53 (n=3)".
                cut = min((i for i in (cell.find(" ± "), cell.find(" (")) if i >= 0), default=len(cell))
                out.append(f"**{cell[:cut]}**{cell[cut:]}")
            else:
                out.append(cell)
        return out


def _text_column(header: str, cells: list[str], right: bool = False) -> _Column:
    return _Column(header, cells, [math.nan] * len(cells), None, right=right)


def _value_column(rows: list[dict[str, Any]], col: str, header: str, fmt: Formatter, higher_is_better: bool | None) -> _Column:
    cells, numbers = [], []
    for r in rows:
        v = r.get(col, math.nan)
        ok = v is not None and math.isfinite(v)
        cells.append(fmt(v) if ok else "—")
        numbers.append(shown(v, fmt) if ok else math.nan)
    return _Column(header, cells, numbers, higher_is_better)


def _metric_column(rows: list[dict[str, Any]], metric: MetricInfo) -> _Column:
    return _value_column(rows, f"metrics.{metric.key}", metric.header, metric.fmt, metric.higher_is_better)


def _main_column(rows: list[dict[str, Any]], main: MetricInfo) -> _Column:
    """Mean with its 95 % interval where the records have per-item scores, else mean ± sd.

    With intervals, bold marks every row of rank 1: those not significantly worse than
    any other, which may be several.
    """
    col = f"metrics.{main.key}"
    by_rank = bool(rows) and all(r.get("rank_by") == "bootstrap" for r in rows)
    cells, numbers = [], []
    for r in rows:
        mean, std, n = r.get(col, math.nan), r.get(f"{col}:std", math.nan), int(r["n"])
        if mean is None or not math.isfinite(mean):
            cells.append(f"— (n={n})")
            numbers.append(math.nan)
            continue
        lo, hi = r.get("ci_low", math.nan), r.get("ci_high", math.nan)
        if by_rank and lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            cells.append(f"{main.fmt(mean)} [{main.fmt(lo)}, {main.fmt(hi)}] (n={n})")
        else:
            spread = f" ± {main.fmt(std)}" if n > 1 and std is not None and math.isfinite(std) else ""
            cells.append(f"{main.fmt(mean)}{spread} (n={n})")
        rank = r.get("rank", math.nan)
        numbers.append(-float(rank) if by_rank and rank is not None and math.isfinite(rank) else (shown(mean, main.fmt) if not by_rank else math.nan))
    return _Column(f"main: {main.header}", cells, numbers, True if by_rank else main.higher_is_better)


def _memory_column(rows: list[dict[str, Any]]) -> _Column:
    kinds, values = [], []
    for r in rows:
        gpu = r.get("cost.peak_gpu_bytes", math.nan)
        if r["device"] == "cuda" and gpu is not None and math.isfinite(gpu):
            kinds.append("GPU")
            values.append(gpu)
        else:
            kinds.append("CPU")
            values.append(r.get("cost.peak_cpu_bytes", math.nan))
    mixed = len(set(kinds)) > 1
    header = "peak memory ↓" if mixed else f"peak {kinds[0]} memory ↓"
    cells, numbers = [], []
    for kind, v in zip(kinds, values):
        ok = v is not None and math.isfinite(v)
        text = mib(v) if ok else "—"
        cells.append(f"{text} ({kind})" if mixed else text)
        numbers.append(shown(v, mib) if ok else math.nan)
    return _Column(header, cells, numbers, False, groups=kinds)


def _notes(r: Mapping[str, Any], summary: TaskSummary) -> str:
    notes = []
    if r["n_failed"]:
        notes.append(f"{r['n_failed']}/{r['n'] + r['n_failed']} seeds failed")
    if r["n_truncated"]:
        notes.append(f"{r['n_truncated']}/{r['n']} truncated by the wall-clock cap")
    diverged = r.get("metrics.diverged_fraction", math.nan)
    if diverged is not None and math.isfinite(diverged) and diverged > 0:
        notes.append(f"forecast diverged (NaN/Inf) on {percent(diverged)} of test trajectories: nRMSE there is ∞, shown —")
    main = summary.main_metric
    missing = int(r["n"]) - int(r.get(f"metrics.{main}:n", 0) or 0)
    if missing:
        notes.append(f"{missing} seed(s) without a finite {main}")
    if len(summary.data_sha256) > 1:
        notes.append(f"data {r['data_sha256'][:8]}")
    return "; ".join(notes)


def _task_table(agg: Aggregate, task: str, profile: str, references: bool = False) -> str:
    summary = agg.tasks[task]
    rows = agg.table_rows(task, profile, references).to_dict("records")
    if not rows or summary.info is None:
        return "No successful runs."
    info = summary.info
    rank = [] if references else [_text_column("rank", ["—" if not math.isfinite(r["rank"]) else str(int(r["rank"])) for r in rows], right=True)]
    cols: list[_Column] = [
        *rank,
        _text_column("model" if not references else "reference", [_esc(r["label"]) for r in rows]),
        _main_column(rows, info.main),
        *(_metric_column(rows, m) for m in info.secondary),
        *(_value_column(rows, f"cost.{k}", COSTS[k].header, COSTS[k].fmt, COSTS[k].higher_is_better) for k in TIME_COSTS),
        _memory_column(rows),
        _value_column(rows, "cost.params", COSTS["params"].header, COSTS["params"].fmt, COSTS["params"].higher_is_better),
        _text_column("hardware", [_esc(r["hardware"]) for r in rows]),
        _text_column("notes", [_esc(_notes(r, summary)) for r in rows]),
    ]
    cells = [c.rendered() for c in cols]
    return _md_table([c.header for c in cols], [list(t) for t in zip(*cells)], [c.right for c in cols])


def _failure_table(failures: Sequence[Failure]) -> str:
    body = [[_esc(f.label), str(f.seed), _esc(f.hardware), _esc(f.error)] for f in failures]
    return _md_table(["model", "seed", "hardware", "error"], body, [False, True, False, False])


def _overview(agg: Aggregate) -> str | None:
    tables = agg.tables()
    if agg.rows.empty:
        return None
    headers = [t if len(agg.tasks[t].profiles) == 1 else f"{t} [{p}]" for t, p in tables]
    ranked = agg.rows[~agg.rows["reference"].astype(bool)]
    labels = sorted(set(ranked["label"]) | {f.label for f in agg.failures})
    cells: dict[str, list[str]] = {}
    means: dict[str, float] = {}
    counts: dict[str, int] = {}
    for label in labels:
        row, ranks = [], []
        for task, profile in tables:
            sel = agg.rows[(agg.rows["task"] == task) & (agg.rows["profile"] == profile) & (agg.rows["label"] == label)]
            finite = [r for r in sel["rank"] if math.isfinite(r)]
            if finite:
                ranks.append(min(finite))
                row.append(str(int(min(finite))))
            elif not sel.empty:
                row.append("n/a")
            elif any(f.task == task and f.profile == profile and f.label == label for f in agg.failures):
                row.append("failed")
            else:
                row.append("–")
        cells[label] = row
        counts[label] = len(ranks)
        means[label] = shown(float(np.mean(ranks)), dec2) if ranks else math.nan
    order = sorted(labels, key=lambda lb: (not math.isfinite(means[lb]), means[lb] if math.isfinite(means[lb]) else 0.0, lb))
    best = min((means[lb] for lb in labels if math.isfinite(means[lb])), default=math.nan)
    body = []
    for lb in order:
        m = means[lb]
        mean_text = "—" if not math.isfinite(m) else (f"**{dec2(m)}**" if m == best else dec2(m))
        body.append([_esc(lb), *cells[lb], mean_text, str(counts[lb])])
    return _md_table(["model", *(_esc(h) for h in headers), "mean rank ↓", "tables ranked"], body, [False, *([True] * len(headers)), True, True])


def _rank_lines(agg: Aggregate) -> list[str]:
    """How the tables rank: by significance where records carry per-item scores, else by the mean."""
    methods = set(agg.rows["rank_by"]) if "rank_by" in agg.rows else set()
    lines = []
    if "bootstrap" in methods:
        lines.append(
            "- Rank (tables whose records carry per-item scores): the main score shows its 95 % confidence interval [low, high], a hierarchical bootstrap "
            "(2000 replicates; the seeds drawn with replacement, then the test items). A row's rank is 1 + the number of rows significantly better than it, "
            "by a paired bootstrap of the difference (the same test items drawn for both rows, the seeds of each drawn independently; significant when the 95 % "
            "interval of the difference excludes 0): rows whose difference is inside the noise share a rank, and every row of rank 1 is bold. The bootstrap "
            "seed is fixed, so a re-render gives the same numbers."
        )
    if "mean" in methods or not methods:
        lines.append(
            "- Rank (tables of records without per-item scores): competition ranking (1, 1, 3) of the main score's mean as displayed, within one task and profile; "
            "the main score is shown as mean ± sample standard deviation (ddof = 1) over seeds."
        )
    lines.append("- The overview gives each model's best rank per table and its mean rank over the tables in which it has one.")
    return lines


def _legend(agg: Aggregate, dynamics: Dynamics | None = None) -> list[str]:
    infos = [s.info for s in agg.tasks.values() if s.info is not None]
    has_nrmse = any(m.key.startswith("nrmse") for i in infos for m in i.metrics)
    has_vpt = any(i.has_vpt for i in infos)
    chaotic = any(i.lyapunov_exponent for i in infos)
    lines = [
        "## How to read the tables",
        "",
        "- ↑ higher is better, ↓ lower is better; the best displayed value of each such column is in **bold** (ties: all bold). Columns without an arrow are not ranked.",
        "- Main score: the one each task declares in its records' spec, named in the task's header line (here: accuracy for classification; for forecasting, VPT for chaotic systems and the nRMSE mean otherwise). "
        "n = the number of successful seeds; the other columns show the mean over the same seeds.",
        *_rank_lines(agg),
    ]
    if has_nrmse:
        when = (
            "nRMSE@t is read at time t, in Lyapunov times (LT = 1/λ1) for a chaotic task and in the task's time unit otherwise, as are the error-growth plots' time axes"
            if chaotic
            else "nRMSE@t is read at time t in the task's time unit"
        )
        lines.append(
            "- nRMSE(t) = sqrt(mean_i ((ŷ_i(t) − y_i(t)) / σ_i)²), with σ_i the per-dimension standard deviation of the *training* split (Vlachas et al. 2020), averaged over test trajectories. "
            f"{when}; the nRMSE mean is over the whole horizon. "
            "A rollout that diverges (NaN/Inf) is infinitely wrong from then on: its VPT still counts, a mean nRMSE that includes it shows —, and the notes give the share of diverged test trajectories."
        )
    if has_vpt:
        lines.append(
            "- VPT (valid prediction time): the first time a test trajectory's nRMSE exceeds the task's threshold, in Lyapunov times, averaged over test trajectories. "
            "capped: share of test trajectories that never exceeded it within the horizon (their VPT is the horizon, so the mean is a lower bound)."
        )
    lines += [
        "- NFE-F: vector-field (or residual-function) evaluations per test forward pass. "
        "NFE-B: vector-field evaluations made inside the backward pass, per training step (the adjoint's backward solves; 0 for backpropagation through the solver, whose cost is in the forward count). "
        "Times are wall-clock seconds; memory is the peak in MiB, on the GPU when the run used one, else the process's peak CPU memory (labelled). Costs depend on the hardware column.",
        "- Rows are never averaged across hardware, profile or data. Failed seeds are never averaged: they are listed under their table, and a row with some failed seeds says so in its notes.",
        *dynamics_legend(dynamics),
        "",
    ]
    return lines


def _summary_line(agg: Aggregate) -> str:
    n_failed = len(agg.failures)
    n_ok = agg.n_used - n_failed
    parts = [f"{agg.n_used} record(s) used ({n_ok} ok, {n_failed} failed)"]
    if agg.n_excluded:
        parts.append(f"{agg.n_excluded} excluded (see the notes)")
    if agg.skipped:
        parts.append(f"{len(agg.skipped)} file(s) skipped (see the notes)")
    if agg.created:
        parts.append(f"runs created {agg.created[0]} to {agg.created[1]}")
    if agg.git_commits:
        parts.append(f"code at git {', '.join(agg.git_commits)}")
    return _esc("; ".join(parts) + ".")


def _task_info_line(summary: TaskSummary) -> str:
    info = [
        f"kind {summary.kind or 'unknown'}",
        f"version {', '.join(summary.versions)}",
        f"data sha256 {', '.join(h[:12] for h in summary.data_sha256)}",
        f"main score {summary.info.main.header}" if summary.info else "main score unknown (no record carries the task's spec)",
    ]
    if len(summary.profiles) == 1:
        info.insert(2, f"profile {summary.profiles[0]}")
    return _esc(" · ".join(info))


def render_markdown(aggregate: Aggregate, plots: Mapping[str, Mapping[str, str]] | None = None, title: str = DEFAULT_TITLE, dynamics: Dynamics | None = None) -> str:
    """The leaderboard as markdown: a pure, deterministic function of ``aggregate`` (and ``dynamics``).

    ``plots`` maps a task name to ``{kind: relative link}`` for the kinds in
    :data:`PLOT_KINDS` (others follow in sorted order); the images go under the task.
    ``dynamics`` (analyses paired with the board's runs) adds a "Learned dynamics"
    subsection under each analysed task, with the images of the kinds in
    :data:`~.dynamics.DYNAMICS_KINDS`; without it the board is as before.
    """
    agg = aggregate
    out = [f"# {_esc(title)}", ""]
    if agg.empty:
        if agg.n_records == 0:
            out.append("No result records found: the results directory holds no valid record, so there is nothing to rank. Run some benchmarks first.")
        else:
            out.append(f"No result records left to rank: all {agg.n_records} record(s) were excluded (see the notes).")
        out.append("")
    else:
        out += [_summary_line(agg), ""]
        out += _legend(agg, dynamics)
        overview = _overview(agg)
        if overview is not None:
            out += ["## Overview", "", overview, ""]
        for task in sorted(agg.tasks):
            summary = agg.tasks[task]
            out += [f"## {_esc(task)}", "", _task_info_line(summary), ""]
            for t, profile in agg.tables():
                if t != task:
                    continue
                if len(summary.profiles) > 1:
                    out += [f"### profile {_esc(profile)}", ""]
                out += [_task_table(agg, task, profile), ""]
                if not agg.table_rows(task, profile, references=True).empty:
                    out += ["References (not ranked: what the true system achieves):", "", _task_table(agg, task, profile, references=True), ""]
                failures = [f for f in agg.failures if f.task == task and f.profile == profile]
                if failures:
                    out += ["Failed runs (never averaged, never ranked):", "", _failure_table(failures), ""]
            links = {k: v for k, v in (plots or {}).get(task, {}).items() if k not in DYNAMICS_KINDS}
            for kind in [k for k in PLOT_KINDS if k in links] + sorted(k for k in links if k not in PLOT_KINDS):
                caption = f"{task}: {PLOT_KINDS.get(kind, kind)}"
                out += [f"![{_esc(caption)}]({links[kind]})", ""]
            if dynamics is not None:
                out += dynamics_section(agg, dynamics, task, (plots or {}).get(task, {}))
    notes = [f"- {_esc(w)}" for w in agg.warnings]
    notes += [f"- {_esc(n)}" for n in (dynamics.notes if dynamics is not None else ())]
    notes += [f"- skipped {_esc(s.path)}: {_esc(s.reason)}" for s in agg.skipped]
    if notes:
        out += ["## Notes", "", *notes, ""]
    return "\n".join(out).rstrip("\n") + "\n"
