"""The references: exact reproduces the stored data, perturbed-exact sits at the predictability
limit, physics-features classifies from fixed features, and all three run from the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from odebench.baselines.references import build_exact, build_perturbed_exact, build_physics_features
from odebench.cli import main
from odebench.data import load_split
from odebench.jobs import load_task_data
from odebench.metrics import nrmse_curve, valid_prediction_time
from odebench.objectives import training_sigma
from odebench.protocol import protocol_for
from odebench.registry import load_task
from odebench.spec import TaskSpec, UnsupportedTaskError
from odebench.training import train_and_evaluate

N_TRAJ = 8

torch.set_num_threads(1)  # as the harness runs a job; two threads on a busy 2-core machine crawl


def _forecast(name: str, build: object = build_exact, n: int = N_TRAJ, horizon: float | None = None) -> tuple[TaskSpec, np.ndarray, np.ndarray, np.ndarray]:
    """(task, prediction, stored test trajectories, training σ) over ``horizon`` time units."""
    task = load_task(name)
    data, _, _ = load_task_data(task)
    steps = data.test.u.shape[1] if horizon is None else int(round(horizon / task.dt)) + 1
    target = np.asarray(data.test.u[:n, :steps], dtype=np.float64)
    t = torch.as_tensor(data.times[:steps], dtype=torch.float32)  # as the harness passes it
    model = build(task)  # type: ignore[operator]
    with torch.no_grad():
        pred = model(torch.as_tensor(data.test.u[:n, 0]), t)
    assert pred.dtype == torch.float32 and pred.shape == target.shape
    return task, pred.numpy().astype(np.float64), target, training_sigma(data, task)


@pytest.mark.parametrize("name", ["heat-forecast", "lorenz-forecast"])
def test_exact_reproduces_the_stored_test_trajectories(name: str) -> None:
    task, pred, target, sigma = _forecast(name)
    curve = nrmse_curve(pred, target, sigma)
    assert np.all(curve <= 1e-2), curve.max()
    assert np.array_equal(pred[:, 0], target[:, 0])


FORECAST_TASKS = ["heat-forecast", "lorenz-forecast", "ks-forecast"]


@pytest.fixture(scope="module")
def ceiling_records(tmp_path_factory: pytest.TempPathFactory, fake_models_module: None) -> dict[tuple[str, str], dict]:
    """``exact`` and an offset model (exact + 0.1 σ) on every forecast task, through ``odebench run``
    on the leaderboard's profile: the whole test split of each."""
    out = tmp_path_factory.mktemp("ceilings")
    argv = ["run", "--model", "exact,fake-offset", "--task", ",".join(FORECAST_TASKS), "--profile", "standard", "--jobs", "2", "--results", str(out)]
    assert main(argv) == 0
    records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    return {(r["task"]["name"], r["model"]["name"]): r for r in records}


@pytest.mark.parametrize("name", FORECAST_TASKS)
def test_exact_scores_the_whole_horizon_on_every_forecast_task(ceiling_records: dict, name: str) -> None:
    rec = ceiling_records[(name, "exact")]
    task = TaskSpec.from_dict(rec["task"]["spec"])
    assert rec["status"] == "ok" and rec["task"]["version"] == load_task(name).version
    curves = np.array(rec["items"]["nrmse_curve"]["nrmse"], dtype=np.float64)
    assert curves.shape[0] == load_split(name, "test").u.shape[0]
    assert rec["items"]["nrmse_curve"]["t"][-1] == pytest.approx(task.horizon)
    assert curves[:, -1].max() <= 1e-2  # every test trajectory, at the horizon
    if task.lyapunov_exponent:
        horizon_lt = task.horizon * task.lyapunov_exponent
        assert rec["metrics"]["vpt_capped_fraction"] >= 0.99
        assert rec["metrics"]["vpt"] == pytest.approx(horizon_lt, rel=1e-9)


@pytest.mark.parametrize("name", FORECAST_TASKS)
def test_an_offset_of_a_tenth_sigma_reads_nrmse_0_1_at_every_time(ceiling_records: dict, name: str) -> None:
    rec = ceiling_records[(name, "fake-offset")]
    assert rec["status"] == "ok"
    curves = np.array(rec["items"]["nrmse_curve"]["nrmse"], dtype=np.float64)
    assert np.abs(curves - 0.1).max() <= 1e-3
    assert np.abs(np.array(rec["items"]["nrmse_mean"]) - 0.1).max() <= 1e-3
    assert rec["metrics"]["nrmse_mean"] == pytest.approx(0.1, abs=1e-3)


