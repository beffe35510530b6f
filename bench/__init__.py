"""odebench: a benchmark suite and leaderboard for Neural ODEs and their discrete cousins.

The names below are imported on first use (PEP 562), so ``import odebench`` — and with it
``odebench --help`` — does not pay for importing torch.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

try:
    __version__ = _version("odebench")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from .spec import SCHEMA_VERSION, ModelOutputError, TaskSpec, UnsupportedTaskError

__all__ = ["__version__", "SCHEMA_VERSION", "TaskSpec", "UnsupportedTaskError", "ModelOutputError"]

_FROM_SPEC = ("SCHEMA_VERSION", "TaskSpec", "UnsupportedTaskError", "ModelOutputError")


def __getattr__(name: str) -> Any:
    if name in _FROM_SPEC:
        from . import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'odebench' has no attribute {name!r}")
