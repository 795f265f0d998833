"""The routes of the OpenAPI description (``/api/schema/``) and of its interactive docs (``/api/docs/``).

The description honours ``?format=json|yaml``, which the API's own negotiation leaves aside (there ``?format=``
names a weights format): a client generator pointed at ``/api/schema/?format=json`` gets JSON.

drf-spectacular's own docs pages start Swagger UI and Redoc with an inline script, which the service's
Content-Security-Policy (no ``'unsafe-inline'`` script) blocks: a blank page. Swagger UI is served by
drf-spectacular's split view (``urls.py``), whose start script is a same-origin file. Redoc starts from its
``<redoc spec-url>`` element (template ``fma_django_connectors/redoc.html``), and its search index runs in a Web
Worker that Redoc's bundle creates from a ``blob:`` URL: this page alone adds ``worker-src blob:`` to the
policy. That admits no new script source: only a script the policy already runs can make such a worker.
Redoc's sidebar also shows Redocly's logo from their CDN: the policy blocks it (the docs load nothing from
elsewhere), and the link's text remains.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from fma_django_connectors.conf import fma_settings

REDOC_WORKERS = "worker-src 'self' blob:"


class SchemaFormatNegotiation(DefaultContentNegotiation):
    """``?format=`` names the description's renderer (``json`` or ``yaml``); without it, ``Accept`` decides."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        requested = format_suffix or request.query_params.get("format")
        known = sorted({renderer.format for renderer in renderers})
        if requested is not None and requested not in known:
            raise ValidationError({"format": [f"Unknown format {requested!r}; one of {', '.join(known)}."]})
        selected: tuple[BaseRenderer, str] = super().select_renderer(request, renderers, requested)
        return selected


class SchemaView(SpectacularAPIView):
    """The description, YAML by default; JSON with ``?format=json`` or ``Accept: application/vnd.oai.openapi+json``."""

    content_negotiation_class = SchemaFormatNegotiation

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        if force:  # answering an error (a refused ``?format=``): JSON, as every error of the API
            renderer = api_settings.DEFAULT_RENDERER_CLASSES[0]()
            return renderer, renderer.media_type
        negotiated: tuple[BaseRenderer, str] = super().perform_content_negotiation(request, force)
        return negotiated


class RedocView(SpectacularRedocView):
    """Redoc without inline script, its search worker allowed."""

    template_name = "fma_django_connectors/redoc.html"

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response: Response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = f"{fma_settings.FMA_CONTENT_SECURITY_POLICY}; {REDOC_WORKERS}"
        return response
