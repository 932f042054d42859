"""The production topology on one machine: external PostgreSQL and Temporal, then exactly the
commands docker-compose.yml runs (`evpower migrate`, `evpower serve --role gateway|api`,
`evpower worker`), each role a separate OS process on its own port.

Reusable: the chaos suite starts a Topology, then kills and restarts its parts by name.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runtime.embedded import free_port
from tests.topology import world
from tests.topology.processes import ManagedProcess, wait_until
from tests.topology.servers import ExternalPostgres, ExternalTemporal

JWT_SECRET = "topology-jwt-secret-0123456789abcdef-xyz"
NAMESPACE = "evpower-topology"
# The proxy (Traefik in compose) is the test itself, on loopback.
TRUSTED_PROXY = "127.0.0.1"


def evpower_binary() -> str:
    return str(Path(sys.executable).parent / "evpower")


@dataclass
class Role:
    """One `evpower` process: its command, its port and its log."""

    name: str
    command: list[str]
    port: int
    process: ManagedProcess

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        if not self.process.alive:
            raise RuntimeError(f"{self.name} exited:\n{self.process.tail()}")
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, wait: bool = True) -> Role:
        self.process.start()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout_s: float = 90.0) -> None:
        wait_until(self.healthy, f"{self.name} healthy", timeout_s, every_s=0.2)

    def log_events(self) -> list[dict[str, object]]:
        """The process's JSON log lines (other output skipped)."""
        events = []
        for line in self.process.log_text().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events


@dataclass
class Topology:
    root: Path
    postgres: ExternalPostgres
    temporal: ExternalTemporal
    roles: dict[str, Role] = field(default_factory=dict)
    # The address clients, the provider's webhook and the simulated provider's callers use
    # (Traefik's in compose). None: each process names its own port.
    public_base_url: str | None = None

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def env(self, port: int) -> dict[str, str]:
        """What compose's env file gives every EvPower service (plus its own port)."""
        return {
            "DATABASE_URL": self.postgres.url,
            "TEMPORAL_ADDRESS": self.temporal.address,
            "TEMPORAL_NAMESPACE": NAMESPACE,
            "SUPABASE_JWT_SECRET": JWT_SECRET,
            "PAYMENT_PROVIDER": "SIMULATED",
            "PUBLIC_BASE_URL": self.public_base_url or f"http://127.0.0.1:{port}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "FORWARDED_ALLOW_IPS": TRUSTED_PROXY,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "METER_SIGNAL_INTERVAL_S": "1",
            "EVPOWER_DATA_DIR": str(self.root / "data"),
            "DEPENDENCY_WAIT_S": "120",
            "OCPP_KEY_PEPPER": world.KEY_PEPPER,
        }

    def command(self, name: str, *args: str, port: int | None = None) -> Role:
        port = port or free_port()
        argv = [evpower_binary(), *args]
        process = ManagedProcess(name, argv, self.logs / f"{name}.log", env=self.env(port))
        role = Role(name, list(args), port, process)
        self.roles[name] = role
        return role

    def migrate(self, timeout_s: float = 120.0) -> ManagedProcess:
        """`evpower migrate` to completion (compose's one-shot job)."""
        role = self.command("migrate", "migrate")
        role.process.start()
        code = role.process.wait(timeout_s)
        if code != 0:
            raise RuntimeError(f"evpower migrate exited {code}:\n{role.process.tail()}")
        return role.process

    def __getitem__(self, name: str) -> Role:
        return self.roles[name]

    def start_roles(self, gateways: int = 2, apis: int = 2, workers: int = 2) -> None:
        """Start every role at once (as compose does after migrate) and wait until healthy."""
        started: list[Role] = []
        for index in range(1, gateways + 1):
            started.append(self.command(f"gateway{index}", "serve", "--role", "gateway"))
        for index in range(1, apis + 1):
            started.append(self.command(f"api{index}", "serve", "--role", "api"))
        for index in range(1, workers + 1):
            started.append(self.command(f"worker{index}", "worker"))
        for role in started:
            role.start(wait=False)
        for role in started:
            role.wait_healthy()

    def stop(self) -> None:
        for role in reversed(self.roles.values()):
            role.process.stop()
        self.temporal.stop()
        self.postgres.stop()

    def tails(self) -> str:
        parts = [f"== {role.name}\n{role.process.tail(15)}" for role in self.roles.values()]
        for server in (self.postgres.process, self.temporal.process):
            if server is not None:
                parts.append(f"== {server.name}\n{server.tail(10)}")
        return "\n".join(parts)


@contextmanager
def external_servers(root: Path | None = None) -> Iterator[Topology]:
    """PostgreSQL and Temporal up, nothing of EvPower yet."""
    root = root or Path(tempfile.mkdtemp(prefix="evp-topology-"))
    logs = root / "logs"
    postgres = ExternalPostgres(logs)
    temporal = ExternalTemporal(logs)
    topology = Topology(root, postgres, temporal)
    try:
        postgres.start()
        temporal.start()
        yield topology
    finally:
        topology.stop()
