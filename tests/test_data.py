"""Frozen splits: integrity checks, verified loading, and byte-deterministic builds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from odebench import data
from odebench.tasks import heat, lorenz
from odebench.tasks._recipe import SplitArrays
from odebench.tasks.build import build_recipes

OURS = {**heat.RECIPES, **lorenz.RECIPES}
TASK = "heat-forecast"


@pytest.fixture
def copy_of(tmp_path: Path):
    """A private copy of one task's committed files plus the manifest."""

    def make(task: str = TASK) -> Path:
        source = data.data_dir()
        for split in data.SPLIT_NAMES:
            shutil.copy2(source / data.split_filename(task, split), tmp_path / data.split_filename(task, split))
        shutil.copy2(source / data.MANIFEST_NAME, tmp_path / data.MANIFEST_NAME)
        return tmp_path

    return make


def expected_sha(directory: Path, task: str, filename: str) -> str:
    return data.read_manifest(directory)["tasks"][task]["files"][filename]["sha256"]


def test_committed_files_verify() -> None:
    manifest = data.read_manifest()
    for task in OURS:
        files = manifest["tasks"][task]["files"]
        assert manifest["tasks"][task]["version"] == OURS[task].spec.version
        assert sorted(files) == sorted(data.split_filename(task, s) for s in data.SPLIT_NAMES)
        digest = data.verify_task(task)
        lines = "".join(f"{name}:{files[name]['sha256']}\n" for name in sorted(files))
        assert digest == hashlib.sha256(lines.encode()).hexdigest()
    assert set(OURS) <= set(data.verify_all())


def test_committed_heat_and_lorenz_files_fit_the_size_budget() -> None:
    manifest = data.read_manifest()
    total = sum(f["size"] for task in OURS for f in manifest["tasks"][task]["files"].values())
    assert total <= 14 * 2**20


def test_flipped_byte_is_caught(copy_of, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = copy_of()
    name = data.split_filename(TASK, "test")
    path = directory / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    monkeypatch.setenv(data.DATA_ENV, str(directory))
    with pytest.raises(data.DataIntegrityError) as err:
        data.verify_task(TASK)
    message = str(err.value)
    assert str(path) in message
    assert expected_sha(directory, TASK, name) in message
    assert hashlib.sha256(bytes(raw)).hexdigest() in message
    assert f"odebench data build --task {TASK}" in message
    with pytest.raises(data.DataIntegrityError, match="checksum mismatch"):
        data.verify_all()


def test_truncated_file_is_caught(copy_of) -> None:
    directory = copy_of()
    name = data.split_filename(TASK, "train")
    path = directory / name
    raw = path.read_bytes()[:-100]
    path.write_bytes(raw)
    with pytest.raises(data.DataIntegrityError) as err:
        data.verify_task(TASK, directory)
    message = str(err.value)
    assert str(path) in message and "size mismatch" in message
    assert expected_sha(directory, TASK, name) in message
    assert hashlib.sha256(raw).hexdigest() in message
    assert f"odebench data build --task {TASK}" in message


def test_missing_file_is_caught(copy_of) -> None:
    directory = copy_of()
    name = data.split_filename(TASK, "val")
    (directory / name).unlink()
    with pytest.raises(data.DataIntegrityError) as err:
        data.verify_task(TASK, directory)
    message = str(err.value)
    assert str(directory / name) in message and "missing" in message
    assert expected_sha(directory, TASK, name) in message
    assert f"odebench data build --task {TASK}" in message


def test_task_absent_from_manifest_is_caught(tmp_path: Path) -> None:
    data.write_manifest(tmp_path, {})
    with pytest.raises(data.DataIntegrityError, match="not in the manifest"):
        data.verify_task(TASK, tmp_path)


def test_load_split_refuses_unverified_data(copy_of) -> None:
    directory = copy_of()
    good = data.load_split(TASK, "test", directory)
    path = directory / data.split_filename(TASK, "test")
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataIntegrityError, match="checksum mismatch"):
        data.load_split(TASK, "test", directory)
    (directory / data.split_filename(TASK, "val")).unlink()
    with pytest.raises(data.DataIntegrityError, match="missing"):
        data.load_split(TASK, "val", directory)
    assert good.u.dtype == np.float32 and good.u.shape == (32, 101, 64)


