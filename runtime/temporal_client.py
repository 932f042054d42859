"""The Temporal client of every role, with the TLS and API-key settings of an external cluster."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from runtime.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    """mTLS files, a private CA or a server name when set; plain TLS (the system's roots)
    for an API key alone, as Temporal Cloud expects; no TLS otherwise."""
    if not settings.temporal_uses_tls:
        return False
    cert, key, ca = (
        settings.temporal_tls_client_cert,
        settings.temporal_tls_client_key,
        settings.temporal_tls_server_ca_cert,
    )
    if cert is None and ca is None and settings.temporal_tls_server_name is None:
        return True
    return TLSConfig(
        client_cert=cert.read_bytes() if cert is not None else None,
        client_private_key=key.read_bytes() if key is not None else None,
        server_root_ca_cert=ca.read_bytes() if ca is not None else None,
        domain=settings.temporal_tls_server_name,
    )


async def connect_temporal(
    settings: Settings, address: str, *, runtime: Runtime | None = None
) -> Client:
    """One connection attempt; `runtime.readiness` retries it while the server is not up."""
    return await Client.connect(
        address,
        namespace=settings.temporal_namespace,
        tls=tls_config(settings),
        api_key=settings.temporal_api_key,
        runtime=runtime,
    )
