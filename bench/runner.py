"""Sweeps: plan jobs, skip the done ones, dispatch through an executor, never lose a record.

Executors take a :class:`~odebench.jobs.Job` and return its record. The local executor
runs every job in a fresh child process (``python -m odebench.worker``) with a timeout,
so a model that hangs, crashes the interpreter or eats the memory only fails its own
record. A later distributed engine plugs in as another :class:`Executor`.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .joblog import CappedLog, tail_lines
from .jobs import Job, failed_record, parent_partial, write_failed
from .progress import SweepProgress, format_duration, format_heartbeat, parse_heartbeat
from .protocol import protocol_for
from .registry import load_task
from .results import RecordError, read_record

__all__ = ["Executor", "SweepCancelled", "LocalProcessExecutor", "plan_jobs", "SweepSummary", "run_sweep", "job_timeout", "describe_record", "spawn_child", "kill_group", "exit_reason"]


def job_timeout(job: Job) -> float:
    """The job's own timeout, or its profile's default."""
    if job.timeout_s is not None:
        return float(job.timeout_s)
    return protocol_for(load_task(job.task), job.profile).timeout_s


#: Called with each heartbeat a running job reports (see :mod:`odebench.progress`).
OnHeartbeat = Callable[[dict[str, Any]], None]


class Executor(ABC):
    """Runs one job to completion and returns its (already written) record.

    ``run`` may be called from several threads at once (``run_sweep(parallel=N)``).
    """

    @abstractmethod
    def run(self, job: Job, on_heartbeat: OnHeartbeat | None = None) -> dict[str, Any]: ...

    def cancel(self) -> None:  # noqa: B027 - optional: executors without running jobs need nothing
        """Stop every running job without writing records (the sweep was interrupted)."""

    def warm(self, spares: int) -> None:  # noqa: B027 - optional
        """Get ready to run ``spares`` jobs at once (e.g. start workers ahead of need)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release what :meth:`warm` started; the executor may be used again afterwards."""


class SweepCancelled(Exception):
    """A job was stopped because its sweep was interrupted; it has no record."""


class LocalProcessExecutor(Executor):
    """One fresh child process per job, killed (with its whole process group) at the timeout.

    Workers are started ``spares`` ahead of need (per thread count): each one imports
    torch and the harness while the previous job runs, then takes exactly one job, so
    no process ever runs two jobs and a job's wall time does not include the start-up.
    """

    def __init__(self, poll_s: float = 0.2, spares: int = 1, gpus: int | None = None) -> None:
        self.poll_s = poll_s
        self.spares = max(0, spares)
        self._gpus = gpus  # None: counted when a CUDA job first needs it
        self._gpu_load: dict[int, int] = {}
        self._live: set[subprocess.Popen[bytes]] = set()
        self._idle: dict[int, list[subprocess.Popen[bytes]]] = {}
        self._lock = threading.Lock()
        self._cancelled = False

    def warm(self, spares: int) -> None:
        """Keep ``spares`` idle workers ready: as many as jobs the sweep will still start soon.

        Lowering it stops the extra idle workers, so none is left importing for nothing.
        """
        self.spares = max(0, spares)
        with self._lock:
            extra = [p for procs in self._idle.values() for p in procs[self.spares :]]
            for threads in self._idle:
                del self._idle[threads][self.spares :]
        for proc in extra:
            kill_group(proc)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            live = list(self._live)
        for proc in live:
            kill_group(proc)
        self.close()

    def close(self) -> None:
        """Stop the idle spare workers (they hold no job)."""
        with self._lock:
            idle = [p for procs in self._idle.values() for p in procs]
            self._idle.clear()
        for proc in idle:
            kill_group(proc)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()

    @staticmethod
    def _spawn(threads: int) -> subprocess.Popen[bytes]:
        return spawn_child("odebench.worker", threads)

    def _take(self, threads: int) -> subprocess.Popen[bytes]:
        """A started worker for ``threads``: a live spare if one is ready, else a new one; then top up."""
        with self._lock:
            idle = self._idle.setdefault(threads, [])
            proc = None
            while idle and proc is None:
                candidate = idle.pop(0)
                if candidate.poll() is None:
                    proc = candidate
            if proc is None:
                proc = self._spawn(threads)
            self._live.add(proc)
            while len(idle) < self.spares and not self._cancelled:
                idle.append(self._spawn(threads))
        return proc

    def place(self, job: Job) -> tuple[Job, int | None]:
        """Spread CUDA jobs over the GPUs: the least busy one, as ``cuda:N`` (one device per job).

        Returns the job to run and the GPU taken (``None``: not a multi-GPU CUDA job).
        """
        if job.device not in ("auto", "cuda"):
            return job, None
        if self._gpus is None:
            from .measure import cuda_device_count

            self._gpus = cuda_device_count()
        if self._gpus < 2:
            return job, None
        with self._lock:
            index = min(range(self._gpus), key=lambda i: (self._gpu_load.get(i, 0), i))
            self._gpu_load[index] = self._gpu_load.get(index, 0) + 1
        return dataclasses.replace(job, device=f"cuda:{index}"), index

    def _release_gpu(self, index: int | None) -> None:
        if index is not None:
            with self._lock:
                self._gpu_load[index] -= 1

    def run(self, job: Job, on_heartbeat: OnHeartbeat | None = None) -> dict[str, Any]:
        placed, gpu = self.place(job)
        try:
            return self._run(placed, on_heartbeat)
        finally:
            self._release_gpu(gpu)

    def _run(self, job: Job, on_heartbeat: OnHeartbeat | None = None) -> dict[str, Any]:
        timeout = job_timeout(job)
        log_dir = Path(job.results_dir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / (job.record_path.stem + ".log")

        def on_line(line: str) -> None:
            beat = parse_heartbeat(line)
            if beat is not None and on_heartbeat is not None:
                on_heartbeat(beat)

        log = CappedLog(log_path, on_line=on_line)
        proc = self._take(job.threads)
        with self._lock:
            if self._cancelled:
                kill_group(proc)
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
            reason = None if code == 0 else exit_reason(code)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            reason = f"timed out after {timeout:g} s: the job's time limit (the profile's default, or --timeout)"
        finally:
            log.close()
            stdout.close()
            with self._lock:
                self._live.discard(proc)
        if self._cancelled:
            raise SweepCancelled(job.label)
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


def spawn_child(module: str, threads: int) -> subprocess.Popen[bytes]:
    """``python -m module`` in its own session (so :func:`kill_group` reaches all it starts),
    stdin and stdout piped, stderr into stdout, with ``threads`` intra-op threads."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The child must see the same intra-op thread count as the torch setting it applies.
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    return subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child started in its own session, with everything it started, and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def exit_reason(code: int, who: str = "worker") -> str:
    """Why a child process ended, from its return code (a negative code is the signal)."""
    if code < 0:
        sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return f"{who} killed by {sig}{hint}"
    return f"{who} exited with code {code}"


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
    seconds: dict[str, float] = field(default_factory=dict)  # run_id -> wall seconds of the job

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.done if r["status"] != "ok"]


