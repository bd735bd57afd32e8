"""How every service writes its log lines: as text, or as one JSON object per line for a log collector."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from dxpulse.log_throttle import install_log_throttle, throttled_uvicorn_log_config

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
"""What every log record carries; anything else on a record came from the call's ``extra=``."""
_LEFT_OUT = frozenset({"color_message"})
"""Extras that repeat the message: uvicorn's coloured copy of it."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, RFC 3339), ``service``, ``level``,
    ``logger``, ``message``, then each field the call gave with ``extra=`` (``event_id``, ``key``, ...),
    and ``exception`` (the traceback) or ``stack`` where the record has one."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "service": self.service,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            extra = name not in _RECORD_FIELDS and name not in _LEFT_OUT and not name.startswith("_")
            if extra and name not in entry:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra such as a UUID or a path is written as its text, never refused.
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_formatter(service: str, log_format: LogFormat) -> logging.Formatter:
    """The formatter of ``log_format`` for ``service``'s lines."""
    return JsonFormatter(service) if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(service: str, log_format: LogFormat) -> None:
    """Log INFO and above to stderr in ``log_format``, through the shared log throttle."""
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter(service, log_format))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    install_log_throttle()


def format_every_handler(service: str, log_format: LogFormat) -> None:
    """Give every handler configured so far ``log_format``'s formatter: for a faust worker, whose
    mode replaces the root logger's handlers as it starts (``dxpulse.faust_engine.worker_logging``)."""
    if log_format == "text":
        return  # the worker's own text lines, as mode formats them
    formatter = log_formatter(service, log_format)
    loggers = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            handler.setFormatter(formatter)


def uvicorn_log_config(service: str, log_format: LogFormat) -> dict[str, Any]:
    """uvicorn's logging configuration with the log throttle on its handlers, its lines (access lines
    too) in ``log_format``."""
    config = throttled_uvicorn_log_config()
    if log_format == "json":
        config["formatters"] = {
            name: {"()": JsonFormatter, "service": service} for name in config["formatters"]
        }
    return config
