"""The error and the warning of :mod:`surrogate.mc`."""

from params import ConfigError


class MCError(ConfigError):
    """An input that a Monte Carlo estimate cannot use (bad size, wrong model, missing FEM stack ...)."""


class MCWarning(UserWarning):
    """The MC fields differ from those the surrogate was trained on (or their parameters are unknown)."""
