"""JSON log lines: one object per line with service, level, logger, message, the call's extras and any
exception; in uvicorn's configuration and on a faust worker's handlers, through the log throttle."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dxpulse.faust_engine.support import new_faust_app, worker_argv
from dxpulse.log_format import (
    JsonFormatter,
    format_every_handler,
    log_formatter,
    uvicorn_log_config,
)
from dxpulse.log_throttle import LogThrottle, throttled_uvicorn_log_config
from dxpulse.settings import WorkerSettings


def _record(message: str, *args: object, **extra: Any) -> logging.LogRecord:
    logger = logging.getLogger("dxpulse.test")
    return logger.makeRecord("dxpulse.test", logging.WARNING, __file__, 1, message, args, None, extra=extra)


def test_a_line_has_the_fields_a_collector_reads_and_the_call_s_extras() -> None:
    event_id = uuid.uuid4()
    record = _record("rolling up %s@%s failed", 3, 1200, event_id=event_id, key="emc_connection|2024-H1")
    entry = json.loads(JsonFormatter("dxpulse-aggregate").format(record))
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "service": "dxpulse-aggregate",
        "level": "WARNING",
        "logger": "dxpulse.test",
        "message": "rolling up 3@1200 failed",
        "event_id": str(event_id),
        "key": "emc_connection|2024-H1",
    }


def test_an_exception_is_a_field_and_the_line_stays_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "two\nlines", (), sys.exc_info()
        )
    line = JsonFormatter("dxpulse-ingest").format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "two\nlines"
    assert entry["exception"].startswith("Traceback")
    assert entry["exception"].endswith("ValueError: bad\nvalue")


def test_an_extra_cannot_pass_for_a_field_of_the_line() -> None:
    entry = json.loads(JsonFormatter("dxpulse-query").format(_record("m", service="other", level="x")))
    assert (entry["service"], entry["level"]) == ("dxpulse-query", "WARNING")


@given(st.text(), st.dictionaries(st.from_regex(r"[a-z]{1,8}_id", fullmatch=True), st.text(), max_size=3))
def test_any_message_and_extras_make_one_line_of_json(message: str, extras: dict[str, str]) -> None:
    line = JsonFormatter("s").format(_record(message, **extras))  # no arguments: no %-formatting
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == message
    assert {k: entry[k] for k in extras} == extras


def test_the_throttle_s_line_for_held_back_repeats_is_json_with_the_extras() -> None:
    throttle = LogThrottle(interval_s=60)
    first = _record("Kafka at %s not reachable", "kafka:9092", key="k1")
    assert throttle.filter(first)
    repeat = _record("Kafka at %s not reachable", "kafka:9092", key="k2")
    assert not throttle.filter(repeat)
    entry = json.loads(JsonFormatter("dxpulse-ingest").format(throttle.summary(repeat, 1, 30)))
    assert entry["message"] == "Kafka at kafka:9092 not reachable (repeated once in the last 30 s)"
    assert entry["key"] == "k2"


def test_text_stays_the_default_line() -> None:
    formatter = log_formatter("dxpulse-ingest", "text")
    assert not isinstance(formatter, JsonFormatter)
    assert formatter.format(_record("hello")).endswith("WARNING dxpulse.test hello")


def test_uvicorn_s_lines_access_lines_too_are_json_through_the_throttle() -> None:
    config = uvicorn_log_config("dxpulse-ingest", "json")
    assert set(config["formatters"]) == {"default", "access"}
    for formatter in config["formatters"].values():
        assert formatter == {"()": JsonFormatter, "service": "dxpulse-ingest"}
    assert all("dxpulse_log_throttle" in handler["filters"] for handler in config["handlers"].values())
    text = uvicorn_log_config("dxpulse-ingest", "text")
    assert text["formatters"] == throttled_uvicorn_log_config()["formatters"]


def test_every_handler_gets_the_json_formatter() -> None:
    handler = logging.NullHandler()
    logger = logging.getLogger(f"test-log-format.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    saved = {h: h.formatter for h in logging.getLogger().handlers}
    try:
        format_every_handler("dxpulse-alerts", "json")
        assert isinstance(handler.formatter, JsonFormatter)
        assert handler.formatter.service == "dxpulse-alerts"
    finally:
        logger.removeHandler(handler)
        for root_handler, formatter in saved.items():
            root_handler.setFormatter(formatter)


FAUST_WORKER_JSON = """
import logging, sys
from pathlib import Path
from dxpulse.faust_engine.support import new_faust_app
from dxpulse.settings import WorkerSettings
settings = WorkerSettings(state_dir=Path(sys.argv[1]), log_format="json")
app = new_faust_app("json-logs", settings, web_port=6066)
app.conf.Worker(app, loglevel="info")._setup_logging()  # what the worker does as it starts
for n in range(50):
    logging.getLogger("dxpulse.test").error("cannot judge %s", n, extra={"event_id": f"e{n}"})
"""


def test_a_faust_worker_writes_json_lines_through_the_throttle(tmp_path: Path) -> None:
    """mode replaces the root logger's handlers as the worker starts; the worker gives them the app's
    format. In a process of its own: the handlers are the process's."""
    done = subprocess.run(
        [sys.executable, "-c", FAUST_WORKER_JSON, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    judged = [e for e in entries if e["logger"] == "dxpulse.test"]
    assert [(e["service"], e["level"], e["event_id"]) for e in judged] == [
        ("json-logs", "ERROR", "e0"),
        ("json-logs", "ERROR", "e49"),
    ]
    assert judged[1]["message"].startswith("cannot judge 49 (repeated 49 times in the last")


def test_with_json_logs_a_worker_runs_quiet_keeping_faust_s_banner_off_stdout(tmp_path: Path) -> None:
    app = new_faust_app("argv", WorkerSettings(state_dir=tmp_path), web_port=6066)
    json_argv = worker_argv(app, "info", "json")
    assert json_argv[1:3] == ["--quiet", "worker"]
    assert worker_argv(app, "info", "text")[1:] == json_argv[2:]


def test_every_service_sets_its_log_format_up() -> None:
    """An API's ``__main__`` calls configure_logging and gives uvicorn uvicorn_log_config; a worker's
    runs through run_worker, which does both for faust."""
    mains = sorted((Path(__file__).resolve().parents[2] / "services").glob("*/__main__.py"))
    assert len(mains) >= 5
    for main in mains:
        text = main.read_text(encoding="utf-8")
        api = "configure_logging(" in text and "uvicorn_log_config(" in text
        assert api or "run_worker(" in text, main
