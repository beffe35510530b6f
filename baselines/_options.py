"""The per-system defaults every baseline shares, and the choice of field.

The checks on hyperparameter values (``positive_int``, ``choice``, ...) are public, in
:mod:`odebench.toolkit`; this module holds what is particular to the baselines.

The per-system defaults keep the three architectures comparable: on a given task the
Neural ODE, the ResNet and the LM-ResNet start from the same state scaling and, with
their default widths and depths, have parameter counts within a factor 1.5 of each
other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..spec import TaskSpec
from ..toolkit import choice

__all__ = [
    "FIELDS",
    "SystemDefaults",
    "SYSTEM_DEFAULTS",
    "system_defaults",
    "resolve_field",
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
    ``channels`` is the latent width of a classifier (its encoder's output).
    """

    field: str
    state_scale: float
    width: int
    depth: int
    channels: int


#: Keyed by ``TaskSpec.system`` as the built-in tasks spell it.
SYSTEM_DEFAULTS: dict[str, SystemDefaults] = {
    "lorenz63": SystemDefaults(field="mlp", state_scale=10.0, width=64, depth=3, channels=32),
    "heat1d": SystemDefaults(field="conv", state_scale=1.0, width=16, depth=2, channels=16),
    "ks1d": SystemDefaults(field="conv", state_scale=1.0, width=16, depth=3, channels=16),
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
