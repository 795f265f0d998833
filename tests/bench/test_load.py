"""bench/load.py against the real local server on a tiny load; its latencies are reported, never asserted."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import RunningServer

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "load.py"
PASSWORD = "load-bench-password"


def run_load(server, *extra):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--url", server.url, "--admin", f"admin:{PASSWORD}", "--settle", "60", *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def server(tmp_path):
    running = RunningServer(tmp_path / "data", admin_password=PASSWORD).wait_ready()
    yield running
    running.stop()


@pytest.mark.integration
def test_a_small_load_reports_each_call_and_recounts_without_violation(server):
    result = run_load(server, "--clients", "4", "--requests", "60")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "requests/s" in result.stdout
    for call in ("register", "push", "latest"):
        assert any(line.startswith(call) for line in result.stdout.splitlines()), result.stdout
    assert "recount (API):" in result.stdout
    assert " 0 violations" in result.stdout
