"""The log throttle: the first record of a kind passes, its repeats are counted, one line says how many."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uvicorn.logging import AccessFormatter

from dxpulse.log_throttle import (
    LogThrottle,
    install_log_throttle,
    shared_log_throttle,
    throttled_dict_config,
    throttled_uvicorn_log_config,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Lines(logging.Handler):
    """Keeps each record's message."""

    def __init__(self, throttle: LogThrottle | None = None) -> None:
        super().__init__()
        self.lines: list[str] = []
        if throttle is not None:
            self.addFilter(throttle)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _logger(*handlers: logging.Handler) -> logging.Logger:
    """A logger of its own (nothing else logs to it), kept from pytest's handlers on the root."""
    logger = logging.getLogger(f"test-log-throttle.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    for handler in handlers:
        logger.addHandler(handler)
    return logger


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_the_first_passes_and_one_line_counts_the_repeats_once_the_interval_is_over(clock: Clock) -> None:
    lines = Lines(LogThrottle(30, clock))
    log = _logger(lines)
    for node in range(1, 5):
        log.error("Unable connect to node with id %s", node)
        clock.now += 1
    assert lines.lines == ["Unable connect to node with id 1"]
    clock.now = 31
    log.error("Unable connect to node with id %s", 5)
    assert lines.lines == [
        "Unable connect to node with id 1",
        "Unable connect to node with id 4 (repeated 3 times in the last 30 s)",
        "Unable connect to node with id 5",
    ]


def test_a_single_repeat_is_said_once(clock: Clock) -> None:
    throttle = LogThrottle(30, clock)
    lines = Lines(throttle)
    log = _logger(lines)
    log.warning("retrying")
    clock.now = 12
    log.warning("retrying")
    throttle.flush()  # before the interval is over: the time so far
    assert lines.lines == ["retrying", "retrying (repeated once in the last 12 s)"]


def test_kinds_are_told_apart_by_logger_and_template(clock: Clock) -> None:
    throttle = LogThrottle(30, clock)
    lines = Lines(throttle)
    first, second = _logger(lines), _logger(lines)
    for _ in range(3):
        first.warning("Got error produce response: %s", "NodeNotReady")
        first.warning("Unable to update metadata from %s", [1])
        second.warning("Got error produce response: %s", "NodeNotReady")
    assert lines.lines == [
        "Got error produce response: NodeNotReady",
        "Unable to update metadata from [1]",
        "Got error produce response: NodeNotReady",
    ]


def test_a_run_that_ended_is_summed_up_by_the_next_record_of_any_kind(clock: Clock) -> None:
    lines = Lines(LogThrottle(30, clock))
    log = _logger(lines)
    log.error("Kafka down: %s", "refused")
    log.error("Kafka down: %s", "refused")
    clock.now = 45
    log.info("connected to Kafka")
    assert lines.lines == [
        "Kafka down: refused",
        "Kafka down: refused (repeated once in the last 30 s)",
        "connected to Kafka",
    ]


def test_a_run_with_nothing_held_back_ends_without_a_line(clock: Clock) -> None:
    lines = Lines(LogThrottle(30, clock))
    log = _logger(lines)
    log.info("pruned %d ids", 5)
    clock.now = 31
    log.info("pruned %d ids", 7)
    assert lines.lines == ["pruned 5 ids", "pruned 7 ids"]


def test_a_record_reaching_several_handlers_is_decided_once(clock: Clock) -> None:
    throttle = LogThrottle(30, clock)
    own, parents = Lines(throttle), Lines(throttle)
    parent = _logger(parents)
    child = logging.getLogger(f"{parent.name}.child")
    child.addHandler(own)
    for _ in range(3):
        child.warning("the same thing")
    clock.now = 31
    child.warning("the same thing")
    expected = [
        "the same thing",
        "the same thing (repeated 2 times in the last 30 s)",
        "the same thing",
    ]
    assert own.lines == expected
    assert parents.lines == expected


def test_the_summary_has_no_traceback_and_the_time_it_is_logged(clock: Clock) -> None:
    throttle = LogThrottle(30, clock)
    seen: list[logging.LogRecord] = []

    class Records(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Records()
    handler.addFilter(throttle)
    log = _logger(handler)
    for _ in range(2):
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError:
            log.exception("Unexpected error in sender routine")
    before = time.time()
    clock.now = 30
    throttle.flush()
    first, summary = seen
    assert first.exc_info is not None
    assert summary.exc_info is None
    assert summary.getMessage() == "Unexpected error in sender routine (repeated once in the last 30 s)"
    assert summary.created >= before


def test_the_summary_keeps_the_arguments_for_formatters_that_read_them(clock: Clock) -> None:
    """uvicorn's access formatter unpacks the record's arguments; with the message in its format (as
    ``throttled_uvicorn_log_config`` has it), the count shows."""
    throttle = LogThrottle(30, clock)
    lines = Lines(throttle)
    lines.setFormatter(AccessFormatter("%(levelprefix)s %(message)s", use_colors=False))
    log = _logger(lines)
    for status in (202, 503, 503):
        log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", "/v1/reports", "1.1", status)
    clock.now = 30
    throttle.flush()
    assert lines.lines == [
        'INFO:     127.0.0.1:5000 - "POST /v1/reports HTTP/1.1" 202',
        'INFO:     127.0.0.1:5000 - "POST /v1/reports HTTP/1.1" 503 (repeated 2 times in the last 30 s)',
    ]


def test_past_the_most_kinds_followed_records_pass_untouched(clock: Clock) -> None:
    lines = Lines(LogThrottle(30, clock, max_kinds=1))
    log = _logger(lines)
    for _ in range(2):
        log.info("followed")
        log.info("not followed")
    assert lines.lines == ["followed", "not followed", "not followed"]


def test_in_the_background_the_line_comes_when_the_run_ends_though_nothing_else_is_logged() -> None:
    lines = Lines(LogThrottle(0.2, background=True))
    log = _logger(lines)
    for _ in range(4):
        log.warning("Unable to update metadata")
    deadline = time.monotonic() + 10
    while len(lines.lines) < 2:
        assert time.monotonic() < deadline, lines.lines
        time.sleep(0.05)
    assert lines.lines == [
        "Unable to update metadata",
        "Unable to update metadata (repeated 3 times in the last 0.2 s)",
    ]


@pytest.fixture
def shared() -> Iterator[LogThrottle]:
    """The shared throttle, taken off every handler it was put on by the test."""
    throttle = shared_log_throttle()
    yield throttle
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            handler.removeFilter(throttle)


def test_install_puts_the_shared_throttle_on_every_handler_once(shared: LogThrottle) -> None:
    handler = Lines()
    log = _logger(handler)
    assert install_log_throttle() is shared
    install_log_throttle()
    assert handler.filters == [shared]
    assert all(shared in h.filters for h in logging.getLogger().handlers)
    log.removeHandler(handler)


def test_a_dict_config_gets_the_shared_throttle_on_each_handler(shared: LogThrottle) -> None:
    config: dict[str, Any] = {
        "version": 1,
        "filters": {"mine": {"()": "logging.Filter"}},
        "handlers": {
            "a": {"class": "logging.NullHandler", "filters": ["mine"]},
            "b": {"class": "logging.NullHandler"},
        },
    }
    throttled = throttled_dict_config(config)
    assert throttled["handlers"]["a"]["filters"] == ["mine", "dxpulse_log_throttle"]
    assert throttled["handlers"]["b"]["filters"] == ["dxpulse_log_throttle"]
    assert throttled["filters"]["dxpulse_log_throttle"]["()"]() is shared
    assert "filters" not in config["handlers"]["b"]  # a copy: uvicorn's own stays as it was


def test_uvicorn_access_lines_are_their_message(shared: LogThrottle) -> None:
    config = throttled_uvicorn_log_config()
    assert config["formatters"]["access"]["fmt"] == "%(levelprefix)s %(message)s"
    assert {"dxpulse_log_throttle"} <= {f for h in config["handlers"].values() for f in h["filters"]}


FAUST_WORKER_LOGGING = """
import logging, sys
from pathlib import Path
from dxpulse.faust_engine.support import new_faust_app
from dxpulse.settings import WorkerSettings
app = new_faust_app("log-throttle", WorkerSettings(state_dir=Path(sys.argv[1])), web_port=6066)
app.conf.Worker(app, loglevel="info")._setup_logging()  # what the worker does as it starts
for _ in range(50):
    logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", 1, "refused")
"""


def test_a_faust_worker_throttles_the_handlers_mode_sets_up(tmp_path: Path) -> None:
    """mode replaces the root logger's handlers as the worker starts; the worker puts the throttle on
    them. In a process of its own: the handlers are the process's."""
    done = subprocess.run(
        [sys.executable, "-c", FAUST_WORKER_LOGGING, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    output = done.stdout + done.stderr
    lines = [line.strip() for line in output.splitlines() if "Unable connect" in line]
    assert len(lines) == 2, output
    assert lines[0].endswith("Unable connect to node with id 1: refused")
    assert re.search(r"refused \(repeated 49 times in the last [0-9.]+ s\)$", lines[1]), lines  # at exit
