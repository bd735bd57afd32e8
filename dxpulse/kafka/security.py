"""Kafka client security (TLS, SASL) from ``KafkaSecuritySettings``: aiokafka arguments, faust credentials."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

from dxpulse.settings import (
    SASL_PROTOCOLS,
    TLS_PROTOCOLS,
    KafkaSecuritySettings,
    SaslMechanism,
    SecurityProtocol,
)

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


@dataclass(frozen=True)
class KafkaSecurity:
    """How a Kafka client connects: protocol, TLS context and SASL identity.

    The password stays a ``SecretStr``, so the repr (a log line, a traceback's locals) shows
    ``**********``; only ``client_kwargs`` and ``faust_credentials`` hand it to the client.
    """

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    ssl_context: ssl.SSLContext | None = None
    mechanism: SaslMechanism | None = None
    username: str | None = None
    password: SecretStr | None = None

    def _plain_password(self) -> str | None:
        return None if self.password is None else self.password.get_secret_value()

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and ``AIOKafkaAdminClient``."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol.value}
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        if self.mechanism is not None:
            kwargs["sasl_mechanism"] = self.mechanism.value
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self._plain_password()
        return kwargs

    def faust_credentials(self) -> CredentialsT | None:
        """faust's ``broker_credentials``: None for PLAINTEXT."""
        # Imported here: the ingest and the commands use this module without faust (a second to load).
        from faust.auth import SASLCredentials, SSLCredentials

        if self.mechanism is not None:
            # faust takes SASL_SSL from the presence of the TLS context.
            return SASLCredentials(
                username=self.username,
                password=self._plain_password(),
                ssl_context=self.ssl_context,
                mechanism=self.mechanism.value,
            )
        if self.ssl_context is not None:
            return SSLCredentials(self.ssl_context)
        return None


PLAINTEXT = KafkaSecurity()
"""No TLS and no SASL: the local stack's listener, and the default of every client here."""


def sasl_password(settings: KafkaSecuritySettings) -> SecretStr | None:
    """The SASL password, from its setting or read from its file (one trailing newline dropped)."""
    if settings.kafka_sasl_password is not None:
        return settings.kafka_sasl_password
    path = settings.kafka_sasl_password_file
    if path is None:
        return None
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"DXPULSE_KAFKA_SASL_PASSWORD_FILE {path}: {error.strerror}") from None
    # A secret written with `echo` ends with a newline that is not part of the password.
    return SecretStr(text.removesuffix("\n"))


def kafka_security(settings: KafkaSecuritySettings) -> KafkaSecurity:
    """The client security ``settings`` describe; reads the password file and the TLS files."""
    protocol = settings.kafka_security_protocol
    context = None
    if protocol in TLS_PROTOCOLS:
        context = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
    if protocol not in SASL_PROTOCOLS:
        return KafkaSecurity(protocol, context)
    return KafkaSecurity(
        protocol,
        context,
        settings.kafka_sasl_mechanism,
        settings.kafka_sasl_username,
        sasl_password(settings),
    )


def security_from_environment() -> KafkaSecurity:
    """The client security the ``DXPULSE_KAFKA_*`` variables describe (commands, examples, bench)."""
    return kafka_security(KafkaSecuritySettings())
