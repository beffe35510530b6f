"""The L-BFGS phase on a record's trained weights, scored on the validation split before and after.

    python benchmarks/val_as_test.py VALDIR
    python benchmarks/finetune_probe.py leaderboard/results/lorenz-forecast__resnet__standard__seed0.json \
        --data-dir VALDIR [--window 201] [--windows 512] [--iters 200] [--threads 1]

Loads the record's model through the registry with its weights (a protocol-4 record
holds Adam's weights, the phase's starting point under protocol 5), runs
:func:`odebench.finetune.lbfgs_phase` with the given settings (kept or reverted by its
own validation check, as in a run) and prints one JSON line: the main
score on the data directory's test split (the validation split, from
``val_as_test.py``) before and after, and, for a chaotic task, the mean VPT over many
forecast starts, which is far less noisy than the 16 validation trajectories alone: each
validation trajectory is entered every ``--start-every`` samples and forecast over
``--horizon`` samples (lorenz-forecast: 7 starts × 16 trajectories, 10 time units, so
a VPT is capped at 9.1 Lyapunov times). This is how the README's protocol-5 search rows
were measured; nothing here reads the test split.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from odebench import registry
from odebench.finetune import lbfgs_phase
from odebench.jobs import load_task_data
from odebench.measure import set_threads
from odebench.metrics import nrmse_curve, valid_prediction_time
from odebench.nfe_guard import NFEGuard
from odebench.objectives import training_sigma
from odebench.protocol import protocol_for
from odebench.results import read_record
from odebench.training import _evaluate


def many_start_vpt(task, model, data, horizon: int, every: int) -> float:  # type: ignore[no-untyped-def]
    """Mean VPT (Lyapunov times) over forecasts entered every ``every`` samples of each test trajectory."""
    u = np.asarray(data.test.u, dtype=np.float32)
    if u.shape[1] <= horizon:
        raise ValueError(f"the trajectories have {u.shape[1]} samples, not more than the horizon of {horizon}")
    sigma = training_sigma(data, task)
    times = task.dt * np.arange(horizon + 1)
    t = torch.as_tensor(times, dtype=torch.float32)
    vpts: list[np.ndarray] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, u.shape[1] - horizon, every):
            truth = u[:, start : start + horizon + 1]
            pred = model(torch.as_tensor(truth[:, 0]), t).numpy()
            vpt, _ = valid_prediction_time(nrmse_curve(pred, truth, sigma), times, task.vpt_threshold, task.lyapunov_exponent)
            vpts.append(vpt)
    return float(np.mean(np.concatenate(vpts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", type=Path)
    parser.add_argument("--data-dir", required=True, help="a directory made by benchmarks/val_as_test.py")
    parser.add_argument("--window", type=int, default=201)
    parser.add_argument("--windows", type=int, default=512)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--horizon", type=int, default=1000, help="samples per forecast of the many-start VPT")
    parser.add_argument("--start-every", type=int, default=250, help="samples between the many-start VPT's starts")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    rec = read_record(args.record)
    task = registry.load_task(rec["task"]["name"])
    data, _, _ = load_task_data(task, args.data_dir)
    torch.manual_seed(int(rec["seed"]))
    model = registry.build_model(rec["model"]["name"], task, rec["model"].get("args") or {})
    model.load_state_dict(torch.load(args.record.with_name(str(rec["weights"])), map_location="cpu", weights_only=True))
    protocol = replace(protocol_for(task, "standard"), lbfgs_window=args.window, lbfgs_windows=args.windows, lbfgs_iters=args.iters)
    cpu = torch.device("cpu")
    main_metric = task.objective.main_metric(task)

    def scores() -> dict[str, float]:
        metrics, _, _ = _evaluate(task, model, data, protocol, cpu)
        out = {main_metric: float(metrics[main_metric])}
        if task.kind == "forecast" and task.lyapunov_exponent:
            out["vpt_many_starts"] = many_start_vpt(task, model, data, args.horizon, args.start_every)
        return out

    before = scores()
    facts = lbfgs_phase(task, model, data, protocol, cpu, int(rec["seed"]), NFEGuard(model, protocol.max_nfe_per_call))
    print(json.dumps({"record": args.record.name, "before": before, "after": scores(), "lbfgs": facts}))


if __name__ == "__main__":
    main()
