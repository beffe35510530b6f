"""Measurements the harness owns: clocks, peak memory, thread pinning and the environment.

Timing synchronises CUDA at both boundaries so asynchronous kernels are counted in the
phase that launched them. Peak CPU memory is the kernel's own high-water mark of the
job's process (``VmHWM``); the job runs in a fresh child, so the figure is the job's.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "resolve_device",
    "set_threads",
    "synchronize",
    "Stopwatch",
    "peak_rss_bytes",
    "GpuPeak",
    "cpu_model",
    "git_state",
    "environment",
    "cuda_device_count",
]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available else CPU; ``cuda`` (or ``cuda:N``) without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name} was asked for but torch sees no CUDA device; use --device cpu or auto")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA device(s)")
        return device
    raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")


def cuda_device_count() -> int:
    """GPUs this process could use (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def set_threads(n: int) -> int:
    """Pin torch's intra-op threads (1 by default: shared 2-core machines slow down ~300× otherwise)."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    return torch.get_num_threads()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Accumulates the wall time of the phases it is used around, CUDA-synchronised."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = 0.0

    @contextmanager
    def running(self) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds += time.perf_counter() - start


def peak_rss_bytes() -> int | None:
    """The process's peak resident set size (VmHWM) in bytes, or None where /proc is absent.

    ``ru_maxrss`` is not used: in a spawned child it can carry the parent's peak.
    """
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            return int(value) * {"kB": 1024, "mB": 1024**2, "gB": 1024**3}.get(unit, 1)
    return None


class GpuPeak:
    """Peak allocated CUDA memory of one phase (``None`` on CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes: int | None = None

    @contextmanager
    def tracking(self) -> Iterator[None]:
        if self.device.type != "cuda":
            yield
            return
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        try:
            yield
        finally:
            torch.cuda.synchronize(self.device)
            self.bytes = int(torch.cuda.max_memory_allocated(self.device))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(path: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout odebench runs from, or (None, None) if not a checkout."""
    path = path or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def environment(device: torch.device) -> dict[str, Any]:
    """What a reader needs to know about where a number came from."""
    commit, dirty = git_state()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    cpu = cpu_model()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "device": device.type,
        "device_index": (device.index if device.index is not None else 0) if device.type == "cuda" else None,
        "device_name": gpu or cpu,
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "git_commit": commit,
        "git_dirty": dirty,
    }
