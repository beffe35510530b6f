"""odebench: a benchmark suite and leaderboard for Neural ODEs and their discrete cousins."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from .spec import SCHEMA_VERSION, ModelOutputError, TaskSpec, UnsupportedTaskError

try:
    __version__ = _version("odebench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__", "SCHEMA_VERSION", "TaskSpec", "UnsupportedTaskError", "ModelOutputError"]
