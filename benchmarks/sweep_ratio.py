"""The quick sweep of every model on every task, with --jobs 1 and --jobs 2, side by side.

    python benchmarks/sweep_ratio.py [--rounds 1] [--models all] [--tasks all]

Each round runs the same sweep (fresh results directories) once with ``--jobs 1`` and
once with ``--jobs 2``, alternating which goes first, and prints both wall times, their
ratio, and every job's fixed overhead (the job's wall time as the sweep measured it
minus its training and inference time), median and maximum. Targets on the 2-core
reference machine, quiet: the ``--jobs 2`` sweep in 150 s or less, the median fixed
overhead 2 s or less. Also times ``odebench --help`` (target: 0.5 s or less, median of
five runs).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LINE = re.compile(r"^\[\d+/\d+\] (?P<label>.+?): ok .*train=(?P<train>[\d.]+)s .*\((?P<wall>[\d.]+) s")


def _sweep(jobs: int, models: str, tasks: str) -> tuple[float, list[float], int]:
    with tempfile.TemporaryDirectory(prefix="odebench-sweep-") as results:
        cmd = [sys.executable, "-m", "odebench.cli", "run", "--model", models, "--task", tasks, "--profile", "quick", "--results", results, "--jobs", str(jobs)]
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode not in (0, 1):
            raise SystemExit(f"sweep failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        overheads = _overheads(Path(results), proc.stderr)
        n = sum(1 for line in proc.stderr.splitlines() if line.startswith("["))
    return wall, overheads, n


def _overheads(results: Path, log: str) -> list[float]:
    """Per job: the sweep's wall time of the job minus its train and inference seconds."""
    import json

    walls: dict[str, float] = {}
    for line in log.splitlines():
        m = _LINE.match(line)
        if m:
            walls[m.group("label")] = float(m.group("wall"))
    out = []
    for path in results.glob("*.json"):
        rec = json.loads(path.read_text())
        if rec["status"] != "ok":
            continue
        label = f"{rec['task']['name']} {rec['model']['name']} seed={rec['seed']}"
        if label in walls:
            out.append(walls[label] - rec["cost"]["train_seconds"] - rec["cost"]["infer_seconds"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--models", default="all")
    parser.add_argument("--tasks", default="all")
    args = parser.parse_args()
    helps = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "odebench.cli", "--help"], capture_output=True, check=True)
        helps.append(time.perf_counter() - started)
    print(f"odebench --help: median {statistics.median(helps):.3f} s over 5 runs (target <= 0.5 s)")
    for r in range(args.rounds):
        order = (1, 2) if r % 2 == 0 else (2, 1)
        walls: dict[int, float] = {}
        for jobs in order:
            wall, overheads, n = _sweep(jobs, args.models, args.tasks)
            walls[jobs] = wall
            med = statistics.median(overheads) if overheads else float("nan")
            print(f"round {r + 1}: --jobs {jobs}: {n} jobs in {wall:.1f} s; fixed overhead per job median {med:.2f} s, max {max(overheads, default=float('nan')):.2f} s")
        print(f"round {r + 1}: ratio --jobs 2 / --jobs 1 = {walls[2] / walls[1]:.2f} (target: --jobs 2 sweep <= 150 s)")


if __name__ == "__main__":
    main()