def test_exact_on_a_non_uniform_grid_matches_the_uniform_one() -> None:
    task = load_task("lorenz-forecast")
    u0 = torch.as_tensor(load_split("lorenz-forecast", "test").u[:2, 0])
    uniform = build_exact(task)(u0, torch.arange(101, dtype=torch.float32) * 0.01)
    picked = torch.tensor([0, 3, 4, 4, 50, 100])
    sparse = build_exact(task)(u0, picked.to(torch.float32) * 0.01)
    assert torch.allclose(sparse, uniform[:, picked], atol=1e-5)
    with pytest.raises(ValueError, match="non-decreasing"):
        build_exact(task)(u0, torch.tensor([0.0, 0.2, 0.1]))


def test_perturbed_exact_starts_1e_6_off_and_reaches_the_predictability_limit() -> None:
    task, pred, target, sigma = _forecast("lorenz-forecast", build_perturbed_exact)
    curve = nrmse_curve(pred, target, sigma)
    assert np.all((curve[:, 0] > 1e-7) & (curve[:, 0] < 1e-5))
    vpt, _ = valid_prediction_time(curve, task.times, task.vpt_threshold, float(task.lyapunov_exponent or 0))
    assert 8.0 <= vpt.mean() <= 14.0, vpt
    _, again, _, _ = _forecast("lorenz-forecast", build_perturbed_exact, n=2, horizon=1.0)
    assert np.array_equal(again, pred[:2, : again.shape[1]])  # a fixed seed: deterministic


def test_factories_refuse_what_they_cannot_do() -> None:
    heat_f, heat_c = load_task("heat-forecast"), load_task("heat-classify")
    with pytest.raises(UnsupportedTaskError):
        build_exact(heat_c)
    with pytest.raises(UnsupportedTaskError):
        build_physics_features(heat_f)
    with pytest.raises(UnsupportedTaskError, match="system"):
        build_exact(replace(heat_f, system="burgers1d"))
    with pytest.raises(ValueError, match="perturbation"):
        build_perturbed_exact(heat_f, perturbation=-1.0)
    with pytest.raises(ValueError, match="max_step"):
        build_exact(heat_f, max_step=0.01)
    for factory in (build_exact, build_perturbed_exact, build_physics_features):
        assert factory.reference is True  # type: ignore[attr-defined]
        assert factory.task_kinds and isinstance(factory.hyperparameters, tuple)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["heat-classify", "lorenz-classify", "ks-classify"])
def test_physics_features_are_finite_and_fixed(name: str) -> None:
    task = load_task(name)
    model = build_physics_features(task)
    x = torch.as_tensor(load_split(name, "val").u[:32])
    feats = model.features(x.to(torch.float64))
    assert feats.shape == (32, model.features.size) and torch.isfinite(feats).all()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    assert model(x).shape == (32, task.n_classes) and model.nfe == 0


def test_physics_features_learn_heat_diffusivity_quickly() -> None:
    task = load_task("heat-classify")
    data, _, _ = load_task_data(task)
    torch.manual_seed(0)
    protocol = replace(protocol_for(task, "standard"), max_steps=300, eval_every=100)
    outcome = train_and_evaluate(task, build_physics_features(task), data, protocol, torch.device("cpu"), 0)
    assert outcome.metrics["accuracy"] >= 0.9
    assert outcome.cost["params"] == (task.n_classes or 0) * (build_physics_features(task).features.size + 1)


def test_each_reference_runs_from_the_cli(tmp_path: Path) -> None:
    argv = ["run", "--model", "exact,perturbed-exact,physics-features", "--task", "heat-forecast,heat-classify", "--profile", "quick", "--jobs", "1", "--results", str(tmp_path)]
    assert main(argv) == 0
    records = {p.name: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(records) == {"heat-forecast__exact__quick__seed0.json", "heat-forecast__perturbed-exact__quick__seed0.json", "heat-classify__physics-features__quick__seed0.json"}
    assert all(r["status"] == "ok" for r in records.values())
    assert records["heat-forecast__exact__quick__seed0.json"]["metrics"]["nrmse_mean"] < 1e-6
