"""Child-process entry point: ``python -m odebench.worker`` reads one job (JSON) on stdin.

A worker imports everything a job needs *before* it reads its job, so the local executor
can start spare workers ahead of time and hand each one exactly one job: a fresh
process per job as before, without its start-up in the job's wall time.

It runs the job with :func:`odebench.jobs.execute_job`, which writes the record. The
parent kills the whole process group at the timeout; on Linux the child also dies with
its parent (``PR_SET_PDEATHSIG``), so a sweep killed with SIGKILL leaves no orphan that
would write a record later.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def die_with_parent() -> None:
    """On Linux, have the kernel kill this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _limit_memory(max_bytes: int) -> None:
    """Cap the address space (CPU runs only: a CUDA context reserves far more than it uses)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def warm_up() -> None:
    """Import now what every job needs, so a spare worker is ready when its job arrives.

    The harness's own Adam (:mod:`odebench.optim`) spares every worker the 2 s import of
    torch's compiler front end that constructing ``torch.optim.Adam`` costs. Nothing here
    touches a random state.
    """
    import torch  # noqa: F401 - imported for its import cost

    # For their import cost: toolkit pulls in torchdiffeq and scipy, baselines are the
    # built-in models most jobs load, tasks.specs the built-in tasks every job loads.
    from . import baselines, data, jobs, optim, registry, toolkit  # noqa: F401
    from .tasks import specs  # noqa: F401


def main() -> int:
    die_with_parent()
    from .jobs import Job, execute_job

    warm_up()
    text = sys.stdin.read()
    if not text.strip():  # a spare worker the sweep did not need
        return 0
    job = Job.from_json(text)
    if job.max_memory_bytes:
        from .measure import resolve_device

        if resolve_device(job.device).type == "cpu":
            _limit_memory(job.max_memory_bytes)
    rec = execute_job(job)
    print(f"{job.label}: {rec['status']}" + (f" ({rec['error']})" if rec["error"] else ""))
    return 0


def exit_now(code: int) -> None:
    """Flush the output and leave without the interpreter's teardown.

    The record is already on disk (written atomically), and tearing down torch, h5py
    and the module graph costs about 0.5 s a job for nothing: the process ends anyway.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
