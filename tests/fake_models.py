"""Models that break the contract on purpose, installed by the tests as a fake distribution.

Each factory follows the real contract (``factory(task, **hparams) -> nn.Module`` with an
integer ``nfe``); the fault is in what the model does when run.
"""

import time

import torch


class _Base(torch.nn.Module):
    def __init__(self, task):
        super().__init__()
        self.task = task
        self.nfe = 0
        n = task.state_shape[0]
        self.lin = torch.nn.Linear(n, n if task.kind == "forecast" else task.n_classes)

    def step(self, u):
        self.nfe += 1
        return u + 0.01 * self.lin(u)

    def forward(self, *args):
        if self.task.kind == "forecast":
            u0, t = args
            out = [u0]
            for _ in range(t.shape[0] - 1):
                out.append(self.step(out[-1]))
            return torch.stack(out, 1)
        self.nfe += 1
        return self.lin(args[0].mean(1))


class Raises(_Base):
    def forward(self, *args):
        raise RuntimeError("deliberate failure in forward")


class ReturnsNaN(_Base):
    def forward(self, *args):
        return super().forward(*args) * float("nan")


class WrongShape(_Base):
    def forward(self, *args):
        return super().forward(*args)[:, :1]


class Hangs(_Base):
    def forward(self, *args):
        while True:
            time.sleep(0.1)


class Hungry(_Base):
    """Touches a buffer of ``megabytes`` MiB once, so the process's peak RSS must show it."""

    def __init__(self, task, megabytes=0):
        super().__init__(task)
        self.megabytes = megabytes
        self.done = False

    def forward(self, *args):
        if not self.done and self.megabytes:
            buf = torch.ones(self.megabytes * 2**20 // 4)
            self.lin.bias.data += 0 * float(buf[-1])
            del buf
            self.done = True
        return super().forward(*args)


class Huge(_Base):
    """Asks for ``gigabytes`` GiB at once: more than the job's memory cap, less than the machine."""

    def __init__(self, task, gigabytes=3):
        super().__init__(task)
        self.gigabytes = gigabytes

    def forward(self, *args):
        torch.ones(int(self.gigabytes * 2**30), dtype=torch.uint8)
        return super().forward(*args)


class ExtraState(_Base):
    """Keeps a Python object in its state (get_extra_state): not loadable with weights_only."""

    class Meta:
        pass

    def get_extra_state(self):
        return self.Meta()

    def set_extra_state(self, state):
        pass


class DictState(_Base):
    """Puts a plain dict into its state_dict."""

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        state["config"] = {"width": 3}
        return state


class Flaky(_Base):
    """Raises once the file named by its ``flag`` argument exists: fails on a rerun."""

    def __init__(self, task, flag):
        super().__init__(task)
        self.flag = flag

    def forward(self, *args):
        import os

        if os.path.exists(self.flag):
            raise RuntimeError("failing on purpose this time")
        return super().forward(*args)


class Chatty(_Base):
    """Prints ``megabytes`` MiB to stdout during its first forward call."""

    def __init__(self, task, megabytes):
        super().__init__(task)
        self.megabytes = megabytes
        self.done = False

    def forward(self, *args):
        if not self.done:
            import sys

            line = "x" * 1023 + "\n"
            for _ in range(self.megabytes * 1024):
                sys.stdout.write(line)
            sys.stdout.write("LAST LINE OF OUTPUT\n")
            sys.stdout.flush()
            self.done = True
        return super().forward(*args)


class Runaway(_Base):
    """An 'adaptive solver' whose step size has collapsed: it never stops evaluating."""

    def forward(self, *args):
        u = args[0] if args[0].dim() == 2 else args[0][:, -1]
        while True:
            u = self.step(u)


def build_runaway(task):
    return Runaway(task)


class LateNaN(_Base):
    """Fine on its first two calls, NaN from the third on."""

    def __init__(self, task):
        super().__init__(task)
        self.calls = 0

    def forward(self, *args):
        self.calls += 1
        out = super().forward(*args)
        return out * float("nan") if self.calls >= 3 else out


class Segfaults(_Base):
    def forward(self, *args):
        import os
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)


def build_late_nan(task):
    return LateNaN(task)


def build_segfaults(task):
    return Segfaults(task)


class Memorizer(_Base):
    """Cheats: reads the shipped test split in build() and replays the stored trajectory
    of any initial state it recognises; anything else gets a persistence forecast."""

    def __init__(self, task, memory):
        super().__init__(task)
        self.register_buffer("memory", torch.as_tensor(memory), persistent=False)

    def forward(self, u0, t):
        self.nfe += 1
        out = u0[:, None].expand(-1, t.shape[0], *u0.shape[1:]).clone()
        starts = self.memory[:, 0].reshape(self.memory.shape[0], -1)
        for i in range(u0.shape[0]):
            hit = torch.nonzero((starts == u0[i].reshape(1, -1)).all(dim=1))
            if hit.numel() and t.shape[0] <= self.memory.shape[1]:
                out[i] = self.memory[hit[0, 0], : t.shape[0]]
        return out + 0.0 * self.lin.weight.sum()  # keeps a graph, so the harness can train it


