"""Task kinds live in objectives: the built-ins, a plugin kind through entry points, lookups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from odebench.objectives import OBJECTIVE_GROUP, ClassifyObjective, ForecastObjective, objective_for
from odebench.protocol import protocol_for
from odebench.spec import Split, TaskData, TaskSpec
from odebench.tasks.specs import ALL_SPECS, HEAT_FORECAST
from odebench.training import train_and_evaluate

# A third-party task kind: predict the mean of a window's last frame. Nothing in the
# harness knows this kind; the objective declares everything about it.
REGRESS_OBJECTIVE = '''
import numpy as np
import torch
from odebench.spec import MetricSpec, Objective, TrainingSet, check_output_shape


class _Training(TrainingSet):
    def __init__(self, task, data, protocol, device, seed):
        self.task, self.rng, self.n = task, np.random.default_rng(seed), protocol.batch_size
        self.u = torch.as_tensor(np.asarray(data.train.u, dtype=np.float32))
        self.validation = [torch.as_tensor(np.asarray(data.val.u, dtype=np.float32))]

    def sample(self):
        return self.u[torch.as_tensor(self.rng.integers(0, self.u.shape[0], self.n))]

    def loss(self, model, batch):
        out = model(batch)
        check_output_shape(self.task, out, (batch.shape[0], 1))
        return (out[:, 0] - batch[:, -1].mean(-1)).pow(2).mean()


class RegressObjective(Objective):
    kind = "regress"

    def check_spec(self, task):
        if task.n_classes is not None:
            raise ValueError(f"task {task.name!r}: a regression task has no classes")

    def split_times(self, task, split):
        return task.n_times, True

    def check_labels(self, task, where, y, n):
        if y is not None:
            raise ValueError(f"{where}: no labels")

    def training_set(self, task, data, protocol, device, seed):
        return _Training(task, data, protocol, device, seed)

    def output_shape(self, task, batch, n_times=None):
        return (batch, 1)

    def call(self, task, model, items, t):
        return model(items)

    def example(self, task, batch, generator):
        return torch.randn((batch, task.n_times, *task.state_shape), generator=generator), torch.as_tensor(task.times, dtype=torch.float32)

    def example_loss(self, task, out, items):
        return out.pow(2).mean()

    def metrics(self, task):
        return (MetricSpec("mae", "MAE", False, "#.3g"), MetricSpec("bias", "bias", None, "#.3g"))

    def main_metric(self, task):
        return "mae"

    def score(self, task, outputs, data, n):
        err = outputs[:, 0] - np.asarray(data.test.u[:n, -1], dtype=np.float64).mean(-1)
        return {"mae": float(np.abs(err).mean()), "bias": float(err.mean())}
'''


class LastFrameMean(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.nfe = 0
        self.lin = torch.nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.lin(x[:, -1])


def _regress_task() -> TaskSpec:
    return TaskSpec(name="toy-regress", version="1", kind="regress", system="toy", state_shape=(2,), dt=0.1, n_times=4)


def test_builtin_kinds_have_their_objectives() -> None:
    assert isinstance(objective_for("forecast"), ForecastObjective)
    assert isinstance(objective_for("classify"), ClassifyObjective)
    assert {spec.objective.kind for spec in ALL_SPECS.values()} == {"forecast", "classify"}


def test_every_shipped_spec_declares_its_metrics_and_main_score() -> None:
    for spec in ALL_SPECS.values():
        keys = [m.key for m in spec.metrics]
        assert keys[0] == spec.main_metric and len(set(keys)) == len(keys)
        main = spec.metrics[0]
        assert main.higher_is_better is (spec.main_metric in ("vpt", "accuracy"))
        if spec.lyapunov_exponent:  # chaotic: horizons are labelled in Lyapunov times, like VPT
            assert all(m.label.endswith(" LT") for m in spec.metrics if m.key.startswith("nrmse@"))
        assert spec.to_dict()["metrics"] == [m.to_dict() for m in spec.metrics]


def test_unknown_kind_names_the_entry_point_group() -> None:
    with pytest.raises(ValueError, match=f"unknown task kind 'regress'.*{OBJECTIVE_GROUP}"):
        _regress_task()


def test_a_plugin_kind_trains_and_scores_with_no_change_in_the_harness(fake_dist: Callable[..., Path]) -> None:
    fake_dist("fake-regress", {OBJECTIVE_GROUP: {"regress": "odebench_fake_regress:RegressObjective"}}, {"odebench_fake_regress": REGRESS_OBJECTIVE})
    task = _regress_task()
    assert task.main_metric == "mae" and task.to_dict()["metrics"][0]["higher_is_better"] is False
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(u=rng.normal(size=(n, 4, 2)).astype(np.float32), t=task.times)

    torch.manual_seed(0)
    proto = protocol_for(task, "quick")
    out = train_and_evaluate(task, LastFrameMean(), TaskData(split(64), split(16), split(16)), proto, torch.device("cpu"), seed=0)
    assert set(out.metrics) == {"mae", "bias", "n_test"} and 0 < out.metrics["mae"] < 2
    assert out.cost["nfe_forward"] == 1


def test_a_plugin_objective_of_the_wrong_type_is_refused(fake_dist: Callable[..., Path]) -> None:
    fake_dist("fake-badkind", {OBJECTIVE_GROUP: {"badkind": "odebench_fake_badkind:NOT_AN_OBJECTIVE"}}, {"odebench_fake_badkind": "NOT_AN_OBJECTIVE = 3\n"})
    with pytest.raises(ValueError, match="badkind.*expected an odebench.spec.Objective"):
        TaskSpec(name="t", version="1", kind="badkind", system="toy", state_shape=(2,), dt=0.1, n_times=4)


def test_spec_round_trips_through_its_dict() -> None:
    for spec in ALL_SPECS.values():
        back = TaskSpec.from_dict(spec.to_dict())
        assert back.to_dict() == spec.to_dict()


def _forecast_data(task: TaskSpec, n_train: int = 6, n_val: int = 4, n_times: int = 30) -> TaskData:
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(u=rng.normal(size=(n, n_times, *task.state_shape)).astype(np.float32), t=np.arange(n_times) * task.dt)

    return TaskData(train=split(n_train), val=split(n_val), test=split(n_val))


def test_protocol_rollout_sets_the_training_and_validation_window() -> None:
    import dataclasses

    task = HEAT_FORECAST
    data = _forecast_data(task)
    base = protocol_for(task, "quick")
    assert base.rollout is None
    default = task.objective.training_set(task, data, base, torch.device("cpu"), 0)
    assert default.sample().shape[1] == task.train_window
    longer = task.objective.training_set(task, data, dataclasses.replace(base, rollout=27), torch.device("cpu"), 0)
    assert longer.sample().shape[1] == 27 and all(v.shape[1] == 27 for v in longer.validation)
    with pytest.raises(ValueError, match="fewer than the rollout of 31"):
        task.objective.training_set(task, data, dataclasses.replace(base, rollout=31), torch.device("cpu"), 0)


def test_input_noise_perturbs_only_the_start_of_each_training_rollout() -> None:
    import dataclasses

    task = HEAT_FORECAST
    data = _forecast_data(task, n_train=40)
    base = dataclasses.replace(protocol_for(task, "quick"), batch_size=256)
    clean = task.objective.training_set(task, data, base, torch.device("cpu"), 0).sample()
    noisy_set = task.objective.training_set(task, data, dataclasses.replace(base, input_noise=0.1), torch.device("cpu"), 0)
    noisy = noisy_set.sample()
    torch.testing.assert_close(noisy[:, 1:], clean[:, 1:])  # the targets stay the truth
    sigma = float(np.asarray(data.train.u, dtype=np.float64).std())  # heat pools sigma over the field
    assert abs(float((noisy[:, 0] - clean[:, 0]).std()) / sigma - 0.1) < 0.005
    clean_val = task.objective.training_set(task, data, base, torch.device("cpu"), 0).validation
    for a, b in zip(noisy_set.validation, clean_val):
        torch.testing.assert_close(a, b)  # validation is never perturbed
