"""Symmetries a task declares, as random transforms of training batches.

A symmetry maps solutions of the task's system to solutions, and labels to the same label,
so a training batch transformed by it is as valid as the original. The harness applies the
declared ones to every training batch of every model when the protocol's ``augment`` is
on (the same for every model, like the optimiser); validation and test data are never
transformed.

The transforms act on batches of trajectories or windows ``(batch, time, *state)``, each
item drawn independently:

* ``translation``: a periodic 1-D field shifted by a random whole number of grid points.
* ``reflection``: a periodic 1-D field mirrored, ``u(x) -> u(-x)`` (heat).
* ``odd-reflection``: ``u(x) -> -u(-x)``, the reflection of Kuramoto–Sivashinsky, whose
  nonlinear term ``u u_x`` is odd.
* ``negation``: ``u -> -u``, for linear systems (heat).
* ``z-rotation``: Lorenz-63's ``(x, y, z) -> (-x, -y, z)``.

On the grid ``x_j = j L / N`` the mirror image of ``u_j`` is ``u_{(N - j) mod N}``.

:func:`symmetry_group` gives the same symmetries as a finite group of deterministic
maps, for models that are invariant or equivariant by construction (averaging over the
group, :class:`odebench.toolkit.SymmetricField`). The four involutions commute, and
each is a choice of (mirror, sign, z-rotation): reflection ``(1, 0, 0)``, odd-reflection
``(1, 1, 0)``, negation ``(0, 1, 0)``, z-rotation ``(0, 0, 1)``; the group they generate
is their span over GF(2), so every element is its own inverse. Translations are left
out: a group of ``N`` shifts would cost ``N`` evaluations, and circular convolutions
commute with them already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the task specs (and so data building) need no torch
    import torch

__all__ = ["SYMMETRIES", "FINITE_SYMMETRIES", "check_symmetries", "augment", "symmetry_group"]


def _flip_x(u: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.roll(torch.flip(u, dims=(-1,)), 1, dims=-1)


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


def _coin(u: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    import torch

    return torch.rand(u.shape[0], generator=generator).to(u.device) < 0.5


def _translation(u: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    import torch

    n = u.shape[-1]
    shift = torch.randint(0, n, (u.shape[0],), generator=generator).to(u.device)
    index = (torch.arange(n, device=u.device)[None, :] - shift[:, None]) % n
    return torch.gather(u, -1, index.view(u.shape[0], *([1] * (u.dim() - 2)), n).expand_as(u))


def _reflection(u: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return _where(_coin(u, generator), _flip_x(u), u)


def _odd_reflection(u: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return _where(_coin(u, generator), -_flip_x(u), u)


def _negation(u: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return _where(_coin(u, generator), -u, u)


def _rotate_z(u: torch.Tensor) -> torch.Tensor:
    """Lorenz-63's ``(x, y, z) -> (-x, -y, z)`` on the last axis."""
    import torch

    if u.shape[-1] != 3:
        raise ValueError(f"the z-rotation acts on a last axis of 3 (x, y, z), got shape {tuple(u.shape)}")
    return u * torch.tensor([-1.0, -1.0, 1.0], dtype=u.dtype, device=u.device)


def _z_rotation(u: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return _where(_coin(u, generator), _rotate_z(u), u)


#: name -> (transform, what the state must look like, a check of that)
SYMMETRIES: dict[str, tuple[Callable[[torch.Tensor, torch.Generator], torch.Tensor], str, Callable[[tuple[int, ...]], bool]]] = {
    "translation": (_translation, "a 1-D periodic field", lambda s: len(s) == 1),
    "reflection": (_reflection, "a 1-D periodic field", lambda s: len(s) == 1),
    "odd-reflection": (_odd_reflection, "a 1-D periodic field", lambda s: len(s) == 1),
    "negation": (_negation, "any state", lambda s: True),
    "z-rotation": (_z_rotation, "a Lorenz-63 state (3,)", lambda s: tuple(s) == (3,)),
}


def check_symmetries(names: Sequence[str], state_shape: tuple[int, ...], task: str) -> None:
    """``ValueError`` naming the task and the fix for an unknown symmetry or a state it cannot act on."""
    for name in names:
        if name not in SYMMETRIES:
            raise ValueError(f"task {task!r}: unknown symmetry {name!r}; known: {', '.join(SYMMETRIES)}")
        _, needs, fits = SYMMETRIES[name]
        if not fits(tuple(state_shape)):
            raise ValueError(f"task {task!r}: symmetry {name!r} needs {needs}, but the state has shape {tuple(state_shape)}")


def augment(u: torch.Tensor, names: Sequence[str], generator: torch.Generator) -> torch.Tensor:
    """``u`` ``(batch, time, *state)`` with each declared symmetry applied at random, item by item."""
    for name in names:
        u = SYMMETRIES[name][0](u, generator)
    return u


#: The involutions :func:`symmetry_group` builds from, as (mirror, sign, z-rotation) parities.
FINITE_SYMMETRIES: dict[str, tuple[int, int, int]] = {
    "reflection": (1, 0, 0),
    "odd-reflection": (1, 1, 0),
    "negation": (0, 1, 0),
    "z-rotation": (0, 0, 1),
}


class _GroupElement:
    """One element of a finite symmetry group, acting on the last axis of a tensor."""

    def __init__(self, parity: tuple[int, int, int]) -> None:
        self.parity = parity
        self.mirror, self.negate, self.z_rotate = (bool(p) for p in parity)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        if self.mirror:
            u = _flip_x(u)
        if self.negate:
            u = -u
        if self.z_rotate:
            u = _rotate_z(u)
        return u

    def __repr__(self) -> str:
        names = [name for name, on in zip(("mirror", "negate", "z-rotate"), self.parity) if on]
        return "identity" if not names else " then ".join(names)


def symmetry_group(names: Sequence[str]) -> tuple[Callable[[torch.Tensor], torch.Tensor], ...]:
    """The finite group generated by the declared involutions in ``names``, identity first.

    Each element maps a tensor whose last axis is the state (a 1-D field's grid, or
    Lorenz-63's ``(x, y, z)``) to its image and is its own inverse. ``translation`` is
    skipped (see the module docstring); a name that is not a symmetry at all raises
    ``ValueError``. A task without finite symmetries gets the identity alone.
    """
    unknown = [name for name in names if name not in SYMMETRIES]
    if unknown:
        raise ValueError(f"unknown symmetry {unknown[0]!r}; known: {', '.join(SYMMETRIES)}")
    elements = {(0, 0, 0)}
    for name in names:
        if name in FINITE_SYMMETRIES:
            g = FINITE_SYMMETRIES[name]
            elements |= {tuple((a + b) % 2 for a, b in zip(e, g)) for e in elements}  # type: ignore[misc]
    return tuple(_GroupElement(e) for e in sorted(elements))
