"""Run jobs on a Dask distributed cluster: a workstation, a GPU server, Slurm, PBS or Kubernetes.

Each job is one Dask task. On the worker it runs exactly as a local job does — in a
fresh child process with its timeout, memory cap and capped log — inside a private
temporary results directory; the record, the weights and the log travel back to the
driver, which writes them. Workers therefore need no shared filesystem, and locking,
resume and skip stay the driver's (:func:`odebench.runner.run_sweep`), unchanged.

* Resources: a CUDA job asks for one ``GPU`` resource (start GPU workers with
  ``--resources GPU=1``); every job occupies one worker thread, so start CPU workers with
  ``--nthreads`` = cores / threads per job.
* A worker that dies mid-job: Dask reschedules the task on another worker (up to its
  ``allowed-failures``); the record then says how many times it was started
  (``retries``). When Dask gives up, the job gets a failed record naming the lost
  worker. Either way exactly one record is written, by the driver.
* Heartbeats of running jobs reach the driver as Dask events (topic
  :data:`HEARTBEAT_TOPIC`) and are shown like local ones.
* Without a scheduler address a local cluster of ``n_workers`` processes is started,
  bound to 127.0.0.1 with its dashboard off.

Dask is an optional dependency: ``pip install odebench[dask]``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from pathlib import Path
from typing import Any

from ._io import write_bytes_atomic
from .joblog import tail_lines
from .jobs import Job, failed_record, parent_partial, weights_path, write_failed
from .results import write_record
from .runner import Executor, LocalProcessExecutor, OnHeartbeat

__all__ = ["HEARTBEAT_TOPIC", "DaskExecutor", "run_remote_job"]

HEARTBEAT_TOPIC = "odebench-heartbeat"
_START_TOPIC = "odebench-start-"


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("the Dask executor needs Dask distributed: pip install 'odebench[dask]'") from exc
    return distributed


def run_remote_job(job_json: str) -> dict[str, Any]:
    """The Dask task: run one job on this worker in a child process; return what the driver writes."""
    distributed = _import_distributed()
    worker = distributed.get_worker()
    job = Job.from_json(job_json)
    worker.log_event(_START_TOPIC + job.run_id, {"worker": worker.address})
    with tempfile.TemporaryDirectory(prefix="odebench-dask-") as scratch:
        local = dataclasses.replace(job, results_dir=scratch)

        def heartbeat(beat: dict[str, Any]) -> None:
            worker.log_event(HEARTBEAT_TOPIC, {**beat, "run_id": job.run_id})

        executor = LocalProcessExecutor(spares=0)
        try:
            rec = executor.run(local, heartbeat)
        finally:
            executor.close()
        weights = weights_path(local.record_path)
        log_path = Path(scratch) / "logs" / (local.record_path.stem + ".log")
        return {
            "record": rec,
            "weights": weights.read_bytes() if rec["status"] == "ok" and weights.is_file() else None,
            "log": tail_lines(log_path, lines=200, max_bytes=1 << 20),
            "worker": worker.address,
        }


class DaskExecutor(Executor):
    """Jobs as tasks on a Dask cluster (see the module docstring)."""

    def __init__(self, scheduler: str | None = None, n_workers: int = 1, gpus_per_worker: int = 0) -> None:
        distributed = _import_distributed()
        self._distributed = distributed
        self._cluster = None
        if scheduler is None:
            resources = {"GPU": gpus_per_worker} if gpus_per_worker else None
            self._cluster = distributed.LocalCluster(
                n_workers=max(1, n_workers),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                resources=resources,
            )
            self.client = distributed.Client(self._cluster)
        else:
            self.client = distributed.Client(scheduler)
        self._heartbeats: dict[str, OnHeartbeat] = {}
        self._futures: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.client.subscribe_topic(HEARTBEAT_TOPIC, self._on_event)

    @property
    def slots(self) -> int:
        """Jobs the cluster can run at once: its worker threads (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def _on_event(self, event: Any) -> None:
        _, beat = event
        if isinstance(beat, dict):
            callback = self._heartbeats.get(str(beat.get("run_id")))
            if callback is not None:
                callback(beat)

    def run(self, job: Job, on_heartbeat: OnHeartbeat | None = None) -> dict[str, Any]:
        resources = {"GPU": 1} if job.device.startswith("cuda") else None
        future = self.client.submit(run_remote_job, job.to_json(), key=f"odebench-{job.run_id}", resources=resources, pure=False)
        with self._lock:
            self._futures[job.run_id] = future
            if on_heartbeat is not None:
                self._heartbeats[job.run_id] = on_heartbeat
        try:
            out = future.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker, a cancelled task, a broken connection
            rec = failed_record(job, f"the Dask worker running the job was lost: {type(exc).__name__}: {exc}", None, parent_partial(job))
            rec["retries"] = max(0, self._starts(job) - 1)
            write_failed(job, rec)
            return rec
        finally:
            with self._lock:
                self._futures.pop(job.run_id, None)
                self._heartbeats.pop(job.run_id, None)
        return self._write(job, out)

    def _starts(self, job: Job) -> int:
        try:
            return len(self.client.get_events(_START_TOPIC + job.run_id))
        except Exception:  # noqa: BLE001 - events are informative only
            return 1

    def _write(self, job: Job, out: dict[str, Any]) -> dict[str, Any]:
        """Write what a worker sent back, as the driver's own record (and weights, and log)."""
        rec = dict(out["record"])
        rec["executor"] = {"kind": "dask", "worker": out.get("worker")}
        rec["retries"] = max(0, self._starts(job) - 1)  # times Dask restarted it after losing a worker
        log_dir = Path(job.results_dir) / "logs"
        if out.get("log"):
            write_bytes_atomic(log_dir / (job.record_path.stem + ".log"), (str(out["log"]) + "\n").encode("utf-8"))
        if rec["status"] != "ok" or out.get("weights") is None:
            if rec["status"] == "ok":
                rec = failed_record(job, "the worker returned an ok record without its weights", None, parent_partial(job))
            write_failed(job, rec)
            return rec
        path = weights_path(job.record_path)
        write_bytes_atomic(path, out["weights"])
        rec["weights"] = path.name
        write_record(job.results_dir, rec)
        return rec

    def cancel(self) -> None:
        with self._lock:
            futures = list(self._futures.values())
        if futures:
            self.client.cancel(futures, force=True)

    def shutdown(self) -> None:
        """Close the client, and the local cluster if this executor started one."""
        try:
            self.client.unsubscribe_topic(HEARTBEAT_TOPIC)
        except Exception:  # noqa: BLE001
            pass
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
