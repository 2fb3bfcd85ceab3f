"""Errors raised by the carbon app. Every message is safe to show to an operator."""

from __future__ import annotations


class CarbonError(Exception):
    """Base class for carbon errors."""


class InvalidZoneError(CarbonError, ValueError):
    """A zone id that is not shaped like GB, DE or US-CAL-CISO."""


class ProviderError(CarbonError):
    """A live grid-data provider failed: timeout, HTTP error, or a body we cannot read."""

    def __init__(self, provider: str, reason: str):
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class GridDataFileError(CarbonError):
    """A grid-intensity file that cannot be imported; names the file and, if known, the line."""

    def __init__(self, path: str, reason: str, line: int | None = None):
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class PlanningError(CarbonError, ValueError):
    """A best-window request that cannot be answered as asked (e.g. duration > range)."""
