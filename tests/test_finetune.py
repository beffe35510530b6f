"""The protocol's L-BFGS phase on long windows: it converges, keeps only a validated gain,
survives a failing line search, counts its evaluations, and runs inside the training clock."""

from __future__ import annotations

import math

import pytest
import torch

from odebench import registry
from odebench.finetune import lbfgs_phase, lbfgs_settings
from odebench.nfe_guard import NFEGuard
from odebench.protocol import Protocol, protocol_for
from odebench.training import train_and_evaluate

from .test_training import CLASSIFY, CPU, FORECAST, MeanClassifier, Stepper, classify_data, forecast_data

WINDOW = 10  # longer than the toy task's training window of 5, within its 12-sample validation trajectories


def _protocol(**changes: object) -> Protocol:
    return Protocol(**{**protocol_for(FORECAST, "quick").to_dict(), "lbfgs_window": WINDOW, "lbfgs_windows": 16, "lbfgs_iters": 50, **changes})


def _one_step(model: Stepper) -> torch.Tensor:
    return torch.eye(2) + model.lin.weight.detach()


def test_the_phase_solves_the_linear_decay_to_the_last_digits_and_keeps_it() -> None:
    """The toy data decay as u' = -u/2: from zero weights L-BFGS must find the exact
    one-step map exp(-0.05) I, which Adam at a finite rate only approaches."""
    torch.manual_seed(0)
    model = Stepper()
    torch.nn.init.zeros_(model.lin.weight)
    torch.nn.init.zeros_(model.lin.bias)
    facts = lbfgs_phase(FORECAST, model, forecast_data(), _protocol(), CPU, 0, NFEGuard(model, None))
    assert facts["kept"] and facts["reason"] is None
    assert facts["val_loss_after"] < 1e-6 * facts["val_loss_before"]
    assert facts["train_loss_after"] < 1e-6 * facts["train_loss_before"]
    assert torch.allclose(_one_step(model), math.exp(-0.05) * torch.eye(2), atol=1e-4)
    assert facts["window"] == WINDOW and facts["windows"] == 16 and 1 <= facts["iterations"] <= 50


def test_the_phase_counts_every_evaluation_it_makes() -> None:
    """One Stepper forward over a window makes WINDOW - 1 evaluations; the record counts
    those of the line search, and none in backward (no adjoint)."""
    torch.manual_seed(0)
    model = Stepper()
    before = model.nfe
    facts = lbfgs_phase(FORECAST, model, forecast_data(), _protocol(lbfgs_iters=5), CPU, 0, NFEGuard(model, None))
    assert facts["evaluations"] >= 5
    assert facts["nfe_forward"] == facts["evaluations"] * (WINDOW - 1)
    assert facts["nfe_backward"] == 0
    assert model.nfe - before == facts["nfe_forward"] + 4 * (WINDOW - 1)  # plus the two losses before and two after


def test_a_gain_on_training_windows_that_validation_does_not_confirm_is_dropped() -> None:
    """The validation trajectories grow (rate +0.5) while the training ones decay: fitting
    the training windows raises the validation loss, so the weights must come back unchanged."""
    torch.manual_seed(0)
    model = Stepper()
    torch.nn.init.zeros_(model.lin.weight)
    torch.nn.init.zeros_(model.lin.bias)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    facts = lbfgs_phase(FORECAST, model, forecast_data(val_rate=+0.5), _protocol(), CPU, 0, NFEGuard(model, None))
    assert not facts["kept"] and "not below" in facts["reason"]
    assert facts["train_loss_after"] < facts["train_loss_before"] and facts["val_loss_after"] >= facts["val_loss_before"]
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


class NaNAfter(Stepper):
    """Finite for the first ``finite`` calls, NaN after: a line search that steps into a blow-up."""

    def __init__(self, finite: int) -> None:
        super().__init__()
        self.calls, self.finite = 0, finite

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = super().forward(u0, t)
        return out * float("nan") if self.calls > self.finite else out


