"""The stack's service processes as the tests watch them: which pid each has, and whether it lives."""

from __future__ import annotations

import os

from dxpulse.stack.config import SERVICE_NAMES
from dxpulse.stack.stack import Stack


def service_pids(stack: Stack) -> dict[str, int | None]:
    """Each service's pid (None: not running); a service restarted in between has another one."""
    return {status.name: status.pid for status in stack.status() if status.name in SERVICE_NAMES}


def all_alive(pids: dict[str, int | None]) -> bool:
    """Whether every one of ``pids`` is a live process."""
    for pid in pids.values():
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
    return True
