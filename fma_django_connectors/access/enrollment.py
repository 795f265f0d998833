"""Registration a developer controls: a model's ``registration`` rule and its enrollment tokens.

- ``open`` (the default, the contract's original behaviour): anyone may register.
- ``invite``: a client registers by presenting an enrollment token the developer created for the model
  (``uses`` registrations until ``expires_at``); only the token's SHA-256 is stored.
- ``closed``: only clients the developer adds (``POST /api/v1/models/{id}/add_client/`` or ``clients``).

A client already registered to the model may always register again (idempotent). Any refusal answers
exactly as an unknown model id does (404, the same body), so an outsider learns nothing about the model.

On a ``signed`` model (``client_auth``), a new client registers with its Ed25519 ``public_key``, signing the
registration with it (on any model: whoever registers a key proves to hold it), and a known client joins only
by a request signed with its key: a uuid alone opens nothing there. A key names one client.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed

from fma_core.exceptions import CallerError
from fma_core.signatures import parse_public_key
from fma_django_connectors import selectors, services
from fma_django_connectors.access.authentication import KEY_UNPROVEN, request_actor
from fma_django_connectors.access.permissions import SIGNATURE_REQUIRED
from fma_django_connectors.exceptions import ApplicationError, KeyTakenError
from fma_django_connectors.models import Client, EnrollmentToken, FederatedModel

# Lifetime of an enrollment token created without ``expires_at``.
DEFAULT_TOKEN_LIFETIME = timedelta(days=7)


def model_not_found() -> Http404:
    """The answer to an unknown model id, also given for every refused registration."""
    return Http404(f"No {FederatedModel._meta.object_name} matches the given query.")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def enrollment_token_create(*, model: FederatedModel, uses: int, expires_at: datetime) -> tuple[EnrollmentToken, str]:
    """A new token for ``model``: the row (holding only the key's digest) and the key, which is not kept."""
    token = EnrollmentToken(federated_model=model, uses=uses, expires_at=expires_at)
    return token, enrollment_token_issue(token=token)


def enrollment_token_issue(*, token: EnrollmentToken) -> str:
    """Give the unsaved ``token`` (model, uses, expiry set) a fresh key, save it, and return the key (not kept)."""
    key = secrets.token_urlsafe(32)
    token.token_hash = _digest(key)
    token.full_clean()
    token.save()
    return key


def enrollment_token_redeem(*, model: FederatedModel, key: str) -> bool:
    """Use up one registration of the token ``key`` of ``model``; False when unknown, spent or expired.

    One conditional UPDATE: two registrations racing for a token's last use cannot both win.
    """
    redeemed = EnrollmentToken.objects.filter(
        federated_model=model, token_hash=_digest(key), used__lt=F("uses"), expires_at__gt=timezone.now()
    ).update(used=F("used") + 1)
    return redeemed == 1


def client_enroll(
    *,
    model: FederatedModel,
    client: Client | None,
    signed: bool,
    enrollment_token: str | None,
    public_key: bytes | None,
    proven_key: bytes | None = None,
) -> Client:
    """Register ``client`` (a new one, with ``public_key``, when None) to ``model`` as its rules allow.

    ``signed`` says whether the calling client signed the request; ``proven_key`` is the key that signed a new
    client's registration (``authentication.registration_key``), which must be the ``public_key`` it registers.
    Raises ``Http404`` (the unknown-model answer) when the registration rule refuses, ``AuthenticationFailed``
    (401) for a known client's unsigned request on a ``signed`` model or a key not proven, ``ApplicationError``
    (400) for a ``public_key`` missing or misplaced, ``KeyTakenError`` (409) for another client's key.
    """
    if client is not None and public_key is not None:
        raise ApplicationError("A registered client keeps the key it registered with.", field="public_key")
    if client is not None and selectors.client_is_registered(model=model, client=client):
        if model.client_auth == FederatedModel.ClientAuth.SIGNED and not signed:
            raise AuthenticationFailed(SIGNATURE_REQUIRED)
        return client
    rule = model.registration
    with transaction.atomic():
        if rule == FederatedModel.Registration.CLOSED:
            raise model_not_found()
        if rule == FederatedModel.Registration.INVITE and not (
            enrollment_token and enrollment_token_redeem(model=model, key=enrollment_token)
        ):
            raise model_not_found()
        if model.client_auth == FederatedModel.ClientAuth.SIGNED:
            if client is not None and not signed:
                raise AuthenticationFailed(SIGNATURE_REQUIRED)
            if client is None and public_key is None:
                raise ApplicationError(
                    "This model takes signed requests only: register with your Ed25519 public_key.", field="public_key"
                )
        # Checked after the model's own rules, so that a refused registration still answers as an unknown model.
        if client is None and public_key is not None and public_key != proven_key:
            raise AuthenticationFailed(KEY_UNPROVEN)
        return services.client_register(model=model, client=client, public_key=public_key)


def client_add(*, model: FederatedModel, public_key: bytes | None) -> Client:
    """A developer's new client for ``model`` (the way into a ``closed`` model); keyed on a ``signed`` one."""
    client_add_check(model=model, public_key=public_key)
    return services.client_register(model=model, public_key=public_key)


def client_add_check(*, model: FederatedModel, public_key: bytes | None) -> None:
    """Raise ``ApplicationError`` (on ``public_key``) unless ``client_add`` may add such a client to ``model``.

    A key already another client's is a ``KeyTakenError`` (409) here, so that the admin's form says so; the
    unique column settles a race between two additions.
    """
    if model.client_auth == FederatedModel.ClientAuth.SIGNED and public_key is None:
        raise ApplicationError(
            "This model takes signed requests only: give the client's public_key.", field="public_key"
        )
    if public_key is not None and selectors.client_key_taken(public_key=public_key):
        raise KeyTakenError(services.KEY_TAKEN, field="public_key")


def _public_key(text: str) -> bytes:
    try:
        return parse_public_key(text)
    except CallerError as error:
        raise serializers.ValidationError(str(error)) from None


class NewClientSerializer(serializers.Serializer):
    """Body of ``add_client``: the new client's Ed25519 public key (base64 of its 32 raw bytes), if any."""

    public_key = serializers.CharField(
        required=False,
        max_length=100,
        help_text="The client's Ed25519 public key: base64 (standard alphabet) of its 32 raw bytes. Required for a "
        'new client of a `client_auth: "signed"` model, which then signs its requests with the private key; '
        "the service stores only this. A registered client keeps the key it registered with.",
    )

    def validate_public_key(self, value: str) -> bytes:
        return _public_key(value)


class RegisterClientSerializer(NewClientSerializer):
    """Optional body of ``register_client``: the enrollment token of an ``invite`` model, a new client's key."""

    enrollment_token = serializers.CharField(
        required=False, max_length=200, help_text='An enrollment token of the model (`registration: "invite"`).'
    )


class EnrollmentTokenSerializer(serializers.ModelSerializer):
    """An enrollment token; ``token`` (the key) appears once, in the answer to its creation."""

    federated_model = serializers.PrimaryKeyRelatedField(queryset=FederatedModel.objects.none())
    token = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(required=False)

    class Meta:
        model = EnrollmentToken
        fields = ["id", "federated_model", "token", "uses", "used", "expires_at", "created_on"]
        read_only_fields = ["used", "created_on"]
        extra_kwargs = {"uses": {"max_value": 2**31 - 1}}

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        request = self.context.get("request")
        # No caller when drf-spectacular describes the serializer: the field keeps its empty queryset.
        actor = None if request is None else request_actor(request)
        if actor is not None:
            fields["federated_model"].queryset = selectors.model_list(actor=actor)
        return fields

    def get_token(self, token: EnrollmentToken) -> str | None:
        return getattr(token, "key", None)

    def validate_expires_at(self, value: datetime) -> datetime:
        if value <= timezone.now():
            raise serializers.ValidationError("must be in the future")
        return value
