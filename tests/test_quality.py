"""Code-quality gates that CI runs with the tests: ruff and mypy, both clean.

mypy checks the import name ``odebench``, but its modules live in three folders
(``bench/`` → ``odebench``, ``tasks/`` → ``odebench.tasks``, ``baselines/`` →
``odebench.baselines``). The test reads that mapping from ``pyproject.toml``, lays it
out as a tree of symbolic links and runs mypy on the package there, reporting errors
under the real paths.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> list[str]:
    exe = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        pytest.fail(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
    return [exe]


def package_tree(root: Path, out: Path) -> dict[Path, Path]:
    """Symlink ``out/<package path>`` to each folder of ``[tool.setuptools] package-dir``.

    Returns {path in the tree: real folder}, longest first, to map reports back.
    """
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    links: dict[Path, Path] = {}
    for package in sorted(mapping, key=lambda p: p.count(".")):
        target = out.joinpath(*package.split("."))
        source = root / mapping[package]
        target.mkdir(parents=True, exist_ok=True)
        for entry in source.iterdir():
            if entry.name == "__pycache__" or (target / entry.name).exists():
                continue
            (target / entry.name).symlink_to(entry)
        links[target] = source
    return dict(sorted(links.items(), key=lambda kv: -len(str(kv[0]))))


def test_ruff_is_clean() -> None:
    proc = subprocess.run([*_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"ruff check found problems (fix them, or run 'ruff check --fix .'):\n{proc.stdout}{proc.stderr}"


def test_mypy_is_clean(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    links = package_tree(ROOT, tree)
    cmd = [*_tool("mypy"), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"), "-p", "odebench"]
    proc = subprocess.run(cmd, cwd=tree, env={**os.environ, "MYPYPATH": str(tree)}, capture_output=True, text=True)
    report = proc.stdout + proc.stderr
    for link, real in links.items():
        report = report.replace(str(link.relative_to(tree)) + os.sep, str(real.relative_to(ROOT)) + os.sep)
    assert proc.returncode == 0, f"mypy found problems:\n{report}"
