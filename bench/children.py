"""Starting and stopping the benchmark's aggregator and ingest processes, and reading their memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from dxpulse.stack.testing import free_ports


@dataclass
class Child:
    """One ``python -m bench.servers`` process with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    started: float

    def rss_kib(self) -> int:
        """Resident memory (VmRSS) from /proc: psutil is not a dependency."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"{self.name} (pid {self.process.pid}) has no VmRSS; has it exited?")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}; log {self.log}:\n{tail}")

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM (a clean restart, as a deploy does), then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_child(
    kind: str, size: str, bootstrap: str, work_dir: Path, name: str, profile: bool = False, **env: str
) -> Child:
    """Start a service's app (``bench.servers``: ``kind``) over the synthetic workload of ``size``.

    With ``profile``, py-spy samples it until it exits and writes ``<name>.profile.txt`` (collapsed
    stacks, for flamegraph tools or grep) beside its log.
    """
    port = free_ports(1)[0]
    log = work_dir / f"{name}.log"
    (work_dir / "state").mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    variables = {
        **os.environ,
        "DXPULSE_KAFKA_BOOTSTRAP": bootstrap,
        "DXPULSE_STATE_DIR": str(work_dir / "state"),
        "DXPULSE_AGGREGATE_WEB_PORT": str(port),
        "DXPULSE_INGEST_PORT": str(port),
        "DXPULSE_HISTORY_WEB_PORT": str(port),
        **env,
    }
    with log.open("ab") as out:
        process = subprocess.Popen(  # the same interpreter, from the checkout the bench runs in
            [sys.executable, "-m", "bench.servers", kind, size],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=variables,
            cwd=Path(__file__).resolve().parent.parent,
        )
    if profile:
        subprocess.Popen(  # ends by itself when the sampled process exits
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(process.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                # Read without stopping the process: a sample taken as the process exited once left
                # it a zombie that py-spy held and the bench waited for forever.
                "--nonblocking",
                "--output",
                str(work_dir / f"{name}.profile.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return Child(name, process, log, port, time.perf_counter())


def wait_http(child: Child, path: str, deadline_s: float = 120.0) -> None:
    """Poll ``path`` on the child's port until it answers 200."""
    give_up = time.monotonic() + deadline_s
    while True:
        child.check_alive()
        try:
            if httpx.get(f"http://127.0.0.1:{child.port}{path}", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > give_up:
            raise TimeoutError(
                f"{child.name} did not answer {path} within {deadline_s:.0f} s; see {child.log}"
            )
        time.sleep(0.2)
