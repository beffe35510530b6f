"""Leaderboard aggregation and rendering, checked on hand-made records with known numbers.

The records are schema 2 and self-describing: each carries its task's spec, from which
the board takes the main score and every metric's label, format and direction.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from odebench.leaderboard import aggregate, pareto_front, render_markdown, task_plots, write_leaderboard
from odebench.results import SkippedFile, validate_record, write_record
from odebench.spec import SCHEMA_VERSION, TaskSpec

SHA = "a" * 64
CPU = {"device": "cpu", "device_name": "Test CPU 3000", "cpu_model": "Test CPU 3000", "threads": 1}
GPU = {"device": "cuda", "device_name": "Test GPU X1", "cpu_model": "Test CPU 3000", "threads": 4}

CHAOS = TaskSpec(
    name="toy-chaos-forecast", version="1", kind="forecast", system="toy", state_shape=(3,), dt=0.5,
    n_times=9, train_window=3, eval_times=(1.0, 2.0), lyapunov_exponent=0.5,
)
HEAT = TaskSpec(name="toy-heat-forecast", version="1", kind="forecast", system="toy", state_shape=(4,), dt=0.5, n_times=9, train_window=3, eval_times=(1.0, 2.0))
CLASSIFY = TaskSpec(name="toy-classify", version="1", kind="classify", system="toy", state_shape=(2,), dt=0.1, n_times=5, n_classes=2)
SPECS = {spec.name: spec.to_dict() for spec in (CHAOS, HEAT, CLASSIFY)}
#: A plugin's task kind, as its objective would describe it: lower-is-better metrics and an informational one.
PLUGIN = {
    **CLASSIFY.to_dict(),
    "name": "toy-plugin-regress",
    "kind": "regress",
    "main_metric": "mae",
    "metrics": [
        {"key": "mae", "label": "MAE", "higher_is_better": False, "format": ".3f"},
        {"key": "max_error", "label": "max error", "higher_is_better": False, "format": "#.3g"},
        {"key": "coverage", "label": "coverage", "higher_is_better": None, "format": ".0%"},
    ],
}


def forecast_metrics(vpt: float | None = 2.0, nrmse: float = 0.1, curve_scale: float = 1.0, chaotic: bool = True) -> dict[str, Any]:
    t = [0.0, 1.0, 2.0, 3.0, 4.0]
    m: dict[str, Any] = {
        "nrmse_mean": nrmse,
        "nrmse@1": nrmse / 2,
        "nrmse@2": nrmse,
        "nrmse_curve": {"t": t, "nrmse": [0.0, *(curve_scale * 0.01 * math.exp(x) for x in t[1:])]},
        "n_test": 4,
    }
    if chaotic:
        m.update({"vpt": vpt, "vpt_median": vpt, "vpt_capped_fraction": 0.25, "horizon_lyapunov": 2.0})
    return m


def make_record(
    task: str = "toy-chaos-forecast",
    model: str = "resnet",
    seed: int = 0,
    *,
    status: str = "ok",
    metrics: dict[str, Any] | None = None,
    cost: dict[str, Any] | None = None,
    env: dict[str, Any] | None = None,
    hparams: dict[str, Any] | None = None,
    profile: str = "standard",
    sha: str = SHA,
    error: str | None = None,
    truncated: bool = False,
    created: str = "2025-01-01T00:00:00Z",
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A schema-2 record with the layout odebench.results writes; validate_record must accept it.

    ``spec`` defaults to the toy task's ``TaskSpec.to_dict()`` from :data:`SPECS`.
    """
    if spec is None:
        spec = SPECS[task]
    if metrics is None:
        metrics = forecast_metrics() if spec["kind"] == "forecast" else {"accuracy": 0.5, "macro_f1": 0.5}
    full_cost = {
        "nfe_forward": 10.0, "nfe_backward": 20.0, "train_seconds": 5.0, "infer_seconds": 0.5,
        "peak_gpu_bytes": None, "peak_cpu_bytes": 100 * 2**20, "params": 1000,
    }
    full_cost.update(cost or {})
    rec = {
        "schema_version": SCHEMA_VERSION,
        "created": created,
        "seed": seed,
        "profile": profile,
        "status": status,
        "error": error if status == "failed" else None,
        "traceback": None,
        "task": {"name": task, "version": spec["version"], "kind": spec["kind"], "data_sha256": sha, "spec": json.loads(json.dumps(spec))},
        "protocol": {"profile": profile, "max_steps": 10, "batch_size": 4, "learning_rate": 3e-3},
        "model": {"name": model, "distribution": "odebench", "version": "0.1.0", "hparams": hparams or {"width": 8}},
        "metrics": metrics if status == "ok" else {},
        "cost": full_cost if status == "ok" else {},
        "train": {"steps": 10, "truncated": truncated},
        "env": {"python": "3.11", "torch": "2.0", "git_commit": "0123456789abcdef", "git_dirty": False, **(env or CPU)},
    }
    return validate_record(rec)


