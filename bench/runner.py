"""Sweeps: plan jobs, skip the done ones, dispatch through an executor, never lose a record.

Executors take a :class:`~odebench.jobs.Job` and return its record. The local executor
runs every job in a fresh child process (``python -m odebench.worker``) with a timeout,
so a model that hangs, crashes the interpreter or eats the memory only fails its own
record. A later distributed engine plugs in as another :class:`Executor`.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .joblog import CappedLog, tail_lines
from .jobs import Job, failed_record, parent_partial, write_failed
from .protocol import protocol_for
from .registry import load_task
from .results import RecordError, read_record

__all__ = ["Executor", "LocalProcessExecutor", "plan_jobs", "SweepSummary", "run_sweep", "job_timeout", "describe_record"]


def job_timeout(job: Job) -> float:
    """The job's own timeout, or its profile's default."""
    if job.timeout_s is not None:
        return float(job.timeout_s)
    return protocol_for(load_task(job.task), job.profile).timeout_s


class Executor(ABC):
    """Runs one job to completion and returns its (already written) record."""

    @abstractmethod
    def run(self, job: Job) -> dict[str, Any]: ...


class LocalProcessExecutor(Executor):
    """One fresh child process per job, killed (with its whole process group) at the timeout."""

    def __init__(self, poll_s: float = 0.2) -> None:
        self.poll_s = poll_s

    def run(self, job: Job) -> dict[str, Any]:
        timeout = job_timeout(job)
        log_dir = Path(job.results_dir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / (job.record_path.stem + ".log")
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # The child must see the same intra-op thread count as the torch setting it applies.
        env["OMP_NUM_THREADS"] = str(job.threads)
        env["MKL_NUM_THREADS"] = str(job.threads)
        log = CappedLog(log_path)
        proc = subprocess.Popen(
            [sys.executable, "-m", "odebench.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        stdin, stdout = proc.stdin, proc.stdout
        if stdin is None or stdout is None:  # pragma: no cover - Popen was given PIPE for both
            raise RuntimeError("the worker was started without pipes")
        log.start(stdout)
        try:
            try:
                stdin.write(job.to_json().encode())
                stdin.close()
            except BrokenPipeError:  # the child died before reading its job
                pass
            code = proc.wait(timeout=timeout)
            reason = None if code == 0 else _exit_reason(code)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            reason = f"timed out after {timeout:g} s: the job's time limit (the profile's default, or --timeout)"
        finally:
            log.close()
            stdout.close()
        rec = self._child_record(job)
        if rec is not None:
            return rec
        rec = failed_record(job, reason or "worker exited without writing a record", tail_lines(log_path), parent_partial(job))
        write_failed(job, rec)
        return rec

    @staticmethod
    def _child_record(job: Job) -> dict[str, Any] | None:
        try:
            rec = read_record(job.record_path)
        except (RecordError, FileNotFoundError):
            return None
        return rec if rec.get("run_id") == job.run_id else None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _exit_reason(code: int) -> str:
    if code < 0:
        sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return f"worker killed by {sig}{hint}"
    return f"worker exited with code {code}"


def plan_jobs(models: Sequence[str], tasks: Sequence[str], seeds: Sequence[int], profile: str, results_dir: str | os.PathLike[str], **job_fields: Any) -> list[Job]:
    """Every (task, model, seed) combination, in a stable order: task, then model, then seed."""
    return [
        Job(task=t, model=m, seed=s, profile=profile, results_dir=str(results_dir), **job_fields)
        for t in tasks
        for m in models
        for s in seeds
    ]


@dataclass
class SweepSummary:
    done: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    busy: list[Job] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.done if r["status"] != "ok"]


def _has_ok_record(job: Job) -> bool:
    try:
        return read_record(job.record_path)["status"] == "ok"
    except (RecordError, FileNotFoundError):
        return False


class _JobLock:
    """An O_EXCL lock file so two sweeps on one results directory never run the same job twice."""

    def __init__(self, job: Job) -> None:
        self.path = job.record_path.with_name("." + job.record_path.name + ".lock")

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self._stale():
                    try:
                        self.path.unlink()
                    except FileNotFoundError:
                        pass
                    continue
                return False
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return True
        return False

    def _stale(self) -> bool:
        try:
            pid = int(self.path.read_text().strip() or "0")
        except (OSError, ValueError):
            return True
        if pid <= 0:
            return True
        try:
            os.kill(pid, 0)
        except OSError as exc:
            return exc.errno == errno.ESRCH
        return False

    def release(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def describe_record(rec: dict[str, Any]) -> str:
    """One line about a finished job: its main score (named by the record's own spec) and costs."""
    if rec["status"] != "ok":
        return f"FAILED: {rec['error']}"
    main = str((rec["task"].get("spec") or {}).get("main_metric", ""))
    value = rec["metrics"].get(main)
    score = f"{main}={value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else f"{main or 'main score'}=n/a"
    return f"ok {score} train={rec['cost']['train_seconds']:.1f}s nfe_f={rec['cost']['nfe_forward']:.4g}"


def run_sweep(jobs: Iterable[Job], executor: Executor | None = None, force: bool = False, log: Callable[[str], None] | None = None, progress: bool | None = None) -> SweepSummary:
    """Run ``jobs`` one after another; resume by skipping jobs that already have an ``ok`` record.

    ``force`` reruns them. A job another sweep is running (its lock is held by a live
    process) is left to that sweep. Every finished job is logged as one line.
    """
    executor = executor or LocalProcessExecutor()
    jobs = list(jobs)
    summary = SweepSummary()
    emit = log or (lambda line: tqdm.write(line, file=sys.stderr))
    bar = tqdm(total=len(jobs), file=sys.stderr, disable=(not sys.stderr.isatty()) if progress is None else not progress, unit="job")
    try:
        for i, job in enumerate(jobs, 1):
            lock = _JobLock(job)
            if not lock.acquire():
                summary.busy.append(job)
                emit(f"[{i}/{len(jobs)}] busy {job.label}: another sweep is running it")
                bar.update(1)
                continue
            try:
                # Checked under the lock, so a job another sweep just finished is not run again.
                if not force and _has_ok_record(job):
                    summary.skipped.append(job)
                    emit(f"[{i}/{len(jobs)}] skip {job.label}: an ok record exists (use --force to rerun)")
                    bar.update(1)
                    continue
                started = time.perf_counter()
                rec = executor.run(job)
            finally:
                lock.release()
            summary.done.append(rec)
            emit(f"[{i}/{len(jobs)}] {job.label}: {describe_record(rec)} ({time.perf_counter() - started:.1f} s)")
            bar.update(1)
    finally:
        bar.close()
    return summary
