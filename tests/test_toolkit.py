"""odebench.toolkit: counted fields, the guarded ODE solve, the contract and hyperparameter checks."""

from __future__ import annotations

import ast
import dataclasses
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import torch
from torch import nn

import odebench.spec
from odebench.spec import TaskSpec, UnsupportedTaskError
from odebench.toolkit import (
    ADAPTIVE_METHODS,
    FIXED_METHODS,
    ConservativeField,
    CountedField,
    CountedModel,
    MLPField,
    PeriodicConvField,
    Solver,
    SolverError,
    SolverStepLimitError,
    SymmetricField,
    boolean,
    check_forecast_input,
    check_model_output,
    check_window,
    choice,
    for_kind,
    make_field,
    nonnegative_int,
    odeint_guarded,
    positive_float,
    positive_int,
    solver_hyperparameters,
)

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]

FORECAST = TaskSpec(name="toy-forecast", version="test", kind="forecast", system="toy", state_shape=(3,), dt=0.1, n_times=11, train_window=5)
CLASSIFY = TaskSpec(name="toy-classify", version="test", kind="classify", system="toy", state_shape=(64,), dt=0.1, n_times=11, n_classes=2)


def _grid(n: int, dt: float = 0.1) -> torch.Tensor:
    return torch.as_tensor(dt * torch.arange(n, dtype=torch.float64), dtype=torch.float32)


def _stiff_field() -> MLPField:
    """A field whose dynamics are fast enough that an adaptive solver needs many steps."""
    torch.manual_seed(0)
    field = MLPField(2, 16, 1)
    with torch.no_grad():
        field.net[-1].weight.mul_(500.0)
    return field


# ----------------------------------------------------------------------------- counted fields


def test_symmetric_field_is_equivariant_counts_once_and_keeps_the_field_without_a_group() -> None:
    from odebench.symmetries import symmetry_group

    torch.manual_seed(0)
    cases = [(MLPField(3, 16, 2), ("z-rotation",), (5, 3)), (PeriodicConvField(1, 8, 2), ("translation", "reflection", "negation"), (5, 1, 64))]
    for inner, names, shape in cases:
        with torch.no_grad():
            inner.net[-1].weight.mul_(10.0)  # a field far from zero, so a broken symmetry shows
        group = symmetry_group(names)
        field = SymmetricField(inner, group)
        z = torch.randn(*shape)
        for g in group:
            torch.testing.assert_close(field(g(z)), g(field(z)), rtol=1e-5, atol=1e-6)
        plain = inner(z)
        assert any(not torch.allclose(inner(g(z)), g(plain), atol=1e-3) for g in group[1:])  # the raw field is not equivariant
        assert field.nfe == 2 * len(group) and inner.nfe == 2  # the wrapper's calls, and the two direct ones above
        torch.testing.assert_close(SymmetricField(inner, group[:1])(z), inner(z), rtol=0, atol=0)
        model = CountedModel()
        model.f = field
        assert model.nfe == field.nfe  # counted once, not again through the field inside
    odd = SymmetricField(PeriodicConvField(1, 8, 2), symmetry_group(("negation",)))
    z = torch.randn(3, 1, 64)
    torch.testing.assert_close(odd(-z), -odd(z), rtol=0, atol=0)
    with pytest.raises(ValueError, match="at least the identity"):
        SymmetricField(MLPField(3, 4, 1), ())