def table_of(md: str, task: str) -> list[list[str]]:
    """The rows (header first) of the first table under ``## task``, cells stripped."""
    section = md.split(f"## {task.replace('_', chr(92) + '_')}\n", 1)[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    block = []
    for ln in section.splitlines()[section.splitlines().index(lines[0]):]:
        if not ln.startswith("|"):
            break
        block.append(ln)
    rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in block]
    return [rows[0], *rows[2:]]


def column(table: list[list[str]], header_start: str) -> list[str]:
    idx = next(i for i, h in enumerate(table[0]) if h.startswith(header_start))
    return [row[idx] for row in table[1:]]


def row_for(table: list[list[str]], model: str) -> dict[str, str]:
    matches = [dict(zip(table[0], r)) for r in table[1:] if r[1] == model]
    assert len(matches) == 1, f"expected one row for {model}, got {len(matches)}"
    return matches[0]


# --- aggregation ------------------------------------------------------------------------


def test_mean_std_and_n_over_seeds() -> None:
    vpts = [4.0, 5.0, 7.0]
    recs = [make_record(seed=s, metrics=forecast_metrics(vpt=v, nrmse=0.1 * (s + 1))) for s, v in enumerate(vpts)]
    agg = aggregate(recs, None)
    assert len(agg.rows) == 1
    row = agg.rows.iloc[0]
    assert row["n"] == 3
    assert row["metrics.vpt"] == pytest.approx(np.mean(vpts))
    assert row["metrics.vpt:std"] == pytest.approx(np.std(vpts, ddof=1))
    assert row["metrics.nrmse@2"] == pytest.approx(0.2)
    md = render_markdown(agg)
    main = row_for(table_of(md, "toy-chaos-forecast"), "resnet")
    assert main["main: VPT (Lyapunov times) ↑"] == "**5.33** ± 1.53 (n=3)"
    assert main["nRMSE@1 LT ↓"] == "**0.200**"  # nrmse@2 at λ1 = 0.5, labelled by the spec
    assert main["capped"] == "25%"
    one = render_markdown(aggregate(recs[:1], None))
    assert "**4.00** (n=1)" in one  # a single seed has no spread to show


