"""Leaderboard figures: error growth per forecasting task, score against cost per task.

Like the markdown, a figure is a function of the records alone: the time unit (Lyapunov
times when the task's spec gives λ1), the VPT threshold, the main score's label and
direction all come from the spec stored in the records, never from the installed task.
Figures are drawn on matplotlib's Agg canvas directly (no pyplot, so no window and no
global backend switch), in matplotlib's default style with a fixed size and dpi, series
in sorted order, and PNG metadata without a software tag or date: the same aggregate
gives byte-identical PNG bytes. Functions return the bytes; the caller writes files.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .aggregate import Aggregate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DPI", "CURVE_TOP", "pareto_front", "error_growth_png", "pareto_png", "task_plots"]

DPI = 100
_CURVE_SIZE = (7.5, 4.8)
#: Top of the error-growth plot's nRMSE axis (see :func:`error_growth_png`).
CURVE_TOP = 1e2
_PARETO_SIZE = (11.0, 5.0)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def pareto_front(cost: Sequence[float], score: Sequence[float], higher_is_better: bool) -> list[int]:
    """Indices of the non-dominated points, ordered by cost (then index).

    A point is dominated when another costs no more and scores no worse, and is
    strictly better in one of the two. Points with a non-finite value are ignored.
    """
    if len(cost) != len(score):
        raise ValueError(f"cost and score must have equal lengths, got {len(cost)} and {len(score)}")
    sign = 1.0 if higher_is_better else -1.0
    pts = [(float(c), sign * float(s), i) for i, (c, s) in enumerate(zip(cost, score)) if math.isfinite(c) and math.isfinite(s)]
    front = [
        (c, i)
        for c, s, i in pts
        if not any(c2 <= c and s2 >= s and (c2 < c or s2 > s) for c2, s2, j in pts if j != i)
    ]
    return [i for _, i in sorted(front)]


def _figure(size: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _style(i: int) -> dict[str, object]:
    from matplotlib import colormaps

    return {"color": colormaps["tab10"](i % 10), "marker": _MARKERS[i % len(_MARKERS)]}


def error_growth_png(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], *, title: str, time_label: str, threshold: float | None = None) -> bytes:
    """nRMSE(t) per series on a log axis, series in sorted order; ``threshold`` drawn if given.

    Non-positive values (the exact initial state at t = 0) cannot sit on a log axis
    and are left out of the line, as are infinite ones (a diverged rollout). The axis
    stops at :data:`CURVE_TOP`: a forecast that is merely wrong saturates near √2, so
    anything above is a blow-up, and following it to 1e30 would flatten every other curve.
    """
    from matplotlib import style as mpl_style

    if not curves:
        raise ValueError("error_growth_png needs at least one curve")
    with mpl_style.context("default"):
        fig = _figure(_CURVE_SIZE)
        ax = fig.add_subplot()
        highest = 0.0
        for i, label in enumerate(sorted(curves)):
            t, y = (np.asarray(a, dtype=np.float64) for a in curves[label])
            if t.shape != y.shape or t.ndim != 1:
                raise ValueError(f"curve {label!r}: t and nrmse must be 1-D of equal length, got {t.shape} and {y.shape}")
            keep = np.isfinite(y) & (y > 0)
            highest = max(highest, float(y[keep].max(initial=0.0)))
            style = _style(i)
            ax.plot(t[keep], y[keep], color=style["color"], label=label, linewidth=1.5)
        if threshold is not None:
            ax.axhline(threshold, color="0.4", linestyle="--", linewidth=1.0, label=f"VPT threshold {threshold:g}")
        ax.set_yscale("log")
        if highest > CURVE_TOP:
            ax.set_ylim(top=CURVE_TOP)
            ax.text(0.01, 0.98, f"axis cut at {CURVE_TOP:g}: curves leaving the top blow up", transform=ax.transAxes, va="top", fontsize="small", color="0.3")
        ax.set_xlabel(time_label)
        ax.set_ylabel("nRMSE (σ of the training split) ↓")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
        return _png(fig)


def _cost_axis(ax: object, xs: list[float]) -> None:
    finite = [x for x in xs if math.isfinite(x)]
    if finite and min(finite) > 0:
        ax.set_xscale("log")  # type: ignore[attr-defined]
    elif finite and max(finite) > 0:
        ax.set_xscale("symlog", linthresh=1.0)  # type: ignore[attr-defined]


def pareto_png(points: Mapping[str, tuple[float, float, float]], *, title: str, score_label: str, higher_is_better: bool) -> bytes:
    """Two panels, main score against NFE-F and against train time, Pareto fronts marked.

    ``points`` maps a series label to ``(score, nfe_forward, train_seconds)``.
    """
    from matplotlib import style as mpl_style

    if not points:
        raise ValueError("pareto_png needs at least one point")
    labels = sorted(points)
    scores = [float(points[lb][0]) for lb in labels]
    with mpl_style.context("default"):
        fig = _figure(_PARETO_SIZE)
        axes = fig.subplots(1, 2, sharey=True)
        for ax, col, xlabel in ((axes[0], 1, "NFE-F per test forward pass ↓"), (axes[1], 2, "train time [s] ↓")):
            xs = [float(points[lb][col]) for lb in labels]
            for i, lb in enumerate(labels):
                if math.isfinite(xs[i]) and math.isfinite(scores[i]):
                    style = _style(i)
                    ax.scatter([xs[i]], [scores[i]], color=style["color"], marker=style["marker"], s=50, label=lb, zorder=3)
            front = pareto_front(xs, scores, higher_is_better)
            if front:
                ax.step([xs[i] for i in front], [scores[i] for i in front], where="post", color="0.2", linestyle="--", linewidth=1.0, zorder=2, label="Pareto front")
                ax.scatter([xs[i] for i in front], [scores[i] for i in front], s=160, facecolors="none", edgecolors="0.2", linewidths=1.2, zorder=4)
            _cost_axis(ax, xs)
            ax.set_xlabel(xlabel)
            ax.grid(True, alpha=0.3)
        axes[0].set_ylabel(score_label)
        fig.suptitle(title)
        handles, names = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="outside right center", fontsize="small")
        return _png(fig)


def task_plots(aggregate: Aggregate) -> dict[str, dict[str, bytes]]:
    """PNG bytes per task and kind: ``error_growth`` (tasks whose records carry nRMSE curves) and ``pareto``.

    Time on the error-growth axis is in Lyapunov times when the task's spec gives λ1,
    otherwise in the task's time unit; the VPT threshold is drawn when the task reports VPT.
    """
    out: dict[str, dict[str, bytes]] = {}
    for task in sorted(aggregate.tasks):
        info = aggregate.tasks[task].info
        rows = [r for r in aggregate.rows.to_dict("records") if r["task"] == task]
        if not rows or info is None:
            continue
        images: dict[str, bytes] = {}
        curves = {}
        for r in rows:
            curve = aggregate.curve(r)
            if curve is not None:
                curves[aggregate.series_label(r)] = curve
        if curves:
            curves = {k: (t * info.time_scale, y) for k, (t, y) in curves.items()}
            threshold = info.vpt_threshold if info.has_vpt else None
            images["error_growth"] = error_growth_png(curves, title=f"{task}: error growth (mean over seeds)", time_label=info.time_label, threshold=threshold)
        main = f"metrics.{info.main_metric}"
        points = {
            aggregate.series_label(r): (float(r.get(main, math.nan)), float(r.get("cost.nfe_forward", math.nan)), float(r.get("cost.train_seconds", math.nan)))
            for r in rows
        }
        if any(math.isfinite(p[0]) for p in points.values()):
            images["pareto"] = pareto_png(points, title=f"{task}: main score against cost", score_label=info.main.header, higher_is_better=bool(info.main.higher_is_better))
        if images:
            out[task] = images
    return out
