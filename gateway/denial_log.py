"""A refused upgrade is logged once, by the gateway, at info: not again by uvicorn.

uvicorn's websockets-sansio protocol logs every denial response (the ASGI websocket
denial extension) once at info and then, because it never marks such a handshake as
complete, again at ERROR as "ASGI callable returned without completing handshake"
(uvicorn pull request 3138). The gateway sets `DENIED` in the connection's own task
before it answers; this filter drops uvicorn's lines for exactly those connections, so
an error from any other websocket app still shows.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

DENIED: ContextVar[bool] = ContextVar("ocpp_upgrade_denied", default=False)

_UVICORN_LINES = (
    "ASGI callable returned without completing handshake.",
    '%s - "WebSocket %s" %d',
    '%s - "WebSocket %s" 403',
)


class DeniedUpgradeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (DENIED.get() and record.msg in _UVICORN_LINES)


def install() -> None:
    """Idempotent: attach the filter to uvicorn's protocol logger once per process."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(item, DeniedUpgradeFilter) for item in logger.filters):
        logger.addFilter(DeniedUpgradeFilter())
