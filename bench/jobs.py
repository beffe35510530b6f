"""One benchmark job: described by plain data, executed into exactly one result record.

A :class:`Job` holds only JSON-serialisable values (names, seed, profile, paths), never
live objects, so any executor (a local child process today, a distributed engine later)
can ship it. :func:`execute_job` runs it in the current process and always returns a
record: ``ok`` with metrics and costs, or ``failed`` with a one-line reason and the tail
of the traceback.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import registry
from .measure import environment, peak_rss_bytes, resolve_device, set_threads
from .progress import Heartbeat
from .protocol import protocol_for
from .results import record_path, write_record
from .spec import SCHEMA_VERSION, Split, TaskData, TaskSpec
from .training import train_and_evaluate
from .weights import WeightsError, remove_stale_weights, save_weights

__all__ = ["Job", "execute_job", "failed_record", "write_failed", "weights_path", "load_task_data"]


@dataclass(frozen=True)
class Job:
    """Everything needed to run one (task, model, seed, profile) — plain data only."""

    task: str
    model: str
    seed: int
    profile: str
    results_dir: str
    hparams: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    threads: int = 1
    timeout_s: float | None = None
    max_memory_bytes: int | None = None
    data_dir: str | None = None
    data_sha256: str | None = None  # what the sweep verified; the job refuses other data
    test_seed: int | None = None  # score on a fresh test split drawn from this seed
    test_sha256: str | None = None  # the fresh split the sweep generated; the job refuses another
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))

    @property
    def record_path(self) -> Path:
        return record_path(self.results_dir, self.task, self.model, self.seed, self.profile, self.hparams, self.test_seed)

    @property
    def label(self) -> str:
        args = "".join(f" {k}={self.hparams[k]}" for k in sorted(self.hparams))
        fresh = f" test-seed={self.test_seed}" if self.test_seed is not None else ""
        return f"{self.task} {self.model}{args} seed={self.seed}{fresh}"


def weights_path(record_file: Path) -> Path:
    """Where the trained ``state_dict`` of an ``ok`` record is kept (next to the record)."""
    return record_file.with_suffix(".pt")


def _test_split(job: Job) -> dict[str, Any]:
    return {"source": "shipped"} if job.test_seed is None else {"source": "fresh", "seed": job.test_seed, "sha256": job.test_sha256}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _base_record(job: Job) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": job.run_id,
        "created": _now(),
        "seed": job.seed,
        "profile": job.profile,
        "task": {"name": job.task, "version": None, "kind": None, "data_sha256": None, "spec": None, "test_split": _test_split(job)},
        "protocol": None,
        "model": {"name": job.model, "distribution": None, "version": None, "args": dict(job.hparams), "hparams": dict(job.hparams)},
        "limits": {"timeout_s": job.timeout_s, "max_memory_bytes": job.max_memory_bytes},
        "status": "failed",
        "error": None,
        "traceback": None,
        "metrics": {},
        "cost": {},
        "train": {},
        "env": {},
    }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, MemoryError) or "out of memory" in message.lower() or "can't allocate memory" in message.lower():
        return f"out of memory: {type(exc).__name__}: {message}"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def failed_record(job: Job, error: str, tb: str | None = None, partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``failed`` record for ``job`` with a one-line ``error`` and an optional traceback tail."""
    rec = _base_record(job)
    if partial:
        rec.update({k: v for k, v in partial.items() if k in ("task", "model", "env", "protocol", "limits")})
    rec["error"] = error.strip().splitlines()[0] if error.strip() else "unknown failure"
    rec["traceback"] = tb
    return rec


def parent_partial(job: Job) -> dict[str, Any]:
    """What a record written by the parent (a crash, a timeout) can still say about the job.

    The same task, model, protocol and environment fields a child writes, found without
    running the job; each is left out if it cannot be had (a task or plugin that fails
    to load is exactly what such a record may be about).
    """
    partial: dict[str, Any] = {}
    try:
        device = resolve_device(job.device)
        partial["env"] = {**environment(device), "threads": job.threads}
    except Exception:  # noqa: BLE001 - best effort: the record is written regardless
        pass
    try:
        task = registry.load_task(job.task)
        from . import data

        digest = job.data_sha256 or data.verify_task(task.name, job.data_dir)
        test_split = _test_split(job)
        partial["task"] = {"name": task.name, "version": task.version, "kind": task.kind, "data_sha256": digest, "spec": task.to_dict(), "test_split": test_split}
        protocol = protocol_for(task, job.profile)
        partial["protocol"] = protocol.to_dict()
        partial["limits"] = {"timeout_s": job.timeout_s if job.timeout_s is not None else protocol.timeout_s, "max_memory_bytes": job.max_memory_bytes}
    except Exception:  # noqa: BLE001
        pass
    try:
        entry = registry.models.entry(job.model)
        partial["model"] = {"name": job.model, "distribution": entry.distribution, "version": entry.version, "args": dict(job.hparams), "hparams": dict(job.hparams)}
    except Exception:  # noqa: BLE001
        pass
    return partial


