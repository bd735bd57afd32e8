"""The faust worker the dxpulse workers run: faust's own, its log handlers throttled and in the set format."""

from __future__ import annotations

import logging

import faust
from aiohttp.http_exceptions import HttpProcessingError

from dxpulse.log_format import LogFormat, format_every_handler
from dxpulse.log_throttle import install_log_throttle

WEB_SERVER_LOGGER = "aiohttp.server"
"""Where the workers' web server (aiohttp, serving /metrics) logs a request it could not handle."""


class MalformedRequests(logging.Filter):
    """A request that is not valid HTTP (a line too long, garbage bytes) is the client's error, not
    the worker's: aiohttp logs it as an ERROR with a traceback, which would page operators for any
    port scan. It becomes one WARNING line naming the client's mistake. Other errors pass as they are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            reason = " ".join(str(error.message).split())  # aiohttp's may span lines, with a caret
            record.msg = f"{record.getMessage()}: refused a malformed request ({error.code}: {reason})"
            record.args = ()  # a tuple, as mode's formatter expects; the message holds no more %-fields
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


MALFORMED_REQUESTS = MalformedRequests()


def quiet_malformed_requests() -> None:
    """Put ``MalformedRequests`` on the web server's logger (once)."""
    logger = logging.getLogger(WEB_SERVER_LOGGER)
    if MALFORMED_REQUESTS not in logger.filters:
        logger.addFilter(MALFORMED_REQUESTS)


class ThrottledWorker(faust.Worker):
    """faust's worker, putting ``install_log_throttle`` and the app's log format (DXPULSE_LOG_FORMAT,
    ``DxpulseApp.log_format``) on the handlers mode has just set up.

    mode replaces the root logger's handlers when the worker starts, after anything a service's
    ``__main__`` could configure: this hook is the first moment the handlers in use exist.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        log_format: LogFormat = getattr(self.app, "log_format", "text")
        format_every_handler(self.app.conf.id, log_format)
        install_log_throttle()
        quiet_malformed_requests()