def test_mean_curve_over_seeds() -> None:
    recs = [make_record(seed=s, metrics=forecast_metrics(curve_scale=c)) for s, c in enumerate([1.0, 3.0])]
    agg = aggregate(recs, None)
    t, y = agg.curve(agg.rows.iloc[0])
    np.testing.assert_allclose(t, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(y[1:], 0.02 * np.exp(t[1:]))


def test_main_score_and_columns_come_from_the_records_spec() -> None:
    recs = [make_record(), make_record("toy-heat-forecast", metrics=forecast_metrics(chaotic=False)), make_record("toy-classify")]
    agg = aggregate(recs, None)
    assert {t: (s.kind, s.main_metric, s.higher_is_better) for t, s in agg.tasks.items()} == {
        "toy-chaos-forecast": ("forecast", "vpt", True),
        "toy-heat-forecast": ("forecast", "nrmse_mean", False),
        "toy-classify": ("classify", "accuracy", True),
    }
    md = render_markdown(agg)
    # rank, model, main score, the spec's other metrics in its order, then the costs
    assert table_of(md, "toy-chaos-forecast")[0][:8] == ["rank", "model", "main: VPT (Lyapunov times) ↑", "nRMSE@0.5 LT ↓", "nRMSE@1 LT ↓", "nRMSE mean ↓", "capped", "NFE-F ↓"]
    assert table_of(md, "toy-heat-forecast")[0][:6] == ["rank", "model", "main: nRMSE mean ↓", "nRMSE@1 ↓", "nRMSE@2 ↓", "NFE-F ↓"]
    assert table_of(md, "toy-classify")[0][:5] == ["rank", "model", "main: accuracy ↑", "macro-F1 ↑", "NFE-F ↓"]
    assert "in Lyapunov times (LT = 1/λ1) for a chaotic task" in md


def test_a_plugin_metric_is_shown_ranked_and_bolded_in_its_declared_direction() -> None:
    scores = {"a": (0.3, 2.0, 0.9), "b": (0.1, 3.0, 0.5), "c": (0.2, 1.0, 0.7)}
    recs = [
        make_record("toy-plugin-regress", m, spec=PLUGIN, metrics={"mae": mae, "max_error": worst, "coverage": cov})
        for m, (mae, worst, cov) in scores.items()
    ]
    agg = aggregate(recs, None)
    assert agg.tasks["toy-plugin-regress"].kind == "regress"
    assert dict(zip(agg.rows["label"], agg.rows["rank"])) == {"b": 1, "c": 2, "a": 3}  # lower MAE is better
    md = render_markdown(agg)
    table = table_of(md, "toy-plugin-regress")
    assert table[0][:5] == ["rank", "model", "main: MAE ↓", "max error ↓", "coverage"]
    assert column(table, "model") == ["b", "c", "a"]
    assert column(table, "main: MAE ↓") == ["**0.100** (n=1)", "0.200 (n=1)", "0.300 (n=1)"]
    assert column(table, "max error ↓") == ["3.00", "**1.00**", "2.00"]  # '#.3g' without its trailing '.'
    assert column(table, "coverage") == ["50%", "70%", "90%"]  # informational: never bolded
    assert "main score MAE ↓" in md
    assert set(task_plots(agg)["toy-plugin-regress"]) == {"pareto"}  # no nRMSE curve, so no error growth


def test_newest_task_version_describes_the_task() -> None:
    old = make_record(model="a", sha="b" * 64, spec={**SPECS["toy-chaos-forecast"], "version": "1.9"})
    new_spec = json.loads(json.dumps(SPECS["toy-chaos-forecast"]))
    new_spec["version"] = "1.10"
    new_spec["metrics"][0]["label"] = "valid time (LT)"
    new = make_record(model="a", spec=new_spec)
    agg = aggregate([new, old], None)
    assert agg.tasks["toy-chaos-forecast"].versions == ("1.10", "1.9")
    assert len(agg.rows) == 2  # two data hashes: never averaged together
    md = render_markdown(agg)
    assert "main score valid time (LT) ↑" in md and "main: valid time (LT) ↑" in table_of(md, "toy-chaos-forecast")[0]


def test_an_unreadable_task_spec_is_excluded_with_a_warning() -> None:
    bad = make_record(model="odd")
    bad["task"]["spec"]["metrics"][1]["format"] = "not a format"
    other = make_record(model="elsewhere")
    other["task"]["spec"]["name"] = "another-task"
    agg = aggregate([make_record(model="fine"), bad, other], None)
    assert list(agg.rows["label"]) == ["fine"] and agg.n_excluded == 2
    assert any("'not a format' is not a format spec" in w for w in agg.warnings)
    assert any("describes task 'another-task'" in w for w in agg.warnings)


def test_ranks_share_ties_competition_style() -> None:
    accs = {"alpha": 0.9, "beta": 0.9, "gamma": 0.8, "delta": 0.95}
    recs = [make_record("toy-classify", m, metrics={"accuracy": a, "macro_f1": a - 0.1}) for m, a in accs.items()]
    agg = aggregate(recs, None)
    assert dict(zip(agg.rows["label"], agg.rows["rank"])) == {"delta": 1, "alpha": 2, "beta": 2, "gamma": 4}
    table = table_of(render_markdown(agg), "toy-classify")
    assert column(table, "rank") == ["1", "2", "2", "4"]
    assert column(table, "model") == ["delta", "alpha", "beta", "gamma"]  # rank, then name


def test_rank_ties_at_displayed_precision() -> None:
    recs = [make_record(model=m, metrics=forecast_metrics(vpt=v)) for m, v in (("a", 3.1234), ("b", 3.1201), ("c", 3.2))]
    agg = aggregate(recs, None)
    assert dict(zip(agg.rows["label"], agg.rows["rank"])) == {"c": 1, "a": 2, "b": 2}


def test_bold_marks_ties_and_follows_direction() -> None:
    recs = [
        make_record("toy-classify", "alpha", metrics={"accuracy": 0.9, "macro_f1": 0.7}, cost={"train_seconds": 3.0, "params": 500}),
        make_record("toy-classify", "beta", metrics={"accuracy": 0.9, "macro_f1": 0.8}, cost={"train_seconds": 2.0, "params": 800}),
        make_record("toy-classify", "gamma", metrics={"accuracy": 0.5, "macro_f1": 0.8}, cost={"train_seconds": 9.0, "params": 500}),
    ]
    table = table_of(render_markdown(aggregate(recs, None)), "toy-classify")
    assert column(table, "main: accuracy ↑") == ["**0.900** (n=1)", "**0.900** (n=1)", "0.500 (n=1)"]
    assert column(table, "macro-F1 ↑") == ["0.700", "**0.800**", "**0.800**"]
    assert column(table, "train time ↓") == ["3.00 s", "**2.00 s**", "9.00 s"]  # lower is better
    assert column(table, "params ↓") == ["**500**", "800", "**500**"]
    assert column(table, "peak CPU memory ↓") == ["**100.0 MiB**"] * 3


def test_lower_is_better_main_score_for_non_chaotic_forecast() -> None:
    recs = [make_record("toy-heat-forecast", m, metrics=forecast_metrics(nrmse=e, chaotic=False)) for m, e in (("a", 0.3), ("b", 0.1), ("c", 0.2))]
    agg = aggregate(recs, None)
    assert agg.tasks["toy-heat-forecast"].main_metric == "nrmse_mean"
    md = render_markdown(agg)
    table = table_of(md, "toy-heat-forecast")
    assert column(table, "model") == ["b", "c", "a"]
    assert column(table, "main: nRMSE mean ↓") == ["**0.100** (n=1)", "0.200 (n=1)", "0.300 (n=1)"]
    assert column(table, "nRMSE@1 ↓") == ["**0.0500**", "0.100", "0.150"]
    assert "↑ higher is better, ↓ lower is better" in md
    assert "standard deviation of the *training* split" in md
    assert "VPT (valid prediction time)" not in md  # no chaotic task here
    assert "NFE-B: vector-field evaluations made inside the backward pass, per training step" in md


def test_failed_run_listed_with_reason_and_mixed_seeds_flagged() -> None:
    recs = [
        make_record(model="resnet", seed=0, metrics=forecast_metrics(vpt=2.0)),
        make_record(model="resnet", seed=1, metrics=forecast_metrics(vpt=4.0)),
        make_record(model="resnet", seed=2, status="failed", error="CUDA out of memory\nTraceback (most recent call last): ..."),
        make_record(model="neural-ode", seed=0, status="failed", error="ModelOutputError: model returned NaN or Inf values"),
    ]
    agg = aggregate(recs, None)
    assert list(agg.rows["label"]) == ["resnet"]  # the all-failed model has no averaged row
    row = agg.rows.iloc[0]
    assert (row["n"], row["n_failed"]) == (2, 1)
    assert row["metrics.vpt"] == pytest.approx(3.0)
    md = render_markdown(agg)
    assert row_for(table_of(md, "toy-chaos-forecast"), "resnet")["notes"] == "1/3 seeds failed"
    failed = md.split("Failed runs (never averaged, never ranked):", 1)[1]
    assert re.search(r"\| neural-ode +\| +0 \| Test CPU 3000, 1 thread +\| ModelOutputError: model returned NaN or Inf values +\|", failed)
    assert re.search(r"\| resnet +\| +2 \| .* \| CUDA out of memory +\|", failed)
    assert "Traceback" not in md  # one line per failure
    overview = md.split("## Overview", 1)[1].split("##", 1)[0]
    assert re.search(r"\| neural-ode +\| +failed \|", overview)


def test_failure_before_setup_is_kept_and_attached() -> None:
    """A run that failed before loading its task records no data hash, hardware or resolved hparams."""
    early = make_record(model="resnet", seed=2, status="failed", error="PluginError: model 'resnet' failed to load")
    early["task"].update(version=None, kind=None, data_sha256=None, spec=None)
    early["protocol"] = None
    early["model"]["hparams"] = {}
    early["env"] = {}
    recs = [make_record(model="resnet", seed=s, hparams={"width": 8, "depth": 2}) for s in range(2)] + [validate_record(early)]
    agg = aggregate(recs, {"toy-chaos-forecast": SHA})
    assert agg.n_excluded == 0 and not agg.warnings
    assert [(f.label, f.seed, f.hardware) for f in agg.failures] == [("resnet", 2, "unknown (failed before setup)")]
    assert agg.tasks["toy-chaos-forecast"].data_sha256 == (SHA,) and agg.tasks["toy-chaos-forecast"].versions == ("1",)
    md = render_markdown(agg)
    assert row_for(table_of(md, "toy-chaos-forecast"), "resnet")["notes"] == "1/3 seeds failed"
    assert "PluginError: model 'resnet' failed to load" in md


def test_mixed_hardware_is_never_averaged() -> None:
    recs = [
        make_record(seed=0, metrics=forecast_metrics(vpt=2.0), cost={"train_seconds": 50.0}),
        make_record(seed=1, metrics=forecast_metrics(vpt=4.0), cost={"train_seconds": 70.0}),
        make_record(seed=0, metrics=forecast_metrics(vpt=10.0), env=GPU, cost={"train_seconds": 5.0, "peak_gpu_bytes": 3 * 2**20}),
    ]
    agg = aggregate(recs, None)
    by_hw = {r["hardware"]: r for r in agg.rows.to_dict("records")}
    assert set(by_hw) == {"Test CPU 3000, 1 thread", "Test GPU X1"}
    assert (by_hw["Test CPU 3000, 1 thread"]["n"], by_hw["Test CPU 3000, 1 thread"]["metrics.vpt"]) == (2, pytest.approx(3.0))
    assert (by_hw["Test GPU X1"]["n"], by_hw["Test GPU X1"]["metrics.vpt"]) == (1, pytest.approx(10.0))
    table = table_of(render_markdown(agg), "toy-chaos-forecast")
    assert column(table, "hardware") == ["Test GPU X1", "Test CPU 3000, 1 thread"]
    assert column(table, "train time ↓") == ["**5.00 s**", "60.0 s"]
    assert column(table, "peak memory ↓") == ["**3.0 MiB** (GPU)", "**100.0 MiB** (CPU)"]  # labelled, best per kind


def test_stale_data_hash_excluded_with_warning() -> None:
    recs = [make_record(model="fresh"), make_record(model="old", sha="b" * 64)]
    agg = aggregate(recs, {"toy-chaos-forecast": SHA})
    assert list(agg.rows["label"]) == ["fresh"]
    assert agg.n_excluded == 1
    assert len(agg.warnings) == 1 and "stale data" in agg.warnings[0] and "old seed 0" in agg.warnings[0]
    md = render_markdown(agg)
    notes = md.split("## Notes", 1)[1]
    assert "stale data (sha256 bbbbbbbbbbbb" in notes
    assert "1 excluded" in md
    everything = aggregate(recs, None)  # without current hashes nothing is dropped, but mixed data is flagged
    assert len(everything.rows) == 2 and any("2 different data files" in w for w in everything.warnings)


def test_duplicate_seed_counted_once() -> None:
    recs = [
        make_record(metrics=forecast_metrics(vpt=1.0), created="2025-01-01T00:00:00Z"),
        make_record(metrics=forecast_metrics(vpt=9.0), created="2025-02-01T00:00:00Z"),
    ]
    agg = aggregate(recs, None)
    assert agg.rows.iloc[0]["n"] == 1 and agg.rows.iloc[0]["metrics.vpt"] == 9.0
    assert any("kept the latest" in w for w in agg.warnings)


def test_hparam_variants_get_distinct_labels() -> None:
    recs = [make_record(hparams={"width": 8, "depth": 2}), make_record(hparams={"width": 16, "depth": 2})]
    assert sorted(aggregate(recs, None).rows["label"]) == ["resnet (width=16)", "resnet (width=8)"]


def test_variants_are_the_requested_arguments_not_the_per_task_defaults() -> None:
    heat = make_record("toy-heat-forecast", "neural-ode", hparams={"state_scale": 1.0, "width": 64})
    lorenz = make_record("toy-chaos-forecast", "neural-ode", hparams={"state_scale": 10.0, "width": 64})
    rk4 = make_record("toy-chaos-forecast", "neural-ode", seed=1, hparams={"state_scale": 10.0, "width": 64, "method": "rk4"})
    for rec, args in ((heat, {}), (lorenz, {}), (rk4, {"method": "rk4"})):
        rec["model"]["args"] = args
    labels = sorted(set(aggregate([heat, lorenz, rk4], None).rows["label"]))
    assert labels == ["neural-ode", "neural-ode (method=rk4)"]


def test_overview_mean_rank() -> None:
    recs = [
        make_record("toy-classify", "a", metrics={"accuracy": 0.9, "macro_f1": 0.9}),
        make_record("toy-classify", "b", metrics={"accuracy": 0.8, "macro_f1": 0.8}),
        make_record("toy-chaos-forecast", "a", metrics=forecast_metrics(vpt=1.0)),
        make_record("toy-chaos-forecast", "b", metrics=forecast_metrics(vpt=2.0)),
        make_record("toy-chaos-forecast", "c", metrics=forecast_metrics(vpt=3.0)),
    ]
    overview = render_markdown(aggregate(recs, None)).split("## Overview", 1)[1].split("\n## ", 1)[0]
    lines = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in overview.strip().splitlines()]
    assert lines[0] == ["model", "toy-chaos-forecast", "toy-classify", "mean rank ↓", "tables ranked"]
    assert lines[2:] == [["c", "1", "–", "**1.00**", "1"], ["a", "3", "1", "2.00", "2"], ["b", "2", "2", "2.00", "2"]]


