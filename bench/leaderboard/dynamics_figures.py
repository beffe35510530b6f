"""Learned-dynamics figures: λ1 per seed, attractors, space-time plots, spectra, decay rates.

Drawn the way :mod:`.plots` draws the board's other figures (Agg canvas, matplotlib's
default style, fixed size and dpi, no date in the PNG), from the analysis records alone,
so the same files give byte-identical PNG bytes. Models appear in the order of their
task's learned-dynamics table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .dynamics import Dynamics, DynamicsRow
from .keys import number
from .plots import _figure, _png, _style
from .taskinfo import TaskInfo

__all__ = ["lyapunov_png", "attractor_png", "spacetime_png", "spectrum_png", "decay_rates_png", "dynamics_plots"]

Pair = tuple[np.ndarray, np.ndarray]
_TRUTH_GREY = "0.75"


def _array(value: Any, ndim: int = 1) -> np.ndarray | None:
    """A JSON list (of lists) of numbers as a float array, null as NaN; ``None`` if it is not one."""
    if not isinstance(value, list) or not value:
        return None
    if ndim == 1:
        return np.array([number(v) for v in value], dtype=np.float64)
    if not all(isinstance(row, list) and row for row in value) or len({len(row) for row in value}) != 1:
        return None
    return np.array([[number(v) for v in row] for row in value], dtype=np.float64)


def _pair(value: Any) -> Pair | None:
    """``{a: [...], b: [...]}`` as two arrays of equal length, or ``None``."""
    if not isinstance(value, Mapping):
        return None
    a, b = _array(value.get("a")), _array(value.get("b"))
    if a is None or b is None or a.shape != b.shape:
        return None
    return a, b


# --- the figures ------------------------------------------------------------------------


def lyapunov_png(series: Sequence[tuple[str, Sequence[float]]], *, true: float | None, title: str) -> bytes:
    """λ1 per model, one marker per seed (NaN: diverged, drawn at the axis bottom), the true λ1 as a line."""
    from matplotlib import style as mpl_style
    from matplotlib.transforms import blended_transform_factory

    if not series:
        raise ValueError("lyapunov_png needs at least one series")
    with mpl_style.context("default"):
        fig = _figure((max(5.0, 1.1 * len(series) + 2.5), 4.2))
        ax = fig.add_subplot()
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        any_diverged = False
        for i, (_, values) in enumerate(series):
            vals = np.asarray(values, dtype=np.float64)
            offsets = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
            finite = np.isfinite(vals)
            style = _style(i)
            ax.scatter(i + offsets[finite], vals[finite], color=style["color"], marker=str(style["marker"]), s=40, zorder=3)
            if not finite.all():
                any_diverged = True
                ax.scatter(i + offsets[~finite], np.full(int((~finite).sum()), 0.03), transform=bottom, color=style["color"], marker="x", s=50, zorder=3, clip_on=False)
        if true is not None:
            ax.axhline(true, color="0.2", linestyle="--", linewidth=1.0, label=f"true λ1 = {true:.4g}")
        if any_diverged:
            ax.scatter([], [], color="0.3", marker="x", s=50, label="seed diverged (no λ1), drawn at the bottom")
        ax.set_xticks(range(len(series)), [label for label, _ in series], rotation=20, ha="right")
        ax.set_xlim(-0.6, len(series) - 0.4)
        ax.set_ylabel("λ1 of the long runs [1 / task time unit]")
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize="small")
        return _png(fig)


def _limits(truth: np.ndarray, model: np.ndarray | None) -> tuple[float, float]:
    """Axis limits: the truth's range, widened to the model's but never past half its span again."""
    lo, hi = float(np.nanmin(truth)), float(np.nanmax(truth))
    span = max(hi - lo, 1e-12)
    if model is not None and np.isfinite(model).any():
        lo = max(min(lo, float(np.nanmin(model))), lo - 0.5 * span)
        hi = min(max(hi, float(np.nanmax(model))), hi + 0.5 * span)
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def attractor_png(panels: Sequence[tuple[str, Pair, Pair | None]], *, names: Sequence[str], title: str) -> bytes:
    """One small panel per model: its long run in colour over the true one in grey (``None``: diverged)."""
    from matplotlib import style as mpl_style

    if not panels:
        raise ValueError("attractor_png needs at least one panel")
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    with mpl_style.context("default"):
        fig = _figure((3.2 * ncols, 2.9 * nrows + 0.4))
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
        for i, (label, (ta, tb), model) in enumerate(panels):
            ax = axes[i]
            ax.plot(ta, tb, color=_TRUTH_GREY, linewidth=0.5)
            if model is None:
                ax.text(0.5, 0.5, "diverged", transform=ax.transAxes, ha="center", va="center", color="0.2")
            else:
                colour = _style(i)["color"]
                ax.plot(model[0], model[1], color=colour, linewidth=0.6)
                if model[0].size:  # where the run ends: all that shows of a fixed point
                    ax.plot(model[0][-1:], model[1][-1:], marker="o", markersize=5, color=colour, linestyle="none")
            ax.set_xlim(*_limits(ta, model[0] if model is not None else None))
            ax.set_ylim(*_limits(tb, model[1] if model is not None else None))
            ax.set_title(label, fontsize="small")
            ax.set_xlabel(names[0] if names else "", fontsize="small")
            ax.set_ylabel(names[1] if len(names) > 1 else "", fontsize="small")
            ax.tick_params(labelsize="x-small")
        for ax in axes[len(panels) :]:
            ax.set_axis_off()
        fig.suptitle(title)
        return _png(fig)


def spacetime_png(truth: tuple[np.ndarray, np.ndarray], panels: Sequence[tuple[str, np.ndarray, np.ndarray | None]], *, title: str, time_label: str) -> bytes:
    """The truth and each model over time (x) and space (y) on one colour scale, non-finite in grey.

    ``truth`` is ``(t, values[time, point])``; each panel ``(label, t, values or None)``.
    """
    from matplotlib import colormaps
    from matplotlib import style as mpl_style

    t, true = truth
    vmax = float(np.nanmax(np.abs(true))) if np.isfinite(true).any() else 1.0
    cmap = colormaps["RdBu_r"].with_extremes(bad="0.6")
    rows = [("truth", t, true), *panels]
    with mpl_style.context("default"):
        fig = _figure((7.5, 1.25 * len(rows) + 0.9))
        axes = np.atleast_1d(fig.subplots(len(rows), 1, sharex=True, squeeze=False)).ravel()
        image = None
        for ax, (label, tt, values) in zip(axes, rows):
            if values is None:
                ax.text(0.5, 0.5, "diverged", transform=ax.transAxes, ha="center", va="center", color="0.2")
                ax.set_yticks([])
            else:
                extent = (float(tt[0]), float(tt[-1]), 0.0, float(values.shape[1]))
                image = ax.imshow(np.ma.masked_invalid(values.T), origin="lower", aspect="auto", extent=extent, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_ylabel(label, fontsize="small", rotation=0, ha="right", va="center")
            ax.tick_params(labelsize="x-small")
        axes[-1].set_xlabel(time_label)
        if image is not None:
            fig.colorbar(image, ax=list(axes), shrink=0.8, label="u")
        fig.suptitle(title)
        return _png(fig)


def spectrum_png(truth: Pair, series: Sequence[tuple[str, Pair]], *, title: str) -> bytes:
    """log E(k) of the truth (black) and of each model; non-positive values are left out."""
    from matplotlib import style as mpl_style

    with mpl_style.context("default"):
        fig = _figure((7.5, 4.5))
        ax = fig.add_subplot()
        for i, (label, (k, e)) in enumerate(series):
            keep = np.isfinite(e) & (e > 0)
            ax.plot(k[keep], e[keep], color=_style(i)["color"], linewidth=1.2, label=label)
        k, e = truth
        keep = np.isfinite(e) & (e > 0)
        ax.plot(k[keep], e[keep], color="black", linewidth=1.8, label="truth")
        ax.set_yscale("log")
        ax.set_xlabel("wavenumber k")
        ax.set_ylabel("E(k)")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        return _png(fig)


def decay_rates_png(exact: Pair, series: Sequence[tuple[str, Pair]], *, scored: Sequence[int], title: str) -> bytes:
    """The exact decay rates as a line (−c·k², fitted to them) and each model's per mode as markers."""
    from matplotlib import style as mpl_style

    k, rates = exact
    with mpl_style.context("default"):
        fig = _figure((7.5, 4.5))
        ax = fig.add_subplot()
        if scored:
            ax.axvspan(min(scored) - 0.5, max(scored) + 0.5, color="0.9", zorder=0, label="modes scored")
        fit = np.isfinite(rates) & (k > 0)
        if fit.any():
            c = float(np.sum(rates[fit] * k[fit] ** 2) / np.sum(k[fit] ** 4))
            fine = np.linspace(float(np.min(k)), float(np.max(k)), 200)
            ax.plot(fine, c * fine**2, color="black", linewidth=1.5, label="exact −κ(2πk/L)²", zorder=2)
        for i, (label, (mk, mr)) in enumerate(series):
            keep = np.isfinite(mr)
            style = _style(i)
            ax.scatter(mk[keep], mr[keep], color=style["color"], marker=str(style["marker"]), s=36, label=label, zorder=3)
        ax.set_xlabel("Fourier mode k")
        ax.set_ylabel("decay rate [1 / task time unit]")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left", fontsize="small")
        return _png(fig)


