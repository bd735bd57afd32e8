"""Prerequisite checks and the one-time install: system packages via apt, Kafka jars via Maven."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dxpulse.stack.config import ALERTMANAGER_BIN, POSTGRES_EXPORTER_BIN, PROMETHEUS_BIN, kafka_pom
from dxpulse.stack.errors import StackError
from dxpulse.stack.settings import StackSettings

Report = Callable[[str], None]

APT_PACKAGES: tuple[str, ...] = (
    "postgresql",
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-postgres-exporter",
)
# Leftovers of a resolve that was killed are removed once they are this old (another
# install may still be filling a younger one).
_STALE_TMP_S = 3600.0


def is_root() -> bool:
    return os.geteuid() == 0


def postgres_version_key(path: Path) -> tuple[int, ...]:
    """The PostgreSQL version of an initdb path, as numbers to sort by."""
    # /usr/lib/postgresql/<version>/bin/initdb: sort 9.6 < 15 < 16 numerically, not as text.
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.parent.name))


def postgres_bin_dir() -> Path | None:
    """Folder of initdb and pg_ctl: the newest Debian install, else whatever is on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=postgres_version_key)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def parse_java_major(version_output: str) -> int | None:
    """Major version from ``java -version`` output ('1.8.0_392' is 8, '17.0.9' is 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def require_java() -> None:
    """Fail unless a Java 11+ runtime is on PATH (Kafka 3.9 brokers need 11; 17 recommended)."""
    hint = "install a JDK 17 (apt-get install openjdk-17-jre-headless)"
    if shutil.which("java") is None:
        raise StackError(f"java not found: {hint}")
    out = subprocess.run(
        ["java", "-version"],  # noqa: S607 - whichever java is on PATH is the one Kafka uses
        capture_output=True,
        text=True,
        check=False,
    )
    major = parse_java_major(out.stderr + out.stdout)
    if major is not None and major < 11:
        raise StackError(f"java {major} is too old for Kafka: {hint}")


def require_maven() -> None:
    if shutil.which("mvn") is None:
        raise StackError("mvn not found: install Maven to fetch the Kafka jars (apt-get install maven)")


def require_postgres() -> Path:
    """initdb/pg_ctl folder, or an error saying how to install PostgreSQL."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise StackError(
            "PostgreSQL not installed: run `dxpulse stack install` as root or apt-get install postgresql"
        )
    return bin_dir


def kafka_libs(settings: StackSettings) -> Path:
    return settings.kafka_home / "libs"


def kafka_jars_ready(settings: StackSettings) -> bool:
    """Whether this Kafka version's jars are cached (the folder only appears complete)."""
    return (kafka_libs(settings) / f"kafka_2.13-{settings.kafka_version}.jar").is_file()


def require_kafka_jars(settings: StackSettings) -> Path:
    if not kafka_jars_ready(settings):
        raise StackError(
            f"Kafka {settings.kafka_version} jars are not in {settings.kafka_home}:"
            " run `dxpulse stack install`"
        )
    return kafka_libs(settings)


def missing_apt_packages() -> list[str]:
    """The Debian packages the stack runs whose programs are not installed."""
    present = {
        "postgresql": postgres_bin_dir() is not None,
        "prometheus": PROMETHEUS_BIN.exists(),
        "prometheus-alertmanager": ALERTMANAGER_BIN.exists(),
        "prometheus-postgres-exporter": POSTGRES_EXPORTER_BIN.exists(),
    }
    return [name for name in APT_PACKAGES if not present[name]]


def install_system_packages(report: Report) -> None:
    """apt-get install what is missing; nothing at all (no apt-get update) when all is there."""
    missing = missing_apt_packages()
    if not missing:
        report(f"system packages present: {', '.join(APT_PACKAGES)}")
        return
    names = " ".join(missing)
    if not is_root():
        raise StackError(f"{names} not installed: run as root or apt-get install {names}")
    if shutil.which("apt-get") is None:
        raise StackError(f"{names} not installed and there is no apt-get: install them by hand")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv, what in (
        (["apt-get", "update", "-q"], "updating package lists"),
        (["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], names),
    ):
        report(f"apt: {what} ...")
        started = time.monotonic()
        result = subprocess.run(  # noqa: S603 - fixed argv
            argv, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StackError(
                f"`{' '.join(argv)}` failed (exit {result.returncode}): run it by hand to see why",
                "\n".join((result.stdout + result.stderr).strip().split("\n")[-15:]),
            )
        report(f"apt: {what} done in {time.monotonic() - started:.0f} s")


def _clean_stale_tmp(parent: Path) -> None:
    for leftover in parent.glob(".tmp-kafka-*"):
        try:
            if time.time() - leftover.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            continue


def resolve_kafka(settings: StackSettings, report: Report) -> Path:
    """Cache the Kafka jars of ``settings.kafka_version``, once; returns their folder."""
    home = settings.kafka_home
    if kafka_jars_ready(settings):
        report(f"Kafka {settings.kafka_version} jars cached in {home}")
        return kafka_libs(settings)
    require_java()
    require_maven()
    home.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(home.parent)
    report(f"resolving Kafka {settings.kafka_version} jars with Maven into {home} (once) ...")
    started = time.monotonic()
    # Resolved beside the final folder and renamed into place: a run killed half way leaves
    # only a temporary folder, never a cache that looks complete.
    with tempfile.TemporaryDirectory(prefix=".tmp-kafka-", dir=home.parent) as tmp:
        staged = Path(tmp) / "home"
        (Path(tmp) / "pom.xml").write_text(kafka_pom(settings.kafka_version))
        result = subprocess.run(  # noqa: S603 - fixed argv
            [  # noqa: S607 - mvn from PATH, checked above
                "mvn",
                "-q",
                "-B",
                # No ANSI colour codes in the output shown on failure.
                "-Dstyle.color=never",
                "-f",
                str(Path(tmp) / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staged / 'libs'}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        jar = staged / "libs" / f"kafka_2.13-{settings.kafka_version}.jar"
        if result.returncode != 0 or not jar.is_file():
            raise StackError(
                f"Maven could not resolve Kafka {settings.kafka_version} (exit"
                f" {result.returncode}): check the version and access to Maven Central",
                "\n".join((result.stdout + result.stderr).strip().split("\n")[-15:]),
            )
        try:
            staged.rename(home)
        except OSError:
            # Another install finished first; its copy is as good as ours.
            if not kafka_jars_ready(settings):
                raise StackError(
                    f"{home} exists but holds no Kafka jar: remove it and run install again"
                ) from None
    count = len(list(kafka_libs(settings).glob("*.jar")))
    report(f"Kafka jars resolved in {time.monotonic() - started:.0f} s ({count} jars)")
    return kafka_libs(settings)


def install(settings: StackSettings, report: Report = print) -> None:
    """Everything the stack needs that is not Python: quick when it is all there already."""
    install_system_packages(report)
    require_java()
    resolve_kafka(settings, report)