def test_render_is_deterministic_and_order_independent() -> None:
    recs = [make_record(model=m, seed=s, metrics=forecast_metrics(vpt=1.0 + s + len(m))) for m in ("resnet", "lm-resnet", "neural-ode") for s in range(2)]
    recs.append(make_record("toy-classify", "resnet"))
    a = render_markdown(aggregate(recs, None))
    assert a == render_markdown(aggregate(recs, None))
    assert a == render_markdown(aggregate(list(reversed(recs)), None))


def test_missing_main_score_is_shown_and_ranked_last() -> None:
    recs = [
        make_record(model="good", metrics=forecast_metrics(vpt=1.0)),
        make_record(model="diverged", seed=0, metrics=forecast_metrics(vpt=5.0)),
        make_record(model="diverged", seed=1, metrics=forecast_metrics(vpt=None)),  # stored as JSON null
    ]
    agg = aggregate(recs, None)
    table = table_of(render_markdown(agg), "toy-chaos-forecast")
    assert column(table, "model") == ["good", "diverged"]
    assert column(table, "rank") == ["1", "—"]
    assert column(table, "main: VPT") == ["**1.00** (n=1)", "— (n=2)"]  # never a silent mean of the finite seed
    assert column(table, "notes")[1] == "1 seed(s) without a finite vpt"


