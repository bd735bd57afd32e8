"""Detached background processes: launching, pid files, liveness, ports and stopping."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from dxpulse.stack.errors import StackError

T = TypeVar("T")

# Runs in a short-lived interpreter that starts the real process in a session of its own and
# exits at once: the process is then nobody's child, so it outlives the CLI, and the caller
# holds no Popen whose finalizer would warn "subprocess is still running".
_LAUNCHER = """
import json, os, subprocess, sys
spec = json.load(sys.stdin)
with open(spec["log"], "ab") as log:
    proc = subprocess.Popen(
        spec["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env=spec["env"], cwd=spec["cwd"], start_new_session=True,
    )
print(proc.pid, flush=True)
os._exit(0)
"""


@dataclass(frozen=True)
class PidRecord:
    """A process the stack started: its pid and its start time in clock ticks since boot.

    The start time tells a live process from an unrelated one that reused the pid after a
    reboot or a crash; ``None`` when it could not be read (no /proc). ``port`` is where the
    process serves, kept so ``status`` can show it for any component.
    """

    pid: int
    start_time: int | None = None
    port: int | None = None


def parse_proc_stat(text: str) -> tuple[str, int]:
    """The state letter and start time from the text of /proc/<pid>/stat."""
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); field 22 (starttime) is 19 further on.
    return rest[0], int(rest[19])


def _proc_stat(pid: int) -> tuple[str, int] | None:
    try:
        return parse_proc_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def start_time_of(pid: int) -> int | None:
    """Start time of a running process, or ``None`` when unknown."""
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def is_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` runs and, when ``start_time`` is given, is the same process as then."""
    if pid <= 0:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # No /proc: fall back to a signal-0 probe, which cannot see pid reuse.
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state, started = stat
    if start_time is not None and started != start_time:
        return False
    # A zombie has exited; it lingers when the reaper (PID 1 in a container) does not wait.
    # A zombie leader whose other threads still run is a process still exiting: its open
    # files, listening sockets included, close only when the last thread is gone.
    if state in ("Z", "X"):
        return _other_threads_run(pid)
    return True


def _other_threads_run(pid: int) -> bool:
    try:
        return any(task.name != str(pid) for task in Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False


def write_pid_file(path: Path, record: PidRecord) -> None:
    """Write the pid file atomically, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    start = "" if record.start_time is None else str(record.start_time)
    port = "" if record.port is None else str(record.port)
    tmp.write_text(f"{record.pid}\n{start}\n{port}\n")
    tmp.replace(path)


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in a pid file, or ``None`` when the file is missing or not a pid file."""
    try:
        lines = path.read_text().split("\n")
    except FileNotFoundError:
        return None
    try:
        fields = [int(v) if v.strip() else None for v in [*lines, "", ""][:3]]
    except ValueError:
        return None
    pid, start, port = fields
    if pid is None:
        return None
    return PidRecord(pid, start, port)


def live_pid(path: Path) -> PidRecord | None:
    """The process a pid file names if it still runs; a stale or garbled file is removed."""
    record = read_pid_file(path)
    if record is not None and is_alive(record.pid, record.start_time):
        return record
    path.unlink(missing_ok=True)
    return None


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


def launch(
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> PidRecord:
    """Start ``argv`` detached in its own session, output appended to ``log``.

    ``env`` is added to this process's environment.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with log.open("a") as out:
        # A marker per start, so the tail shown after a failure is clearly this run's.
        out.write(f"\n=== {stamp} dxpulse stack: starting {' '.join(argv)}\n")
    spec = {
        "argv": list(argv),
        "log": str(log),
        "env": {**os.environ, **(env or {})},
        "cwd": str(cwd) if cwd is not None else None,
    }
    result = subprocess.run(  # noqa: S603 - argv is built by the stack, not from user text
        [sys.executable, "-c", _LAUNCHER],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        reason = result.stderr.strip().split("\n")[-1] if result.stderr.strip() else "unknown"
        raise StackError(f"could not start {argv[0]}: {reason}", result.stderr.strip())
    pid = int(result.stdout.strip())
    return PidRecord(pid, start_time_of(pid))


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        # Processes the stack launched lead their own process group: signal it whole, so
        # helpers they spawned go too. Anything else gets the signal alone.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def stop_processes(records: Sequence[PidRecord], timeout_s: float = 30.0) -> list[PidRecord]:
    """SIGTERM all, SIGKILL those alive after ``timeout_s``; returns those that were running.

    All get the signal before any is waited on, so stopping n processes takes the time of the
    slowest, not the sum.
    """
    running = [r for r in records if is_alive(r.pid, r.start_time)]

    def all_gone() -> bool:
        return not any(is_alive(r.pid, r.start_time) for r in running)

    for record in running:
        _signal(record.pid, signal.SIGTERM)
    if not wait_for(all_gone, timeout_s, 0.1):
        for record in running:
            if is_alive(record.pid, record.start_time):
                _signal(record.pid, signal.SIGKILL)
        if not wait_for(all_gone, 10.0, 0.1):
            pids = " ".join(str(r.pid) for r in running if is_alive(r.pid, r.start_time))
            raise StackError(f"processes {pids} survived SIGKILL; stop them by hand")
    return running


def kill_process(record: PidRecord, timeout_s: float = 10.0) -> None:
    """SIGKILL the process (its group, as ``_signal``) and wait until it is gone: a crash, for tests."""
    _signal(record.pid, signal.SIGKILL)
    if not wait_for(lambda: not is_alive(record.pid, record.start_time), timeout_s, 0.05):
        raise StackError(f"process {record.pid} survived SIGKILL; stop it by hand")


def stop_process(record: PidRecord, timeout_s: float = 30.0) -> bool:
    """SIGTERM the process, SIGKILL it if it outlives ``timeout_s``; False if it was not running."""
    return bool(stop_processes([record], timeout_s))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from async code (an async test, a notebook): a fresh loop in a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
