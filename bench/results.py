"""Result records: one JSON file per (task, model variant, seed, profile), written atomically.

A record is plain JSON (never a pickle), so reading a results directory can run no code.
A record is self-describing: it carries the task's full spec as it was run (time grid,
λ1, thresholds, description, the main score and every metric's label and direction)
and the training protocol, so a leaderboard is a function of its records alone.
Layout (``schema_version`` 2)::

    schema_version, run_id, created (ISO 8601, UTC), seed, profile, status ("ok"|"failed"),
    error (one line or null), traceback (tail or null),
    task     {name, version, kind, data_sha256, spec (TaskSpec.to_dict(); null if never loaded),
              test_split ({"source": "shipped"} or {"source": "fresh", "seed", "sha256"}; optional)},
    protocol {...Protocol.to_dict()...} or null (a run that failed before it had one),
    model    {name, distribution, version, args (the --model-arg values), hparams (resolved)},
    metrics  {...the objective's test metrics...},
    items    {n, <main metric>: [one score per test item, in test-split order], ...} (optional),
    cost     {nfe_forward, nfe_backward, train_seconds, infer_seconds, peak_gpu_bytes,
              peak_gpu_bytes_train, peak_gpu_bytes_infer, peak_cpu_bytes, params,
              eval_batch_size, n_test_times},
    train    {...protocol facts: steps, truncated, stopped_early, best_step, val_history, ...},
    env      {python, torch, cuda, device, device_name, cpu_model, threads, git_commit, git_dirty, ...},
    limits   {timeout_s, max_memory_bytes} (optional: the caps the job ran under; null = the default)

Schema 1 records (no ``task.spec``, the protocol under ``train``) are upgraded in place
by ``odebench records upgrade --results DIR`` (:mod:`odebench.upgrade`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._io import write_bytes_atomic
from .analysis.records import is_analysis_file
from .spec import SCHEMA_VERSION

__all__ = [
    "RecordError",
    "STATUSES",
    "REQUIRED_KEYS",
    "COST_KEYS",
    "args_tag",
    "record_filename",
    "record_path",
    "test_seed_of",
    "validate_record",
    "write_json_atomic",
    "write_record",
    "read_record",
    "SkippedFile",
    "read_records",
]

STATUSES = ("ok", "failed")
REQUIRED_KEYS = ("schema_version", "task", "protocol", "model", "seed", "profile", "status", "error", "metrics", "cost", "env", "created")
COST_KEYS = (
    "nfe_forward",
    "nfe_backward",
    "train_seconds",
    "infer_seconds",
    "peak_gpu_bytes",
    "peak_cpu_bytes",
    "params",
)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SAFE_TAG = re.compile(r"[^A-Za-z0-9._=,-]+")


class RecordError(ValueError):
    """A JSON file that is not a valid odebench result record."""


def _safe(part: str) -> str:
    return _SAFE.sub("_", part)


def _canonical_args(args: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(args or {}), sort_keys=True, separators=(",", ":"), default=str)


def args_tag(args: Mapping[str, Any] | None) -> str:
    """A file-name-safe tag for a model variant: readable ``k=v`` pairs plus a short stable hash.

    Empty for the defaults (no ``--model-arg``), so those records keep their plain names.
    The hash is of the canonical JSON of the arguments, so two variants never share a tag
    even when the readable part is cut short.
    """
    if not args:
        return ""
    digest = hashlib.sha256(_canonical_args(args).encode("utf-8")).hexdigest()[:8]
    readable = _SAFE_TAG.sub("_", ",".join(f"{k}={args[k]}" for k in sorted(args)))[:40]
    return f"{readable}-{digest}"


def record_filename(task: str, model: str, seed: int, profile: str, args: Mapping[str, Any] | None = None, test_seed: int | None = None) -> str:
    """File name of a record: ``<task>__<model>[__<args tag>]__<profile>[__test-seed<S>]__seed<seed>.json``.

    A run scored on a fresh test split (``--test-seed S``) never shares a file with one
    scored on the shipped split.
    """
    tag = args_tag(args)
    variant = f"__{tag}" if tag else ""
    fresh = f"__test-seed{int(test_seed)}" if test_seed is not None else ""
    return f"{_safe(task)}__{_safe(model)}{variant}__{_safe(profile)}{fresh}__seed{int(seed)}.json"


def record_path(results_dir: str | os.PathLike[str], task: str, model: str, seed: int, profile: str, args: Mapping[str, Any] | None = None, test_seed: int | None = None) -> Path:
    return Path(results_dir) / record_filename(task, model, seed, profile, args, test_seed)


def test_seed_of(rec: Mapping[str, Any]) -> int | None:
    """The seed of the fresh test split a record was scored on, or ``None`` for the shipped one."""
    split = rec.get("task", {}).get("test_split") or {}
    seed = split.get("seed") if split.get("source") == "fresh" else None
    return int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None


def validate_record(rec: Any) -> dict[str, Any]:
    """Return ``rec`` if it has the record layout; raise :class:`RecordError` naming what is wrong."""
    if not isinstance(rec, dict):
        raise RecordError(f"expected a JSON object, got {type(rec).__name__}")
    version = rec.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version < SCHEMA_VERSION:
        raise RecordError(f"schema_version {version} was written by an older odebench; upgrade it in place with 'odebench records upgrade --results DIR'")
    if version != SCHEMA_VERSION:
        raise RecordError(f"schema_version {version!r} is not the supported {SCHEMA_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        raise RecordError(f"missing keys {missing}")
    if rec["status"] not in STATUSES:
        raise RecordError(f"status {rec['status']!r} is not one of {STATUSES}")
    for part, keys in (("task", ("name", "version", "data_sha256")), ("model", ("name", "distribution", "version", "hparams"))):
        if not isinstance(rec[part], dict) or any(k not in rec[part] for k in keys):
            raise RecordError(f"'{part}' must be an object with keys {list(keys)}")
    if not isinstance(rec["seed"], int) or isinstance(rec["seed"], bool):
        raise RecordError(f"seed must be an integer, got {rec['seed']!r}")
    if not isinstance(rec["metrics"], dict) or not isinstance(rec["cost"], dict) or not isinstance(rec["env"], dict):
        raise RecordError("'metrics', 'cost' and 'env' must be objects")
    spec = rec["task"].get("spec")
    if spec is not None and not (isinstance(spec, dict) and isinstance(spec.get("main_metric"), str) and isinstance(spec.get("metrics"), list)):
        raise RecordError("'task.spec' must be the task's spec object, with 'main_metric' and a 'metrics' list")
    if rec["protocol"] is not None and not isinstance(rec["protocol"], dict):
        raise RecordError("'protocol' must be an object or null")
    if rec["status"] == "ok":
        missing_cost = [k for k in COST_KEYS if k not in rec["cost"]]
        if missing_cost:
            raise RecordError(f"an ok record needs cost keys {missing_cost}")
        if spec is None or rec["protocol"] is None:
            raise RecordError("an ok record needs the task's spec ('task.spec') and the 'protocol' it ran under")
    elif not rec["error"]:
        raise RecordError("a failed record needs an 'error' message")
    return rec


def _json_ready(obj: Any) -> Any:
    """Replace non-finite floats by None: JSON has no NaN, and a record must stay strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically (see :func:`write_bytes_atomic`)."""
    text = json.dumps(_json_ready(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_record(results_dir: str | os.PathLike[str], rec: dict[str, Any]) -> Path:
    """Validate and atomically write a record to its canonical path under ``results_dir``."""
    validate_record(rec)
    path = record_path(results_dir, rec["task"]["name"], rec["model"]["name"], rec["seed"], rec["profile"], rec["model"].get("args"), test_seed_of(rec))
    return write_json_atomic(path, rec)


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate one record; :class:`RecordError` names the file on any problem."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: not readable as JSON ({exc})") from exc
    try:
        return validate_record(rec)
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class SkippedFile:
    """A file under a results directory that was not a valid record, and why."""

    path: Path
    reason: str


def read_records(results_dir: str | os.PathLike[str], pattern: str = "*.json") -> tuple[list[dict[str, Any]], list[SkippedFile]]:
    """Every valid record below ``results_dir`` (sorted by path), plus the files skipped.

    Analysis records (``*.analysis.json``, :mod:`odebench.analysis.records`) live next to
    the run records they analysed; they are not run records, so they are neither read
    nor reported as skipped here.
    """
    root = Path(results_dir)
    records: list[dict[str, Any]] = []
    skipped: list[SkippedFile] = []
    paths: Iterable[Path] = sorted(p for p in root.rglob(pattern) if p.is_file() and not p.name.startswith(".") and not is_analysis_file(p))
    for path in paths:
        try:
            rec = read_record(path)
        except RecordError as exc:
            skipped.append(SkippedFile(path, str(exc)))
            continue
        records.append(rec)
    return records, skipped
