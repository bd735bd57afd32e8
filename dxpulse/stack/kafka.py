"""The stack's KRaft Kafka nodes (one, or a cluster): configuration files, storage format, start, stop."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from dxpulse.kafka.topics import Replication, TopicLayoutError, ensure_topics
from dxpulse.stack.config import (
    KAFKA,
    KafkaNode,
    StackPaths,
    kafka_command,
    kafka_format_command,
    kafka_log4j_properties,
    kafka_nodes,
    kafka_server_properties,
    new_cluster_id,
)
from dxpulse.stack.errors import StackError
from dxpulse.stack.install import require_java, require_kafka_jars
from dxpulse.stack.process import (
    PidRecord,
    is_alive,
    kill_process,
    launch,
    live_pid,
    port_open,
    run_sync,
    stop_processes,
    tail,
    wait_for,
    write_pid_file,
)
from dxpulse.stack.settings import StackSettings

Report = Callable[[str], None]

_NODE_NAME = re.compile(rf"{KAFKA}(-\d+)?")


def is_kafka_name(name: str) -> bool:
    """Whether component ``name`` is one of the stack's Kafka nodes (``kafka``, ``kafka-2``...)."""
    return _NODE_NAME.fullmatch(name) is not None


def running_kafka(paths: StackPaths) -> dict[str, PidRecord]:
    """Every Kafka node of this state dir that runs, by component name, whatever the settings say
    now (a cluster started with other settings is still stopped by ``down``)."""
    if not paths.run.is_dir():
        return {}
    found = {p.stem: live_pid(p) for p in sorted(paths.run.glob(f"{KAFKA}*.pid")) if is_kafka_name(p.stem)}
    return {name: record for name, record in found.items() if record is not None}


def kafka_node(settings: StackSettings, paths: StackPaths, node_id: int) -> KafkaNode:
    """Node ``node_id`` (from 1) of the stack's Kafka."""
    nodes = kafka_nodes(settings, paths)
    if not 1 <= node_id <= len(nodes):
        raise StackError(f"no Kafka broker {node_id}: the stack runs brokers 1 to {len(nodes)}")
    return nodes[node_id - 1]


def write_kafka_config(settings: StackSettings, paths: StackPaths, node: KafkaNode) -> None:
    """(Re)write server.properties and log4j.properties; ports may differ from the last run."""
    node.home.mkdir(parents=True, exist_ok=True)
    node.properties.write_text(kafka_server_properties(settings, paths, node.node_id))
    node.log4j.write_text(kafka_log4j_properties())


def cluster_id(paths: StackPaths) -> str:
    """The stack's KRaft cluster id, made once and kept, so the data dirs always match it."""
    if paths.kafka_cluster_id.is_file():
        return paths.kafka_cluster_id.read_text().strip()
    paths.kafka_dir.mkdir(parents=True, exist_ok=True)
    new = new_cluster_id()
    paths.kafka_cluster_id.write_text(new + "\n")
    return new


def format_storage(
    settings: StackSettings, paths: StackPaths, nodes: Sequence[KafkaNode], report: Report
) -> None:
    """Format the log.dirs of ``nodes`` for KRaft unless they already are (a broker refuses
    unformatted storage); all at once, as each format is a JVM start of its own."""
    unformatted = [node for node in nodes if not (node.data / "meta.properties").is_file()]
    formats = []
    for node in unformatted:
        report(f"{node.name}: formatting storage")
        argv = kafka_format_command(settings, node, cluster_id(paths))
        formats.append(
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: S603
        )
    outputs = [process.communicate()[0] for process in formats]  # all waited for, even after a failure
    for node, process, output in zip(unformatted, formats, outputs, strict=True):
        if process.returncode != 0:
            raise StackError(
                f"formatting Kafka storage in {node.data} failed: remove that folder and retry",
                output.strip(),
            )


def _log_error(log: Path, what: str) -> StackError:
    return StackError(f"{what}: see {log}", tail(log))


def _ports(node: KafkaNode) -> list[int]:
    return [port for port in (node.port, node.controller_port, node.sasl_ssl_port) if port is not None]


def _launch(settings: StackSettings, paths: StackPaths, node: KafkaNode, report: Report) -> PidRecord:
    launched = launch(kafka_command(settings, node), paths.log(node.name))
    record = PidRecord(launched.pid, launched.start_time, node.port)
    write_pid_file(paths.pid_file(node.name), record)
    report(f"{node.name}: started (pid {record.pid}) on 127.0.0.1:{node.port}")
    return record


def _start_nodes(
    settings: StackSettings, paths: StackPaths, nodes: Sequence[KafkaNode], report: Report, timeout_s: float
) -> None:
    """Start those of ``nodes`` that do not run, all before waiting for any (a KRaft quorum forms
    only once most of its controllers run), then wait until each serves."""
    others = sorted(set(running_kafka(paths)) - {node.name for node in kafka_nodes(settings, paths)})
    if others:
        raise StackError(
            f"Kafka runs as {', '.join(others)}, started with another DXPULSE_STACK_KAFKA_BROKERS:"
            " stop it with `dxpulse stack down` first"
        )
    require_kafka_jars(settings)
    records = {node.name: live_pid(paths.pid_file(node.name)) for node in nodes}
    stopped = [node for node in nodes if records[node.name] is None]
    for node in nodes:
        record = records[node.name]
        if record is not None:
            report(f"{node.name}: already running (pid {record.pid}) on 127.0.0.1:{node.port}")
    if stopped:
        require_java()
    for node in stopped:
        for port in _ports(node):
            if port_open(port):
                raise StackError(
                    f"port {port} is taken by a process the stack did not start: stop it or set"
                    " DXPULSE_STACK_KAFKA_PORT / DXPULSE_STACK_KAFKA_CONTROLLER_PORT"
                    " (DXPULSE_STACK_KAFKA_PORT_STEP between brokers)"
                )
        write_kafka_config(settings, paths, node)
    format_storage(settings, paths, stopped, report)
    records |= {node.name: _launch(settings, paths, node, report) for node in stopped}
    for node in nodes:
        record = records[node.name]
        assert record is not None  # running, or launched just now
        _wait_serving(paths, node, record, timeout_s)