def build_memorizer(task):
    from odebench import data

    return Memorizer(task, data.load_split(task.name, "test").u)


build_memorizer.task_kinds = ("forecast",)


class Slow(_Base):
    """Sleeps ``pause`` seconds in every call: a job long enough to interrupt."""

    def __init__(self, task, pause):
        super().__init__(task)
        self.pause = pause

    def forward(self, *args):
        time.sleep(self.pause)
        return super().forward(*args)


def build_slow(task, *, pause=0.1):
    return Slow(task, pause)


def build_chatty(task, *, megabytes=4):
    return Chatty(task, megabytes)


def build_ok(task, *, scale=1.0):
    return _Base(task)


def build_extra_state(task):
    return ExtraState(task)


def build_dict_state(task):
    return DictState(task)


def build_flaky(task, *, flag):
    return Flaky(task, flag)


def build_raises(task):
    return Raises(task)


def build_nan(task):
    return ReturnsNaN(task)


def build_wrong_shape(task):
    return WrongShape(task)


def build_hangs(task):
    return Hangs(task)


def build_hungry(task, *, megabytes=0):
    return Hungry(task, megabytes)


class Offset(torch.nn.Module):
    """The exact reference plus ``offset`` σ: nRMSE must read ``offset`` at every time.

    σ is recomputed here from the training split as the task declares it (pooled over
    the grid for ``pooled_sigma``, else per dimension), independently of the harness.
    """

    def __init__(self, task, offset):
        super().__init__()
        import numpy as np

        from odebench.baselines.references import build_exact
        from odebench.data import load_split

        self.exact = build_exact(task)
        train = np.asarray(load_split(task.name, "train").u, dtype=np.float64)
        sigma = np.full(train.shape[2:], train.std()) if task.pooled_sigma else train.std(axis=(0, 1))
        self.register_buffer("shift", torch.as_tensor(offset * sigma, dtype=torch.float32))
        self.nfe = 0

    def forward(self, u0, t):
        return self.exact(u0, t) + self.shift


def build_offset(task, *, offset=0.1):
    return Offset(task, offset)


def build_huge(task, *, gigabytes=3):
    return Huge(task, gigabytes)


def build_not_a_model(task):
    return {"not": "a model"}



class Exponential(torch.nn.Module):
    """Forecasts ``u0 · exp(rate · t)``: λ1 is exactly ``rate`` (negative: a contracting map;
    large and positive: a rollout that leaves the attractor). Its one parameter only keeps
    training well defined."""

    def __init__(self, task, rate):
        super().__init__()
        self.task = task
        self.rate = float(rate)
        self.nfe = 0
        self.zero = torch.nn.Parameter(torch.zeros(()))

    def forward(self, u0, t):
        self.nfe += 1
        shape = (1, -1) + (1,) * (u0.dim() - 1)
        return u0[:, None] * torch.exp(self.rate * t.to(u0.dtype)).reshape(shape) + 0 * self.zero


def build_decays(task):
    return Exponential(task, -1.0)


def build_explodes(task):
    return Exponential(task, 5.0)


ENTRY_POINTS = {
    "fake-ok": "odebench_fake_models:build_ok",
    "fake-raises": "odebench_fake_models:build_raises",
    "fake-nan": "odebench_fake_models:build_nan",
    "fake-wrong-shape": "odebench_fake_models:build_wrong_shape",
    "fake-hangs": "odebench_fake_models:build_hangs",
    "fake-hungry": "odebench_fake_models:build_hungry",
    "fake-huge": "odebench_fake_models:build_huge",
    "fake-not-a-model": "odebench_fake_models:build_not_a_model",
    "fake-missing-attr": "odebench_fake_models:no_such_factory",
    "fake-extra-state": "odebench_fake_models:build_extra_state",
    "fake-dict-state": "odebench_fake_models:build_dict_state",
    "fake-flaky": "odebench_fake_models:build_flaky",
    "fake-chatty": "odebench_fake_models:build_chatty",
    "fake-runaway": "odebench_fake_models:build_runaway",
    "fake-late-nan": "odebench_fake_models:build_late_nan",
    "fake-segfaults": "odebench_fake_models:build_segfaults",
    "fake-memorizer": "odebench_fake_models:build_memorizer",
    "fake-slow": "odebench_fake_models:build_slow",
    "fake-offset": "odebench_fake_models:build_offset",
    "fake-decays": "odebench_fake_models:build_decays",
    "fake-explodes": "odebench_fake_models:build_explodes",
}
