"""The board's "Learned dynamics" subsections, checked on hand-made run and analysis records.

Run records come from the factory of tests/test_leaderboard.py; each analysis record
names its run's ``run_id`` and carries known numbers, so every cell can be checked.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from odebench.analysis.records import ANALYSIS_SCHEMA, ANALYSIS_SCHEMA_VERSION, analysis_path, validate_analysis, write_analysis
from odebench.leaderboard import DYNAMICS_KINDS, aggregate, dynamics_plots, pair_analyses, render_markdown, write_leaderboard
from odebench.leaderboard.dynamics import dynamics_legend, dynamics_section
from odebench.results import read_records, write_record


def _board_records() -> ModuleType:
    """tests/test_leaderboard.py as a module, for its record factory (test files are not importable by name)."""
    spec = importlib.util.spec_from_file_location("_leaderboard_records", Path(__file__).with_name("test_leaderboard.py"))
    if spec is None or spec.loader is None:
        raise ImportError("cannot load tests/test_leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BOARD = _board_records()
make_record = _BOARD.make_record
forecast_metrics = _BOARD.forecast_metrics
SPECS: dict[str, dict[str, Any]] = _BOARD.SPECS
CHAOS, HEAT = "toy-chaos-forecast", "toy-heat-forecast"
KS = "toy-ks-forecast"
KS_SPEC = {**SPECS[CHAOS], "name": KS, "state_shape": [8], "lyapunov_exponent": 0.05}
LAMBDA = 0.5  # λ1 of the toy chaotic task's spec


# --- factories --------------------------------------------------------------------------


def run(task: str = CHAOS, model: str = "resnet", seed: int = 0, vpt: float = 2.0, **kw: Any) -> dict[str, Any]:
    """A successful run record with a ``run_id`` (what 'odebench run' writes)."""
    chaotic = task != HEAT
    spec = KS_SPEC if task == KS else None
    rec = make_record(task, model, seed, metrics=forecast_metrics(vpt=vpt, chaotic=chaotic), spec=spec, **kw)
    rec["run_id"] = f"{task}-{model}-{seed}-{kw.get('created', '0')}"
    return rec


def lyapunov(lambda1: float | None, regime: str | None = None, true: float = LAMBDA) -> dict[str, Any]:
    return {
        "lambda1": lambda1,
        "lambda1_true": true,
        "relative_error": None if lambda1 is None else abs(lambda1 - true) / true,
        "regime": regime or ("diverged" if lambda1 is None else "chaotic"),
        "per_rollout": [lambda1, lambda1],
        "method": "two-trajectory renormalisation",
        "time": 100.0,
        "renormalise_every": 10,
        "epsilon": 1e-8,
    }


def long_run(w1: list[float | None] | None, floor: list[float] | None = None, diverged: float = 0.0, variables: tuple[str, ...] = ("x", "y", "z"), **extra: Any) -> dict[str, Any]:
    return {
        "time": 100.0,
        "burn_in": 10.0,
        "n_rollouts": 4,
        "escape_factor": 10.0,
        "variables": list(variables),
        "diverged_fraction": diverged,
        "diverged_at": [None] * 4,
        "wasserstein": w1,
        "wasserstein_floor": floor if floor is not None else [0.02] * len(variables),
        "spectrum_error": None,
        "spectrum_error_floor": None,
        "spectrum": None,
        **extra,
    }


def variant(score: float | str) -> dict[str, Any]:
    """A robustness variant: a number is a score that ran, "n/a" or "failed" otherwise."""
    status = "ok" if isinstance(score, float) else score
    return {"status": status, "description": "test", "score": score if status == "ok" else None, "nrmse_mean": None, "diverged_fraction": 0.0 if status == "ok" else None, "note": None}


def robustness(native: float, half: float | str = "n/a", double: float | str = "n/a", other: float | str = "n/a", *, metric: str = "vpt", reproduces: bool = True) -> dict[str, Any]:
    return {
        "metric": metric,
        "n_items": 4,
        "reproduces_record": reproduces,
        "variants": {"native": variant(native), "half_step": variant(half), "double_step": variant(double), "other_solver": variant(other)},
    }


def attractor(model: bool = True) -> dict[str, Any]:
    a = [math.cos(0.1 * i) for i in range(200)]
    b = [math.sin(0.2 * i) for i in range(200)]
    return {"variables": [0, 2], "names": ["x", "z"], "true": {"a": a, "b": b}, "model": {"a": [0.9 * v for v in a], "b": b} if model else None}


def analysis(rec: dict[str, Any], *, status: str = "ok", error: str | None = None, created: str = "2025-02-01T00:00:00Z", **blocks: Any) -> dict[str, Any]:
    """An analysis record of ``rec`` with the layout of odebench.analysis.records; ``blocks`` override the parts."""
    heat = rec["task"]["name"] == HEAT
    out: dict[str, Any] = {
        "schema": ANALYSIS_SCHEMA,
        "analysis_schema_version": ANALYSIS_SCHEMA_VERSION,
        "created": created,
        "status": status,
        "error": error,
        "traceback": None,
        "seconds": 1.0,
        "run": {
            "file": "x.json",
            "run_id": rec["run_id"],
            "task": rec["task"]["name"],
            "task_version": "1",
            "kind": "forecast",
            "model": rec["model"]["name"],
            "args": {},
            "seed": rec["seed"],
            "profile": rec["profile"],
            "data_sha256": rec["task"]["data_sha256"],
            "weights_sha256": "f" * 64,
            "reference": bool(rec["model"].get("reference", False)),
        },
        "config": {},
        "env": {},
        "truth": {"lyapunov_exponent": None if heat else LAMBDA, "lyapunov_time": None if heat else 1 / LAMBDA, "time_unit": "time units" if heat else "Lyapunov times"},
        "long_run": None if heat else long_run([0.1, 0.2, 0.3]),
        "lyapunov": None if heat else lyapunov(0.5),
        "robustness": robustness(2.0),
        "decay_rates": None,
        "figures": {"attractor": None, "spacetime": None},
    }
    if status != "ok":
        out.update({"long_run": None, "lyapunov": None, "robustness": {}, "figures": {"attractor": None, "spacetime": None}})
    out.update(blocks)
    return validate_analysis(out)


def store(results: Path, rec: dict[str, Any], ana: dict[str, Any] | None = None) -> Path:
    """Write the run record and, if given, its analysis next to it."""
    path = write_record(results, rec)
    if ana is not None:
        write_analysis(analysis_path(path), ana)
    return path


def dynamics_of(md: str, task: str) -> str:
    """The learned-dynamics subsection of ``task``."""
    section = md.split(f"## {task.replace('_', chr(92) + '_')}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("### Learned dynamics\n", 1)[1]


def tables(text: str) -> list[list[dict[str, str]]]:
    """Every table in ``text``, as one dict per row keyed by header."""
    out, block = [], []
    for ln in [*text.splitlines(), ""]:
        if ln.startswith("|"):
            block.append([c.strip() for c in ln.strip().strip("|").split(" | ")])
        elif block:
            out.append([dict(zip(block[0], r)) for r in block[2:]])
            block = []
    return out


# --- read_records -----------------------------------------------------------------------


def test_read_records_leaves_analysis_files_alone(tmp_path: Path) -> None:
    rec = run()
    store(tmp_path, rec, analysis(rec))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{CHAOS}__resnet__standard__seed0.analysis.json", f"{CHAOS}__resnet__standard__seed0.json"]
    records, skipped = read_records(tmp_path)
    assert skipped == [] and [r["run_id"] for r in records] == [rec["run_id"]]


# --- pairing ----------------------------------------------------------------------------


def test_analyses_pair_by_run_id_with_the_runs_the_board_keeps() -> None:
    kept = run(seed=0)
    older, newer = run(seed=1, created="2025-01-01T00:00:00Z"), run(seed=1, created="2025-01-02T00:00:00Z")
    stale_data = run(model="neural-ode", sha="c" * 64)
    records = [kept, older, newer, stale_data]
    agg = aggregate(records, {CHAOS: make_record()["task"]["data_sha256"]})
    rerun = {**analysis(kept, lyapunov=lyapunov(0.9)), "run": {**analysis(kept)["run"], "run_id": "a-run-that-was-re-run"}}
    analyses = [
        analysis(kept, lyapunov=lyapunov(0.4)),
        analysis(older, lyapunov=lyapunov(0.7)),  # its run lost the dedupe to a newer record of seed 1
        analysis(newer, lyapunov=lyapunov(0.6)),
        analysis(stale_data, lyapunov=lyapunov(0.8)),  # its run was made on stale data
        rerun,  # names a run_id the board does not have
    ]
    dyn = pair_analyses(agg, analyses)
    (row,) = dyn.rows[CHAOS]
    assert (row.label, row.seeds, row.n_seeds) == ("resnet", (0, 1), 2)
    assert [a["lyapunov"]["lambda1"] for a in row.analyses] == [0.4, 0.6]
    assert dyn.n_paired == 2 and dyn.tasks == (CHAOS,)
    (note,) = dyn.notes
    assert note.startswith("ignored 3 analysis record(s)") and "neural-ode seed 0" in note and "resnet seed 1" in note
    table = tables(dynamics_section(agg, dyn, CHAOS)[2])[0]
    assert table[0]["λ1"] == "0.500 ± 0.141" and table[0]["seeds analysed"] == "2/2"


def test_two_analyses_of_one_run_count_once_the_latest() -> None:
    rec = run()
    agg = aggregate([rec])
    dyn = pair_analyses(agg, [analysis(rec, lyapunov=lyapunov(0.7), created="2025-03-01T00:00:00Z"), analysis(rec, lyapunov=lyapunov(0.3), created="2025-02-01T00:00:00Z")])
    assert [a["lyapunov"]["lambda1"] for a in dyn.rows[CHAOS][0].analyses] == [0.7]
    assert dyn.notes == (f"2 analysis records for {CHAOS} / resnet seed 0 (run {rec['run_id'][:12]}): kept the latest (created 2025-03-01T00:00:00Z), ignored the others",)


# --- the table --------------------------------------------------------------------------


def _chaos_board() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Three analysed neural-ode seeds with known numbers, two diverged resnet seeds, a failure, an unanalysed row and a reference."""
    records, analyses = [], []
    cases = [
        (0.4, "chaotic", [0.1, 0.2, 0.3], 0.0, robustness(3.0, 2.5, "n/a", 2.0)),
        (0.5, "chaotic", [0.2, 0.3, 0.4], 0.0, robustness(4.0, 2.5, "n/a", 2.0)),
        (0.6, "cycle", [0.3, 0.4, 0.5], 0.5, robustness(5.0, 2.5, "n/a", "failed")),
    ]
    for seed, (lam, regime, w1, diverged, rob) in enumerate(cases):
        rec = run(model="neural-ode", seed=seed, vpt=3.0 + seed)
        records.append(rec)
        analyses.append(analysis(rec, lyapunov=lyapunov(lam, regime), long_run=long_run(w1, floor=[0.01, 0.02, 0.03], diverged=diverged), robustness=rob, figures={"attractor": attractor(), "spacetime": None}))
    for seed in range(2):
        rec = run(model="resnet", seed=seed)
        records.append(rec)
        analyses.append(analysis(rec, lyapunov=lyapunov(None), long_run=long_run(None, diverged=1.0), figures={"attractor": attractor(model=False), "spacetime": None}))
    failed = run(model="resnet", seed=2)
    records.append(failed)
    analyses.append(analysis(failed, status="failed", error="rollout blew up at t=3\nTraceback ..."))
    records.append(run(model="linear"))
    for seed in range(2):
        ref = run(model="exact", seed=seed, vpt=20.0)
        ref["model"]["reference"] = True
        records.append(ref)
        analyses.append(analysis(ref, lyapunov=lyapunov(0.49), long_run=long_run([0.01, 0.02, 0.03]), robustness=robustness(20.0)))
    return records, analyses


