"""The Temporal side of `evpower migrate`: our namespace and search attributes, idempotently.

Safe to run on every deploy against the dev server, a self-hosted cluster and Temporal Cloud.
Cloud manages namespaces and search attributes through its own control plane (web UI, `tcld`,
cloud ops API), so there we only check and say what is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import structlog
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.contracts.search_attributes import SEARCH_ATTRIBUTES
from runtime.readiness import StartupError

log = structlog.get_logger(__name__)

T = TypeVar("T")

KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
NAMESPACE_RETENTION = timedelta(days=7)
# A namespace registered a moment ago is unknown to the other services of a cluster until
# their namespace caches refresh (about 10 s); adding search attributes waits for that.
NAMESPACE_PROPAGATION_S = 60.0
CLOUD_SUFFIXES = (".tmprl.cloud", ".api.temporal.io")
REFUSED = {RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED}


@dataclass
class SetupReport:
    namespace_created: bool = False
    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)


def is_temporal_cloud(address: str) -> bool:
    host = address.rpartition(":")[0].lower()
    return host.endswith(CLOUD_SUFFIXES)


async def ensure_temporal_setup(client: Client, address: str) -> SetupReport:
    """Create the namespace (where allowed) and register every missing search attribute."""
    report = SetupReport()
    namespace = client.namespace
    cloud = is_temporal_cloud(address)
    if not await _namespace_exists(client, namespace):
        if cloud:
            raise StartupError(
                f"Temporal Cloud namespace {namespace!r} not found: create it in the Cloud UI "
                "or with `tcld namespace create`, then set TEMPORAL_NAMESPACE to its full name"
            )
        await _register_namespace(client, namespace)
        report.namespace_created = True
    existing = await _custom_attributes(client, namespace)
    for name in SEARCH_ATTRIBUTES:
        kind = existing.get(name)
        if kind == KEYWORD:
            report.present.append(name)
        elif kind is not None:
            raise StartupError(
                f"search attribute {name} exists in {namespace!r} with type "
                f"{IndexedValueType.Name(kind)}, EvPower needs Keyword"
            )
    missing = [name for name in SEARCH_ATTRIBUTES if name not in report.present]
    if missing and cloud:
        raise StartupError(_cloud_instructions(namespace, missing))
    if missing:
        await _add_attributes(client, namespace, missing)
        report.added = missing
    log.info(
        "temporal namespace ready",
        namespace=namespace,
        namespace_created=report.namespace_created,
        search_attributes_added=report.added,
        search_attributes_present=report.present,
    )
    return report


def _cloud_instructions(namespace: str, missing: list[str]) -> str:
    flags = " ".join(f"--sa '{name}=Keyword'" for name in missing)
    return (
        f"Temporal Cloud manages search attributes itself: add {', '.join(missing)} (Keyword) "
        f"to {namespace!r} in the Cloud UI or with "
        f"`tcld namespace search-attributes add -n {namespace} {flags}`, then run migrate again"
    )


async def _namespace_exists(client: Client, namespace: str) -> bool:
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def _register_namespace(client: Client, namespace: str) -> None:
    retention = Duration()
    retention.FromTimedelta(NAMESPACE_RETENTION)
    created = await _admin_call(
        lambda: client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace,
                description="EvPower charging sessions and top-ups",
                workflow_execution_retention_period=retention,
            )
        ),
        lambda status: (
            f"Temporal refused to create namespace {namespace!r} ({status}): "
            "create it with the cluster's admin tools (temporal operator namespace create)"
        ),
        exists_ok=True,  # another migrate won the race
    )
    if created is None:
        return
    log.info("temporal namespace created", namespace=namespace, retention=str(NAMESPACE_RETENTION))


async def _custom_attributes(
    client: Client, namespace: str
) -> dict[str, IndexedValueType.ValueType]:
    response = await _admin_call(
        lambda: _once_namespace_known(
            lambda: client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
        ),
        lambda status: (
            f"cannot list search attributes of {namespace!r} ({status}); "
            f"make sure {', '.join(SEARCH_ATTRIBUTES)} exist as Keyword"
        ),
    )
    assert response is not None  # only ALREADY_EXISTS, not expected here, answers None
    return dict(response.custom_attributes)


async def _add_attributes(client: Client, namespace: str, names: list[str]) -> None:
    request = AddSearchAttributesRequest(
        search_attributes=dict.fromkeys(names, KEYWORD), namespace=namespace
    )
    await _admin_call(
        lambda: _once_namespace_known(
            lambda: client.operator_service.add_search_attributes(request)
        ),
        lambda status: (
            f"Temporal refused to add search attributes ({status}): "
            f"add {', '.join(names)} as Keyword with "
            "`temporal operator search-attribute create`"
        ),
        exists_ok=True,  # a concurrent migrate added them
    )


async def _admin_call(
    call: Callable[[], Awaitable[T]], refused: Callable[[str], str], *, exists_ok: bool = False
) -> T | None:
    """`call()`, an administrative request to the cluster. With `exists_ok`, ALREADY_EXISTS is
    None (done by someone else); a cluster that does not let us (REFUSED) is a StartupError
    whose message is `refused(status name)`, saying what to do instead."""
    try:
        return await call()
    except RPCError as exc:
        if exists_ok and exc.status == RPCStatusCode.ALREADY_EXISTS:
            return None
        if exc.status in REFUSED:
            raise StartupError(refused(exc.status.name)) from None
        raise


async def _once_namespace_known(call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, retried while the cluster still answers NOT_FOUND for a new namespace."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + NAMESPACE_PROPAGATION_S
    while True:
        try:
            return await call()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND or loop.time() > deadline:
                raise
        await asyncio.sleep(0.5)