def test_conservative_field_is_the_flux_difference_conserves_the_mean_and_counts_once() -> None:
    """Flux form: ``f_i = F_i - F_{i-1}`` with ``F`` the wrapped field, so the output sums to
    zero over the grid (a forward Euler step keeps the mean to rounding) for any input,
    while the field itself does not; wrapped in the symmetric average it stays both."""
    from odebench.symmetries import symmetry_group

    torch.manual_seed(0)
    inner = PeriodicConvField(1, 8, 2)
    with torch.no_grad():
        inner.net[-1].weight.mul_(10.0)
        inner.net[-1].bias.fill_(0.3)  # a field with a mean of its own, which the flux form must remove
    field = ConservativeField(inner)
    z = torch.randn(6, 1, 64)
    flux = inner(z)
    torch.testing.assert_close(field(z), flux - torch.roll(flux, 1, dims=-1), rtol=0, atol=0)
    assert flux.sum(dim=-1).abs().max() > 1.0
    assert field(z).sum(dim=-1).abs().max() < 1e-5
    assert field.nfe == 2 and inner.nfe == 1  # the wrapper's two calls, and the direct one
    group = symmetry_group(("translation", "odd-reflection"))
    symmetric = SymmetricField(field, group)
    out = symmetric(z)
    assert out.sum(dim=-1).abs().max() < 1e-5
    for g in group:
        torch.testing.assert_close(symmetric(g(z)), g(out), rtol=1e-5, atol=1e-6)
    model = CountedModel()
    model.f = symmetric
    assert model.nfe == symmetric.nfe == 1 + len(group)  # counted once, not again through the fields inside


def test_a_field_counts_each_evaluation() -> None:
    field = MLPField(3, 8, 2)
    assert field.nfe == 0
    for calls in (1, 2, 3):
        field(torch.randn(4, 3))
        assert field.nfe == calls


def test_counted_field_wraps_a_network_or_a_subclass_evaluate() -> None:
    wrapped = CountedField(nn.Linear(2, 2))
    wrapped(torch.zeros(1, 2))
    assert wrapped.nfe == 1

    class Rotation(CountedField):
        def evaluate(self, z: torch.Tensor) -> torch.Tensor:
            return torch.stack([-z[:, 1], z[:, 0]], dim=1)

    rot = Rotation()
    torch.testing.assert_close(rot(torch.tensor([[1.0, 0.0]])), torch.tensor([[0.0, 1.0]]))
    assert rot.nfe == 1
    with pytest.raises(TypeError, match="needs a network"):
        CountedField()


def test_built_in_fields_start_small_and_keep_their_shapes() -> None:
    torch.manual_seed(0)
    mlp, conv = make_field("mlp", 3, 16, 2, "tanh"), make_field("conv", 2, 8, 2)
    assert isinstance(mlp, MLPField) and isinstance(conv, PeriodicConvField)
    assert mlp(torch.randn(5, 3)).shape == (5, 3) and conv(torch.randn(5, 2, 32)).shape == (5, 2, 32)
    assert not mlp.net[-1].bias.any() and not conv.net[-1].bias.any()
    z = torch.randn(2, 2, 32)
    torch.testing.assert_close(conv(z.roll(5, dims=-1)), conv(z).roll(5, dims=-1))  # periodic: commutes with shifts
    with pytest.raises(ValueError, match="field must be one of mlp, conv"):
        make_field("fourier", 3, 16, 2)
    with pytest.raises(ValueError, match="activation must be one of"):
        MLPField(3, 16, 2, "sigmoid")


def test_counted_model_totals_every_field_inside_it_once() -> None:
    class Two(CountedModel):
        def __init__(self) -> None:
            super().__init__()
            self.a = MLPField(2, 4, 1)
            self.deep = nn.ModuleList([nn.Sequential(MLPField(2, 4, 1))])
            self.outer = CountedField(MLPField(2, 4, 1))  # counts itself, not the field it holds

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return self.deep[0](self.a(z)) + self.outer(z)

    model = Two()
    model(torch.zeros(1, 2))
    model(torch.zeros(1, 2))
    assert model.nfe == 6 and isinstance(model.nfe, int)


def test_the_counter_sees_the_adjoint_evaluations_during_backward() -> None:
    torch.manual_seed(0)
    field = MLPField(3, 8, 1)
    y0 = torch.randn(2, 3)
    for solver in (Solver("rk4", step_size=0.25, adjoint=True), Solver("dopri5", rtol=1e-6, atol=1e-8, adjoint=True)):
        before = field.nfe
        y = solver.solve(field, y0, torch.tensor([0.0, 1.0]))
        forward = field.nfe - before
        assert forward == 16 if solver.method == "rk4" else forward > 0
        y[-1].pow(2).sum().backward()
        assert field.nfe - before - forward > 0
        assert all(p.grad is not None for p in field.parameters())


# ----------------------------------------------------------------------------- the guarded solve