# --- from the records -------------------------------------------------------------------


def _lyapunov(task: str, rows: Sequence[DynamicsRow]) -> bytes | None:
    series, true = [], []
    for r in rows:
        blocks = [a["lyapunov"] for a in r.analyses if isinstance(a.get("lyapunov"), Mapping)]
        if blocks:
            series.append((r.label, [number(b.get("lambda1")) for b in blocks]))
            true += [number(b.get("lambda1_true")) for b in blocks]
    finite = [v for v in true if math.isfinite(v)]
    return lyapunov_png(series, true=float(np.mean(finite)) if finite else None, title=f"{task}: largest Lyapunov exponent") if series else None


def _first_figure(row: DynamicsRow, name: str) -> Mapping[str, Any] | None:
    """The figure data ``name`` of the row's lowest analysed seed that has it."""
    for a in row.analyses:
        figures = a.get("figures")
        data = figures.get(name) if isinstance(figures, Mapping) else None
        if isinstance(data, Mapping):
            return data
    return None


def _attractor(task: str, rows: Sequence[DynamicsRow]) -> bytes | None:
    panels: list[tuple[str, Pair, Pair | None]] = []
    names: list[str] = []
    for r in rows:
        data = _first_figure(r, "attractor")
        truth = _pair(data.get("true")) if data else None
        if data is None or truth is None:
            continue
        regimes = [str((a.get("lyapunov") or {}).get("regime")) for a in r.analyses if (a.get("figures") or {}).get("attractor") is data]
        panels.append((f"{r.label} ({regimes[0]})" if regimes and regimes[0] != "None" else r.label, truth, _pair(data.get("model"))))
        names = names or [str(n) for n in data.get("names") or []]
    return attractor_png(panels, names=names, title=f"{task}: long runs, {' against '.join(reversed(names[:2]))}") if panels else None


