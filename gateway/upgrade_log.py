"""An upgrade the gateway answers is logged once, by the gateway: not again by uvicorn.

uvicorn's websockets-sansio protocol logs every upgrade it completes ('"WebSocket /ocpp/x"
[accepted]') and every denial response (the ASGI websocket denial extension) at info, and a
denial again at ERROR as "ASGI callable returned without completing handshake" (it never
marks such a handshake complete, uvicorn pull request 3138). The gateway's own line says
more (station, registration, reason), so one connect is one line. The gateway sets
`ANSWERED` in the connection's own task before it answers; this filter drops uvicorn's lines
for exactly those connections, so a line or an error from any other websocket app still
shows. The websockets library's anonymous "connection open" / "connection closed" go for all.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

ANSWERED: ContextVar[bool] = ContextVar("ocpp_upgrade_answered", default=False)

_UVICORN_LINES = (
    "ASGI callable returned without completing handshake.",
    '%s - "WebSocket %s" [accepted]',
    '%s - "WebSocket %s" %d',
    '%s - "WebSocket %s" 403',
    "connection rejected (%d %s)",  # the websockets library's own line for a denial
)
# The websockets library's lines for every connection (through uvicorn's logger): they name
# no peer and no path, so they tell an operator nothing, and cost two lines per charger.
_ANONYMOUS_LINES = ("connection open", "connection closed")


class AnsweredUpgradeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _ANONYMOUS_LINES:
            return False
        return not (ANSWERED.get() and record.msg in _UVICORN_LINES)


def install() -> None:
    """Idempotent: attach the filter to uvicorn's protocol logger once per process."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(item, AnsweredUpgradeFilter) for item in logger.filters):
        logger.addFilter(AnsweredUpgradeFilter())
