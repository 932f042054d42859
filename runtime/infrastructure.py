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


def embedded_postgres_for(settings: Settings) -> EmbeddedPostgres | None:
    """The embedded server to use (None with DATABASE_URL): the one already running in the
    data dir, attached, or a new one this process owns. Not started yet."""
    if settings.database_url is not None:
        return None
    attached = EmbeddedPostgres(settings.evpower_data_dir, own=False)
    return attached if attached.is_running() else EmbeddedPostgres(settings.evpower_data_dir)


def database_url_for(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The database URL, starting embedded PostgreSQL when none runs; (url, owned server)."""
    postgres = embedded_postgres_for(settings)
    if postgres is None:
        assert settings.database_url is not None
        return settings.database_url, None
    return postgres.start(), postgres if postgres.own else None


async def start_infrastructure(
    settings: Settings, *, temporal_ui: bool = False, start_temporal: bool = True
) -> Infrastructure:
    postgres = embedded_postgres_for(settings)
    owned_postgres = postgres if postgres is not None and postgres.own else None
    infra = Infrastructure(database_url="", temporal_address="", postgres=owned_postgres)
    # The watchdog comes first, so a kill during start-up (initdb takes seconds) still
    # stops the PostgreSQL we are starting; Temporal dies with us through PDEATHSIG.
    infra._watchdog = _start_watchdog(owned_postgres)
    try:
        if postgres is not None:
            infra.database_url = postgres.start()
        else:
            assert settings.database_url is not None
            infra.database_url = settings.database_url
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
    except BaseException:
        infra.stop()
        raise
    return infra


def _start_watchdog(postgres: EmbeddedPostgres | None) -> subprocess.Popen[bytes] | None:
    """A detached child that stops our PostgreSQL if we die without cleaning up."""
    if postgres is None:
        return None
    args = [sys.executable, "-m", "runtime.watchdog", "--parent", str(os.getpid())]
    args += ["--pgdata", str(postgres.pgdata)]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