def _wait_serving(paths: StackPaths, node: KafkaNode, record: PidRecord, timeout_s: float) -> None:
    log = paths.log(node.name)

    def alive() -> bool:
        return is_alive(record.pid, record.start_time)

    if not wait_for(lambda: not alive() or port_open(node.port), timeout_s):
        raise _log_error(log, f"{node.name} did not open port {node.port} in {timeout_s:.0f} s")
    if not alive():
        paths.pid_file(node.name).unlink(missing_ok=True)
        raise _log_error(log, f"{node.name} exited during startup")


async def _wait_for_brokers(settings: StackSettings, deadline: float) -> None:
    """Until every broker is in the cluster's metadata: a broker serves before the controller
    has it, and topics need as many brokers as their replicas."""
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            await admin.start()
            if len((await admin.describe_cluster())["brokers"]) >= settings.kafka_brokers:
                return
        except KafkaError:
            if time.monotonic() >= deadline:
                raise
        finally:
            await admin.close()
        if time.monotonic() >= deadline:
            raise StackError(f"Kafka's {settings.kafka_brokers} brokers did not all register in time")
        await asyncio.sleep(0.3)


async def ensure_stack_topics(
    settings: StackSettings, deadline: float, alive: Callable[[], bool]
) -> list[str]:
    await _wait_for_brokers(settings, deadline)
    # Right after "started" the controller may still refuse metadata changes, and a broker's
    # metadata may not list yet every broker another one lists (or one slow to heartbeat under
    # load is fenced for a moment): retry until the deadline, but stop early if a broker died.
    replication = Replication(settings.replication_factor, settings.min_insync_replicas)
    while True:
        remaining = deadline - time.monotonic()
        try:
            return await ensure_topics(
                settings.kafka_bootstrap,
                settings.topic_partitions,
                replication=replication,
                timeout_s=max(remaining, 1.0),
            )
        except KafkaError:
            if time.monotonic() >= deadline or not alive():
                raise
        except TopicLayoutError as exc:
            assembling = exc.live_brokers < settings.kafka_brokers
            if not assembling or time.monotonic() >= deadline or not alive():
                raise
        await asyncio.sleep(0.5)


def start_kafka(settings: StackSettings, paths: StackPaths, report: Report, timeout_s: float = 90.0) -> None:
    """Start every Kafka node that does not run, wait until they serve, then create missing topics."""
    started = time.monotonic()
    nodes = kafka_nodes(settings, paths)
    _start_nodes(settings, paths, nodes, report, timeout_s)

    def alive() -> bool:
        return all(live_pid(paths.pid_file(node.name)) is not None for node in nodes)

    first_log = paths.log(nodes[0].name)
    try:
        created = run_sync(ensure_stack_topics(settings, started + timeout_s, alive))
    except KafkaError as exc:
        what = f"kafka accepts connections but topics could not be created ({exc!r})"
        raise _log_error(first_log, what) from exc
    except TopicLayoutError as exc:
        raise StackError(f"kafka's topics do not match the stack: {exc}") from None
    if created:
        report(f"kafka: created topics {', '.join(created)}")
    report(f"kafka: ready in {time.monotonic() - started:.1f} s on {settings.kafka_bootstrap}")


def start_kafka_broker(
    settings: StackSettings, paths: StackPaths, node_id: int, report: Report, timeout_s: float = 90.0
) -> None:
    """Start broker ``node_id`` unless it runs, and wait until it serves (it rejoins the cluster)."""
    _start_nodes(settings, paths, [kafka_node(settings, paths, node_id)], report, timeout_s)


def kill_kafka_broker(settings: StackSettings, paths: StackPaths, node_id: int, report: Report) -> bool:
    """SIGKILL broker ``node_id``, as a crash would end it; False if it was not running."""
    node = kafka_node(settings, paths, node_id)
    record = live_pid(paths.pid_file(node.name))
    if record is None:
        return False
    kill_process(record)
    paths.pid_file(node.name).unlink(missing_ok=True)
    report(f"{node.name}: killed (pid {record.pid})")
    return True


def stop_kafka(paths: StackPaths, report: Report, timeout_s: float = 60.0) -> None:
    """SIGTERM every Kafka node (a clean shutdown saves recovery at the next start), SIGKILL if stuck."""
    running = running_kafka(paths)
    if not running:
        return
    started = time.monotonic()
    stop_processes(list(running.values()), timeout_s)
    for name, record in running.items():
        paths.pid_file(name).unlink(missing_ok=True)
        report(f"{name}: stopped (pid {record.pid}) in {time.monotonic() - started:.1f} s")
