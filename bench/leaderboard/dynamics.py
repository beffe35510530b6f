"""Learned dynamics on the board: analysis records paired with the board's runs, per row.

An analysis record (:mod:`odebench.analysis.records`) names the ``run_id`` of the run
record it analysed. Only analyses of runs the board keeps count, after its screening of
stale data and its dedupe, so an analysis of a run that was re-run, excluded or removed
is ignored, and the notes say so. Per board row (the main table's row and label) the
analysed seeds are summarised the way the main table summarises seeds: means over the
seeds, "diverged" where every seed's long run blew up, "n/a" where the model offers no
such discretisation change (never a number). Like the rest of the board this is a
function of the files alone, so a re-render gives the same text.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis.records import REGIMES, VARIANTS
from .aggregate import Aggregate
from .formats import Formatter, format_value, percent
from .keys import number, one_line
from .mdtable import esc, md_table
from .taskinfo import MetricInfo, TaskInfo

__all__ = [
    "DYNAMICS_KINDS",
    "DynamicsRow",
    "AnalysisFailure",
    "Dynamics",
    "pair_analyses",
    "dynamics_table",
    "dynamics_section",
    "dynamics_legend",
]

#: Figure kinds of the learned-dynamics subsection, in the order they appear, with their captions.
DYNAMICS_KINDS: dict[str, str] = {
    "dynamics_lyapunov": "λ1 of each model's long runs, one marker per analysed seed; the line is the true λ1",
    "dynamics_attractor": "long run of each model (colour, lowest analysed seed) over the true attractor (grey)",
    "dynamics_spacetime": "one test state over the horizon: the truth and each model (lowest analysed seed) on one colour scale; grey is non-finite",
    "dynamics_spectrum": "energy spectrum E(k) of the long runs: the truth in black, each model the mean over its analysed seeds",
    "dynamics_decay_rates": "decay rate of each Fourier mode: exact −κ(2πk/L)² (line), each model's rates (markers, mean over analysed seeds)",
}
#: Column headers of the robustness variants (see :data:`odebench.analysis.records.VARIANTS`).
_VARIANT_HEADERS = {"native": "native", "half_step": "h/2", "double_step": "2h", "other_solver": "other solver"}
_NUMBER_FORMAT = "#.3g"


@dataclass(frozen=True)
class DynamicsRow:
    """One board row with its successful analyses, sorted by seed."""

    task: str
    label: str
    reference: bool
    n_seeds: int
    analyses: tuple[Mapping[str, Any], ...]

    @property
    def seeds(self) -> tuple[int, ...]:
        """The seeds with a successful analysis."""
        return tuple(int(a["run"]["seed"]) for a in self.analyses)


@dataclass(frozen=True)
class AnalysisFailure:
    """One failed analysis of a run on the board, as listed under its task's table."""

    task: str
    label: str
    seed: int
    error: str


