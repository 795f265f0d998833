"""The core's error hierarchy: every failure raised on purpose says whose it is to fix.

- ``CallerError``: the input is at fault; whoever sent it can correct it (the API answers 4xx).
- ``OperatorError``: the deployment is at fault; the caller can do nothing but retry later (5xx).
  ``ConfigurationError`` is a setting that is wrong or missing, ``ServiceUnavailableError`` a service
  the code depends on (an AWS API, ...) that did not answer or refused.

Messages name the setting or the service and never carry a secret value.
"""


class FMAError(Exception):
    """Base class of every error raised on purpose by FMA code."""


class CallerError(FMAError):
    """The caller's input is at fault: a request with other input can succeed."""


class OperatorError(FMAError):
    """The deployment is at fault: an operator must act (or wait for a dependency to come back)."""


class ConfigurationError(OperatorError):
    """A setting names something that does not exist, or is missing, or is malformed."""


class ServiceUnavailableError(OperatorError):
    """A service the code depends on could not be reached or refused the call; the message names it."""


class InvalidWeightsError(CallerError, ValueError):
    """Weights that cannot be stored or aggregated (wrong type, shape, NaN, ...)."""


class InvalidArgumentsError(CallerError, ValueError):
    """Arguments of an aggregator or requirement that it cannot work with."""


class NonFiniteResultError(CallerError, ArithmeticError):
    """An aggregation result (or aggregator state) holding NaN or ±Inf: never stored; the message names the model."""