def _chaos_section() -> str:
    records, analyses = _chaos_board()
    agg = aggregate(records)
    return "\n".join(dynamics_section(agg, pair_analyses(agg, analyses), CHAOS))


def test_the_table_shows_means_over_seeds_na_and_diverged() -> None:
    ranked, refs, failed = tables(_chaos_section())
    node, resnet = ranked
    assert node == {
        "model": "neural-ode",
        "seeds analysed": "3/3",
        "λ1": "0.500 ± 0.100",
        "λ1 rel. error": "13%",  # mean of 20 %, 0 %, 20 %
        "regime": "chaotic 2/3",
        "W1/σ": "0.300",  # mean over variables (0.2, 0.3, 0.4), then over seeds
        "long runs diverged": "17%",
        "VPT native": "4.00",
        "VPT h/2": "2.50",
        "VPT 2h": "n/a",
        "VPT other solver": "2.00 (1 failed)",
    }
    assert resnet == {
        "model": "resnet",
        "seeds analysed": "2/3",
        "λ1": "diverged",
        "λ1 rel. error": "—",
        "regime": "diverged 2/2",
        "W1/σ": "diverged",
        "long runs diverged": "100%",
        "VPT native": "2.00",
        "VPT h/2": "n/a",
        "VPT 2h": "n/a",
        "VPT other solver": "n/a",
    }
    assert [r["reference"] for r in refs] == ["exact"] and refs[0]["λ1"] == "0.490 ± 0.00" and refs[0]["W1/σ"] == "0.0200"
    assert failed == [{"model": "resnet", "seed": "2", "error": "rollout blew up at t=3"}]


