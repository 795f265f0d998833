"""Response headers every answer of the service carries, and JSON for Django's bare 405.

- ``Cache-Control: no-store`` on any answer that did not choose its own caching (API JSON, the token):
  weights and tokens must not sit in a shared or browser cache.
- ``Content-Security-Policy`` (setting ``FMA_CONTENT_SECURITY_POLICY``) on HTML pages (admin, docs,
  dashboard) that set none of their own: scripts, styles and frames from the service itself only.
- A method no route of the service implements (``BREW``, ``TRACE``) is refused before any view: the
  admin would answer it with an HTML CSRF page, DRF with its own 405. A method a Django view does not
  take gets a bodiless 405 from Django: both become ``{"detail": 'Method "X" not allowed.'}`` as DRF
  words it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from fma_django_connectors.conf import fma_settings

# Every method some route of the service takes; any other is a 405 wherever it is sent.
SERVED_METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")


class SecurityHeadersMiddleware:
    """Adds the headers above; placed after WhiteNoise, so static files keep their long-lived caching."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in SERVED_METHODS:
            response = _json_not_allowed(request, allow=", ".join(SERVED_METHODS))
        else:
            response = self.get_response(request)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            response = _json_not_allowed(request, allow=response.get("Allow"))
        if "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        if response.get("Content-Type", "").startswith("text/html") and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = fma_settings.FMA_CONTENT_SECURITY_POLICY
        return response


def _json_not_allowed(request: HttpRequest, *, allow: str | None) -> HttpResponse:
    answer = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
    if allow:
        answer["Allow"] = allow
    return answer
