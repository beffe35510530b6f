"""``odebench validate``: the pre-flight contract check, on built-in and broken models."""

from __future__ import annotations

import pytest

from odebench.cli import main
from odebench.validate import validate_model

TASKS = ["lorenz-forecast", "heat-classify"]


@pytest.mark.parametrize("name", ["neural-ode", "resnet", "lm-resnet"])
def test_baselines_pass_on_every_task(name: str) -> None:
    report = validate_model(name, ["heat-forecast", "heat-classify", "lorenz-forecast", "lorenz-classify", "ks-forecast", "ks-classify"])
    assert report.ok and all(c.status == "ok" for c in report.checks), report.format()
    assert all(c.params and c.params > 0 and c.nfe_forward and c.nfe_forward > 0 for c in report.checks)


def test_floors_skip_other_kinds_and_note_zero_nfe() -> None:
    report = validate_model("majority", TASKS)
    statuses = {c.task: c.status for c in report.checks}
    assert statuses == {"lorenz-forecast": "skip", "heat-classify": "warn"} and report.ok
    assert "NFE stays 0" in report.format()


@pytest.mark.parametrize(
    "name, needle",
    [("fake-wrong-shape", "shape"), ("fake-nan", "NaN"), ("fake-raises", "deliberate failure"), ("fake-not-a-model", "torch.nn.Module"), ("fake-missing-attr", "AttributeError")],
)
def test_broken_models_fail_with_the_reason(fake_models, name: str, needle: str) -> None:
    report = validate_model(name, TASKS)
    assert not report.ok
    assert all(c.status == "fail" for c in report.checks)
    assert needle in report.format()


def test_cli_validate_exit_codes(fake_models, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "fake-ok", "--task", ",".join(TASKS)]) == 0
    assert main(["validate", "fake-nan", "--task", ",".join(TASKS)]) == 1
    out = capsys.readouterr().out
    assert "result: passed" in out and "result: FAILED" in out


def test_a_nan_on_a_later_call_is_caught_and_said_so(fake_models) -> None:
    report = validate_model("fake-late-nan", ["lorenz-forecast"])
    assert not report.ok and "NaN" in report.checks[0].message and "on call 3 of 3 (calls 1-2 were fine)" in report.checks[0].message


def test_a_hang_and_a_crash_are_reported_and_the_other_tasks_still_checked(fake_models, fake_dist) -> None:
    hang = validate_model("fake-hangs", ["lorenz-forecast", "heat-classify"], timeout_s=3)
    assert [c.status for c in hang.checks] == ["fail", "fail"]
    assert all("hung: no answer within 3 s" in c.message for c in hang.checks)
    crash = validate_model("fake-segfaults", ["lorenz-forecast", "heat-classify"])
    assert [c.task for c in crash.checks] == ["lorenz-forecast", "heat-classify"]
    assert all("crashed" in c.message and "SIGSEGV" in c.message for c in crash.checks)


def test_cli_validate_refuses_an_argument_the_model_does_not_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "persistence", "--task", "lorenz-forecast", "--model-arg", "width=3"]) == 2
    assert "accepts no --model-arg width" in capsys.readouterr().err
