"""The six built-in task specs, their entry points and recipes, and the public build."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("odebench.tasks.ks")  # the collective module needs every task module

from odebench import data, registry  # noqa: E402
from odebench.tasks import specs  # noqa: E402
from odebench.tasks._recipe import SplitPlan  # noqa: E402
from odebench.tasks.build import build, build_recipes  # noqa: E402

NAMES = ["heat-forecast", "heat-classify", "lorenz-forecast", "lorenz-classify", "ks-forecast", "ks-classify"]


def test_all_six_tasks_are_collected() -> None:
    assert sorted(specs.ALL_SPECS) == sorted(NAMES)
    assert sorted(specs.ALL_RECIPES) == sorted(NAMES)
    by_attr = {s.name: s for s in (specs.HEAT_FORECAST, specs.HEAT_CLASSIFY, specs.LORENZ_FORECAST, specs.LORENZ_CLASSIFY, specs.KS_FORECAST, specs.KS_CLASSIFY)}
    assert by_attr == specs.ALL_SPECS


@pytest.mark.parametrize("name", NAMES)
def test_entry_point_loads_the_spec(name: str) -> None:
    spec = registry.load_task(name)
    assert spec is specs.ALL_SPECS[name]
    # 1.2: KS generated about twice as fast (the screen's twin at the large step only), new draws
    assert spec.version == ("1.2" if name.startswith("ks-") else "1.1") and spec.kind == name.rsplit("-", 1)[1]
    assert spec.description
    json.dumps(spec.to_dict())  # stored in every split file and result record


@pytest.mark.parametrize("name", NAMES)
def test_recipe_plans_fit_the_spec(name: str) -> None:
    recipe = specs.ALL_RECIPES[name]
    spec = recipe.spec
    assert set(recipe.splits) == set(data.SPLIT_NAMES)
    assert recipe.splits["test"].n_times == spec.n_times
    if spec.kind == "classify":
        assert all(plan.n_times == spec.n_times for plan in recipe.splits.values())
        assert len(spec.class_names) == spec.n_classes
    else:
        assert all(plan.n_times >= spec.train_window for plan in recipe.splits.values())


@pytest.mark.parametrize(
    ("name", "split", "n_times", "message"),
    [
        ("heat-classify", "train", 12, "train trajectories need n_times = 11, got 12"),
        ("heat-forecast", "test", 100, "test trajectories need n_times = 101, got 100"),
        ("heat-forecast", "val", 20, "val trajectories are shorter than train_window = 21"),
    ],
)
def test_build_rejects_a_plan_that_does_not_fit_the_spec(name: str, split: str, n_times: int, message: str, tmp_path: Path) -> None:
    recipe = specs.ALL_RECIPES[name]
    plans = {**recipe.splits, split: SplitPlan(4, n_times, recipe.splits[split].seed)}
    with pytest.raises(ValueError, match=message):
        build_recipes({name: dataclasses.replace(recipe, splits=plans)}, tmp_path)
    assert not any(tmp_path.iterdir())  # plans are checked before anything is generated


def test_every_split_has_its_own_seed() -> None:
    seeds = [plan.seed for recipe in specs.ALL_RECIPES.values() for plan in recipe.splits.values()]
    assert len(seeds) == len(set(seeds))


def test_lorenz_forecast_horizon_does_not_cap_vpt() -> None:
    spec = specs.LORENZ_FORECAST
    assert spec.lyapunov_exponent == pytest.approx(0.9056)
    assert spec.horizon * spec.lyapunov_exponent >= 15.0
    in_lyapunov_times = np.array(spec.eval_times) * spec.lyapunov_exponent
    np.testing.assert_allclose(in_lyapunov_times, [1, 2, 5, 10], atol=spec.dt * spec.lyapunov_exponent)


def test_heat_has_no_lyapunov_exponent() -> None:
    assert specs.HEAT_FORECAST.lyapunov_exponent is None and specs.HEAT_FORECAST.lyapunov_time is None


def test_canonical_data_fit_the_size_budget() -> None:
    manifest = data.read_manifest()
    total = sum(f["size"] for entry in manifest["tasks"].values() for f in entry["files"].values())
    assert total <= 32 * 2**20


def test_public_build_by_task_name(tmp_path: Path) -> None:
    report = build(["heat-forecast"], tmp_path)
    assert report.ok and [row.name for row in report.rows] == [f"heat-forecast.{s}.h5" for s in data.SPLIT_NAMES]
    canonical = data.read_manifest()["tasks"]["heat-forecast"]
    assert data.read_manifest(tmp_path)["tasks"]["heat-forecast"] == canonical
    with pytest.raises(ValueError, match="heat-forecast"):
        build(["heat-forcast"], tmp_path)


def test_fields_pool_sigma_and_the_files_keep_the_declared_order() -> None:
    from odebench.spec import TaskSpec

    assert {name for name in NAMES if registry.load_task(name).pooled_sigma} == {"heat-forecast", "ks-forecast"}
    for name in NAMES:
        spec = registry.load_task(name)
        again = TaskSpec.from_dict(spec.to_dict())
        assert again == spec and again.defining_dict() == spec.defining_dict()
        attrs = data.load_split(name, "train").attrs
        stored, params = attrs["spec"], attrs["parameters"]
        assert stored == json.loads(json.dumps(spec.defining_dict())) and list(params) == list(spec.parameters)
        if "regimes" in params:  # read in declared order, a mapping lines up with the class names
            assert list(params["regimes"]) == list(spec.class_names)
    # a spec without the field (version 1.0) writes exactly what it wrote before
    assert "pooled_sigma" not in registry.load_task("lorenz-forecast").defining_dict()
