"""What a submitted model needs from odebench, public: the baselines are built from it too.

Four pieces, each there because the contract of :mod:`odebench.spec` asks for it:

* **Counted fields.** :class:`CountedField` counts its evaluations in the integer
  ``nfe`` the harness reports as NFE. Because the count sits in the field's own
  ``forward``, it also sees the evaluations an adjoint solve makes during
  ``loss.backward()``. :class:`CountedModel` gives a model the total of its fields as
  its ``nfe``. :class:`MLPField` (a flat state) and :class:`PeriodicConvField` (a field
  on a periodic 1-D grid) are the two fields the baselines use.
* **A guarded ODE solve.** :func:`odeint_guarded` (or a :class:`Solver` holding the
  settings) calls torchdiffeq with a step budget that holds for the whole solve, forward
  and adjoint, fixed-step and adaptive, and raises :class:`SolverStepLimitError` when it
  runs out. torchdiffeq's own ``max_num_steps`` is an ``assert`` (gone under
  ``python -O``), counts per output interval and raises ``AssertionError``; a field that
  blows up during training would then step until the job's timeout.
* **Contract checks** on a model's inputs (:func:`check_forecast_input`,
  :func:`check_window`) and outputs (:func:`check_model_output`), and :func:`for_kind`
  to pick a builder per task kind, refusing other kinds with
  :class:`~odebench.spec.UnsupportedTaskError`.
* **Hyperparameter checks** (:func:`positive_int`, :func:`positive_float`,
  :func:`boolean`, :func:`choice`, ...): each returns the value in its declared type or
  raises ``ValueError`` naming the argument and what it accepts.

This module depends only on torch, torchdiffeq, numpy and :mod:`odebench.spec`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from .spec import HyperParameter, TaskSpec, UnsupportedTaskError, check_model_output

__all__ = [
    # counted fields
    "OUT_INIT", "KERNEL_SIZE", "ACTIVATIONS", "CountedField", "CountedModel", "MLPField", "PeriodicConvField", "SymmetricField", "ConservativeField", "FIELD_TYPES", "make_field",
    # the guarded solve
    "ADAPTIVE_METHODS", "FIXED_METHODS", "METHODS", "DEFAULT_MAX_NUM_STEPS",
    "SolverError", "SolverStepLimitError", "Solver", "odeint_guarded", "solver_hyperparameters",
    # contract checks
    "check_forecast_input", "check_window", "check_model_output", "for_kind",
    # hyperparameter checks
    "positive_int", "nonnegative_int", "positive_float", "boolean", "choice",
]

T = TypeVar("T")

# ----------------------------------------------------------------------------- counted fields

#: The last layer of a built-in field starts at this fraction of the usual initialisation
#: (bias zero), so an untrained field is close to zero: an untrained model is close to
#: persistence and a long rollout stays bounded before training starts.
OUT_INIT = 0.1
#: Kernel width of the periodic convolutions.
KERNEL_SIZE = 5
#: Pointwise nonlinearities by name; smooth ones suit an ODE solver best.
ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "tanh": nn.Tanh, "gelu": nn.GELU, "softplus": nn.Softplus, "relu": nn.ReLU}


class CountedField(nn.Module):
    """A learned map ``z -> f(z)`` whose every evaluation adds one to the integer ``nfe``.

    Give it the network (``CountedField(net)``), or subclass it and override
    :meth:`evaluate`. Never override ``forward``: that is where the counting happens.
    The count is a plain ``self.__dict__`` update because ``nn.Module.__setattr__`` costs
    about 1.4 µs a call, a few per cent of a small field's evaluation.
    """

    nfe: int

    def __init__(self, net: nn.Module | None = None) -> None:
        super().__init__()
        if net is not None:
            self.net = net
        elif type(self).evaluate is CountedField.evaluate:
            raise TypeError("CountedField needs a network: pass CountedField(net) or override evaluate(z) in a subclass")
        self.nfe = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.__dict__["nfe"] += 1
        return self.evaluate(z)

    def evaluate(self, z: torch.Tensor) -> torch.Tensor:
        """One evaluation, not counted; ``self.net(z)`` unless a subclass says otherwise."""
        return self.net(z)

    def _evaluate_net(self, z: torch.Tensor) -> torch.Tensor:
        """``self.net(z)`` without counting it again when ``net`` is itself a counted field:
        a wrapper (symmetric average, flux form) is one evaluation, counted once by itself."""
        return self.net.evaluate(z) if isinstance(self.net, CountedField) else self.net(z)


class CountedModel(nn.Module):
    """A model whose ``nfe`` is the total of the :class:`CountedField` modules inside it.

    Subclass it instead of ``nn.Module`` and the contract's ``nfe`` needs no code: every
    field the model holds counts, however deep, and a field counts its own evaluations
    once, whatever it holds inside. Reading ``nfe`` walks the module tree (a few µs).
    ``hparams``, optional in the contract, is the dict of resolved hyperparameters.
    """

    hparams: dict[str, Any]

    @property
    def nfe(self) -> int:
        total = 0
        stack: list[nn.Module | None] = [self]
        while stack:
            module = stack.pop()
            if isinstance(module, CountedField):
                total += module.nfe
            elif module is not None:
                stack.extend(module._modules.values())
        return total


def _small_output(hidden: list[nn.Module], out: nn.Linear | nn.Conv1d) -> nn.Sequential:
    """``hidden`` then ``out`` in sequence, ``out`` scaled by :data:`OUT_INIT` with a zero bias."""
    with torch.no_grad():
        out.weight.mul_(OUT_INIT)
        if out.bias is not None:
            out.bias.zero_()
    return nn.Sequential(*hidden, out)


class MLPField(CountedField):
    """``(batch, dim) -> (batch, dim)``: ``depth`` hidden layers of ``width`` units."""

    def __init__(self, dim: int, width: int, depth: int, activation: str = "silu") -> None:
        act = ACTIVATIONS[choice("activation", activation, ACTIVATIONS)]
        sizes = [dim] + [width] * depth
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), act()]
        super().__init__(_small_output(layers, nn.Linear(width, dim)))


class PeriodicConvField(CountedField):
    """``(batch, channels, n) -> (batch, channels, n)``: circular 1-D convolutions.

    ``depth`` hidden layers of ``width`` channels, kernel :data:`KERNEL_SIZE`. Circular
    padding makes the field commute with periodic shifts of the grid, as the heat and
    Kuramoto–Sivashinsky equations on a periodic domain do.
    """

    def __init__(self, channels: int, width: int, depth: int, activation: str = "silu") -> None:
        act = ACTIVATIONS[choice("activation", activation, ACTIVATIONS)]
        sizes = [channels] + [width] * depth

        def conv(n_in: int, n_out: int) -> nn.Conv1d:
            return nn.Conv1d(n_in, n_out, KERNEL_SIZE, padding=KERNEL_SIZE // 2, padding_mode="circular")

        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [conv(n_in, n_out), act()]
        super().__init__(_small_output(layers, conv(width, channels)))


class SymmetricField(CountedField):
    """``field`` made equivariant under a finite symmetry group: ``f_G(z) = mean_g g(f(g z))``.

    ``group``: self-inverse maps acting on the field's last axis, identity first, such as
    :func:`odebench.symmetries.symmetry_group` gives for a task's declared symmetries.
    Then ``f_G(h z) = h f_G(z)`` for every ``h`` in the group: a Neural ODE or ResNet
    built on it maps the image of a state under a symmetry of the system to the image of
    its forecast, as the true dynamics does (Lorenz-63's ``(x, y, z) -> (-x, -y, z)``, the
    odd reflection of Kuramoto–Sivashinsky; on heat, negation makes the field odd, so
    it has no even, quadratic part). The ``|G|`` images go through ``field`` as one
    batch: one evaluation, counted once in ``nfe``, at about ``|G|`` times the compute.
    """

    def __init__(self, field: CountedField, group: tuple[Callable[[torch.Tensor], torch.Tensor], ...]) -> None:
        if not group:
            raise ValueError("SymmetricField needs a group with at least the identity")
        super().__init__(field)
        self.group = tuple(group)

    def evaluate(self, z: torch.Tensor) -> torch.Tensor:
        if len(self.group) == 1:
            return self._evaluate_net(z)
        images = self._evaluate_net(torch.cat([g(z) for g in self.group]))
        return torch.stack([g(y) for g, y in zip(self.group, images.chunk(len(self.group)))]).mean(dim=0)


class ConservativeField(CountedField):
    """A periodic ``field`` in flux form: ``f(z)_i = F(z)_i - F(z)_{i-1}`` with ``F = field``.

    The output sums to zero over the (last, periodic) grid axis, so a Neural ODE or ResNet
    built on it conserves the spatial mean of its state exactly, as a conservation law
    ``u_t + ∂x F(u) = 0`` does (Kuramoto–Sivashinsky: ``F = u²/2 + u_x + u_xxx``; heat:
    ``F = -κ u_x``): the network learns the flux between neighbouring cells, as a
    finite-volume scheme does. No parameters of its own; one evaluation of ``field``,
    counted once in ``nfe``.
    """

    def __init__(self, field: nn.Module) -> None:
        super().__init__(field)

    def evaluate(self, z: torch.Tensor) -> torch.Tensor:
        flux = self._evaluate_net(z)
        return flux - torch.roll(flux, 1, dims=-1)


#: The built-in fields by the name a ``field`` hyperparameter gives them.
FIELD_TYPES: dict[str, type[MLPField] | type[PeriodicConvField]] = {"mlp": MLPField, "conv": PeriodicConvField}


def make_field(field: str, channels: int, width: int, depth: int, activation: str = "silu") -> CountedField:
    """An :class:`MLPField` (``field='mlp'``, ``channels`` = state dimension) or a :class:`PeriodicConvField`."""
    return FIELD_TYPES[choice("field", field, FIELD_TYPES)](channels, width, depth, activation)


# ----------------------------------------------------------------------------- the guarded solve

#: torchdiffeq methods with error control: they take ``rtol`` and ``atol``.
ADAPTIVE_METHODS: tuple[str, ...] = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
#: torchdiffeq methods on a fixed grid: they take ``step_size``.
FIXED_METHODS: tuple[str, ...] = ("rk4", "euler", "midpoint", "heun2", "heun3", "explicit_adams", "implicit_adams")
METHODS: tuple[str, ...] = ADAPTIVE_METHODS + FIXED_METHODS
#: Solver steps one solve may take unless told otherwise.
DEFAULT_MAX_NUM_STEPS = 100_000


class SolverError(RuntimeError):
    """An ODE solve failed (step size underflow, non-finite state, too many steps)."""


class SolverStepLimitError(SolverError):
    """An ODE solve needed more steps than ``max_num_steps`` allows."""


class _StepGuard:
    """``func`` for torchdiffeq, counting solver steps through its step callbacks.

    A plain callable, not an ``nn.Module``, so it adds no module call overhead. One
    instance serves one forward solve and the adjoint solve that may follow it; the two
    directions have separate budgets.
    """

    def __init__(self, func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], solver: Solver) -> None:
        self.func = func
        self.solver = solver
        self.steps = 0
        self.backward_steps = 0

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.func(t, y)

    def _exceeded(self, direction: str, t0: torch.Tensor, dt: torch.Tensor) -> SolverStepLimitError:
        s = self.solver
        return SolverStepLimitError(
            f"{s.prefix}the {direction} {s.method} solve exceeded max_num_steps={s.max_num_steps} "
            f"(at t={float(t0.detach()):.6g}, step {float(dt.detach()):.3g}); the learned vector field has become stiff or has blown up. "
            "Raise max_num_steps, loosen rtol/atol, or use a fixed-step method such as method=rk4"
        )

    def callback_step(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
        self.steps += 1
        if self.steps > self.solver.max_num_steps:
            raise self._exceeded("forward", t0, dt)

    def callback_step_adjoint(self, t0: torch.Tensor, y0: torch.Tensor, dt: torch.Tensor) -> None:
        self.backward_steps += 1
        if self.backward_steps > self.solver.max_num_steps:
            raise self._exceeded("adjoint (backward)", t0, dt)


def _grid_constructor(solver: Solver) -> Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]:
    """A torchdiffeq grid constructor: steps of ``solver.step_size`` from ``t[0]`` to ``t[-1]``,
    or the output times themselves when ``step_size`` is ``None``.

    Unlike torchdiffeq's own ``step_size`` option it tolerates rounding: a span that is
    ``n`` steps up to float32 error gets ``n`` steps, not ``n`` plus a sliver. The last
    step is shortened to end exactly at ``t[-1]``. Too many steps fail before solving.
    """
    step_size, limit = solver.step_size, solver.max_num_steps

    def construct(func: Any, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if step_size is None:
            if t.numel() - 1 > limit:
                raise SolverStepLimitError(
                    f"{solver.prefix}{solver.method} with one step per output interval needs {t.numel() - 1} steps, "
                    f"more than max_num_steps={limit}; raise max_num_steps"
                )
            return t
        span = float(t[-1] - t[0])
        n = max(1, math.ceil(span / step_size * (1.0 - 1e-6)))
        if n > limit:
            raise SolverStepLimitError(
                f"{solver.prefix}{solver.method} with step_size={step_size:g} needs {n} steps over a span of {span:g}, "
                f"more than max_num_steps={limit}; raise max_num_steps or step_size"
            )
        steps = torch.arange(n + 1, dtype=torch.float64, device=t.device) * step_size
        grid = (t[0].to(torch.float64) + steps).to(t.dtype)
        grid[-1] = t[-1]
        return grid

    return construct


@dataclass(frozen=True)
class Solver:
    """How an ODE is solved: the method, its tolerances or step, the adjoint, the step budget.

    Checked when built, so a factory fails on a bad ``--model-arg`` before any training:
    ``rtol``/``atol`` apply to :data:`ADAPTIVE_METHODS` only (``None``: torchdiffeq's
    defaults), ``step_size`` to :data:`FIXED_METHODS` only (``None``: one step per output
    interval). ``max_num_steps`` bounds each solve, forward and adjoint separately.
    ``label`` starts every error message (the model's name, say).
    """

    method: str = "dopri5"
    rtol: float | None = None
    atol: float | None = None
    step_size: float | None = None
    adjoint: bool = False
    max_num_steps: int = DEFAULT_MAX_NUM_STEPS
    label: str = ""

    def __post_init__(self) -> None:
        choice("method", self.method, METHODS)
        if self.adaptive and self.step_size is not None:
            raise ValueError(
                f"step_size applies to fixed-step methods ({', '.join(FIXED_METHODS)}), not to method={self.method}; "
                "drop it or pick a fixed-step method"
            )
        if not self.adaptive and (self.rtol is not None or self.atol is not None):
            raise ValueError(
                f"rtol and atol apply to adaptive methods ({', '.join(ADAPTIVE_METHODS)}), not to method={self.method}; "
                "drop them or pick an adaptive method"
            )
        for name in ("rtol", "atol", "step_size"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, positive_float(name, getattr(self, name)))
        boolean("adjoint", self.adjoint)
        object.__setattr__(self, "max_num_steps", positive_int("max_num_steps", self.max_num_steps))

    @property
    def adaptive(self) -> bool:
        """Whether the method controls its own step (and so takes ``rtol``/``atol``)."""
        return self.method in ADAPTIVE_METHODS

    @property
    def prefix(self) -> str:
        return f"{self.label}: " if self.label else ""

    def with_defaults(self, *, rtol: float | None = None, atol: float | None = None, step_size: float | None = None) -> Solver:
        """A copy with the given defaults filled in where the method takes them and none was set."""
        if self.adaptive:
            return dataclasses.replace(self, rtol=rtol if self.rtol is None else self.rtol, atol=atol if self.atol is None else self.atol)
        return dataclasses.replace(self, step_size=step_size if self.step_size is None else self.step_size)

    def hparams(self) -> dict[str, Any]:
        """The settings as a model's ``hparams`` report them: the method, then only what it uses."""
        tuning = {"rtol": self.rtol, "atol": self.atol} if self.adaptive else {"step_size": self.step_size}
        return {"method": self.method, **tuning, "adjoint": self.adjoint, "max_num_steps": self.max_num_steps}

    def odeint(
        self,
        func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        y0: torch.Tensor,
        t: torch.Tensor,
        adjoint_params: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """``y`` at the times ``t``, shape ``(len(t), *y0.shape)``, for ``dy/dt = func(t, y)``.

        With the adjoint, ``adjoint_params`` are the tensors to differentiate; by default
        the trainable parameters of ``func`` (which must then be an ``nn.Module``).
        """
        if t.numel() == 1:
            return y0.unsqueeze(0).clone()
        guard = _StepGuard(func, self)
        kwargs: dict[str, Any] = {"method": self.method}
        if self.adaptive:
            kwargs.update({k: v for k, v in (("rtol", self.rtol), ("atol", self.atol)) if v is not None})
        else:
            kwargs["options"] = {"grid_constructor": _grid_constructor(self)}
        try:
            if self.adjoint:
                if adjoint_params is None:
                    if not isinstance(func, nn.Module):
                        raise ValueError("adjoint=True needs adjoint_params when func is not an nn.Module")
                    adjoint_params = tuple(p for p in func.parameters() if p.requires_grad)
                return odeint_adjoint(guard, y0, t, adjoint_params=adjoint_params, **kwargs)
            return odeint(guard, y0, t, **kwargs)
        except AssertionError as exc:  # torchdiffeq reports step underflow and NaN states by assert
            raise SolverError(f"{self.prefix}the {self.method} solver failed: {exc}") from exc

    def solve(self, field: nn.Module, y0: torch.Tensor, t: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        """``y`` at the times ``t`` for the autonomous ``dy/dt = field(y) * rate``.

        ``rate`` rescales time: ``1 / task.dt`` makes ``field`` the change of ``y`` over one
        sample interval, the quantity a ResNet's residual function produces.
        """

        def rhs(_: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return field(y) * rate

        return self.odeint(rhs, y0, t, tuple(p for p in field.parameters() if p.requires_grad))


def odeint_guarded(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t: torch.Tensor,
    *,
    method: str = "dopri5",
    rtol: float | None = None,
    atol: float | None = None,
    step_size: float | None = None,
    max_num_steps: int = DEFAULT_MAX_NUM_STEPS,
    adjoint: bool = False,
    adjoint_params: tuple[torch.Tensor, ...] | None = None,
) -> torch.Tensor:
    """torchdiffeq's ``odeint`` (or ``odeint_adjoint``) with a step budget that raises.

    ``y`` at the times ``t``, shape ``(len(t), *y0.shape)``. More than ``max_num_steps``
    solver steps in the forward solve, or in the adjoint's backward solve, raises
    :class:`SolverStepLimitError`; other solver failures raise :class:`SolverError`.
    Settings as for :class:`Solver`.
    """
    solver = Solver(method, rtol, atol, step_size, adjoint, max_num_steps)
    return solver.odeint(func, y0, t, adjoint_params)


def solver_hyperparameters(*, rtol: float, atol: float, step_size_note: str, method: str | None = "dopri5", method_note: str | None = None) -> tuple[HyperParameter, ...]:
    """Declarations of the :class:`Solver` settings, for a factory whose ``--model-arg`` values
    include them: ``factory.hyperparameters = (*solver_hyperparameters(...), ...)``.

    The defaults are the factory's: ``method`` (or ``None`` with ``method_note`` saying
    what the factory picks), ``rtol``/``atol`` for adaptive methods, and
    ``step_size_note`` saying what a fixed-step method steps by when no ``step_size`` is given.
    """
    return (
        HyperParameter(
            "method", method, "one of: " + ", ".join(METHODS), help="a torchdiffeq method: adaptive ones take rtol/atol, fixed-step ones step_size",
            **({"default_note": method_note} if method_note else {}),
        ),
        HyperParameter("rtol", None, "float > 0, adaptive methods only", help="relative tolerance", default_note=f"{rtol:g} with an adaptive method"),
        HyperParameter("atol", None, "float > 0, adaptive methods only", help="absolute tolerance", default_note=f"{atol:g} with an adaptive method"),
        HyperParameter("step_size", None, "float > 0, fixed-step methods only", help="the solver step", default_note=step_size_note),
        HyperParameter("adjoint", False, "true or false", help="backpropagate with the adjoint method; its evaluations count as backward NFE"),
        HyperParameter(
            "max_num_steps", DEFAULT_MAX_NUM_STEPS, "int >= 1",
            help="the most solver steps one solve may take, forward and adjoint each; more raise SolverStepLimitError",
        ),
    )


# ----------------------------------------------------------------------------- contract checks


def _shape_of(x: Any) -> Any:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def check_forecast_input(task: TaskSpec, u0: torch.Tensor, t: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``u0`` is ``(batch, *task.state_shape)`` and ``t`` a 1-D time grid."""
    state = tuple(task.state_shape)
    if not isinstance(u0, torch.Tensor) or u0.dim() != 1 + len(state) or tuple(u0.shape[1:]) != state:
        raise ValueError(f"u0 must have shape (batch, {', '.join(map(str, state))}) for task {task.name!r}, got {_shape_of(u0)}")
    if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.numel() < 1:
        raise ValueError(f"t must be a non-empty 1-D tensor of times, got {getattr(t, 'shape', t)!r}")


def check_window(task: TaskSpec, x: torch.Tensor, n_times: int | None = None) -> None:
    """Raise ``ValueError`` unless ``x`` is a batch of windows ``(batch, n_times, *task.state_shape)``.

    Any window length passes unless ``n_times`` is given (a model that needs the task's
    own length passes ``task.n_times``).
    """
    state = tuple(task.state_shape)
    ok = isinstance(x, torch.Tensor) and x.dim() == 2 + len(state) and tuple(x.shape[2:]) == state
    if not ok or (n_times is not None and x.shape[1] != n_times):
        dims = ", ".join(map(str, ("n_times" if n_times is None else n_times, *state)))
        raise ValueError(f"x must have shape (batch, {dims}) for task {task.name!r}, got {_shape_of(x)}")


def for_kind(task: TaskSpec, table: Mapping[str, T], model: str, hint: str = "") -> T:
    """``table[task.kind]``: one entry per task kind a model supports.

    Any other kind raises :class:`~odebench.spec.UnsupportedTaskError` naming ``model``,
    the kinds it supports and ``hint`` (say, which model to use instead). A factory can
    declare ``task_kinds = tuple(table)``.
    """
    try:
        return table[task.kind]
    except KeyError:
        extra = f" ({hint})" if hint else ""
        raise UnsupportedTaskError(
            f"{model} builds for {' and '.join(table)} tasks only; task {task.name!r} is a {task.kind} task{extra}"
        ) from None


# ----------------------------------------------------------------------------- hyperparameter checks


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1 (bools are refused: ``True`` is not a width)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    """``value`` as an int >= 0 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any) -> float:
    """``value`` (an int or a float) as a finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def boolean(name: str, value: Any) -> bool:
    """``value`` as a bool; only real booleans are accepted (the CLI parses ``true``/``false``)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def choice(name: str, value: Any, allowed: Collection[str]) -> str:
    """``value`` if it is one of ``allowed`` (a tuple, or a dict's keys)."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value
