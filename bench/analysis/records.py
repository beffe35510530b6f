"""Analysis records: one JSON file per analysed run record, next to it, written atomically.

A run record ``<stem>.json`` with weights ``<stem>.pt`` gets its analysis in
``<stem>.analysis.json``. Like a run record it is plain JSON and self-describing: it
names the run it analysed (file, ``run_id``, task, model, seed, the weights' sha256)
and the analysis settings, so the leaderboard pairs analyses with the board's runs from
the files alone, and an analysis whose run was re-run (another ``run_id``) or whose
settings changed is stale and redone. Layout (``analysis_schema_version`` 1)::

    schema "odebench-analysis", analysis_schema_version 1, created, status ("ok"|"failed"),
    error (one line or null), traceback (tail or null), seconds (wall time of the analysis),
    run      {file, run_id, task, task_version, kind, model, args, seed, profile,
              data_sha256, weights_sha256, reference (bool)},
    config   {...AnalysisConfig.to_dict()...},
    env      {python, torch, threads, cpu_model, device},
    truth    {lyapunov_exponent (λ1 of the task or null), lyapunov_time, time_unit},
    long_run null | {time, burn_in, n_rollouts, escape_factor, variables, diverged_fraction,
              diverged_at [per rollout, in time units; null = stayed bounded],
              wasserstein [per variable, in units of the true σ; null if every rollout diverged],
              wasserstein_floor [per variable], spectrum_error, spectrum_error_floor,
              spectrum {k, model, true} (PDE fields; null otherwise)},
    lyapunov null | {lambda1, lambda1_true, relative_error, per_rollout [null = diverged],
              regime ("chaotic" | "cycle" | "fixed point" | "contracting" | "diverged"),
              method, time, renormalise_every, epsilon},
    robustness {metric ("vpt" | "nrmse_mean"), n_items, reproduces_record (bool or null),
              variants {native, half_step, double_step, other_solver: each
                        {status ("ok" | "n/a" | "failed"), description, score, nrmse_mean,
                         diverged_fraction, escaped_fraction (non-finite or outside the
                         training range's box; absent from records written before it), note}}},
    decay_rates null | {k, model, true, tau, modes_scored, relative_error, linearised_at},
    figures  {attractor null | {variables [i, j], names, true {a, b}, model {a, b}},
              spacetime null | {t, true [[...]], model [[...]]}}

Every float is finite or null; curves and figure data are rounded to 4 significant
digits, which is all a table or a picture needs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._io import write_bytes_atomic

__all__ = [
    "ANALYSIS_SCHEMA",
    "ANALYSIS_SCHEMA_VERSION",
    "ANALYSIS_SUFFIX",
    "VARIANTS",
    "VARIANT_NUMBERS",
    "REGIMES",
    "AnalysisRecordError",
    "analysis_path",
    "is_analysis_file",
    "validate_analysis",
    "write_analysis",
    "read_analysis",
    "read_analyses",
]

ANALYSIS_SCHEMA = "odebench-analysis"
ANALYSIS_SCHEMA_VERSION = 1
#: An analysis file is its run record's name with this suffix instead of ``.json``.
ANALYSIS_SUFFIX = ".analysis.json"
#: The robustness variants, in the order tables show them.
VARIANTS = ("native", "half_step", "double_step", "other_solver")
#: The numbers each robustness variant carries (null where it did not run); an analysis
#: whose variants lack one was written by an older analysis and is redone.
VARIANT_NUMBERS = ("score", "nrmse_mean", "diverged_fraction", "escaped_fraction")
#: What the long run of a model settles into, as the Lyapunov analysis names it.
REGIMES = ("chaotic", "cycle", "fixed point", "contracting", "diverged")
_REQUIRED = ("schema", "analysis_schema_version", "created", "status", "error", "run", "config", "robustness", "figures")


class AnalysisRecordError(ValueError):
    """A file that is not a valid analysis record."""


def analysis_path(record_file: str | os.PathLike[str]) -> Path:
    """Where the analysis of the run record ``record_file`` is kept (next to it)."""
    path = Path(record_file)
    return path.with_name(path.name[: -len(".json")] + ANALYSIS_SUFFIX if path.name.endswith(".json") else path.name + ANALYSIS_SUFFIX)


def is_analysis_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an analysis record (run-record scans skip these)."""
    return Path(path).name.endswith(ANALYSIS_SUFFIX)


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _finite(obj.item())
    return obj


def validate_analysis(rec: Any) -> dict[str, Any]:
    """``rec`` if it is an analysis record of a known schema; :class:`AnalysisRecordError` otherwise."""
    if not isinstance(rec, dict):
        raise AnalysisRecordError(f"an analysis record is a JSON object, got {type(rec).__name__}")
    if rec.get("schema") != ANALYSIS_SCHEMA:
        raise AnalysisRecordError(f"not an analysis record: schema is {rec.get('schema')!r}, expected {ANALYSIS_SCHEMA!r}")
    version = rec.get("analysis_schema_version")
    if version != ANALYSIS_SCHEMA_VERSION:
        raise AnalysisRecordError(f"analysis_schema_version {version!r} is not {ANALYSIS_SCHEMA_VERSION}; re-run 'odebench analyze' to rewrite it")
    missing = [k for k in _REQUIRED if k not in rec]
    if missing:
        raise AnalysisRecordError(f"analysis record lacks {', '.join(missing)}")
    if rec["status"] not in ("ok", "failed"):
        raise AnalysisRecordError(f"analysis status must be ok or failed, got {rec['status']!r}")
    run = rec["run"]
    if not isinstance(run, dict) or not all(k in run for k in ("file", "run_id", "task", "model", "seed")):
        raise AnalysisRecordError("analysis record's 'run' must name the file, run_id, task, model and seed it analysed")
    return rec


def write_analysis(path: str | os.PathLike[str], rec: Mapping[str, Any]) -> Path:
    """Validate ``rec`` and write it to ``path`` atomically (non-finite floats become null)."""
    clean = validate_analysis(_finite(dict(rec)))
    payload = json.dumps(clean, indent=1, sort_keys=True, allow_nan=False) + "\n"
    return write_bytes_atomic(path, payload.encode("utf-8"))


def read_analysis(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The analysis record in ``path``; :class:`AnalysisRecordError` naming the file if it is not one."""
    try:
        with open(path, encoding="utf-8") as fh:
            rec = json.load(fh)
        return validate_analysis(rec)
    except (OSError, ValueError) as exc:
        raise AnalysisRecordError(f"{path}: {exc}") from exc


def read_analyses(results_dir: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """Every valid analysis record below ``results_dir`` (sorted by path), and the files skipped with why."""
    found: list[dict[str, Any]] = []
    skipped: list[tuple[Path, str]] = []
    for path in sorted(p for p in Path(results_dir).rglob("*" + ANALYSIS_SUFFIX) if p.is_file() and not p.name.startswith(".")):
        try:
            found.append(read_analysis(path))
        except AnalysisRecordError as exc:
            skipped.append((path, str(exc)))
    return found, skipped
