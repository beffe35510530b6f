"""The harness's training loop and evaluation, on synthetic data with tiny models."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from odebench.protocol import Protocol, learning_rate, protocol_for
from odebench.spec import ModelOutputError, Split, TaskData, TaskSpec
from odebench.training import train_and_evaluate

CPU = torch.device("cpu")
FORECAST = TaskSpec(name="toy-forecast", version="1", kind="forecast", system="toy", state_shape=(2,), dt=0.1, n_times=12, train_window=5, eval_times=(0.5, 1.0), lyapunov_exponent=1.0)
CLASSIFY = TaskSpec(name="toy-classify", version="1", kind="classify", system="toy", state_shape=(2,), dt=0.1, n_times=6, n_classes=2)


def _decay(n: int, rng: np.random.Generator, steps: int, rate: float = -0.5) -> np.ndarray:
    u0 = rng.normal(size=(n, 2))
    t = 0.1 * np.arange(steps)
    return (u0[:, None, :] * np.exp(rate * t)[None, :, None]).astype(np.float32)


def _split(u: np.ndarray, y: np.ndarray | None = None) -> Split:
    return Split(u=u, t=0.1 * np.arange(u.shape[1]), y=y)


def forecast_data(seed: int = 0, val_rate: float = -0.5) -> TaskData:
    rng = np.random.default_rng(seed)
    return TaskData(train=_split(_decay(32, rng, 20)), val=_split(_decay(8, rng, 12, val_rate)), test=_split(_decay(8, rng, 12)))


def classify_data(seed: int = 0) -> TaskData:
    rng = np.random.default_rng(seed)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 6, 2)).astype(np.float32) + (2.0 * y - 1.0)[:, None, None]
        return x, y

    (tx, ty), (vx, vy), (sx, sy) = split(64), split(32), split(32)
    return TaskData(train=_split(tx, ty), val=_split(vx, vy), test=_split(sx, sy))


class Stepper(torch.nn.Module):
    """u_{n+1} = u_n + g(u_n): a one-layer residual step, NFE counted in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.nfe = 0
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = [u0]
        for _ in range(t.shape[0] - 1):
            self.nfe += 1
            out.append(out[-1] + self.lin(out[-1]))
        return torch.stack(out, 1)


class MeanClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.nfe = 0
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.lin(x.mean(1))


def validation_loss(model: torch.nn.Module, data: TaskData, proto: Protocol) -> float:
    """The model's loss on the protocol's validation batches, as training computes it."""
    batches = FORECAST.objective.training_set(FORECAST, data, proto, CPU, 0)
    with torch.no_grad():
        return sum(float(batches.loss(model, b)) for b in batches.validation) / len(batches.validation)


def test_forecast_training_learns_and_reports_everything() -> None:
    torch.manual_seed(0)
    model = Stepper()
    proto = protocol_for(FORECAST, "quick")
    out = train_and_evaluate(FORECAST, model, forecast_data(), proto, CPU, seed=0)
    assert out.train["steps"] == proto.max_steps
    assert out.cost["nfe_forward"] == FORECAST.n_times - 1  # one residual step per interval
    assert out.train["nfe_forward_train_mean"] == FORECAST.train_window - 1
    assert out.cost["nfe_backward"] == 0
    assert out.cost["params"] == 6 and out.cost["peak_gpu_bytes"] is None
    assert set(out.metrics) >= {"nrmse_mean", "nrmse@0.5", "nrmse@1", "vpt", "vpt_capped_fraction", "nrmse_curve"}
    assert out.metrics["n_test"] == 8
    assert out.cost["n_test_times"] == FORECAST.n_times


def test_forecast_training_learns_the_decay() -> None:
    """The data decay as u' = -u/2, so one residual step must learn u -> exp(-0.05) u."""
    torch.manual_seed(0)
    untrained = train_and_evaluate(FORECAST, Stepper(), forecast_data(), Protocol(**{**protocol_for(FORECAST, "quick").to_dict(), "max_steps": 1, "learning_rate": 1e-12}), CPU, 0)
    torch.manual_seed(0)
    model = Stepper()
    proto = Protocol(**{**protocol_for(FORECAST, "quick").to_dict(), "max_steps": 400, "learning_rate": 3e-2, "eval_every": 50})
    out = train_and_evaluate(FORECAST, model, forecast_data(), proto, CPU, 0)
    assert out.metrics["nrmse_mean"] < 0.02 < untrained.metrics["nrmse_mean"]
    step = torch.eye(2) + model.lin.weight.detach()
    assert torch.allclose(step, math.exp(-0.05) * torch.eye(2), atol=0.02)
    assert out.train["best_val_loss"] < 0.01 * out.train["val_history"][0][1]


