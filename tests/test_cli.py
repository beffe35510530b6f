"""The command line: misuse ends with exit code 2 and one clear line; nothing is touched."""

from __future__ import annotations

import os
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


def test_console_script_misuse_in_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "odebench.cli", "run", "--model", "resnet", "--task", "nope", "--results", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("odebench: error: unknown task 'nope'")
