"""Number formats and the cost catalogue: how every value on the board is written.

Task metrics bring their own format (a Python format spec from the task's spec, stored
in each record); costs are measured by the harness for every task alike, so their
headers, formats and directions are fixed here, once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Formatter",
    "CostColumn",
    "COSTS",
    "TIME_COSTS",
    "check_format",
    "format_value",
    "header",
    "shown",
    "count",
    "seconds",
    "mib",
    "percent",
    "dec2",
]

#: Writes one finite value as the reader sees it.
Formatter = Callable[[float], str]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")


def check_format(fmt: object) -> str:
    """``fmt`` if it is a Python format spec for a float; ``ValueError`` otherwise."""
    if not isinstance(fmt, str):
        raise ValueError(f"a metric format must be a format spec string such as '.2f', got {fmt!r}")
    try:
        format(1.0, fmt)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{fmt!r} is not a format spec for a number ({exc}); use e.g. '.2f', '#.3g' or '.0%'") from None
    return fmt


def format_value(value: float, fmt: str) -> str:
    """``value`` written with the format spec ``fmt``, less a trailing ``.`` left by ``#`` formats."""
    text = format(value, fmt)
    return text[:-1] if text.endswith(".") else text


def header(label: str, higher_is_better: bool | None) -> str:
    """A column header: the label with its direction arrow (none for an informational column)."""
    if higher_is_better is None:
        return label
    return f"{label} {'↑' if higher_is_better else '↓'}"


def shown(value: float | None, fmt: Formatter) -> float:
    """The number a reader sees: ``value`` rounded by its column's format (NaN if none).

    Ranks and bold compare these, so values that look equal are treated as equal.
    """
    if value is None or not math.isfinite(value):
        return math.nan
    match = _NUMBER.search(fmt(value).replace(",", ""))
    return float(match.group(0)) if match else math.nan


def count(x: float) -> str:
    """A count with thousands separators; one decimal when it is a mean of unequal counts."""
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-9 else f"{x:,.1f}"


def seconds(x: float) -> str:
    """Wall-clock seconds with three significant digits below 100 s, whole seconds above."""
    if abs(x) < 10:
        return f"{x:.2f} s"
    if abs(x) < 100:
        return f"{x:.1f} s"
    return f"{x:,.0f} s"


def mib(x: float) -> str:
    """Bytes as MiB with one decimal."""
    return f"{x / 2**20:,.1f} MiB"


def percent(x: float) -> str:
    """A fraction as a whole percentage."""
    return f"{100 * x:.0f}%"


def dec2(x: float) -> str:
    """Two decimals (mean ranks)."""
    return f"{x:.2f}"


@dataclass(frozen=True)
class CostColumn:
    """A harness-level cost: its header, format and direction (lower is better for all)."""

    header: str
    fmt: Formatter
    higher_is_better: bool | None = False


#: Every cost column but memory (which depends on the device), by record key under ``cost``.
COSTS: dict[str, CostColumn] = {
    "nfe_forward": CostColumn("NFE-F ↓", count),
    "nfe_backward": CostColumn("NFE-B ↓", count),
    "train_seconds": CostColumn("train time ↓", seconds),
    "infer_seconds": CostColumn("inference time ↓", seconds),
    "params": CostColumn("params ↓", count),
}
#: The costs shown before the memory column, in order (params follows memory).
TIME_COSTS = ("nfe_forward", "nfe_backward", "train_seconds", "infer_seconds")
