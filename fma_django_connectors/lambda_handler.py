"""``django_lambda_handler``: API Gateway REST (v1), HTTP API (v2) and ALB events served by Django."""

from __future__ import annotations

from functools import cache
from typing import Any

from apig_wsgi import make_lambda_handler
from django.core.wsgi import get_wsgi_application

from fma_core.handlers import handlers

__all__ = ["django_lambda_handler"]


@cache
def _apig_wsgi_handler() -> Any:
    # Built once per warm container: Django's set-up is the bulk of a cold start.
    return make_lambda_handler(get_wsgi_application(), binary_support=True)


@handlers.register()
def django_lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve one HTTP event (any of the three kinds apig-wsgi understands) through Django."""
    return _apig_wsgi_handler()(event, context)
