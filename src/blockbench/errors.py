"""Errors a user can act on: shown as one clear message, never as a traceback."""


class BlockbenchError(Exception):
    """Base class; ``stage`` names the pipeline stage that raised it."""

    stage = "run"


class ConfigError(BlockbenchError):
    """A config value is invalid or impossible on this machine; raised before any work starts."""

    stage = "config"


class ExportError(BlockbenchError):
    stage = "export"


class ParityError(BlockbenchError):
    """An engine's output differs from PyTorch's beyond the precision's tolerance."""

    stage = "parity"


class BackendUnavailableError(ConfigError):
    """The backend's library or device is missing; the message says what to install."""
