"""A job's log: the child's output, capped to a stated size, and its tail read cheaply.

A model that prints without end must not fill the disk, nor the parent's memory when it
reports the failure. :class:`CappedLog` copies a child's output to the log file as it
comes (so the log is live), keeps at most :data:`LOG_HEAD_BYTES` from the start and the
last :data:`LOG_TAIL_BYTES` of the rest, and marks the cut. :func:`tail_lines` reads only
the end of a file.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

__all__ = ["LOG_HEAD_BYTES", "LOG_TAIL_BYTES", "CappedLog", "tail_lines"]

#: Bytes of a job's output kept from its start, and from its end; the middle is cut.
LOG_HEAD_BYTES = 1 << 20
LOG_TAIL_BYTES = 1 << 20
_CHUNK = 1 << 16


class CappedLog:
    """Pump a child's output stream into ``path`` in a thread, capped (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], head_bytes: int = LOG_HEAD_BYTES, tail_bytes: int = LOG_TAIL_BYTES) -> None:
        if head_bytes < 0 or tail_bytes < 0:
            raise ValueError("log caps must be non-negative byte counts")
        self.path = Path(path)
        self.head_bytes = head_bytes
        self.tail_bytes = tail_bytes
        self.written = 0
        self.cut = 0
        self._tail = bytearray()
        self._file: IO[bytes] = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._thread: threading.Thread | None = None

    def start(self, stream: IO[bytes]) -> CappedLog:
        self._thread = threading.Thread(target=self._pump, args=(stream,), name=f"log {self.path.name}", daemon=True)
        self._thread.start()
        return self

    def _pump(self, stream: IO[bytes]) -> None:
        fd = stream.fileno()
        while True:
            try:
                chunk = os.read(fd, _CHUNK)
            except OSError:
                break
            if not chunk:
                break
            room = self.head_bytes - self.written
            if room > 0:
                self._file.write(chunk[:room])
                self._file.flush()
                self.written += min(room, len(chunk))
                chunk = chunk[room:]
            if chunk:
                self._tail += chunk
                if len(self._tail) > self.tail_bytes:
                    drop = len(self._tail) - self.tail_bytes
                    del self._tail[:drop]
                    self.cut += drop

    def close(self, timeout: float = 10.0) -> None:
        """Wait for the stream's end, then write the kept tail (with a note of the cut)."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.cut:
            self._file.write(f"\n[odebench: {self.cut} bytes of output cut here; the log keeps the first {self.head_bytes} and the last {self.tail_bytes} bytes]\n".encode())
        self._file.write(bytes(self._tail))
        self._file.close()


def tail_lines(path: str | os.PathLike[str], lines: int = 25, max_bytes: int = 1 << 16) -> str | None:
    """The last ``lines`` lines of a file, reading at most its last ``max_bytes`` bytes."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line read is likely cut
    return "\n".join(text[-lines:]) or None
