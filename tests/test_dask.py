"""The Dask executor against a real cluster: a scheduler and two workers as separate processes.

Every address is on the loopback interface; the fixture starts the processes and stops
them. Records and weights travel back to the driver, which alone writes them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

distributed = pytest.importorskip("distributed")

from odebench.cli import main  # noqa: E402
from odebench.jobs import weights_path  # noqa: E402
from odebench.results import read_records  # noqa: E402

TASK = "lorenz-forecast"


def _dask() -> list[str]:
    exe = shutil.which("dask", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "distributed.cli.dask_spec"]


def _scheduler_address(path: Path) -> str | None:
    """The address in a Dask scheduler file, or None while it is missing or half-written."""
    try:
        return str(json.loads(path.read_text())["address"])
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture
def cluster(tmp_path: Path, fake_models) -> Iterator[str]:
    """tcp://127.0.0.1:PORT of a scheduler with two single-thread workers (no nanny)."""
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([*_dask(), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        address = _scheduler_address(scheduler_file)
        while address is None and time.monotonic() < deadline:  # the file appears before it is written
            time.sleep(0.1)
            address = _scheduler_address(scheduler_file)
        assert address is not None, "the Dask scheduler wrote no address within 60 s"
        assert address.startswith("tcp://127.0.0.1:")
        for i in range(2):
            procs.append(subprocess.Popen([*_dask(), "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def test_a_sweep_through_a_dask_cluster_writes_every_record_on_the_driver(cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    argv = ["run", "--model", "fake-ok,persistence", "--task", TASK, "--seeds", "0,1", "--profile", "quick", "--results", str(results), "--executor", "dask", "--scheduler", cluster]
    assert main(argv) == 0
    records, skipped = read_records(results)
    assert not skipped and len(records) == 4 and all(r["status"] == "ok" for r in records)
    workers = {r["executor"]["worker"] for r in records}
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers)
    for rec in records:
        path = results / rec["weights"]
        assert path == weights_path(next(results.glob(path.stem + ".json"))) and isinstance(torch.load(path, weights_only=True), dict)
    assert len(list((results / "logs").glob("*.log"))) == 4
    assert main(argv) == 0  # resume: everything is skipped by the driver
    assert "skip" in capsys.readouterr().err and len(list(results.glob("*.json"))) == 4


def test_a_worker_killed_mid_job_loses_no_record_and_duplicates_none(cluster: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    argv = ["run", "--model", "fake-slow", "--task", TASK, "--profile", "quick", "--results", str(results), "--executor", "dask", "--scheduler", cluster, "--model-arg", "pause=0.15"]
    done: list[int] = []
    sweep = threading.Thread(target=lambda: done.append(main(argv)))
    sweep.start()
    with distributed.Client(cluster, timeout=60) as client:
        pids = client.run(os.getpid)
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:
            # The job announces its start (and its worker) as a Dask event.
            starts = [msg for topic, events in client.get_events().items() if topic.startswith("odebench-start-") for _, msg in events]
            victim = starts[0]["worker"] if starts else None
            time.sleep(0.2)
        assert victim is not None, "the job never started"
        time.sleep(1.0)  # well inside the job's ~6 s of training
        os.kill(pids[victim], signal.SIGKILL)
    sweep.join(timeout=180)
    assert not sweep.is_alive() and done
    files = list(results.glob("*.json"))
    assert len(files) == 1
    rec = json.loads(files[0].read_text())
    # Dask reran the task on the surviving worker: the record says so; or it gave up: a failed record says why.
    if rec["status"] == "ok":
        assert rec["retries"] == 1 and rec["executor"]["worker"] != victim
    else:
        assert "worker" in rec["error"] and "lost" in rec["error"]
