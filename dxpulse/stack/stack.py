"""The local stack as a whole: up, down and status of Kafka, PostgreSQL and the processes on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dxpulse.stack import install as installer
from dxpulse.stack.config import (
    ALERTMANAGER,
    KAFKA,
    POSTGRES,
    POSTGRES_EXPORTER,
    POSTGRES_EXPORTER_BIN,
    PROMETHEUS,
    SERVICE_NAMES,
    ServiceSpec,
    StackPaths,
    alertmanager_spec,
    kafka_nodes,
    postgres_exporter_spec,
    prometheus_config,
    prometheus_spec,
    service_specs,
)
from dxpulse.stack.errors import StackError
from dxpulse.stack.kafka import (
    is_kafka_name,
    kill_kafka_broker,
    running_kafka,
    start_kafka,
    start_kafka_broker,
    stop_kafka,
)
from dxpulse.stack.postgres import postgres_pid, start_postgres, stop_postgres
from dxpulse.stack.process import (
    PidRecord,
    is_alive,
    launch,
    live_pid,
    port_open,
    stop_processes,
    tail,
    wait_for,
    write_pid_file,
)
from dxpulse.stack.settings import StackSettings

Report = Callable[[str], None]
ReadyCheck = Callable[[], bool]


@dataclass(frozen=True)
class ComponentStatus:
    """What ``status`` knows about one component."""

    name: str
    running: bool
    pid: int | None
    address: str | None
    log: Path
    ready: bool = False
    """Running and accepting connections on its address (running, for a component without one)."""


def _address(port: int | None) -> str | None:
    return None if port is None else f"127.0.0.1:{port}"


class Stack:
    """One local stack, described by ``settings``; every method is safe to repeat."""

    def __init__(self, settings: StackSettings | None = None, report: Report = print) -> None:
        self.settings = settings if settings is not None else StackSettings()
        self.paths = StackPaths.for_settings(self.settings)
        self.report = report

    # --- install -----------------------------------------------------------------------------

    def install(self) -> None:
        """Install the system packages (as root) and cache the Kafka jars; quick when done."""
        installer.install(self.settings, self.report)

    # --- Kafka and PostgreSQL ----------------------------------------------------------------

    def start_kafka(self, timeout_s: float = 90.0) -> ComponentStatus:
        """Start every broker that does not run, then create the missing topics."""
        start_kafka(self.settings, self.paths, self.report, timeout_s)
        return self.kafka_status()

    def stop_kafka(self, timeout_s: float = 60.0) -> None:
        """Stop every broker of this state dir."""
        stop_kafka(self.paths, self.report, timeout_s)

    def start_kafka_broker(self, node_id: int, timeout_s: float = 90.0) -> ComponentStatus:
        """Start broker ``node_id`` (from 1) unless it runs; it rejoins the others."""
        start_kafka_broker(self.settings, self.paths, node_id, self.report, timeout_s)
        return self.broker_statuses()[node_id - 1]

    def kill_kafka_broker(self, node_id: int) -> bool:
        """SIGKILL broker ``node_id`` (from 1), as a crash would; False if it was not running."""
        return kill_kafka_broker(self.settings, self.paths, node_id, self.report)

    def broker_statuses(self) -> list[ComponentStatus]:
        """Each Kafka node of the settings, by id."""
        running = running_kafka(self.paths)
        return [
            self._status(node.name, running.get(node.name), node.port)
            for node in kafka_nodes(self.settings, self.paths)
        ]

    def kafka_status(self) -> ComponentStatus:
        """Kafka as a whole: running and ready when every broker is; the first broker's pid and log."""
        brokers = self.broker_statuses()
        if len(brokers) == 1:
            return brokers[0]
        first = brokers[0]
        return ComponentStatus(
            name=KAFKA,
            running=all(b.running for b in brokers),
            pid=first.pid,
            address=self.settings.kafka_bootstrap,
            log=first.log,
            ready=all(b.ready for b in brokers),
        )

    def start_postgres(self, timeout_s: float = 60.0) -> ComponentStatus:
        start_postgres(self.settings, self.paths, self.report, timeout_s)
        return self.postgres_status()

    def stop_postgres(self, timeout_s: float = 60.0) -> None:
        stop_postgres(self.paths, self.report, timeout_s)

    def postgres_status(self) -> ComponentStatus:
        return self._status(POSTGRES, postgres_pid(self.paths), self.settings.postgres_port)

    # --- generic processes -------------------------------------------------------------------

    def start_service(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        ready_port: int | None = None,
        ready: ReadyCheck | None = None,
        cwd: Path | None = None,
        timeout_s: float = 60.0,
    ) -> ComponentStatus:
        """Start ``argv`` as component ``name`` unless it runs; wait until it is ready.

        Ready means ``ready()`` holds, by default a TCP connect to ``ready_port``; with neither,
        a process that is still alive a moment after starting.
        """
        spec = ServiceSpec(name, tuple(argv), dict(env or {}), ready_port, cwd, ready)
        return self.start_spec(spec, timeout_s=timeout_s)

    def start_spec(self, spec: ServiceSpec, *, timeout_s: float = 60.0) -> ComponentStatus:
        """``start_service`` for a prepared ``ServiceSpec``."""
        return self.start_specs([spec], timeout_s=timeout_s)[0]

    def start_specs(self, specs: Sequence[ServiceSpec], *, timeout_s: float = 60.0) -> list[ComponentStatus]:
        """Start every spec that does not run, then wait for each to be ready.

        All are launched before any is waited on, so they start in parallel.
        """
        launched = [(spec, self._launch_unless_running(spec)) for spec in specs]
        return [self._wait_ready(spec, record, timeout_s) for spec, record in launched]

    def _launch_unless_running(self, spec: ServiceSpec) -> PidRecord:
        pid_file = self.paths.pid_file(spec.name)
        record = live_pid(pid_file)
        if record is not None:
            self.report(f"{spec.name}: already running (pid {record.pid})")
            return record
        if spec.ready_port is not None and port_open(spec.ready_port):
            raise StackError(
                f"{spec.name}: port {spec.ready_port} is taken by a process the stack did"
                " not start: stop it or choose another port"
            )
        launched = launch(spec.argv, self.paths.log(spec.name), spec.env, spec.cwd)
        record = PidRecord(launched.pid, launched.start_time, spec.ready_port)
        write_pid_file(pid_file, record)
        self.report(f"{spec.name}: started (pid {record.pid})")
        return record

    def _wait_ready(self, spec: ServiceSpec, record: PidRecord, timeout_s: float) -> ComponentStatus:
        pid_file, log = self.paths.pid_file(spec.name), self.paths.log(spec.name)
        check = spec.ready
        if check is None:
            port = spec.ready_port
            check = (lambda: port_open(port)) if port is not None else (lambda: True)
        started = time.monotonic()

        def alive() -> bool:
            return is_alive(record.pid, record.start_time)

        def died() -> StackError:
            pid_file.unlink(missing_ok=True)
            return StackError(f"{spec.name} exited during startup: see {log}", tail(log))

        if not wait_for(lambda: not alive() or check(), timeout_s):
            raise StackError(f"{spec.name} not ready in {timeout_s:.0f} s: see {log}", tail(log))
        if not alive():
            raise died()
        if spec.ready is None and spec.ready_port is None:
            # Nothing to probe: at least make sure it did not die at once (bad argv, import error).
            time.sleep(0.5)
            if not alive():
                raise died()
        self.report(f"{spec.name}: ready in {time.monotonic() - started:.1f} s")
        return self.service_status(spec.name)

    def stop_service(self, name: str, timeout_s: float = 20.0) -> bool:
        """SIGTERM a component started by ``start_service``; False if it was not running."""
        return bool(self.stop_services([name], timeout_s))

    def stop_services(self, names: Sequence[str], timeout_s: float = 20.0) -> list[str]:
        """Stop several components at once (all get SIGTERM first); returns those that ran."""
        records = {name: live_pid(self.paths.pid_file(name)) for name in names}
        running = {name: rec for name, rec in records.items() if rec is not None}
        stop_processes(list(running.values()), timeout_s)
        for name, record in running.items():
            self.paths.pid_file(name).unlink(missing_ok=True)
            self.report(f"{name}: stopped (pid {record.pid})")
        return list(running)

    def service_status(self, name: str, port: int | None = None) -> ComponentStatus:
        record = live_pid(self.paths.pid_file(name))
        if port is None and record is not None:
            port = record.port
        return self._status(name, record, port)

    def service_specs(self) -> list[ServiceSpec]:
        """The dxpulse services ``up`` starts: ingest, aggregate, alerts, history, query."""
        return service_specs(self.settings, self.paths)

    # --- Prometheus and Alertmanager ---------------------------------------------------------

    def start_prometheus(self, config: Path, timeout_s: float = 60.0) -> ComponentStatus:
        if not config.is_file():
            raise StackError(f"Prometheus config {config} not found")
        self.paths.prometheus_data.mkdir(parents=True, exist_ok=True)
        return self.start_spec(prometheus_spec(self.settings, self.paths, config), timeout_s=timeout_s)

    def write_prometheus_config(self, services: Sequence[ServiceSpec]) -> Path:
        """Write the generated prometheus.yml into the state dir (a running Prometheus keeps its old one)."""
        path = self.paths.prometheus_config
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(prometheus_config(self.settings, services))
        return path

    def stop_prometheus(self) -> bool:
        return self.stop_service(PROMETHEUS)

    def start_alertmanager(self, config: Path, timeout_s: float = 60.0) -> ComponentStatus:
        if not config.is_file():
            raise StackError(
                f"Alertmanager config {config} not found: run from the dxpulse checkout or set"
                " DXPULSE_STACK_ALERTMANAGER_CONFIG to an alertmanager.yml"
            )
        self.paths.alertmanager_data.mkdir(parents=True, exist_ok=True)
        spec = alertmanager_spec(self.settings, self.paths, config)
        return self.start_spec(spec, timeout_s=timeout_s)

    def stop_alertmanager(self) -> bool:
        return self.stop_service(ALERTMANAGER)

    def runs_postgres_exporter(self) -> bool:
        """Whether ``up`` starts the PostgreSQL exporter: when enabled and Prometheus runs too."""
        settings = self.settings
        return settings.postgres_exporter and (settings.prometheus or settings.prometheus_config is not None)

    def exporter_specs(self) -> list[ServiceSpec]:
        """The exporters ``up`` starts beside Prometheus, which scrapes them like the services."""
        return [postgres_exporter_spec(self.settings)] if self.runs_postgres_exporter() else []

    def start_postgres_exporter(self, timeout_s: float = 60.0) -> ComponentStatus:
        if not POSTGRES_EXPORTER_BIN.exists():
            raise StackError(
                f"{POSTGRES_EXPORTER_BIN} not found: run `dxpulse stack install` (as root) or"
                " apt-get install prometheus-postgres-exporter, or set DXPULSE_STACK_POSTGRES_EXPORTER=false"
            )
        return self.start_spec(postgres_exporter_spec(self.settings), timeout_s=timeout_s)

    # --- the whole stack ---------------------------------------------------------------------

    def up(
        self, with_services: bool = True, services: Sequence[ServiceSpec] | None = None
    ) -> list[ComponentStatus]:
        """Start whatever is not running: Kafka (+ topics), PostgreSQL (+ migrations), then
        Prometheus/Alertmanager when configured, then the services (``services`` replaces the
        dxpulse ones)."""
        started = time.monotonic()
        for folder in (self.paths.logs, self.paths.run):
            folder.mkdir(parents=True, exist_ok=True)
        self.start_kafka()
        self.start_postgres()
        if self.settings.alertmanager_config is not None:
            self.start_alertmanager(self.settings.alertmanager_config)
        specs = list(services) if services is not None else self.service_specs()
        exporters = self.exporter_specs()
        if exporters:
            self.start_postgres_exporter()
        if self.settings.prometheus_config is not None:
            self.start_prometheus(self.settings.prometheus_config)
        elif self.settings.prometheus:
            self.start_prometheus(self.write_prometheus_config([*specs, *exporters]))
        if with_services:
            self.start_specs(specs)
        self.report(f"stack up in {time.monotonic() - started:.1f} s")
        return self.status()

    def _started_processes(self) -> list[str]:
        if not self.paths.run.is_dir():
            return []
        return sorted(p.stem for p in self.paths.run.glob("*.pid") if not is_kafka_name(p.stem))

    def down(self) -> None:
        """Stop everything the stack started: services first, then PostgreSQL, then Kafka."""
        started = time.monotonic()
        others = self._started_processes()
        # Services before what they use, so they shut down cleanly instead of erroring.
        monitoring = [n for n in others if n in (PROMETHEUS, ALERTMANAGER, POSTGRES_EXPORTER)]
        self.stop_services([n for n in others if n not in monitoring])
        self.stop_services(monitoring)
        self.stop_postgres()
        self.stop_kafka()
        self.report(f"stack down in {time.monotonic() - started:.1f} s")

    def status(self) -> list[ComponentStatus]:
        """Every known component, whether it runs or not, plus any other process started."""
        names = [*SERVICE_NAMES, PROMETHEUS, ALERTMANAGER, POSTGRES_EXPORTER]
        ports = {spec.name: spec.ready_port for spec in self.service_specs()}
        ports[PROMETHEUS] = self.settings.prometheus_port
        ports[ALERTMANAGER] = self.settings.alertmanager_port
        ports[POSTGRES_EXPORTER] = self.settings.postgres_exporter_port
        extra = [n for n in self._started_processes() if n not in names]
        brokers = self.broker_statuses()
        # Brokers of other settings (a cluster started with more) still show while they run.
        others = [
            self._status(name, record, record.port)
            for name, record in running_kafka(self.paths).items()
            if name not in {b.name for b in brokers}
        ]
        return [
            *brokers,
            *others,
            self.postgres_status(),
            *(self.service_status(name, ports.get(name)) for name in [*names, *extra]),
        ]

    def components_up_starts(self) -> set[str]:
        """The components ``up`` starts with these settings (services included)."""
        names = {node.name for node in kafka_nodes(self.settings, self.paths)}
        names |= {POSTGRES, *SERVICE_NAMES}
        if self.settings.prometheus_config is not None or self.settings.prometheus:
            names.add(PROMETHEUS)
        if self.settings.alertmanager_config is not None:
            names.add(ALERTMANAGER)
        if self.runs_postgres_exporter():
            names.add(POSTGRES_EXPORTER)
        return names

    def _status(self, name: str, record: PidRecord | None, port: int | None) -> ComponentStatus:
        running = record is not None
        ready = running and (port is None or port_open(port))
        return ComponentStatus(
            name=name,
            running=running,
            pid=record.pid if record is not None else None,
            address=_address(port),
            log=self.paths.log(name),
            ready=ready,
        )