def _ok_record(job: Job) -> dict[str, Any] | None:
    """The job's record if it exists and is ``ok``, else ``None``."""
    try:
        rec = read_record(job.record_path)
    except (RecordError, FileNotFoundError):
        return None
    return rec if rec["status"] == "ok" else None


def _skip_reason(rec: dict[str, Any], job: Job) -> str:
    """Why an ok record is kept rather than rerun, saying so when it was made under another
    protocol version than the installed one: resuming keeps it (nothing written is lost),
    but the leaderboard will not rank it with the runs made now."""
    made = str((rec.get("protocol") or {}).get("version"))
    try:
        current = str(protocol_for(load_task(job.task), job.profile).version)
    except Exception:  # noqa: BLE001 - the task is reported by the jobs that run it
        current = made
    if made != current:
        return (
            f"skip {{label}}: an ok record made under protocol v{made} exists, but this odebench trains under v{current}; "
            "it is kept and ranked apart (use --force to rerun it, or another --results directory)"
        )
    return "skip {label}: an ok record exists (use --force to rerun)"


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


def _budget(job: Job) -> int:
    """The protocol's step budget of ``job`` (1 when its task cannot be loaded)."""
    try:
        return int(protocol_for(load_task(job.task), job.profile).max_steps)
    except Exception:  # noqa: BLE001 - the job itself will report a task that fails to load
        return 1


