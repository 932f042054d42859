"""Child processes of the benchmark: a server under test and the load client, with timeouts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil

ROOT = Path(__file__).resolve().parent.parent


def python_module(argv: list[str], log: IO[bytes], *, stdin: int) -> subprocess.Popen[str]:
    """`python -m argv...` from the repository root: its stdout a text pipe (the protocol with
    the benchmark), its stderr the log."""
    return subprocess.Popen(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )


class ServerProcess:
    """A server (bare echo or gateway) in its own process; `ready` on stdout means listening."""

    def __init__(self, name: str, argv: list[str], log_path: Path, port: int) -> None:
        self.name = name
        self.port = port
        self._log = log_path.open("ab")
        self._process = python_module(argv, self._log, stdin=subprocess.DEVNULL)
        self.pid = self._process.pid
        self._ps = psutil.Process(self.pid)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if line.strip() == "ready":
                return
            if not line and self._process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"{self.name} did not start; see {self._log.name}")

    def rss(self) -> int:
        return int(self._ps.memory_info().rss)

    def cpu_s(self) -> float:
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def wait_quiet(self, *, below: float = 0.05, timeout_s: float = 60.0) -> None:
        """Wait until the server uses less than `below` of a core (connect work finished)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            before = self.cpu_s()
            time.sleep(1.0)
            if self.cpu_s() - before < below:
                return

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()


class LoadClient:
    """Runs benchmarks.load_client with a spec; calls `on_event` for each event it emits."""

    def __init__(
        self, spec: dict[str, Any], log_path: Path, module: str = "benchmarks.load_client"
    ) -> None:
        self._log = log_path.open("ab")
        self._process = python_module([module, json.dumps(spec)], self._log, stdin=subprocess.PIPE)
        self.pid = self._process.pid

    def run(self, on_event: Callable[[dict[str, Any]], None], timeout_s: float) -> dict[str, Any]:
        """Feed events to `on_event` (which may block, e.g. to measure); return the result.
        After `warm` and `ready` the client waits: `on_event` returns, then we say go."""
        stdout: IO[str] | None = self._process.stdout
        stdin: IO[str] | None = self._process.stdin
        assert stdout is not None and stdin is not None
        # A hung client must not hang the benchmark: it is killed at the deadline.
        watchdog = threading.Timer(timeout_s, self._process.kill)
        watchdog.start()
        result: dict[str, Any] | None = None
        try:
            for line in stdout:
                event = json.loads(line)
                on_event(event)
                if event["event"] in ("warm", "ready"):
                    stdin.write("go\n")
                    stdin.flush()
                elif event["event"] == "result":
                    result = event
            self._process.wait(30)
        finally:
            watchdog.cancel()
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._log.close()
        if result is None:
            raise RuntimeError(
                f"load client gave no result (killed after {timeout_s:.0f} s?); "
                f"see {self._log.name}"
            )
        return result