def test_early_stopping_restores_the_best_state() -> None:
    """Validation data grow while training data decay: every step away from the start
    makes the validation loss worse, so training stops after `patience` validations
    and the state of the first validation comes back."""
    torch.manual_seed(0)
    model = Stepper()
    torch.nn.init.zeros_(model.lin.weight)
    torch.nn.init.zeros_(model.lin.bias)
    proto = Protocol(**{**protocol_for(FORECAST, "quick").to_dict(), "max_steps": 500, "learning_rate": 1e-2, "warmup_fraction": 0.0, "eval_every": 5, "patience": 3, "patience_start_fraction": 0.0})
    data = forecast_data(val_rate=+0.5)
    out = train_and_evaluate(FORECAST, model, data, proto, CPU, 0)
    history = out.train["val_history"]
    assert out.train["stopped_early"] and out.train["steps"] == 5 * 4 and len(history) == 4
    assert out.train["best_step"] == 5 and all(v > history[0][1] for _, v in history[1:])
    # The returned weights are those of step 5: their validation loss is the best one.
    assert validation_loss(model, data, proto) == pytest.approx(out.train["best_val_loss"], rel=1e-6)
    assert out.state_dict["lin.weight"].equal(model.lin.weight.detach())


def test_same_seed_gives_identical_metrics() -> None:
    def run(seed: int) -> dict:
        torch.manual_seed(seed)
        return train_and_evaluate(CLASSIFY, MeanClassifier(), classify_data(), protocol_for(CLASSIFY, "quick"), CPU, seed).metrics

    assert run(3) == run(3)
    torch.manual_seed(0)
    a = train_and_evaluate(FORECAST, Stepper(), forecast_data(), protocol_for(FORECAST, "quick"), CPU, 1).metrics
    torch.manual_seed(0)
    b = train_and_evaluate(FORECAST, Stepper(), forecast_data(), protocol_for(FORECAST, "quick"), CPU, 1).metrics
    assert a == b


def test_classification_learns_a_separable_problem() -> None:
    torch.manual_seed(0)
    proto = Protocol(**{**protocol_for(CLASSIFY, "quick").to_dict(), "max_steps": 300, "learning_rate": 3e-2, "eval_every": 50})
    out = train_and_evaluate(CLASSIFY, MeanClassifier(), classify_data(), proto, CPU, 0)
    assert out.metrics["accuracy"] > 0.9 and 0 <= out.metrics["macro_f1"] <= 1


class SlowWhenEvaluating(MeanClassifier):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            time.sleep(0.05)
        return super().forward(x)


def test_train_seconds_exclude_evaluation() -> None:
    proto = protocol_for(CLASSIFY, "quick")
    out = train_and_evaluate(CLASSIFY, SlowWhenEvaluating(), classify_data(), proto, CPU, 0)
    n_validations = len(out.train["val_history"])
    assert n_validations >= 2
    # Each validation sleeps >= 0.05 s; none of it may be on the training clock.
    assert out.train["phase_seconds"] >= 0.05 * n_validations
    assert out.cost["train_seconds"] < out.train["phase_seconds"] - 0.05 * n_validations + 1e-3
    assert out.cost["infer_seconds"] >= 0.05  # one timed test batch at least


class NaNModel(MeanClassifier):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * float("nan")


class WrongShape(MeanClassifier):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[:, :1]


@pytest.mark.parametrize("model, match", [(NaNModel, "NaN|nan"), (WrongShape, "shape")])
def test_contract_violations_raise_model_output_error(model: type, match: str) -> None:
    with pytest.raises(ModelOutputError, match=match):
        train_and_evaluate(CLASSIFY, model(), classify_data(), protocol_for(CLASSIFY, "quick"), CPU, 0)