@dataclass(frozen=True)
class Dynamics:
    """The analyses paired with an :class:`Aggregate`'s rows.

    ``rows`` maps a task to its rows with at least one successful analysis, in the main
    table's order (profiles, then ranked rows, then references); ``failures`` to its
    failed analyses; ``unanalysed`` to the labels of its rows without any analysis.
    ``notes`` are what was ignored, for the board's notes; ``infos`` the tasks' specs as
    the board reads them (their time unit, for the figures).
    """

    rows: Mapping[str, tuple[DynamicsRow, ...]]
    failures: Mapping[str, tuple[AnalysisFailure, ...]]
    unanalysed: Mapping[str, tuple[str, ...]]
    notes: tuple[str, ...]
    infos: Mapping[str, TaskInfo | None] = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks with a learned-dynamics subsection, sorted."""
        return tuple(sorted(set(self.rows) | set(self.failures)))

    @property
    def n_paired(self) -> int:
        """How many analyses (successful or failed) belong to runs on the board."""
        return sum(len(r.analyses) for rows in self.rows.values() for r in rows) + sum(len(f) for f in self.failures.values())


# --- pairing ----------------------------------------------------------------------------


def _run_name(rec: Mapping[str, Any]) -> str:
    run = rec["run"]
    return f"{run.get('task')} / {run.get('model')} seed {run.get('seed')}"


def _chosen(agg: Aggregate, analyses: Sequence[Mapping[str, Any]], notes: list[str]) -> dict[str, Mapping[str, Any]]:
    """run_id → the analysis kept for it: one per run on the board, the latest created."""
    chosen: dict[str, Mapping[str, Any]] = {}
    counts: dict[str, int] = defaultdict(int)
    stale: list[str] = []
    for rec in analyses:
        run = rec["run"]
        hit = agg.run_ids.get(str(run.get("run_id")))
        kind = agg.tasks[hit[0][0]].kind if hit is not None else None
        if hit is None or hit[0][0] != str(run.get("task")) or hit[1] != run.get("seed") or kind != "forecast":
            stale.append(_run_name(rec))
            continue
        run_id = str(run["run_id"])
        counts[run_id] += 1
        if run_id not in chosen or str(rec.get("created")) > str(chosen[run_id].get("created")):
            chosen[run_id] = rec
    if stale:
        notes.append(
            f"ignored {len(stale)} analysis record(s) whose run is not a successful forecast run on this board (re-run, excluded or removed since): "
            f"{', '.join(sorted(stale))}; rerun 'odebench analyze' to analyse the current runs"
        )
    for run_id, c in sorted(counts.items()):
        if c > 1:
            rec = chosen[run_id]
            notes.append(f"{c} analysis records for {_run_name(rec)} (run {run_id[:12]}): kept the latest (created {rec.get('created')}), ignored the others")
    return chosen


def pair_analyses(agg: Aggregate, analyses: Sequence[Mapping[str, Any]]) -> Dynamics:
    """Pair analysis records with the board's kept successful forecast runs by ``run_id``.

    An analysis must name a run the board keeps, of the same task and seed; any other
    is ignored with a note. Two analyses of one run (a copied results directory) count
    once: the latest created.
    """
    notes: list[str] = []
    chosen = _chosen(agg, analyses, notes)
    by_key: dict[tuple[str, ...], dict[int, Mapping[str, Any]]] = defaultdict(dict)
    for run_id, rec in chosen.items():
        key, seed = agg.run_ids[run_id]
        by_key[key][seed] = rec
    rows: dict[str, list[DynamicsRow]] = defaultdict(list)
    failures: dict[str, list[AnalysisFailure]] = defaultdict(list)
    unanalysed: dict[str, list[str]] = defaultdict(list)
    tasks = sorted({agg.run_ids[r][0][0] for r in chosen})
    for task, profile in agg.tables():
        if task not in tasks:
            continue
        for references in (False, True):
            for row in agg.table_rows(task, profile, references).to_dict("records"):
                found = by_key.get(agg.row_key(row), {})
                label = agg.series_label(row)
                if not found:
                    unanalysed[task].append(label)
                    continue
                ok = tuple(found[s] for s in sorted(found) if found[s]["status"] == "ok")
                failures[task] += [AnalysisFailure(task, label, s, one_line(found[s].get("error"))) for s in sorted(found) if found[s]["status"] != "ok"]
                if ok:
                    rows[task].append(DynamicsRow(task=task, label=label, reference=references, n_seeds=int(row["n"]), analyses=ok))
    return Dynamics(
        rows={t: tuple(v) for t, v in rows.items()},
        failures={t: tuple(v) for t, v in failures.items()},
        unanalysed={t: tuple(v) for t, v in unanalysed.items() if t in rows or t in failures},
        notes=tuple(notes),
        infos={t: agg.tasks[t].info for t in tasks if t in agg.tasks},
    )


# --- reading the records ----------------------------------------------------------------


def _block(rec: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = rec.get(name)
    return value if isinstance(value, Mapping) else None


def _floats(value: Any) -> list[float]:
    """A JSON list of numbers as floats (NaN for null); empty for anything else."""
    return [number(v) for v in value] if isinstance(value, list) else []


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _fmt(value: float) -> str:
    return format_value(value, _NUMBER_FORMAT)


def _error_percent(x: float) -> str:
    """A relative error as a percentage: one decimal below 10 %, whole above."""
    return f"{100 * x:.1f}%" if abs(x) < 0.1 else f"{100 * x:.0f}%"


def _span(values: Sequence[float], fmt: Formatter) -> str:
    """One value as shown, or "low–high" when the analyses disagree at the shown precision."""
    if len({fmt(v) for v in values}) == 1:
        return fmt(values[0])
    return f"{fmt(min(values))}–{fmt(max(values))}"


# --- the cells of one row ---------------------------------------------------------------


def _lyapunov_cells(analyses: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """λ1 (mean ± sd over seeds), its relative error and the most common regime."""
    blocks = [b for b in (_block(a, "lyapunov") for a in analyses) if b is not None]
    if not blocks:
        return "", "", ""
    lams = _finite([number(b.get("lambda1")) for b in blocks])
    n_diverged = len(blocks) - len(lams)
    if not lams:
        lam = "diverged"
    else:
        spread = f" ± {_fmt(float(np.std(lams, ddof=1)))}" if len(lams) > 1 else ""
        lam = f"{_fmt(_mean(lams))}{spread}" + (f"; {n_diverged} diverged" if n_diverged else "")
    errors = _finite([number(b.get("relative_error")) for b in blocks])
    error = _error_percent(_mean(errors)) if errors else "—"
    regimes = Counter(str(b.get("regime")) for b in blocks)
    order = {r: i for i, r in enumerate(REGIMES)}
    name, n = min(regimes.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order)), kv[0]))
    return lam, error, f"{name} {n}/{len(blocks)}"


def _long_run_cells(analyses: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """W1/σ (mean over variables, then seeds), spectrum error and the diverged share of long runs."""
    blocks = [b for b in (_block(a, "long_run") for a in analyses) if b is not None]
    if not blocks:
        return "", "", ""
    scored = [b for b in blocks if isinstance(b.get("wasserstein"), list) or _floats(b.get("wasserstein_floor"))]
    w1 = _finite([_mean(_finite(_floats(b.get("wasserstein")))) for b in scored])
    n_div = len(scored) - len(w1)
    w1_text = "" if not scored else ("diverged" if not w1 else _fmt(_mean(w1)) + (f"; {n_div} diverged" if n_div else ""))
    spectral = [b for b in blocks if math.isfinite(number(b.get("spectrum_error"))) or math.isfinite(number(b.get("spectrum_error_floor")))]
    spectrum = _finite([number(b.get("spectrum_error")) for b in spectral])
    spectrum_text = "" if not spectral else ("diverged" if not spectrum else _fmt(_mean(spectrum)))
    diverged = _finite([number(b.get("diverged_fraction")) for b in blocks])
    return w1_text, spectrum_text, percent(_mean(diverged)) if diverged else "—"


def _variant_entries(analyses: Sequence[Mapping[str, Any]], variant: str) -> list[Mapping[str, Any]]:
    """The ``variant`` entry of each analysis's robustness block, where it has one."""
    entries = []
    for a in analyses:
        variants = (_block(a, "robustness") or {}).get("variants")
        entry = variants.get(variant) if isinstance(variants, Mapping) else None
        if isinstance(entry, Mapping):
            entries.append(entry)
    return entries


