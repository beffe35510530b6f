"""Live feedback for sweeps: job heartbeats, an ETA from the work left, and a final table.

A job prints a heartbeat line (:data:`HEARTBEAT_PREFIX` then JSON) at least every
:func:`heartbeat_seconds` while it runs: its phase, the step it is at out of the
protocol's budget, the latest validation loss and the time since it started. The line
lands in the job's log, and the sweep that runs the job forwards it to its own stderr in
readable form, with the sweep's ETA. The ETA comes from the work left — the protocol
steps of the jobs not yet finished, less the steps the running ones report — divided by
the rate at which this sweep has got through steps so far, not from an average of the
(often skipped or quick) jobs finished.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = [
    "HEARTBEAT_PREFIX",
    "HEARTBEAT_ENV",
    "heartbeat_seconds",
    "Heartbeat",
    "parse_heartbeat",
    "format_heartbeat",
    "SweepProgress",
    "format_duration",
    "results_table",
]

HEARTBEAT_PREFIX = "[odebench heartbeat] "
HEARTBEAT_ENV = "ODEBENCH_HEARTBEAT_S"


def heartbeat_seconds() -> float:
    """Seconds between heartbeats: ``$ODEBENCH_HEARTBEAT_S`` or 30 (at most 30)."""
    try:
        value = float(os.environ.get(HEARTBEAT_ENV, "30"))
    except ValueError:
        value = 30.0
    return min(30.0, value) if value > 0 else 30.0


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class Heartbeat:
    """The state of a running job, printed as a heartbeat line every ``interval`` seconds."""

    def __init__(self, label: str, interval: float | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.interval = heartbeat_seconds() if interval is None else interval
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.state: dict[str, Any] = {"phase": "setup", "step": 0, "max_steps": None, "val_loss": None}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def update(self, **state: Any) -> None:
        self.state.update(state)

    def beat(self) -> None:
        payload = {"label": self.label, **self.state, "elapsed_s": round(time.monotonic() - self.started, 1)}
        self.stream.write(HEARTBEAT_PREFIX + json.dumps(payload) + "\n")
        self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    @contextmanager
    def running(self) -> Iterator[Heartbeat]:
        self.beat()
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def parse_heartbeat(line: str) -> dict[str, Any] | None:
    """The payload of a heartbeat line, or ``None`` for any other line."""
    if not line.startswith(HEARTBEAT_PREFIX):
        return None
    try:
        payload = json.loads(line[len(HEARTBEAT_PREFIX) :])
    except json.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def format_heartbeat(beat: Mapping[str, Any], eta_s: float | None = None) -> str:
    """A heartbeat as one readable line."""
    parts = [str(beat.get("phase", "running"))]
    if beat.get("max_steps"):
        parts.append(f"step {beat.get('step', 0)}/{beat['max_steps']}")
    if isinstance(beat.get("val_loss"), (int, float)):
        parts.append(f"val loss {beat['val_loss']:.4g}")
    parts.append(f"{format_duration(float(beat.get('elapsed_s', 0.0)))} elapsed")
    if eta_s is not None:
        parts.append(f"sweep ETA {format_duration(eta_s)}")
    return f"  … {beat.get('label', '?')}: " + ", ".join(parts)


@dataclass
class SweepProgress:
    """Work done and left in protocol steps; thread-safe."""

    started: float = field(default_factory=time.monotonic)
    budget: dict[str, int] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, steps: int) -> None:
        with self._lock:
            self.budget[key] = max(1, int(steps))
            self.done.setdefault(key, 0)

    def report(self, key: str, step: int) -> None:
        with self._lock:
            if key in self.budget:
                self.done[key] = min(self.budget[key], max(self.done.get(key, 0), int(step)))

    def finish(self, key: str) -> None:
        with self._lock:
            if key in self.budget:
                self.done[key] = self.budget[key]

    def drop(self, key: str) -> None:
        """A job that was skipped: its work is neither done nor left."""
        with self._lock:
            self.budget.pop(key, None)
            self.done.pop(key, None)

    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far; ``None`` until some work is done."""
        with self._lock:
            total, done = sum(self.budget.values()), sum(self.done.values())
        elapsed = time.monotonic() - self.started
        if done <= 0 or elapsed <= 0:
            return None
        return (total - done) * elapsed / done


def _main_score(rec: Mapping[str, Any]) -> str:
    if rec.get("status") != "ok":
        return "—"
    spec = rec.get("task", {}).get("spec") or {}
    key = spec.get("main_metric")
    value = rec.get("metrics", {}).get(key) if key else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"{key}=n/a" if key else "n/a"
    return f"{key}={value:.4g}"


def results_table(records: Sequence[Mapping[str, Any]], seconds: Callable[[Mapping[str, Any]], float | None] | None = None, width: int = 100) -> str:
    """The jobs a ``run`` finished, one line each, at most ``width`` columns wide."""
    rows = []
    for rec in records:
        cost = rec.get("cost") or {}
        t = seconds(rec) if seconds else None
        if t is None and isinstance(cost.get("train_seconds"), (int, float)):
            t = float(cost["train_seconds"]) + float(cost.get("infer_seconds") or 0.0)
        args = rec.get("model", {}).get("args") or {}
        model = str(rec.get("model", {}).get("name", "?")) + ("*" if args else "")
        status = "ok" if rec.get("status") == "ok" else "FAILED"
        rows.append([str(rec.get("task", {}).get("name", "?")), model, str(rec.get("seed", "?")), _main_score(rec), status, format_duration(t) if t is not None else "—"])
    headers = ["task", "model", "seed", "main score", "status", "time"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fixed = sum(w for i, w in enumerate(widths) if i != 1) + 2 * (len(headers) - 1)
    widths[1] = max(len(headers[1]), min(widths[1], width - fixed))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths)):
            cell = cell if len(cell) <= w else cell[: w - 1] + "…"
            out.append(cell.rjust(w) if i in (2, 5) else cell.ljust(w))
        return "  ".join(out).rstrip()

    lines = [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]
    if any(r[1].endswith("*") for r in rows):
        lines.append("* with --model-arg values (see the records)")
    return "\n".join(lines)