class Exploding(Stepper):
    """Trains like a Stepper on the short training windows, then overflows to Inf and NaN
    on the longer test rollout."""

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = super().forward(u0, t)
        if t.shape[0] > FORECAST.train_window:
            out = out.clone()
            out[:1, 8] = float("inf")
            out[:1, 9:] = float("nan")
        return out


def test_a_forecast_that_diverges_on_the_test_horizon_is_scored_not_failed() -> None:
    torch.manual_seed(0)
    out = train_and_evaluate(FORECAST, Exploding(), forecast_data(), protocol_for(FORECAST, "quick"), CPU, 0)
    assert out.metrics["diverged_fraction"] == pytest.approx(1 / 8)
    assert out.metrics["nrmse_mean"] == float("inf")
    assert np.isfinite(out.metrics["vpt"]) and out.metrics["vpt"] <= FORECAST.times[8] * 1.0 + 1e-9 + 7 * FORECAST.times[-1] / 8


def test_wall_clock_cap_truncates_and_says_so() -> None:
    proto = protocol_for(CLASSIFY, "quick")
    capped = Protocol(**{**proto.to_dict(), "max_steps": 10_000, "wall_clock_cap_s": 0.3, "eval_every": 10_000})
    out = train_and_evaluate(CLASSIFY, MeanClassifier(), classify_data(), capped, CPU, 0)
    assert out.train["truncated"] and out.train["steps"] < 10_000
    assert out.train["val_history"][-1][0] == out.train["steps"]  # validated at the stop


def test_parameterless_model_is_scored_without_training() -> None:
    class Persistence(torch.nn.Module):
        nfe = 0

        def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return u0[:, None].expand(-1, t.shape[0], *u0.shape[1:])

    out = train_and_evaluate(FORECAST, Persistence(), forecast_data(), protocol_for(FORECAST, "quick"), CPU, 0)
    assert out.train["steps"] == 0 and out.cost["train_seconds"] == 0.0 and out.cost["params"] == 0
    assert out.metrics["nrmse_curve"]["nrmse"][0] == 0.0


def test_learning_rate_schedule_warms_up_and_decays() -> None:
    proto = protocol_for(FORECAST, "standard")
    lrs = [learning_rate(proto, s) for s in range(proto.max_steps)]
    peak = int(np.argmax(lrs))
    assert lrs[0] < lrs[peak] == pytest.approx(proto.learning_rate)
    assert lrs[-1] == pytest.approx(0.01 * proto.learning_rate, rel=0.05)
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))


class RunawaySolver(Stepper):
    """Keeps evaluating its field inside one call, as an adaptive solver whose step collapsed."""

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        u = u0
        while True:
            self.nfe += 1
            u = u + 0.0 * self.lin(u)


def test_a_runaway_solver_is_stopped_at_the_nfe_limit_with_the_count() -> None:
    from odebench.nfe_guard import NFELimitError

    proto = Protocol(**{**protocol_for(FORECAST, "quick").to_dict(), "max_nfe_per_call": 20_000})
    started = time.perf_counter()
    with pytest.raises(NFELimitError, match=r"NFE limit exceeded: [\d,]+ vector-field evaluations in one training forward call, more than the protocol's 20,000"):
        train_and_evaluate(FORECAST, RunawaySolver(), forecast_data(), proto, CPU, 0)
    assert time.perf_counter() - started < 60  # stopped by the guard, not by any timeout


def test_the_nfe_limit_is_checked_when_a_call_returns_too() -> None:
    from odebench.nfe_guard import NFEGuard, NFELimitError

    model = Stepper()
    with NFEGuard(model, 10, poll_s=3600) as guard:  # the watcher never looks: only the return check can catch it
        with guard.call("test"):
            model(torch.zeros(1, 2), torch.zeros(10))
        with pytest.raises(NFELimitError, match="11 vector-field evaluations in one test call"):
            with guard.call("test"):
                model(torch.zeros(1, 2), torch.zeros(12))