def test_truncated_runs_and_profiles_are_flagged_and_kept_apart() -> None:
    recs = [
        make_record(model="a", seed=0, truncated=True, metrics=forecast_metrics(vpt=1.0)),
        make_record(model="a", seed=1, metrics=forecast_metrics(vpt=1.0)),
        make_record(model="b", profile="quick", metrics=forecast_metrics(vpt=0.5)),
        make_record(model="a", profile="quick", metrics=forecast_metrics(vpt=0.1)),
    ]
    agg = aggregate(recs, None)
    assert sorted(zip(agg.rows["profile"], agg.rows["label"], agg.rows["rank"])) == [("quick", "a", 2), ("quick", "b", 1), ("standard", "a", 1)]
    md = render_markdown(agg)
    quick, standard = md.split("### profile quick\n", 1)[1].split("### profile standard\n", 1)
    assert "1/2 truncated by the wall-clock cap" in standard and "truncated" not in quick


def test_invalid_record_dict_is_reported_not_fatal() -> None:
    agg = aggregate([make_record(), {"status": "ok"}], None)
    assert len(agg.rows) == 1 and agg.n_excluded == 1
    assert "record #1 is not a valid result record" in agg.warnings[0]


def test_pareto_front() -> None:
    cost = [1.0, 2.0, 3.0, 2.0, 5.0, math.nan]
    score = [0.5, 0.7, 0.6, 0.7, 0.9, 1.0]
    assert pareto_front(cost, score, True) == [0, 1, 3, 4]  # equal points are both on the front
    assert pareto_front(cost, score, False) == [0]
    with pytest.raises(ValueError, match="equal lengths"):
        pareto_front([1.0], [1.0, 2.0], True)