def test_loaded_split_has_the_documented_layout() -> None:
    split = data.load_split("lorenz-classify", "val")
    spec = lorenz.LORENZ_CLASSIFY
    assert split.u.shape == (128, spec.n_times, 3) and split.u.dtype == np.float32
    assert split.y is not None and split.y.dtype == np.int64 and split.y.shape == (128,)
    assert split.params.shape == (128, len(split.attrs["param_names"]))
    assert split.attrs["task"] == spec.name and split.attrs["version"] == spec.version and split.attrs["split"] == "val"
    assert split.attrs["parameters"] == json.loads(json.dumps(dict(spec.parameters)))
    assert split.attrs["seed"] == lorenz.RECIPES[spec.name].splits["val"].seed
    assert data.load_split(TASK, "train").y is None
    with h5py.File(data.data_dir() / data.split_filename("lorenz-classify", "val"), "r") as fh:
        u = fh["u"]
        assert u.compression == "gzip" and u.shuffle
        assert not u.id.get_create_plist().get_obj_track_times()


def test_builds_are_byte_identical(tmp_path: Path) -> None:
    first = build_recipes(heat.RECIPES, tmp_path / "a")
    second = build_recipes(heat.RECIPES, tmp_path / "b")
    assert first.ok and [r.sha256 for r in first.rows] == [r.sha256 for r in second.rows]
    for row in first.rows:
        assert (tmp_path / "a" / row.name).read_bytes() == (tmp_path / "b" / row.name).read_bytes()
    assert (tmp_path / "a" / data.MANIFEST_NAME).read_bytes() == (tmp_path / "b" / data.MANIFEST_NAME).read_bytes()
    assert set(data.verify_all(tmp_path / "a")) == set(heat.RECIPES)


def test_parallel_build_writes_the_same_bytes_as_a_serial_one(tmp_path: Path) -> None:
    serial = build_recipes(heat.RECIPES, tmp_path / "serial", jobs=1)
    parallel = build_recipes(heat.RECIPES, tmp_path / "parallel", jobs=2)
    assert parallel.jobs == 2 and parallel.wall_seconds is not None
    assert [(r.name, r.sha256) for r in serial.rows] == [(r.name, r.sha256) for r in parallel.rows]
    assert (tmp_path / "serial" / data.MANIFEST_NAME).read_bytes() == (tmp_path / "parallel" / data.MANIFEST_NAME).read_bytes()
    assert "2 process(es)" in parallel.format()
    with pytest.raises(ValueError, match="jobs"):
        build_recipes(heat.RECIPES, tmp_path / "x", jobs=0)


def test_recipe_groups_name_each_split_once() -> None:
    recipe = heat.RECIPES[TASK]
    with pytest.raises(ValueError, match="generate_together"):
        dataclasses.replace(recipe, together=(("val", "test"),))
    with pytest.raises(ValueError, match="at most once"):
        dataclasses.replace(recipe, generate_together=lambda spec, plans: {}, together=(("val", "test"), ("test",)))
    grouped = dataclasses.replace(recipe, generate_together=lambda spec, plans: {}, together=(("val", "test"),))
    assert grouped.units() == [("val", "test"), ("train",)]


def test_check_reproduces_the_committed_files() -> None:
    report = build_recipes(OURS, check=True, jobs=2)
    assert report.ok, report.format()
    assert len(report.rows) == 3 * len(OURS) and all(row.passed for row in report.rows)
    assert "identical" in report.format() or "equivalent" in report.format()


@pytest.mark.parametrize(
    "field, change, passes",
    [
        ("params", lambda a: np.nextafter(a, np.inf), True),  # another NumPy's rounding: 1 ulp
        # a cancelled mean (~1e-17) summed in another order: 1 ulp of the largest parameter
        ("params", lambda a: a + np.spacing(np.abs(a).max()) * np.array([0.0, 1.0, 0.0]), True),
        ("params", lambda a: a * (1 + 1e-12), False),  # thousands of ulps: a real change
        ("u", lambda a: np.nextafter(a, np.float32(np.inf)), False),  # float32 fields stay bit-exact
    ],
)
def test_check_tolerates_a_few_float64_ulps_only(copy_of, field: str, change, passes: bool) -> None:
    directory = copy_of("heat-classify")
    recipe = heat.RECIPES["heat-classify"]
    plan = recipe.splits["val"]
    arrays = recipe.generate(recipe.spec, plan)
    changed = SplitArrays(**{**arrays.__dict__, field: change(getattr(arrays, field))})
    data.write_split(directory / data.split_filename("heat-classify", "val"), recipe.spec, "val", changed, plan.seed, recipe.generator, recipe.extra_attrs)
    report = build_recipes({"heat-classify": recipe}, directory, check=True)
    row = {r.name: r for r in report.rows}[data.split_filename("heat-classify", "val")]
    assert row.identical is False and row.passed is passes and report.ok is passes
    assert ("equivalent" if passes else "DIFFERS") in report.format()


