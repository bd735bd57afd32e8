"""The single-node KRaft Kafka broker: configuration files, storage format, start, stop."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable

from aiokafka.errors import KafkaError

from dxpulse.kafka.topics import ensure_topics
from dxpulse.stack.config import (
    KAFKA,
    StackPaths,
    kafka_command,
    kafka_format_command,
    kafka_log4j_properties,
    kafka_server_properties,
    new_cluster_id,
)
from dxpulse.stack.errors import StackError
from dxpulse.stack.install import require_java, require_kafka_jars
from dxpulse.stack.process import (
    PidRecord,
    is_alive,
    launch,
    live_pid,
    port_open,
    run_sync,
    stop_process,
    tail,
    wait_for,
    write_pid_file,
)
from dxpulse.stack.settings import StackSettings

Report = Callable[[str], None]


def kafka_pid(paths: StackPaths) -> PidRecord | None:
    return live_pid(paths.pid_file(KAFKA))


def write_kafka_config(settings: StackSettings, paths: StackPaths) -> None:
    """(Re)write server.properties and log4j.properties; ports may differ from the last run."""
    paths.kafka_dir.mkdir(parents=True, exist_ok=True)
    paths.kafka_properties.write_text(kafka_server_properties(settings, paths))
    paths.kafka_log4j.write_text(kafka_log4j_properties())


def cluster_id(paths: StackPaths) -> str:
    """The stack's KRaft cluster id, made once and kept, so the data dir always matches it."""
    if paths.kafka_cluster_id.is_file():
        return paths.kafka_cluster_id.read_text().strip()
    new = new_cluster_id()
    paths.kafka_cluster_id.write_text(new + "\n")
    return new


def format_storage(settings: StackSettings, paths: StackPaths, report: Report) -> None:
    """Format log.dirs for KRaft unless it already is (a broker refuses unformatted storage)."""
    if (paths.kafka_data / "meta.properties").is_file():
        return
    report("kafka: formatting storage")
    argv = kafka_format_command(settings, paths, cluster_id(paths))
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise StackError(
            f"formatting Kafka storage in {paths.kafka_data} failed: remove that folder and retry",
            (result.stdout + result.stderr).strip(),
        )


def _log_error(paths: StackPaths, what: str) -> StackError:
    log = paths.log(KAFKA)
    return StackError(f"kafka {what}: see {log}", tail(log))


async def _ensure_topics(settings: StackSettings, deadline: float, alive: Callable[[], bool]) -> list[str]:
    # Right after "started" the controller may still refuse metadata changes: retry until the
    # deadline, but stop early if the broker died.
    while True:
        remaining = deadline - time.monotonic()
        try:
            return await ensure_topics(
                settings.kafka_bootstrap, settings.topic_partitions, timeout_s=max(remaining, 1.0)
            )
        except KafkaError:
            if time.monotonic() >= deadline or not alive():
                raise
            await asyncio.sleep(0.5)


def start_kafka(
    settings: StackSettings, paths: StackPaths, report: Report, timeout_s: float = 90.0
) -> PidRecord:
    """Start the broker unless it runs, wait until it serves, then create missing topics."""
    require_kafka_jars(settings)
    record = kafka_pid(paths)
    if record is not None:
        report(f"kafka: already running (pid {record.pid}) on {settings.kafka_bootstrap}")
    else:
        for port in (settings.kafka_port, settings.kafka_controller_port):
            if port_open(port):
                raise StackError(
                    f"port {port} is taken by a process the stack did not start: stop it or set"
                    " DXPULSE_STACK_KAFKA_PORT / DXPULSE_STACK_KAFKA_CONTROLLER_PORT"
                )
        require_java()
        write_kafka_config(settings, paths)
        format_storage(settings, paths, report)
        record = launch(kafka_command(settings, paths), paths.log(KAFKA))
        record = PidRecord(record.pid, record.start_time, settings.kafka_port)
        write_pid_file(paths.pid_file(KAFKA), record)
        report(f"kafka: started (pid {record.pid}) on {settings.kafka_bootstrap}")

    started = time.monotonic()
    deadline = started + timeout_s
    pid = record

    def alive() -> bool:
        return is_alive(pid.pid, pid.start_time)

    if not wait_for(lambda: not alive() or port_open(settings.kafka_port), timeout_s):
        raise _log_error(paths, f"did not open port {settings.kafka_port} in {timeout_s:.0f} s")
    if not alive():
        paths.pid_file(KAFKA).unlink(missing_ok=True)
        raise _log_error(paths, "exited during startup")
    try:
        created = run_sync(_ensure_topics(settings, deadline, alive))
    except KafkaError as exc:
        what = f"accepts connections but topics could not be created ({exc!r})"
        raise _log_error(paths, what) from exc
    if created:
        report(f"kafka: created topics {', '.join(created)}")
    report(f"kafka: ready in {time.monotonic() - started:.1f} s")
    return record


def stop_kafka(paths: StackPaths, report: Report, timeout_s: float = 60.0) -> None:
    """SIGTERM the broker (a clean shutdown saves recovery at the next start), SIGKILL if stuck."""
    record = kafka_pid(paths)
    if record is None:
        return
    started = time.monotonic()
    stop_process(record, timeout_s)
    paths.pid_file(KAFKA).unlink(missing_ok=True)
    report(f"kafka: stopped (pid {record.pid}) in {time.monotonic() - started:.1f} s")