def _variant_cell(analyses: Sequence[Mapping[str, Any]], variant: str, fmt: Formatter) -> str:
    """A robustness variant's mean score over the seeds where it ran; "n/a" where the model offers none."""
    entries = _variant_entries(analyses, variant)
    if not entries:
        return ""
    ran = [e for e in entries if e.get("status") == "ok"]
    n_failed = sum(1 for e in entries if e.get("status") == "failed")
    if not ran:
        return "failed" if n_failed else "n/a"
    scores = [number(e.get("score")) for e in ran]
    # Like the main table: a seed without a finite score makes the mean unavailable.
    text = fmt(_mean(scores)) if all(math.isfinite(s) for s in scores) else "—"
    return text + (f" ({n_failed} failed)" if n_failed else "")


def _escape_cell(analyses: Sequence[Mapping[str, Any]]) -> str:
    """The share of test forecasts (as trained) that diverge or leave the training range's box, mean over seeds."""
    shares = _finite([number(e.get("escaped_fraction")) for e in _variant_entries(analyses, "native") if e.get("status") == "ok"])
    if not shares:
        return ""
    hit = sum(1 for x in shares if x > 0)
    return percent(_mean(shares)) + (f" ({hit}/{len(shares)} seeds)" if hit else "")


def _decay_cell(analyses: Sequence[Mapping[str, Any]]) -> str:
    blocks = [b for b in (_block(a, "decay_rates") for a in analyses) if b is not None]
    if not blocks:
        return ""
    errors = _finite([number(b.get("relative_error")) for b in blocks])
    return _error_percent(_mean(errors)) if errors else "—"


