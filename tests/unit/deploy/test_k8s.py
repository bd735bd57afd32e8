"""deploy/k8s against the Kubernetes API schemas (kubernetes-validate, offline) and the code it runs."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import kubernetes_validate
import pytest
import typer.main
import yaml
from typer.testing import CliRunner

import dxpulse.cli.db
from dxpulse.business_data import read_business_data
from dxpulse.cli.main import app as cli_app
from dxpulse.settings import CommonSettings, SecurityProtocol, ServiceSettings, WorkerSettings
from services.ingest.app import create_app as create_ingest_app
from services.ingest.settings import IngestSettings
from services.query.app import create_app as create_query_app
from services.query.settings import QuerySettings
from tests.unit.deploy.test_compose import SERVICES, env_names, settings_from
from tests.unit.deploy.test_compose import SETTINGS_OF as COMPOSE_SETTINGS_OF

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
PACKAGED_DATA = ROOT / "dxpulse" / "data"
KUBERNETES_VERSION = "1.30"
"""The oldest Kubernetes release still widely supported; the manifests use nothing newer."""
SETTINGS_OF: dict[str, type[CommonSettings]] = {name: COMPOSE_SETTINGS_OF[name] for name in SERVICES}
"""The long-running services' settings classes, as docker-compose runs them (no kafka-init here)."""
MIGRATE_COMMAND = ["dxpulse", "db", "migrate"]
"""What the Job runs: the console script of pyproject.toml and its subcommand."""
SECRETS = {
    ("dxpulse-database", "url"): "postgresql://dxpulse:secret@postgres.example:5432/dxpulse",
}
"""The Secrets an operator creates for a PLAINTEXT Kafka: the database URL only."""
KAFKA_SECRETS = {
    **SECRETS,
    ("dxpulse-kafka", "username"): "dxpulse",
    ("dxpulse-kafka", "password"): "kafka-secret",
}
"""The Secrets for SASL_SSL: the Kafka user too."""
KAFKA_CA_SECRET = "dxpulse-kafka-ca"
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
"""The volume types Pod Security "restricted" admits."""


def kustomization() -> dict[str, Any]:
    data = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def resources() -> list[dict[str, Any]]:
    docs = []
    for name in kustomization()["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


def generated_config_maps() -> list[dict[str, Any]]:
    """The ConfigMaps of the kustomization's configMapGenerator, as kustomize builds them (without the
    content hash it appends to the name, and rewrites the references to)."""
    maps = []
    for generator in kustomization().get("configMapGenerator", []):
        data = {}
        for entry in generator["files"]:
            key, _, path = entry.rpartition("=") if "=" in entry else (PurePosixPath(entry).name, "", entry)
            data[key] = (K8S / path).read_text(encoding="utf-8")
        labels = generator.get("options", {}).get("labels", {})
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"], "labels": labels},
                "data": data,
            }
        )
    return maps


RESOURCES = resources()
GENERATED = generated_config_maps()


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in RESOURCES if doc["kind"] == kind]


def common_config() -> dict[str, str]:
    (config,) = [doc for doc in by_kind("ConfigMap") if doc["metadata"]["name"] == "dxpulse-common"]
    data = config["data"]
    assert isinstance(data, dict)
    return data


def commented_config() -> dict[str, str]:
    """The variables config.yaml holds commented out for SASL_SSL, each a line ``# <name>: "<value>"``."""
    text = (K8S / "config.yaml").read_text()
    return dict(re.findall(r'^\s*#\s*(DXPULSE_[A-Z0-9_]+):\s*"([^"]*)"\s*$', text, re.MULTILINE))


def workloads() -> dict[str, dict[str, Any]]:
    return {
        doc["spec"]["template"]["spec"]["containers"][0]["name"]: doc
        for doc in RESOURCES
        if doc["kind"] in ("Deployment", "StatefulSet")
    }


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload and Job."""
    for doc in RESOURCES:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(kind/name/container, container, pod spec) of every container, init containers too."""
    for where, spec in pod_specs():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f"{where}/{container['name']}", container, spec


def the_job() -> dict[str, Any]:
    (job,) = by_kind("Job")
    return job


