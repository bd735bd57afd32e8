"""Test helper: a real stack on free ports in a temporary folder, stopped afterwards."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from dxpulse.stack.config import ServiceSpec
from dxpulse.stack.settings import StackSettings
from dxpulse.stack.stack import Stack

log = logging.getLogger(__name__)

_PORT_FIELDS: tuple[str, ...] = (
    "kafka_port",
    "kafka_controller_port",
    "postgres_port",
    "ingest_port",
    "aggregate_web_port",
    "alerts_web_port",
    "history_web_port",
    "query_port",
    "prometheus_port",
    "alertmanager_port",
    "postgres_exporter_port",
)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    # All sockets stay bound until every port is picked, so the kernel hands out distinct ones.
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def port_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _every_port(settings: StackSettings) -> list[int]:
    """The ports of ``settings``, the other brokers' included."""
    ports = [int(getattr(settings, name)) for name in _PORT_FIELDS]
    for first in (settings.kafka_port, settings.kafka_controller_port):
        ports += settings.kafka_ports(first)[1:]
    if settings.kafka_sasl_ssl_port is not None:
        ports += settings.kafka_ports(settings.kafka_sasl_ssl_port)
    return ports


def stack_settings_for_tests(state_dir: Path, **overrides: object) -> StackSettings:
    """Settings for a throwaway stack: free ports, no monitoring unless asked, shared jar cache.

    The ports of brokers after the first follow the first's by ``kafka_port_step``: picked again
    until those are free too.
    """
    for _ in range(20):
        values: dict[str, object] = dict(zip(_PORT_FIELDS, free_ports(len(_PORT_FIELDS)), strict=True))
        # Monitoring only when asked for, e.g. alertmanager_config=path to run Alertmanager too.
        values.update(state_dir=state_dir, prometheus_config=None, alertmanager_config=None, prometheus=False)
        values.update(overrides)
        settings = StackSettings(**values)  # type: ignore[arg-type]
        ports = _every_port(settings)
        if len(set(ports)) == len(ports) and all(port_free(port) for port in ports):
            return settings
    raise RuntimeError("no free ports for the brokers after the first: set kafka_port_step")


@contextmanager
def running_stack(
    tmp_dir: Path,
    with_services: bool = False,
    *,
    services: Sequence[ServiceSpec] | None = None,
    report: Callable[[str], None] = log.info,
    **overrides: object,
) -> Iterator[StackSettings]:
    """Install what is missing, bring a stack up under ``tmp_dir`` and take it down on exit.

    Ports are free ones, never the defaults, so a developer's own stack is left alone.
    Failures to start raise (a test using this fails rather than skips).
    """
    settings = stack_settings_for_tests(tmp_dir / "stack", **overrides)
    stack = Stack(settings, report=report)
    stack.install()
    try:
        stack.up(with_services=with_services, services=services)
        yield settings
    finally:
        stack.down()


@dataclass(frozen=True)
class TestCertificates:
    """A throwaway authority and the brokers' certificate it signed, for 127.0.0.1 and localhost."""

    ca: Path
    """The authority's certificate (PEM): a client's ``DXPULSE_KAFKA_SSL_CAFILE``."""
    keystore: Path
    """The brokers' key and certificate chain (PKCS12): ``DXPULSE_STACK_KAFKA_SSL_KEYSTORE``."""


def make_test_certificates(folder: Path, keystore_password: str) -> TestCertificates:
    """Generate, with openssl, an authority and a broker certificate it signed (for openssl's 30 days)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    key, request, cert = folder / "broker.key", folder / "broker.csr", folder / "broker.pem"
    extensions = folder / "broker.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    keystore = folder / "broker.p12"
    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    ca_extensions = ("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    commands: list[tuple[str | Path, ...]] = [
        ("req", "-x509", *new_key, "-keyout", ca_key, "-out", ca, "-subj", "/CN=dxpulse CA", *ca_extensions),
        ("req", "-new", *new_key, "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"),
        ("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-out", cert, "-extfile", extensions),
        (
            "pkcs12",
            "-export",
            "-in",
            cert,
            "-inkey",
            key,
            "-certfile",
            ca,
            "-out",
            keystore,
            "-passout",
            "stdin",
        ),
    ]
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the TLS tests need openssl: apt-get install openssl")
    for argv in commands:
        # The keystore password on stdin: a command line is visible to every user of the machine.
        subprocess.run(  # noqa: S603 - fixed arguments
            [openssl, *map(str, argv)], input=keystore_password, capture_output=True, text=True, check=True
        )
    return TestCertificates(ca, keystore)
