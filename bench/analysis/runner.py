"""Run analyses like jobs: one child process per run record, a timeout, resume, a record per outcome.

:func:`plan_analyses` finds the ``ok`` forecast records with weights under a results
directory; :func:`run_analyses` skips those whose analysis is current (the same run,
weights and settings) and runs the others ``jobs`` at a time, each in a fresh
``python -m odebench.analysis.worker`` killed with its process group at the timeout.
A timeout, a crash or a model's fault all end in a ``failed`` analysis record, so
nothing is silently missing; an interrupted command leaves every finished record.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..results import read_records
from .records import VARIANT_NUMBERS, VARIANTS, AnalysisRecordError, analysis_path, read_analysis, write_analysis

__all__ = ["CACHE_DIRNAME", "DEFAULT_TIMEOUT_S", "AnalysisSummary", "plan_analyses", "is_current", "run_analyses"]

#: The true long runs are cached under the results directory in this hidden folder (safe to delete).
CACHE_DIRNAME = ".analysis-cache"
DEFAULT_TIMEOUT_S = 1800.0


@dataclass
class AnalysisSummary:
    """What :func:`run_analyses` did, by run record file."""

    ran: list[Path] = field(default_factory=list)
    ok: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    current: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def plan_analyses(results_dir: str | os.PathLike[str], tasks: Iterable[str] | None = None, models: Iterable[str] | None = None) -> tuple[list[Path], list[str]]:
    """The run records to analyse (``ok``, forecast, weights present), and why others were passed over.

    Ordered round-robin over tasks, so jobs running at once are on different tasks and
    rarely wait for the same true long runs.
    """
    root = Path(results_dir)
    records, _ = read_records(root)
    want_tasks = set(tasks) if tasks else None
    want_models = set(models) if models else None
    by_task: dict[str, list[Path]] = {}
    notes: list[str] = []
    for rec in records:
        task = (rec.get("task") or {}).get("name")
        model = (rec.get("model") or {}).get("name")
        if (want_tasks and task not in want_tasks) or (want_models and model not in want_models):
            continue
        if rec.get("status") != "ok" or (rec.get("task") or {}).get("kind") != "forecast":
            continue
        path = _path_of(root, rec)
        if path is None:
            continue
        if not rec.get("weights") or not (path.parent / str(rec["weights"])).is_file():
            notes.append(f"{path.name}: no weights next to the record; not analysed")
            continue
        by_task.setdefault(str(task), []).append(path)
    order: list[Path] = []
    lists = [sorted(v) for _, v in sorted(by_task.items())]
    for i in range(max((len(v) for v in lists), default=0)):
        order += [v[i] for v in lists if i < len(v)]
    return order, notes


def _path_of(root: Path, rec: Mapping[str, Any]) -> Path | None:
    from ..results import record_filename, test_seed_of

    task, model = rec["task"]["name"], rec["model"]["name"]
    name = record_filename(task, model, int(rec["seed"]), str(rec["profile"]), (rec.get("model") or {}).get("args"), test_seed_of(rec))
    hits = sorted(root.rglob(name))
    return hits[0] if hits else None


def is_current(record_file: Path, config: Mapping[str, Any]) -> bool:
    """Whether ``record_file`` already has an ``ok`` analysis of this run, these weights and settings."""
    from ..data import file_sha256
    from ..results import read_record

    target = analysis_path(record_file)
    if not target.is_file():
        return False
    try:
        done = read_analysis(target)
        rec = read_record(record_file)
    except (AnalysisRecordError, ValueError):
        return False
    weights = record_file.with_name(str(rec.get("weights") or ""))
    variants = (done.get("robustness") or {}).get("variants") or {}
    return (
        done["status"] == "ok"
        and all(set(VARIANT_NUMBERS) <= set(variants.get(v) or {}) for v in VARIANTS)  # else written by an older analysis
        and done["run"].get("run_id") == rec.get("run_id")
        and done.get("config") == dict(config)
        and weights.is_file()
        and done["run"].get("weights_sha256") == file_sha256(weights)
    )


def _run_one(record_file: Path, payload: dict[str, Any], timeout_s: float, live: set[subprocess.Popen[bytes]], lock: threading.Lock, cancelled: threading.Event) -> tuple[str, str | None]:
    """Analyse one record in a child; returns (status, error). Writes a failed record itself
    when the child could not, unless the command was interrupted (then nothing is written)."""
    from ..runner import exit_reason, kill_group, spawn_child
    from .analyse import failed_analysis

    target = analysis_path(record_file)
    before = target.stat().st_mtime_ns if target.is_file() else None
    proc = spawn_child("odebench.analysis.worker", int(payload["threads"]))
    with lock:
        live.add(proc)
    try:
        try:
            out, _ = proc.communicate(json.dumps(payload).encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            if cancelled.is_set():
                return "cancelled", None
            error = f"timed out after {timeout_s:g} s (the analysis's safety net; raise --timeout)"
            write_analysis(target, failed_analysis(record_file, error))
            return "failed", error
    finally:
        with lock:
            live.discard(proc)
    if cancelled.is_set():
        return "cancelled", None
    fresh = target.is_file() and target.stat().st_mtime_ns != before
    if proc.returncode != 0 or not fresh:
        tail = out.decode(errors="replace").strip().splitlines()[-1:] if out else []
        error = exit_reason(proc.returncode, "analysis worker") + (f": {tail[0]}" if tail else "")
        write_analysis(target, failed_analysis(record_file, error, out.decode(errors="replace")[-4000:] if out else None))
        return "failed", error
    done = read_analysis(target)
    return str(done["status"]), done.get("error")


def run_analyses(
    record_files: Sequence[Path],
    *,
    jobs: int = 1,
    threads: int = 1,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    force: bool = False,
    config_overrides: Mapping[str, Any] | None = None,
    data_dir: str | None = None,
    emit: Callable[[str], None] = print,
) -> AnalysisSummary:
    """Analyse ``record_files`` (from :func:`plan_analyses`), ``jobs`` at a time."""
    from .. import registry
    from ..results import read_record
    from .analyse import config_for

    if jobs < 1 or threads < 1:
        raise ValueError(f"jobs and threads must be >= 1, got {jobs} and {threads}")
    summary = AnalysisSummary()
    started = time.perf_counter()
    todo: list[Path] = []
    for path in record_files:
        config = config_for(registry.load_task(read_record(path)["task"]["name"]), **dict(config_overrides or {}))
        if not force and is_current(path, config.to_dict()):
            summary.current.append(path)
        else:
            todo.append(path)
    if summary.current:
        emit(f"{len(summary.current)} analyses already current; {len(todo)} to run")
    live: set[subprocess.Popen[bytes]] = set()
    lock = threading.Lock()
    cancelled = threading.Event()
    count = [0]

    def one(path: Path) -> None:
        payload = {
            "record": str(path),
            "config": dict(config_overrides or {}),
            "cache_dir": str(path.parent / CACHE_DIRNAME),
            "data_dir": data_dir,
            "threads": threads,
        }
        t0 = time.perf_counter()
        with lock:
            emit(f"start {path.name}")
        status, error = _run_one(path, payload, timeout_s, live, lock, cancelled)
        if status == "cancelled":
            return
        with lock:
            count[0] += 1
            summary.ran.append(path)
            (summary.ok.append(path) if status == "ok" else summary.failed.append((path, error or "failed")))
            emit(f"[{count[0]}/{len(todo)}] {path.name}: {status}" + (f" ({error})" if error else "") + f" ({time.perf_counter() - t0:.1f} s)")

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for future in [pool.submit(one, p) for p in todo]:
            future.result()
    except BaseException:
        cancelled.set()
        with lock:
            procs = list(live)
        from ..runner import kill_group

        for proc in procs:
            kill_group(proc)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    summary.seconds = time.perf_counter() - started
    return summary
