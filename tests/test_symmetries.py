"""Declared symmetries: every augmented item is still a solution of the task's system, the
transforms really transform, they are reproducible, and a bad declaration is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from odebench.protocol import protocol_for
from odebench.spec import Split, TaskData
from odebench.symmetries import FINITE_SYMMETRIES, SYMMETRIES, augment, check_symmetries, symmetry_group
from odebench.tasks.specs import HEAT_CLASSIFY, HEAT_FORECAST, KS_CLASSIFY, KS_FORECAST, LORENZ_CLASSIFY, LORENZ_FORECAST
from odebench.tasks.systems import random_fourier_field
from odebench.tasks.systems.heat import heat_solution
from odebench.tasks.systems.ks import simulate_ks
from odebench.tasks.systems.lorenz import lorenz_solution


def _augmented(u: np.ndarray, names: tuple[str, ...], seed: int = 0) -> np.ndarray:
    out = augment(torch.as_tensor(u), names, torch.Generator().manual_seed(seed))
    return out.numpy()


def test_heat_augmented_trajectories_are_heat_solutions() -> None:
    times = np.arange(11) * 0.01
    u = heat_solution(random_fourier_field(np.random.default_rng(0), 32, 64, 5), 0.01, 1.0, times)
    aug = _augmented(u, HEAT_FORECAST.symmetries)
    assert np.abs(aug - u).max() > 0.1  # most items were moved
    np.testing.assert_allclose(aug, heat_solution(aug[:, 0], 0.01, 1.0, times), atol=1e-12)


def test_ks_augmented_trajectories_are_ks_solutions() -> None:
    rng = np.random.default_rng(1)
    u = simulate_ks(random_fourier_field(rng, 16, 64, 8), 22.0, 1.0, 6, 0.05)
    aug = _augmented(u, KS_FORECAST.symmetries)
    assert np.abs(aug - u).max() > 0.1
    np.testing.assert_allclose(aug, simulate_ks(aug[:, 0], 22.0, 1.0, 6, 0.05), atol=1e-9)


def test_ks_plain_reflection_is_not_a_symmetry() -> None:
    """The check above can fail: u(x) -> u(-x) without the sign breaks u u_x."""
    u = simulate_ks(random_fourier_field(np.random.default_rng(2), 4, 64, 8), 22.0, 1.0, 6, 0.05)
    mirrored = _augmented(u, ("reflection",), seed=3)
    moved = np.abs(mirrored - u).max(axis=(1, 2)) > 0
    assert moved.any()
    redo = simulate_ks(mirrored[:, 0], 22.0, 1.0, 6, 0.05)
    assert np.abs(redo[moved] - mirrored[moved]).max() > 1e-2


def test_lorenz_augmented_trajectories_are_lorenz_solutions() -> None:
    u0 = np.random.default_rng(3).normal(0.0, 8.0, (32, 3)) + np.array([0.0, 0.0, 25.0])
    u = lorenz_solution(u0, 0.01, 51)
    aug = _augmented(u, LORENZ_FORECAST.symmetries)
    flipped = np.abs(aug - u).max(axis=(1, 2)) > 0
    assert 0 < flipped.sum() < 32  # a fair coin per item, not all-or-nothing
    np.testing.assert_allclose(aug, lorenz_solution(aug[:, 0], 0.01, 51), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(aug[..., 2], u[..., 2])  # z is kept


def test_augment_is_reproducible_and_item_by_item() -> None:
    u = torch.randn(64, 5, 64, dtype=torch.float64)
    a = augment(u, ("translation",), torch.Generator().manual_seed(7))
    b = augment(u, ("translation",), torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)
    shifts = {int(np.argmax([torch.equal(torch.roll(u[i], s, dims=-1), a[i]) for s in range(64)])) for i in range(64)}
    assert len(shifts) > 10  # each item has its own shift


@pytest.mark.parametrize("task", [HEAT_FORECAST, HEAT_CLASSIFY, KS_FORECAST, KS_CLASSIFY, LORENZ_FORECAST, LORENZ_CLASSIFY], ids=lambda t: t.name)
def test_every_task_declares_symmetries_that_fit_its_state(task) -> None:  # type: ignore[no-untyped-def]
    assert task.symmetries
    check_symmetries(task.symmetries, task.state_shape, task.name)


def test_unknown_or_unfit_symmetries_are_refused_with_the_task_named() -> None:
    with pytest.raises(ValueError, match=r"task 'heat-forecast': unknown symmetry 'rotation'; known: translation"):
        dataclasses.replace(HEAT_FORECAST, symmetries=("rotation",))
    with pytest.raises(ValueError, match=r"'z-rotation' needs a Lorenz-63 state"):
        dataclasses.replace(HEAT_FORECAST, symmetries=("z-rotation",))
    with pytest.raises(ValueError, match=r"'translation' needs a 1-D periodic field"):
        dataclasses.replace(HEAT_FORECAST, state_shape=(8, 8))  # a 2-D field: a 1-D shift is not declared for it
    assert set(SYMMETRIES) == {"translation", "reflection", "odd-reflection", "negation", "z-rotation"}


def test_symmetries_survive_the_spec_round_trip_without_touching_the_data_identity() -> None:
    again = type(KS_FORECAST).from_dict(KS_FORECAST.to_dict())
    assert again.symmetries == KS_FORECAST.symmetries
    assert "symmetries" not in KS_FORECAST.defining_dict()


def _tiny_data(task, rng: np.random.Generator) -> TaskData:  # type: ignore[no-untyped-def]
    def split(n: int) -> Split:
        u = rng.normal(size=(n, task.n_times, *task.state_shape)).astype(np.float32)
        y = rng.integers(0, task.n_classes, n) if task.kind == "classify" else None
        return Split(u=u, t=np.arange(task.n_times) * task.dt, y=y)

    return TaskData(train=split(40), val=split(8), test=split(8))


@pytest.mark.parametrize("task", [HEAT_CLASSIFY, KS_FORECAST], ids=lambda t: t.name)
def test_training_batches_are_augmented_only_when_the_protocol_says_so(task) -> None:  # type: ignore[no-untyped-def]
    data = _tiny_data(task, np.random.default_rng(0))
    base = dataclasses.replace(protocol_for(task, "quick"), augment=False, input_noise=0.0)

    def first_batch(protocol) -> torch.Tensor:  # type: ignore[no-untyped-def]
        batch = task.objective.training_set(task, data, protocol, torch.device("cpu"), 0).sample()
        return batch[0] if isinstance(batch, tuple) else batch

    plain, again = first_batch(base), first_batch(base)
    torch.testing.assert_close(plain, again)
    augmented = first_batch(dataclasses.replace(base, augment=True))
    assert plain.shape == augmented.shape and not torch.equal(plain, augmented)
    # the same windows, only transformed: the multiset of values per item is kept (shifts, mirrors) or negated
    for p, a in zip(plain, augmented):
        assert torch.allclose(p.abs().flatten().sort().values, a.abs().flatten().sort().values)
    # validation batches are never transformed
    on = task.objective.training_set(task, data, dataclasses.replace(base, augment=True), torch.device("cpu"), 0)
    off = task.objective.training_set(task, data, base, torch.device("cpu"), 0)
    for x, y in zip(on.validation, off.validation):
        torch.testing.assert_close(x[0] if isinstance(x, tuple) else x, y[0] if isinstance(y, tuple) else y)


def test_the_protocol_augments_exactly_the_tasks_it_names() -> None:
    from odebench.protocol import TASK_TRAINING

    for task in (HEAT_FORECAST, HEAT_CLASSIFY, KS_FORECAST, KS_CLASSIFY, LORENZ_FORECAST, LORENZ_CLASSIFY):
        wanted = bool(TASK_TRAINING.get(task.name, {}).get("augment", False))
        assert protocol_for(task, "quick").augment is wanted
        assert protocol_for(task, "standard").augment is wanted
    assert protocol_for(KS_CLASSIFY, "standard").augment is True


@pytest.mark.parametrize("task", [HEAT_CLASSIFY, HEAT_FORECAST, KS_CLASSIFY, KS_FORECAST, LORENZ_CLASSIFY, LORENZ_FORECAST], ids=lambda t: t.name)
def test_symmetry_group_is_a_group_of_involutions_that_map_solutions_to_solutions(task) -> None:  # type: ignore[no-untyped-def]
    group = symmetry_group(task.symmetries)
    finite = [name for name in task.symmetries if name in FINITE_SYMMETRIES]
    assert len(group) == 2 ** len(finite) and repr(group[0]) == "identity"
    u = torch.randn(5, 7, *task.state_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    images = [g(u) for g in group]
    for g, image in zip(group, images):
        torch.testing.assert_close(g(image), u, rtol=0, atol=0)  # its own inverse
        for h in group:  # closed under composition
            assert any(torch.equal(h(image), other) for other in images)
    for a in range(len(images)):  # distinct elements
        for b in range(a):
            assert not torch.equal(images[a], images[b])


def test_symmetry_group_elements_are_the_declared_symmetries_of_each_system() -> None:
    times = np.arange(11) * 0.01
    heat = heat_solution(random_fourier_field(np.random.default_rng(4), 8, 64, 5), 0.01, 1.0, times)
    for g in symmetry_group(HEAT_FORECAST.symmetries):
        image = g(torch.as_tensor(heat)).numpy()
        np.testing.assert_allclose(image, heat_solution(image[:, 0], 0.01, 1.0, times), atol=1e-12)
    ks = simulate_ks(random_fourier_field(np.random.default_rng(5), 4, 64, 8), 22.0, 1.0, 6, 0.05)
    for g in symmetry_group(KS_FORECAST.symmetries):
        image = g(torch.as_tensor(ks)).numpy()
        np.testing.assert_allclose(image, simulate_ks(image[:, 0], 22.0, 1.0, 6, 0.05), atol=1e-9)
    lorenz = lorenz_solution(np.array([[1.0, 2.0, 20.0], [-3.0, 1.0, 25.0]]), 0.01, 51)
    for g in symmetry_group(LORENZ_FORECAST.symmetries):
        image = g(torch.as_tensor(lorenz)).numpy()
        np.testing.assert_allclose(image, lorenz_solution(image[:, 0], 0.01, 51), rtol=1e-9, atol=1e-9)


def test_symmetry_group_dedupes_and_refuses_unknown_names() -> None:
    assert len(symmetry_group(("reflection", "odd-reflection", "negation"))) == 4  # odd-reflection = reflection ∘ negation
    assert [repr(g) for g in symmetry_group(("translation",))] == ["identity"]
    with pytest.raises(ValueError, match="unknown symmetry 'rotation'"):
        symmetry_group(("rotation",))
    with pytest.raises(ValueError, match="last axis of 3"):
        symmetry_group(("z-rotation",))[1](torch.zeros(2, 4))