def test_odeint_guarded_solves_a_time_dependent_and_an_autonomous_equation() -> None:
    t = torch.linspace(0.0, 2.0, 9, dtype=torch.float64)
    y = odeint_guarded(lambda s, y: torch.cos(s).expand_as(y), torch.zeros(1, dtype=torch.float64), t, method="rk4", step_size=0.01)
    torch.testing.assert_close(y[:, 0], torch.sin(t), rtol=0, atol=1e-9)
    y = odeint_guarded(lambda s, y: -y, torch.ones(1, dtype=torch.float64), t, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(y[:, 0], torch.exp(-t), rtol=0, atol=1e-8)


def test_rate_rescales_time_and_one_time_point_returns_the_initial_state() -> None:
    field = CountedField(nn.Identity())  # dy/dt = rate * y
    y = Solver("dopri5", rtol=1e-8, atol=1e-10).solve(field, torch.ones(1, dtype=torch.float64), torch.tensor([0.0, 0.5], dtype=torch.float64), rate=2.0)
    torch.testing.assert_close(y[-1], torch.tensor([math.e], dtype=torch.float64), rtol=1e-6, atol=0)
    nfe = field.nfe
    y0 = torch.randn(3, 2)
    torch.testing.assert_close(Solver("rk4").solve(field, y0, torch.zeros(1)), y0.unsqueeze(0))
    assert field.nfe == nfe


def test_a_fixed_step_that_divides_the_span_up_to_rounding_takes_that_many_steps() -> None:
    field = MLPField(3, 4, 1)
    Solver("rk4", step_size=0.01).solve(field, torch.zeros(1, 3), _grid(11, 0.01))  # 0.1 in float32 is not 10 × 0.01
    assert field.nfe == 40
    Solver("euler").solve(field, torch.zeros(1, 3), _grid(6))  # no step_size: one step per output interval
    assert field.nfe == 45


def _raises_step_limit(run: Any, *needles: str) -> SolverStepLimitError:
    with pytest.raises(SolverStepLimitError) as info:
        run()
    error = info.value
    assert isinstance(error, SolverError) and isinstance(error, RuntimeError) and not isinstance(error, AssertionError)
    for needle in needles:
        assert needle in str(error), (needle, str(error))
    return error


def test_step_limit_refuses_a_fixed_grid_before_any_evaluation() -> None:
    field = MLPField(3, 4, 1)
    solver = Solver("rk4", step_size=1e-4, max_num_steps=100, label="mine")
    _raises_step_limit(lambda: solver.solve(field, torch.zeros(1, 3), _grid(11)), "mine: rk4", "max_num_steps=100", "raise max_num_steps or step_size")
    _raises_step_limit(lambda: Solver("euler", max_num_steps=4).solve(field, torch.zeros(1, 3), _grid(6)), "max_num_steps=4", "raise max_num_steps")
    assert field.nfe == 0


def test_step_limit_stops_an_adaptive_forward_solve() -> None:
    field = _stiff_field()
    run = lambda: odeint_guarded(lambda t, y: field(y), torch.ones(1, 2), _grid(21), rtol=1e-8, atol=1e-10, max_num_steps=5)  # noqa: E731
    _raises_step_limit(run, "forward dopri5 solve exceeded max_num_steps=5", "Raise max_num_steps, loosen rtol/atol, or use a fixed-step method")
    assert field.nfe < 60


def test_step_limit_guards_the_adjoint_backward_solve_adaptive_and_fixed_step() -> None:
    torch.manual_seed(0)
    field = MLPField(2, 8, 1)
    y0 = torch.randn(1, 2)
    # Adaptive: the backward solve restarts at each of the 20 output intervals.
    y = Solver("dopri5", rtol=1e-4, atol=1e-5, adjoint=True, max_num_steps=15).solve(field, y0, _grid(21))
    _raises_step_limit(lambda: y.sum().backward(), "adjoint (backward) dopri5 solve exceeded max_num_steps=15")
    # Fixed step 0.3 over [0, 1]: 4 steps forward, but one per interval of 0.1 backward, 10 in all.
    y = Solver("rk4", step_size=0.3, adjoint=True, max_num_steps=5).solve(field, y0, _grid(11))
    _raises_step_limit(lambda: y.sum().backward(), "adjoint (backward) rk4 solve exceeded max_num_steps=5", "Raise max_num_steps")


def test_the_guard_holds_under_python_dash_o() -> None:
    # torchdiffeq's max_num_steps is an assert, gone under -O; the toolkit's guard is not.
    code = (
        "import torch\n"
        "from odebench.toolkit import MLPField, Solver, SolverStepLimitError\n"
        "assert False, 'assertions must be off'\n"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode != 0
    code = code.replace("assert False, 'assertions must be off'\n", (
        "torch.manual_seed(0)\n"
        "field = MLPField(2, 16, 1)\n"
        "field.net[-1].weight.data.mul_(500.0)\n"
        "try:\n"
        "    Solver('bosh3', rtol=1e-9, atol=1e-11, max_num_steps=3).solve(field, torch.ones(1, 2), torch.linspace(0, 1, 11))\n"
        "except SolverStepLimitError as exc:\n"
        "    print('stopped:', exc)\n"
    ))
    proc = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("stopped: the forward bosh3 solve exceeded max_num_steps=3"), proc.stdout


def test_adjoint_of_a_plain_function_needs_its_parameters() -> None:
    w = torch.ones(1, requires_grad=True)
    with pytest.raises(ValueError, match="adjoint_params"):
        odeint_guarded(lambda t, y: w * y, torch.ones(1), _grid(3), method="euler", adjoint=True)
    y = odeint_guarded(lambda t, y: w * y, torch.ones(1), _grid(3), method="euler", adjoint=True, adjoint_params=(w,))
    y[-1].sum().backward()
    assert w.grad is not None and float(w.grad) > 0


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"method": "rk5"}, "method must be one of"),
        ({"method": "dopri5", "step_size": 0.1}, "step_size applies to fixed-step methods"),
        ({"method": "rk4", "rtol": 1e-3}, "rtol and atol apply to adaptive methods"),
        ({"method": "dopri5", "atol": float("nan")}, "atol must be a positive finite number"),
        ({"method": "euler", "step_size": 0}, "step_size must be a positive finite number"),
        ({"adjoint": "yes"}, "adjoint must be true or false"),
        ({"max_num_steps": 0}, "max_num_steps must be a positive integer"),
    ],
)
def test_solver_settings_are_checked_when_built(settings: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Solver(**settings)


def test_solver_defaults_fill_only_what_the_method_takes() -> None:
    adaptive = Solver("dopri5", rtol=1e-6).with_defaults(rtol=1e-3, atol=1e-4, step_size=0.1)
    assert (adaptive.rtol, adaptive.atol, adaptive.step_size) == (1e-6, 1e-4, None)
    fixed = Solver("rk4", max_num_steps=7).with_defaults(rtol=1e-3, atol=1e-4, step_size=0.1)
    assert fixed.hparams() == {"method": "rk4", "step_size": 0.1, "adjoint": False, "max_num_steps": 7}
    assert Solver("bosh3", rtol=1, atol=1).hparams() == {"method": "bosh3", "rtol": 1.0, "atol": 1.0, "adjoint": False, "max_num_steps": 100_000}
    assert set(ADAPTIVE_METHODS).isdisjoint(FIXED_METHODS)


def test_solver_hyperparameter_declarations_name_the_solver_settings() -> None:
    declared = solver_hyperparameters(rtol=1e-3, atol=1e-4, step_size_note="one step per interval")
    settings = {f.name: f.default for f in dataclasses.fields(Solver) if f.name != "label"}
    assert [hp.name for hp in declared] == list(settings)
    for hp in declared:
        assert hp.default == settings[hp.name] or hp.default_note, hp.name
    assert declared[1].default_note == "0.001 with an adaptive method"


# ----------------------------------------------------------------------------- contract checks


def test_check_forecast_input_names_the_expected_shape() -> None:
    check_forecast_input(FORECAST, torch.zeros(2, 3), _grid(4))
    with pytest.raises(ValueError, match=r"u0 must have shape \(batch, 3\) for task 'toy-forecast', got \(2, 4\)"):
        check_forecast_input(FORECAST, torch.zeros(2, 4), _grid(4))
    with pytest.raises(ValueError, match=r"u0 must have shape \(batch, 3\).*got \(3,\)"):
        check_forecast_input(FORECAST, torch.zeros(3), _grid(4))
    with pytest.raises(ValueError, match="got list"):
        check_forecast_input(FORECAST, cast(torch.Tensor, [0.0, 0.0, 0.0]), _grid(4))
    with pytest.raises(ValueError, match="t must be a non-empty 1-D tensor"):
        check_forecast_input(FORECAST, torch.zeros(2, 3), _grid(4)[None])
    with pytest.raises(ValueError, match="t must be a non-empty 1-D tensor"):
        check_forecast_input(FORECAST, torch.zeros(2, 3), torch.zeros(0))


def test_check_window_names_the_expected_shape() -> None:
    check_window(CLASSIFY, torch.zeros(2, 7, 64))
    check_window(CLASSIFY, torch.zeros(2, 11, 64), n_times=11)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, n_times, 64\) for task 'toy-classify', got \(2, 64\)"):
        check_window(CLASSIFY, torch.zeros(2, 64))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, n_times, 64\).*got \(2, 7, 32\)"):
        check_window(CLASSIFY, torch.zeros(2, 7, 32))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 11, 64\) for task 'toy-classify', got \(2, 12, 64\)"):
        check_window(CLASSIFY, torch.zeros(2, 12, 64), n_times=11)


