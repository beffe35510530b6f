"""Result records aggregated over seeds: screening, row keys, labels, means and ranks.

Policies a reader can rely on:

* One row per (task, profile, model, hyperparameters, hardware, data hash). Records
  from different hardware, profiles or data are never averaged together.
* A row's numbers are over its *successful* seeds: mean ± sample standard deviation
  (ddof = 1), with n = the number of successful seeds. Failed seeds are never
  averaged; they are listed under their task's table with their error, and a row with
  some failed seeds says so in its notes column ("1/3 seeds failed").
* A seed whose value of a metric is missing or non-finite makes that row's mean of the
  metric unavailable ("—"), never silently dropped; such a row is ranked last.
* Ranks are competition ranks (1, 1, 3) of the main score's mean *as displayed*, in
  the direction the task's spec declares, so rows that look equal share a rank.
* How a task is scored (main score, every metric's label, format and direction, λ1)
  comes from the spec its records carry, the newest task version's when there are
  several; nothing is looked up in the installed tasks.
* When the current data hashes are given, records made on other data are excluded
  and each exclusion is reported as a warning.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..results import RecordError, SkippedFile, validate_record
from .formats import shown
from .intervals import bootstrap_interval, significance_ranks
from .keys import KEY_COLUMNS, UNKNOWN_HARDWARE, canonical, describe, failure_label, model_args, model_labels, number, one_line, row_key, table_profile
from .taskinfo import SpecError, TaskInfo, read_task_info

__all__ = ["KEY_COLUMNS", "UNKNOWN_HARDWARE", "Failure", "TaskSummary", "Aggregate", "aggregate"]


Curve = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Failure:
    """One failed run, as listed under its task's table."""

    task: str
    profile: str
    model: str
    label: str
    hardware: str
    seed: int
    error: str
    data_sha256: str | None = None


@dataclass(frozen=True)
class TaskSummary:
    """What the records say about one task, and how it is scored.

    ``info`` is read from the newest task version's spec in the records; it is ``None``
    only when every record of the task failed before the task was loaded.
    """

    name: str
    kind: str | None
    info: TaskInfo | None
    versions: tuple[str, ...]
    data_sha256: tuple[str, ...]
    profiles: tuple[str, ...]

    @property
    def main_metric(self) -> str | None:
        """The record key of the main score (``None`` without a spec)."""
        return self.info.main_metric if self.info else None

    @property
    def higher_is_better(self) -> bool | None:
        """The main score's direction (``None`` without a spec)."""
        return self.info.main.higher_is_better if self.info else None


@dataclass(frozen=True)
class Aggregate:
    """Records aggregated over seeds; the input of the markdown and the plots.

    ``rows`` has one row per (task, profile, model, hparams, device, hardware,
    data_sha256) with at least one successful seed: the key columns, ``label`` (the
    model name, plus the hyperparameters that tell its variants apart), ``n`` (ok
    seeds), ``n_failed``, ``n_truncated``, ``seeds``, ``rank`` (within its task and
    profile; NaN when the main score is unavailable) and, for every numeric metric
    ``metrics.<k>`` and cost ``cost.<k>``, the columns ``<col>`` (mean), ``<col>:std``
    and ``<col>:n``. ``curves`` maps a row's key to its mean nRMSE curve ``(t, nrmse)``
    in the task's time unit. ``run_ids`` maps the ``run_id`` of every successful record
    the board keeps (after screening and dedupe) to its row's key and its seed, so
    files that refer to a run (analysis records) can be paired with the board's rows.
    """

    rows: pd.DataFrame
    tasks: Mapping[str, TaskSummary]
    failures: tuple[Failure, ...]
    curves: Mapping[tuple[str, ...], Curve]
    warnings: tuple[str, ...]
    skipped: tuple[SkippedFile, ...]
    n_records: int
    n_excluded: int
    created: tuple[str, str] | None
    git_commits: tuple[str, ...]
    run_ids: Mapping[str, tuple[tuple[str, ...], int]] = field(default_factory=dict)

    @property
    def n_used(self) -> int:
        return self.n_records - self.n_excluded

    @property
    def empty(self) -> bool:
        """True when no record is left to show (none read, or all excluded)."""
        return self.rows.empty and not self.failures

    def tables(self) -> list[tuple[str, str]]:
        """Every (task, profile) that has a table, sorted."""
        pairs = {(r["task"], r["profile"]) for r in self.rows.to_dict("records")}
        pairs |= {(f.task, f.profile) for f in self.failures}
        return sorted(pairs)

    def table_rows(self, task: str, profile: str, references: bool = False) -> pd.DataFrame:
        """The rows of one table in display order: rank (unranked last), label, hardware.

        ``references`` selects the reference rows (exact solutions and the like, shown
        apart and never ranked) instead of the ranked models.
        """
        sel = self.rows[(self.rows["task"] == task) & (self.rows["profile"] == profile) & (self.rows["reference"].astype(bool) == references)]
        return sel.sort_values(["rank", "label", "hardware", "data_sha256"], na_position="last", kind="mergesort")

    def series_label(self, row: Mapping[str, Any]) -> str:
        """A row's name in a figure legend: its label plus whatever tells it apart in its task."""
        summary = self.tasks[row["task"]]
        text = str(row["label"])
        if len(summary.profiles) > 1:
            text += f" [{row['profile']}]"
        task_rows = self.rows[self.rows["task"] == row["task"]]
        if task_rows["hardware"].nunique() > 1:
            text += f" @ {row['hardware']}"
        if len(summary.data_sha256) > 1:
            text += f" (data {row['data_sha256'][:8]})"
        return text

    def curve(self, row: Mapping[str, Any]) -> Curve | None:
        """A row's mean nRMSE curve over its seeds, if its records carry one."""
        return self.curves.get(self.row_key(row))

    @staticmethod
    def row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
        """A row's key: its values of :data:`KEY_COLUMNS` (the keys of ``curves`` and ``run_ids``)."""
        return tuple(row[k] for k in KEY_COLUMNS)


