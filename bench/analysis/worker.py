"""Child-process entry point: ``python -m odebench.analysis.worker`` reads one analysis (JSON) on stdin.

The payload names the run record, the settings to override, the cache of true long
runs, the data directory and the thread count. The worker writes the analysis record
(ok or failed) next to the run record and prints one line; it dies with its parent.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from ..worker import die_with_parent

    die_with_parent()
    payload = json.loads(sys.stdin.read())
    from .analyse import analyse_to_file

    out = analyse_to_file(payload["record"], payload.get("config") or None, cache_dir=payload.get("cache_dir"), data_dir=payload.get("data_dir"), threads=int(payload.get("threads", 1)))
    print(f"{out['run']['file']}: {out['status']}" + (f" ({out['error']})" if out.get("error") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
