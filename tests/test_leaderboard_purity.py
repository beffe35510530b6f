"""The leaderboard is a function of its records alone.

The published board is rendered in a fresh interpreter in which importing the tasks,
the registry or the objectives raises ImportError, and must come out byte for byte the
same, markdown and every PNG, as a render in a normal environment. So nothing on the
board can come from the installed tasks: only from the specs stored in the records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from odebench.data import manifest_hashes
from odebench.leaderboard import write_leaderboard

LEADERBOARD = Path(__file__).resolve().parents[1] / "leaderboard"
#: The newest board with records: the current one once re-run, else the newest archived one,
#: judged against the manifest archived with it.
PUBLISHED = next(
    b for b in [LEADERBOARD, *sorted((LEADERBOARD / "archive").iterdir(), reverse=True)]
    if (b / "results").is_dir() and any((b / "results").glob("*.json"))
)
FORBIDDEN = ("odebench.tasks", "odebench.registry", "odebench.objectives")

_CHILD = r"""
import importlib.abc
import json
import sys

args = json.loads(sys.stdin.read())
forbidden = tuple(args["forbidden"])


class RefuseForbidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == f or name.startswith(f + ".") for f in forbidden):
            raise ImportError(f"{name} is off limits while rendering the leaderboard")
        return None


sys.meta_path.insert(0, RefuseForbidden())

from odebench.leaderboard import write_leaderboard

report = write_leaderboard(args["results"], args["out"], current_hashes=args["hashes"])
leaked = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
refused = []
for name in forbidden:
    try:
        __import__(name)
    except ImportError:
        refused.append(name)
print(json.dumps({"leaked": leaked, "refused": refused, "n_excluded": report.n_excluded}))
"""


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_published_board_renders_without_tasks_registry_or_objectives(tmp_path: Path) -> None:
    hashes = manifest_hashes(PUBLISHED) if (PUBLISHED / "MANIFEST.json").is_file() else manifest_hashes()
    isolated, normal = tmp_path / "isolated", tmp_path / "normal"
    args = {"forbidden": FORBIDDEN, "results": str(PUBLISHED / "results"), "out": str(isolated / "README.md"), "hashes": hashes}
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(args), capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert child["refused"] == list(FORBIDDEN), "the import block did not hold, so the test proves nothing"
    assert child["leaked"] == [] and child["n_excluded"] == 0

    write_leaderboard(PUBLISHED / "results", normal / "README.md", current_hashes=hashes)
    got, want = _files(isolated), _files(normal)
    assert sorted(got) == sorted(want) and any(name.endswith(".png") for name in want)
    for name in want:
        assert got[name] == want[name], f"{name} differs when rendered without the tasks installed"
    assert got["README.md"] == (PUBLISHED / "README.md").read_bytes(), f"{PUBLISHED}/README.md is stale: regenerate it"