def test_check_reports_the_deviation_of_a_different_file(copy_of) -> None:
    directory = copy_of()
    recipe = heat.RECIPES[TASK]
    plan = recipe.splits["val"]
    arrays = recipe.generate(recipe.spec, plan)
    shifted = SplitArrays(u=arrays.u + np.float32(0.125), t=arrays.t, params=arrays.params, y=arrays.y)
    data.write_split(directory / data.split_filename(TASK, "val"), recipe.spec, "val", shifted, plan.seed, recipe.generator)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    report = build_recipes({TASK: recipe}, directory, check=True)
    rows = {row.name: row for row in report.rows}
    assert not report.ok and "DIFFERS" in report.format()
    assert rows[data.split_filename(TASK, "train")].identical
    bad = rows[data.split_filename(TASK, "val")]
    assert bad.identical is False and bad.max_abs_deviation == pytest.approx(0.125, abs=1e-6)
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before  # a check changes nothing


def test_build_keeps_other_tasks_in_the_manifest(tmp_path: Path) -> None:
    other = {"files": {"x.train.h5": {"sha256": "0" * 64, "size": 1}}, "version": "9"}
    data.write_manifest(tmp_path, {"other-task": other})
    build_recipes({TASK: heat.RECIPES[TASK]}, tmp_path)
    tasks = data.read_manifest(tmp_path)["tasks"]
    assert tasks["other-task"] == other and tasks[TASK]["version"] == "1.1"


def test_write_split_rejects_arrays_that_break_the_spec(tmp_path: Path) -> None:
    spec = heat.HEAT_CLASSIFY
    good = SplitArrays(u=np.zeros((2, spec.n_times, 64), np.float32), t=spec.times, params=np.zeros((2, 1)), y=np.array([0, 1]))
    data.write_split(tmp_path / "ok.h5", spec, "test", good, 1, "test")
    with pytest.raises(ValueError, match="labels"):
        data.write_split(tmp_path / "bad.h5", spec, "test", SplitArrays(good.u, good.t, good.params, None), 1, "test")
    with pytest.raises(ValueError, match="shape"):
        data.write_split(tmp_path / "bad.h5", spec, "test", SplitArrays(good.u[:, :, :32], good.t, good.params, good.y), 1, "test")
    with pytest.raises(ValueError, match="split"):
        data.write_split(tmp_path / "bad.h5", spec, "holdout", good, 1, "test")
    assert not (tmp_path / "bad.h5").exists()


def test_data_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert (data.data_dir() / data.MANIFEST_NAME).is_file()
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.data_dir() == tmp_path
    with pytest.raises(data.DataIntegrityError, match="manifest missing"):
        data.verify_all()


def test_manifest_hashes_match_verification_without_reading_files(copy_of) -> None:
    directory = copy_of()
    expected = data.verify_task(TASK, directory)
    (directory / data.split_filename(TASK, "test")).unlink()
    assert data.manifest_hashes(directory)[TASK] == expected


def test_the_validation_data_dir_scores_on_the_validation_split(tmp_path: Path) -> None:
    """benchmarks/val_as_test.py: a verified data directory whose test split is the validation
    split, continued over the test horizon where the validation trajectories are shorter."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "val_as_test.py"
    out = tmp_path / "val"
    subprocess.run([sys.executable, str(script), str(out), "--tasks", "heat-forecast,lorenz-forecast"], check=True, capture_output=True)
    assert set(data.verify_all(out)) == {"heat-forecast", "lorenz-forecast"}
    assert data.verify_task("heat-forecast", out) != data.verify_task("heat-forecast")  # never passes for the shipped data
    heat_val, heat_test = data.load_split("heat-forecast", "val"), data.load_split("heat-forecast", "test", out)
    np.testing.assert_array_equal(heat_test.u, heat_val.u)
    lorenz_val, lorenz_test = data.load_split("lorenz-forecast", "val"), data.load_split("lorenz-forecast", "test", out)
    shipped_test = data.load_split("lorenz-forecast", "test")
    assert lorenz_test.u.shape == (lorenz_val.u.shape[0], *shipped_test.u.shape[1:])
    np.testing.assert_array_equal(lorenz_test.u[:, : lorenz_val.u.shape[1]], lorenz_val.u)
