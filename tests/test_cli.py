"""The command line: misuse ends with exit code 2 and one clear line; nothing is touched."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from odebench.cli import UsageError, main, parse_model_args, parse_seeds


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_seeds() -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("3-5,1") == [1, 3, 4, 5]
    for bad in ("a", "1,,x", "-1", "5-3", ""):
        with pytest.raises(UsageError, match="--seeds"):
            parse_seeds(bad)


def test_parse_model_args() -> None:
    assert parse_model_args(["method=rk4", "rtol=1e-5", "adjoint=true", "depth=3"]) == {"method": "rk4", "rtol": 1e-5, "adjoint": True, "depth": 3}
    for bad in (["method"], ["=3"], ["a b=1"]):
        with pytest.raises(UsageError, match="KEY=VALUE"):
            parse_model_args(bad)
    with pytest.raises(UsageError, match="twice"):
        parse_model_args(["a=1", "a=2"])


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "--model", "resnett", "--task", "lorenz-forecast"], "did you mean 'resnet'"),
        (["run", "--model", "resnet", "--task", "lorenz-forcast"], "did you mean 'lorenz-forecast'"),
        (["run", "--model", "resnet", "--task", "lorenz-forecast", "--seeds", "zero"], "--seeds"),
        (["run", "--model", "resnet", "--task", "lorenz-forecast", "--model-arg", "depth"], "KEY=VALUE"),
        (["run", "--model", "resnet", "--task", "lorenz-forecast", "--profile", "huge"], "--profile"),
        (["run", "--model", "resnet", "--task", "lorenz-forecast", "--device", "tpu"], "unknown device"),
        (["leaderboard", "--results", "does/not/exist", "--out", "x.md"], "not a directory"),
    ],
)
def test_misuse_exits_2_with_one_clear_line(argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if argv[0] == "run":
        argv = [*argv, "--results", str(tmp_path / "r")]
    code, out, err = run_main(argv, capsys)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_unwritable_results_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run_main(["run", "--model", "resnet", "--task", "lorenz-forecast", "--results", str(blocker / "sub")], capsys)
    assert code == 2 and "--results" in err and "writable" in err
    assert blocker.read_text() == "not a directory"


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["run", "--task", "lorenz-forecast"], capsys)
    assert code == 2 and "--model" in err


def test_list_models_and_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["list", "models"], capsys)
    assert code == 0
    assert {line.split()[0] for line in out.splitlines()} >= {"neural-ode", "resnet", "lm-resnet", "persistence", "majority"}
    code, out, _ = run_main(["list", "tasks"], capsys)
    assert code == 0 and "lorenz-forecast" in out and "odebench" in out


def test_list_verbose_describes_tasks_and_models(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["list", "tasks", "--verbose"], capsys)
    assert code == 0
    lorenz = out.split("lorenz-forecast", 1)[1]
    assert "kind forecast" in lorenz and "λ1 = 0.9056" in lorenz and "state shape (3,)" in lorenz and "22.6 Lyapunov times" in lorenz
    assert "main score: VPT (Lyapunov times)" in lorenz and "nRMSE@1 LT ↓" in lorenz
    code, out, _ = run_main(["list", "models", "-v"], capsys)
    assert code == 0
    node = out.split("neural-ode", 1)[1].split("persistence", 1)[0]
    assert "--model-arg method=" in node and "--model-arg adjoint=" in node and "default" in node
    assert "task kinds: forecast" in out.split("persistence", 1)[1]


def test_console_script_misuse_in_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "odebench.cli", "run", "--model", "resnet", "--task", "nope", "--results", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("odebench: error: unknown task 'nope'")


def odebench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "odebench.cli", *args], capture_output=True, text=True, timeout=600)


def test_run_then_leaderboard_end_to_end(tmp_path: Path) -> None:
    results = tmp_path / "R"
    proc = odebench("run", "--model", "resnet", "--task", "lorenz-forecast", "--seeds", "0", "--profile", "quick", "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    (record,) = results.glob("*.json")
    rec = json.loads(record.read_text())
    assert rec["status"] == "ok" and rec["task"]["name"] == "lorenz-forecast" and rec["model"]["name"] == "resnet"
    assert rec["model"]["distribution"] == "odebench" and rec["profile"] == "quick" and rec["seed"] == 0
    assert {"vpt", "nrmse_mean"} <= set(rec["metrics"]) and rec["cost"]["nfe_forward"] > 0
    assert (results / rec["weights"]).exists()
    board = results / "LEADERBOARD.md"
    proc = odebench("leaderboard", "--results", str(results), "--out", str(board))
    assert proc.returncode == 0, proc.stderr
    text = board.read_text()
    assert "## lorenz-forecast" in text and "| resnet" in text and "VPT" in text
    assert (results / "plots" / "lorenz-forecast__error_growth.png").exists()


BASELINES = ("neural-ode", "resnet", "lm-resnet", "persistence", "majority", "linear")


def test_every_baseline_on_every_task_writes_an_ok_quick_record(tmp_path: Path) -> None:
    """The whole built-in grid through the CLI, as a user's first sweep would run it."""
    from odebench.tasks.specs import ALL_SPECS

    proc = odebench("run", "--model", ",".join(BASELINES), "--task", "all", "--profile", "quick", "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert all(r["status"] == "ok" for r in records), [(r["task"]["name"], r["model"]["name"], r.get("error")) for r in records if r["status"] != "ok"]
    floors = {"forecast": "persistence", "classify": "majority"}
    expected = {(task, model) for task, spec in ALL_SPECS.items() for model in ("neural-ode", "resnet", "lm-resnet", "linear", floors[spec.kind])}
    assert {(r["task"]["name"], r["model"]["name"]) for r in records} == expected
    for r in records:
        main = "accuracy" if r["task"]["kind"] == "classify" else ("vpt" if "vpt" in r["metrics"] else "nrmse_mean")
        assert r["metrics"][main] is not None, (r["task"]["name"], r["model"]["name"])
        trained = r["model"]["name"] in ("neural-ode", "resnet", "lm-resnet")
        assert (r["cost"]["nfe_forward"] > 0) == (trained or r["model"]["name"] == "linear" and r["task"]["kind"] == "forecast"), r["model"]["name"]
        assert (r["cost"]["params"] > 0) == (r["model"]["name"] != "persistence")


def test_mixed_kinds_skip_unsupported_pairs(tmp_path: Path) -> None:
    proc = odebench("run", "--model", "persistence,majority", "--task", "lorenz-forecast,heat-classify", "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "2 (task, model) pair(s) skipped" in proc.stderr
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert names == ["heat-classify__majority__quick__seed0.json", "lorenz-forecast__persistence__quick__seed0.json"]


def test_a_model_supporting_none_of_the_tasks_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["run", "--model", "persistence", "--task", "heat-classify", "--results", str(tmp_path)], capsys)
    assert code == 2 and "supports none of the chosen tasks" in err
    assert not list(tmp_path.glob("*.json"))


def test_model_all_on_one_kind_runs_the_models_that_support_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'all' with classification tasks only skips the forecast-only models instead of refusing the sweep."""
    code, _, err = run_main(["run", "--model", "all", "--task", "heat-classify", "--results", str(tmp_path)], capsys)
    assert code == 0, err
    names = {p.name.split("__")[1] for p in tmp_path.glob("*.json")}
    assert {"majority", "resnet", "neural-ode", "lm-resnet"} <= names and not names & {"persistence", "exact", "perturbed-exact"}


def _damaged_copy(tmp_path: Path, damage: str) -> tuple[Path, Path]:
    from odebench import data

    directory = tmp_path / "data"
    directory.mkdir()
    source = data.data_dir()
    for split in data.SPLIT_NAMES:
        name = data.split_filename("lorenz-forecast", split)
        shutil.copy2(source / name, directory / name)
    shutil.copy2(source / data.MANIFEST_NAME, directory / data.MANIFEST_NAME)
    victim = directory / data.split_filename("lorenz-forecast", "train")
    raw = bytearray(victim.read_bytes())
    if damage == "flipped":
        raw[len(raw) // 3] ^= 0x01
        victim.write_bytes(bytes(raw))
    elif damage == "truncated":
        victim.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        victim.unlink()
    return directory, victim


@pytest.mark.parametrize("damage", ["flipped", "truncated", "missing"])
def test_damaged_data_is_refused_before_any_training(damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    directory, victim = _damaged_copy(tmp_path, damage)
    monkeypatch.setenv("ODEBENCH_DATA", str(directory))
    results = tmp_path / "R"
    code, _, err = run_main(["run", "--model", "resnet", "--task", "lorenz-forecast", "--results", str(results)], capsys)
    assert code == 2
    assert str(victim) in err and "odebench data build --task lorenz-forecast" in err
    assert not list(results.glob("*.json")) and not (results / "logs").exists()
    code, _, err = run_main(["data", "verify", "--task", "lorenz-forecast"], capsys)
    assert code == 2 and str(victim) in err


def test_data_verify_passes_on_the_committed_splits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["data", "verify"], capsys)
    assert code == 0
    assert len([line for line in out.splitlines() if line.startswith("ok ")]) == 6


def test_data_build_check_and_rebuild_into_another_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["data", "build", "--task", "heat-forecast", "--check"], capsys)
    assert code == 0 and out.count("identical") == 3
    code, out, _ = run_main(["data", "build", "--task", "heat-forecast", "--data-dir", str(tmp_path)], capsys)
    assert code == 0 and len(list(tmp_path.glob("heat-forecast.*.h5"))) == 3
    code, out, _ = run_main(["data", "verify", "--task", "heat-forecast", "--data-dir", str(tmp_path)], capsys)
    assert code == 0 and out.startswith("ok  heat-forecast")
    code, out, _ = run_main(["data", "build", "--task", "heat-forecast", "--data-dir", str(tmp_path), "--jobs", "2"], capsys)
    assert code == 0 and "2 process(es)" in out and "s wall" in out
    code, _, err = run_main(["data", "build", "--task", "heat-forecast", "--jobs", "0"], capsys)
    assert code == 2 and "--jobs" in err


def test_two_distributions_claiming_one_name_exit_2(fake_dist, capsys: pytest.CaptureFixture[str]) -> None:
    fake_dist("fake-first", {"odebench.models": {"resnet": "odebench_fake_first:build"}}, {"odebench_fake_first": "def build(task):\n    pass\n"})
    code, _, err = run_main(["list", "models"], capsys)
    assert code == 2 and "'resnet' is registered twice" in err and "fake-first" in err and "odebench 0.1.0" in err
    assert len(err.strip().splitlines()) == 1


def test_memory_cap_through_the_cli(fake_models, tmp_path: Path) -> None:
    proc = odebench("run", "--model", "fake-huge", "--task", "lorenz-forecast", "--results", str(tmp_path), "--max-memory", "2", "--model-arg", "gigabytes=3")
    assert proc.returncode == 1
    (record,) = tmp_path.glob("*.json")
    rec = json.loads(record.read_text())
    assert rec["status"] == "failed" and rec["error"].startswith("out of memory")


def test_a_broken_plugin_gets_failed_records_and_the_sweep_goes_on(fake_models, fake_dist, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_dist("fake-unimportable", {"odebench.models": {"unimportable": "odebench_fake_unimportable:build"}}, {"odebench_fake_unimportable": "import not_a_real_module_xyz\n"})
    code, _, err = run_main(["run", "--model", "unimportable,fake-ok", "--task", "lorenz-forecast", "--profile", "quick", "--results", str(tmp_path)], capsys)
    assert code == 1 and "unimportable" in err and "its jobs get failed records" in err
    records = {json.loads(p.read_text())["model"]["name"]: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert records["fake-ok"]["status"] == "ok"
    assert records["unimportable"]["status"] == "failed" and "not_a_real_module_xyz" in records["unimportable"]["error"]


def test_an_argument_no_model_accepts_is_refused_before_any_job(fake_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["run", "--model", "fake-ok,persistence", "--task", "lorenz-forecast", "--results", str(tmp_path), "--model-arg", "scale=2"], capsys)
    assert code == 2 and "'persistence'" in err and "accepts no --model-arg scale" in err
    assert not list(tmp_path.glob("*.json"))


def test_without_max_memory_a_default_cap_applies_and_is_recorded(fake_models, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from odebench.cli import default_jobs, default_memory_cap

    cap = default_memory_cap(parallel_jobs=default_jobs(threads=1))
    assert cap is not None and cap >= 2**30
    big = int(2 * cap / 2**30) + 1  # twice the cap: refused at once, the machine never swaps
    code, _, _ = run_main(["run", "--model", "fake-huge", "--task", "lorenz-forecast", "--device", "cpu", "--results", str(tmp_path), "--model-arg", f"gigabytes={big}"], capsys)
    assert code == 1
    rec = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert rec["status"] == "failed" and "out of memory" in rec["error"]
    assert rec["limits"]["max_memory_bytes"] == cap


def test_the_cli_starts_without_importing_torch() -> None:
    """`odebench --help` stays fast because nothing on its path imports torch."""
    code = "import sys, odebench, odebench.cli\ntry:\n    odebench.cli.main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "False", proc.stdout + proc.stderr
