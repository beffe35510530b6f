"""``odebench analyze``: the numerics against known answers, then the command end to end.

The end-to-end fixture trains (quick profile) the exact reference on Lorenz-63 and heat
and two models whose dynamics are known in closed form, ``u0 · exp(rate · t)``: one
contracting (λ1 = −1) and one that leaves the attractor (λ1 = +5), and analyses them
with a shorter long run than the published default.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from odebench.analysis import analysis_path, read_analyses, read_analysis
from odebench.analysis.dynamics import Box, energy_spectrum, long_rollout, mode_decay_rates, regime, resolved_modes, spectrum_error, wasserstein_1d
from odebench.cli import main
from odebench.results import record_filename

# ----------------------------------------------------------------------------- the numerics


def test_wasserstein_matches_scipy_on_unequal_samples() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 1000), rng.normal(0.5, 2, 337)
    assert wasserstein_1d(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-12)
    assert wasserstein_1d(a, a + 0.25) == pytest.approx(0.25, rel=1e-12)


def test_energy_spectrum_of_one_mode_and_the_error_in_decades() -> None:
    x = np.arange(64) / 64
    u = np.stack([np.cos(2 * np.pi * 3 * x + p) for p in np.linspace(0, 6, 50)])
    e = energy_spectrum(u)
    assert e[3] == pytest.approx(0.25, rel=1e-12)  # |û_3|² / n² for an amplitude-one cosine
    assert np.delete(e, 3).max() < 1e-25
    modes = np.array([1, 2, 3])
    e = np.array([1.0, 0.5, 0.1, 0.01])
    assert spectrum_error(10 * e, e, modes) == pytest.approx(1.0, abs=1e-12)
    assert list(resolved_modes(np.array([0.0, 1.0, 1e-3, 1e-9]))) == [1, 2]


def test_a_linear_map_has_its_exponent_and_a_growing_one_diverges() -> None:
    rate, dt = -0.3, 0.01

    def flow(u: np.ndarray, n: int) -> np.ndarray:
        return u[:, None] * np.exp(rate * dt * np.arange(n + 1))[None, :, None]

    box = Box(np.zeros(2), np.ones(2), 2.0)
    run = long_rollout(flow, np.full((3, 2), 0.5), 20, 10, box, burn_in_segments=2)
    assert all(lam == pytest.approx(rate, abs=1e-6) for lam in run.lambda1(dt))
    assert run.stopped_at == [None, None, None]

    rate = 5.0
    run = long_rollout(flow, np.full((2, 2), 0.5), 20, 10, box)
    assert all(s is not None and s > 0 for s in run.stopped_at)
    assert run.lambda1(dt) == [None, None]
    assert np.isnan(run.states[:, -1]).all()


def test_a_rollout_that_raises_stops_alone() -> None:
    def flow(u: np.ndarray, n: int) -> np.ndarray:
        if (u[:, 0] > 0.9).any():
            raise RuntimeError("left my domain")
        return u[:, None] * np.exp(0.5 * np.arange(n + 1))[None, :, None]

    run = long_rollout(flow, np.array([[0.1], [0.95]]), 3, 1, Box(np.zeros(1), np.full(1, 100.0), 2.0), tangent=False)
    assert run.stopped_at == [None, 0]
    assert np.isfinite(run.states[0]).all()


def test_regimes() -> None:
    assert regime(None, 1.0, 0.9) == "diverged"
    assert regime(-1.0, 1e-6, 0.9) == "fixed point"
    assert regime(0.8, 1.0, 0.9) == "chaotic"
    assert regime(0.01, 1.0, 0.9) == "cycle"
    assert regime(-0.5, 1.0, 0.9) == "contracting"


def test_decay_rates_of_the_exact_heat_map() -> None:
    kappa, n, tau = 0.01, 64, 0.1
    k = np.fft.rfftfreq(n, d=1 / n)

    def step(u: np.ndarray) -> np.ndarray:
        return np.fft.irfft(np.fft.rfft(u, axis=1) * np.exp(-kappa * (2 * np.pi * k) ** 2 * tau), n=n, axis=1)

    rates = mode_decay_rates(step, n, range(8), tau)
    for mode, rate in enumerate(rates):
        assert rate == pytest.approx(-kappa * (2 * np.pi * mode) ** 2, abs=1e-8)


# ----------------------------------------------------------------------------- end to end

SETTINGS = ["--set", "n_rollouts=4", "--set", "long_time=40", "--set", "burn_in=5"]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, fake_models_module: object) -> Path:
    out = tmp_path_factory.mktemp("analyse") / "results"
    argv = ["run", "--model", "exact,fake-decays,fake-explodes", "--task", "lorenz-forecast", "--profile", "quick", "--jobs", "2", "--results", str(out)]
    assert main(argv) == 0
    assert main(["run", "--model", "exact,resnet", "--task", "heat-forecast", "--profile", "quick", "--jobs", "2", "--results", str(out)]) == 0
    assert main(["analyze", "--results", str(out), "--jobs", "2", *SETTINGS]) == 0
    return out


def _analysis(results: Path, task: str, model: str) -> dict:
    (path,) = results.glob(f"{task}__{model}__*.analysis.json")
    return read_analysis(path)


def test_exact_lorenz_has_the_true_exponent_and_statistics_at_the_floor(analysed: Path) -> None:
    rec = _analysis(analysed, "lorenz-forecast", "exact")
    assert rec["status"] == "ok", rec["error"]
    lyap = rec["lyapunov"]
    assert abs(lyap["lambda1"] - lyap["lambda1_true"]) <= 0.05 * lyap["lambda1_true"]
    assert lyap["regime"] == "chaotic"
    long_run = rec["long_run"]
    assert long_run["diverged_fraction"] == 0
    for w1, floor in zip(long_run["wasserstein"], long_run["wasserstein_floor"]):
        assert w1 <= 2 * floor + 0.02
    assert 0 < max(long_run["wasserstein_floor"]) < 0.5
    rob = rec["robustness"]
    assert rob["reproduces_record"] is True
    assert rob["variants"]["native"]["escaped_fraction"] == 0  # the truth stays on its attractor
    native = rob["variants"]["native"]["score"]
    for name in ("half_step", "double_step"):  # the true system is insensitive to its own step
        assert rob["variants"][name]["status"] == "ok"
        assert rob["variants"][name]["score"] == pytest.approx(native, rel=0.1)
    assert rob["variants"]["other_solver"]["status"] == "n/a"
    attractor = rec["figures"]["attractor"]
    assert attractor["names"] == ["x", "z"] and len(attractor["true"]["a"]) == len(attractor["model"]["b"]) > 100


def test_a_contracting_model_has_a_negative_exponent(analysed: Path) -> None:
    rec = _analysis(analysed, "lorenz-forecast", "fake-decays")
    assert rec["status"] == "ok", rec["error"]
    assert rec["lyapunov"]["lambda1"] == pytest.approx(-1.0, abs=1e-4)
    assert rec["lyapunov"]["regime"] in ("fixed point", "contracting")
    assert rec["long_run"]["diverged_fraction"] == 0
    assert rec["robustness"]["variants"]["native"]["escaped_fraction"] == 0  # a fixed point inside the attractor's range is wrong, not off-range
    assert all(w1 > 3 * floor for w1, floor in zip(rec["long_run"]["wasserstein"], rec["long_run"]["wasserstein_floor"]))
    # no with_discretisation: every variant but the native one is n/a, never a number
    for name in ("half_step", "double_step", "other_solver"):
        assert rec["robustness"]["variants"][name]["status"] == "n/a" and rec["robustness"]["variants"][name]["score"] is None


def test_a_diverging_model_is_reported_as_diverged_not_as_a_number(analysed: Path) -> None:
    rec = _analysis(analysed, "lorenz-forecast", "fake-explodes")
    assert rec["status"] == "ok", rec["error"]
    assert rec["lyapunov"]["lambda1"] is None and rec["lyapunov"]["regime"] == "diverged"
    assert rec["long_run"]["diverged_fraction"] == 1.0 and rec["long_run"]["wasserstein"] is None
    assert all(t is not None and t < 5 for t in rec["long_run"]["diverged_at"])
    assert rec["robustness"]["variants"]["native"]["escaped_fraction"] == 1.0  # every test forecast leaves the range
    assert rec["figures"]["attractor"]["model"] is None


def test_heat_decay_rates_exact_and_learned(analysed: Path) -> None:
    exact = _analysis(analysed, "heat-forecast", "exact")["decay_rates"]
    assert exact["relative_error"] < 1e-6
    assert exact["true"][3] == pytest.approx(-0.01 * (2 * math.pi * 3) ** 2)
    resnet = _analysis(analysed, "heat-forecast", "resnet")
    assert resnet["status"] == "ok"
    assert resnet["decay_rates"]["relative_error"] is not None and resnet["long_run"] is None and resnet["lyapunov"] is None
    variants = resnet["robustness"]["variants"]
    assert variants["half_step"]["status"] == "ok" and variants["double_step"]["status"] == "ok"
    assert variants["other_solver"]["status"] == "n/a" and "own integrator" in variants["other_solver"]["note"]


def test_analyses_resume_and_redo_a_rerun_record(analysed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["analyze", "--results", str(analysed), *SETTINGS]) == 0
    assert "0 analysed, 0 failed, 5 already current" in capsys.readouterr().out
    record = next(analysed.glob("lorenz-forecast__fake-decays__*seed0.json"))
    rec = json.loads(record.read_text())
    rec["run_id"] = "rerun"
    record.write_text(json.dumps(rec))
    assert main(["analyze", "--results", str(analysed), "--model", "fake-decays", *SETTINGS]) == 0
    assert "1 analysed" in capsys.readouterr().out
    assert read_analysis(analysis_path(record))["run"]["run_id"] == "rerun"
    # so does an analysis written before test forecasts were checked for escapes
    written = analysis_path(record)
    old = json.loads(written.read_text())
    del old["robustness"]["variants"]["native"]["escaped_fraction"]
    written.write_text(json.dumps(old))
    assert main(["analyze", "--results", str(analysed), "--model", "fake-decays", *SETTINGS]) == 0
    assert "1 analysed" in capsys.readouterr().out
    assert "escaped_fraction" in read_analysis(written)["robustness"]["variants"]["native"]
    # other settings make an analysis stale too
    assert main(["analyze", "--results", str(analysed), "--model", "fake-decays", "--set", "n_rollouts=2", "--set", "long_time=20", "--set", "burn_in=2"]) == 0
    assert read_analysis(analysis_path(record))["config"]["n_rollouts"] == 2


def test_a_timeout_becomes_a_failed_analysis_record(analysed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--results", str(analysed), "--model", "fake-explodes", "--force", "--timeout", "0.5", *SETTINGS]) == 1
    assert "timed out after 0.5 s" in capsys.readouterr().out
    rec = read_analysis(next(analysed.glob("lorenz-forecast__fake-explodes__*.analysis.json")))
    assert rec["status"] == "failed" and "timed out" in rec["error"]
    assert main(["analyze", "--results", str(analysed), "--model", "fake-explodes", *SETTINGS]) == 0  # a failed analysis is never current
    found, skipped = read_analyses(analysed)
    assert not skipped and all(r["status"] == "ok" for r in found)


def test_records_without_weights_are_passed_over_with_a_note(analysed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = next(analysed.glob("heat-forecast__resnet__*seed0.json"))
    (tmp_path / record.name).write_text(record.read_text())
    assert main(["analyze", "--results", str(tmp_path)]) == 0
    assert "no weights next to the record" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.analysis.json"))


def _heat_resnet_record(analysed: Path) -> dict[str, Any]:
    return json.loads(next(analysed.glob("heat-forecast__resnet__*seed0.json")).read_text())


def _analyse_with_args(rec: dict[str, Any], args: dict[str, Any], analysed: Path, results: Path) -> dict[str, Any]:
    """``rec`` (and its weights) saved under ``results`` with the arguments ``args``, analysed
    there; the analysis record of that run."""
    rec["model"]["args"] = args
    moved = results / record_filename(rec["task"]["name"], "resnet", int(rec["seed"]), rec["profile"], args)
    moved.write_text(json.dumps(rec))
    (results / rec["weights"]).write_bytes((analysed / rec["weights"]).read_bytes())
    assert main(["analyze", "--results", str(results), *SETTINGS]) == 1
    return read_analysis(analysis_path(moved))


def test_weights_that_no_longer_fit_the_architecture_fail_with_the_fix(analysed: Path, tmp_path: Path) -> None:
    """A record whose arguments now build another architecture (here: its weights are of a
    symmetric field, its arguments ask for a plain one) is a failed analysis that says to rerun."""
    rec = _heat_resnet_record(analysed)
    rec["model"]["hparams"]["symmetric"] = False  # as a record of such a run would say, so only the weights disagree
    failed = _analyse_with_args(rec, {"symmetric": False}, analysed, tmp_path)
    assert failed["status"] == "failed" and "do not fit the 'resnet' model" in failed["error"] and "rerun the job" in failed["error"]


def test_a_record_whose_arguments_now_build_another_architecture_fails_with_the_fix(analysed: Path, tmp_path: Path) -> None:
    """Weights can load into a changed architecture without error (here the activation: every
    shape is the same), so the hyperparameters the installed code resolves from the record's
    arguments are compared with those the record was trained with."""
    rec = _heat_resnet_record(analysed)
    assert rec["model"]["hparams"]["activation"] == "silu"
    failed = _analyse_with_args(rec, {"activation": "tanh"}, analysed, tmp_path)
    assert failed["status"] == "failed" and "activation: record 'silu', now 'tanh'" in failed["error"] and "rerun the job" in failed["error"]
    del rec["model"]["hparams"]["conservative"]  # a record made before the hyperparameter existed: it was off
    failed = _analyse_with_args(rec, {"conservative": True}, analysed, tmp_path)
    assert "conservative: record absent, now True" in failed["error"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--set", "colour=red"], "not an analysis setting"),
        (["--set", "n_rollouts=0"], "n_rollouts must be a positive integer"),
        (["--set", "burn_in=200"], "burn_in must be >= 0 and below long_time"),
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--timeout", "0"], "--timeout must be a positive"),
        (["--task", "lorenz-forcast"], "did you mean"),
    ],
)
def test_bad_input_exits_2_naming_the_fix(analysed: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    assert main(["analyze", "--results", str(analysed), *argv]) == 2
    assert needle in capsys.readouterr().err


def test_a_missing_results_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--results", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err