def _spacetime(task: str, rows: Sequence[DynamicsRow], info: TaskInfo | None) -> bytes | None:
    """The figures store task time; drawn in the board's time unit, as the error-growth plots are."""
    scale, time_label = (info.time_scale, info.time_label) if info is not None else (1.0, "t [task time units]")
    truth, panels = None, []
    for r in rows:
        data = _first_figure(r, "spacetime")
        t = _array(data.get("t")) if data else None
        true = _array(data.get("true"), 2) if data else None
        if data is None or t is None or true is None or true.shape[0] != t.shape[0]:
            continue
        t = t * scale
        model = _array(data.get("model"), 2)
        panels.append((r.label, t, model if model is not None and model.shape[0] == t.shape[0] else None))
        if truth is None:
            truth = (t, true)
    if truth is None:
        return None
    return spacetime_png(truth, panels, title=f"{task}: one test state over the horizon (y: grid point)", time_label=time_label)


def _mean_curve(blocks: Sequence[Mapping[str, Any]], key: str) -> Pair | None:
    """The mean over ``blocks`` of their curve ``key`` against ``k``, on the first one's grid."""
    curves: list[Pair] = []
    for s in blocks:
        k, y = _array(s.get("k")), _array(s.get(key))
        if k is not None and y is not None and k.shape == y.shape and (not curves or np.array_equal(k, curves[0][0])):
            curves.append((k, y))
    if not curves:
        return None
    return curves[0][0], np.mean([c[1] for c in curves], axis=0)


def _spectra(analyses: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [a["long_run"]["spectrum"] for a in analyses if isinstance(a.get("long_run"), Mapping) and isinstance(a["long_run"].get("spectrum"), Mapping)]


def _spectrum(task: str, rows: Sequence[DynamicsRow]) -> bytes | None:
    truth, series = None, []
    for r in rows:
        spectra = _spectra(r.analyses)
        if truth is None:
            truth = _mean_curve(spectra[:1], "true")
        model = _mean_curve(spectra, "model")
        if model is not None:
            series.append((r.label, model))
    return spectrum_png(truth, series, title=f"{task}: energy spectrum of the long runs") if truth is not None else None


def _decay_rates(task: str, rows: Sequence[DynamicsRow]) -> bytes | None:
    exact, series, scored = None, [], set()
    for r in rows:
        blocks = [a["decay_rates"] for a in r.analyses if isinstance(a.get("decay_rates"), Mapping)]
        if exact is None:
            exact = _mean_curve(blocks[:1], "true")
        model = _mean_curve(blocks, "model")
        if model is not None:
            series.append((r.label, model))
        for b in blocks:
            modes = _array(b.get("modes_scored"))
            scored |= {int(k) for k in (modes if modes is not None else []) if math.isfinite(k)}
    return decay_rates_png(exact, series, scored=sorted(scored), title=f"{task}: decay rate per Fourier mode") if exact is not None else None


def dynamics_plots(dynamics: Dynamics) -> dict[str, dict[str, bytes]]:
    """PNG bytes per task and kind (the keys of :data:`.dynamics.DYNAMICS_KINDS`), where the analyses have the data."""
    makers = {"dynamics_lyapunov": _lyapunov, "dynamics_attractor": _attractor, "dynamics_spacetime": lambda task, rows: _spacetime(task, rows, dynamics.infos.get(task)), "dynamics_spectrum": _spectrum, "dynamics_decay_rates": _decay_rates}
    out: dict[str, dict[str, bytes]] = {}
    for task in dynamics.tasks:
        rows = dynamics.rows.get(task, ())
        images = {kind: png for kind, make in makers.items() if (png := make(task, rows)) is not None}
        if images:
            out[task] = images
    return out
