"""Trained weights: a plain ``state_dict`` of tensors that loads with ``weights_only=True``.

The weights next to a record are what later analysis rebuilds a model from, and loading
them must run no code: ``torch.load(path, weights_only=True)``. A model whose state holds
anything but tensors (a dict, a custom object from ``get_extra_state``) breaks that, so
the state is checked when it is first copied and again, by a real round trip, when it is
saved; a violation fails the run with the entry named.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ._io import write_bytes_atomic

__all__ = ["WeightsError", "tensor_state", "weights_bytes", "save_weights", "remove_stale_weights"]

_FIX = "keep a model's state in parameters and buffers (weights must load with torch.load(path, weights_only=True))"


class WeightsError(ValueError):
    """A model state that cannot be saved as plain, safely loadable tensors."""


def tensor_state(model: torch.nn.Module, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """A detached copy of ``model.state_dict()`` (on ``device`` if given); :class:`WeightsError` for a non-tensor entry."""
    state = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"state entry {key!r} is a {type(value).__name__}, not a tensor: {_FIX}")
        out[key] = value.detach().to(device) if device is not None else value.detach().clone()
    return out


def weights_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """``state`` serialised by ``torch.save``, proven to load back with ``weights_only=True``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    blob = buffer.getvalue()
    try:
        torch.load(io.BytesIO(blob), weights_only=True)
    except Exception as exc:  # torch's unpickler raises several types
        raise WeightsError(f"the trained state does not load with weights_only=True ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}): {_FIX}") from None
    return blob


def save_weights(state: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Check and write ``state`` atomically to ``path``."""
    return write_bytes_atomic(path, weights_bytes(state))


def remove_stale_weights(path: str | Path) -> None:
    """Delete weights an earlier run left at ``path``, so a failed record never sits beside them."""
    Path(path).unlink(missing_ok=True)
