"""A harness-level NFE ceiling: a runaway solver fails fast with the count, not at the job timeout.

An adaptive solver whose step size collapses can evaluate its vector field millions of
times in one call and would run until the job's timeout, whose message then says nothing
about the cause. :class:`NFEGuard` watches the model's ``nfe`` counter from a thread while
a call runs; once one call has made more evaluations than the protocol allows
(``Protocol.max_nfe_per_call``), it interrupts the call with :class:`NFELimitError`.
The interrupt is a signal handled in the main thread; where the job does not run in the
main thread the ceiling is checked when the call returns.
"""

from __future__ import annotations

import _thread
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import torch

from .spec import ModelOutputError, read_nfe

__all__ = ["NFELimitError", "NFEGuard"]

_SIGNAL = signal.SIGUSR1 if hasattr(signal, "SIGUSR1") else None


class NFELimitError(ModelOutputError):
    """One call of the model made more vector-field evaluations than the protocol allows."""


class NFEGuard:
    """Watch ``model.nfe`` while calls run; stop a call past ``limit`` evaluations."""

    def __init__(self, model: torch.nn.Module, limit: int | None, poll_s: float = 0.02) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"the NFE limit must be a positive count, got {limit}")
        self.model = model
        self.limit = limit
        self.poll_s = poll_s
        self._call: tuple[int, str] | None = None
        self._tripped: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: Any = None
        self._interrupts = False

    def __enter__(self) -> NFEGuard:
        if self.limit is None:
            return self
        if _SIGNAL is not None and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(_SIGNAL, self._on_signal)
            self._interrupts = True
        self._thread = threading.Thread(target=self._watch, name="nfe guard", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._interrupts:
            signal.signal(_SIGNAL, self._previous)  # type: ignore[arg-type]

    def _message(self, count: int, what: str) -> str:
        return (
            f"NFE limit exceeded: {count:,} vector-field evaluations in one {what} call, more than the protocol's "
            f"{self.limit:,} per call; the solver is not converging: loosen rtol/atol, use a fixed step, or bound its steps"
        )

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            call = self._call
            if call is None or self._tripped is not None or self.limit is None:
                continue
            try:
                count = read_nfe(self.model) - call[0]
            except ModelOutputError:
                continue
            if count > self.limit:
                self._tripped = self._message(count, call[1])
                if self._interrupts and _SIGNAL is not None:
                    _thread.interrupt_main(_SIGNAL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._tripped is not None and self._call is not None:
            raise NFELimitError(self._tripped)

    @contextmanager
    def call(self, what: str) -> Iterator[None]:
        """Guard one call of the model (``what``: e.g. "training forward", "test")."""
        if self.limit is None:
            yield
            return
        start = read_nfe(self.model)
        self._tripped = None
        self._call = (start, what)
        try:
            yield
        finally:
            self._call = None
        count = read_nfe(self.model) - start
        if count > self.limit:
            raise NFELimitError(self._message(count, what))
