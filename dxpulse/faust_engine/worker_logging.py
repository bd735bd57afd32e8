"""The faust worker the dxpulse workers run: faust's own, its log handlers throttled and in the set format."""

from __future__ import annotations

import logging

import faust

from dxpulse.log_format import LogFormat, format_every_handler
from dxpulse.log_throttle import install_log_throttle


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
