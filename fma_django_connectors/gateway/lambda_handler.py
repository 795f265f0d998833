"""``django_lambda_handler``: API Gateway REST (v1), HTTP API (v2) and ALB events served by Django."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from apig_wsgi import make_lambda_handler
from django.core.wsgi import get_wsgi_application

from fma_django_connectors.conf import fma_settings

__all__ = ["django_lambda_handler"]

# Keys of a proxy response that carry the answer itself; a refused answer replaces them.
_CONTENT_KEYS = ("body", "isBase64Encoded", "headers", "multiValueHeaders", "cookies")


@cache
def _apig_wsgi_handler() -> Any:
    # Built once per warm container: Django's set-up is the bulk of a cold start.
    return make_lambda_handler(get_wsgi_application(), binary_support=True)


def django_lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Serve one HTTP event (any of the three kinds apig-wsgi understands) through Django."""
    return _within_response_limit(_apig_wsgi_handler()(event, context))


def _within_response_limit(response: dict[str, Any]) -> dict[str, Any]:
    """The response, or a 413 JSON answer when Lambda could not return it (``FMA_RESPONSE_MAX_BYTES``).

    The weights routes keep their answers under the limit themselves (binary formats, 303 redirects);
    this catches whatever else would grow past it, since Lambda fails such a response and API Gateway
    answers a bare 502 instead.
    """
    limit = fma_settings.FMA_RESPONSE_MAX_BYTES
    body = response.get("body") or ""
    # Only a body near the limit needs the exact measure, which serialises the whole response.
    if len(body) < limit // 2:
        return response
    size = len(json.dumps(response))
    if size <= limit:
        return response
    detail = (
        f"The response would be {size} bytes, more than the {limit} bytes an AWS Lambda function can return. "
        "Ask for weights in a binary format (?format=safetensors or ?format=npz): large ones are answered "
        "with a 303 redirect to a download URL."
    )
    refused = {key: value for key, value in response.items() if key not in _CONTENT_KEYS}
    refused["statusCode"] = 413
    if "statusDescription" in refused:  # ALB
        refused["statusDescription"] = "413 Payload Too Large"
    content_type = "application/json"
    if "multiValueHeaders" in response:
        refused["multiValueHeaders"] = {"Content-Type": [content_type]}
    else:
        refused["headers"] = {"Content-Type": content_type}
    refused["body"] = json.dumps({"detail": detail})
    refused["isBase64Encoded"] = False
    return refused
