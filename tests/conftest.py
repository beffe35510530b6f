"""Shared fixtures: fake installed distributions, so registry tests use real entry points."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def write_distribution(root: Path, dist: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None, version: str = "0.1") -> Path:
    """Write ``<dist>-<version>.dist-info`` (METADATA + entry_points.txt) and modules under ``root``."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in items.items()]
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    for name, source in (modules or {}).items():
        (root / f"{name}.py").write_text(source)
    return root


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Install a fake distribution on ``sys.path`` (and ``PYTHONPATH`` for child processes)."""
    counter = iter(range(1000))

    def make(dist: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None, version: str = "0.1") -> Path:
        root = tmp_path / f"site{next(counter)}"
        write_distribution(root, dist, entry_points, modules, version)
        monkeypatch.syspath_prepend(str(root))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        importlib.invalidate_caches()
        return root

    yield make
    for name in [m for m in sys.modules if m.startswith("odebench_fake_")]:
        del sys.modules[name]


def _fake_models_source() -> tuple[str, dict]:
    source = (Path(__file__).resolve().parent / "fake_models.py").read_text()
    namespace: dict = {}
    exec(compile(source, "fake_models.py", "exec"), namespace)
    return source, namespace["ENTRY_POINTS"]


@pytest.fixture(scope="module")
def fake_models_module(tmp_path_factory: pytest.TempPathFactory) -> object:
    """:func:`fake_models` for a whole module, for fixtures that run the CLI once and share it."""
    source, entry_points = _fake_models_source()
    root = write_distribution(tmp_path_factory.mktemp("site"), "odebench-fake-models", {"odebench.models": entry_points}, {"odebench_fake_models": source})
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        mp.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        importlib.invalidate_caches()
        yield None
    for name in [m for m in sys.modules if m.startswith("odebench_fake_")]:
        del sys.modules[name]


@pytest.fixture
def fake_models(fake_dist: Callable[..., Path]) -> None:
    """Install tests/fake_models.py (deliberately broken models) as the distribution odebench-fake-models."""
    source, entry_points = _fake_models_source()
    fake_dist("odebench-fake-models", {"odebench.models": entry_points}, {"odebench_fake_models": source})
