"""A cold start in a fresh interpreter, on the test settings changed by a few lines: how a deployment's
settings mistake shows at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def cold_start(
    folder: Path,
    settings_text: str = "",
    *,
    environment: dict[str, str] | None = None,
    code: str = "import service_initialization",
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (default: the API function's cold start) on ``tests.settings`` plus ``settings_text``, with
    ``environment`` added to this process's; the finished process. ``folder`` receives the settings module."""
    (folder / "changed_settings.py").write_text(
        "from tests.settings import *  # noqa: F403\n" + textwrap.dedent(settings_text)
    )
    env = {
        **os.environ,
        **(environment or {}),
        "DJANGO_SETTINGS_MODULE": "changed_settings",
        "PYTHONPATH": os.pathsep.join([str(folder), str(REPOSITORY), str(REPOSITORY / "api_service")]),
    }
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def last_error_line(process: subprocess.CompletedProcess[str]) -> str:
    """The last line of the process's stderr: the exception that stopped it."""
    return process.stderr.strip().splitlines()[-1]
