"""``POST /api-token-auth/``: DRF's token view with the API's parser, renderer and the login brake."""

from __future__ import annotations

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.settings import api_settings

from fma_django_connectors.access.throttling import TokenRouteThrottle


class TokenLoginView(ObtainAuthToken):
    """Trades a developer's username and password for its token.

    DRF's own view parses JSON with the standard library (a deeply nested body was a 500) and has no
    throttle: here the body goes through the API's JSON parser, with its size and depth limits (form and
    multipart bodies, flat by nature, stay accepted as DRF's view took them), and each attempt counts as a
    password guess.
    """

    parser_classes = [*api_settings.DEFAULT_PARSER_CLASSES, FormParser, MultiPartParser]
    renderer_classes = api_settings.DEFAULT_RENDERER_CLASSES
    throttle_classes = [TokenRouteThrottle]


token_login = TokenLoginView.as_view()
