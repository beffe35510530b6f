"""The CUDA paths: synchronised timing and peak GPU memory per phase. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from odebench.measure import GpuPeak, Stopwatch, environment
from odebench.protocol import protocol_for
from odebench.spec import Split, TaskData, TaskSpec
from odebench.training import train_and_evaluate

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = torch.device("cuda")


def test_stopwatch_waits_for_asynchronous_kernels() -> None:
    torch.cuda.synchronize()
    # Calibrate: how long does a spin of N cycles take when waited for?
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(200_000_000)
    end.record()
    torch.cuda.synchronize()
    kernel_s = start.elapsed_time(end) / 1000.0
    assert kernel_s > 0.01
    clock = Stopwatch(CUDA)
    with clock.running():
        torch.cuda._sleep(200_000_000)  # returns at once on the host; only the sync waits
    assert clock.seconds >= 0.8 * kernel_s


def test_gpu_peak_is_per_phase() -> None:
    big, small = GpuPeak(CUDA), GpuPeak(CUDA)
    with big.tracking():
        x = torch.empty(256 * 2**20, dtype=torch.uint8, device=CUDA)
        del x
    with small.tracking():
        y = torch.empty(2**20, dtype=torch.uint8, device=CUDA)
        del y
    assert big.bytes is not None and big.bytes >= 256 * 2**20
    assert small.bytes is not None and small.bytes < 64 * 2**20


class _Hungry(torch.nn.Module):
    """Allocates a large temporary only while training, so the two phases' peaks differ."""

    def __init__(self) -> None:
        super().__init__()
        self.nfe = 0
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, u0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.training:
            scratch = torch.ones(128 * 2**20 // 4, device=u0.device)
            u0 = u0 + 0 * scratch.sum()
        out = [u0]
        for _ in range(t.shape[0] - 1):
            self.nfe += 1
            out.append(out[-1] + 0.01 * self.lin(out[-1]))
        return torch.stack(out, 1)


def test_train_and_infer_peaks_and_synchronised_times_on_cuda() -> None:
    task = TaskSpec(name="toy-forecast", version="1", kind="forecast", system="toy", state_shape=(3,), dt=0.1, n_times=8, train_window=4)
    rng = np.random.default_rng(0)
    data = TaskData(*(Split(u=rng.normal(size=(n, 8, 3)), t=task.times) for n in (8, 4, 4)))
    model = _Hungry().to(CUDA)
    outcome = train_and_evaluate(task, model, data, protocol_for(task, "quick"), CUDA, seed=0)
    cost = outcome.cost
    assert cost["peak_gpu_bytes_train"] >= 128 * 2**20
    assert cost["peak_gpu_bytes_infer"] < 128 * 2**20
    assert cost["peak_gpu_bytes"] == cost["peak_gpu_bytes_train"]
    assert cost["train_seconds"] > 0 and cost["infer_seconds"] > 0
    env = environment(CUDA)
    assert env["device"] == "cuda" and env["cuda"] and "cpu" not in env["device_name"].lower()