def test_per_item_scores_average_to_the_metrics() -> None:
    torch.manual_seed(0)
    out = train_and_evaluate(FORECAST, Stepper(), forecast_data(), protocol_for(FORECAST, "quick"), CPU, 0)
    items = out.items
    assert items is not None and items["n"] == 8 and "items" not in out.metrics
    assert np.mean(items["vpt"]) == pytest.approx(out.metrics["vpt"])
    assert np.mean(items["nrmse_mean"]) == pytest.approx(out.metrics["nrmse_mean"])
    curves = np.array(items["nrmse_curve"]["nrmse"], dtype=float)
    assert curves.shape == (8, len(items["nrmse_curve"]["t"]))
    assert np.allclose(curves.mean(axis=0), out.metrics["nrmse_curve"]["nrmse"], rtol=1e-3)
    torch.manual_seed(0)
    out = train_and_evaluate(CLASSIFY, MeanClassifier(), classify_data(), protocol_for(CLASSIFY, "quick"), CPU, 0)
    assert out.items is not None and len(out.items["accuracy"]) == 16 and np.mean(out.items["accuracy"]) == pytest.approx(out.metrics["accuracy"])


def test_patience_counts_only_from_the_second_half_of_the_budget() -> None:
    """The same run as above under the default rule: validations in the first half of the
    schedule never count towards patience, so it stops only after half the budget."""
    torch.manual_seed(0)
    model = Stepper()
    torch.nn.init.zeros_(model.lin.weight)
    torch.nn.init.zeros_(model.lin.bias)
    proto = Protocol(**{**protocol_for(FORECAST, "quick").to_dict(), "max_steps": 100, "learning_rate": 1e-2, "warmup_fraction": 0.0, "eval_every": 5, "patience": 3})
    assert proto.patience_start_fraction == 0.5
    out = train_and_evaluate(FORECAST, model, forecast_data(val_rate=+0.5), proto, CPU, 0)
    assert out.train["stopped_early"] and out.train["steps"] == 50 + 2 * 5 and out.train["best_step"] == 5


def test_the_leaderboard_profiles_have_a_step_budget_and_no_wall_clock() -> None:
    for profile in ("quick", "standard"):
        proto = protocol_for(FORECAST, profile)
        assert proto.wall_clock_cap_s is None and proto.version == "5" and proto.max_steps > 0


class NaNOnStepThree(Stepper):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = super().forward(u0, t)
        return out * float("nan") if self.calls == 3 else out


def test_a_nan_training_loss_fails_at_the_step_it_happens() -> None:
    with pytest.raises(ModelOutputError, match="training loss is nan at step 3"):
        train_and_evaluate(FORECAST, NaNOnStepThree(), forecast_data(), protocol_for(FORECAST, "quick"), CPU, 0)


def test_a_weight_average_is_what_is_validated_and_kept() -> None:
    """With ``weight_average`` the kept weights are the average the validations saw, not the last
    iterate: re-validating the returned model gives the recorded best loss, and the iterate
    differs from it."""
    torch.manual_seed(0)
    model = Stepper()
    proto = Protocol(**{**protocol_for(FORECAST, "quick").to_dict(), "max_steps": 60, "learning_rate": 3e-2, "eval_every": 60, "weight_average": 0.9})
    data = forecast_data()
    out = train_and_evaluate(FORECAST, model, data, proto, CPU, 0)
    torch.manual_seed(0)
    iterate = Stepper()
    plain = train_and_evaluate(FORECAST, iterate, data, Protocol(**{**proto.to_dict(), "weight_average": None}), CPU, 0)
    assert out.train["best_step"] == 60 and plain.train["best_step"] == 60
    assert not torch.allclose(model.lin.weight, iterate.lin.weight)  # same iterates, different weights kept
    assert validation_loss(model, data, proto) == pytest.approx(out.train["best_val_loss"], rel=1e-6)
    assert out.state_dict["lin.weight"].equal(model.lin.weight.detach())


def test_the_schedule_ends_at_its_final_fraction() -> None:
    proto = Protocol(**{**protocol_for(FORECAST, "standard").to_dict(), "final_lr_fraction": 1e-3})
    assert learning_rate(proto, proto.max_steps - 1) == pytest.approx(1e-3 * proto.learning_rate, rel=0.05)
