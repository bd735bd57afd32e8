"""Static checks of the Docker Compose stack against the code: no Docker, no servers.

docker-compose.yml, the Dockerfile and the Prometheus, Alertmanager and Grafana files under deploy/
are read as text and compared with the settings classes, the topic definitions and the local stack,
so a renamed variable, a changed default port or a new topic shows up here rather than in a
container that does not start. promtool and amtool validate the monitoring configuration when
they are installed.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi.routing import APIRoute

import dxpulse.kafka.topics
from dxpulse.kafka.topics import TopicSpec
from dxpulse.settings import CommonSettings
from dxpulse.stack.config import StackPaths, kafka_server_properties
from dxpulse.stack.settings import StackSettings
from services.aggregate.app import worker_topics as aggregate_topics
from services.aggregate.settings import AggregateSettings
from services.alerts.app import worker_topics as alerts_topics
from services.alerts.settings import AlertsSettings
from services.history.settings import HistorySettings
from services.ingest.app import create_app as create_ingest_app
from services.ingest.settings import IngestSettings
from services.query.settings import QuerySettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK_FILE = ROOT / "requirements.lock"
PROMETHEUS_YML = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_YML = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
GRAFANA_DATASOURCE = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

SETTINGS_OF: dict[str, type[CommonSettings]] = {
    "kafka-init": CommonSettings,
    "ingest": IngestSettings,
    "aggregate": AggregateSettings,
    "alerts": AlertsSettings,
    "history": HistorySettings,
    "query": QuerySettings,
}
"""Which settings class each service built from the dxpulse image reads its DXPULSE_* variables with."""
SERVICES = ("ingest", "aggregate", "alerts", "history", "query")
"""The long-running dxpulse services, each run as ``python -m services.<name>``."""
WORKERS = ("aggregate", "alerts")
"""The faust workers, whose table changelogs kafka-init creates."""
EXPORTERS = {"postgres-exporter": 9187}
"""Third-party exporters Prometheus scrapes beside the services, with their ports."""
EXPECTED = {"kafka", "kafka-init", "postgres", *SERVICES, *EXPORTERS, "prometheus", "alertmanager", "grafana"}


def service_port(settings: CommonSettings) -> int:
    """The port a dxpulse service serves /metrics on."""
    if isinstance(settings, IngestSettings):
        return settings.ingest_port
    if isinstance(settings, AggregateSettings):
        return settings.aggregate_web_port
    if isinstance(settings, AlertsSettings):
        return settings.alerts_web_port
    if isinstance(settings, HistorySettings):
        return settings.history_web_port
    if isinstance(settings, QuerySettings):
        return settings.query_port
    raise AssertionError(f"{type(settings).__name__} serves no port")


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def mapping(value: Any, what: str) -> dict[str, Any]:
    assert isinstance(value, dict), f"{what} is not a mapping"
    return value


def env_names(cls: type[CommonSettings]) -> set[str]:
    """The environment variables a settings class reads: its prefix plus each field, upper-cased."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