def run_sweep(
    jobs: Iterable[Job],
    executor: Executor | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    progress: bool | None = None,
    parallel: int = 1,
) -> SweepSummary:
    """Run ``jobs``, ``parallel`` at a time; resume by skipping jobs that already have an ``ok`` record.

    ``force`` reruns them. A job another sweep is running (its lock is held by a live
    process) is left to that sweep. A line is logged when each job starts (with its step
    budget), for each heartbeat it sends (with the sweep's ETA from the steps left), and
    when it ends. A failed job never stops the others.
    """
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    executor = executor or LocalProcessExecutor()
    jobs = list(jobs)
    summary = SweepSummary()
    emit_lock = threading.Lock()
    bar = tqdm(total=len(jobs), file=sys.stderr, disable=(not sys.stderr.isatty()) if progress is None else not progress, unit="job")

    def emit(line: str) -> None:
        with emit_lock:
            if log is not None:
                log(line)
            else:
                tqdm.write(line, file=sys.stderr)

    work = SweepProgress()
    budgets = {job.run_id: _budget(job) for job in jobs}
    for job in jobs:
        work.add(job.run_id, budgets[job.run_id])
    counter = iter(range(1, len(jobs) + 1))
    counter_lock = threading.Lock()

    def eta() -> str:
        left = work.eta_seconds()
        return "" if left is None else f", sweep ETA {format_duration(left)}"

    def not_run(job: Job, bucket: list[Job], why: str) -> None:
        work.drop(job.run_id)
        with counter_lock:
            i = next(counter)
        bucket.append(job)
        emit(f"[{i}/{len(jobs)}] {why.format(label=job.label)}")
        bar.update(1)

    def one(job: Job) -> None:
        started_one()
        lock = _JobLock(job)
        if not lock.acquire():
            not_run(job, summary.busy, "busy {label}: another sweep is running it")
            return
        try:
            # Checked under the lock, so a job another sweep just finished is not run again.
            existing = None if force else _ok_record(job)
            if existing is not None:
                not_run(job, summary.skipped, _skip_reason(existing, job))
                return
            emit(f"start {job.label}: budget {budgets[job.run_id]} steps")

            def on_heartbeat(beat: dict[str, Any]) -> None:
                if isinstance(beat.get("step"), int):
                    work.report(job.run_id, beat["step"])
                emit(format_heartbeat(beat, work.eta_seconds()))

            started = time.perf_counter()
            rec = executor.run(job, on_heartbeat)
        finally:
            lock.release()
        work.finish(job.run_id)
        with counter_lock:
            i = next(counter)
        summary.done.append(rec)
        summary.seconds[job.run_id] = time.perf_counter() - started
        emit(f"[{i}/{len(jobs)}] {job.label}: {describe_record(rec)} ({time.perf_counter() - started:.1f} s{eta()})")
        bar.update(1)

    not_started = [len(jobs)]

    def started_one() -> None:
        """Spares for the jobs still to start, at most one per parallel slot."""
        with counter_lock:
            not_started[0] -= 1
            executor.warm(min(parallel, not_started[0]))

    try:
        if parallel == 1:
            for job in jobs:
                one(job)
        else:
            pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="odebench-job")
            try:
                for future in [pool.submit(one, job) for job in jobs]:
                    future.result()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                executor.cancel()
                raise
            finally:
                pool.shutdown(wait=True)
    finally:
        executor.close()
        bar.close()
    return summary
