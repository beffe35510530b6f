"""The leaderboard: result records aggregated over seeds and rendered as markdown.

Rendering is a pure function of the records: rows and columns are sorted, numbers have
fixed formats and nothing in the body comes from the clock, so rendering the same
records twice gives byte-identical text.

Policies a reader can rely on:

* One row per (task, profile, model, hyperparameters, hardware, data hash). Records
  from different hardware, profiles or data are never averaged together.
* A row's numbers are over its *successful* seeds: mean ± sample standard deviation
  (ddof = 1), with n = the number of successful seeds. Failed seeds are never
  averaged; they are listed under their task's table with their error, and a row with
  some failed seeds says so in its notes column ("1/3 seeds failed").
* A seed whose value of a metric is missing or non-finite makes that row's mean of the
  metric unavailable ("—"), never silently dropped; such a row is ranked last.
* Ranks are competition ranks (1, 1, 3) of the main score's mean *as displayed*, so
  rows that look equal share a rank; bold marks the best displayed value per column.
* When the current data hashes are given, records made on other data are excluded
  and each exclusion is reported as a warning.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import write_bytes_atomic
from .results import RecordError, SkippedFile, read_records, validate_record
from .spec import TaskSpec

__all__ = [
    "DEFAULT_TITLE",
    "PLOT_KINDS",
    "main_metric",
    "metric_header",
    "Failure",
    "TaskSummary",
    "Aggregate",
    "LeaderboardReport",
    "aggregate",
    "render_markdown",
    "write_leaderboard",
]

DEFAULT_TITLE = "odebench leaderboard"
#: Plot kinds in the order they appear under a task, with their captions.
PLOT_KINDS: dict[str, str] = {
    "error_growth": "error growth: nRMSE(t), mean curve over seeds",
    "pareto": "main score against cost (NFE-F, train time); Pareto front marked",
}

KEY_COLUMNS = ("task", "profile", "model", "hparams", "device", "hardware", "data_sha256")
_MAX_ERROR_CHARS = 200
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")


# --- number formats -------------------------------------------------------------------


def _sig3(x: float) -> str:
    text = f"{x:#.3g}"
    return text if "e" in text else text.rstrip(".")


def _dec2(x: float) -> str:
    return f"{x:.2f}"


def _dec3(x: float) -> str:
    return f"{x:.3f}"


def _count(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.1f}"


def _seconds(x: float) -> str:
    if abs(x) < 10:
        return f"{x:.2f} s"
    if abs(x) < 100:
        return f"{x:.1f} s"
    return f"{x:,.0f} s"


def _mib(x: float) -> str:
    return f"{x / 2**20:,.1f} MiB"


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def _shown(value: float, fmt: Callable[[float], str]) -> float:
    """The number a reader sees: ``value`` rounded by its column's format (NaN if none)."""
    if value is None or not math.isfinite(value):
        return math.nan
    match = _NUMBER.search(fmt(value).replace(",", ""))
    return float(match.group(0)) if match else math.nan


# --- metric catalogue -----------------------------------------------------------------


@dataclass(frozen=True)
class _Metric:
    header: str
    fmt: Callable[[float], str]
    higher_is_better: bool | None  # None: informational, never bolded


_METRICS: dict[str, _Metric] = {
    "vpt": _Metric("VPT (Lyapunov times) ↑", _dec2, True),
    "vpt_capped_fraction": _Metric("capped", _percent, None),
    "nrmse_mean": _Metric("nRMSE mean ↓", _sig3, False),
    "accuracy": _Metric("accuracy ↑", _dec3, True),
    "macro_f1": _Metric("macro-F1 ↑", _dec3, True),
}
_COSTS: dict[str, _Metric] = {
    "nfe_forward": _Metric("NFE-F ↓", _count, False),
    "nfe_backward": _Metric("NFE-B ↓", _count, False),
    "train_seconds": _Metric("train time ↓", _seconds, False),
    "infer_seconds": _Metric("inference time ↓", _seconds, False),
    "params": _Metric("params ↓", _count, False),
}


def _metric(key: str) -> _Metric:
    if key in _METRICS:
        return _METRICS[key]
    if key.startswith("nrmse@"):
        return _Metric(f"nRMSE@{key[len('nrmse@'):]} ↓", _sig3, False)
    return _Metric(key, _sig3, None)


