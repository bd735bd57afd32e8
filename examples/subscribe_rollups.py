"""Example downstream subscriber: keep the current national figures from the compacted rollup topic.

Uses only aiokafka and JSON, as a team outside dxpulse would (or the same contract in any language:
the key is ``indicator|period|scope``, the value follows ``schemas/json/rollup.v1.schema.json``, and
``schemas/json/asyncapi.json`` describes every topic).

    python -m examples.subscribe_rollups --bootstrap 127.0.0.1:9092

On a cluster with TLS and SCRAM users, add ``--security-protocol SASL_SSL --username USER
--password-file FILE --cafile CA.pem`` (``--sasl-mechanism`` is SCRAM-SHA-512 unless given).

Semantics a subscriber can rely on:
- the topic is compacted: reading it from the beginning gives every key's current figure (and maybe
  some older ones not compacted yet), so keep the LAST value per key; a record with no value
  deletes its key;
- a rollup's ``revision`` is a hash of its figures: the same revision twice is the same figure (the
  aggregator may re-send after a crash), so skip it;
- messages of one key arrive in order (one partition per ``indicator|period``).

The figures are held in memory, so every start reads the topic from the beginning again, with no
consumer group and no committed offsets. A group's committed offsets would resume after the last
record read: a restarted subscriber would then never see the figures of keys that did not change
since (docs/guide/subscribers.md). A subscriber that keeps its figures in a database of its own can
resume from offsets instead, if it stores them in the same transaction as the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context

TOPIC = "dxpulse.rollups.v1"


def apply_rollup(current: dict[str, dict[str, Any]], key: str, rollup: dict[str, Any]) -> bool:
    """Keep the last rollup per key; False when it repeats the figure already held (same revision)."""
    held = current.get(key)
    if held is not None and held["revision"] == rollup["revision"]:
        return False
    current[key] = rollup
    return True


def apply_record(current: dict[str, dict[str, Any]], key: bytes, value: bytes | None) -> str | None:
    """Apply one record of the topic; the line to print, or None when no figure changed.

    A record with no value (a tombstone) deletes its key's figure.
    """
    name = key.decode()
    if value is None:
        deleted = current.pop(name, None)
        return None if deleted is None else f"{name.replace('|', ' ')}: deleted"
    rollup = json.loads(value)
    return describe(rollup) if apply_rollup(current, name, rollup) else None


def describe(rollup: dict[str, Any]) -> str:
    value = rollup["value"]
    figure = "no data" if value is None else f"{value:.3f}"
    if rollup["denominator"] is not None:
        figure += f" ({rollup['numerator']:g}/{rollup['denominator']:g})"
    return (
        f"{rollup['indicator']} {rollup['period']} {rollup['scope']}: {figure},"
        f" {rollup['reporters_reported']}/{rollup['reporters_expected']} reported"
    )


def security_options(args: argparse.Namespace) -> dict[str, Any]:
    """aiokafka's keyword arguments for TLS and SASL, from the command line."""
    options: dict[str, Any] = {"security_protocol": args.security_protocol}
    if args.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=args.cafile)
    if args.security_protocol.startswith("SASL_"):
        # From a file, not the command line, where any user of the machine could read it.
        password = Path(args.password_file).read_text().removesuffix("\n")
        options |= {
            "sasl_mechanism": args.sasl_mechanism,
            "sasl_plain_username": args.username,
            "sasl_plain_password": password,
        }
    return options


async def follow(
    bootstrap: str,
    idle_exit_s: float | None = None,
    security: dict[str, Any] | None = None,
    topic: str = TOPIC,
) -> dict[str, dict[str, Any]]:
    """Print every figure from the topic's beginning on, then every new one; with ``idle_exit_s``,
    return the figures held once nothing new came for that long."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        # No group: the consumer takes every partition, commits nothing, and with no committed
        # offset to resume from starts each partition at its beginning.
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **(security or {}),
    )
    await consumer.start()
    current: dict[str, dict[str, Any]] = {}
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=int((idle_exit_s or 1.0) * 1000))
            if not batches and idle_exit_s is not None:
                return current
            for messages in batches.values():
                for message in messages:
                    line = None if message.key is None else apply_record(current, message.key, message.value)
                    if line is not None:
                        print(line, flush=True)
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--topic", default=TOPIC, help="the rollup topic")
    parser.add_argument(
        "--idle-exit", type=float, default=None, metavar="SECONDS", help="stop when idle this long"
    )
    parser.add_argument(
        "--security-protocol",
        default="PLAINTEXT",
        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
        help="how the connection is carried",
    )
    parser.add_argument(
        "--sasl-mechanism",
        default="SCRAM-SHA-512",
        choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
        help="with a SASL protocol",
    )
    parser.add_argument("--username", help="SASL user")
    parser.add_argument("--password-file", help="file holding the SASL password")
    parser.add_argument("--cafile", help="PEM certificates of the brokers' authority (TLS)")
    args = parser.parse_args()
    if args.security_protocol.startswith("SASL_") and not (args.username and args.password_file):
        parser.error(f"--security-protocol {args.security_protocol} needs --username and --password-file")
    asyncio.run(follow(args.bootstrap, args.idle_exit, security_options(args), args.topic))


if __name__ == "__main__":
    main()
