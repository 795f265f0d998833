"""The metadata of federated learning: clients, models, artifacts, updates, aggregates and scores.

Weights never live in table columns: each row points at a safetensors file in Django's storage
(see ``fma_core.tensors``) and keeps that file's structure, so that shape checks and lists never open it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class Client(models.Model):
    """A federated client, known by its uuid; on ``signed`` models by its Ed25519 public key as well."""

    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Raw 32-byte Ed25519 public key, when the client registered one (only the public half is ever stored). A key
    # names one client: a signature by it can then never speak for another one.
    public_key = models.BinaryField(max_length=32, null=True, blank=True, editable=False, unique=True)
    created_on = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.uuid)


class StoredWeights(models.Model):
    """Structure columns of a row that owns a weights file, filled when the file is written.

    ``structure`` is ``fma_core.serialization.Structure.to_json()``: ``{"layered": bool, "tensors":
    [{"name", "shape", "dtype"}, ...]}``.
    """

    structure = models.JSONField(null=True, blank=True, editable=False)
    parameter_count = models.BigIntegerField(null=True, blank=True, editable=False)
    byte_size = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


class FederatedModel(models.Model):
    """An experiment: a model developers train with federated clients."""

    name = models.CharField(max_length=255)
    developer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="federated_models")
    clients = models.ManyToManyField(Client, blank=True, related_name="federated_models")
    current_artifact = models.OneToOneField(
        "ModelArtifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    aggregator = models.CharField(max_length=100)
    aggregator_args = models.JSONField(null=True, blank=True)
    requirement = models.CharField(max_length=100, blank=True, default="")
    requirement_args = models.JSONField(null=True, blank=True)
    update_schema = models.JSONField(null=True, blank=True)
    client_agg_results_schema = models.JSONField(null=True, blank=True)
    furthest_base_agg = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    allow_aggregation = models.BooleanField(default=False)

    class Registration(models.TextChoices):
        OPEN = "open"  # anyone may register (the contract's original behaviour)
        INVITE = "invite"  # a client presents an enrollment token the developer created
        CLOSED = "closed"  # only clients the developer adds

    class ClientAuth(models.TextChoices):
        UUID = "uuid"  # CLIENT-UUID alone identifies a client (the contract's original behaviour)
        SIGNED = "signed"  # every client request is signed with the client's Ed25519 key

    registration = models.CharField(max_length=10, choices=Registration.choices, default=Registration.OPEN)
    client_auth = models.CharField(max_length=10, choices=ClientAuth.choices, default=ClientAuth.UUID)
    # Largest L2 norm an update may have (checked when it arrives, a 400 beyond); null: no bound.
    update_max_norm = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    # Server-side aggregator state kept between aggregations (e.g. FedOpt moments), as weights.
    aggregator_state = models.FileField(upload_to="aggregator_state/", null=True, blank=True)
    # The structure every update must have: that of the model's first weights (initial model, else first
    # accepted update), as ``fma_core.serialization.Structure.to_json()``; null until it has weights.
    structure = models.JSONField(null=True, blank=True, editable=False)
    created_on = models.DateTimeField(auto_now_add=True)
    last_modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_on", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.pk})"


class ModelArtifact(StoredWeights):
    """A published, versioned copy of a model's weights."""

    federated_model = models.ForeignKey(FederatedModel, on_delete=models.CASCADE, related_name="artifacts")
    values = models.FileField(upload_to="artifacts/")
    version = models.CharField(max_length=100)
    # The aggregate this artifact was published from (None for a model's initial weights), so the
    # dashboard can show which aggregate became which version.
    aggregate = models.ForeignKey(
        "ModelAggregate", null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_on", "-id"]
        constraints = [models.UniqueConstraint(fields=["federated_model", "version"], name="unique_artifact_version")]

    def __str__(self) -> str:
        return f"{self.federated_model_id} v{self.version}"


class ModelAggregate(StoredWeights):
    """The result of one aggregation; ``parent`` is the aggregate it was built on."""

    federated_model = models.ForeignKey(FederatedModel, on_delete=models.CASCADE, related_name="aggregates")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    result = models.FileField(upload_to="aggregates/")
    validation_score = models.FloatField(null=True, blank=True)
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_on", "-id"]

    def __str__(self) -> str:
        return f"aggregate {self.pk} of {self.federated_model_id}"


class ModelUpdate(StoredWeights):
    """Weights a client trained locally and sent for aggregation."""

    class Status(models.IntegerChoices):
        PENDING = 0
        RUNNING = 1
        COMPLETE = 2
        FAILED = 3
        INVALID = 4

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="updates")
    federated_model = models.ForeignKey(FederatedModel, on_delete=models.CASCADE, related_name="updates")
    data = models.FileField(upload_to="updates/")
    status = models.IntegerField(choices=Status.choices, default=Status.PENDING, db_index=True)
    base_aggregate = models.ForeignKey(
        ModelAggregate, null=True, blank=True, on_delete=models.SET_NULL, related_name="based_updates"
    )
    applied_aggregate = models.ForeignKey(
        ModelAggregate, null=True, blank=True, on_delete=models.SET_NULL, related_name="applied_updates"
    )
    num_examples = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    # When an aggregation claimed the update, and when it last renewed the claim (its heartbeat); a claim
    # neither made nor renewed within the lease is taken back.
    claimed_at = models.DateTimeField(null=True, blank=True)
    renewed_at = models.DateTimeField(null=True, blank=True)
    # Why the update is INVALID (or FAILED), for whoever sent it; empty otherwise.
    status_reason = models.TextField(blank=True, default="")
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_on", "-id"]
        indexes = [models.Index(fields=["federated_model", "status"])]

    def __str__(self) -> str:
        return f"update {self.pk} of {self.federated_model_id} by {self.client_id}"


