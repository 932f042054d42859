"""PostgreSQL and Temporal for a process: the configured servers, or embedded ones.

Unset DATABASE_URL / TEMPORAL_ADDRESS mean embedded: a process attaches to the embedded
servers `evpower dev` already runs in the data dir, or starts (and later stops) its own.
A watchdog child stops the servers we started even if this process is killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

import structlog

from runtime.embedded import EmbeddedPostgres, EmbeddedTemporal, port_is_open
from runtime.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class Infrastructure:
    database_url: str
    temporal_address: str
    postgres: EmbeddedPostgres | None = None
    temporal: EmbeddedTemporal | None = None
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.temporal is not None:
            self.temporal.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self._watchdog is not None and self._watchdog.poll() is None:
            self._watchdog.terminate()
            self._watchdog.wait(5)


def database_url_for(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The database URL, starting embedded PostgreSQL when none runs; (url, owned server)."""
    if settings.database_url is not None:
        return settings.database_url, None
    data_dir = settings.evpower_data_dir
    attached = EmbeddedPostgres(data_dir, own=False)
    if attached.is_running():
        return attached.start(), None
    owned = EmbeddedPostgres(data_dir, own=True)
    return owned.start(), owned


async def start_infrastructure(
    settings: Settings, *, temporal_ui: bool = False, start_temporal: bool = True
) -> Infrastructure:
    database_url, postgres = database_url_for(settings)
    infra = Infrastructure(database_url=database_url, temporal_address="", postgres=postgres)
    try:
        if settings.temporal_address is not None:
            infra.temporal_address = settings.temporal_address
        elif port_is_open("127.0.0.1", settings.embedded_temporal_port) or not start_temporal:
            # `evpower dev` (or another process) already runs the embedded server: share it.
            infra.temporal_address = f"127.0.0.1:{settings.embedded_temporal_port}"
        else:
            infra.temporal = EmbeddedTemporal(
                settings.evpower_data_dir,
                port=settings.embedded_temporal_port,
                ui_port=settings.temporal_ui_port if temporal_ui else None,
                namespace=settings.temporal_namespace,
            )
            infra.temporal_address = await infra.temporal.start()
        infra._watchdog = _start_watchdog(infra)
    except BaseException:
        infra.stop()
        raise
    return infra


def _start_watchdog(infra: Infrastructure) -> subprocess.Popen[bytes] | None:
    """A detached child that stops what we started if we die without cleaning up."""
    args = [sys.executable, "-m", "runtime.watchdog", "--parent", str(os.getpid())]
    if infra.temporal is not None and infra.temporal.pid is not None:
        args += ["--pid", str(infra.temporal.pid)]
    if infra.postgres is not None:
        args += ["--pgdata", str(infra.postgres.pgdata)]
    if len(args) == 5:  # nothing of ours to watch
        return None
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