# --- files ------------------------------------------------------------------------------


def _fill(results: Path) -> None:
    for m, base in (("resnet", 2.0), ("neural-ode", 3.0)):
        for s in range(2):
            write_record(results, make_record(model=m, seed=s, metrics=forecast_metrics(vpt=base + s, curve_scale=base)))
            write_record(results, make_record("toy-classify", m, seed=s, metrics={"accuracy": base / 4, "macro_f1": base / 5}))
    write_record(results, make_record(model="lm-resnet", status="failed", error="boom"))


def test_write_leaderboard_skips_malformed_files(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _fill(results)
    (results / "broken.json").write_text("{not json", encoding="utf-8")
    edited = make_record(model="edited")
    del edited["cost"]
    (results / "sub").mkdir()
    (results / "sub" / "edited.json").write_text(json.dumps(edited), encoding="utf-8")
    report = write_leaderboard(results, tmp_path / "board" / "LEADERBOARD.md", plots=False)
    assert sorted(str(s.path) for s in report.skipped) == ["broken.json", "sub/edited.json"]
    assert (report.n_ok, report.n_failed, report.n_rows) == (8, 1, 4)
    md = report.out_file.read_text(encoding="utf-8")
    assert "skipped broken.json: not readable as JSON" in md
    assert "skipped sub/edited.json: missing keys \\['cost'\\]" in md
    assert str(tmp_path) not in md  # files are named relative to the results directory
    assert "2 file(s) skipped" in md


def test_write_twice_is_byte_identical_including_plots(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _fill(results)
    first = write_leaderboard(results, tmp_path / "a" / "LEADERBOARD.md")
    files_a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in sorted((tmp_path / "a").rglob("*")) if p.is_file()}
    write_leaderboard(results, tmp_path / "a" / "LEADERBOARD.md")
    write_leaderboard(results, tmp_path / "b" / "LEADERBOARD.md")
    for root in ("a", "b"):
        files = {p.relative_to(tmp_path / root): p.read_bytes() for p in sorted((tmp_path / root).rglob("*")) if p.is_file()}
        assert files == files_a
    assert sorted(str(p) for p in files_a) == [
        "LEADERBOARD.md",
        "plots/toy-chaos-forecast__error_growth.png",
        "plots/toy-chaos-forecast__pareto.png",
        "plots/toy-classify__pareto.png",
    ]
    assert all(files_a[p].startswith(b"\x89PNG") for p in files_a if p.suffix == ".png")
    assert b"Software" not in files_a[Path("plots/toy-classify__pareto.png")]
    md = first.out_file.read_text(encoding="utf-8")
    assert "![toy-chaos-forecast: error growth: nRMSE(t), mean curve over seeds](plots/toy-chaos-forecast__error_growth.png)" in md
    assert len(first.plot_files) == 3


def test_empty_results_directory_gives_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    report = write_leaderboard(tmp_path / "results", tmp_path / "LEADERBOARD.md")
    assert report.empty and report.n_rows == 0 and report.plot_files == ()
    md = (tmp_path / "LEADERBOARD.md").read_text(encoding="utf-8")
    assert "No result records found" in md
    assert not (tmp_path / "plots").exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_leaderboard(tmp_path / "missing", tmp_path / "x.md")


def test_all_records_stale_says_so() -> None:
    agg = aggregate([make_record(sha="c" * 64)], {"toy-chaos-forecast": SHA}, skipped=[SkippedFile(Path("x.json"), "bad")])
    md = render_markdown(agg)
    assert agg.empty and "all 1 record(s) were excluded" in md
    assert "- skipped x.json: bad" in md


def test_a_diverged_forecast_keeps_its_vpt_and_says_where_nrmse_went() -> None:
    diverged = forecast_metrics(vpt=1.5)
    diverged.update({"nrmse_mean": None, "nrmse@2": None, "diverged_fraction": 0.25})  # inf is stored as JSON null
    recs = [make_record(model="steady", metrics={**forecast_metrics(vpt=1.0), "diverged_fraction": 0.0}), make_record(model="blows-up", metrics=diverged)]
    table = table_of(render_markdown(aggregate(recs, None)), "toy-chaos-forecast")
    assert column(table, "model") == ["blows-up", "steady"]  # ranked on VPT, which a divergence does not hide
    assert column(table, "main: VPT")[0] == "**1.50** (n=1)"
    assert column(table, "nRMSE@1 LT")[0] == "—" and column(table, "nRMSE@0.5 LT")[0] == "**0.0500**"
    assert column(table, "notes") == ["forecast diverged (NaN/Inf) on 25% of test trajectories: nRMSE there is ∞, shown —", ""]


def test_error_growth_time_axis_and_threshold_come_from_the_records_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    from odebench.leaderboard import plots

    calls: dict[str, dict[str, Any]] = {}

    def record_call(curves: dict[str, Any], **kw: Any) -> bytes:
        calls[kw["title"].split(":")[0]] = {"curves": curves, **kw}
        return b""

    monkeypatch.setattr(plots, "error_growth_png", record_call)
    spec = {**SPECS["toy-chaos-forecast"], "vpt_threshold": 0.3}
    recs = [make_record(spec=spec), make_record("toy-heat-forecast", metrics=forecast_metrics(chaotic=False))]
    plots.task_plots(aggregate(recs, None))
    chaos, heat = calls["toy-chaos-forecast"], calls["toy-heat-forecast"]
    assert (chaos["time_label"], chaos["threshold"]) == ("t [Lyapunov times]", 0.3)
    np.testing.assert_allclose(chaos["curves"]["resnet"][0], [0.0, 0.5, 1.0, 1.5, 2.0])  # t · λ1
    assert (heat["time_label"], heat["threshold"]) == ("t [task time units]", None)
    np.testing.assert_allclose(heat["curves"]["resnet"][0], [0.0, 1.0, 2.0, 3.0, 4.0])


def test_error_growth_axis_stops_above_saturation_when_a_curve_blows_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from odebench.leaderboard import plots

    monkeypatch.setattr(plots, "_png", lambda fig: fig)  # keep the figure to read its axis
    t = [0.0, 1.0, 2.0, 3.0]
    steady = {"steady": (t, [0.0, 0.01, 0.1, 1.0])}
    fig = plots.error_growth_png(steady, title="x", time_label="t")
    assert fig.axes[0].get_ylim()[1] < plots.CURVE_TOP
    fig = plots.error_growth_png({**steady, "blows-up": (t, [0.0, 0.02, 1e30, math.inf])}, title="x", time_label="t")
    assert fig.axes[0].get_ylim()[1] == plots.CURVE_TOP
    assert any("blow up" in text.get_text() for text in fig.axes[0].texts)


# --- confidence intervals and tied ranks (the bootstrap itself: tests/test_intervals.py) ---

N_ITEMS = 64


def _scores(rng: np.random.Generator, shift: float, item_effect: np.ndarray, seeds: int = 3) -> list[list[float]]:
    """VPT-like scores: a per-item difficulty shared by every model, seed noise, item noise."""
    return [list(np.clip(3.0 + shift + item_effect + rng.normal(0, 0.3) + rng.normal(0, 0.5, N_ITEMS), 0, None)) for _ in range(seeds)]


def _board(model_scores: dict[str, list[list[float]]]) -> str:
    recs = []
    for model, per_seed in model_scores.items():
        for seed, scores in enumerate(per_seed):
            rec = make_record(model=model, seed=seed, metrics=forecast_metrics(vpt=float(np.mean(scores))))
            rec["items"] = {"n": N_ITEMS, "vpt": scores}
            recs.append(rec)
    return render_markdown(aggregate(recs))


def test_the_board_shows_intervals_and_tied_ranks() -> None:
    items = np.random.default_rng(0).normal(0, 2.0, N_ITEMS)
    rng = np.random.default_rng(4)
    md = _board({"resnet": _scores(rng, 0.0, items), "lm-resnet": _scores(rng, 0.05, items), "neural-ode": _scores(rng, 1.5, items)})
    table = table_of(md, "toy-chaos-forecast")
    ranks = dict(zip(column(table, "model"), column(table, "rank")))
    assert ranks == {"neural-ode": "1", "resnet": "2", "lm-resnet": "2"}
    mains = column(table, "main")
    assert all("[" in cell and "]" in cell and "±" not in cell for cell in mains)
    assert mains[0].startswith("**") and not any(cell.startswith("**") for cell in mains[1:])
    assert "hierarchical bootstrap" in md and "paired bootstrap" in md
    tied = table_of(_board({"resnet": _scores(rng, 0.0, items), "lm-resnet": _scores(rng, 0.05, items)}), "toy-chaos-forecast")
    assert column(tied, "rank") == ["1", "1"] and all(cell.startswith("**") for cell in column(tied, "main"))


def test_records_without_items_keep_the_mean_ranking() -> None:
    recs = [make_record(model=m, seed=s, metrics=forecast_metrics(vpt=v + 0.01 * s)) for m, v in (("a", 2.0), ("b", 3.0)) for s in range(3)]
    md = render_markdown(aggregate(recs))
    table = table_of(md, "toy-chaos-forecast")
    assert column(table, "rank") == ["1", "2"] and all("±" in c for c in column(table, "main"))
    assert "competition ranking" in md and "hierarchical bootstrap" not in md


def test_reference_rows_are_shown_apart_and_never_ranked() -> None:
    recs = [make_record(model=m, seed=s, metrics=forecast_metrics(vpt=v)) for m, v in (("resnet", 2.0), ("neural-ode", 3.0)) for s in range(2)]
    for s in range(2):
        ref = make_record(model="exact", seed=s, metrics=forecast_metrics(vpt=22.0))
        ref["model"]["reference"] = True
        recs.append(ref)
    agg = aggregate(recs)
    md = render_markdown(agg)
    table = table_of(md, "toy-chaos-forecast")
    assert column(table, "model") == ["neural-ode", "resnet"] and column(table, "rank") == ["1", "2"]
    refs = md.split("References (not ranked", 1)[1]
    ref_rows = [ln for ln in refs.splitlines() if ln.startswith("| exact")]
    assert len(ref_rows) == 1 and "22.00" in ref_rows[0]
    overview = md.split("## Overview", 1)[1].split("## ", 1)[0]
    assert "exact" not in overview
    assert agg.rows.loc[agg.rows["model"] == "exact", "rank"].isna().all()
