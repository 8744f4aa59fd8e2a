"""Errors a user can act on: shown as one clear message, never as a traceback.

Exit codes of ``main.py``: 0 done; 2 an error blockbench explains in one message (bad input refused before any work,
or a job that failed for a stated reason: a parser error, parity, a missing library); 1 an unexpected error (a bug
or a library failure; the traceback is in the job's log); 130 / 143 interrupted by Ctrl-C / SIGTERM. A sweep exits 1
when any job failed.
"""

EXPLAINED_EXIT = 2


class BlockbenchError(Exception):
    """Base class; ``stage`` names the pipeline stage that raised it."""

    stage = "run"


class ConfigError(BlockbenchError):
    """A config value is invalid or impossible on this machine; raised before any work starts."""

    stage = "config"


class ExportError(BlockbenchError):
    stage = "export"


class QuantizeError(BlockbenchError):
    """Quantizing the model to INT8 failed (calibration, or a layer the quantizer or backend cannot take)."""

    stage = "quantize"


class ParityError(BlockbenchError):
    """An engine's output differs from PyTorch's beyond the precision's tolerance."""

    stage = "parity"


class BackendUnavailableError(ConfigError):
    """The backend's library or device is missing; the message says what to install."""
