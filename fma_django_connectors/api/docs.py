"""The interactive docs of the OpenAPI description, runnable under the service's Content-Security-Policy.

drf-spectacular's own pages start Swagger UI and Redoc with an inline script, which the policy (no
``'unsafe-inline'`` script) blocks: a blank page. Swagger UI is served by drf-spectacular's split view
(``urls.py``), whose start script is a same-origin file. Redoc starts from its ``<redoc spec-url>`` element
(template ``fma_django_connectors/redoc.html``), and its search index runs in a Web Worker that Redoc's bundle
creates from a ``blob:`` URL: this page alone adds ``worker-src blob:`` to the policy. That admits no new script
source: only a script the policy already runs can make such a worker. Redoc's sidebar also shows Redocly's logo
from their CDN: the policy blocks it (the docs load nothing from elsewhere), and the link's text remains.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

from fma_django_connectors.gateway.middleware import content_security_policy

REDOC_WORKERS = "worker-src 'self' blob:"


class RedocView(SpectacularRedocView):
    """Redoc without inline script, its search worker allowed."""

    template_name = "fma_django_connectors/redoc.html"

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response: Response = super().get(request, *args, **kwargs)
        response.data["favicon_href"] = SpectacularSwaggerView._swagger_ui_favicon()
        response["Content-Security-Policy"] = f"{content_security_policy()}; {REDOC_WORKERS}"
        return response
