"""Python client of the FMA API service (see docs/client.md of the repository)."""

import logging

from fma_client.clients import DeveloperClient, WebClient
from fma_client.errors import (
    AggregateTimeout,
    APIError,
    APIException,
    BadRequest,
    Conflict,
    FMAClientError,
    Forbidden,
    Gone,
    NotFound,
    PayloadTooLarge,
    ServerError,
    ServiceUnreachable,
    TooManyRequests,
    Unauthorized,
    VersionTaken,
)
from fma_client.results import Aggregate, Artifact, EnrollmentToken, Model, Score, Update, UpdateStatus
from fma_client.signing import KeyFileError
from fma_client.transport import RetryPolicy
from fma_client.weights import read_safetensors as read_weights

__all__ = [
    "APIError",
    "APIException",
    "Aggregate",
    "AggregateTimeout",
    "Artifact",
    "BadRequest",
    "Conflict",
    "DeveloperClient",
    "EnrollmentToken",
    "FMAClientError",
    "Forbidden",
    "Gone",
    "KeyFileError",
    "Model",
    "NotFound",
    "PayloadTooLarge",
    "RetryPolicy",
    "Score",
    "ServerError",
    "ServiceUnreachable",
    "TooManyRequests",
    "Unauthorized",
    "Update",
    "UpdateStatus",
    "VersionTaken",
    "WebClient",
    "read_weights",
]
__version__ = "0.1.0"

# A library says what it does through ``logging`` and leaves where it goes to the application.
logging.getLogger(__name__).addHandler(logging.NullHandler())