def environment(
    container: dict[str, Any], secrets: dict[tuple[str, str], str], config: dict[str, str] | None = None
) -> dict[str, str]:
    """The variables the container starts with, given the Secrets that exist and dxpulse-common's data."""
    config = common_config() if config is None else config
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "dxpulse-common"
        env.update(config)
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
            continue
        ref = entry["valueFrom"]
        if "secretKeyRef" in ref:
            key = (ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
            if key in secrets:
                env[entry["name"]] = secrets[key]
            else:
                assert ref["secretKeyRef"].get("optional"), f"{entry['name']} needs the Secret {key}"
        else:
            assert ref["configMapKeyRef"]["name"] == "dxpulse-common"
            env[entry["name"]] = config[ref["configMapKeyRef"]["key"]]
    return env


@pytest.fixture(autouse=True)
def _no_dxpulse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's DXPULSE_* variables must not mix with the pods'.
    for name in list(os.environ):
        if name.startswith("DXPULSE_"):
            monkeypatch.delenv(name)


def migrate_command() -> Any:
    """The click command the Job runs, from the ``dxpulse`` command's tree."""
    command: Any = typer.main.get_command(cli_app)
    for name in MIGRATE_COMMAND[1:]:
        command = command.commands[name]
    return command


def quantity(text: str | int) -> float:
    """A Kubernetes quantity (``100m``, ``1``, ``192Mi``, ``1Gi``) as a number."""
    text = str(text)
    for suffix, factor in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("m", 1e-3), ("k", 1e3), ("M", 1e6)):
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def mounts(container: dict[str, Any], spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each mount path of the container, with the volume mounted there."""
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    return {mount["mountPath"]: volumes[mount["name"]] for mount in container.get("volumeMounts", [])}


# --- the files and the schemas ------------------------------------------------------------------


def test_every_manifest_file_is_in_the_kustomization() -> None:
    listed = set(kustomization()["resources"])
    assert {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} == listed


@pytest.mark.parametrize("doc", RESOURCES + GENERATED, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    # strict: an unknown (misspelt) field is an error, not silently ignored as kubectl would.
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_config_maps_referenced_are_defined() -> None:
    defined = {doc["metadata"]["name"] for doc in [*by_kind("ConfigMap"), *GENERATED]}
    for where, container, spec in containers():
        named = {ref["configMapRef"]["name"] for ref in container.get("envFrom", [])}
        named |= {
            e["valueFrom"]["configMapKeyRef"]["name"]
            for e in container.get("env", [])
            if "configMapKeyRef" in e.get("valueFrom", {})
        }
        named |= {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
        assert named <= defined, where


# --- the services -------------------------------------------------------------------------------


def test_the_services_run_with_their_modules() -> None:
    found = workloads()
    assert sorted(found) == sorted(SETTINGS_OF)
    for name, doc in found.items():
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        # The Prometheus scrape config of deploy/k8s/prometheus keys on these.
        assert labels["app.kubernetes.io/part-of"] == "dxpulse"
        assert labels["app.kubernetes.io/component"] == name
        assert [p["name"] for p in container["ports"]] == ["metrics"]


def test_environment_names_are_settings_fields() -> None:
    config = common_config()
    read_by_services = set.union(*(env_names(cls) for cls in SETTINGS_OF.values()))
    assert set(config) <= read_by_services, set(config) - read_by_services
    assert set(commented_config()) <= env_names(ServiceSettings)
    for name, doc in workloads().items():
        container = doc["spec"]["template"]["spec"]["containers"][0]
        names = set(environment(container, KAFKA_SECRETS))
        # pydantic-settings ignores unknown variables: a typo would silently do nothing.
        assert names <= env_names(SETTINGS_OF[name]), names - env_names(SETTINGS_OF[name])
        port = container["ports"][0]["containerPort"]
        assert str(port) in {e.get("value") for e in container["env"]}, f"{name} serves on another port"
    (job_container,) = the_job()["spec"]["template"]["spec"]["containers"]
    read = {param.envvar for param in migrate_command().params if param.envvar}
    assert set(environment(job_container, SECRETS)) <= read


@pytest.mark.parametrize("name", sorted(SETTINGS_OF))
def test_settings_build_from_the_manifests(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    container = workloads()[name]["spec"]["template"]["spec"]["containers"][0]
    settings = settings_from(environment(container, SECRETS), SETTINGS_OF[name], monkeypatch)
    assert settings.database_url == SECRETS[("dxpulse-database", "url")]
    assert settings.kafka_security_protocol == SecurityProtocol.PLAINTEXT
    if isinstance(settings, WorkerSettings):
        # A faust worker's state is on an emptyDir: the root filesystem is read-only.
        volume = mounts(container, workloads()[name]["spec"]["template"]["spec"])[str(settings.state_dir)]
        assert "emptyDir" in volume
    if isinstance(settings, IngestSettings):
        assert settings.ingest_host == "0.0.0.0"
    if isinstance(settings, QuerySettings):
        assert settings.query_host == "0.0.0.0"


def test_aggregator_replicas_do_not_exceed_the_partitions() -> None:
    (aggregate,) = [d for d in by_kind("StatefulSet") if d["metadata"]["name"] == "dxpulse-aggregate"]
    assert 1 <= aggregate["spec"]["replicas"] <= int(common_config()["DXPULSE_TOPIC_PARTITIONS"])


def test_topics_are_replicated_on_the_three_brokers(monkeypatch: pytest.MonkeyPatch) -> None:
    config = common_config()
    assert config["DXPULSE_REPLICATION_FACTOR"] == "3"
    assert config["DXPULSE_MIN_INSYNC_REPLICAS"] == "2"
    settings = settings_from(config, CommonSettings, monkeypatch)
    assert len(settings.kafka_bootstrap.split(",")) == settings.replication_factor
    # One broker may die and writes still reach min.insync.replicas.
    assert settings.min_insync_replicas == settings.replication_factor - 1


# --- migrations ---------------------------------------------------------------------------------


def test_no_service_migrates_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings.model_fields["migrate_at_start"].default is False
    for name, doc in workloads().items():
        container = doc["spec"]["template"]["spec"]["containers"][0]
        env = environment(container, SECRETS)
        assert env.get("DXPULSE_MIGRATE_AT_START", "false") == "false", name
        assert settings_from(env, SETTINGS_OF[name], monkeypatch).migrate_at_start is False, name
        for init in doc["spec"]["template"]["spec"].get("initContainers", []):
            assert init["command"] != MIGRATE_COMMAND, f"{name} migrates in an init container"


def test_the_job_runs_the_migrate_command(monkeypatch: pytest.MonkeyPatch) -> None:
    job = the_job()
    spec = job["spec"]
    # Retried while PostgreSQL comes up; removed once done, so the next release's apply creates it.
    assert 1 <= spec["backoffLimit"] <= 10
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    (container,) = spec["template"]["spec"]["containers"]
    assert container["command"] == MIGRATE_COMMAND
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[MIGRATE_COMMAND[0]] == "dxpulse.cli.main:main"

    called: list[str] = []

    async def fake_apply_migrations(dsn: str, *, timeout_s: float = 60.0) -> list[str]:
        called.append(dsn)
        return ["0001_history.sql"]

    monkeypatch.setattr(dxpulse.cli.db, "apply_migrations", fake_apply_migrations)
    result = CliRunner().invoke(cli_app, MIGRATE_COMMAND[1:], env=environment(container, SECRETS))
    assert result.exit_code == 0, result.output
    assert called == [SECRETS[("dxpulse-database", "url")]]


# --- Pod Security "restricted", resources -------------------------------------------------------


def restricted_problems(container: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """What keeps a container of ``spec`` from Pod Security "restricted" (Kubernetes 1.30), and from a
    read-only root filesystem; empty when nothing does."""
    problems = []
    pod = spec.get("securityContext", {})
    own = container.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(flag)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} is {kinds}")
    if not own.get("runAsNonRoot", pod.get("runAsNonRoot")):
        problems.append("runAsNonRoot is not true")
    for field in ("runAsUser", "runAsGroup"):
        value = own.get(field, pod.get(field))
        if not isinstance(value, int) or value == 0:
            problems.append(f"{field} is {value!r}, not a numeric non-root id")
    seccomp = own.get("seccompProfile", pod.get("seccompProfile", {}))
    if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"seccompProfile is {seccomp}")
    if own.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if own.get("privileged"):
        problems.append("privileged")
    capabilities = own.get("capabilities", {})
    if capabilities.get("drop") != ["ALL"]:
        problems.append(f"capabilities drop {capabilities.get('drop')}, not ALL")
    if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
        problems.append(f"capabilities add {capabilities['add']}")
    if own.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if any("hostPort" in port for port in container.get("ports", [])):
        problems.append("hostPort")
    return problems


def test_the_checker_finds_what_restricted_refuses() -> None:
    assert set(
        restricted_problems({}, {"hostNetwork": True, "volumes": [{"name": "h", "hostPath": {}}]})
    ) >= {
        "hostNetwork",
        "volume h is {'hostPath'}",
        "runAsNonRoot is not true",
        "readOnlyRootFilesystem is not true",
        "allowPrivilegeEscalation is not false",
    }


@pytest.mark.parametrize("where", [where for where, _, _ in containers()])
def test_every_container_is_restricted(where: str) -> None:
    ((container, spec),) = [(c, s) for w, c, s in containers() if w == where]
    assert restricted_problems(container, spec) == []
    # Where Python writes temporary files, with the root filesystem read-only.
    assert "emptyDir" in mounts(container, spec).get("/tmp", {}), f"{where} has no writable /tmp"


@pytest.mark.parametrize("where", [where for where, _ in pod_specs()])
def test_pods_take_no_token_and_no_service_links(where: str) -> None:
    (spec,) = [s for w, s in pod_specs() if w == where]
    assert spec["automountServiceAccountToken"] is False
    # Service links would set DXPULSE_INGEST_PORT=tcp://... and the like: the settings' own names.
    assert spec["enableServiceLinks"] is False


def test_pods_run_as_the_images_user() -> None:
    users = re.findall(r"^USER\s+(\S+)\s*$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    uid, gid = users[-1].split(":")
    for where, spec in pod_specs():
        context = spec["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid)), where


@pytest.mark.parametrize("where", [where for where, _, _ in containers()])
def test_every_container_has_requests_and_limits(where: str) -> None:
    ((container, _),) = [(c, s) for w, c, s in containers() if w == where]
    resources = container["resources"]
    for kind in ("cpu", "memory"):
        request, limit = resources["requests"][kind], resources["limits"][kind]
        assert 0 < quantity(request) <= quantity(limit), f"{kind}: {request} > {limit}"


# --- probes -------------------------------------------------------------------------------------


def probe_path(container: dict[str, Any], probe: str) -> str:
    http = container[probe]["httpGet"]
    assert http["port"] == "metrics"
    path = http["path"]
    assert isinstance(path, str)
    return path


def test_probes_ask_what_each_service_serves() -> None:
    for name, doc in workloads().items():
        container = doc["spec"]["template"]["spec"]["containers"][0]
        ready, alive = probe_path(container, "readinessProbe"), probe_path(container, "livenessProbe")
        if name == "ingest":
            assert (ready, alive) == ("/readyz", "/healthz")
        elif name == "query":
            assert (ready, alive) == ("/healthz", "/metrics")
        else:  # the faust workers serve /metrics only
            assert (ready, alive) == ("/metrics", "/metrics"), name


async def test_ingest_liveness_does_not_need_kafka_or_postgresql() -> None:
    container = workloads()["ingest"]["spec"]["template"]["spec"]["containers"][0]
    # Neither Kafka nor PostgreSQL at these addresses; without the lifespan nothing connects.
    settings = IngestSettings(kafka_bootstrap="127.0.0.1:9", database_url="postgresql://x:y@127.0.0.1:9/z")
    transport = httpx.ASGITransport(app=create_ingest_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        assert (await client.get(probe_path(container, "livenessProbe"))).status_code == 200
        assert (await client.get(probe_path(container, "readinessProbe"))).status_code == 503


async def test_query_liveness_does_not_need_postgresql() -> None:
    container = workloads()["query"]["spec"]["template"]["spec"]["containers"][0]
    app = create_query_app(QuerySettings(database_url="postgresql://x:y@127.0.0.1:9/z"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://query") as client,
    ):
        assert (await client.get(probe_path(container, "livenessProbe"))).status_code == 200
        assert (await client.get(probe_path(container, "readinessProbe"))).status_code == 503


# --- Kafka security -----------------------------------------------------------------------------


def test_kafka_credentials_come_from_optional_secrets() -> None:
    for name, doc in workloads().items():
        container = doc["spec"]["template"]["spec"]["containers"][0]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        if name == "query":  # reads PostgreSQL only: no Kafka settings, no Kafka credentials
            assert set(refs) == {"DXPULSE_DATABASE_URL"}
            assert "envFrom" not in container
            continue
        for variable, key in (
            ("DXPULSE_KAFKA_SASL_USERNAME", "username"),
            ("DXPULSE_KAFKA_SASL_PASSWORD", "password"),
        ):
            assert refs[variable] == {"name": "dxpulse-kafka", "key": key, "optional": True}, name


@pytest.mark.parametrize("name", [name for name in sorted(SETTINGS_OF) if name != "query"])
def test_sasl_ssl_is_wired_through(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """config.yaml switched to SASL_SSL as its comments say, with the Secrets created: the settings
    validate, and the authority file is where the CA Secret is mounted."""
    config = {**common_config(), **commented_config(), "DXPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    spec = workloads()[name]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    settings = settings_from(environment(container, KAFKA_SECRETS, config), SETTINGS_OF[name], monkeypatch)
    assert settings.kafka_security_protocol == SecurityProtocol.SASL_SSL
    assert settings.kafka_sasl_username == KAFKA_SECRETS[("dxpulse-kafka", "username")]
    assert settings.kafka_sasl_password.get_secret_value() == KAFKA_SECRETS[("dxpulse-kafka", "password")]
    cafile = PurePosixPath(str(settings.kafka_ssl_cafile))
    volume = mounts(container, spec)[str(cafile.parent)]
    assert volume["secret"]["secretName"] == KAFKA_CA_SECRET
    assert volume["secret"]["optional"] is True
    assert {"key": "ca.crt", "path": cafile.name} in volume["secret"]["items"]


# --- the business data --------------------------------------------------------------------------


def packaged_data() -> dict[str, bytes]:
    """Every data file of the package by its path under dxpulse/data/."""
    return {
        path.relative_to(PACKAGED_DATA).as_posix(): path.read_bytes()
        for path in sorted(PACKAGED_DATA.rglob("*"))
        if path.suffix in {".yaml", ".csv"}
    }


def test_the_business_data_copies_equal_the_packaged_files() -> None:
    copies = K8S / "business-data"
    found = {
        path.relative_to(copies).as_posix(): path.read_bytes() for path in copies.rglob("*") if path.is_file()
    }
    assert found == packaged_data(), "copy dxpulse/data/ to deploy/k8s/business-data/"
    (generator,) = kustomization()["configMapGenerator"]
    assert generator["name"] == "dxpulse-business-data"
    assert sorted(generator["files"]) == sorted(f"business-data/{path}" for path in packaged_data())


def test_the_business_data_is_mounted_as_the_package_lays_it_out(tmp_path: Path) -> None:
    (generated,) = GENERATED
    for where, container, spec in containers():
        if where.startswith("Job/"):
            continue
        ((mount, volume),) = [(m, v) for m, v in mounts(container, spec).items() if "configMap" in v]
        assert volume["configMap"]["name"] == generated["metadata"]["name"]
        items = {item["key"]: item["path"] for item in volume["configMap"]["items"]}
        assert items == {PurePosixPath(path).name: path for path in packaged_data()}, where
    # The files the pods see, read by the loaders at the paths config.yaml gives.
    for key, path in items.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(generated["data"][key], encoding="utf-8")

    def on_disk(variable: str) -> Path:
        return tmp_path / PurePosixPath(common_config()[variable]).relative_to(mount)

    mounted = read_business_data(on_disk("DXPULSE_CATALOG_PATH"), on_disk("DXPULSE_REGISTRY_PATH"))
    assert mounted == read_business_data()
