"""Overhead of the harness: its training loop against a bare PyTorch loop, and NFE counting.

    python -m pytest benchmarks/test_overhead.py --benchmark-only --benchmark-columns=min,median,max,rounds

Each group's table shows the relative factor of every row against the fastest: the
harness's loop should be within 3 % of the bare loop and a counted field within 1 % of an
uncounted one. Both sides do the same steps on the same model with the same batches.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from odebench.baselines import _fields
from odebench.baselines.resnet import build_resnet
from odebench.protocol import protocol_for
from odebench.spec import Split, TaskData, TaskSpec
from odebench.training import _train

torch.set_num_threads(1)
TASK = TaskSpec(name="bench-forecast", version="1", kind="forecast", system="lorenz", state_shape=(3,), dt=0.01, n_times=64, train_window=20)
STEPS = 150
PROTOCOL = replace(protocol_for(TASK, "standard"), max_steps=STEPS, eval_every=10**9, wall_clock_cap_s=1e9, val_batches=1)
RNG = np.random.default_rng(0)
DATA = TaskData(*(Split(u=RNG.normal(size=(n, t, 3)).astype(np.float32), t=0.01 * np.arange(t)) for n, t in ((64, 200), (8, 64), (8, 64))))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_resnet(TASK)


def harness_loop() -> None:
    _train(TASK, _model(), DATA, PROTOCOL, torch.device("cpu"), seed=0)


def bare_loop() -> None:
    model = _model()
    rng = np.random.default_rng(0)
    train = torch.as_tensor(DATA.train_u)
    sigma = torch.as_tensor(DATA.train_u.std(axis=(0, 1)), dtype=torch.float32)
    t = torch.as_tensor(TASK.dt * np.arange(TASK.train_window), dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=PROTOCOL.learning_rate)
    w = TASK.train_window
    for _ in range(STEPS):
        idx = torch.as_tensor(rng.integers(0, train.shape[0], PROTOCOL.batch_size))
        start = torch.as_tensor(rng.integers(0, train.shape[1] - w + 1, PROTOCOL.batch_size))
        batch = train[idx[:, None], start[:, None] + torch.arange(w)[None, :]]
        pred = model(batch[:, 0], t)
        loss = (((pred[:, 1:] - batch[:, 1:]) / sigma) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), PROTOCOL.grad_clip)
        opt.step()
    with torch.no_grad():  # the harness validates once at the last step
        model(batch[:, 0], t)


@pytest.mark.benchmark(group="train-loop", warmup=True)
def test_harness_training_loop(benchmark) -> None:
    benchmark.pedantic(harness_loop, rounds=7, warmup_rounds=1)


@pytest.mark.benchmark(group="train-loop", warmup=True)
def test_bare_pytorch_loop(benchmark) -> None:
    benchmark.pedantic(bare_loop, rounds=7, warmup_rounds=1)


class UncountedMLP(_fields.MLP):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def _rollout_step(field: torch.nn.Module) -> None:
    z = torch.randn(32, 3)
    out = z
    for _ in range(50):
        out = out + field(out)
    out.square().mean().backward()


def _field(cls: type) -> torch.nn.Module:
    torch.manual_seed(0)
    return cls(3, 64, 2, "silu")


@pytest.mark.benchmark(group="nfe-counting", warmup=True)
def test_counted_field(benchmark) -> None:
    field = _field(_fields.MLP)
    benchmark.pedantic(lambda: [_rollout_step(field) for _ in range(20)], rounds=9, warmup_rounds=1)


@pytest.mark.benchmark(group="nfe-counting", warmup=True)
def test_uncounted_field(benchmark) -> None:
    field = _field(UncountedMLP)
    benchmark.pedantic(lambda: [_rollout_step(field) for _ in range(20)], rounds=9, warmup_rounds=1)