def test_check_model_output_is_the_spec_check() -> None:
    assert check_model_output is odebench.spec.check_model_output


def test_for_kind_picks_the_entry_or_refuses_the_kind() -> None:
    table = {"forecast": "F", "classify": "C"}
    assert for_kind(FORECAST, table, "mine") == "F" and for_kind(CLASSIFY, table, "mine") == "C"
    segment = cast(TaskSpec, SimpleNamespace(name="toy-segment", kind="segment"))
    with pytest.raises(UnsupportedTaskError, match=r"mine builds for forecast and classify tasks only; task 'toy-segment' is a segment task \(try other\)"):
        for_kind(segment, table, "mine", hint="try other")


# ----------------------------------------------------------------------------- hyperparameter checks


def test_hyperparameter_checks_return_the_declared_types() -> None:
    assert positive_int("width", 3) == 3 and nonnegative_int("augment_dim", 0) == 0
    value = positive_float("rtol", 1)
    assert value == 1.0 and isinstance(value, float)
    assert boolean("adjoint", False) is False
    assert choice("method", "rk4", ("rk4", "euler")) == "rk4" and choice("act", "silu", {"silu": nn.SiLU}) == "silu"


@pytest.mark.parametrize(
    ("check", "value", "needle"),
    [
        (positive_int, 0, "width must be a positive integer, got 0"),
        (positive_int, True, "width must be a positive integer, got True"),
        (positive_int, 2.0, "width must be a positive integer, got 2.0"),
        (nonnegative_int, -1, "width must be an integer >= 0, got -1"),
        (positive_float, float("inf"), "width must be a positive finite number, got inf"),
        (positive_float, -1, "width must be a positive finite number, got -1.0"),
        (positive_float, "1", "width must be a positive number, got '1'"),
        (boolean, "true", "width must be true or false, got 'true'"),
    ],
)
def test_hyperparameter_checks_name_the_argument(check: Any, value: Any, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        check("width", value)
    with pytest.raises(ValueError, match="field must be one of mlp, conv; got 'Conv'"):
        choice("field", "Conv", ("mlp", "conv"))


def test_the_toolkit_imports_only_torch_torchdiffeq_numpy_and_the_spec() -> None:
    tree = ast.parse((ROOT / "bench" / "toolkit.py").read_text(encoding="utf-8"))
    third_party: set[str] = set()
    local: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            third_party |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:
            local.add(node.module or "")
        elif isinstance(node, ast.ImportFrom):
            third_party.add((node.module or "").split(".")[0])
    stdlib = {"__future__", "ast", "collections", "dataclasses", "math", "typing"}
    assert third_party - stdlib <= {"torch", "torchdiffeq", "numpy"}, third_party
    assert local == {"spec"}, local
