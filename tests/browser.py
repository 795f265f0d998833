"""Debian's chromium driven by Playwright, for the tests that look at the service's pages in a real browser.

:func:`require_chromium` skips the calling test module, saying why, only where chromium or Playwright is not
installed (``.ci/run`` installs chromium).
"""

import contextlib
import shutil

import pytest

# Flags for a headless chromium in a container with no network beyond the local server.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def require_chromium():
    """Playwright's ``sync_api`` module and the chromium binary; skips the module without them."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (Pipfile dev-packages)")
    return sync_api, chromium


@contextlib.contextmanager
def browser_page(base_url, **context_options):
    """A new page of a fresh headless chromium whose relative URLs go to ``base_url``."""
    sync_api, chromium = require_chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base_url, **context_options)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
