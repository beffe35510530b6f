"""Tests of the built-in models: contract, NFE accounting, architecture identities, errors."""

from __future__ import annotations

import inspect
import json
import math
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import solve_ivp

from odebench.baselines.floors import build_linear, build_majority, build_persistence
from odebench.baselines.lm_resnet import build_lm_resnet
from odebench.baselines.neural_ode import build_neural_ode
from odebench.baselines.resnet import build_resnet
from odebench.registry import PluginError, build_model, models
from odebench.spec import TaskSpec, UnsupportedTaskError
from odebench.tasks.specs import ALL_SPECS
from odebench.toolkit import ADAPTIVE_METHODS, FIXED_METHODS, MLPField, PeriodicConvField, SolverStepLimitError

torch.set_num_threads(1)


def _forecast(system: str, shape: tuple[int, ...], dt: float) -> TaskSpec:
    return TaskSpec(name=f"{system}-forecast", version="test", kind="forecast", system=system, state_shape=shape, dt=dt, n_times=41, train_window=9)


def _classify(system: str, shape: tuple[int, ...], dt: float, n_classes: int) -> TaskSpec:
    return TaskSpec(name=f"{system}-classify", version="test", kind="classify", system=system, state_shape=shape, dt=dt, n_times=24, n_classes=n_classes)


TASKS = {
    "lorenz-forecast": _forecast("lorenz63", (3,), 0.01),
    "heat-forecast": _forecast("heat1d", (64,), 0.05),
    "ks-forecast": _forecast("ks1d", (64,), 0.25),
    "lorenz-classify": _classify("lorenz63", (3,), 0.01, 3),
    "heat-classify": _classify("heat1d", (64,), 0.05, 4),
    "ks-classify": _classify("ks1d", (64,), 0.25, 2),
}
ARCHITECTURES = ("neural-ode", "resnet", "lm-resnet")
FACTORIES = {"neural-ode": build_neural_ode, "resnet": build_resnet, "lm-resnet": build_lm_resnet}
LORENZ = TASKS["lorenz-forecast"]
HEAT = TASKS["heat-forecast"]