def test_the_line_under_the_table_gives_the_true_lambda_and_the_floors() -> None:
    section = _chaos_section()
    assert "True system: λ1 = 0.500 per task time unit." in section
    assert "two independent runs of the true system: W1/σ 0.0200 (mean over x, y, z)." in section
    assert "Not analysed: linear." in section
    assert section.index("| neural-ode") < section.index("References (not ranked") < section.index("| exact") < section.index("Failed analyses:")


def test_columns_empty_for_a_whole_task_are_left_out() -> None:
    heat = [run(HEAT, "neural-ode", seed) for seed in range(2)]
    decay = [{"k": [0, 1, 2], "model": [0.0, -1.1, -3.8], "true": [0.0, -1.0, -4.0], "tau": 0.1, "modes_scored": [1, 2], "relative_error": err, "linearised_at": "0"} for err in (0.05, 0.07)]
    analyses = [analysis(r, robustness=robustness(0.1 + 0.1 * r["seed"], 0.2, 0.4, "n/a", metric="nrmse_mean", reproduces=r["seed"] == 0), decay_rates=d) for r, d in zip(heat, decay)]
    agg = aggregate(heat)
    section = "\n".join(dynamics_section(agg, pair_analyses(agg, analyses), HEAT))
    (table,) = tables(section)
    assert table == [
        {
            "model": "neural-ode",
            "seeds analysed": "2/2",
            "nRMSE mean native": "0.150",
            "nRMSE mean h/2": "0.200",
            "nRMSE mean 2h": "0.400",
            "nRMSE mean other solver": "n/a",
            "decay-rate error": "6.0%",
            "notes": "native score differs from the run record (seed 1)",
        }
    ]
    assert "over modes 1–2" in section and "λ1" not in section and "Floors" not in section
    chaos_headers = list(tables(_chaos_section())[0][0])
    assert "spectrum error" not in chaos_headers and "decay-rate error" not in chaos_headers and "notes" not in chaos_headers


