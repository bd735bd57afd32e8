"""The AsyncAPI document is valid AsyncAPI 3.0.0 and says what topics.py and the schemas say."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from dxpulse.cli.main import app
from dxpulse.kafka.contract import ASYNCAPI_FILE, CHANNELS, asyncapi_document, contract_documents
from dxpulse.kafka.topics import TOPICS
from schemas.export import EXPORTED, file_name

ROOT = Path(__file__).resolve().parents[3]
ASYNCAPI_SCHEMA = ROOT / ".venv/npm/node_modules/@asyncapi/specs/schemas/3.0.0.json"
"""The official AsyncAPI 3.0.0 JSON Schema, from npm's @asyncapi/specs (scripts/bootstrap installs it)."""


@cache
def _validator() -> jsonschema.Draft7Validator:
    assert ASYNCAPI_SCHEMA.is_file(), f"{ASYNCAPI_SCHEMA} is missing: run scripts/bootstrap"
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    assert schema["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    return jsonschema.Draft7Validator(schema)


def _errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(error.absolute_path)}: {error.message}" for error in _validator().iter_errors(document)]


def test_the_document_is_valid_asyncapi_3() -> None:
    document = json.loads(contract_documents()[ASYNCAPI_FILE])
    assert document["asyncapi"] == "3.0.0"
    assert _errors(document) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("asyncapi",), "3.0.1"),
        (("channels", "rollups", "bindings", "kafka", "topicConfiguration", "cleanup.policy"), ["forever"]),
        (("operations", "sendRollups", "action"), "publish"),
        (("components", "messages", "rollup", "bindings", "kafka", "bindingVersion"), "9.9.9"),
    ],
)
def test_the_validation_would_catch_a_broken_document(path: tuple[str, ...], value: Any) -> None:
    document = copy.deepcopy(asyncapi_document())
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _errors(document) != []


def test_every_topic_is_a_channel_with_its_configuration() -> None:
    document = asyncapi_document()
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    assert set(channels) == {spec.name for spec in TOPICS} == set(CHANNELS)
    for spec in TOPICS:
        binding = channels[spec.name]["bindings"]["kafka"]
        configuration = binding["topicConfiguration"]
        assert configuration["cleanup.policy"] == ["compact" if spec.compacted else "delete"]
        assert {name: str(value) for name, value in configuration.items() if name != "cleanup.policy"} == (
            spec.configs
        )
    rollups = channels["dxpulse.rollups.v1"]["bindings"]["kafka"]["topicConfiguration"]
    assert rollups["cleanup.policy"] == ["compact"]
    assert "retention.ms" not in rollups
    reports = channels["dxpulse.reports.v1"]["bindings"]["kafka"]["topicConfiguration"]
    assert reports["retention.ms"] == 90 * 24 * 3600 * 1000


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [str(node["$ref"])] if "$ref" in node else []
        return own + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for value in node for r in _references(value)]
    return []


def test_every_reference_resolves_and_every_payload_is_an_exported_schema() -> None:
    documents = contract_documents()
    document = json.loads(documents[ASYNCAPI_FILE])
    files = set()
    for reference in _references(document):
        if reference.startswith("#/"):
            node = document
            for part in reference[2:].split("/"):
                node = node[part]
        else:
            assert reference.startswith("./"), reference
            assert reference[2:] in documents, reference
            files.add(reference[2:])
    assert files == {file_name(name) for name in EXPORTED}
    for name, message in document["components"]["messages"].items():
        assert message["payload"]["schema"] == {"$ref": f"./{file_name(name)}"}
        assert message["payload"]["schemaFormat"] == "application/schema+json;version=draft-07"
        assert message["bindings"]["kafka"]["key"]["type"]


def test_operations_send_each_channels_message() -> None:
    document = asyncapi_document()
    for operation in document["operations"].values():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert operation["action"] == "send"
        (message,) = operation["messages"]
        assert message["$ref"].startswith(f"#/channels/{channel}/messages/")


def test_export_schemas_writes_the_whole_contract(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export-schemas", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.iterdir()}
    assert written == contract_documents()


def test_each_key_example_is_a_key_the_code_makes_and_fits_its_schema() -> None:
    keys = {
        name: m["bindings"]["kafka"]["key"]
        for name, m in asyncapi_document()["components"]["messages"].items()
    }
    assert keys["rollup"]["examples"] == ["emc_connection|2024-H1|national"]
    assert keys["report"]["examples"] == ["emc_connection|2024-H1"]
    for key in keys.values():
        jsonschema.Draft7Validator.check_schema(key)
        for example in key.get("examples", []):
            assert list(jsonschema.Draft7Validator(key).iter_errors(example)) == []
    assert list(jsonschema.Draft7Validator(keys["alert"]).iter_errors("not-a-fingerprint")) != []
