"""The benchmarks' peers: dxpulse's rollup job as a Kafka Streams and a Quix Streams application."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.children import Child
from bench.synthetic import PERIODS, Workload
from dxpulse.domain.periods import parse_period
from dxpulse.domain.rollup import NATIONAL_SCOPE, scopes_of
from dxpulse.stack.settings import StackSettings

HERE = Path(__file__).resolve().parent
KAFKA_STREAMS_SOURCES = HERE / "kafka_streams"
QUIX_SOURCES = HERE / "quix"


class PeerUnavailable(Exception):
    """A peer cannot be built on this machine; the message says why (the bench prints it and skips)."""


@dataclass(frozen=True)
class Peer:
    """One peer: how it is named in the figures, and how it is built and started."""

    name: str
    slug: str
    build: Callable[[Path, Callable[[str], None]], list[str]]
    """(cache folder, report) → the command that runs it, before its six arguments."""
    pace_setter: bool = False
    """The aggregator's throughput target includes doing at least this peer's reports/s: the
    other Python stream processor, so the fastest way to run this job in Python."""


def cache_dir() -> Path:
    """Where built peers are kept: beside the local stack's Kafka jars (``DXPULSE_STACK_CACHE_DIR``)."""
    return StackSettings().cache_dir.expanduser() / "bench"


def _digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(HERE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise PeerUnavailable(f"{what} failed (exit {result.returncode}):\n{tail}")


def build_kafka_streams(cache: Path, report: Callable[[str], None]) -> list[str]:
    """Resolve the pom's jars with Maven and compile the sources with javac, once per source digest."""
    sources = [
        KAFKA_STREAMS_SOURCES / "pom.xml",
        KAFKA_STREAMS_SOURCES / "log4j.properties",
        *sorted((KAFKA_STREAMS_SOURCES / "src").rglob("*.java")),
    ]
    home = cache / f"kafka-streams-{_digest(sources)}"
    command = [
        "java",
        f"-Dlog4j.configuration=file:{home / 'log4j.properties'}",
        "-cp",
        f"{home / 'classes'}:{home / 'libs'}/*",
        "dxpulse.bench.RollupPeer",
    ]
    if (home / "complete").is_file():
        return command
    for tool in ("mvn", "javac", "java"):
        if shutil.which(tool) is None:
            raise PeerUnavailable(f"{tool} not found: the Kafka Streams peer needs a JDK and Maven")
    report(f"building the Kafka Streams peer into {home} (once) ...")
    started = time.monotonic()
    shutil.rmtree(home, ignore_errors=True)  # a build cut short leaves no "complete" stamp
    home.mkdir(parents=True)
    _run(
        [
            *("mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(sources[0])),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={home / 'libs'}",
            "-DincludeScope=runtime",
        ],
        "mvn dependency:copy-dependencies",
    )
    javac = ["javac", "--release", "17", "-d", str(home / "classes"), "-cp", f"{home / 'libs'}/*"]
    _run([*javac, *(str(path) for path in sources[2:])], "javac")
    shutil.copy(sources[1], home / "log4j.properties")
    (home / "complete").touch()
    report(f"Kafka Streams peer built in {time.monotonic() - started:.0f} s")
    return command


def build_quix(cache: Path, report: Callable[[str], None]) -> list[str]:
    """A virtual environment of requirements.txt (pinned), once per its digest."""
    requirements = QUIX_SOURCES / "requirements.txt"
    home = cache / f"quix-{_digest([requirements])}"
    python = home / "bin" / "python"
    command = [str(python), str(QUIX_SOURCES / "app.py")]
    if (home / "complete").is_file():
        return command
    report(f"building the Quix Streams peer's virtual environment in {home} (once) ...")
    started = time.monotonic()
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(home)], "python -m venv")
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-r", str(requirements)],
        "pip install quixstreams",
    )
    (home / "complete").touch()
    report(f"Quix Streams peer built in {time.monotonic() - started:.0f} s")
    return command


PEERS = (
    Peer("Kafka Streams", "kafka-streams", build_kafka_streams),
    Peer("Quix Streams", "quix", build_quix, pace_setter=True),
)


def write_spec(workload: Workload, path: Path) -> None:
    """``spec_of(workload)`` as the JSON file the peers read."""
    path.write_text(json.dumps(spec_of(workload)))


def spec_of(workload: Workload) -> dict[str, Any]:
    """The job's catalog and registry for the peers: each indicator's kind and items, and each
    (indicator, period)'s scopes with their expected reporters (the registry in force on the
    period's last day, as the aggregator judges them)."""
    scopes: dict[str, dict[str, list[str]]] = {}
    for indicator in workload.catalog.indicators:
        for label in PERIODS[: workload.size.periods]:
            period = parse_period(label, indicator.period_type)
            scopes[f"{indicator.id}|{label}"] = {
                scope: list(
                    workload.registry.expected_sorted(
                        tuple(indicator.groups) if scope == NATIONAL_SCOPE else (scope,), period.end
                    )
                )
                for scope in scopes_of(indicator)
            }
    indicators = {
        indicator.id: {"kind": indicator.kind, "items": list(indicator.items)}
        for indicator in workload.catalog.indicators
    }
    return {"indicators": indicators, "scopes": scopes}


def start_peer(
    command: list[str],
    name: str,
    bootstrap: str,
    app_id: str,
    topics: tuple[str, str],
    spec: Path,
    work_dir: Path,
) -> Child:
    """Start a peer reading ``topics[0]`` as consumer group ``app_id`` and writing rollups to
    ``topics[1]``, with its state under ``work_dir/<app_id>-state``; its output goes to ``<name>.log``."""
    log = work_dir / f"{name}.log"
    state = work_dir / f"{app_id}-state"
    state.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*command, bootstrap, app_id, *topics, str(spec), str(state)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work_dir,
        )
    return Child(name, process, log, 0, time.perf_counter())