class ClientAggregateScore(models.Model):
    """A client's validation of an aggregate; one per (aggregate, client)."""

    aggregate = models.ForeignKey(ModelAggregate, on_delete=models.CASCADE, related_name="scores")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="scores")
    validation_results = models.JSONField()
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_on", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["aggregate", "client"], name="unique_score_per_aggregate_client")
        ]

    def __str__(self) -> str:
        return f"score of {self.client_id} for aggregate {self.aggregate_id}"


class Upload(models.Model):
    """Weights a caller sends straight to storage (``/api/v1/uploads/``) before they become an update or artifact.

    The row is made before any byte moves, so every rule that does not need the bytes is checked first;
    completing it checks the bytes and makes the update (or artifact) once, however often it is retried.
    """

    class Purpose(models.TextChoices):
        UPDATE = "update"
        INITIAL_MODEL = "initial_model"
        ARTIFACT = "artifact"

    class Format(models.TextChoices):
        SAFETENSORS = "safetensors"
        NPZ = "npz"
        JSON = "json"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    federated_model = models.ForeignKey(FederatedModel, on_delete=models.CASCADE, related_name="uploads")
    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    format = models.CharField(max_length=20, choices=Format.choices)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, blank=True, default="")
    # Who may complete it: the developer who made it, or else ``client`` (the update's client either way).
    developer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="uploads"
    )
    client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.CASCADE, related_name="uploads")
    base_aggregate = models.ForeignKey(
        ModelAggregate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    num_examples = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    version = models.CharField(max_length=100, blank=True, default="")
    # Storage name the bytes are sent to; removed once they are stored as weights, or when the upload expires.
    bytes_name = models.CharField(max_length=255, unique=True)
    expires_at = models.DateTimeField(db_index=True)
    created_on = models.DateTimeField(auto_now_add=True)
    # What completing it made, so that completing again answers the same object.
    completed_on = models.DateTimeField(null=True, blank=True)
    update = models.OneToOneField(ModelUpdate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    artifact = models.OneToOneField(ModelArtifact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_on"]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.purpose}) of {self.federated_model_id}"


class EnrollmentToken(models.Model):
    """A developer's invitation to register to an ``invite`` model: ``uses`` registrations until ``expires_at``.

    Only the SHA-256 of the token is stored; the token itself is shown once, when created.
    """

    federated_model = models.ForeignKey(FederatedModel, on_delete=models.CASCADE, related_name="enrollment_tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    uses = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    used = models.PositiveIntegerField(default=0, editable=False)
    expires_at = models.DateTimeField()
    created_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_on", "-id"]

    def __str__(self) -> str:
        return f"enrollment token {self.pk} of {self.federated_model_id}"


class ThrottleCount(models.Model):
    """Requests counted against one throttle key in one fixed window (``throttling``).

    Written only by the throttles' single-statement upserts, shared by every process of the service. Times are
    whole seconds since the epoch: the window's bounds are arithmetic on the rate's duration.
    """

    key = models.CharField(max_length=255)
    window_start = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)
    # When the row stops mattering: the end of the window after its own, where it stops weighing as the previous
    # window. Rows past it are deleted in bulk, by this index.
    expires_at = models.BigIntegerField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="throttle_count_key_window")]

    def __str__(self) -> str:
        return f"{self.key} from {self.window_start}: {self.count}"


class SignatureNonce(models.Model):
    """A nonce a client's key signed with, kept while a request carrying it could be on time (``nonces``).

    The unique (key, nonce) pair refuses a replay atomically, however many processes receive it at once; rows
    leave only once expired, never to make room for others.
    """

    # The signing key: base64 of its 32 raw bytes (every signature is checked against a key; a key names one
    # client, and a registering client has a key before it has a uuid).
    key = models.CharField(max_length=44)
    nonce = models.CharField(max_length=128)
    # Seconds since the epoch after which no request carrying the nonce is on time any more (created + window).
    expires_at = models.BigIntegerField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "nonce"], name="signature_nonce_once_per_key")]

    def __str__(self) -> str:
        return f"{self.nonce} of {self.key}"