def _notes(analyses: Sequence[Mapping[str, Any]]) -> str:
    off = [int(a["run"]["seed"]) for a in analyses if (_block(a, "robustness") or {}).get("reproduces_record") is False]
    if not off:
        return ""
    return f"native score differs from the run record (seed{'s' if len(off) > 1 else ''} {', '.join(str(s) for s in off)})"


def _robustness_metric(rows: Sequence[DynamicsRow], metrics: Sequence[MetricInfo]) -> tuple[str, Formatter]:
    """The short name and format of the score the robustness variants report."""
    keys = Counter(str((_block(a, "robustness") or {}).get("metric")) for r in rows for a in r.analyses)
    key = min(keys.items(), key=lambda kv: (-kv[1], kv[0]))[0] if keys else ""
    info = next((m for m in metrics if m.key == key), None)
    if info is None:
        return key or "score", _fmt
    return info.label.split(" (")[0], info.fmt


# --- markdown ---------------------------------------------------------------------------


def dynamics_table(rows: Sequence[DynamicsRow], metrics: Sequence[MetricInfo] = (), *, references: bool = False) -> str:
    """The learned-dynamics table of ``rows``; columns empty for every row are left out.

    ``metrics`` are the task's declared metrics, which give the robustness score's label
    and format.
    """
    name, fmt = _robustness_metric(rows, metrics)
    body: list[list[str]] = []
    for r in rows:
        lyap = _lyapunov_cells(r.analyses)
        long_run = _long_run_cells(r.analyses)
        variants = [_variant_cell(r.analyses, v, fmt) for v in VARIANTS]
        body.append([esc(r.label), f"{len(r.analyses)}/{r.n_seeds}", *lyap, *long_run, _escape_cell(r.analyses), *variants, _decay_cell(r.analyses), esc(_notes(r.analyses))])
    headers = [
        "reference" if references else "model",
        "seeds analysed",
        "λ1",
        "λ1 rel. error",
        "regime",
        "W1/σ",
        "spectrum error",
        "long runs diverged",
        "test forecasts off-range",
        *(f"{name} {_VARIANT_HEADERS[v]}" for v in VARIANTS),
        "decay-rate error",
        "notes",
    ]
    right = [False, True, True, True, False, True, True, True, True, *([True] * len(VARIANTS)), True, False]
    keep = [i for i in range(len(headers)) if i < 2 or any(row[i] for row in body)]
    return md_table([esc(headers[i]) for i in keep], [[row[i] for i in keep] for row in body], [right[i] for i in keep])


def _truth_line(rows: Sequence[DynamicsRow]) -> str:
    """The true system's λ1 and the floors of the distribution statistics, under the table."""
    analyses = [a for r in rows for a in r.analyses]
    parts: list[str] = []
    lam = _finite([number((_block(a, "lyapunov") or {}).get("lambda1_true")) for a in analyses])
    if not lam:
        lam = _finite([number((_block(a, "truth") or {}).get("lyapunov_exponent")) for a in analyses])
    if lam:
        parts.append(f"True system: λ1 = {_span(lam, _fmt)} per task time unit.")
    long_runs = [b for b in (_block(a, "long_run") for a in analyses) if b is not None]
    floors: list[str] = []
    w_floor = _finite([_mean(_finite(_floats(b.get("wasserstein_floor")))) for b in long_runs])
    if w_floor:
        names: list[Any] = next((b["variables"] for b in long_runs if isinstance(b.get("variables"), list) and b["variables"]), [])
        over = f" (mean over {', '.join(str(v) for v in names)})" if len(names) > 1 else ""
        floors.append(f"W1/σ {_span(w_floor, _fmt)}{over}")
    s_floor = _finite([number(b.get("spectrum_error_floor")) for b in long_runs])
    if s_floor:
        floors.append(f"spectrum error {_span(s_floor, _fmt)}")
    if floors:
        parts.append(f"Floors, the same statistic between two independent runs of the true system: {'; '.join(floors)}.")
    decay = [b for b in (_block(a, "decay_rates") for a in analyses) if b is not None]
    scored = sorted({int(k) for b in decay for k in _finite(_floats(b.get("modes_scored")))})
    if scored:
        modes = f"{scored[0]}–{scored[-1]}" if scored == list(range(scored[0], scored[-1] + 1)) else ", ".join(str(k) for k in scored)
        parts.append(f"Decay-rate error: relative error against the exact rates −κ(2πk/L)² over modes {modes}.")
    return esc(" ".join(parts))