def metric_header(key: str) -> str:
    """A metric's column header, with its direction arrow (e.g. ``"nRMSE@1 ↓"``)."""
    return _metric(key).header


def _horizon_key(key: str) -> float:
    try:
        return float(key[len("nrmse@") :])
    except ValueError:
        return math.inf


def main_metric(kind: str, chaotic: bool) -> tuple[str, bool]:
    """The main score of a task and whether higher is better.

    Classification → ``accuracy`` (↑); a chaotic forecast (its records carry ``vpt``) →
    ``vpt`` in Lyapunov times (↑); any other forecast → ``nrmse_mean`` (↓).
    """
    if kind == "classify":
        return "accuracy", True
    if kind == "forecast":
        return ("vpt", True) if chaotic else ("nrmse_mean", False)
    raise ValueError(f"task kind must be 'forecast' or 'classify', got {kind!r}")


# --- the aggregate --------------------------------------------------------------------


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
    """What the records say about one task, and how it is scored."""

    name: str
    kind: str
    main_metric: str
    higher_is_better: bool
    versions: tuple[str, ...]
    data_sha256: tuple[str, ...]
    profiles: tuple[str, ...]
    horizons: tuple[str, ...]  # the nrmse@<t> keys, sorted by t

    @property
    def chaotic(self) -> bool:
        return self.main_metric == "vpt"


