"""deploy/k8s against the Kubernetes API schemas (kubernetes-validate, offline) and the settings classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from dxpulse.settings import CommonSettings
from tests.unit.deploy.test_compose import SERVICES, env_names
from tests.unit.deploy.test_compose import SETTINGS_OF as COMPOSE_SETTINGS_OF

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30"
"""The oldest Kubernetes release still widely supported; the manifests use nothing newer."""
SETTINGS_OF: dict[str, type[CommonSettings]] = {name: COMPOSE_SETTINGS_OF[name] for name in SERVICES}
"""The long-running services' settings classes, as docker-compose runs them (no kafka-init here)."""


def resources() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


RESOURCES = resources()


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in RESOURCES if doc["kind"] == kind]


def test_every_manifest_file_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} == listed


@pytest.mark.parametrize("doc", RESOURCES, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    # strict: an unknown (misspelt) field is an error, not silently ignored as kubectl would.
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def workloads() -> dict[str, dict[str, Any]]:
    return {
        doc["spec"]["template"]["spec"]["containers"][0]["name"]: doc
        for doc in RESOURCES
        if doc["kind"] in ("Deployment", "StatefulSet")
    }


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
    (config,) = by_kind("ConfigMap")
    common = set(config["data"])
    assert common <= env_names(CommonSettings)
    for name, doc in workloads().items():
        container = doc["spec"]["template"]["spec"]["containers"][0]
        names = common | {e["name"] for e in container["env"]}
        assert names <= env_names(SETTINGS_OF[name]), name
        port = container["ports"][0]["containerPort"]
        assert str(port) in {e.get("value") for e in container["env"]}, f"{name} serves on another port"


def test_aggregator_replicas_do_not_exceed_the_partitions() -> None:
    (config,) = by_kind("ConfigMap")
    (aggregate,) = [d for d in by_kind("StatefulSet") if d["metadata"]["name"] == "dxpulse-aggregate"]
    assert 1 <= aggregate["spec"]["replicas"] <= int(config["data"]["DXPULSE_TOPIC_PARTITIONS"])
