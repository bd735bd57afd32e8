"""The Kafka client security of a ``dxpulse`` command, from the ``DXPULSE_KAFKA_*`` variables."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from dxpulse.kafka.security import KafkaSecurity, security_from_environment


def command_security() -> KafkaSecurity:
    """The security the environment describes; a wrong one ends the command with one line (exit 2)."""
    try:
        return security_from_environment()
    except ValidationError as error:
        reason = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
    except (ValueError, OSError) as error:  # a password file, CA or certificate that cannot be read
        reason = str(error)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[red]error:[/] Kafka security settings: {escape(reason)}")
    raise typer.Exit(2)
