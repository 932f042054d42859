"""uvicorn's and websockets' per-connection lines: dropped where the gateway logs its own."""

from __future__ import annotations

import contextvars
import logging

from gateway.upgrade_log import ANSWERED, AnsweredUpgradeFilter


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, args, None)


def test_lines_of_answered_upgrades_and_anonymous_lines_are_dropped():
    keep = AnsweredUpgradeFilter().filter
    accepted = _record('%s - "WebSocket %s" [accepted]', "1.2.3.4:5", "/ocpp/x")
    assert keep(accepted)  # another websocket app's upgrade keeps its line
    assert not keep(_record("connection open"))
    assert not keep(_record("connection closed"))

    def answered() -> list[bool]:
        ANSWERED.set(True)
        rejected = _record("connection rejected (%d %s)", 503, "Service Unavailable")
        error = _record("Exception in ASGI application\n")
        return [keep(accepted), keep(rejected), keep(error)]

    assert contextvars.copy_context().run(answered) == [False, False, True]
