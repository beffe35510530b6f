"""The built-in task specs and their recipes, as the ``odebench.tasks`` entry points name them."""

from __future__ import annotations

from ..spec import TaskSpec
from ._recipe import Recipe
from .heat import HEAT_CLASSIFY, HEAT_FORECAST
from .heat import RECIPES as _HEAT_RECIPES
from .ks import KS_CLASSIFY, KS_FORECAST
from .ks import RECIPES as _KS_RECIPES
from .lorenz import LORENZ_CLASSIFY, LORENZ_FORECAST
from .lorenz import RECIPES as _LORENZ_RECIPES

__all__ = [
    "HEAT_FORECAST",
    "HEAT_CLASSIFY",
    "LORENZ_FORECAST",
    "LORENZ_CLASSIFY",
    "KS_FORECAST",
    "KS_CLASSIFY",
    "ALL_SPECS",
    "ALL_RECIPES",
]


def _merge(*groups: dict[str, Recipe]) -> dict[str, Recipe]:
    merged: dict[str, Recipe] = {}
    for group in groups:
        for name, recipe in group.items():
            if name in merged:
                raise ValueError(f"two task modules define a recipe for task {name!r}; rename one")
            if recipe.spec.name != name:
                raise ValueError(f"recipe {name!r} carries the spec of task {recipe.spec.name!r}")
            merged[name] = recipe
    return merged


#: Task name -> recipe, for every built-in task.
ALL_RECIPES: dict[str, Recipe] = _merge(_HEAT_RECIPES, _LORENZ_RECIPES, _KS_RECIPES)

#: Task name -> spec, for every built-in task.
ALL_SPECS: dict[str, TaskSpec] = {name: recipe.spec for name, recipe in ALL_RECIPES.items()}
