"""The subscribers' contract: an AsyncAPI 3 document of every topic, built from the topics and schemas."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dxpulse.domain.rules import fingerprint
from dxpulse.kafka.dead_letters import KEY_MAX_BYTES
from dxpulse.kafka.topics import ALERTS, DEAD_LETTERS, REPORTS, ROLLUPS, TOPICS, TopicSpec
from schemas.events import SCHEMA_VERSION, report_key, rollup_key
from schemas.export import JSON_SCHEMA_DIALECT, file_name, schema_documents

ASYNCAPI_FILE = "asyncapi.json"
"""The AsyncAPI document's file name, beside the JSON Schemas it refers to."""

KAFKA_BINDING_VERSION = "0.5.0"
PAYLOAD_FORMAT = "application/schema+json;version=draft-07"
"""The schema format of every payload: the JSON Schema version every AsyncAPI 3 tool reads."""

NO_HEADERS = {
    "type": "object",
    "description": (
        "dxpulse sets no Kafka record headers on this topic. Ignore any header you find: one may be"
        " added without a new topic version (docs/design/schema-evolution.md)."
    ),
}


@dataclass(frozen=True)
class Channel:
    """What the AsyncAPI document says of one topic beside its configuration in ``TOPICS``."""

    channel_id: str
    event: str
    """The exported event name (``schemas.export.EXPORTED``) its values follow."""
    title: str
    summary: str
    key: dict[str, Any]
    """The JSON Schema of the record key, as UTF-8 text."""
    operation: str


CHANNELS: dict[str, Channel] = {
    REPORTS: Channel(
        "reports",
        "report",
        "Report",
        "One reporter's value for an indicator and period, as the ingest API accepted it.",
        {
            "type": "string",
            "description": "indicator|period, so that one aggregator worker owns each pair.",
            "examples": [report_key("emc_connection", "2024-H1")],
        },
        "The ingest service publishes every report it accepts; the aggregator reads them.",
    ),
    ROLLUPS: Channel(
        "rollups",
        "rollup",
        "Rollup",
        "The national figure for one indicator, period and scope.",
        {
            "type": "string",
            "description": (
                "indicator|period|scope. The topic is compacted: read from the beginning, the last value"
                " of each key is its current figure; a record with no value deletes its key."
            ),
            "examples": [rollup_key("emc_connection", "2024-H1", "national")],
        },
        "The aggregator publishes a rollup whenever a report changes a figure.",
    ),
    ALERTS: Channel(
        "alerts",
        "alert",
        "Alert transition",
        "A transition of one alert: firing or resolved.",
        {
            "type": "string",
            "description": "The alert's fingerprint (rule, indicator, period and scope), 16 hex digits.",
            "pattern": "^[0-9a-f]{16}$",
            "examples": [fingerprint("below_target", "emc_connection", "2024-H1", "national")],
        },
        "The alerts service publishes each transition; keep the first event of each transition_id.",
    ),
    DEAD_LETTERS: Channel(
        "deadLetters",
        "dead-letter",
        "Dead letter",
        "A message a worker refused, with the reason and the original bytes.",
        {
            "type": ["string", "null"],
            "description": (
                f"The refused message's key, its first {KEY_MAX_BYTES:,} bytes; none when it had none."
            ),
        },
        "Every worker publishes what it cannot handle here, instead of stopping on it.",
    ),
}


def _config_value(value: str) -> int | float | str:
    """A topic configuration as AsyncAPI's Kafka binding types it: numbers as numbers."""
    for number in (int, float):
        try:
            return number(value)
        except ValueError:
            continue
    return value


def _topic_binding(spec: TopicSpec) -> dict[str, Any]:
    configuration: dict[str, Any] = {"cleanup.policy": ["compact" if spec.compacted else "delete"]}
    configuration |= {name: _config_value(value) for name, value in sorted(spec.configs.items())}
    return {"topic": spec.name, "topicConfiguration": configuration, "bindingVersion": KAFKA_BINDING_VERSION}


def _message(channel: Channel) -> dict[str, Any]:
    return {
        "name": channel.event,
        "title": channel.title,
        "summary": channel.summary,
        "contentType": "application/json",
        "headers": NO_HEADERS,
        "payload": {"schemaFormat": PAYLOAD_FORMAT, "schema": {"$ref": f"./{file_name(channel.event)}"}},
        "bindings": {"kafka": {"key": channel.key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every dxpulse topic, as the application dxpulse sends them.

    Partitions and replicas are left out: they are each deployment's settings
    (``DXPULSE_TOPIC_PARTITIONS``, ``DXPULSE_REPLICATION_FACTOR``).
    """
    specs = {spec.name: spec for spec in TOPICS}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic, channel in CHANNELS.items():
        message_ref = {"$ref": f"#/components/messages/{channel.event}"}
        channels[channel.channel_id] = {
            "address": topic,
            "title": topic,
            "messages": {channel.event: message_ref},
            "bindings": {"kafka": _topic_binding(specs[topic])},
        }
        operations[f"send{channel.channel_id[0].upper()}{channel.channel_id[1:]}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel.channel_id}"},
            "summary": channel.operation,
            "messages": [{"$ref": f"#/channels/{channel.channel_id}/messages/{channel.event}"}],
        }
        messages[channel.event] = _message(channel)
    return {
        "asyncapi": "3.0.0",
        "id": "urn:dxpulse:events",
        "info": {
            "title": "dxpulse events",
            "version": str(SCHEMA_VERSION),
            "description": (
                "The Kafka topics dxpulse publishes. Values are JSON; each payload refers to its JSON"
                f" Schema ({JSON_SCHEMA_DIALECT}) beside this document. Fields may be added to a"
                " published event without a new version: ignore the ones you do not know. A change that"
                " would break a reader goes to a new topic version (docs/design/schema-evolution.md)."
            ),
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def contract_documents() -> dict[str, str]:
    """File name → text of the JSON Schemas and the AsyncAPI document, as committed in schemas/json/."""
    asyncapi = json.dumps(asyncapi_document(), indent=2) + "\n"
    return {**schema_documents(), ASYNCAPI_FILE: asyncapi}


def export(folder: Path) -> list[Path]:
    """Write ``contract_documents`` into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in contract_documents().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
