"""The core's error hierarchy: every failure a caller may act on has its own class."""


class FMAError(Exception):
    """Base class of every error raised on purpose by FMA code."""


class ConfigurationError(FMAError):
    """A setting names something that does not exist, or is missing."""


class InvalidWeightsError(FMAError, ValueError):
    """Weights that cannot be stored or aggregated (wrong type, shape, NaN, ...)."""


class InvalidArgumentsError(FMAError, ValueError):
    """Arguments of an aggregator or requirement that it cannot work with."""
