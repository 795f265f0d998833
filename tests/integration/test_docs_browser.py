"""The interactive API docs in a real browser, under the service's own Content-Security-Policy.

Swagger UI (``/api/docs/``) and Redoc (``/api/docs/redoc/``) are loaded from ``make run``'s server by Debian's
chromium: each must list every operation of the served description, and the browser must report no
Content-Security-Policy violation (a blocked start script leaves a blank page; a blocked worker, a search
that finds nothing).
"""

import json
import re

import pytest

from tests.browser import browser_page, require_chromium
from tests.servers import running_server

pytestmark = pytest.mark.integration

require_chromium()
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("docs")) as running:
        yield running


@pytest.fixture(scope="module")
def operations(server):
    """(method, path, operationId) of every operation the server describes."""
    status, _, body = server.request("GET", "/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert status == 200, body
    paths = json.loads(body)["paths"]
    return {
        (method, path, operation["operationId"])
        for path, methods in paths.items()
        for method, operation in methods.items()
        if method in HTTP_METHODS
    }


@pytest.fixture
def page(server):
    with browser_page(server.url, viewport={"width": 1280, "height": 900}) as new_page:
        new_page.problems = []
        new_page.on("console", lambda message: message.type == "error" and new_page.problems.append(message.text))
        new_page.on("pageerror", lambda error: new_page.problems.append(str(error)))
        yield new_page


def script_sources(response):
    """The sources the page's policy allows scripts from (``script-src``, else ``default-src``)."""
    directives = {}
    for directive in response.headers["content-security-policy"].split(";"):
        name, *sources = directive.split()
        directives.setdefault(name, sources)  # a browser ignores a repeated directive
    return directives.get("script-src", directives["default-src"])


def test_swagger_ui_lists_every_operation_under_the_policy(page, operations):
    response = page.goto("api/docs/")

    assert script_sources(response) == ["'self'"]
    page.locator(".opblock").first.wait_for(timeout=15_000)
    # Tags start expanded: each operation is one block, named by its method and path.
    shown = {
        (block.locator(".opblock-summary-method").inner_text().lower(), block.get_attribute("id"))
        for block in page.locator(".opblock").all()
    }
    assert len(shown) == len(operations)
    register = page.locator("#operations-models-models_register_client")
    assert register.locator(".opblock-summary-path").inner_text().replace("\u200b", "") == (
        "/api/v1/models/{id}/register_client/"
    )
    assert page.problems == []


def test_redoc_lists_every_operation_and_searches_them_under_the_policy(page, operations):
    response = page.goto("api/docs/redoc/")

    assert script_sources(response) == ["'self'"]

    page.locator('[data-section-id^="operation/"]').first.wait_for(timeout=30_000)
    sections = page.locator('[data-section-id^="operation/"]')
    assert {
        re.sub("^operation/", "", section)
        for section in sections.evaluate_all("nodes => nodes.map(node => node.dataset.sectionId)")
    } == {operation_id for _, _, operation_id in operations}
    page.get_by_placeholder("Search...").fill("register_client")
    results = page.locator('[data-role="search:results"] [role="menuitem"]')
    results.first.wait_for(timeout=10_000)
    assert "register_client" in " ".join(results.all_inner_texts())
    # The one refusal: Redoc's sidebar logo from Redocly's CDN (the docs load nothing from elsewhere).
    assert [problem for problem in page.problems if REDOC_LOGO not in problem] == []
    (logo,) = [problem for problem in page.problems if REDOC_LOGO in problem]
    assert "Content Security Policy" in logo
