"""blockbench: how block design, normalization, activation, resolution and precision change inference latency."""

from blockbench import config as _config  # noqa: F401  (registers the config schemas with Hydra)

__version__ = "0.1.0"