@dataclass(frozen=True)
class Aggregate:
    """Records aggregated over seeds; the input of :func:`render_markdown` and the plots.

    ``rows`` has one row per (task, profile, model, hparams, device, hardware,
    data_sha256) with at least one successful seed: the key columns, ``label`` (the
    model name, plus the hyperparameters that tell its variants apart), ``n`` (ok
    seeds), ``n_failed``, ``n_truncated``, ``seeds``, ``rank`` (within its task and
    profile; NaN when the main score is unavailable) and, for every numeric metric
    ``metrics.<k>`` and cost ``cost.<k>``, the columns ``<col>`` (mean), ``<col>:std``
    and ``<col>:n``. ``curves`` maps a row's key to its mean nRMSE curve ``(t, nrmse)``.
    """

    rows: pd.DataFrame
    tasks: Mapping[str, TaskSummary]
    failures: tuple[Failure, ...]
    curves: Mapping[tuple[str, ...], tuple[np.ndarray, np.ndarray]]
    warnings: tuple[str, ...]
    skipped: tuple[SkippedFile, ...]
    n_records: int
    n_excluded: int
    created: tuple[str, str] | None
    git_commits: tuple[str, ...]

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

    def table_rows(self, task: str, profile: str) -> pd.DataFrame:
        """The rows of one table in display order: rank (unranked last), label, hardware."""
        sel = self.rows[(self.rows["task"] == task) & (self.rows["profile"] == profile)]
        return sel.sort_values(["rank", "label", "hardware", "data_sha256"], na_position="last", kind="mergesort")

    def series_label(self, row: Mapping[str, Any]) -> str:
        """A row's name in a figure legend: its label plus whatever tells it apart in its task."""
        summary = self.tasks[row["task"]]
        text = row["label"]
        if len(summary.profiles) > 1:
            text += f" [{row['profile']}]"
        task_rows = self.rows[self.rows["task"] == row["task"]]
        if task_rows["hardware"].nunique() > 1:
            text += f" @ {row['hardware']}"
        if len(summary.data_sha256) > 1:
            text += f" (data {row['data_sha256'][:8]})"
        return text

    def curve(self, row: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        return self.curves.get(tuple(row[k] for k in KEY_COLUMNS))


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


UNKNOWN_HARDWARE = "unknown (failed before setup)"


def _hardware(env: Mapping[str, Any]) -> tuple[str, str]:
    """(device, hardware key): the GPU's name, or the CPU model with the thread count."""
    if not env.get("device"):
        return "", UNKNOWN_HARDWARE
    device = str(env["device"])
    if device == "cuda":
        return device, str(env.get("device_name") or "unknown GPU")
    name = str(env.get("cpu_model") or env.get("device_name") or "unknown CPU")
    if device != "cpu":
        name = f"{env.get('device_name') or name} ({device})"
    threads = env.get("threads")
    if isinstance(threads, int) and not isinstance(threads, bool):
        name += f", {threads} thread" + ("" if threads == 1 else "s")
    return device, name


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _one_line(error: Any) -> str:
    lines = [ln.strip() for ln in str(error or "").strip().splitlines() if ln.strip()]
    text = lines[0] if lines else "(no error message)"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _model_args(rec: Mapping[str, Any]) -> Any:
    """What distinguishes a model variant: the arguments the user asked for (``--model-arg``).

    Resolved defaults (``hparams``) differ between tasks, so grouping by them would split
    one configuration into a row per system; records without ``args`` fall back to them.
    """
    args = rec["model"].get("args")
    return args if isinstance(args, dict) else (rec["model"].get("hparams") or {})


def _key(rec: Mapping[str, Any]) -> tuple[str, ...]:
    device, hardware = _hardware(rec["env"])
    return (
        str(rec["task"]["name"]),
        str(rec["profile"]),
        str(rec["model"]["name"]),
        _canonical(_model_args(rec)),
        device,
        hardware,
        str(rec["task"].get("data_sha256")),
    )


def _describe(rec: Mapping[str, Any]) -> str:
    return f"{rec['task']['name']} / {rec['model']['name']} seed {rec['seed']} ({rec['profile']})"


def _labels(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """(model, hparams json) → label; hyperparameters appear only where a model has variants.

    Built from the records' requested arguments (:func:`_model_args`).
    """
    variants: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for rec in records:
        hp = _model_args(rec)
        variants[rec["model"]["name"]][_canonical(hp)] = hp if isinstance(hp, dict) else {"hparams": hp}
    labels: dict[tuple[str, str], str] = {}
    for model, by_json in variants.items():
        if len(by_json) == 1:
            labels[(model, next(iter(by_json)))] = model
            continue
        keys = sorted({k for hp in by_json.values() for k in hp})
        differing = [k for k in keys if len({_canonical(hp.get(k, "-")) for hp in by_json.values()}) > 1]
        for js, hp in by_json.items():
            parts = [f"{k}={hp[k] if isinstance(hp[k], str) else _canonical(hp[k])}" for k in differing if k in hp]
            labels[(model, js)] = f"{model} ({', '.join(parts)})" if parts else model
    return labels


def _failure_label(model: str, hparams: Any, labels: Mapping[tuple[str, str], str]) -> str:
    """The label of a failed run, whose hparams may be only the requested arguments.

    A run that failed before its model was built records what was asked for, not the
    resolved hyperparameters; it takes the label of the one successful variant that
    agrees with every requested value, if exactly one does.
    """
    if (model, _canonical(hparams or {})) in labels:
        return labels[(model, _canonical(hparams or {}))]
    given = hparams if isinstance(hparams, dict) else {}
    variants = [(json.loads(js), lb) for (m, js), lb in labels.items() if m == model]
    fits = sorted(lb for hp, lb in variants if isinstance(hp, dict) and all(k in hp and _canonical(hp[k]) == _canonical(v) for k, v in given.items()))
    if len(fits) == 1:
        return fits[0]
    args = ", ".join(f"{k}={_canonical(given[k])}" for k in sorted(given))
    return f"{model} (requested {args or 'defaults'})"


def _mean_curve(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    t0 = curves[0][0]
    if all(c[0].shape == t0.shape and np.array_equal(c[0], t0) for c in curves):
        return t0, np.mean([c[1] for c in curves], axis=0)
    end = min(c[0][-1] for c in curves)
    t = t0[t0 <= end]
    return t, np.mean([np.interp(t, c[0], c[1]) for c in curves], axis=0)


def _curve_of(metrics: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    curve = metrics.get("nrmse_curve")
    if not isinstance(curve, dict):
        return None
    try:
        t = np.array([_num(v) for v in curve["t"]], dtype=np.float64)
        y = np.array([_num(v) for v in curve["nrmse"]], dtype=np.float64)
    except (KeyError, TypeError):
        return None
    if t.ndim != 1 or t.shape != y.shape or t.size < 2 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        return None
    return t, y


def _dedupe(records: list[dict[str, Any]], warnings: list[str]) -> list[dict[str, Any]]:
    """One record per (row key, seed): the most recently created one, with a warning.

    Two records for the same seed come from copies of a results directory or reruns
    written elsewhere; averaging both would count that seed twice.
    """
    chosen: dict[tuple[Any, ...], dict[str, Any]] = {}
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    for rec in records:
        k = (*_key(rec), rec["seed"])
        counts[k] += 1
        if k not in chosen or str(rec["created"]) > str(chosen[k]["created"]):
            chosen[k] = rec
    for k, c in sorted(counts.items()):
        if c > 1:
            rec = chosen[k]
            warnings.append(f"{c} records for {_describe(rec)} on {k[5]}: kept the latest (created {rec['created']}), ignored the others")
    return [rec for rec in records if chosen[(*_key(rec), rec["seed"])] is rec]


def _task_kind(recs: list[dict[str, Any]]) -> str:
    kinds = sorted({str(r["task"].get("kind")) for r in recs if r["task"].get("kind") in ("forecast", "classify")})
    if kinds:
        return kinds[0]
    return "classify" if any("accuracy" in r["metrics"] for r in recs) else "forecast"


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


def _screen(records: Iterable[Mapping[str, Any]], current_hashes: Mapping[str, str] | None, warnings: list[str]) -> tuple[list[dict[str, Any]], int, int]:
    """Valid records made on the current data; returns (kept, n_read, n_excluded).

    A failed record without a data hash never reached the data, so it is not stale.
    """
    valid: list[dict[str, Any]] = []
    n_read = 0
    for i, rec in enumerate(records):
        n_read += 1
        try:
            valid.append(validate_record(rec))
        except RecordError as exc:
            warnings.append(f"record #{i} is not a valid result record and was skipped: {exc}")
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


def _summaries(kept: list[dict[str, Any]], warnings: list[str]) -> dict[str, TaskSummary]:
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in kept:
        by_task[str(rec["task"]["name"])].append(rec)
    summaries: dict[str, TaskSummary] = {}
    for task, recs in sorted(by_task.items()):
        ok = [r for r in recs if r["status"] == "ok"]
        kind = _task_kind(recs)
        main, higher = main_metric(kind, kind == "forecast" and any("vpt" in r["metrics"] for r in ok))
        hashes = tuple(sorted({str(r["task"]["data_sha256"]) for r in recs if r["task"].get("data_sha256") is not None}))
        if len(hashes) > 1:
            warnings.append(f"task {task} has records made on {len(hashes)} different data files; their rows are kept apart and marked with the data hash")
        summaries[task] = TaskSummary(
            name=task,
            kind=kind,
            main_metric=main,
            higher_is_better=higher,
            versions=tuple(sorted({str(r["task"]["version"]) for r in recs if r["task"].get("version") is not None})),
            data_sha256=hashes,
            profiles=tuple(sorted({str(r["profile"]) for r in recs})),
            horizons=tuple(sorted({k for r in ok for k in r["metrics"] if k.startswith("nrmse@")}, key=lambda k: (_horizon_key(k), k))),
        )
    return summaries


def _failures(kept: list[dict[str, Any]], labels: Mapping[tuple[str, str], str]) -> tuple[Failure, ...]:
    failures = [
        Failure(
            task=str(r["task"]["name"]),
            profile=str(r["profile"]),
            model=str(r["model"]["name"]),
            label=_failure_label(str(r["model"]["name"]), _model_args(r), labels),
            hardware=_key(r)[5],
            seed=int(r["seed"]),
            error=_one_line(r["error"]),
            data_sha256=r["task"].get("data_sha256"),
        )
        for r in kept
        if r["status"] == "failed"
    ]
    return tuple(sorted(failures, key=lambda f: (f.task, f.profile, f.label, f.hardware, f.seed)))


def aggregate(records: Iterable[Mapping[str, Any]], current_hashes: Mapping[str, str] | None = None, *, skipped: Sequence[SkippedFile] = ()) -> Aggregate:
    """Aggregate records over seeds (see the module docstring for every policy).

    ``current_hashes`` maps a task name to the sha256 of its current data; a record of
    that task made on other data is excluded with a warning. A task missing from the
    mapping is kept, with a warning that its data could not be checked. An invalid
    record is excluded with a warning, not an error. ``skipped`` (files that were not
    valid records) is carried through to the rendered notes.
    """
    warnings: list[str] = []
    kept, n_read, n_excluded = _screen(records, current_hashes, warnings)
    ok = [r for r in kept if r["status"] == "ok"]
    ok_models = {r["model"]["name"] for r in ok}
    labels = _labels(ok + [r for r in kept if r["model"]["name"] not in ok_models])
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
    )


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


def _rows(ok_records: list[dict[str, Any]], labels: Mapping[tuple[str, str], str], summaries: Mapping[str, TaskSummary]) -> tuple[pd.DataFrame, dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]]]:
    """The pandas aggregation over seeds, the ranks and the mean curves."""
    flat: list[dict[str, Any]] = []
    curves_by_key: dict[tuple[str, ...], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for rec in ok_records:
        key = _key(rec)
        entry: dict[str, Any] = dict(zip(KEY_COLUMNS, key))
        entry["seed"] = int(rec["seed"])
        entry["truncated"] = bool((rec.get("train") or {}).get("truncated", False))
        for k, v in rec["metrics"].items():
            if k != "nrmse_curve":
                entry[f"metrics.{k}"] = _num(v)
        for k, v in rec["cost"].items():
            entry[f"cost.{k}"] = _num(v)
        flat.append(entry)
        curve = _curve_of(rec["metrics"])
        if curve is not None:
            curves_by_key[key].append(curve)

    key_cols = list(KEY_COLUMNS)
    if not flat:
        return pd.DataFrame(columns=[*key_cols, "label", "n", "n_failed", "n_truncated", "seeds", "rank"]), {}
    df = pd.DataFrame(flat)
    value_cols = sorted(c for c in df.columns if c.startswith(("metrics.", "cost.")))
    df[value_cols] = df[value_cols].astype("float64")
    grouped = df.groupby(key_cols, sort=True)
    stats = grouped[value_cols].agg(["mean", "std", "count"])
    out = grouped.agg(n=("seed", "size"), n_truncated=("truncated", "sum"), seeds=("seed", lambda s: ",".join(str(x) for x in sorted(s))))
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
    for (task, _profile), idx in out.groupby(["task", "profile"], sort=True).groups.items():
        summary = summaries[task]
        col = f"metrics.{summary.main_metric}"
        fmt = _metric(summary.main_metric).fmt
        values = [_shown(v, fmt) for v in (out.loc[idx, col] if col in out else [math.nan] * len(idx))]
        ranks.loc[idx] = _rank(values, summary.higher_is_better)
    out["rank"] = ranks
    front = [*key_cols, "label", "n", "n_failed", "n_truncated", "seeds", "rank"]
    out = out[front + [c for c in out.columns if c not in front]]
    out = out.sort_values(["task", "profile", "rank", "label", "hardware", "data_sha256"], na_position="last", kind="mergesort").reset_index(drop=True)
    curves = {k: _mean_curve(v) for k, v in curves_by_key.items()}
    return out, curves


# --- markdown -------------------------------------------------------------------------

_ESCAPE = re.compile(r"([\\|*_`\[\]<>])")


def _esc(text: Any) -> str:
    return _ESCAPE.sub(r"\\\1", str(text))


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max([len(h), 3, *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if r else "-" * w for w, r in zip(widths, right)) + " |"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


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


def _value_column(rows: list[dict[str, Any]], col: str, spec: _Metric) -> _Column:
    cells, numbers = [], []
    for r in rows:
        v = r.get(col, math.nan)
        ok = v is not None and math.isfinite(v)
        cells.append(spec.fmt(v) if ok else "—")
        numbers.append(_shown(v, spec.fmt) if ok else math.nan)
    return _Column(spec.header, cells, numbers, spec.higher_is_better)


def _main_column(rows: list[dict[str, Any]], summary: TaskSummary) -> _Column:
    spec = _metric(summary.main_metric)
    col = f"metrics.{summary.main_metric}"
    cells, numbers = [], []
    for r in rows:
        mean, std, n = r.get(col, math.nan), r.get(f"{col}:std", math.nan), int(r["n"])
        if mean is None or not math.isfinite(mean):
            cells.append(f"— (n={n})")
            numbers.append(math.nan)
            continue
        spread = f" ± {spec.fmt(std)}" if n > 1 and std is not None and math.isfinite(std) else ""
        cells.append(f"{spec.fmt(mean)}{spread} (n={n})")
        numbers.append(_shown(mean, spec.fmt))
    return _Column(f"main: {spec.header}", cells, numbers, summary.higher_is_better)


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
        text = _mib(v) if ok else "—"
        cells.append(f"{text} ({kind})" if mixed else text)
        numbers.append(_shown(v, _mib) if ok else math.nan)
    return _Column(header, cells, numbers, False, groups=kinds)


def _notes(r: Mapping[str, Any], summary: TaskSummary) -> str:
    notes = []
    if r["n_failed"]:
        notes.append(f"{r['n_failed']}/{r['n'] + r['n_failed']} seeds failed")
    if r["n_truncated"]:
        notes.append(f"{r['n_truncated']}/{r['n']} truncated by the wall-clock cap")
    diverged = r.get("metrics.diverged_fraction", math.nan)
    if diverged is not None and math.isfinite(diverged) and diverged > 0:
        notes.append(f"forecast diverged (NaN/Inf) on {_percent(diverged)} of test trajectories: nRMSE there is ∞, shown —")
    col = f"metrics.{summary.main_metric}"
    missing = int(r["n"]) - int(r.get(f"{col}:n", 0) or 0)
    if missing:
        notes.append(f"{missing} seed(s) without a finite {summary.main_metric}")
    if len(summary.data_sha256) > 1:
        notes.append(f"data {r['data_sha256'][:8]}")
    return "; ".join(notes)


def _task_table(agg: Aggregate, task: str, profile: str) -> str:
    summary = agg.tasks[task]
    rows = agg.table_rows(task, profile).to_dict("records")
    if not rows:
        return "No successful runs."
    cols: list[_Column] = [
        _Column("rank", ["—" if not math.isfinite(r["rank"]) else str(int(r["rank"])) for r in rows], [math.nan] * len(rows), None),
        _Column("model", [_esc(r["label"]) for r in rows], [math.nan] * len(rows), None, right=False),
        _main_column(rows, summary),
    ]
    if summary.kind == "forecast":
        secondary = list(summary.horizons)
        if summary.chaotic:
            secondary += ["nrmse_mean", "vpt_capped_fraction"]
    else:
        secondary = ["macro_f1"]
    for key in secondary:
        cols.append(_value_column(rows, f"metrics.{key}", _metric(key)))
    for key in ("nfe_forward", "nfe_backward", "train_seconds", "infer_seconds"):
        cols.append(_value_column(rows, f"cost.{key}", _COSTS[key]))
    cols.append(_memory_column(rows))
    cols.append(_value_column(rows, "cost.params", _COSTS["params"]))
    cols.append(_Column("hardware", [_esc(r["hardware"]) for r in rows], [math.nan] * len(rows), None, right=False))
    cols.append(_Column("notes", [_esc(_notes(r, summary)) for r in rows], [math.nan] * len(rows), None, right=False))
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
    labels = sorted(set(agg.rows["label"]) | {f.label for f in agg.failures})
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
        means[label] = _shown(float(np.mean(ranks)), _dec2) if ranks else math.nan
    order = sorted(labels, key=lambda lb: (not math.isfinite(means[lb]), means[lb] if math.isfinite(means[lb]) else 0.0, lb))
    best = min((means[lb] for lb in labels if math.isfinite(means[lb])), default=math.nan)
    body = []
    for lb in order:
        m = means[lb]
        mean_text = "—" if not math.isfinite(m) else (f"**{_dec2(m)}**" if m == best else _dec2(m))
        body.append([_esc(lb), *cells[lb], mean_text, str(counts[lb])])
    return _md_table(["model", *(_esc(h) for h in headers), "mean rank ↓", "tables ranked"], body, [False, *([True] * len(headers)), True, True])


def _legend(agg: Aggregate) -> list[str]:
    chaotic = any(s.chaotic for s in agg.tasks.values())
    lines = [
        "## How to read the tables",
        "",
        "- ↑ higher is better, ↓ lower is better; the best displayed value of each such column is in **bold** (ties: all bold). Columns without an arrow are not ranked.",
        "- Main score: accuracy for classification; for forecasting, VPT for chaotic systems and the nRMSE mean otherwise. It is shown as mean ± sample standard deviation (ddof = 1) over seeds, n = the number of successful seeds; other columns show the mean over the same seeds.",
        "- Rank: competition ranking (1, 1, 3) of the main score's mean as displayed, within one task and profile. The overview gives each model's best rank per table and its mean rank over the tables in which it has one.",
        "- nRMSE(t) = sqrt(mean_i ((ŷ_i(t) − y_i(t)) / σ_i)²), with σ_i the per-dimension standard deviation of the *training* split (Vlachas et al. 2020), averaged over test trajectories. nRMSE@t is read at time t in the task's time unit; the nRMSE mean is over the whole horizon. "
        "A rollout that diverges (NaN/Inf) is infinitely wrong from then on: its VPT still counts, a mean nRMSE that includes it shows —, and the notes give the share of diverged test trajectories.",
    ]
    if chaotic:
        lines.append(
            "- VPT (valid prediction time): the first time a test trajectory's nRMSE exceeds the task's threshold, in Lyapunov times, averaged over test trajectories. "
            "capped: share of test trajectories that never exceeded it within the horizon (their VPT is the horizon, so the mean is a lower bound)."
        )
    lines += [
        "- NFE-F: vector-field (or residual-function) evaluations per test forward pass; NFE-B: evaluations per training step, backward pass included. Times are wall-clock seconds; memory is the peak in MiB, on the GPU when the run used one, else the process's peak CPU memory (labelled). Costs depend on the hardware column.",
        "- Rows are never averaged across hardware, profile or data. Failed seeds are never averaged: they are listed under their table, and a row with some failed seeds says so in its notes.",
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


def render_markdown(aggregate: Aggregate, plots: Mapping[str, Mapping[str, str]] | None = None, title: str = DEFAULT_TITLE) -> str:
    """The leaderboard as markdown: a pure, deterministic function of ``aggregate``.

    ``plots`` maps a task name to ``{kind: relative link}`` for the kinds in
    :data:`PLOT_KINDS` (others follow in sorted order); the images go under the task.
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
        out += _legend(agg)
        overview = _overview(agg)
        if overview is not None:
            out += ["## Overview", "", overview, ""]
        for task in sorted(agg.tasks):
            summary = agg.tasks[task]
            spec = _metric(summary.main_metric)
            out += [f"## {_esc(task)}", ""]
            info = [
                f"kind {summary.kind}",
                f"version {', '.join(summary.versions)}",
                f"data sha256 {', '.join(h[:12] for h in summary.data_sha256)}",
                f"main score {spec.header}",
            ]
            if len(summary.profiles) == 1:
                info.insert(2, f"profile {summary.profiles[0]}")
            out += [_esc(" · ".join(info)), ""]
            for t, profile in agg.tables():
                if t != task:
                    continue
                if len(summary.profiles) > 1:
                    out += [f"### profile {_esc(profile)}", ""]
                out += [_task_table(agg, task, profile), ""]
                failures = [f for f in agg.failures if f.task == task and f.profile == profile]
                if failures:
                    out += ["Failed runs (never averaged, never ranked):", "", _failure_table(failures), ""]
            links = dict((plots or {}).get(task, {}))
            for kind in [k for k in PLOT_KINDS if k in links] + sorted(k for k in links if k not in PLOT_KINDS):
                caption = f"{task}: {PLOT_KINDS.get(kind, kind)}"
                out += [f"![{_esc(caption)}]({links[kind]})", ""]
    notes = [f"- {_esc(w)}" for w in agg.warnings]
    notes += [f"- skipped {_esc(s.path)}: {_esc(s.reason)}" for s in agg.skipped]
    if notes:
        out += ["## Notes", "", *notes, ""]
    return "\n".join(out).rstrip("\n") + "\n"


# --- files ----------------------------------------------------------------------------


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
    tasks: Mapping[str, TaskSpec] | None = None,
    title: str = DEFAULT_TITLE,
) -> LeaderboardReport:
    """Read every record under ``results_dir``, render the leaderboard and write it.

    Malformed files are skipped and named in the output. With ``plots`` the PNGs go to
    ``plots/`` next to ``out_file`` and are linked relatively. ``tasks`` supplies task
    specs for the plots' Lyapunov-time axis (otherwise looked up in the task registry).
    Every file is written atomically.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist; pass the directory the benchmark runs wrote their records to")
    records, skipped = read_records(root)
    agg = aggregate(records, current_hashes, skipped=[_relative(s, root) for s in skipped])
    out = Path(out_file)
    links: dict[str, dict[str, str]] = {}
    written: list[Path] = []
    if plots and not agg.rows.empty:
        from .plots import task_plots

        for task, images in task_plots(agg, tasks=tasks).items():
            for kind, png in images.items():
                path = out.parent / "plots" / f"{_UNSAFE.sub('_', task)}__{kind}.png"
                write_bytes_atomic(path, png)
                written.append(path)
                links.setdefault(task, {})[kind] = f"plots/{path.name}"
    write_bytes_atomic(out, render_markdown(agg, links, title=title).encode("utf-8"))
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
    )
