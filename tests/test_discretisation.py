"""The optional ``with_discretisation`` of the model contract, on the baselines and the exact reference.

Each variant keeps the weights and changes only the step (or the solver): checked
against the scheme written out by hand.
"""

from __future__ import annotations

import pytest
import torch

from odebench import registry
from odebench.spec import ChangesDiscretisation


@pytest.fixture(scope="module")
def lorenz():
    return registry.load_task("lorenz-forecast")


def _model(name: str, task, **args):
    torch.manual_seed(0)
    return registry.build_model(name, task, args).eval()


@pytest.mark.parametrize("name", ["resnet", "lm-resnet", "neural-ode", "exact"])
def test_forecasters_declare_the_contract(lorenz, name: str) -> None:
    assert isinstance(_model(name, lorenz), ChangesDiscretisation)


def test_resnet_half_and_double_steps_are_euler_with_the_same_field(lorenz) -> None:
    model = _model("resnet", lorenz)
    u0 = torch.randn(3, 3)
    t = torch.arange(5) * lorenz.dt
    with torch.no_grad():
        half = model.with_discretisation(0.5)(u0, t)
        z = u0 / model.state_scale
        for _ in range(4 * 2):
            z = z + 0.5 * model.g(z)
        assert torch.allclose(half[:, -1], z * model.state_scale, atol=1e-6)
        double = model.with_discretisation(2.0)(u0, t[::2])
        z = u0 / model.state_scale
        for _ in range(2):
            z = z + 2.0 * model.g(z)
        assert torch.allclose(double[:, -1], z * model.state_scale, atol=1e-6)
    with pytest.raises(ValueError, match="whole number"):
        model.with_discretisation(2.0)(u0, t)  # half a step per interval


def test_variants_share_the_weights_and_leave_the_original_alone(lorenz) -> None:
    model = _model("lm-resnet", lorenz)
    variant = model.with_discretisation(0.5)
    assert variant.g is model.g and variant.k is model.k
    assert model.step_factor == 1.0 and variant.step_factor == 0.5
    first = next(model.g.parameters())
    with torch.no_grad():
        first.add_(1.0)
    assert torch.equal(next(variant.g.parameters()), first)


def test_lm_resnet_keeps_its_two_step_rule_under_a_new_step(lorenz) -> None:
    model = _model("lm-resnet", lorenz)
    u0 = torch.randn(2, 3)
    t = torch.arange(3) * lorenz.dt
    with torch.no_grad():
        out = model.with_discretisation(0.5)(u0, t)
        z_prev, z = None, u0 / model.state_scale
        for _ in range(4):
            gz = 0.5 * model.g(z)
            z_prev, z = z, (z + gz if z_prev is None else (1 - model.k) * z + model.k * z_prev + gz)
    assert torch.allclose(out[:, -1], z * model.state_scale, atol=1e-6)


def test_neural_ode_variants_change_only_the_solver(lorenz) -> None:
    model = _model("neural-ode", lorenz)
    assert model.solver.method == "dopri5"
    tighter = model.with_discretisation(0.5)
    assert tighter.solver.rtol == pytest.approx(model.solver.rtol * 0.5**5) and tighter.field is model.field
    rk4 = model.with_discretisation(method="rk4")
    assert rk4.solver.method == "rk4" and rk4.solver.step_size == lorenz.dt and rk4.solver.rtol is None
    assert model.with_discretisation(2.0, method="rk4").solver.step_size == pytest.approx(2 * lorenz.dt)
    euler = _model("neural-ode", lorenz, method="euler")
    assert euler.with_discretisation(method="dopri5").solver.rtol == pytest.approx(1e-4)
    # euler at the task's step is the ResNet with the same weights; halving the step halves both
    resnet = _model("resnet", lorenz)
    resnet.g.load_state_dict(euler.field.state_dict())
    u0 = torch.randn(2, 3)
    t = torch.arange(4) * lorenz.dt
    with torch.no_grad():
        assert torch.allclose(euler.with_discretisation(0.5)(u0, t), resnet.with_discretisation(0.5)(u0, t), atol=1e-5)


def test_refused_changes_raise_value_error(lorenz) -> None:
    with pytest.raises(ValueError, match="own integrator"):
        _model("resnet", lorenz).with_discretisation(method="rk4")
    with pytest.raises(ValueError, match="step_factor"):
        _model("resnet", lorenz).with_discretisation(0.0)
    heat = registry.load_task("heat-forecast")
    with pytest.raises(ValueError, match="exact at any time"):
        _model("exact", heat).with_discretisation(0.5)


def test_exact_reference_steps_by_the_changed_step(lorenz) -> None:
    exact = _model("exact", lorenz)
    assert exact.with_discretisation(0.5).hparams["max_step"] == pytest.approx(0.005)
    u0 = torch.tensor([[1.0, 1.0, 20.0]], dtype=torch.float64)
    t = torch.arange(101, dtype=torch.float64) * lorenz.dt
    a, b = exact(u0, t), exact.with_discretisation(0.5)(u0, t)
    assert a.dtype == torch.float64 and (a - b).abs().max() < 1e-8  # the Taylor series is summed to rounding at either step
