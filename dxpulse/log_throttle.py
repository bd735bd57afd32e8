"""Log throttling: one record of each kind per interval, then one line saying how many were held back."""

from __future__ import annotations

import atexit
import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LOG_REPEAT_INTERVAL_S = 30.0
"""How long repeats of a logged record's kind are held back."""

MAX_KINDS = 10_000
"""Most kinds followed at once; past that, records pass untouched rather than grow memory without end."""

_DECIDED = "_dxpulse_log_throttle_decided"
"""Set on a record once decided, so a record reaching several handlers gets the same answer at each."""

Kind = tuple[str, str]
"""(logger name, message template): ``%s``-style arguments vary, the kind of record does not."""


@dataclass
class _Run:
    """The records of one kind since the first of them was let through."""

    started: float
    held: int = 0
    last: logging.LogRecord | None = None


def _kind(record: logging.LogRecord) -> Kind:
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__qualname__
    return (record.name, template)


class LogThrottle(logging.Filter):
    """Lets the first record of each (logger, message template) through and holds back its repeats for
    ``interval_s``; then logs one line, the last repeat's message ending "(repeated N times in the
    last 30 s)".

    A Kafka or PostgreSQL outage makes every connection attempt log the same few lines, thousands a
    second. One instance goes on every handler (``install_log_throttle``): a record that reaches
    several is decided once. The line for a run that has ended goes out with the next record that
    reaches the filter, of any kind, or, with ``background``, from a thread of its own as the run
    ends (the repeats may have stopped, and nothing else be logged for a long time).
    """

    def __init__(
        self,
        interval_s: float = LOG_REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = MAX_KINDS,
        *,
        background: bool = False,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._max_kinds = max_kinds
        self._background = background
        self._sweeper: threading.Thread | None = None
        # In the order the runs started, so the ended ones are always at the front.
        self._runs: dict[Kind, _Run] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        decided = record.__dict__.get(_DECIDED)
        if decided is not None:
            return bool(decided)
        kind = _kind(record)
        with self._lock:
            now = self._clock()
            ended = self._take_ended(now)
            run = self._runs.get(kind)
            if run is None:
                if len(self._runs) < self._max_kinds:
                    self._runs[kind] = _Run(now)
                passed = True
            else:
                run.held += 1
                run.last = record
                passed = False
                if self._background and self._sweeper is None:
                    self._sweeper = threading.Thread(target=self._sweep, name="log-throttle", daemon=True)
                    self._sweeper.start()
        record.__dict__[_DECIDED] = passed
        self._summarise(ended, now)
        return passed

    def flush(self) -> None:
        """Log the line of every run that held records back, ended or not, and forget them all."""
        with self._lock:
            now = self._clock()
            runs = list(self._runs.values())
            self._runs.clear()
        self._summarise(runs, now)

    def _sweep(self) -> None:
        """Log each run's line as it ends, for as long as some run holds records back."""
        while True:
            with self._lock:
                holding = next((run for run in self._runs.values() if run.held), None)
                if holding is None:
                    self._sweeper = None
                    return
                now = self._clock()
                wait = holding.started + self.interval_s - now
                ended = self._take_ended(now) if wait <= 0 else []
            if wait > 0:
                time.sleep(wait)
            self._summarise(ended, now)

    def _take_ended(self, now: float) -> list[_Run]:
        ended: list[_Run] = []
        while self._runs:
            kind, run = next(iter(self._runs.items()))
            if now - run.started < self.interval_s:
                break
            del self._runs[kind]
            ended.append(run)
        return ended

    def _summarise(self, runs: list[_Run], now: float) -> None:
        # Outside the lock: the summary goes through the handlers, and so through this filter again.
        for run in runs:
            if run.last is not None:
                summary = self.summary(run.last, run.held, min(self.interval_s, now - run.started))
                logging.getLogger(summary.name if summary.name != "root" else None).handle(summary)

    def summary(self, last: logging.LogRecord, held: int, seconds: float) -> logging.LogRecord:
        """The line standing for ``held`` records held back over ``seconds``, the last of them ``last``:
        that record, with its arguments (formatters may read them) and the count after its message."""
        times = "once" if held == 1 else f"{held} times"
        suffix = f" (repeated {times} in the last {math.ceil(seconds * 10) / 10:g} s)"
        template = last.msg if isinstance(last.msg, str) else str(last.msg)
        record = logging.makeLogRecord(dict(last.__dict__))
        record.msg = template + (suffix.replace("%", "%%") if last.args else suffix)
        record.exc_info = record.exc_text = record.stack_info = None
        now = time.time()
        record.relativeCreated = last.relativeCreated + (now - last.created) * 1000
        record.created, record.msecs = now, now % 1 * 1000
        record.__dict__[_DECIDED] = True
        return record


_shared: LogThrottle | None = None
_shared_lock = threading.Lock()


def shared_log_throttle() -> LogThrottle:
    """The process's throttle, made on first use; its pending lines are logged at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LogThrottle(background=True)
            # Registered after logging's own shutdown hook, so it runs first, with handlers still open.
            atexit.register(_flush_at_exit, _shared)
        return _shared


def _flush_at_exit(throttle: LogThrottle) -> None:
    """The last counts, with a stream already closed (a test runner's capture) not worth a traceback:
    logging.shutdown, which runs next, ignores such errors too."""
    logging.raiseExceptions = False
    throttle.flush()


def install_log_throttle() -> LogThrottle:
    """Put the shared throttle on every handler configured so far: the root logger's and any other
    logger's (uvicorn's, faust's). Call it again after anything adds handlers; it is added once."""
    throttle = shared_log_throttle()
    loggers = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if throttle not in handler.filters:
                handler.addFilter(throttle)
    return throttle


def throttled_dict_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a ``logging.config.dictConfig`` configuration whose handlers all carry the shared
    throttle: for servers that configure their own handlers when they start (uvicorn's log_config)."""
    throttled = copy.deepcopy(dict(config))
    throttled.setdefault("filters", {})["dxpulse_log_throttle"] = {"()": shared_log_throttle}
    for handler in throttled.get("handlers", {}).values():
        handler["filters"] = [*handler.get("filters", []), "dxpulse_log_throttle"]
    return throttled


def throttled_uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration (its ``log_config``) with the shared throttle on its handlers.

    Its access lines are the record's message, not rebuilt from the request's parts: the same text
    (but the status code's phrase), and a line standing for held-back repeats shows their count.
    """
    import uvicorn.config  # here: the faust workers, which log through this module too, run no uvicorn

    config = throttled_dict_config(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = "%(levelprefix)s %(message)s"
    return config
