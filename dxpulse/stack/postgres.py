"""The stack's own PostgreSQL cluster: initdb once, start and stop with pg_ctl, database setup."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncpg

from dxpulse.postgres.migrations import apply_migrations
from dxpulse.stack.config import INCLUDE_LINE, POSTGRES, StackPaths, postgres_conf
from dxpulse.stack.errors import StackError
from dxpulse.stack.install import is_root, require_postgres
from dxpulse.stack.process import PidRecord, is_alive, port_open, run_sync, tail
from dxpulse.stack.settings import StackSettings

Report = Callable[[str], None]

POSTGRES_OS_USER = "postgres"


def _postgres_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        raise StackError(
            "running as root but there is no `postgres` user: apt-get install postgresql"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _as_server_user(argv: Sequence[str]) -> list[str]:
    # PostgreSQL refuses to run as root: as root, run its tools as the `postgres` user.
    if is_root():
        return ["runuser", "-u", POSTGRES_OS_USER, "--", *argv]
    return list(argv)


def _hand_to_server_user(*paths: Path) -> None:
    """As root, give these files/folders (recursively) to the `postgres` user."""
    if not is_root():
        return
    uid, gid = _postgres_ids()
    for top in paths:
        os.chown(top, uid, gid)
        if top.is_dir():
            for dirpath, dirnames, filenames in os.walk(top):
                for name in dirnames + filenames:
                    os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def untraversable_parents(path: Path) -> list[Path]:
    """Ancestors of ``path`` that other users cannot enter (no o+x), outermost first."""
    blocked = []
    for parent in reversed(path.absolute().parents):
        if not parent.stat().st_mode & stat.S_IXOTH:
            blocked.append(parent)
    return blocked


def grant_traversal(path: Path, report: Report) -> None:
    """As root, let the `postgres` user reach ``path``: add o+x (enter, not list) where missing.

    State dirs under private folders (pytest's /tmp/pytest-of-root is 0700) are otherwise
    unreachable for the server, which fails with a bare "permission denied".
    """
    if not is_root():
        return
    uid, _ = _postgres_ids()
    for parent in untraversable_parents(path):
        if parent.stat().st_uid == uid:
            continue
        parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
        report(f"postgres: allowed the postgres user to traverse {parent} (chmod o+x)")


def postgres_pid(paths: StackPaths) -> PidRecord | None:
    """The postmaster named in postmaster.pid, if it runs."""
    try:
        first = paths.postmaster_pid.read_text().split("\n")[0]
        record = PidRecord(int(first))
    except (FileNotFoundError, PermissionError, ValueError):
        return None
    return record if is_alive(record.pid) else None


def _run(argv: Sequence[str], what: str, cwd: Path, log: Path | None = None) -> None:
    result = subprocess.run(  # noqa: S603 - argv built here
        _as_server_user(argv), capture_output=True, text=True, check=False, cwd=cwd
    )
    if result.returncode != 0:
        details = (result.stdout + result.stderr).strip()
        if log is not None:
            details = f"{details}\n--- {log}:\n{tail(log)}"
        where = f": see {log}" if log is not None else ""
        raise StackError(f"{what} failed (exit {result.returncode}){where}", details)


def init_cluster(settings: StackSettings, paths: StackPaths, bin_dir: Path, report: Report) -> None:
    """initdb into the state dir once, with a password-protected superuser."""
    if (paths.postgres_data / "PG_VERSION").is_file():
        return
    report(f"postgres: initdb in {paths.postgres_data}")
    paths.postgres_dir.mkdir(parents=True, exist_ok=True)
    grant_traversal(paths.postgres_dir, report)
    # initdb into a side folder renamed at the end: a half-made cluster is never mistaken
    # for a finished one on the next run.
    staging = paths.postgres_dir / "data.init"
    shutil.rmtree(staging, ignore_errors=True)
    pwfile = paths.postgres_dir / "initdb.pw"
    pwfile.write_text(settings.postgres_password + "\n")
    pwfile.chmod(0o600)
    _hand_to_server_user(paths.postgres_dir)
    try:
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(staging),
                "-U",
                settings.postgres_user,
                f"--pwfile={pwfile}",
                # Password checks even on the socket: the superuser's name is no secret.
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            ],
            "initdb",
            cwd=paths.postgres_dir,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with (staging / "postgresql.conf").open("a") as conf:
        conf.write(INCLUDE_LINE)
    staging.rename(paths.postgres_data)


def _admin_connect_args(settings: StackSettings, database: str) -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "port": settings.postgres_port,
        "user": settings.postgres_user,
        "password": settings.postgres_password,
        "database": database,
    }


async def _prepare_database(settings: StackSettings, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn = await asyncpg.connect(**_admin_connect_args(settings, "postgres"))
            break
        except (OSError, asyncpg.CannotConnectNowError):
            # pg_ctl -w returns once the server is up, but it may still be finishing recovery.
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", settings.postgres_db)
        if not exists:
            name = settings.postgres_db.replace('"', '""')
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return await apply_migrations(settings.database_url)


def start_postgres(
    settings: StackSettings, paths: StackPaths, report: Report, timeout_s: float = 60.0
) -> PidRecord:
    """Start the cluster unless it runs, then create the database and apply migrations."""
    bin_dir = require_postgres()
    started = time.monotonic()
    record = postgres_pid(paths)
    if record is not None:
        report(f"postgres: already running (pid {record.pid}) on 127.0.0.1:{settings.postgres_port}")
    else:
        if port_open(settings.postgres_port):
            raise StackError(
                f"port {settings.postgres_port} is taken by a process the stack did not start:"
                " stop it or set DXPULSE_STACK_POSTGRES_PORT"
            )
        init_cluster(settings, paths, bin_dir, report)
        # Rewritten at every start, so a changed port or state dir takes effect.
        (paths.postgres_data / "dxpulse.conf").write_text(postgres_conf(settings, paths))
        socket_dir = paths.postgres_socket_dir(settings.postgres_port)
        socket_dir.mkdir(parents=True, exist_ok=True)
        log = paths.log(POSTGRES)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        grant_traversal(log.parent, report)
        grant_traversal(socket_dir, report)
        _hand_to_server_user(paths.postgres_data / "dxpulse.conf", socket_dir, log)
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(paths.postgres_data),
                "-l",
                str(log),
                "-w",
                "-t",
                str(int(timeout_s)),
            ],
            "pg_ctl start",
            cwd=paths.postgres_dir,
            log=log,
        )
        record = postgres_pid(paths)
        if record is None:
            raise StackError(f"postgres exited right after starting: see {log}", tail(log))
        report(f"postgres: started (pid {record.pid}) on 127.0.0.1:{settings.postgres_port}")
    try:
        applied = run_sync(_prepare_database(settings, timeout_s))
    except (OSError, asyncpg.PostgresError) as exc:
        raise StackError(
            f"postgres runs but the database could not be prepared ({exc}): see {paths.log(POSTGRES)}",
            tail(paths.log(POSTGRES)),
        ) from exc
    if applied:
        report(f"postgres: applied migrations {', '.join(applied)}")
    report(f"postgres: ready in {time.monotonic() - started:.1f} s")
    return PidRecord(record.pid, None, settings.postgres_port)


def stop_postgres(paths: StackPaths, report: Report, timeout_s: float = 60.0) -> None:
    """pg_ctl stop -m fast: disconnect clients, checkpoint, exit."""
    record = postgres_pid(paths)
    if record is None:
        return
    bin_dir = require_postgres()
    # Between start and stop something (pytest making temp dirs) may have closed a parent again.
    grant_traversal(paths.postgres_dir, report)
    started = time.monotonic()
    socket_dir = _socket_dir_in_use(paths)
    _run(
        [
            str(bin_dir / "pg_ctl"),
            "stop",
            "-D",
            str(paths.postgres_data),
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(timeout_s)),
        ],
        "pg_ctl stop",
        cwd=paths.postgres_dir,
        log=paths.log(POSTGRES),
    )
    if socket_dir is not None and not socket_dir.is_relative_to(paths.root):
        # The short fallback under /tmp is ours alone; do not leave one behind per test run.
        shutil.rmtree(socket_dir, ignore_errors=True)
    report(f"postgres: stopped (pid {record.pid}) in {time.monotonic() - started:.1f} s")


def _socket_dir_in_use(paths: StackPaths) -> Path | None:
    # postmaster.pid line 5 is the first unix_socket_directories entry of the running server.
    try:
        lines = paths.postmaster_pid.read_text().split("\n")
    except OSError:
        return None
    return Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None
