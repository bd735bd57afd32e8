"""Instruction counts of a stretch of a process under callgrind (``--instr-atstart=no``)."""

from __future__ import annotations

import os
import subprocess
from typing import Annotated

import typer

Callgrind = Annotated[bool, typer.Option(help="Instrument only the measured part (run under callgrind).")]
"""The ``--callgrind`` option of the harnesses that count instructions."""


def instrument(on: bool) -> None:
    """Turn callgrind's instrumentation of this process on or off."""
    state = "on" if on else "off"
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)
