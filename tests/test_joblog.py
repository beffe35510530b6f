"""A job's log is capped (head and tail kept, the cut marked) and its tail is read cheaply."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from odebench.joblog import CappedLog, tail_lines


def _pump(tmp_path: Path, script: str, head: int, tail: int) -> bytes:
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    log = CappedLog(tmp_path / "job.log", head_bytes=head, tail_bytes=tail).start(proc.stdout)
    proc.wait(timeout=60)
    log.close()
    return (tmp_path / "job.log").read_bytes()


def test_a_short_output_is_kept_whole(tmp_path: Path) -> None:
    assert _pump(tmp_path, "print('hello'); print('world')", 1000, 1000) == b"hello\nworld\n"


def test_a_long_output_keeps_head_and_tail_and_marks_the_cut(tmp_path: Path) -> None:
    text = _pump(tmp_path, "import sys\nfor i in range(200000): sys.stdout.write(f'line {i}\\n')", 4096, 4096)
    assert text.startswith(b"line 0\nline 1\n") and text.endswith(b"line 199999\n")
    assert b"bytes of output cut here" in text and len(text) < 4096 + 4096 + 200


def test_tail_lines_reads_only_the_end(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    with open(path, "wb") as fh:
        fh.write(b"x" * (8 << 20) + b"\n")
        fh.write(b"".join(f"line {i}\n".encode() for i in range(100)))
    assert tail_lines(path, lines=3, max_bytes=1 << 12) == "line 97\nline 98\nline 99"
    assert tail_lines(tmp_path / "missing.log") is None
    assert os.path.getsize(path) > 8 << 20
