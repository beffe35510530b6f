"""The built wheel holds the one ``odebench`` package and nothing else at top level."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy of the sources, so the build leaves nothing in the checkout.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in ("bench", "tasks", "baselines"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    (whl,) = out.glob("odebench-*.whl")
    return whl


def test_wheel_contains_only_the_odebench_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"odebench"}, f"unexpected top-level entries: {sorted(tops - dist_info - {'odebench'})}"
    for forbidden in ("bench/", "tasks/", "baselines/", "tests/"):
        assert not any(n.startswith(forbidden) for n in names)
    assert "odebench/tasks/__init__.py" in names and "odebench/baselines/__init__.py" in names and "odebench/cli.py" in names
    for system in ("__init__", "_etdrk", "_spectral", "heat", "lorenz", "ks"):
        assert f"odebench/tasks/systems/{system}.py" in names


def test_wheel_ships_the_frozen_splits_and_manifest(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "odebench/tasks/data/MANIFEST.json" in names
    for task in ("heat-forecast", "heat-classify", "lorenz-forecast", "lorenz-classify", "ks-forecast", "ks-classify"):
        for split in ("train", "val", "test"):
            assert f"odebench/tasks/data/{task}.{split}.h5" in names


def test_wheel_registers_builtins_in_the_entry_point_groups(wheel: Path) -> None:
    zf = zipfile.ZipFile(wheel)
    (ep_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = zf.read(ep_name).decode()
    assert "[odebench.models]" in text and "[odebench.tasks]" in text
    assert "resnet = odebench.baselines.resnet:build_resnet" in text
    assert "lorenz-forecast = odebench.tasks.specs:LORENZ_FORECAST" in text
    assert "odebench = odebench.cli:main" in text
