"""What the gateway under test needs: a real PostgreSQL with stations, a real Temporal."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert

from db.engine import create_engine
from db.migrate import upgrade_sync
from db.models import Connector, Station
from gateway.auth import ChargerKeys
from runtime.embedded import EmbeddedPostgres, EmbeddedTemporal, free_port

BATCH = 2_000
# The benchmark deployment's OCPP_KEY_PEPPER: a throwaway database, a throwaway secret.
BENCHMARK_KEY_PEPPER = "benchmark-pepper-0123456789abcdef-not-a-secret"


def start_postgres(data_dir: Path) -> tuple[EmbeddedPostgres, str]:
    server = EmbeddedPostgres(data_dir, own=True)
    url = server.start()
    upgrade_sync(url)
    return server, url


async def seed_stations(url: str, prefix: str, count: int, *, password: str | None = None) -> None:
    """`count` accepted stations `{prefix}00001...`, one connector each, all with one
    key hash (under BENCHMARK_KEY_PEPPER, which benchmarks/gateway_server.py configures)."""
    keys = ChargerKeys(BENCHMARK_KEY_PEPPER.encode())
    password_hash = keys.hash(password) if password is not None else None
    engine = create_engine(url, pool_size=1)
    ids = [f"{prefix}{number:05d}" for number in range(1, count + 1)]
    try:
        async with engine.begin() as connection:
            for start in range(0, count, BATCH):
                chunk = ids[start : start + BATCH]
                await connection.execute(
                    insert(Station),
                    [
                        {
                            "id": station_id,
                            "name": station_id,
                            "price_tyiyn_per_kwh": 1_500,
                            "password_hash": password_hash,
                            "registration_status": "accepted",
                        }
                        for station_id in chunk
                    ],
                )
                await connection.execute(
                    insert(Connector),
                    [{"station_id": station_id, "connector_id": 1} for station_id in chunk],
                )
    finally:
        await engine.dispose()


async def start_temporal(data_dir: Path) -> EmbeddedTemporal:
    temporal = EmbeddedTemporal(data_dir, port=free_port(), ui_port=None, persistent=False)
    await temporal.start()
    return temporal


@dataclass(frozen=True)
class Infra:
    work: Path  # the run's directory: data dirs, logs
    database_url: str
    temporal_address: str


@contextmanager
def embedded_infra(prefix: str, *, keep: bool) -> Iterator[Infra]:
    """A fresh work dir with a migrated PostgreSQL and a Temporal dev server in it; both are
    stopped on exit, and the dir removed unless `keep`."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    postgres, database_url = start_postgres(work)
    temporal = None
    try:
        temporal = asyncio.run(start_temporal(work))
        yield Infra(work, database_url, temporal.address)
    finally:
        if temporal is not None:
            temporal.stop()
        postgres.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
