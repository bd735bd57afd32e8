"""Kafka client security: settings, aiokafka's arguments and faust's credentials; no password in a repr."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import faust
import pytest
import typer
from faust.types.auth import AuthProtocol, SASLMechanism
from pydantic import ValidationError

from dxpulse.cli.kafka_security import command_security
from dxpulse.faust_engine.support import discard_unstarted, new_faust_app
from dxpulse.kafka.security import PLAINTEXT, kafka_security
from dxpulse.settings import KafkaSecuritySettings, WorkerSettings
from dxpulse.stack.testing import make_test_certificates

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_kafka_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's DXPULSE_KAFKA_* variables must not change what these tests see.
    for name in [name for name in os.environ if name.startswith("DXPULSE_KAFKA_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_certificates(tmp_path_factory.mktemp("tls"), "unused").ca


@pytest.fixture
def sasl_ssl(ca: Path) -> KafkaSecuritySettings:
    return KafkaSecuritySettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="dxpulse-aggregate",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=ca,
    )


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    security = kafka_security(KafkaSecuritySettings())
    assert security == PLAINTEXT
    assert security.client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials() is None


def test_sasl_ssl_gives_aiokafka_tls_and_the_scram_user(sasl_ssl: KafkaSecuritySettings) -> None:
    kwargs = kafka_security(sasl_ssl).client_kwargs()
    assert isinstance(kwargs.pop("ssl_context"), ssl.SSLContext)
    assert kwargs == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "dxpulse-aggregate",
        "sasl_plain_password": PASSWORD,
    }


def test_the_tls_context_verifies_the_brokers(sasl_ssl: KafkaSecuritySettings) -> None:
    context = kafka_security(sasl_ssl).ssl_context
    assert context is not None
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_sasl_ssl_gives_faust_sasl_credentials_over_tls(sasl_ssl: KafkaSecuritySettings) -> None:
    credentials = kafka_security(sasl_ssl).faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_SSL
    assert credentials.mechanism == SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("dxpulse-aggregate", PASSWORD)
    assert PASSWORD not in repr(credentials)


def test_sasl_plaintext_has_no_tls() -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="u",
        kafka_sasl_password=PASSWORD,
    )
    security = kafka_security(settings)
    assert "ssl_context" not in security.client_kwargs()
    assert security.client_kwargs()["sasl_mechanism"] == "SCRAM-SHA-256"
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_PLAINTEXT


def test_ssl_alone_gives_faust_ssl_credentials(ca: Path) -> None:
    security = kafka_security(KafkaSecuritySettings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca))
    assert set(security.client_kwargs()) == {"security_protocol", "ssl_context"}
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.context is security.ssl_context


def test_the_password_is_in_no_repr(sasl_ssl: KafkaSecuritySettings) -> None:
    security = kafka_security(sasl_ssl)
    for shown in (repr(sasl_ssl), str(sasl_ssl), repr(security), str(security)):
        assert PASSWORD not in shown
    assert "**********" in repr(security)


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")  # as `echo` writes it
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password_file=secret
    )
    assert kafka_security(settings).client_kwargs()["sasl_plain_password"] == PASSWORD
    secret.unlink()
    with pytest.raises(ValueError, match=r"DXPULSE_KAFKA_SASL_PASSWORD_FILE .*password: No such file"):
        kafka_security(settings)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "SASL_SSL needs DXPULSE_KAFKA_SASL_USERNAME"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"},
            "needs one of DXPULSE_KAFKA_SASL_PASSWORD and DXPULSE_KAFKA_SASL_PASSWORD_FILE",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "p",
                "kafka_sasl_password_file": "/p",
            },
            "needs one of",
        ),
        ({"kafka_sasl_username": "u"}, "a SASL user or password is set but DXPULSE_KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_ssl_cafile": "/ca.pem"}, "TLS files are set but DXPULSE_KAFKA_SECURITY_PROTOCOL is"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "/k.pem"},
            "DXPULSE_KAFKA_SSL_KEYFILE needs DXPULSE_KAFKA_SSL_CERTFILE",
        ),
        ({"kafka_security_protocol": "TLS"}, "Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "Input should be 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'"),
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSecuritySettings(**values)  # type: ignore[arg-type]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DXPULSE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("DXPULSE_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("DXPULSE_KAFKA_SASL_USERNAME", "ingest")
    monkeypatch.setenv("DXPULSE_KAFKA_SASL_PASSWORD", PASSWORD)
    kwargs = kafka_security(WorkerSettings()).client_kwargs()
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]) == ("PLAIN", "ingest")


@pytest.fixture
async def faust_app(sasl_ssl: KafkaSecuritySettings, tmp_path: Path) -> AsyncIterator[faust.App]:
    """A worker's app made on the test's loop, never started (as tests/unit/conftest.py's ``app``)."""
    settings = WorkerSettings(
        **sasl_ssl.model_dump(), kafka_bootstrap="localhost:1", state_dir=tmp_path, replication_factor=3
    )
    made = new_faust_app("unit-secure", settings, web_port=6066)
    try:
        yield made
    finally:
        discard_unstarted(made)


def test_a_worker_connects_with_the_credentials_and_replicates_its_topics(faust_app: faust.App) -> None:
    credentials = faust_app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_SSL
    assert faust_app.conf.topic_replication_factor == 3


def test_a_command_with_wrong_security_settings_ends_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DXPULSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(typer.Exit) as exited:
        command_security()
    assert exited.value.exit_code == 2
    assert capsys.readouterr().err.strip() == (
        "error: Kafka security settings: DXPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs"
        " DXPULSE_KAFKA_SASL_USERNAME"
    )