# --- screening --------------------------------------------------------------------------


def _check_spec(rec: Mapping[str, Any]) -> None:
    """Raise :class:`SpecError` if the record's task spec is unreadable or names another task."""
    spec = rec["task"].get("spec")
    if spec is None:
        return
    info = read_task_info(spec)
    if info.name != str(rec["task"]["name"]):
        raise SpecError(f"task.spec describes task {info.name!r}, but the record is of task {rec['task']['name']!r}")


def _seed_key(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    return (*row_key(rec), rec["seed"])


def _dedupe(records: list[dict[str, Any]], warnings: list[str]) -> list[dict[str, Any]]:
    """One record per (row key, seed): the most recently created one, with a warning.

    Two records for the same seed come from copies of a results directory or reruns
    written elsewhere; averaging both would count that seed twice.
    """
    chosen: dict[tuple[Any, ...], dict[str, Any]] = {}
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    for rec in records:
        k = _seed_key(rec)
        counts[k] += 1
        if k not in chosen or str(rec["created"]) > str(chosen[k]["created"]):
            chosen[k] = rec
    for k, c in sorted(counts.items()):
        if c > 1:
            rec = chosen[k]
            warnings.append(f"{c} records for {describe(rec)} on {k[5]}: kept the latest (created {rec['created']}), ignored the others")
    return [rec for rec in records if chosen[_seed_key(rec)] is rec]


def _screen(records: Iterable[Mapping[str, Any]], current_hashes: Mapping[str, str] | None, warnings: list[str]) -> tuple[list[dict[str, Any]], int, int]:
    """Valid records made on the current data; returns (kept, n_read, n_excluded).

    A failed record without a data hash never reached the data, so it is not stale.
    """
    valid: list[dict[str, Any]] = []
    n_read = 0
    for i, rec in enumerate(records):
        n_read += 1
        try:
            checked = validate_record(rec)
            _check_spec(checked)
        except RecordError as exc:
            warnings.append(f"record #{i} is not a valid result record and was skipped: {exc}")
        except SpecError as exc:
            warnings.append(f"record #{i} ({describe(rec)}) has a task spec the leaderboard cannot read and was skipped: {exc}")
        else:
            valid.append(checked)
    kept: list[dict[str, Any]] = []
    stale: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    unchecked: set[str] = set()
    for rec in valid:
        task, sha = str(rec["task"]["name"]), rec["task"].get("data_sha256")
        if current_hashes is not None and not (rec["status"] == "failed" and sha is None):
            if task not in current_hashes:
                unchecked.add(task)
            elif str(sha) != current_hashes[task]:
                stale[(task, str(sha), str(current_hashes[task]))].append(f"{rec['model']['name']} seed {rec['seed']} ({rec['profile']})")
                continue
        kept.append(rec)
    for (task, sha, current), which in sorted(stale.items()):
        warnings.append(
            f"excluded {len(which)} record(s) of task {task} made on stale data (sha256 {sha[:12]}, "
            f"current {current[:12]}): {', '.join(sorted(which))}; rerun them on the current data"
        )
    for task in sorted(unchecked):
        warnings.append(f"no current data hash is known for task {task}; its records were kept unchecked")
    kept = _dedupe(kept, warnings)
    return kept, n_read, n_read - len(kept)


# --- task summaries ---------------------------------------------------------------------


def _version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key of a version string: numeric parts as numbers ("1.10" after "1.9")."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.replace("-", ".").split("."))


def _newest_spec(recs: Sequence[Mapping[str, Any]]) -> TaskInfo | None:
    """The spec of the task's newest version among ``recs`` (latest record first on ties)."""
    with_spec = [r for r in recs if r["task"].get("spec") is not None]
    if not with_spec:
        return None
    infos = [(read_task_info(r["task"]["spec"]), str(r["created"]), canonical(r["task"]["spec"])) for r in with_spec]
    return max(infos, key=lambda x: (_version_key(x[0].version), x[1], x[2]))[0]


def _summaries(kept: list[dict[str, Any]], warnings: list[str]) -> dict[str, TaskSummary]:
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in kept:
        by_task[str(rec["task"]["name"])].append(rec)
    summaries: dict[str, TaskSummary] = {}
    for task, recs in sorted(by_task.items()):
        info = _newest_spec(recs)
        kinds = sorted({str(r["task"]["kind"]) for r in recs if r["task"].get("kind")})
        hashes = tuple(sorted({str(r["task"]["data_sha256"]) for r in recs if r["task"].get("data_sha256") is not None}))
        if len(hashes) > 1:
            warnings.append(f"task {task} has records made on {len(hashes)} different data files; their rows are kept apart and marked with the data hash")
        summaries[task] = TaskSummary(
            name=task,
            kind=info.kind if info else (kinds[0] if kinds else None),
            info=info,
            versions=tuple(sorted({str(r["task"]["version"]) for r in recs if r["task"].get("version") is not None})),
            data_sha256=hashes,
            profiles=tuple(sorted({table_profile(r) for r in recs})),
        )
    return summaries


def _failures(kept: list[dict[str, Any]], labels: Mapping[tuple[str, str], str]) -> tuple[Failure, ...]:
    failures = [
        Failure(
            task=str(r["task"]["name"]),
            profile=table_profile(r),
            model=str(r["model"]["name"]),
            label=failure_label(str(r["model"]["name"]), model_args(r), labels),
            hardware=row_key(r)[5],
            seed=int(r["seed"]),
            error=one_line(r["error"]),
            data_sha256=r["task"].get("data_sha256"),
        )
        for r in kept
        if r["status"] == "failed"
    ]
    return tuple(sorted(failures, key=lambda f: (f.task, f.profile, f.label, f.hardware, f.seed)))


def _failed_per_row(rows: pd.DataFrame, failures: Sequence[Failure]) -> list[int]:
    """How many failed seeds belong to each row.

    A failure belongs to the one row of its task, profile and label whose hardware and
    data it shares; a run that failed before setup (unknown hardware or data) counts
    toward that row only if it is the only candidate. Every failure is listed anyway.
    """
    counts = [0] * len(rows)
    records = rows.to_dict("records")
    for f in failures:
        hits = [
            i
            for i, r in enumerate(records)
            if (r["task"], r["profile"], r["label"]) == (f.task, f.profile, f.label)
            and f.hardware in (r["hardware"], UNKNOWN_HARDWARE)
            and f.data_sha256 in (r["data_sha256"], None)
        ]
        if len(hits) == 1:
            counts[hits[0]] += 1
    return counts


# --- rows, curves and ranks -------------------------------------------------------------


def _mean_curve(curves: list[Curve]) -> Curve:
    t0 = curves[0][0]
    if all(c[0].shape == t0.shape and np.array_equal(c[0], t0) for c in curves):
        return t0, np.mean([c[1] for c in curves], axis=0)
    end = min(c[0][-1] for c in curves)
    t = t0[t0 <= end]
    return t, np.mean([np.interp(t, c[0], c[1]) for c in curves], axis=0)


def _curve_of(metrics: Mapping[str, Any]) -> Curve | None:
    curve = metrics.get("nrmse_curve")
    if not isinstance(curve, dict):
        return None
    try:
        t = np.array([number(v) for v in curve["t"]], dtype=np.float64)
        y = np.array([number(v) for v in curve["nrmse"]], dtype=np.float64)
    except (KeyError, TypeError):
        return None
    if t.ndim != 1 or t.shape != y.shape or t.size < 2 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        return None
    return t, y


def _main_items(rec: Mapping[str, Any], key: str) -> list[Any] | None:
    """The record's per-item scores of its main metric, or ``None`` if it has none usable."""
    items = rec.get("items")
    if not isinstance(items, dict) or not key:
        return None
    values = items.get(key)
    if not isinstance(values, list) or not values:
        return None
    if any(v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) for v in values):
        return None
    return values