@pytest.fixture(autouse=True)
def _no_dxpulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's DXPULSE_* variables must not change the defaults compared against.
    for name in list(os.environ):
        if name.startswith("DXPULSE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = mapping(compose.get("services"), "services")
    return {name: mapping(body, f"service {name}") for name, body in raw.items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = mapping(service.get("environment", {}), "environment (use the mapping form)")
    for name, value in env.items():
        # Compose rejects booleans and mangles numbers like 010: every value is quoted.
        assert isinstance(value, str), f"{name}={value!r} is not a quoted string"
    return env


def settings_from(env: dict[str, str], cls: type[CommonSettings], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``cls`` as the service would build it from its compose environment."""
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        return cls()


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of every published port, from "ip:host:container"."""
    result = []
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        assert len(parts) == 3, f"port {entry!r} does not name the host address"
        result.append((parts[0], int(parts[1]), int(parts[2])))
    return result


def healthcheck_text(service: dict[str, Any]) -> str:
    test = mapping(service.get("healthcheck"), "healthcheck").get("test")
    assert isinstance(test, list), "healthcheck test should be an exec list"
    assert test[0] == "CMD", "healthcheck test should be CMD (no shell)"
    return " ".join(str(part) for part in test[1:])


def mounted_file(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a bind mount of ``service`` shows at ``container_path``."""
    target = PurePosixPath(container_path)
    for volume in service.get("volumes", []):
        source, mount, *_ = str(volume).split(":")
        if source.startswith(".") and target.is_relative_to(mount):
            return ROOT / source / target.relative_to(mount)
    raise AssertionError(f"nothing of the repository is mounted at {container_path}")


def flag(command: list[str], name: str) -> str:
    """The value of ``--name=value`` in a command line."""
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} should be given once in {command}"
    return values[0]


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_declares_the_stack(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == EXPECTED
    declared = set(mapping(compose.get("volumes"), "volumes"))
    for name, service in services.items():
        assert "image" in service, f"{name} has no image"
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"
            else:
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert {"kafka-data", "postgres-data"} <= declared


def test_dxpulse_image_services_are_mapped_to_settings(services: dict[str, dict[str, Any]]) -> None:
    images = {service["image"] for service in services.values() if "build" in service}
    assert len(images) == 1, f"the dxpulse services should share one image tag, got {images}"
    built = {name for name, service in services.items() if "build" in service or service["image"] in images}
    assert built == set(SETTINGS_OF)
    for name in built:
        build = mapping(services[name].get("build"), f"{name} build")
        assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


@pytest.mark.parametrize("name", sorted(SETTINGS_OF))
def test_environment_names_are_settings_fields(services: dict[str, dict[str, Any]], name: str) -> None:
    env = environment(services[name])
    valid = env_names(SETTINGS_OF[name])
    unknown = sorted(set(env) - valid)
    # pydantic-settings ignores unknown variables (extra="ignore"): a typo would silently do nothing.
    assert not unknown, f"{name} sets variables {SETTINGS_OF[name].__name__} does not read: {unknown}"
    # Where Kafka, PostgreSQL and the topic layout are is never left to the 127.0.0.1 defaults.
    missing = sorted(env_names(CommonSettings) - set(env))
    assert not missing, f"{name} leaves {missing} to their defaults"


def test_env_name_introspection_matches_field_descriptions() -> None:
    # Each field's description starts with its variable: the derivation above must agree.
    for cls in SETTINGS_OF.values():
        described = {str(field.description).split(":")[0] for field in cls.model_fields.values()}
        assert described == env_names(cls), cls.__name__


@pytest.mark.parametrize("name", SERVICES)
def test_service_settings_point_at_compose_services(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(environment(services[name]), SETTINGS_OF[name], monkeypatch)
    for address in settings.kafka_bootstrap.split(","):
        host, port = address.strip().rsplit(":", 1)
        assert host in services, f"bootstrap {address} is not a compose service"
        advertised = environment(services[host])["KAFKA_ADVERTISED_LISTENERS"]
        assert f"PLAINTEXT://{host}:{port}" in advertised.split(",")
    dsn = urlsplit(settings.database_url)
    postgres = environment(services["postgres"])
    assert dsn.hostname == "postgres"
    assert dsn.port == 5432
    assert dsn.username == postgres["POSTGRES_USER"]
    assert dsn.password == postgres["POSTGRES_PASSWORD"]
    assert dsn.path == f"/{postgres['POSTGRES_DB']}"


@pytest.mark.parametrize("name", sorted(SETTINGS_OF))
def test_topic_partitions_are_the_default(services: dict[str, dict[str, Any]], name: str) -> None:
    assert environment(services[name])["DXPULSE_TOPIC_PARTITIONS"] == str(CommonSettings().topic_partitions)


@pytest.mark.parametrize("name", SERVICES)
def test_service_command_module_exists(services: dict[str, dict[str, Any]], name: str) -> None:
    command = services[name].get("command")
    assert command == ["python", "-m", f"services.{name}"]
    assert (ROOT / "services" / name / "__main__.py").is_file()


def test_kafka_init_creates_every_topic_up_front(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    init = services["kafka-init"]
    command = init.get("command")
    assert isinstance(command, list)
    assert command[:2] == ["python", "-c"]
    assert init.get("restart") == "no"
    calls: list[tuple[str, int, tuple[TopicSpec, ...]]] = []

    async def fake_ensure_topics(
        bootstrap: str, partitions: int, *, extra: tuple[TopicSpec, ...] = (), timeout_s: float = 60.0
    ) -> list[str]:
        calls.append((bootstrap, partitions, extra))
        return []

    monkeypatch.setattr(dxpulse.kafka.topics, "ensure_topics", fake_ensure_topics)
    for var, value in environment(init).items():
        monkeypatch.setenv(var, value)
    exec(compile(command[2], "<kafka-init>", "exec"), {"__name__": "__kafka_init__"})

    assert len(calls) == 1
    bootstrap, partitions, extra = calls[0]
    assert bootstrap == "kafka:9092"
    assert partitions == 6
    created = {spec.name for spec in extra}
    for worker in WORKERS:
        env = environment(services[worker])
        if worker == "aggregate":
            needed = aggregate_topics(settings_from(env, AggregateSettings, monkeypatch))
        else:
            needed = alerts_topics(settings_from(env, AlertsSettings, monkeypatch))
        missing = {spec.name for spec in needed} - created
        assert not missing, f"kafka-init does not create {worker}'s {missing}"


def test_depends_on_conditions_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in mapping(service.get("depends_on", {}), f"{name} depends_on").items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = mapping(spec, f"{name} depends_on {target}").get("condition")
            if condition == "service_healthy":
                assert "test" in services[target].get("healthcheck", {}), f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must run once"
            else:
                assert condition == "service_started", f"{name}: unknown condition {condition}"


@pytest.mark.parametrize("name", SERVICES)
def test_services_wait_for_kafka_postgres_and_topics(services: dict[str, dict[str, Any]], name: str) -> None:
    depends = mapping(services[name].get("depends_on"), f"{name} depends_on")
    if name == "query":  # reads PostgreSQL only
        assert depends == {"postgres": {"condition": "service_healthy"}}
        return
    assert depends["kafka"] == {"condition": "service_healthy"}
    assert depends["postgres"] == {"condition": "service_healthy"}
    assert depends["kafka-init"] == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize("name", SERVICES)
def test_service_ports_and_healthchecks(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = services[name]
    settings = settings_from(environment(service), SETTINGS_OF[name], monkeypatch)
    port = service_port(settings)
    assert port == service_port(SETTINGS_OF[name]()), "compose should keep the default port"
    assert [(host, container) for _, host, container in published(service)] == [(port, port)]
    # The faust workers bind 127.0.0.1 only: the check runs inside the container, on its port.
    assert f"http://127.0.0.1:{port}/" in healthcheck_text(service)
    if isinstance(settings, IngestSettings):
        assert settings.ingest_host == "0.0.0.0", "in a container ingest must bind every address"
    if isinstance(settings, QuerySettings):
        assert settings.query_host == "0.0.0.0", "in a container the query API must bind every address"


def test_ingest_healthcheck_path_is_served() -> None:
    app = create_ingest_app(IngestSettings())
    paths = {route.path for route in app.routes if isinstance(route, APIRoute)}
    assert {"/healthz", "/metrics"} <= paths


def test_host_ports_are_the_local_stack_defaults(services: dict[str, dict[str, Any]]) -> None:
    stack = StackSettings()
    expected = {
        "kafka": stack.kafka_port,
        "postgres": stack.postgres_port,
        "ingest": stack.ingest_port,
        "aggregate": stack.aggregate_web_port,
        "alerts": stack.alerts_web_port,
        "history": stack.history_web_port,
        "query": stack.query_port,
        "prometheus": stack.prometheus_port,
        "alertmanager": stack.alertmanager_port,
    }
    for name, port in expected.items():
        ports = published(services[name])
        assert [host for _, host, _ in ports] == [port], name
    for name, service in services.items():
        for address, _, _ in published(service):
            # Like the local stack: loopback only, the passwords are well known.
            assert address == "127.0.0.1", f"{name} is published on {address}"


def test_kafka_matches_the_local_stack(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    kafka = services["kafka"]
    stack = StackSettings()
    assert kafka["image"] == f"apache/kafka:{stack.kafka_version}"
    env = environment(kafka)
    props = {
        name.removeprefix("KAFKA_").lower().replace("_", "."): value
        for name, value in env.items()
        if name.startswith("KAFKA_") and name != "KAFKA_HEAP_OPTS"
    }
    local = dict(
        line.split("=", 1)
        for line in kafka_server_properties(stack, StackPaths(tmp_path)).splitlines()
        if line
    )
    # Addresses differ; compose adds a HOST listener (for clients outside the compose network).
    addresses = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}
    protocols = "listener.security.protocol.map"
    assert set(props) == set(local)
    for key in set(local) - addresses - {protocols}:
        assert props[key] == local[key], key
    assert set(local[protocols].split(",")) < set(props[protocols].split(","))
    assert props["auto.create.topics.enable"] == "false"
    # A KRaft cluster id is 16 bytes, base64url without padding.
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert f"kafka-data:{props['log.dirs']}" in kafka["volumes"]
    # The host listener is published on the port it advertises, so host clients can follow it.
    listeners = dict(item.split("://") for item in props["listeners"].split(","))
    advertised = dict(item.split("://") for item in props["advertised.listeners"].split(","))
    ((_, host_port, container_port),) = published(kafka)
    assert listeners["HOST"].endswith(f":{container_port}")
    assert advertised["HOST"] == f"127.0.0.1:{host_port}"
    assert "kafka-topics.sh --bootstrap-server localhost:9092 --list" in healthcheck_text(kafka)
    assert healthcheck_text(kafka).startswith("/opt/kafka/bin/")


def test_postgres(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    assert environment(postgres) == {
        "POSTGRES_DB": "dxpulse",
        "POSTGRES_USER": "dxpulse",
        "POSTGRES_PASSWORD": "dxpulse",
    }
    assert healthcheck_text(postgres).startswith("pg_isready")
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]


# --- Prometheus, Alertmanager, Grafana ---------------------------------------------------------


def scrape_targets(config: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(job, host, port) of every static scrape target."""
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = str(target).rsplit(":", 1)
                yield job["job_name"], host, int(port)


def test_prometheus_scrapes_every_service_on_its_default_port(services: dict[str, dict[str, Any]]) -> None:
    config = load_yaml(PROMETHEUS_YML)
    # The rules sit beside prometheus.yml in the mounted deploy/prometheus folder.
    assert config["rule_files"] == ["rules/*.yml"]
    assert list((PROMETHEUS_YML.parent / "rules").glob("*.yml"))
    targets = [target for target in scrape_targets(config) if target[1] not in EXPORTERS]
    assert sorted(host for _, host, _ in targets) == sorted(SERVICES)
    exporters = {host: port for _, host, port in scrape_targets(config) if host in EXPORTERS}
    assert exporters == EXPORTERS
    for job in config["scrape_configs"]:
        assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
        assert job.get("metrics_path", "/metrics") == "/metrics"
    for _, host, port in targets:
        assert port == service_port(SETTINGS_OF[host]()), host


def test_prometheus_and_alertmanager_reference_each_other(services: dict[str, dict[str, Any]]) -> None:
    prometheus, alertmanager = services["prometheus"], services["alertmanager"]
    assert mounted_file(prometheus, flag(prometheus["command"], "--config.file")) == PROMETHEUS_YML
    assert mounted_file(alertmanager, flag(alertmanager["command"], "--config.file")) == ALERTMANAGER_YML
    targets = [
        target
        for manager in load_yaml(PROMETHEUS_YML)["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    ((_, _, am_port),) = published(alertmanager)
    assert targets == [f"alertmanager:{am_port}"]
    config = load_yaml(ALERTMANAGER_YML)
    route = mapping(config["route"], "route")
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert route["receiver"] == "dxpulse-default"
    assert receivers["dxpulse-default"] == {"name": "dxpulse-default"}, "the default receiver is a null one"
    assert route["group_by"] == ["alertname", "indicator", "period", "scope"]
    for child in route.get("routes", []):
        assert child["receiver"] in receivers


def test_grafana_uses_the_compose_prometheus(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    assert mounted_file(grafana, "/etc/grafana/provisioning/datasources/prometheus.yml") == GRAFANA_DATASOURCE
    ((source,),) = [load_yaml(GRAFANA_DATASOURCE)["datasources"]]
    ((_, _, prometheus_port),) = published(services["prometheus"])
    assert source["type"] == "prometheus"
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    env = environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_prometheus_yml() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool is not installed")
def test_amtool_accepts_alertmanager_yml() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(ALERTMANAGER_YML)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Dockerfile and .dockerignore --------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, args = stripped.partition(" ")
            result.append((instruction.upper(), args.strip()))
    return result


def test_dockerfile_builds_a_non_root_image_without_a_default_command() -> None:
    instructions = dockerfile_instructions()
    bases = [args.split()[0] for instruction, args in instructions if instruction == "FROM"]
    assert bases
    assert all(base == "python:3.11-slim" for base in bases)
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users
    assert users[-1] not in {"root", "0"}
    assert not [instruction for instruction, _ in instructions if instruction in {"CMD", "ENTRYPOINT"}]
    runs = " ".join(args for instruction, args in instructions if instruction == "RUN")
    if LOCK_FILE.exists():
        assert "-c /tmp/deps/requirements.lock" in runs
    assert "pyproject.toml" in runs


def test_dockerfile_copies_files_the_build_context_keeps() -> None:
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ".dxpulse" in patterns
    assert ".git" in patterns
    for instruction, args in dockerfile_instructions():
        if instruction != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = args.split()
        for source in sources:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), f"COPY {source}: no such file"
            for pattern in patterns:
                name = pattern.removeprefix("**/")
                assert not fnmatch.fnmatch(path, pattern), f".dockerignore's {pattern} drops {source}"
                assert not fnmatch.fnmatch(path, name), f".dockerignore's {pattern} drops {source}"


@pytest.mark.skipif(not LOCK_FILE.exists(), reason="no requirements.lock")
def test_lock_agrees_with_the_pins_of_pyproject() -> None:
    def normal(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    locked = dict(
        (normal(name), version)
        for name, version in (
            line.split("==", 1) for line in LOCK_FILE.read_text(encoding="utf-8").splitlines() if "==" in line
        )
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in project["dependencies"]:
        name, version = requirement.split("==")
        assert locked.get(normal(name)) == version, f"{requirement} but requirements.lock has {name}"
