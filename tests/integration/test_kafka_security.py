"""Clients from the security settings use the stack's SASL_SSL port; the password is in no log."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from dxpulse.faust_engine.support import discard_unstarted, new_faust_app
from dxpulse.kafka.security import KafkaSecurity, kafka_security
from dxpulse.kafka.subscriber import read_records
from dxpulse.kafka.topics import TopicSpec, ensure_topics
from dxpulse.settings import KafkaSecuritySettings, WorkerSettings
from dxpulse.stack import StackSettings
from dxpulse.stack.testing import free_ports, make_test_certificates, running_stack

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Secured:
    """A stack serving SASL_SSL, and what a client needs to use it."""

    stack: StackSettings
    bootstrap: str
    client: KafkaSecuritySettings
    password: str
    folder: Path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    folder = tmp_path_factory.mktemp("secured")
    keystore_password, password = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
    certificates = make_test_certificates(folder / "tls", keystore_password)
    password_file = folder / "secrets" / "kafka-password"
    password_file.parent.mkdir()
    password_file.write_text(password + "\n")
    with running_stack(
        folder,
        kafka_sasl_ssl_port=free_ports(1)[0],
        kafka_ssl_keystore=certificates.keystore,
        kafka_ssl_keystore_password=keystore_password,
        kafka_scram_password=password,
    ) as stack:
        assert stack.kafka_sasl_ssl_bootstrap is not None
        client = KafkaSecuritySettings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username=stack.kafka_scram_username,
            kafka_sasl_password_file=password_file,
            kafka_ssl_cafile=certificates.ca,
        )
        yield Secured(stack, stack.kafka_sasl_ssl_bootstrap, client, password, folder)


async def _produce(bootstrap: str, security: KafkaSecurity, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **security.client_kwargs())
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


async def test_clients_from_the_settings_produce_and_consume_over_sasl_ssl(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every line aiokafka logs, for the check below
    security = kafka_security(secured.client)
    topic = TopicSpec("security-test.sasl-ssl")
    # The admin client of ensure_topics, then a producer and dxpulse's subscriber, all over SASL_SSL.
    assert await ensure_topics(secured.bootstrap, 3, extra=(topic,), security=security) == [topic.name]
    values = [f"secret-{n}".encode() for n in range(20)]
    await _produce(secured.bootstrap, security, topic.name, values)
    records = await read_records(secured.bootstrap, topic.name, security=security)
    assert sorted(record.value for record in records) == sorted(values)
    assert secured.password not in caplog.text


async def test_faust_credentials_from_the_settings_produce_over_sasl_ssl(
    secured: Secured, tmp_path: Path
) -> None:
    settings = WorkerSettings(
        **secured.client.model_dump(), kafka_bootstrap=secured.bootstrap, state_dir=tmp_path
    )
    app = new_faust_app("security-test", settings, web_port=free_ports(1)[0])
    topic = TopicSpec("security-test.faust")
    await ensure_topics(secured.bootstrap, 3, extra=(topic,), security=kafka_security(settings))
    producer = app.producer
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic.name, b"k", b"from faust", None, None, None)
    finally:
        await producer.stop()
        discard_unstarted(app)
    assert sent.topic == topic.name
    records = await read_records(secured.bootstrap, topic.name, security=kafka_security(settings))
    assert [record.value for record in records] == [b"from faust"]


async def test_a_wrong_password_is_refused(secured: Secured) -> None:
    wrong = replace(kafka_security(secured.client), password=SecretStr("not-" + secured.password))
    producer = AIOKafkaProducer(
        bootstrap_servers=secured.bootstrap, request_timeout_ms=5_000, **wrong.client_kwargs()
    )
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


def test_the_password_is_in_no_file_the_stack_writes(secured: Secured) -> None:
    written = [path for path in (secured.folder / "stack").rglob("*") if path.is_file()]
    assert any(path.name == "kafka.log" for path in written)
    leaking = [path for path in written if secured.password.encode() in path.read_bytes()]
    assert leaking == []