def _state(task: TaskSpec, batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scale = 10.0 if task.system == "lorenz63" else 1.0
    return scale * torch.randn(batch, *task.state_shape, generator=gen)


def _window(task: TaskSpec, batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, task.n_times, *task.state_shape, generator=gen)


def _grid(task: TaskSpec, n: int) -> torch.Tensor:
    return torch.as_tensor(task.dt * np.arange(n), dtype=torch.float32)


def _run(model: torch.nn.Module, task: TaskSpec, batch: int = 3, n: int | None = None) -> torch.Tensor:
    if task.kind == "forecast":
        return model(_state(task, batch), _grid(task, n or task.train_window))
    return model(_window(task, batch))


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- the contract, through the real registry -------------------------------------------


def test_entry_points_are_installed() -> None:
    names = set(models.names())
    assert {"neural-ode", "resnet", "lm-resnet", "persistence", "majority"} <= names


@pytest.mark.parametrize("task_name", sorted(TASKS))
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_shapes_dtypes_and_gradients(name: str, task_name: str) -> None:
    task = TASKS[task_name]
    torch.manual_seed(0)
    model = build_model(name, task, {})
    assert isinstance(model.nfe, int) and model.nfe == 0
    out = _run(model, task)
    expected = (3, task.train_window, *task.state_shape) if task.kind == "forecast" else (3, task.n_classes)
    assert tuple(out.shape) == expected
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert model.nfe > 0
    if task.kind == "forecast":
        torch.testing.assert_close(out[:, 0], _state(task, 3))
        loss = out[:, 1:].pow(2).mean()
    else:
        loss = F.cross_entropy(out, torch.arange(3) % task.n_classes)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"no gradient reaches {pname}"


@pytest.mark.parametrize("task_name", sorted(TASKS))
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_hparams_are_json_and_rebuild_the_same_model(name: str, task_name: str) -> None:
    task = TASKS[task_name]
    torch.manual_seed(1)
    first = FACTORIES[name](task)
    json.dumps(first.hparams)
    torch.manual_seed(1)
    again = FACTORIES[name](task, **first.hparams)
    assert again.hparams == first.hparams
    for (k1, v1), (k2, v2) in zip(first.state_dict().items(), again.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    torch.testing.assert_close(_run(first, task), _run(again, task), rtol=0, atol=0)


@pytest.mark.parametrize("task_name", sorted(TASKS))
def test_default_parameter_counts_are_comparable(task_name: str) -> None:
    task = TASKS[task_name]
    counts = {name: _n_params(FACTORIES[name](task)) for name in ARCHITECTURES}
    assert max(counts.values()) <= 1.5 * min(counts.values()), counts


def test_model_follows_dtype_and_input_dtype_is_cast() -> None:
    torch.manual_seed(0)
    model = build_resnet(LORENZ).double()
    out = model(_state(LORENZ, 2).double(), _grid(LORENZ, 5).double())
    assert out.dtype == torch.float64
    model32 = build_resnet(LORENZ)
    assert model32(_state(LORENZ, 2).double(), _grid(LORENZ, 5)).dtype == torch.float32


def test_wrong_input_shape_names_the_expected_shape() -> None:
    model = build_resnet(HEAT)
    with pytest.raises(ValueError, match=r"u0 must have shape \(batch, 64\)"):
        model(torch.zeros(2, 32), _grid(HEAT, 4))
    clf = build_resnet(TASKS["heat-classify"])
    with pytest.raises(ValueError, match=r"x must have shape \(batch, n_times, 64\)"):
        clf(torch.zeros(2, 64))


def test_discrete_models_refuse_a_grid_with_another_spacing() -> None:
    for factory in (build_resnet, build_lm_resnet, build_linear):
        with pytest.raises(ValueError, match="spacing"):
            factory(LORENZ)(_state(LORENZ, 2), 0.5 * _grid(LORENZ, 6))


# --- Neural ODE: solution and NFE ---------------------------------------------------------


def test_neural_ode_solves_its_vector_field_in_task_time_units() -> None:
    """The adaptive solve matches an independent solve of dz/dt = field(z) / dt (SciPy DOP853)."""
    torch.manual_seed(3)
    model = build_neural_ode(LORENZ, rtol=1e-10, atol=1e-12).double()
    with torch.no_grad():
        model.field.net[-1].weight.mul_(20.0)  # a field with real dynamics over the span
    u0 = _state(LORENZ, 1).double()
    t = torch.as_tensor(LORENZ.dt * np.arange(30), dtype=torch.float64)
    with torch.no_grad():
        pred = model(u0, t)[0].numpy()
    scale = model.hparams["state_scale"]

    def rhs(_: float, z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.field(torch.as_tensor(z)[None])[0].numpy() / LORENZ.dt

    ref = solve_ivp(rhs, (0.0, float(t[-1])), u0[0].numpy() / scale, method="DOP853", t_eval=t.numpy(), rtol=1e-11, atol=1e-13)
    assert np.abs(pred[-1] - pred[0]).max() > 1.0  # the trajectory actually moves
    np.testing.assert_allclose(pred, ref.y.T * scale, rtol=0, atol=1e-7)


@pytest.mark.parametrize("task_name", ["lorenz-forecast", "ks-forecast"])
@pytest.mark.parametrize("steps_per_interval", [1, 2, 3])
def test_rk4_costs_exactly_four_evaluations_per_step(task_name: str, steps_per_interval: int) -> None:
    task = TASKS[task_name]
    model = build_model("neural-ode", task, {"method": "rk4", "step_size": task.dt / steps_per_interval})
    out = model(_state(task, 2), _grid(task, 11))
    assert out.shape[1] == 11
    assert model.nfe == 4 * 10 * steps_per_interval


def test_neural_ode_forecasters_default_to_their_systems_solver() -> None:
    ks, lorenz = TASKS["ks-forecast"], TASKS["lorenz-forecast"]
    model = build_model("neural-ode", ks, {})
    assert (model.solver.method, model.solver.step_size, model.solver.rtol) == ("rk4", ks.dt, None)
    model(_state(ks, 2), _grid(ks, 11))
    assert model.nfe == 4 * 10  # one RK4 step per sample interval
    assert build_model("neural-ode", lorenz, {}).solver.method == "dopri5"
    assert build_model("neural-ode", ks, {"method": "dopri5"}).solver.rtol == pytest.approx(1e-4)


def test_rk4_step_that_does_not_divide_the_span_rounds_up() -> None:
    model = build_neural_ode(LORENZ, method="rk4", step_size=0.03)
    model(_state(LORENZ, 2), _grid(LORENZ, 11))  # span 0.1: steps of 0.03 → 4 steps
    assert model.nfe == 16


def test_dopri5_nfe_depends_on_the_tolerance() -> None:
    nfe = {}
    for rtol in (1e-2, 1e-7):
        torch.manual_seed(0)
        model = build_neural_ode(LORENZ, rtol=rtol, atol=rtol / 10)
        model(_state(LORENZ, 2), _grid(LORENZ, 40))
        nfe[rtol] = model.nfe
    assert nfe[1e-7] > nfe[1e-2] > 0


@pytest.mark.parametrize("task_name", ["lorenz-forecast", "heat-classify"])
@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_adjoint_counts_backward_evaluations_and_matches_direct_gradients(method: str, task_name: str) -> None:
    task = TASKS[task_name]
    grads, nfe_backward = {}, {}
    for adjoint in (False, True):
        torch.manual_seed(0)
        hp = {"adjoint": adjoint, "method": method, **({"rtol": 1e-7, "atol": 1e-9} if method == "dopri5" else {})}
        model = build_model("neural-ode", task, hp).double()  # float64: the adjoint's own error, not rounding
        loss = _run(model, task, batch=2, n=8).pow(2).mean()
        before = model.nfe
        loss.backward()
        nfe_backward[adjoint] = model.nfe - before
        grads[adjoint] = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert nfe_backward[False] == 0
    assert nfe_backward[True] > 0
    torch.testing.assert_close(grads[True], grads[False], rtol=1e-4, atol=1e-8)


def test_euler_neural_ode_with_step_dt_is_the_resnet() -> None:
    """Forward Euler at the sample spacing takes exactly the ResNet's steps (same weights)."""
    for task in (LORENZ, TASKS["ks-forecast"]):
        torch.manual_seed(0)
        resnet = build_resnet(task)
        ode = build_neural_ode(task, method="euler")
        ode.field.load_state_dict(resnet.g.state_dict())
        u0, t = _state(task, 2), _grid(task, 12)
        torch.testing.assert_close(ode(u0, t), resnet(u0, t), rtol=1e-5, atol=1e-5)
        assert ode.nfe == resnet.nfe == 11


def test_classifier_hidden_ode_under_euler_counts_its_steps() -> None:
    model = build_neural_ode(TASKS["ks-classify"], method="euler")
    model(_window(TASKS["ks-classify"], 2))
    assert model.nfe == 4  # [0, 1] in the default steps of 0.25


def test_max_num_steps_stops_an_adaptive_solve_quickly() -> None:
    torch.manual_seed(0)
    model = build_neural_ode(LORENZ, max_num_steps=1)
    with pytest.raises(SolverStepLimitError, match="max_num_steps=1") as info:
        model(_state(LORENZ, 2), _grid(LORENZ, 40))
    assert isinstance(info.value, RuntimeError)
    assert model.nfe < 20


def test_max_num_steps_guards_the_adjoint_backward_solve() -> None:
    torch.manual_seed(0)
    model = build_neural_ode(LORENZ, adjoint=True, max_num_steps=20)
    out = model(_state(LORENZ, 2), _grid(LORENZ, 40))  # forward: a few steps
    with pytest.raises(SolverStepLimitError, match=r"adjoint \(backward\).*max_num_steps=20"):
        out.sum().backward()  # the adjoint restarts at each of the 39 output intervals


def test_max_num_steps_refuses_a_fixed_grid_before_solving() -> None:
    model = build_neural_ode(LORENZ, method="rk4", step_size=1e-7, max_num_steps=1000)
    with pytest.raises(SolverStepLimitError, match="raise max_num_steps or step_size"):
        model(_state(LORENZ, 2), _grid(LORENZ, 11))
    assert model.nfe == 0


def test_declared_methods_exist_in_torchdiffeq() -> None:
    from torchdiffeq._impl.odeint import SOLVERS

    assert set(ADAPTIVE_METHODS + FIXED_METHODS) <= set(SOLVERS)


# --- ResNet and LM-ResNet ---------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 3])
def test_resnet_nfe_is_the_number_of_residual_steps(depth: int) -> None:
    model = build_resnet(LORENZ, depth=depth)
    model(_state(LORENZ, 2), _grid(LORENZ, 13))
    assert model.nfe == 12 * depth
    clf = build_resnet(TASKS["lorenz-classify"], depth=depth)
    clf(_window(TASKS["lorenz-classify"], 2))
    assert clf.nfe == depth


def test_resnet_step_is_u_plus_g_of_u() -> None:
    torch.manual_seed(0)
    model = build_resnet(LORENZ)
    u0 = _state(LORENZ, 2)
    out = model(u0, _grid(LORENZ, 3))
    s = model.hparams["state_scale"]
    z1 = u0 / s + model.g(u0 / s)
    torch.testing.assert_close(out[:, 1], s * z1)
    torch.testing.assert_close(out[:, 2], s * (z1 + model.g(z1)))


def test_lm_resnet_first_step_is_residual_then_two_step() -> None:
    torch.manual_seed(0)
    model = build_lm_resnet(LORENZ)
    k = model.k
    assert -0.1 <= k.item() <= 0.0
    assert any(p is k for p in model.parameters())
    u0 = _state(LORENZ, 2)
    out = model(u0, _grid(LORENZ, 4))
    s = model.hparams["state_scale"]
    with torch.no_grad():
        z0 = u0 / s
        z1 = z0 + model.g(z0)
        z2 = (1 - k) * z1 + k * z0 + model.g(z1)
        z3 = (1 - k) * z2 + k * z1 + model.g(z2)
    torch.testing.assert_close(out[:, 1], s * z1)
    torch.testing.assert_close(out[:, 2], s * z2)
    torch.testing.assert_close(out[:, 3], s * z3)
    out.pow(2).mean().backward()
    assert k.grad is not None and float(k.grad) != 0.0


def test_lm_resnet_with_k_zero_is_the_resnet() -> None:
    torch.manual_seed(0)
    resnet = build_resnet(HEAT)
    lm = build_lm_resnet(HEAT)
    lm.g.load_state_dict(resnet.g.state_dict())
    with torch.no_grad():
        lm.k.zero_()
    u0, t = _state(HEAT, 2), _grid(HEAT, 10)
    torch.testing.assert_close(lm(u0, t), resnet(u0, t))


def test_lm_resnet_classifier_has_one_learnable_k_per_block_after_the_first() -> None:
    task = TASKS["heat-classify"]
    torch.manual_seed(5)
    model = build_lm_resnet(task, depth=5)
    ks = model.body.k
    assert ks.shape == (4,) and bool(((ks >= -0.1) & (ks <= 0.0)).all())
    torch.manual_seed(5)
    torch.testing.assert_close(build_lm_resnet(task, depth=5).body.k, ks, rtol=0, atol=0)
    F.cross_entropy(model(_window(task, 3)), torch.tensor([0, 1, 2])).backward()
    assert ks.grad is not None and bool((ks.grad != 0).all())
    assert model.nfe == 5


def test_lm_resnet_classifier_blocks_follow_the_two_step_rule() -> None:
    torch.manual_seed(0)
    model = build_lm_resnet(TASKS["lorenz-classify"], depth=3)
    z0 = torch.randn(2, 32)
    g, k = model.body.blocks, model.body.k
    with torch.no_grad():
        z1 = z0 + g[0](z0)
        z2 = (1 - k[0]) * z1 + k[0] * z0 + g[1](z1)
        z3 = (1 - k[1]) * z2 + k[1] * z1 + g[2](z2)
        torch.testing.assert_close(model.body(z0), z3)


@pytest.mark.parametrize("name", ["resnet", "lm-resnet"])
def test_periodic_fields_commute_with_shifts(name: str) -> None:
    torch.manual_seed(0)
    model = FACTORIES[name](TASKS["ks-forecast"])
    u0, t = _state(TASKS["ks-forecast"], 2), _grid(TASKS["ks-forecast"], 6)
    shifted = model(torch.roll(u0, 7, dims=-1), t)
    torch.testing.assert_close(shifted, torch.roll(model(u0, t), 7, dims=-1), rtol=1e-5, atol=1e-5)


# --- floors -----------------------------------------------------------------------------------


def test_persistence_repeats_u0_and_has_nothing_to_train() -> None:
    model = build_model("persistence", HEAT, {})
    u0 = _state(HEAT, 3)
    out = model(u0, _grid(HEAT, 7))
    assert tuple(out.shape) == (3, 7, 64)
    assert torch.equal(out, u0[:, None].expand(3, 7, 64))
    assert _n_params(model) == 0 and model.nfe == 0


def test_majority_learns_the_class_frequencies() -> None:
    task = TASKS["lorenz-classify"]
    model = build_model("majority", task, {})
    labels = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(model(_window(task, 10)), labels).backward()
        opt.step()
    probs = model(_window(task, 4, seed=9)).softmax(dim=1)
    torch.testing.assert_close(probs, torch.tensor([[0.6, 0.3, 0.1]]).expand(4, 3), rtol=0, atol=0.01)
    assert model.nfe == 0


def test_linear_floor_reproduces_exact_heat_diffusion() -> None:
    """With A set to the exact one-step heat propagator minus I, the rollout is the exact solution."""
    n, kappa, length = 64, 0.02, 1.0
    k = 2 * math.pi * np.fft.rfftfreq(n, d=length / n)
    decay = np.exp(-kappa * k**2 * HEAT.dt)
    propagator = np.fft.irfft(decay[:, None] * np.fft.rfft(np.eye(n), axis=0), n=n, axis=0)
    model = build_linear(HEAT).double()
    with torch.no_grad():
        model.step.weight.copy_(torch.as_tensor(propagator - np.eye(n)))
    x = np.arange(n) * length / n
    u0 = np.stack([np.sin(2 * np.pi * x) + 0.5 * np.cos(6 * np.pi * x), np.cos(4 * np.pi * x)])
    times = HEAT.dt * np.arange(30)
    exact = np.stack([
        np.exp(-kappa * (2 * np.pi) ** 2 * times)[:, None] * np.sin(2 * np.pi * x) + 0.5 * np.exp(-kappa * (6 * np.pi) ** 2 * times)[:, None] * np.cos(6 * np.pi * x),
        np.exp(-kappa * (4 * np.pi) ** 2 * times)[:, None] * np.cos(4 * np.pi * x),
    ])
    with torch.no_grad():
        pred = model(torch.as_tensor(u0), torch.as_tensor(times)).numpy()
    np.testing.assert_allclose(pred, exact, rtol=0, atol=1e-12)
    assert model.nfe == 29


def test_linear_floor_classifies_from_first_and_second_moments() -> None:
    task = TASKS["heat-classify"]
    model = build_linear(task)
    x = _window(task, 2)
    out = model(x)
    feats = torch.cat([x.mean(dim=1), (x * x).mean(dim=1)], dim=1)
    torch.testing.assert_close(out, model.linear(feats))
    assert model.nfe == 0


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [build_neural_ode, build_resnet, build_lm_resnet, build_linear])
def test_unknown_hyperparameter_is_a_type_error(factory) -> None:
    with pytest.raises(TypeError, match="step_szie|unexpected keyword"):
        factory(LORENZ, step_szie=0.1)


def test_registry_reports_a_rejected_argument_with_its_cause() -> None:
    with pytest.raises(PluginError, match="refused to build .* with --model-arg widht=8") as info:
        build_model("resnet", LORENZ, {"widht": 8})
    assert isinstance(info.value.__cause__, TypeError)


@pytest.mark.parametrize("task_name", sorted(ALL_SPECS))
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_symmetric_models_commute_with_the_tasks_symmetries(name: str, task_name: str) -> None:
    """With ``symmetric=True`` a forecast of a symmetry's image is the image of the
    forecast, a window's image gets the same logits; with ``symmetric=False`` neither
    holds. The default is on for every forecaster and for every classifier but heat's."""
    from odebench.symmetries import symmetry_group

    task = ALL_SPECS[task_name]
    group = symmetry_group(task.symmetries)
    assert len(group) >= 2
    assert FACTORIES[name](task).hparams["symmetric"] is (task.kind == "forecast" or task.system != "heat1d")
    for symmetric in (True, False):
        torch.manual_seed(0)
        model = FACTORIES[name](task, symmetric=symmetric)
        assert model.hparams["symmetric"] is symmetric
        for p in model.parameters():  # away from the near-zero start, so a broken symmetry shows
            p.data.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(p.numel()))
        gen = torch.Generator().manual_seed(1)
        if task.kind == "forecast":
            scale = 10.0 if task.system == "lorenz63" else 1.0
            u0 = scale * torch.randn(2, *task.state_shape, generator=gen)
            t = task.dt * torch.arange(4, dtype=torch.float32)
            out = model(u0, t)
            gaps = [(model(g(u0), t) - g(out)).abs().max() / out.abs().max() for g in group[1:]]
        else:
            x = torch.randn(2, task.n_times, *task.state_shape, generator=gen)
            out = model(x)
            gaps = [(model(g(x)) - out).abs().max() / out.abs().max() for g in group[1:]]
        if symmetric:
            assert max(gaps) < 1e-4, gaps
        else:
            assert max(gaps) > 1e-3, gaps


@pytest.mark.parametrize("task_name", ["heat-forecast", "ks-forecast"])
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_conservative_forecasters_keep_the_spatial_mean(name: str, task_name: str) -> None:
    """``conservative=True`` (the default on Kuramoto–Sivashinsky only) puts the field in flux
    form: a forecast keeps the mean of its start, as the PDE does, over a whole rollout;
    ``conservative=False`` does not, once the field is away from its near-zero start."""
    task = ALL_SPECS[task_name]
    assert FACTORIES[name](task).hparams["conservative"] is (task.system == "ks1d")
    gen = torch.Generator().manual_seed(1)
    u0 = torch.randn(3, *task.state_shape, generator=gen)
    t = task.dt * torch.arange(6, dtype=torch.float32)
    for conservative in (True, False):
        torch.manual_seed(0)
        model = FACTORIES[name](task, conservative=conservative)
        assert model.hparams["conservative"] is conservative
        for p in model.parameters():
            p.data.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(p.numel()))
        with torch.no_grad():
            out = model(u0, t)
        drift = (out.mean(dim=-1) - u0.mean(dim=-1)[:, None]).abs().max()
        spread = out.abs().max()
        if conservative:
            assert drift < 1e-5 * spread, (drift, spread)
        else:
            assert drift > 1e-3 * spread, (drift, spread)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_conservative_is_off_for_classifiers_and_mlp_fields_and_refused_there(name: str) -> None:
    for task_name in ("heat-classify", "ks-classify", "lorenz-forecast", "lorenz-classify"):
        assert FACTORIES[name](ALL_SPECS[task_name]).hparams["conservative"] is False
    for task_name, args in (("ks-classify", {}), ("lorenz-forecast", {}), ("ks-forecast", {"field": "mlp"})):
        with pytest.raises(ValueError, match="conservative=true .* use it on a forecast task with field='conv'"):
            FACTORIES[name](ALL_SPECS[task_name], conservative=True, **args)


