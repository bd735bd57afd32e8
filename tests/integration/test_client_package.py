"""dxpulse-client installs into a clean venv without the pipeline's packages and reports to the ingest."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dxpulse.kafka.subscriber import latest_rollups
from dxpulse.postgres.token_store import temporary_tokens
from dxpulse.stack.settings import StackSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
# A combination no other test sends: the rollup below rests on this one report alone.
REPORTER, INDICATOR, PERIOD = "province:79", "edw_connection", "2023-H1"
SERVER_PACKAGES = ("faust", "asyncpg", "uvloop", "aiokafka", "fastapi", "dxpulse", "schemas")

SEND = """
import json, sys
import dxpulse_client as dx

url, token = sys.argv[1], sys.argv[2]
sent = dx.report(sys.argv[3], sys.argv[4], sys.argv[5], dx.flag(True), observed_at="2023-06-30T10:00:00Z")
outcomes = dx.send_all(url, token, [sent])
missing = [m for m in sys.argv[6:] if __import__("importlib.util").util.find_spec(m) is not None]
print(json.dumps({"event_id": sent["event_id"], "status": [o.status for o in outcomes],
                  "reasons": [o.reason for o in outcomes], "server_packages": missing}))
"""


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding dxpulse-client alone, installed from a copy of its folder
    (pip builds in the source folder) with the pins of requirements.lock."""
    folder = tmp_path_factory.mktemp("client")
    source = folder / "source"
    shutil.copytree(
        CLIENT, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__")
    )
    venv = folder / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run(
        [*install, "--disable-pip-version-check", "-c", str(ROOT / "requirements.lock"), str(source)],
        check=True,
        timeout=300,
    )
    print(f"clean venv with dxpulse-client in {time.monotonic() - started:.1f} s")
    return python


def test_the_client_alone_sends_a_report_that_reaches_the_rollup(
    client_python: Path, pipeline: StackSettings
) -> None:
    async def send() -> dict[str, object]:
        async with temporary_tokens(pipeline.database_url, [REPORTER], "client-package") as tokens:
            url = f"http://127.0.0.1:{pipeline.ingest_port}"
            command = [str(client_python), "-c", SEND, url, tokens[REPORTER], REPORTER, INDICATOR, PERIOD]
            # Away from the repository, whose packages a script run there could import.
            done = await asyncio.to_thread(
                subprocess.run,
                [*command, *SERVER_PACKAGES],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=client_python.parents[2],
                env={"PATH": os.environ["PATH"]},
            )
        assert done.returncode == 0, done.stderr
        answer: dict[str, object] = json.loads(done.stdout)
        return answer

    answer = asyncio.run(send())
    assert answer["server_packages"] == []
    assert answer["status"] == ["accepted"], answer["reasons"]
    key = f"{INDICATOR}|{PERIOD}|national"
    deadline = time.monotonic() + 120
    while True:
        rollup = asyncio.run(latest_rollups(pipeline.kafka_bootstrap)).get(key)
        if rollup is not None and rollup.reporters_reported == 1:
            break
        assert time.monotonic() < deadline, f"no rollup {key} resting on the report: {rollup}"
        time.sleep(1)
    assert rollup.numerator == 1