def test_test_forecasts_off_range_show_their_mean_share_and_the_seeds_that_had_any() -> None:
    records, analyses = [], []
    for model, shares in (("resnet", (0.0, 0.5, 1.0)), ("lm-resnet", (0.0, 0.0, 0.0))):
        for seed, share in enumerate(shares):
            rec = run(KS, model, seed)
            rob = robustness(1.0)
            rob["variants"]["native"]["escaped_fraction"] = share
            records.append(rec)
            analyses.append(analysis(rec, robustness=rob, config={"escape_factor": 2.0}))
    agg = aggregate(records)
    dynamics = pair_analyses(agg, analyses)
    (table,) = tables("\n".join(dynamics_section(agg, dynamics, KS)))
    assert {r["model"]: r["test forecasts off-range"] for r in table} == {"resnet": "50% (2/3 seeds)", "lm-resnet": "0%"}
    (legend,) = dynamics_legend(dynamics)
    assert "test forecasts off-range: the share of test trajectories" in legend and "the box 2 times the training split's range" in legend
    # analyses written before the share existed: no column and no legend entry, so older boards re-render unchanged
    for a in analyses:
        del a["robustness"]["variants"]["native"]["escaped_fraction"]
    (table,) = tables("\n".join(dynamics_section(agg, pair_analyses(agg, analyses), KS)))
    assert "test forecasts off-range" not in table[0] and "off-range" not in dynamics_legend(pair_analyses(agg, analyses))[0]


