"""Python client of the FMA API service (see docs/client.md of the repository)."""

from fma_client.clients import DeveloperClient, WebClient
from fma_client.errors import (
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
)
from fma_client.signing import KeyFileError
from fma_client.transport import RetryPolicy
from fma_client.weights import read_safetensors as read_weights

__all__ = [
    "APIError",
    "APIException",
    "BadRequest",
    "Conflict",
    "DeveloperClient",
    "FMAClientError",
    "Forbidden",
    "Gone",
    "KeyFileError",
    "NotFound",
    "PayloadTooLarge",
    "RetryPolicy",
    "ServerError",
    "ServiceUnreachable",
    "TooManyRequests",
    "Unauthorized",
    "WebClient",
    "read_weights",
]
__version__ = "0.1.0"
