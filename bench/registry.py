"""Entry-point registries for models (``odebench.models``) and tasks (``odebench.tasks``).

Names are listed from installed distributions' metadata without importing anything;
an entry is imported only when it is loaded. Our own baselines and tasks register
through the same groups as any third-party plugin, so there is one code path.
"""

from __future__ import annotations

import difflib
import importlib.metadata as metadata
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .spec import TaskSpec, UnsupportedTaskError

if TYPE_CHECKING:  # imported where a model is built: listing and loading tasks needs no torch
    import torch

__all__ = [
    "MODEL_GROUP",
    "TASK_GROUP",
    "RegistryError",
    "UnknownNameError",
    "DuplicateNameError",
    "PluginError",
    "Entry",
    "Registry",
    "models",
    "tasks",
    "load_task",
    "model_factory",
    "model_supports",
    "check_model_args",
    "build_model",
]

MODEL_GROUP = "odebench.models"
TASK_GROUP = "odebench.tasks"


class RegistryError(LookupError):
    """Base class of every registry failure."""


class UnknownNameError(RegistryError):
    """A name that no installed distribution registers."""


class DuplicateNameError(RegistryError):
    """Two distributions register the same name in one group."""


class PluginError(RegistryError):
    """A registered entry failed to import, or built the wrong kind of object."""


@dataclass(frozen=True)
class Entry:
    """One registered name: where it points and which distribution registered it."""

    name: str
    target: str
    distribution: str
    version: str

    @property
    def owner(self) -> str:
        return f"{self.distribution} {self.version}"


def _entry_from(ep: metadata.EntryPoint, owners: dict[int, tuple[str, str]]) -> Entry:
    """The :class:`Entry` of ``ep``; ``owners`` caches each distribution's (name, version).

    Reading a distribution's name parses its whole METADATA file, and one distribution
    registers many entry points, so one listing parses each distribution once.
    """
    dist = getattr(ep, "dist", None)
    if dist is None:
        return Entry(name=ep.name, target=ep.value, distribution="<unknown distribution>", version="?")
    if id(dist) not in owners:
        owners[id(dist)] = (dist.metadata["Name"], dist.version)
    name, version = owners[id(dist)]
    return Entry(name=ep.name, target=ep.value, distribution=name, version=version)