def _rank(values: list[float], higher_is_better: bool) -> list[float]:
    """Competition ranks (1, 1, 3) of the finite values; NaN for the rest."""
    ranks = []
    for v in values:
        if not math.isfinite(v):
            ranks.append(math.nan)
            continue
        better = sum(1 for w in values if math.isfinite(w) and (w > v if higher_is_better else w < v))
        ranks.append(float(1 + better))
    return ranks


def _rows(ok_records: list[dict[str, Any]], labels: Mapping[tuple[str, str], str], summaries: Mapping[str, TaskSummary]) -> tuple[pd.DataFrame, dict[tuple[str, ...], Curve]]:
    """The pandas aggregation over seeds, the ranks and the mean curves."""
    flat: list[dict[str, Any]] = []
    curves_by_key: dict[tuple[str, ...], list[Curve]] = defaultdict(list)
    items_by_key: dict[tuple[str, ...], dict[int, list[Any] | None]] = defaultdict(dict)
    for rec in ok_records:
        key = row_key(rec)
        info = summaries[str(rec["task"]["name"])].info
        items_by_key[key][int(rec["seed"])] = _main_items(rec, info.main.key if info is not None else "")
        entry: dict[str, Any] = dict(zip(KEY_COLUMNS, key))
        entry["seed"] = int(rec["seed"])
        entry["reference"] = bool(rec["model"].get("reference", False))
        entry["truncated"] = bool((rec.get("train") or {}).get("truncated", False))
        for k, v in rec["metrics"].items():
            if k != "nrmse_curve":
                entry[f"metrics.{k}"] = number(v)
        for k, v in rec["cost"].items():
            entry[f"cost.{k}"] = number(v)
        flat.append(entry)
        curve = _curve_of(rec["metrics"])
        if curve is not None:
            curves_by_key[key].append(curve)

    key_cols = list(KEY_COLUMNS)
    if not flat:
        return pd.DataFrame(columns=[*key_cols, "label", "n", "n_failed", "n_truncated", "reference", "seeds", "rank", "rank_by", "ci_low", "ci_high"]), {}
    df = pd.DataFrame(flat)
    value_cols = sorted(c for c in df.columns if c.startswith(("metrics.", "cost.")))
    df[value_cols] = df[value_cols].astype("float64")
    grouped = df.groupby(key_cols, sort=True)
    stats = grouped[value_cols].agg(["mean", "std", "count"])
    out = grouped.agg(n=("seed", "size"), n_truncated=("truncated", "sum"), reference=("reference", "max"), seeds=("seed", lambda s: ",".join(str(x) for x in sorted(s))))
    columns: dict[str, pd.Series] = {}
    for col in value_cols:
        mean = stats[(col, "mean")]
        if col.startswith("metrics."):
            # A seed without a finite value makes the mean unavailable rather than silently partial.
            mean = mean.where(stats[(col, "count")] == out["n"])
        columns[col] = mean
        columns[f"{col}:std"] = stats[(col, "std")]
        columns[f"{col}:n"] = stats[(col, "count")].astype("int64")
    out = pd.concat([out, pd.DataFrame(columns)], axis=1).reset_index()
    out["n_truncated"] = out["n_truncated"].astype("int64")
    out["n_failed"] = 0
    out["label"] = [labels[(m, h)] for m, h in zip(out["model"], out["hparams"])]

    ranks = pd.Series(math.nan, index=out.index, dtype="float64")
    ci_lo = pd.Series(math.nan, index=out.index, dtype="float64")
    ci_hi = pd.Series(math.nan, index=out.index, dtype="float64")
    rank_by = pd.Series("mean", index=out.index, dtype="object")
    for (task, profile), idx in out.groupby(["task", "profile"], sort=True).groups.items():
        info = summaries[task].info
        if info is None:  # never: an ok record always carries its spec
            continue
        main = info.main
        col = f"metrics.{main.key}"
        keys = {i: tuple(out.loc[i, c] for c in key_cols) for i in idx}
        ranked = [i for i in idx if not bool(out.loc[i, "reference"])]  # references are shown, never ranked
        per_row = {i: [items_by_key[keys[i]][s] for s in sorted(items_by_key[keys[i]])] for i in idx}
        lengths = {len(x) for rows in per_row.values() for x in rows if x is not None}
        complete = all(x is not None for rows in per_row.values() for x in rows) and len(lengths) == 1
        scores: dict[int, list[list[Any]]] = {i: [x for x in rows if x is not None] for i, rows in per_row.items()}
        if complete:
            names = {i: "|".join(str(v) for v in keys[i]) for i in idx}
            for i in idx:
                ci_lo.loc[i], ci_hi.loc[i] = bootstrap_interval(scores[i], f"{task}|{profile}|{names[i]}")
            sig = significance_ranks({names[i]: scores[i] for i in ranked}, bool(main.higher_is_better), f"{task}|{profile}")
            for i in idx:
                rank_by.loc[i] = "bootstrap"
            for i in ranked:
                ranks.loc[i] = sig[names[i]]
            continue
        values = [shown(v, main.fmt) for v in (out.loc[ranked, col] if col in out else [math.nan] * len(ranked))]
        if ranked:
            ranks.loc[ranked] = _rank(values, bool(main.higher_is_better))
    out["rank"] = ranks
    out["ci_low"] = ci_lo
    out["ci_high"] = ci_hi
    out["rank_by"] = rank_by
    front = [*key_cols, "label", "n", "n_failed", "n_truncated", "reference", "seeds", "rank", "rank_by", "ci_low", "ci_high"]
    out = out[front + [c for c in out.columns if c not in front]]
    out = out.sort_values(["task", "profile", "rank", "label", "hardware", "data_sha256"], na_position="last", kind="mergesort").reset_index(drop=True)
    curves = {k: _mean_curve(v) for k, v in curves_by_key.items()}
    return out, curves


