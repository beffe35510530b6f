"""The harness's Adam against torch.optim.Adam: the same updates to rounding."""

from __future__ import annotations

import pytest
import torch

from odebench.optim import Adam, WeightAverage


def _pair(weight_decay: float) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))
    b = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.SiLU(), torch.nn.Linear(8, 2))
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_adam_follows_torch_optim_adam_under_a_changing_learning_rate(weight_decay: float) -> None:
    ours_model, torch_model = _pair(weight_decay)
    ours = Adam(ours_model.parameters(), lr=3e-3, weight_decay=weight_decay)
    reference = torch.optim.Adam(torch_model.parameters(), lr=3e-3, weight_decay=weight_decay, foreach=False)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    for step in range(60):
        lr = 3e-3 * (1 + step) / 60
        ours.lr = lr
        for group in reference.param_groups:
            group["lr"] = lr
        for model, opt in ((ours_model, ours), (torch_model, reference)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(ours_model.parameters(), torch_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    assert not torch.equal(ours_model[0].weight, _pair(0.0)[0][0].weight)  # it did move


def test_a_parameter_without_a_gradient_is_left_alone() -> None:
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = Adam([used, unused], lr=0.1)
    (used * used).sum().backward()
    opt.step()
    assert torch.all(used < 1) and torch.equal(unused, torch.ones(2))
    opt.zero_grad()
    assert used.grad is None
    with pytest.raises(ValueError, match="Adam"):
        Adam([], lr=0.1)
    with pytest.raises(ValueError, match="invalid"):
        Adam([used], lr=-1.0)


def test_the_weight_average_follows_its_recurrence_and_swaps_back() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    average = WeightAverage([p], decay=0.5)
    expected = 0.0
    for n, value in enumerate((1.0, 2.0, 3.0, 4.0), start=1):
        with torch.no_grad():
            p.fill_(value)
        average.update()
        d = min(0.5, n / (n + 9))
        expected = d * expected + (1 - d) * value
    with average.applied():
        torch.testing.assert_close(p.detach(), torch.full((3,), expected))
    assert torch.equal(p.detach(), torch.full((3,), 4.0))  # the iterate is back
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage([p], decay=bad)
