"""blockbench: how block design, normalization, activation, resolution and precision change inference latency.

Importing the package loads nothing else: the config schemas register with Hydra when :mod:`blockbench.config.schema` is
imported (every entry point that composes a config does), so the report and the recorder stay light. The module
map: ``docs/architecture.md``.
"""

__version__ = "0.1.0"
