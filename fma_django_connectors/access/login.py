"""Logins by password outside HTTP Basic: ``POST /api-token-auth/`` (DRF's token view with the API's parser,
renderer and the login brake), and the login forms (dashboard, admin) under the same brake."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.settings import api_settings

from fma_django_connectors.access.throttling import LoginGuard, TokenRouteThrottle


# Described with the contract's JSON body only: a description listing the form and multipart bodies too makes client
# generators emit a union they cannot build. No credentials: the route is how a developer gets one.
@extend_schema_view(
    post=extend_schema(
        operation_id="token_create",
        tags=["token"],
        auth=[],
        request={"application/json": AuthTokenSerializer},
        responses={200: inline_serializer("Token", fields={"token": serializers.CharField(help_text="The key.")})},
        description="Trades a developer's username and password for the token sent as "
        "`Authorization: Token <key>`. Wrong credentials: 400.",
    )
)
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


def guarded_form_login(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """``view``, a login form (Django's ``LoginView``, the admin's login), with its POSTs counted as guesses.

    The keys are those of Basic and the token route (the IP, the username tried), so a guesser cannot move to
    another door once one answers 429. A guess is counted before the password is checked and taken back when it
    logs the user in (the view redirects with the user authenticated); once the rate is used up, every POST is
    ``429`` JSON with ``Retry-After``, a right password included, as on the other doors.
    """

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        guard = LoginGuard()
        username = request.POST.get("username")
        keys = guard.keys(request, username or None)
        try:
            guard.count_guess(keys)
        except Throttled as throttled:
            return JsonResponse(
                {"detail": str(throttled.detail)},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(throttled.wait)},
            )
        response = view(request, *args, **kwargs)
        if response.status_code == status.HTTP_302_FOUND and request.user.is_authenticated:
            guard.forgive(keys)
        return response

    return guarded