# --- the board --------------------------------------------------------------------------


def _ks_pair(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    rec = run(KS, "neural-ode", seed)
    true = [[math.sin(2 * math.pi * j / 8 + 0.1 * i) for j in range(8)] for i in range(20)]
    model = [[None if (i >= 15 and j == 3) else 1.1 * v for j, v in enumerate(row)] for i, row in enumerate(true)]
    k = list(range(1, 9))
    spectrum = {"k": k, "model": [2.0 * 10 ** (-0.3 * x) for x in k], "true": [10 ** (-0.3 * x) for x in k]}
    ana = analysis(
        rec,
        lyapunov=lyapunov(0.06, true=0.05),
        long_run=long_run([0.2], variables=("u",), spectrum_error=0.3 + 0.1 * seed, spectrum_error_floor=0.05, spectrum=spectrum),
        figures={"attractor": None, "spacetime": {"t": [0.25 * i for i in range(20)], "true": true, "model": model}},
    )
    return rec, ana


def _fill(results: Path, with_analyses: bool = True) -> None:
    records, analyses = _chaos_board()
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]] = [(r, None) for r in records]
    by_id = {a["run"]["run_id"]: a for a in analyses}
    pairs = [(r, by_id.get(r["run_id"])) for r, _ in pairs]
    pairs += [_ks_pair(s) for s in range(2)]
    for rec, ana in pairs:
        store(results, rec, ana if with_analyses else None)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_figures_are_written_and_a_rerender_is_byte_identical(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _fill(results)
    report = write_leaderboard(results, tmp_path / "a" / "README.md")
    write_leaderboard(results, tmp_path / "b" / "README.md")
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b")
    dynamic = sorted(name for name in files if "__dynamics_" in name)
    assert dynamic == [
        f"plots/{CHAOS}__dynamics_attractor.png",
        f"plots/{CHAOS}__dynamics_lyapunov.png",
        f"plots/{KS}__dynamics_lyapunov.png",
        f"plots/{KS}__dynamics_spacetime.png",
        f"plots/{KS}__dynamics_spectrum.png",
    ]
    assert all(files[name].startswith(b"\x89PNG") and b"Software" not in files[name] for name in dynamic)
    assert report.n_analyses == 10 and not report.skipped
    md = files["README.md"].decode("utf-8")
    ks = dynamics_of(md, KS)
    assert tables(ks)[0][0]["spectrum error"] == "0.350" and "spectrum error 0.0500" in ks
    links = [ln for ln in ks.splitlines() if ln.startswith("![")]
    assert links == [f"![{KS}: {DYNAMICS_KINDS[k]}](plots/{KS}__{k}.png)" for k in ("dynamics_lyapunov", "dynamics_spacetime", "dynamics_spectrum")]
    before = md.split(f"## {KS}\n", 1)[1].split("### Learned dynamics", 1)[0]
    assert "__dynamics_" not in before  # the main images stay the main ones
    assert "- Learned dynamics (a subsection under a forecast task" in md and "described in the README" in md


def test_a_board_without_analyses_is_unchanged(tmp_path: Path) -> None:
    _fill(tmp_path / "plain", with_analyses=False)
    _fill(tmp_path / "analysed")
    write_leaderboard(tmp_path / "plain", tmp_path / "p" / "README.md")
    write_leaderboard(tmp_path / "analysed", tmp_path / "q" / "README.md")
    plain, analysed = _files(tmp_path / "p"), _files(tmp_path / "q")
    text = plain.pop("README.md").decode("utf-8")
    assert "Learned dynamics" not in text and "analysis" not in text
    records, _ = read_records(tmp_path / "plain")
    assert text == render_markdown(aggregate(records), {t: {k: f"plots/{t}__{k}.png" for k in ("error_growth", "pareto")} for t in (CHAOS, KS)})
    assert all(analysed[name] == png for name, png in plain.items())  # the board's own figures do not change
    lines = iter(analysed["README.md"].decode("utf-8").splitlines())
    assert all(any(ln == other for other in lines) for ln in text.splitlines())  # analyses only add lines
    agg = aggregate(records)
    assert render_markdown(agg, dynamics=pair_analyses(agg, [])) == render_markdown(agg)


def test_an_invalid_analysis_file_is_named_in_the_notes(tmp_path: Path) -> None:
    rec = run()
    store(tmp_path / "results", rec, analysis(rec))
    (tmp_path / "results" / "sub").mkdir()
    (tmp_path / "results" / "sub" / "old.analysis.json").write_text(json.dumps({**analysis(rec), "analysis_schema_version": 0}), encoding="utf-8")
    report = write_leaderboard(tmp_path / "results", tmp_path / "README.md", plots=False)
    md = report.out_file.read_text(encoding="utf-8")
    assert [str(s.path) for s in report.skipped] == ["sub/old.analysis.json"]
    assert "- skipped sub/old.analysis.json: analysis\\_schema\\_version 0 is not 1; re-run 'odebench analyze' to rewrite it" in md
    assert "1 file(s) skipped" in md and report.n_analyses == 1


# --- the figures ------------------------------------------------------------------------


def test_diverged_seeds_are_drawn_apart_and_non_finite_values_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from odebench.leaderboard import dynamics_figures as figures

    monkeypatch.setattr(figures, "_png", lambda fig: fig)  # keep the figures to read them
    records, analyses = _chaos_board()
    ks = [_ks_pair(s) for s in range(2)]
    agg = aggregate([*records, *(r for r, _ in ks)])
    images: Any = dynamics_plots(pair_analyses(agg, [*analyses, *(a for _, a in ks)]))
    ax = images[CHAOS]["dynamics_lyapunov"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["true λ1 = 0.5", "seed diverged (no λ1), drawn at the bottom"]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["neural-ode", "resnet", "exact"]
    bottom = [c for c in ax.collections if c.get_offset_transform() != ax.transData and len(c.get_offsets())]
    assert len(bottom) == 1 and bottom[0].get_offsets()[:, 1].tolist() == [0.03, 0.03]  # resnet's two diverged seeds, in axes units at the bottom
    panels = images[CHAOS]["dynamics_attractor"].axes
    assert [a.get_title() for a in panels] == ["neural-ode (chaotic)", "resnet (diverged)"]  # named with their regime; the reference's analyses carry no attractor
    assert [t.get_text() for t in panels[1].texts] == ["diverged"] and len(panels[0].lines) == 3 and len(panels[1].lines) == 1  # truth, run, end marker
    spacetime = images[KS]["dynamics_spacetime"].axes
    truth, model = spacetime[0].images[0].get_array(), spacetime[1].images[0].get_array()
    assert truth.shape == (8, 20) and int(truth.mask.sum()) == 0 and int(model.mask.sum()) == 5
    assert spacetime[0].images[0].get_clim() == spacetime[1].images[0].get_clim()
    assert [a.get_xlabel() for a in spacetime if a.get_xlabel()] == ["t [Lyapunov times]"]  # stored in task time (0 … 4.75), drawn in Lyapunov times
    assert spacetime[0].images[0].get_extent()[:2] == pytest.approx([0.0, 4.75 * KS_SPEC["lyapunov_exponent"]])  # the task spec's λ1, as for the error-growth plots