def load_task_data(task: TaskSpec, data_dir: str | None = None, expected_sha256: str | None = None, test_seed: int | None = None, test_sha256: str | None = None) -> tuple[TaskData, str, dict[str, Any]]:
    """Verify the task's frozen splits and load them; returns (data, data_sha256, test split).

    With ``expected_sha256`` (what a sweep verified before it started), data whose digest
    differs are refused: they changed under the sweep. With ``test_seed`` the test split
    is a fresh draw from that seed (:mod:`odebench.tasks.fresh`) instead of the shipped
    one; ``test_sha256`` is the digest the sweep generated, and another one is refused.
    """
    from . import data  # imported lazily: the data module pulls in h5py

    digest = data.verify_task(task.name, data_dir)
    if expected_sha256 is not None and digest != expected_sha256:
        raise data.DataIntegrityError(f"task {task.name!r}: its data changed after the sweep verified them (sha256 {digest[:12]}, verified {expected_sha256[:12]}); rerun the sweep")
    splits = {name: data.load_split(task.name, name, data_dir, verify=False) for name in ("train", "val", "test")}
    test_split: dict[str, Any] = {"source": "shipped"}
    if test_seed is not None:
        from .tasks.fresh import fresh_test_split

        fresh = fresh_test_split(task.name, test_seed)
        if test_sha256 is not None and fresh.sha256 != test_sha256:
            raise data.DataIntegrityError(f"task {task.name!r}: the fresh test split of seed {test_seed} has sha256 {fresh.sha256[:12]}, not the {test_sha256[:12]} the sweep generated")
        splits["test"] = data.load_split(task.name, "test", fresh.directory, verify=True)
        test_split = fresh.to_record()
    arrays = {name: Split(u=s.u, t=np.asarray(s.t, dtype=np.float64), y=s.y) for name, s in splits.items()}
    return TaskData(train=arrays["train"], val=arrays["val"], test=arrays["test"]), digest, test_split


def execute_job(job: Job, write: bool = True) -> dict[str, Any]:
    """Run ``job`` here and return its record (written under ``job.results_dir`` if ``write``).

    Never raises for a model's or a task's fault: those become ``failed`` records.
    """
    heartbeat = Heartbeat(job.label)
    with heartbeat.running():
        return _execute(job, write, heartbeat)


def _execute(job: Job, write: bool, heartbeat: Heartbeat) -> dict[str, Any]:
    partial: dict[str, Any] = {}
    try:
        device = resolve_device(job.device)
        set_threads(job.threads)
        if job.max_memory_bytes and device.type == "cuda":
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, job.max_memory_bytes / total), device)
        partial["env"] = environment(device)
        task = registry.load_task(job.task)
        data, digest, test_split = load_task_data(task, job.data_dir, job.data_sha256, job.test_seed, job.test_sha256)
        partial["task"] = {"name": task.name, "version": task.version, "kind": task.kind, "data_sha256": digest, "spec": task.to_dict(), "test_split": test_split}
        entry = registry.models.entry(job.model)
        partial["model"] = {"name": job.model, "distribution": entry.distribution, "version": entry.version, "args": dict(job.hparams), "hparams": dict(job.hparams)}
        if getattr(registry.model_factory(job.model), "reference", False) is True:
            partial["model"]["reference"] = True  # shown apart on the board, never ranked
        protocol = protocol_for(task, job.profile)
        partial["protocol"] = protocol.to_dict()
        partial["limits"] = {"timeout_s": job.timeout_s if job.timeout_s is not None else protocol.timeout_s, "max_memory_bytes": job.max_memory_bytes}
        heartbeat.update(phase="building the model", max_steps=protocol.max_steps)
        torch.manual_seed(job.seed)
        np.random.seed(job.seed % 2**32)
        random.seed(job.seed)
        model = registry.build_model(job.model, task, job.hparams)
        hparams = getattr(model, "hparams", None)
        if isinstance(hparams, dict):
            partial["model"]["hparams"] = json.loads(json.dumps(hparams, default=str))
        model = model.to(device)
        outcome = train_and_evaluate(task, model, data, protocol, device, job.seed, lambda phase, step, val: heartbeat.update(phase=phase, step=step, **({} if val is None else {"val_loss": val})))
    except Exception as exc:  # any fault of a plugin, a model or a file becomes a failed record
        rec = failed_record(job, _one_line(exc), "".join(traceback.format_exc().splitlines(True)[-25:]), partial)
        if write:
            write_failed(job, rec)
        return rec
    rec = _base_record(job)
    rec.update({k: partial[k] for k in ("task", "model", "env", "protocol", "limits")})
    rec["status"] = "ok"
    rec["metrics"] = outcome.metrics
    if outcome.items is not None:
        rec["items"] = outcome.items
    rec["cost"] = {**outcome.cost, "peak_cpu_bytes": peak_rss_bytes()}
    rec["train"] = outcome.train
    if write:
        path = job.record_path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            save_weights(outcome.state_dict, weights_path(path))
        except WeightsError as exc:
            rec = failed_record(job, f"weights: {exc}", None, partial)
            write_failed(job, rec)
            return rec
        rec["weights"] = weights_path(path).name
        write_record(job.results_dir, rec)
    return rec


def write_failed(job: Job, rec: dict[str, Any]) -> None:
    """Write a failed record, first removing weights an earlier run of the job left behind."""
    remove_stale_weights(weights_path(job.record_path))
    write_record(job.results_dir, rec)