def test_a_line_search_into_nan_keeps_adams_weights_and_says_why() -> None:
    torch.manual_seed(0)
    model = NaNAfter(finite=4)  # the two losses before the phase, then two line-search evaluations
    start = {k: v.clone() for k, v in model.state_dict().items()}
    facts = lbfgs_phase(FORECAST, model, forecast_data(), _protocol(), CPU, 0, NFEGuard(model, None))
    assert not facts["kept"] and facts["reason"].startswith("failed") and "nan" in facts["reason"]
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_the_nfe_limit_inside_the_phase_reverts_instead_of_failing_the_run() -> None:
    torch.manual_seed(0)
    model = Stepper()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with NFEGuard(model, WINDOW - 2) as guard:  # below one forward over a window: the first call trips it
        facts = lbfgs_phase(FORECAST, model, forecast_data(), Protocol(**{**_protocol().to_dict(), "max_nfe_per_call": WINDOW - 2}), CPU, 0, guard)
    assert not facts["kept"] and "NFE limit exceeded" in (facts.get("reason") or "")
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_the_phase_runs_on_a_classifier_through_the_same_objective_interface() -> None:
    """Batches of a classification objective are (windows, labels); the phase needs no
    knowledge of the kind: it fits the fixed windows and validates on as many."""
    torch.manual_seed(0)
    model = MeanClassifier()
    proto = Protocol(**{**protocol_for(CLASSIFY, "quick").to_dict(), "lbfgs_windows": 32, "lbfgs_iters": 30})
    facts = lbfgs_phase(CLASSIFY, model, classify_data(), proto, CPU, 0, NFEGuard(model, None))
    assert facts["window"] is None and facts["windows"] == 32
    batches = CLASSIFY.objective.training_set(CLASSIFY, classify_data(), lbfgs_settings(proto), CPU, 0)
    assert len(batches.validation) == 1 and batches.validation[0][0].shape[0] == 32  # the whole validation split
    assert facts["kept"] and facts["val_loss_after"] < 0.5 * facts["val_loss_before"]
    assert facts["nfe_forward"] == facts["evaluations"]  # one evaluation per forward


def test_zero_iterations_is_refused() -> None:
    model = Stepper()
    with pytest.raises(ValueError, match="lbfgs_iters >= 1"):
        lbfgs_phase(FORECAST, model, forecast_data(), _protocol(lbfgs_iters=0), CPU, 0, NFEGuard(model, None))


def test_its_windows_are_clean_fixed_and_as_many_for_validation() -> None:
    proto = _protocol(augment=True, input_noise=0.3, batch_size=4, val_batches=3)
    settings = lbfgs_settings(proto)
    assert (settings.rollout, settings.batch_size, settings.val_batches, settings.augment, settings.input_noise) == (WINDOW, 16, 1, False, 0.0)
    batches = FORECAST.objective.training_set(FORECAST, forecast_data(), settings, CPU, 0)
    assert tuple(batches.sample().shape) == (16, WINDOW, 2) and tuple(batches.validation[0].shape) == (16, WINDOW, 2)


def test_train_and_evaluate_runs_the_phase_inside_the_training_clock_and_records_it() -> None:
    torch.manual_seed(0)
    plain_model = Stepper()
    plain = train_and_evaluate(FORECAST, plain_model, forecast_data(), protocol_for(FORECAST, "quick"), CPU, 0)
    torch.manual_seed(0)
    model = Stepper()
    out = train_and_evaluate(FORECAST, model, forecast_data(), _protocol(), CPU, 0)
    assert "lbfgs" not in plain.train
    facts = out.train["lbfgs"]
    assert facts["kept"] and facts["val_loss_before"] == pytest.approx(_long_val_loss(plain_model), rel=1e-6)  # it starts from Adam's kept weights
    assert out.metrics["nrmse_mean"] < 0.1 * plain.metrics["nrmse_mean"]
    assert out.cost["train_seconds"] >= facts["seconds"] * 0.9
    assert out.train["steps"] == plain.train["steps"]  # the Adam phase is unchanged


def _long_val_loss(model: Stepper) -> float:
    batches = FORECAST.objective.training_set(FORECAST, forecast_data(), lbfgs_settings(_protocol()), CPU, 0)
    with torch.no_grad():
        return float(batches.loss(model, batches.validation[0]))


def test_the_published_protocol_runs_the_phase_on_lorenz_forecast_only() -> None:
    for name in ("heat-forecast", "lorenz-forecast", "ks-forecast", "heat-classify", "lorenz-classify", "ks-classify"):
        task = registry.load_task(name)
        standard, quick = protocol_for(task, "standard"), protocol_for(task, "quick")
        if name == "lorenz-forecast":
            assert (standard.lbfgs_iters, standard.lbfgs_windows, standard.lbfgs_window) == (200, 512, 201)
            assert 0 < quick.lbfgs_iters < standard.lbfgs_iters and quick.lbfgs_window == 201
        else:
            assert standard.lbfgs_iters == quick.lbfgs_iters == 0