def aggregate(records: Iterable[Mapping[str, Any]], current_hashes: Mapping[str, str] | None = None, *, skipped: Sequence[SkippedFile] = ()) -> Aggregate:
    """Aggregate records over seeds (see the module docstring for every policy).

    ``current_hashes`` maps a task name to the sha256 of its current data; a record of
    that task made on other data is excluded with a warning. A task missing from the
    mapping is kept, with a warning that its data could not be checked. An invalid
    record, or one whose task spec cannot be read, is excluded with a warning, not an
    error. ``skipped`` (files that were not valid records) is carried through to the
    rendered notes.
    """
    warnings: list[str] = []
    kept, n_read, n_excluded = _screen(records, current_hashes, warnings)
    ok = [r for r in kept if r["status"] == "ok"]
    ok_models = {r["model"]["name"] for r in ok}
    labels = model_labels(ok + [r for r in kept if r["model"]["name"] not in ok_models])
    summaries = _summaries(kept, warnings)
    failures = _failures(kept, labels)
    rows, curves = _rows(ok, labels, summaries)
    rows["n_failed"] = _failed_per_row(rows, failures)
    created = sorted(str(r["created"]) for r in kept)
    commits = sorted({str(r["env"]["git_commit"])[:12] + ("+dirty" if r["env"].get("git_dirty") else "") for r in kept if r["env"].get("git_commit")})
    return Aggregate(
        rows=rows,
        tasks=summaries,
        failures=failures,
        curves=curves,
        warnings=tuple(warnings),
        skipped=tuple(sorted(skipped, key=lambda s: str(s.path))),
        n_records=n_read,
        n_excluded=n_excluded,
        created=(created[0], created[-1]) if created else None,
        git_commits=tuple(commits),
        run_ids={str(r["run_id"]): (row_key(r), int(r["seed"])) for r in ok if isinstance(r.get("run_id"), str) and r["run_id"]},
    )
