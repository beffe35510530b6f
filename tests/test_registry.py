"""The entry-point registry, exercised through real (fake-installed) distributions."""

from __future__ import annotations

import sys

import pytest
import torch

from odebench import registry
from odebench.spec import TaskSpec

TASK = TaskSpec(name="toy", version="1", kind="classify", system="toy", state_shape=(3,), dt=0.1, n_times=4, n_classes=2)

GOOD_MODEL = """
import torch
class Linear(torch.nn.Module):
    def __init__(self, task):
        super().__init__()
        self.nfe = 0
        self.lin = torch.nn.Linear(task.state_shape[0], task.n_classes)
    def forward(self, x):
        self.nfe += 1
        return self.lin(x.mean(1))
def build(task, **hparams):
    return Linear(task)
"""


def test_builtin_names_listed_without_import() -> None:
    before = set(sys.modules)
    names = registry.models.names()
    assert {"neural-ode", "resnet", "lm-resnet", "persistence", "majority"} <= set(names)
    assert set(registry.tasks.names()) >= {"heat-forecast", "heat-classify", "lorenz-forecast", "lorenz-classify", "ks-forecast", "ks-classify"}
    assert not any(m.startswith("odebench.baselines.") for m in set(sys.modules) - before)


def test_listing_a_plugin_does_not_import_it(fake_dist) -> None:
    fake_dist("fake-lazy", {"odebench.models": {"lazy-model": "odebench_fake_lazy:build"}}, {"odebench_fake_lazy": "raise RuntimeError('imported too early')\n"})
    assert "lazy-model" in registry.models.names()
    assert "odebench_fake_lazy" not in sys.modules
    with pytest.raises(registry.PluginError, match="fake-lazy"):
        registry.models.load("lazy-model")


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(registry.UnknownNameError) as info:
        registry.models.entry("resnett")
    message = str(info.value)
    assert "did you mean 'resnet'" in message and "neural-ode" in message


def test_unknown_task_lists_tasks() -> None:
    with pytest.raises(registry.UnknownNameError, match="lorenz-forecast"):
        registry.load_task("lorenz-forcast")


def test_duplicate_name_across_distributions_names_both(fake_dist) -> None:
    fake_dist("fake-one", {"odebench.models": {"twin": "odebench_fake_one:build"}}, {"odebench_fake_one": GOOD_MODEL})
    fake_dist("fake-two", {"odebench.models": {"twin": "odebench_fake_two:build"}}, {"odebench_fake_two": GOOD_MODEL})
    with pytest.raises(registry.DuplicateNameError) as info:
        registry.models.names()
    assert "fake-one" in str(info.value) and "fake-two" in str(info.value)


def test_plugin_import_error_names_distribution(fake_dist) -> None:
    fake_dist("fake-broken", {"odebench.models": {"broken": "odebench_fake_broken:build"}}, {"odebench_fake_broken": "import not_a_real_module_xyz\n"})
    with pytest.raises(registry.PluginError) as info:
        registry.build_model("broken", TASK)
    assert "fake-broken" in str(info.value) and "ModuleNotFoundError" in str(info.value)


def test_missing_attribute_names_distribution(fake_dist) -> None:
    fake_dist("fake-noattr", {"odebench.models": {"noattr": "odebench_fake_noattr:nothing_here"}}, {"odebench_fake_noattr": GOOD_MODEL})
    with pytest.raises(registry.PluginError, match="fake-noattr.*AttributeError"):
        registry.build_model("noattr", TASK)


def test_factory_returning_wrong_type_names_distribution(fake_dist) -> None:
    fake_dist("fake-wrongtype", {"odebench.models": {"wrongtype": "odebench_fake_wrongtype:build"}}, {"odebench_fake_wrongtype": "def build(task, **kw):\n    return 'not a module'\n"})
    with pytest.raises(registry.PluginError, match="fake-wrongtype.*torch.nn.Module"):
        registry.build_model("wrongtype", TASK)


def test_model_without_nfe_is_rejected(fake_dist) -> None:
    source = "import torch\ndef build(task, **kw):\n    return torch.nn.Linear(3, 2)\n"
    fake_dist("fake-nonfe", {"odebench.models": {"nonfe": "odebench_fake_nonfe:build"}}, {"odebench_fake_nonfe": source})
    with pytest.raises(registry.PluginError, match="nfe"):
        registry.build_model("nonfe", TASK)


def test_good_plugin_builds(fake_dist) -> None:
    fake_dist("fake-good", {"odebench.models": {"good": "odebench_fake_good:build"}}, {"odebench_fake_good": GOOD_MODEL})
    model = registry.build_model("good", TASK)
    assert isinstance(model, torch.nn.Module)
    assert model(torch.zeros(5, 4, 3)).shape == (5, 2) and model.nfe == 1
    assert registry.models.entry("good").distribution == "fake-good"


def test_bad_hyperparameter_names_distribution(fake_dist) -> None:
    source = "import torch\ndef build(task, *, width=4):\n    raise AssertionError\n"
    fake_dist("fake-strict", {"odebench.models": {"strict": "odebench_fake_strict:build"}}, {"odebench_fake_strict": source})
    with pytest.raises(registry.PluginError, match="fake-strict.*refused to build .* with --model-arg widht=3"):
        registry.build_model("strict", TASK, {"widht": 3})
    with pytest.raises(registry.PluginError, match="accepts no --model-arg widht; it accepts: width"):
        registry.check_model_args("strict", registry.model_factory("strict"), {"widht": 3})
    registry.check_model_args("strict", registry.model_factory("strict"), {"width": 3})


def test_a_build_error_without_arguments_is_not_blamed_on_arguments(fake_dist) -> None:
    source = "def build(task):\n    raise ValueError('grid too coarse')\n"
    fake_dist("fake-picky", {"odebench.models": {"picky": "odebench_fake_picky:build"}}, {"odebench_fake_picky": source})
    with pytest.raises(registry.PluginError, match="failed to build for task .*no --model-arg given.*ValueError: grid too coarse") as info:
        registry.build_model("picky", TASK, {})
    assert "argument" not in str(info.value).replace("--model-arg", "")


def test_declared_hyperparameters_decide_which_arguments_are_accepted(fake_dist) -> None:
    source = (
        "from odebench.spec import HyperParameter\n"
        "def build(task, **kw):\n    raise AssertionError\n"
        "build.hyperparameters = (HyperParameter('depth', 2, 'int >= 1'),)\n"
    )
    fake_dist("fake-declared", {"odebench.models": {"declared": "odebench_fake_declared:build"}}, {"odebench_fake_declared": source})
    factory = registry.model_factory("declared")
    registry.check_model_args("declared", factory, {"depth": 3})
    with pytest.raises(registry.PluginError, match="accepts no --model-arg width; it accepts: depth"):
        registry.check_model_args("declared", factory, {"width": 3})


def test_task_entry_must_be_a_task_spec(fake_dist) -> None:
    fake_dist("fake-task", {"odebench.tasks": {"not-a-task": "odebench_fake_task:SPEC"}}, {"odebench_fake_task": "SPEC = {'name': 'not-a-task'}\n"})
    with pytest.raises(registry.PluginError, match="fake-task.*TaskSpec"):
        registry.load_task("not-a-task")
