"""Value rules declared on the config dataclasses' fields, and the one checker that enforces them.

Types are checked by OmegaConf when Hydra composes; what types cannot say (a choice among names, a lower bound)
is declared next to the field with :func:`choice` or :func:`at_least`, so a setting's allowed values live in one
place and every error has one wording: ``key=value is not allowed; ...``. Rules that relate several fields are a
``check_rules(prefix)`` method on the dataclass, run after its fields' rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from omegaconf import MISSING

from blockbench.errors import ConfigError

_CHOICES = "choices"
_MINIMUM = "minimum"
_STRICT = "strict"


def choice(choices: Iterable[str], default: Any = MISSING) -> Any:
    """A field whose value must be one of ``choices`` (``None`` passes where the type allows it)."""
    return dataclasses.field(default=default, metadata={_CHOICES: tuple(choices)})


def at_least(minimum: float, default: Any = MISSING, *, strict: bool = False) -> Any:
    """A numeric field that must be ``>= minimum`` (``> minimum`` when ``strict``; ``None`` passes)."""
    return dataclasses.field(default=default, metadata={_MINIMUM: minimum, _STRICT: strict})


def refuse(key: str, value: Any, rule: str) -> ConfigError:
    """The one wording of a refused value: the full key, the value, and what is allowed."""
    return ConfigError(f"{key}={value!r} is not allowed; {rule}")


def check(node: Any, prefix: str = "") -> None:
    """Enforce the declared rules of dataclass ``node`` and of every dataclass below it; raise :class:`ConfigError`."""
    for spec in dataclasses.fields(node):
        key, value = f"{prefix}{spec.name}", getattr(node, spec.name)
        if dataclasses.is_dataclass(value):
            check(value, f"{key}.")
            continue
        if value is None:
            continue
        choices = spec.metadata.get(_CHOICES)
        if choices is not None and value not in choices:
            raise refuse(key, value, f"choose one of: {', '.join(choices)}")
        minimum = spec.metadata.get(_MINIMUM)
        if minimum is not None:
            strict = spec.metadata[_STRICT]
            if value < minimum or (strict and value == minimum):
                raise refuse(key, value, f"it must be {'>' if strict else '>='} {minimum}")
    check_rules = getattr(node, "check_rules", None)
    if check_rules is not None:
        check_rules(prefix)