@pytest.mark.parametrize(
    ("name", "hparams", "needle"),
    [
        ("neural-ode", {"method": "rk5"}, "method must be one of"),
        ("resnet", {"conservative": "yes"}, "conservative must be true or false"),
        ("neural-ode", {"rtol": -1.0}, "rtol"),
        ("neural-ode", {"atol": float("nan")}, "atol"),
        ("neural-ode", {"adjoint": "yes"}, "adjoint must be true or false"),
        ("neural-ode", {"step_size": 0.01}, "step_size applies to fixed-step methods"),
        ("neural-ode", {"method": "rk4", "rtol": 1e-3}, "rtol and atol apply to adaptive methods"),
        ("neural-ode", {"method": "rk4", "step_size": 0}, "step_size"),
        ("neural-ode", {"max_num_steps": 0}, "max_num_steps"),
        ("neural-ode", {"width": 2.5}, "width must be a positive integer"),
        ("resnet", {"depth": 0}, "depth must be a positive integer"),
        ("resnet", {"layers": True}, "layers must be a positive integer"),
        ("lm-resnet", {"activation": "sigmoid"}, "activation must be one of"),
        ("lm-resnet", {"field": "fourier"}, "field must be one of"),
        ("resnet", {"state_scale": -2}, "state_scale"),
        ("neural-ode", {"symmetric": "yes"}, "symmetric must be true or false"),
        ("lm-resnet", {"symmetric": 1}, "symmetric must be true or false"),
    ],
)
def test_bad_values_are_value_errors_naming_the_argument(name: str, hparams: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        FACTORIES[name](LORENZ, **hparams)


def test_system_names_choose_the_field_and_scale() -> None:
    lorenz = TaskSpec(name="l", version="test", kind="forecast", system="lorenz", state_shape=(3,), dt=0.01, n_times=5, train_window=3)
    assert build_resnet(lorenz).hparams["field"] == "mlp" and build_resnet(lorenz).hparams["state_scale"] == 10.0
    assert build_resnet(TASKS["ks-forecast"]).hparams["field"] == "conv"
    assert build_resnet(TASKS["heat-classify"]).hparams["field"] == "conv"


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_built_in_tasks_get_their_system_field(name: str) -> None:
    """The shipped specs, not look-alikes: heat and KS get a periodic convolution, Lorenz an MLP.

    An unknown system silently falls back to an MLP, so a spelling mismatch between a
    spec's ``system`` and the defaults table would swap the architecture unnoticed.
    """
    expected = {"heat1d": "conv", "ks1d": "conv", "lorenz63": "mlp"}
    for task in ALL_SPECS.values():
        model = FACTORIES[name](task)
        assert model.hparams["field"] == expected[task.system], task.name
        fields = [m for m in model.modules() if isinstance(m, (PeriodicConvField, MLPField))]
        assert fields and all(isinstance(m, PeriodicConvField if expected[task.system] == "conv" else MLPField) for m in fields), task.name


@pytest.mark.parametrize("kind", ["forecast", "classify"])
def test_built_in_tasks_have_comparable_parameter_counts(kind: str) -> None:
    for task in ALL_SPECS.values():
        if task.kind == kind:
            counts = {name: _n_params(FACTORIES[name](task)) for name in ARCHITECTURES}
            assert max(counts.values()) <= 1.5 * min(counts.values()), (task.name, counts)


def test_ints_are_accepted_where_floats_are_expected() -> None:
    model = build_neural_ode(LORENZ, rtol=1, atol=1, state_scale=10)
    assert model.hparams["rtol"] == 1.0 and isinstance(model.hparams["state_scale"], float)


def test_conv_field_needs_a_one_dimensional_state() -> None:
    grid = TaskSpec(name="grid-forecast", version="test", kind="forecast", system="grid", state_shape=(4, 4), dt=0.1, n_times=5, train_window=3)
    with pytest.raises(ValueError, match="field='conv' needs a 1-D periodic state"):
        build_resnet(grid, field="conv")
    out = build_resnet(grid)(torch.zeros(2, 4, 4), _grid(grid, 3))
    assert tuple(out.shape) == (2, 3, 4, 4)


@pytest.mark.parametrize("name", ["neural-ode", "resnet", "lm-resnet", "persistence", "majority", "linear"])
def test_every_factory_declares_each_argument_it_takes(name: str) -> None:
    factory = models.load(name)
    params = list(inspect.signature(factory).parameters.values())[1:]
    declared = {hp.name: hp for hp in factory.hyperparameters}
    assert sorted(declared) == sorted(p.name for p in params)
    for p in params:
        hp = declared[p.name]
        assert hp.allowed and (hp.default == p.default if p.default is not None else hp.default is None and hp.default_note), p.name
    assert set(factory.task_kinds) <= {"forecast", "classify"}


@pytest.mark.parametrize("factory", [build_neural_ode, build_resnet, build_lm_resnet, build_persistence, build_majority, build_linear])
def test_factories_refuse_a_task_kind_they_do_not_build(factory) -> None:
    segment = cast(TaskSpec, SimpleNamespace(name="toy-segment", kind="segment", system="lorenz63", state_shape=(3,)))
    with pytest.raises(UnsupportedTaskError, match="tasks only; task 'toy-segment' is a segment task"):
        factory(segment)


def test_floors_refuse_the_other_task_kind() -> None:
    with pytest.raises(UnsupportedTaskError, match="persistence builds for forecast tasks only"):
        build_persistence(TASKS["ks-classify"])
    with pytest.raises(UnsupportedTaskError, match="majority builds for classify tasks only"):
        build_majority(HEAT)
    with pytest.raises(PluginError, match="does not support task"):
        build_model("majority", HEAT, {})


# --- determinism and devices ------------------------------------------------------------------


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_seed_reproduces_the_model(name: str) -> None:
    task = TASKS["ks-classify"]
    outs = []
    for _ in range(2):
        torch.manual_seed(11)
        outs.append(_run(FACTORIES[name](task), task))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("task_name", sorted(TASKS))
@pytest.mark.parametrize("name", ARCHITECTURES + ("linear",))
def test_models_run_on_cuda(name: str, task_name: str) -> None:
    task = TASKS[task_name]
    factory = {**FACTORIES, "linear": build_linear}[name]
    torch.manual_seed(0)
    model = factory(task)
    cpu_out = _run(model, task)
    model = model.cuda()
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # compare at float32 precision
    try:
        if task.kind == "forecast":
            out = model(_state(task, 3).cuda(), _grid(task, task.train_window).cuda())
        else:
            out = model(_window(task, 3).cuda())
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), cpu_out, rtol=1e-3, atol=1e-4)
    out.float().pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.device.type == "cuda" for p in model.parameters())


