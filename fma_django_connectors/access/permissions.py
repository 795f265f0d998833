"""Who may call what: developers and staff (Django users) versus federated clients (``CLIENT-UUID``)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from fma_django_connectors import selectors
from fma_django_connectors.access.authentication import ClientPrincipal, request_signed
from fma_django_connectors.models import Client, FederatedModel

SIGNATURE_REQUIRED = (
    "This model takes signed requests only: sign it with the client's key (RFC 9421: Signature-Input, Signature)."
)


class IsDeveloper(BasePermission):
    """Authenticated Django users (developers and staff); federated clients are refused (403)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not isinstance(user, ClientPrincipal))


class IsRegisteredClient(BasePermission):
    """On a federated model: a client only if it is registered to it (developers are scoped by the queryset).

    On a ``signed`` model, a registered client's unsigned request is a 401: its uuid alone opens nothing.
    """

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if isinstance(request.auth, Client):
            if not selectors.client_is_registered(model=obj, client=request.auth):
                return False
            if obj.client_auth == FederatedModel.ClientAuth.SIGNED and not request_signed(request):
                raise AuthenticationFailed(SIGNATURE_REQUIRED)
        return True
