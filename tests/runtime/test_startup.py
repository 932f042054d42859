"""Start-up against real servers: Temporal TLS/API-key settings, waiting with backoff, the
schema check, and the idempotent Temporal namespace setup of `evpower migrate`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from domain.contracts.search_attributes import SEARCH_ATTRIBUTES
from runtime import readiness
from runtime.readiness import StartupError, check_schema, with_backoff
from runtime.settings import ConfigError, load_settings
from runtime.temporal_client import tls_config
from runtime.temporal_setup import ensure_temporal_setup, is_temporal_cloud


def test_a_missing_certificate_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^invalid setting TEMPORAL_TLS_CLIENT_CERT: "):
        load_settings(
            temporal_address="t:7233", temporal_tls_client_cert=str(tmp_path / "none.pem")
        )


def test_a_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("cert")
    with pytest.raises(ConfigError, match="TEMPORAL_TLS_CLIENT_KEY"):
        load_settings(temporal_address="t:7233", temporal_tls_client_cert=str(cert))


def test_tls_settings_need_an_external_temporal() -> None:
    with pytest.raises(ConfigError, match="TEMPORAL_ADDRESS"):
        load_settings(temporal_address="", temporal_api_key="key")


def test_tls_configuration(tmp_path: Path) -> None:
    assert tls_config(load_settings(temporal_address="t:7233")) is False
    # Temporal Cloud with an API key: TLS with the system's roots.
    cloud = load_settings(temporal_address="ns.acct.tmprl.cloud:7233", temporal_api_key="k")
    assert tls_config(cloud) is True
    (tmp_path / "c.pem").write_bytes(b"CERT")
    (tmp_path / "k.pem").write_bytes(b"KEY")
    (tmp_path / "ca.pem").write_bytes(b"CA")
    mtls = load_settings(
        temporal_address="temporal.internal:7233",
        temporal_tls_client_cert=str(tmp_path / "c.pem"),
        temporal_tls_client_key=str(tmp_path / "k.pem"),
        temporal_tls_server_ca_cert=str(tmp_path / "ca.pem"),
        temporal_tls_server_name="temporal",
    )
    assert tls_config(mtls) == TLSConfig(
        client_cert=b"CERT", client_private_key=b"KEY", server_root_ca_cert=b"CA", domain="temporal"
    )


async def test_waiting_backs_off_then_succeeds() -> None:
    pauses: list[float] = []
    failures = [OSError("connection refused"), OSError("connection refused")]

    async def attempt() -> str:
        if failures:
            raise failures.pop()
        return "up"

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    assert await with_backoff("PostgreSQL", attempt, wait_s=0, where="db", sleep=sleep) == "up"
    assert pauses == [0.5, 1.0]


async def test_waiting_gives_up_naming_the_dependency() -> None:
    async def attempt() -> None:
        raise OSError("connection refused")

    async def sleep(_: float) -> None:
        return None

    with pytest.raises(StartupError, match=r"^Temporal at t:7233 not reachable after 0 s"):
        await with_backoff("Temporal", attempt, wait_s=0.01, where="t:7233", sleep=sleep)


@pytest.mark.integration
async def test_a_schema_behind_the_code_says_run_migrate(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await check_schema(engine)  # at head: nothing to say
    current = await readiness.schema_revision(engine)
    monkeypatch.setattr(readiness, "heads", lambda: ["9999_newer"])
    monkeypatch.setattr("alembic.script.ScriptDirectory.get_revision", lambda self, rev: object())
    with pytest.raises(StartupError, match=rf"\({current}\) is behind .* run `evpower migrate`"):
        await check_schema(engine)


@pytest.mark.integration
async def test_a_schema_newer_than_the_code_is_refused(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, "heads", lambda: ["0001_older"])
    monkeypatch.setattr("alembic.script.ScriptDirectory.get_revision", lambda self, rev: None)
    with pytest.raises(StartupError, match="newer than this EvPower"):
        await check_schema(engine)


@pytest.mark.integration
async def test_temporal_setup_is_idempotent(temporal_env: WorkflowEnvironment) -> None:
    report = await ensure_temporal_setup(temporal_env.client, "127.0.0.1:7233")
    assert not report.namespace_created
    assert (report.added, report.present) == ([], list(SEARCH_ATTRIBUTES))


def test_temporal_cloud_is_recognised_by_its_address() -> None:
    assert is_temporal_cloud("prod.a1b2c.tmprl.cloud:7233")
    assert is_temporal_cloud("eu-west-1.aws.api.temporal.io:7233")
    assert not is_temporal_cloud("temporal:7233")