class Registry:
    """Names in one entry-point group, read fresh from the installed metadata each time."""

    def __init__(self, group: str, what: str) -> None:
        self.group = group
        self.what = what

    def entries(self) -> dict[str, Entry]:
        """All entries by name; :class:`DuplicateNameError` if two distributions share one."""
        found: dict[str, Entry] = {}
        owners: dict[int, tuple[str, str]] = {}
        for ep in metadata.entry_points(group=self.group):
            entry = _entry_from(ep, owners)
            previous = found.get(entry.name)
            if previous is not None and previous.distribution != entry.distribution:
                raise DuplicateNameError(
                    f"{self.what} {entry.name!r} is registered twice in entry-point group {self.group!r}: "
                    f"by {previous.owner} ({previous.target}) and by {entry.owner} ({entry.target}); "
                    f"uninstall one of the two distributions or rename the entry point"
                )
            found[entry.name] = entry
        return found

    def names(self) -> list[str]:
        """Sorted registered names, without importing any of them."""
        return sorted(self.entries())

    def entry(self, name: str) -> Entry:
        """The entry for ``name``; :class:`UnknownNameError` with suggestions if absent."""
        entries = self.entries()
        if name in entries:
            return entries[name]
        close = difflib.get_close_matches(name, entries, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        listing = ", ".join(sorted(entries)) or "(none installed)"
        raise UnknownNameError(f"unknown {self.what} {name!r}: {hint}known {self.what}s: {listing}")

    def load(self, name: str) -> Any:
        """Import and return the object registered as ``name``."""
        entry = self.entry(name)
        owners: dict[int, tuple[str, str]] = {}
        for ep in metadata.entry_points(group=self.group, name=name):
            if _entry_from(ep, owners) == entry:
                try:
                    return ep.load()
                except Exception as exc:  # a plugin's import can raise anything
                    raise PluginError(
                        f"{self.what} {name!r} from distribution {entry.owner} failed to load "
                        f"{entry.target!r}: {type(exc).__name__}: {exc}"
                    ) from exc
        raise UnknownNameError(f"{self.what} {name!r} disappeared while loading")  # pragma: no cover


models = Registry(MODEL_GROUP, "model")
tasks = Registry(TASK_GROUP, "task")


def load_task(name: str) -> TaskSpec:
    """The :class:`TaskSpec` registered as ``name`` (an instance or a zero-argument callable)."""
    obj = tasks.load(name)
    if callable(obj) and not isinstance(obj, TaskSpec):
        try:
            obj = obj()
        except Exception as exc:
            entry = tasks.entry(name)
            raise PluginError(f"task {name!r} from distribution {entry.owner} raised while building its spec: {exc}") from exc
    if not isinstance(obj, TaskSpec):
        entry = tasks.entry(name)
        raise PluginError(
            f"task {name!r} from distribution {entry.owner} is a {type(obj).__name__}, expected an odebench.spec.TaskSpec"
        )
    if obj.name != name:
        entry = tasks.entry(name)
        raise PluginError(f"task entry point {name!r} from {entry.owner} builds a spec named {obj.name!r}")
    return obj


def model_factory(name: str) -> Callable[..., torch.nn.Module]:
    """The callable registered as model ``name``."""
    obj = models.load(name)
    if not callable(obj):
        entry = models.entry(name)
        raise PluginError(f"model {name!r} from distribution {entry.owner} points at a {type(obj).__name__}, not a callable factory")
    return obj


def model_supports(name: str, kind: str) -> bool:
    """Whether model ``name`` builds for tasks of ``kind``, by its factory's optional ``task_kinds``."""
    kinds = getattr(model_factory(name), "task_kinds", None)
    return kinds is None or kind in kinds


def check_model_args(name: str, factory: Callable[..., Any], hparams: dict[str, Any]) -> None:
    """Raise :class:`PluginError` if ``hparams`` names an argument the factory does not accept.

    The factory's declared ``hyperparameters`` decide when it has them; otherwise its
    signature does (a ``**kwargs`` factory accepts any name). Values are the factory's
    to check when it builds.
    """
    if not hparams:
        return
    declared = getattr(factory, "hyperparameters", None)
    if declared is not None:
        accepted = {hp.name for hp in declared}
    else:
        try:
            params = list(inspect.signature(factory).parameters.values())[1:]
        except (TypeError, ValueError):
            return
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return
        accepted = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(hparams) - accepted)
    if unknown:
        entry = models.entry(name)
        listing = ", ".join(sorted(accepted)) or "none"
        raise PluginError(f"model {name!r} ({entry.owner}) accepts no --model-arg {', '.join(unknown)}; it accepts: {listing} (see odebench list models --verbose)")


def build_model(name: str, task: TaskSpec, hparams: dict[str, Any] | None = None) -> torch.nn.Module:
    """Build model ``name`` for ``task``; every failure names the plugin's distribution.

    Hyperparameter mistakes (``TypeError``/``ValueError`` from the factory) and
    :class:`UnsupportedTaskError` are re-raised as :class:`PluginError` with the
    distribution named, so a user sees which package to look at.
    """
    import torch

    factory = model_factory(name)
    entry = models.entry(name)
    try:
        model = factory(task, **(hparams or {}))
    except UnsupportedTaskError as exc:
        raise PluginError(f"model {name!r} ({entry.owner}) does not support task {task.name!r}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        if hparams:
            given = ", ".join(f"{k}={v!r}" for k, v in sorted(hparams.items()))
            raise PluginError(f"model {name!r} ({entry.owner}) refused to build for task {task.name!r} with --model-arg {given}: {type(exc).__name__}: {exc}") from exc
        raise PluginError(f"model {name!r} ({entry.owner}) failed to build for task {task.name!r} (no --model-arg given): {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise PluginError(f"model {name!r} ({entry.owner}) failed to build for task {task.name!r}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise PluginError(
            f"model {name!r} from distribution {entry.owner} returned a {type(model).__name__}, expected a torch.nn.Module"
        )
    if not isinstance(getattr(model, "nfe", None), int):
        raise PluginError(
            f"model {name!r} from distribution {entry.owner} has no integer attribute 'nfe'; "
            "count vector-field/residual-function evaluations there (0 for a model without one)"
        )
    return model
