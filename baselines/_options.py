"""The per-system defaults every baseline shares, and the choice of field.

The checks on hyperparameter values (``positive_int``, ``choice``, ...) are public, in
:mod:`odebench.toolkit`; this module holds what is particular to the baselines.

The per-system defaults keep the three architectures comparable: on a given task the
Neural ODE, the ResNet and the LM-ResNet start from the same state scaling and, with
their default widths and depths, have parameter counts within a factor 1.5 of each
other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..spec import HyperParameter, TaskSpec
from ..symmetries import symmetry_group
from ..toolkit import ACTIVATIONS, CountedField, SymmetricField, boolean, choice

__all__ = [
    "FIELDS",
    "SystemDefaults",
    "SYSTEM_DEFAULTS",
    "system_defaults",
    "resolve_field",
    "per_system",
    "STATE_SCALE",
    "COMMON_HYPERPARAMETERS",
    "resolve_symmetric",
    "model_symmetry_group",
    "symmetric_field",
    "resolve_conservative",
]

#: Network families: ``mlp`` on the flattened state, ``conv`` a periodic 1-D convolution,
#: ``auto`` whichever the system's defaults name.
FIELDS: tuple[str, ...] = ("auto", "mlp", "conv")


@dataclass(frozen=True)
class SystemDefaults:
    """Defaults for one physical system.

    ``state_scale`` divides every raw state before a network sees it (and multiplies
    predictions back), so networks work on O(1) numbers: Lorenz-63 states are O(10–40),
    heat and KS fields O(1). ``width``/``depth`` size the forecasting field;
    ``channels`` is the latent width of a classifier (its encoder's output);
    ``encoder_layers`` the strided convolutions of its window encoder (three on Lorenz-63,
    whose 101-sample windows hold a rotation period of 25–30 samples: validation accuracy
    0.932 with two, 0.974 with three, ResNet, mean of seeds 0–2; heat and KS windows of 11
    and 16 samples keep two). Lorenz-63's forecasting field has width 64: under protocol
    4 the ResNet's validation VPT (seeds 0–3, the validation trajectories continued over
    the test horizon) is 4.34 Lyapunov times with 64 units and 4.33 with 128, which costs
    2.8× the training time (protocol 3 used 128, chosen from seed 0 alone: 4.06 → 4.75).
    ``forecast_method`` is the Neural ODE forecaster's default solver: adaptive dopri5,
    whose steps span several sample intervals on Lorenz-63 and heat, but fixed-step RK4
    at the sample interval on Kuramoto–Sivashinsky, where dopri5's controller held the
    step near the stiff modes' limit (3,530 NFE per test pass against RK4's 1,600, about
    20 minutes of training a seed against 7) and RK4 at the task's step of 0.5 stays
    stable: on the validation split its rollouts stay on the attractor over the whole
    horizon, and its validation loss (0.0036 after 4,000 steps) is the lowest of any KS
    forecaster tried. ``symmetric``: average over the task's declared finite symmetries
    (:func:`odebench.symmetries.symmetry_group`), so a forecaster's field is equivariant
    (:class:`~odebench.toolkit.SymmetricField`) and a classifier invariant: on for the
    task kinds listed: forecasting everywhere, classification on Lorenz-63 and KS, not on
    heat, whose four images cost 4× the compute for no validation accuracy gained (the
    README's search table has the scores). ``conservative``: a forecasting ``conv`` field
    in flux form (:class:`~odebench.toolkit.ConservativeField`), which conserves the
    spatial mean as the system does: on for Kuramoto–Sivashinsky, where it lifted the
    validation VPT (README), off for heat, where it raised the validation nRMSE.
    """

    field: str
    state_scale: float
    width: int
    depth: int
    channels: int
    encoder_layers: int = 2
    forecast_method: str = "dopri5"
    symmetric: tuple[str, ...] = ("forecast", "classify")
    conservative: bool = False


#: Keyed by ``TaskSpec.system`` as the built-in tasks spell it.
SYSTEM_DEFAULTS: dict[str, SystemDefaults] = {
    "lorenz63": SystemDefaults(field="mlp", state_scale=10.0, width=64, depth=3, channels=32, encoder_layers=3),
    "heat1d": SystemDefaults(field="conv", state_scale=1.0, width=16, depth=2, channels=16, symmetric=("forecast",)),
    "ks1d": SystemDefaults(field="conv", state_scale=1.0, width=16, depth=3, channels=16, forecast_method="rk4", conservative=True),
}
_GENERIC = SystemDefaults(field="mlp", state_scale=1.0, width=64, depth=3, channels=32)
_ALIASES = {
    "lorenz": "lorenz63", "lorenz-63": "lorenz63",
    "heat": "heat1d", "diffusion": "heat1d",
    "ks": "ks1d", "kuramoto-sivashinsky": "ks1d", "kuramoto_sivashinsky": "ks1d",
}


def system_defaults(task: TaskSpec) -> SystemDefaults:
    """The defaults for ``task.system``; an unknown system gets an MLP on O(1) states."""
    key = task.system.lower()
    return SYSTEM_DEFAULTS.get(_ALIASES.get(key, key), _GENERIC)


def resolve_field(task: TaskSpec, field: Any) -> str:
    """``mlp`` or ``conv`` for ``task``; ``conv`` needs a 1-D (periodic) state."""
    field = choice("field", field, FIELDS)
    if field == "auto":
        field = system_defaults(task).field
    if field == "conv" and len(task.state_shape) != 1:
        raise ValueError(
            f"field='conv' needs a 1-D periodic state, but task {task.name!r} has state_shape {task.state_shape}; use field='mlp'"
        )
    return field


def per_system(value: Callable[[SystemDefaults], float | str]) -> str:
    """``value`` of each system's defaults, as a hyperparameter's ``default_note`` shows it."""

    def shown(v: float | str) -> str:
        return v if isinstance(v, str) else f"{v:g}"

    listed = ", ".join(f"{system} {shown(value(d))}" for system, d in SYSTEM_DEFAULTS.items())
    return f"{listed}, other systems {shown(value(_GENERIC))}"


def resolve_symmetric(task: TaskSpec, symmetric: Any) -> bool:
    """The ``symmetric`` hyperparameter: when ``None``, whether the system's defaults list the task's kind; else a bool."""
    return task.kind in system_defaults(task).symmetric if symmetric is None else boolean("symmetric", symmetric)


def model_symmetry_group(task: TaskSpec, symmetric: bool) -> tuple[Any, ...]:
    """The finite group a model averages over: the task's declared symmetries when
    ``symmetric``, else the identity alone."""
    return symmetry_group(task.symmetries if symmetric else ())


def symmetric_field(task: TaskSpec, field: CountedField, symmetric: bool) -> CountedField:
    """``field`` averaged over :func:`model_symmetry_group` (a :class:`SymmetricField`), or
    ``field`` itself when that group is the identity alone, so its weights keep their names."""
    group = model_symmetry_group(task, symmetric)
    return SymmetricField(field, group) if len(group) > 1 else field


def resolve_conservative(task: TaskSpec, conservative: Any, field: str) -> bool:
    """The ``conservative`` hyperparameter: when ``None``, the system's default for a
    forecasting ``conv`` field (never for a classifier); ``true`` needs both."""
    if conservative is None:
        return task.kind == "forecast" and field == "conv" and system_defaults(task).conservative
    conservative = boolean("conservative", conservative)
    if conservative and (task.kind != "forecast" or field != "conv"):
        raise ValueError(
            f"conservative=true puts a forecasting field on a periodic grid in flux form, but task {task.name!r} is "
            f"{task.kind} with field={field!r}; use it on a forecast task with field='conv', or leave it out"
        )
    return conservative


#: ``state_scale``, as every baseline but the label-only floors takes it.
STATE_SCALE = HyperParameter(
    "state_scale", None, "float > 0", help="raw states are divided by it before a network sees them (predictions multiplied back)",
    default_note="per system: " + per_system(lambda d: d.state_scale),
)

#: The ``--model-arg`` values every architecture takes, as ``odebench list models -v`` shows them.
COMMON_HYPERPARAMETERS: tuple[HyperParameter, ...] = (
    HyperParameter("activation", "silu", "one of: " + ", ".join(ACTIVATIONS), help="the fields' nonlinearity"),
    HyperParameter(
        "field", "auto", "one of: " + ", ".join(FIELDS),
        help="mlp on the flattened state, conv a periodic 1-D convolution (1-D states only), auto per system: "
        + ", ".join(f"{system} {d.field}" for system, d in SYSTEM_DEFAULTS.items()) + f", other systems {_GENERIC.field}",
    ),
    STATE_SCALE,
    HyperParameter(
        "symmetric", None, "true or false",
        help="average over the task's declared finite symmetries (mirror images, sign, Lorenz-63's z-rotation): "
        "a forecaster's field becomes equivariant, a classifier's logits invariant; periodic shifts are built into the convolutions",
        default_note="per system, the task kinds it is on for: " + per_system(lambda d: " and ".join(d.symmetric) or "none"),
    ),
    HyperParameter(
        "conservative", None, "true or false",
        help="forecasting with field='conv' only: the field in flux form, f_i = F_i - F_{i-1} with F the network, "
        "so the model conserves the spatial mean exactly, as heat and Kuramoto-Sivashinsky do",
        default_note="per system, on forecasting conv fields: " + per_system(lambda d: "on" if d.conservative else "off"),
    ),
)
