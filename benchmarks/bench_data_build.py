"""Time ``odebench data build`` (all six tasks), fresh test splits, and the Lorenz generator against DOP853.

Run as ``python benchmarks/bench_data_build.py [--runs 3] [--jobs N] [--subset 4]``.

* The full build: ``odebench data build --data-dir <scratch>`` as a user runs it, whole
  process (start-up and imports included), ``--runs`` times; prints every run's wall time,
  the median, and the per-file generation times of the median run. Target on the 2-core
  machine, quiet: median <= 15 s.
* A fresh test split (``--test-seed``) of every task, generated alone. Target: <= 10 s each.
* For the comparison, ``--subset`` trajectories of the Lorenz forecast test split are
  integrated one by one with ``scipy.integrate.solve_ivp(method="DOP853",
  rtol=1e-12, atol=1e-12)`` over the same transient and horizon, and the time is
  extrapolated linearly to the whole split. The same solves measure how closely the
  stored data follow the flow from their stored initial states (nRMSE at the end).

Generation runs on one thread per process (set below, before numpy is imported).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

from odebench.data import load_split  # noqa: E402
from odebench.tasks.fresh import fresh_test_split  # noqa: E402
from odebench.tasks.lorenz import LORENZ_FORECAST, RECIPES  # noqa: E402
from odebench.tasks.specs import ALL_RECIPES  # noqa: E402
from odebench.tasks.systems.lorenz import lorenz_initial_states, lorenz_rhs  # noqa: E402


def _dop853(u0: np.ndarray, duration: float, t_eval: np.ndarray | None = None) -> np.ndarray:
    sol = solve_ivp(lambda t, s: lorenz_rhs(s), (0.0, duration), u0, method="DOP853", rtol=1e-12, atol=1e-12, t_eval=t_eval)
    return sol.y.T


def _cli_build(scratch: str, jobs: int | None) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "odebench.cli", "data", "build", "--data-dir", scratch]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"data build failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return wall, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="full builds to time (default 3)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes of the build (default: the build's own, all cores)")
    parser.add_argument("--subset", type=int, default=4, help="Lorenz test trajectories solved with DOP853 (default 4)")
    args = parser.parse_args()
    print(f"threads per process: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, cores: {os.cpu_count()}")

    runs = []
    for i in range(max(1, args.runs)):
        with tempfile.TemporaryDirectory(prefix="odebench-bench-") as scratch:
            wall, report = _cli_build(scratch, args.jobs)
        runs.append((wall, report))
        print(f"full build, run {i + 1}: {wall:.1f} s wall (whole command)")
    walls = [w for w, _ in runs]
    median = statistics.median(walls)
    print(f"full build: median {median:.1f} s over {len(walls)} runs (min {min(walls):.1f}, max {max(walls):.1f}); target <= 15 s")
    print("per-file times of the median run:")
    print(min(runs, key=lambda r: abs(r[0] - median))[1].rstrip())

    print("fresh test splits (generated alone, as --test-seed does), target <= 10 s each:")
    with tempfile.TemporaryDirectory(prefix="odebench-fresh-") as cache:
        for task in sorted(ALL_RECIPES):
            start = time.perf_counter()
            fresh_test_split(task, 90_001, cache)
            print(f"  {task}: {time.perf_counter() - start:.1f} s")

    with tempfile.TemporaryDirectory(prefix="odebench-bench-") as scratch:
        from odebench.tasks.build import build_recipes

        report = build_recipes({"lorenz-forecast": RECIPES["lorenz-forecast"]}, scratch)
        ours = next(row.seconds for row in report.rows if row.name == "lorenz-forecast.test.h5")
        test = load_split("lorenz-forecast", "test", scratch)

    plan = RECIPES["lorenz-forecast"].splits["test"]
    transient = float(LORENZ_FORECAST.parameters["transient"])
    k = max(1, min(args.subset, plan.n))
    rng = np.random.default_rng(0)
    boxes = lorenz_initial_states(rng, k, np.full(k, LORENZ_FORECAST.parameters["rho"]))
    sigma = test.u.reshape(-1, 3).std(axis=0)
    start = time.perf_counter()
    final_nrmse = []
    for i in range(k):
        _dop853(boxes[i], transient)  # the same work as the generator's transient
        ref = _dop853(test.u[i, 0].astype(np.float64), float(test.t[-1]), test.t)
        final_nrmse.append(float(np.sqrt(np.mean(((ref[-1] - test.u[i, -1]) / sigma) ** 2))))
    per_trajectory = (time.perf_counter() - start) / k
    dop = per_trajectory * plan.n
    horizon_lt = LORENZ_FORECAST.horizon * LORENZ_FORECAST.lyapunov_exponent
    print(
        f"lorenz-forecast test split ({plan.n} x {plan.n_times} samples + {transient:g} time units transient each):\n"
        f"  odebench generator (batched Taylor series): {ours:.2f} s\n"
        f"  solve_ivp DOP853 rtol=atol=1e-12, one trajectory at a time: {per_trajectory:.2f} s per trajectory "
        f"({k} solved), extrapolated to {plan.n}: {dop:.1f} s\n"
        f"  ratio DOP853 / odebench: {dop / ours:.0f}x\n"
        f"  nRMSE between DOP853 from the stored u0 and the stored data at {horizon_lt:.1f} Lyapunov times: "
        f"max {max(final_nrmse):.1e} (VPT threshold {LORENZ_FORECAST.vpt_threshold})"
    )


if __name__ == "__main__":
    main()
