"""Run odebench's CUDA paths on a CUDA machine and print the figures.

    python benchmarks/gpu_check.py [--out DIR] [--profile quick]

1. the tests marked ``gpu`` (synchronised timing, peak GPU memory per phase);
2. a short sweep of the baselines on CUDA through the real CLI;
3. a table of the measured costs from the sweep's records.

It exits non-zero if CUDA is missing, a gpu test fails or a job fails, so a CUDA path
is never reported as tested when it was not.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

MODELS = "resnet,lm-resnet,neural-ode,persistence,majority"
TASKS = "lorenz-forecast,ks-forecast,heat-classify"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None, help="results directory (default: a temporary one)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--tasks", default=TASKS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device; nothing was tested", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device {torch.cuda.get_device_name(0)}", flush=True)

    root = Path(__file__).resolve().parents[1]
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", str(root / "tests" / "test_gpu.py")], cwd=root)
    print(f"gpu tests exit code: {tests.returncode}", flush=True)

    out = Path(args.out or tempfile.mkdtemp(prefix="odebench-gpu-"))
    sweep = subprocess.run(
        [sys.executable, "-m", "odebench.cli", "run", "--model", args.models, "--task", args.tasks, "--seeds", "0", "--profile", args.profile, "--device", "cuda", "--results", str(out)],
        cwd=root,
    )
    print(f"sweep exit code: {sweep.returncode}", flush=True)

    from odebench.results import read_records

    records, skipped = read_records(out)
    rows = []
    for r in sorted(records, key=lambda r: (r["task"]["name"], r["model"]["name"])):
        c = r["cost"]
        if r["status"] != "ok":
            rows.append(f"{r['task']['name']:<16} {r['model']['name']:<12} FAILED {r['error']}")
            continue
        mib = lambda b: "-" if b is None else f"{b / 2**20:.1f}"  # noqa: E731
        rows.append(
            f"{r['task']['name']:<16} {r['model']['name']:<12} {r['env']['device_name'][:20]:<20} train {c['train_seconds']:7.2f}s "
            f"infer {c['infer_seconds']:7.3f}s  gpu-peak train {mib(c['peak_gpu_bytes_train'])} MiB infer {mib(c['peak_gpu_bytes_infer'])} MiB  "
            f"nfe_f {c['nfe_forward']:.1f} nfe_b {c['nfe_backward']:.1f} params {c['params']}"
        )
    print("\n".join(rows))
    for s in skipped:
        print(f"skipped {s.path}: {s.reason}")
    return 0 if tests.returncode == 0 and sweep.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
