"""The ingest process started with DXPULSE_LOG_FORMAT=json writes nothing but JSON lines, throttled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dxpulse.stack.testing import free_ports

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_ingest_writes_one_json_object_per_line_while_kafka_is_away(tmp_path: Path) -> None:
    # Nothing listens on the Kafka and PostgreSQL ports: the ingest retries, and says so, repeatedly.
    http, kafka, postgres = free_ports(3)
    environment = {
        **os.environ,
        "DXPULSE_LOG_FORMAT": "json",
        "DXPULSE_INGEST_HOST": "127.0.0.1",
        "DXPULSE_INGEST_PORT": str(http),
        "DXPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}",
        "DXPULSE_KAFKA_RETRY_INTERVAL_S": "0.2",
        "DXPULSE_DATABASE_URL": f"postgresql://dxpulse:dxpulse@127.0.0.1:{postgres}/dxpulse",
    }
    stderr, stdout = tmp_path / "stderr", tmp_path / "stdout"
    with stderr.open("w") as errors, stdout.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"], cwd=ROOT, env=environment, stdout=output, stderr=errors
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{http}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, stderr.read_text()
                assert time.monotonic() < deadline, "the ingest did not answer /healthz"
                time.sleep(0.3)
            refused = httpx.post(f"http://127.0.0.1:{http}/v1/reports", json={})
            assert refused.status_code == 401
            time.sleep(2)  # ten retries of Kafka, each logged, the repeats held back
        finally:
            process.terminate()
            process.wait(timeout=60)
    # uvicorn writes its access lines to stdout, the rest to stderr.
    lines = (stderr.read_text(encoding="utf-8") + stdout.read_text(encoding="utf-8")).splitlines()
    entries = [json.loads(line) for line in lines]
    assert {e["service"] for e in entries} == {"dxpulse-ingest"}
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    access = [e["message"] for e in entries if e["logger"] == "uvicorn.access"]
    # Access lines are one kind for the throttle: the POST's waits for the count's line.
    assert len(access) == 1
    assert '"GET /healthz HTTP/1.1" 200' in access[0]
    retries = [
        e for e in entries if e["logger"] == "services.ingest.kafka" and "not reachable" in e["message"]
    ]
    assert len(retries) == 1, [e["message"] for e in retries]
    assert any(e["logger"] == "aiokafka" and e["level"] == "ERROR" for e in entries)