# --- the training path of every baseline on the real tasks, quick profile ----------------

_QUICK_CACHE: dict[str, object] = {}


def _real_task_data(task_name: str):  # type: ignore[no-untyped-def]
    """The shipped splits of a built-in task, loaded once per test process."""
    if task_name not in _QUICK_CACHE:
        from odebench import registry
        from odebench.jobs import load_task_data

        task = registry.load_task(task_name)
        _QUICK_CACHE[task_name] = (task, load_task_data(task)[0])
    return _QUICK_CACHE[task_name]


@pytest.mark.parametrize("task_name", sorted(ALL_SPECS))
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_quick_profile_training_path_learns(name: str, task_name: str) -> None:
    """Every baseline through the harness's quick profile on the real task, under the
    task's own training settings (augmentation, input noise, rollout): the run finishes
    with finite scores, and the model learns. Forecasters must lower the validation loss
    within the 40 steps; a classifier's cross-entropy sits on its ln(classes) plateau that
    long, so it must instead fit one of the objective's own (augmented) training batches,
    its loss falling by 20 % in 100 steps (a broken gradient leaves it where it was). Where
    the task's protocol has the L-BFGS phase (lorenz-forecast), it must run all its
    iterations and lower the loss of its fixed training windows. A guard against a training path that silently
    stops learning (a detached graph, labels scrambled by augmentation, a wrong loss)."""
    from odebench.protocol import protocol_for
    from odebench.training import train_and_evaluate

    task, data = _real_task_data(task_name)
    protocol = protocol_for(task, "quick")
    torch.manual_seed(0)
    model = build_model(name, task, {})
    batches = task.objective.training_set(task, data, protocol, torch.device("cpu"), 0)
    if task.kind == "classify":
        batch = batches.sample()
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(100):
            loss = batches.loss(model, batch)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), protocol.grad_clip)
            optimiser.step()
            losses.append(float(loss.detach()))
        assert min(losses[-10:]) < 0.8 * losses[0], losses[::10] + losses[-3:]
        torch.manual_seed(0)
        model = build_model(name, task, {})
    with torch.no_grad():
        before = sum(float(batches.loss(model, b)) for b in batches.validation) / len(batches.validation)
    out = train_and_evaluate(task, model, data, protocol, torch.device("cpu"), 0)
    assert out.train["steps"] == protocol.max_steps
    assert math.isfinite(out.metrics[task.main_metric]) and math.isfinite(out.train["best_val_loss"])
    if task.kind == "forecast":
        assert out.train["best_val_loss"] < 0.97 * before, (before, out.train["val_history"])
    if protocol.lbfgs_iters:  # the L-BFGS phase ran its line search on this model without failing
        facts = out.train["lbfgs"]
        assert facts["reason"] is None or "failed" not in facts["reason"], facts
        assert 1 <= facts["iterations"] <= protocol.lbfgs_iters and facts["evaluations"] >= facts["iterations"], facts
        assert facts["train_loss_after"] < facts["train_loss_before"] and math.isfinite(facts["val_loss_after"]), facts
