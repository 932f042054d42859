"""OS processes for topology and chaos tests: started, watched, stopped or killed by pid.

Every process gets its own log file; a failing test shows the tails of all of them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

UNPRIVILEGED_UID = 65534  # nobody: initdb and postgres refuse to run as root
UNPRIVILEGED_GID = 65534


def as_unprivileged(argv: list[str]) -> list[str]:
    """`argv` run as nobody when we are root (setpriv from util-linux), as is otherwise."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("setpriv (util-linux) is needed to run PostgreSQL as non-root")
    return [
        setpriv,
        f"--reuid={UNPRIVILEGED_UID}",
        f"--regid={UNPRIVILEGED_GID}",
        "--clear-groups",
        "--",
        *argv,
    ]


def give_to_unprivileged(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_GID)


@dataclass
class ManagedProcess:
    """One child process in its own session (so a kill reaches only it and its children)."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process group: a crash, nothing cleaned up."""
        if self.popen is None:
            return
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout_s`; the exit code."""
        if self.popen is None:
            return None
        if self.alive:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def wait(self, timeout_s: float) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.wait(timeout_s)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def wait_until(check: object, what: str, timeout_s: float = 60.0, every_s: float = 0.1) -> None:
    """Poll `check()` until true; a safety net, not a timing assertion."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise TimeoutError(f"not within {timeout_s:.0f} s: {what}")
