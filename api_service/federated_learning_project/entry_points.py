"""``/``: where a visitor of the service's root goes next.

A browser (``Accept`` preferring ``text/html``) is sent to the dashboard; an API client gets a JSON document
naming the service's entry points, absolute, so a script can follow them without knowing the URL map.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

# Route name of each entry point, as the JSON answer names it.
ENTRY_POINTS = {
    "dashboard": "dashboard:model-list",
    "docs": "swagger-ui",
    "schema": "schema",
    "api": "api-root",
    "token": "api-token-auth",
    "admin": "admin:index",
}


# Only GET and HEAD are served, and they change nothing: other methods get the 405 rather than a CSRF 403.
@csrf_exempt
@require_safe
def root(request: HttpRequest) -> HttpResponse:
    """A redirect to the dashboard for a browser, the entry points in JSON for anyone else (``*/*`` included)."""
    response: HttpResponse
    if request.get_preferred_type(["application/json", "text/html"]) == "text/html":
        response = HttpResponseRedirect(reverse(ENTRY_POINTS["dashboard"]))
    else:
        response = JsonResponse(
            {
                "detail": "FMA API service: the API is under api/, described by schema and docs; "
                "developers follow their models on the dashboard.",
                **{name: request.build_absolute_uri(reverse(route)) for name, route in ENTRY_POINTS.items()},
            }
        )
    # The answer depends on Accept: a cache must not give a browser's redirect to a script, or the reverse.
    patch_vary_headers(response, ["Accept"])
    return response
