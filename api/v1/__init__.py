"""REST v1 routers, one module per domain; `ROUTERS` is what the app factory mounts."""

from __future__ import annotations

from fastapi import APIRouter

from api.v1 import (
    balance,
    card_payment,
    cards,
    charging,
    locations,
    ops,
    payment,
    receipts,
    session_stream,
    stations,
)

ROUTERS: list[APIRouter] = []
ROUTERS.append(stations.router)
ROUTERS.append(locations.router)
ROUTERS.append(balance.router)
ROUTERS.append(payment.router)
ROUTERS.append(card_payment.router)
ROUTERS.append(charging.router)
ROUTERS.append(cards.router)
ROUTERS.append(receipts.router)
ROUTERS.append(ops.router)
ROUTERS.append(session_stream.router)
