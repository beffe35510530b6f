"""Markdown cells and tables: the escaping and the aligned pipe table every board table uses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["esc", "md_table"]

_ESCAPE = re.compile(r"([\\|*_`\[\]<>])")


def esc(text: Any) -> str:
    """``text`` with markdown's special characters escaped, so a name renders as written."""
    return _ESCAPE.sub(r"\\\1", str(text))


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A pipe table with padded columns; ``right`` marks the right-aligned (numeric) ones."""
    widths = [max([len(h), 3, *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if r else "-" * w for w, r in zip(widths, right)) + " |"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])