def dynamics_section(agg: Aggregate, dynamics: Dynamics, task: str, links: Mapping[str, str] | None = None) -> list[str]:
    """The "Learned dynamics" subsection of ``task`` as markdown lines (none if it has no analysis).

    ``links`` maps a kind of :data:`DYNAMICS_KINDS` to its image's relative link.
    """
    if task not in dynamics.tasks:
        return []
    info = agg.tasks[task].info
    metrics = info.metrics if info is not None else ()
    rows = dynamics.rows.get(task, ())
    ranked = [r for r in rows if not r.reference]
    refs = [r for r in rows if r.reference]
    out = ["### Learned dynamics", ""]
    if ranked:
        out += [dynamics_table(ranked, metrics), ""]
    if refs:
        out += ["References (not ranked: the true system analysed the same way):", "", dynamics_table(refs, metrics, references=True), ""]
    if rows:
        out += [_truth_line(rows), ""]
    failures = dynamics.failures.get(task, ())
    if failures:
        body = [[esc(f.label), str(f.seed), esc(f.error)] for f in failures]
        out += ["Failed analyses:", "", md_table(["model", "seed", "error"], body, [False, True, False]), ""]
    unanalysed = dynamics.unanalysed.get(task, ())
    if unanalysed:
        out += [esc(f"Not analysed: {', '.join(unanalysed)}."), ""]
    for kind, caption in DYNAMICS_KINDS.items():
        if links and kind in links:
            out += [f"![{esc(f'{task}: {caption}')}]({links[kind]})", ""]
    return out


def _escape_factors(dynamics: Dynamics) -> str:
    """The analyses' escape factors ("2", or "2–3" where settings differ)."""
    factors = _finite([number((a.get("config") or {}).get("escape_factor")) for rows in dynamics.rows.values() for r in rows for a in r.analyses])
    return _span(factors, lambda x: f"{x:g}") if factors else "escape_factor"


def dynamics_legend(dynamics: Dynamics | None) -> list[str]:
    """How to read the learned-dynamics tables (nothing when the board has none)."""
    if dynamics is None or not dynamics.tasks:
        return []
    return [
        "- Learned dynamics (a subsection under a forecast task, from the analysis records written next to the run records by `odebench analyze`; "
        "the methods are described in the README): one row per board row, numbers over its analysed seeds, columns with nothing to show left out. "
        "seeds analysed: seeds with an analysis / successful seeds. "
        "λ1: the largest Lyapunov exponent of the model's own long runs, mean ± sd over seeds, per task time unit; diverged: every long run blew up. "
        "λ1 rel. error: |λ1 − true λ1| / true λ1. regime: what the long runs settle into (chaotic, cycle, fixed point, contracting, diverged), the most common with its count. "
        "W1/σ: Wasserstein-1 distance between the model's and the true long-run distribution of each variable, in units of the true σ, mean over variables; "
        "spectrum error: distance between the long runs' energy spectra; read both against the floor under the table (two independent true runs: what sampling noise alone gives). "
        "long runs diverged: their share that blew up. "
        + (
            "test forecasts off-range: the share of test trajectories whose forecast (as trained, over the whole horizon) is non-finite or leaves, "
            f"at some time and in some variable, the box {_escape_factors(dynamics)} times the training split's range about its centre: off the attractor, "
            "however good its VPT; mean over seeds, with the seeds that had any. "
            if any(_escape_cell(r.analyses) for rows in dynamics.rows.values() for r in rows)
            else ""
        )
        + "native, h/2, 2h, other solver: the main score rescored at the trained step, at half and double the step and with another solver "
        "(n/a: the model offers no such change). decay-rate error: relative error of the per-mode decay rates against the exact ones."
    ]
