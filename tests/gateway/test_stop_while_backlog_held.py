"""A StopTransaction for a transaction whose row still waits in the backlog (started while
the database was down, the database just back): the charger is told to retry, not acked."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from ocpp.exceptions import InternalError

from gateway.backlog import DatabaseBacklog
from gateway.context import GatewayContext
from gateway.handlers import StationHandler

AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC).isoformat()


class _NoSuchRow:
    async def stop_transaction(self, *_: Any, **__: Any) -> tuple[None, bool]:
        return None, False


async def _held() -> None:
    return None


def _handler(backlog: DatabaseBacklog) -> StationHandler:
    ctx = SimpleNamespace(
        store=_NoSuchRow(), backlog=backlog, relay=SimpleNamespace(wake=lambda: None)
    )
    return StationHandler(
        "EVP-1",
        lambda _text: None,  # type: ignore[arg-type,return-value]
        cast(GatewayContext, ctx),
        registration="accepted",
        remote_address=None,
        connected_at=datetime.now(UTC),
    )


async def test_a_stop_is_not_acked_while_its_start_may_wait_in_the_backlog() -> None:
    backlog = DatabaseBacklog(max_writes=10, retry_first_s=1, retry_max_s=1)
    backlog.add("transaction 7", _held)
    with pytest.raises(InternalError):
        await _handler(backlog).on_stop_transaction(meter_stop=1500, timestamp=AT, transaction_id=7)


async def test_a_stop_for_an_unknown_transaction_is_acked_when_nothing_is_held() -> None:
    backlog = DatabaseBacklog(max_writes=10, retry_first_s=1, retry_max_s=1)
    answer = await _handler(backlog).on_stop_transaction(
        meter_stop=1500, timestamp=AT, transaction_id=7
    )
    assert answer is not None
