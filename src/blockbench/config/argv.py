"""Command-line conveniences applied before Hydra parses ``sys.argv``."""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from blockbench.backends.registry import backend_class
from blockbench.config.paths import conf_dir
from blockbench.config.schema import RunConfig

# Config groups whose option names are numbers (conf/resolution/256.yaml). Hydra's override grammar reads
# ``resolution=256`` as an int and refuses it as a group choice; quoting makes it the option name.
NUMERIC_GROUPS = ("resolution",)
_NUMERIC_CHOICE = re.compile(rf"^({'|'.join(NUMERIC_GROUPS)})=(\d+(?:,\d+)*)$")


def quote_numeric_group_choices(argv: list[str]) -> list[str]:
    """``resolution=64,256`` -> ``resolution='64','256'``; every other argument is left as it is."""
    quoted = []
    for arg in argv:
        match = _NUMERIC_CHOICE.match(arg)
        if match:
            arg = f"{match.group(1)}=" + ",".join(f"'{v}'" for v in match.group(2).split(","))
        quoted.append(arg)
    return quoted


# Experiment axes: choosing several options of one of these is a sweep, never a merge of their configs.
EXPERIMENT_GROUPS = ("block", "norm", "act", "resolution", "precision", "backend")
# A hint for a group whose option names are a few presets of an open-ended value.
GROUP_HINTS = {"resolution": "or any size: resolution.size=N (a multiple of 32, >= 32)"}


def _conf_dir() -> Path:
    return conf_dir()


def _option_order(option: str) -> tuple[int, int, str]:
    return (0, int(option), "") if option.isdigit() else (1, 0, option)


def _groups(conf: Path) -> dict[str, list[str]]:
    """Config group -> its option names, from the ``conf/`` tree (``hydra/launcher`` included)."""
    groups: dict[str, list[str]] = {}
    for folder in sorted(p for p in conf.rglob("*") if p.is_dir()):
        options = sorted((f.stem for f in folder.glob("*.yaml")), key=_option_order)
        if options:
            groups[folder.relative_to(conf).as_posix()] = options
    return groups


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _backend_name(conf: Path, option: str) -> str:
    """The backend a ``conf/backend`` option selects (a preset names none and extends another option)."""
    node = OmegaConf.load(conf / "backend" / f"{option}.yaml")
    if "name" in node:
        return str(node.name)
    extended = [d for d in node.get("defaults", []) if isinstance(d, str) and (conf / "backend" / f"{d}.yaml").exists()]
    return _backend_name(conf, extended[0]) if extended else option


def _chosen_backends(conf: Path, overrides: list[Any], groups: dict[str, list[str]]) -> list[str]:
    """Backend names the command line selects (each option of a backend sweep), else the default's."""
    defaults = OmegaConf.load(conf / "config.yaml").defaults
    chosen = [str(d["backend"]) for d in defaults if not isinstance(d, str) and "backend" in d]
    for override in overrides:  # a preset (+experiment=...) may choose the backend: `override /backend: torch`
        group, option = override.key_or_group, override.value()
        if group in groups and group != "backend" and isinstance(option, str) and option in groups[group]:
            preset = OmegaConf.load(conf / group / f"{option}.yaml")
            for entry in preset.get("defaults", []):
                if not isinstance(entry, str) and "override /backend" in entry:
                    chosen = [str(entry["override /backend"])]
    for override in overrides:
        if override.key_or_group == "backend":
            values = override.sweep_string_iterator() if override.is_sweep_override() else [override.value()]
            chosen = [str(v) for v in values]
    return [_backend_name(conf, option) for option in chosen if option in groups.get("backend", [])]


def _schema_problem(key: str, backends: list[str]) -> str | None:
    """Why dotted ``key`` is not a setting of the run's typed schema, or None (or where the schema cannot tell)."""
    parts = key.split(".")
    if parts[0] == "backend" and len(parts) > 1:
        for name in backends:  # typed per backend: each chosen one must have it
            fields = [f.name for f in dataclasses.fields(backend_class(name).settings_class)]
            if parts[1] not in fields:
                return (
                    f"{key}: no such setting of backend={name}; {_suggest(parts[1], fields)}"
                    f"its settings: {', '.join(fields)}"
                )
        return None
    schema: Any = RunConfig
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(schema):
            return None
        fields = [f.name for f in dataclasses.fields(schema)]
        if part not in fields:
            where = ".".join(parts[:depth]) or "the config"
            return f"{key}: no such setting; {_suggest(part, fields)}settings of {where}: {', '.join(fields)}"
        schema = typing.get_type_hints(schema).get(part)
    return None


def check_arguments(argv: list[str]) -> str | None:
    """One clear message for a command-line argument Hydra would refuse cryptically or accept wrongly, else None.

    Checked before Hydra runs: the override grammar (naming the argument), unknown keys (with the closest match and
    the keys that exist), options a config group does not have (listing those it has), and a list given to an
    experiment group (Hydra would merge the options into one job instead of sweeping them).
    """
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        args = get_args_parser().parse_args(argv[1:])
    except SystemExit:  # argparse has printed its own usage error
        return None
    parser = OverridesParser.create()
    conf = _conf_dir()
    groups = _groups(conf)
    parsed = []
    for arg in args.overrides:
        try:
            parsed.append(parser.parse_overrides([arg])[0])
        except HydraException as exc:
            first = str(exc).splitlines()[0]
            return (
                f"argument {arg!r} is not a valid override ({first}). Forms: key=value; a sweep with -m: "
                "key=a,b; quote values with special characters: key='a,b'"
            )
    backends = _chosen_backends(conf, parsed, groups)
    for arg, override in zip(args.overrides, parsed, strict=True):
        key = override.key_or_group
        if key.startswith("hydra") or override.is_delete():
            continue
        if key in groups:
            if key in EXPERIMENT_GROUPS and isinstance(override.value(), list):
                values = ",".join(str(v) for v in override.value())
                return (
                    f"{arg}: a list selects several {key} options at once, which Hydra merges into one job. "
                    f"To run each, sweep them: python main.py -m {key}={values}"
                )
            chosen = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
            for value in chosen:
                name = str(value).strip("'\"")
                if name not in groups[key]:
                    hint = GROUP_HINTS.get(key, "")
                    return (
                        f"{key}={name!r} is not an option of config group {key}; {_suggest(name, groups[key])}"
                        f"choose one of: {', '.join(groups[key])}{'; ' + hint if hint else ''}"
                    )
            continue
        problem = _schema_problem(key, backends)
        if problem:
            added = " ('+' adds the key, but nothing would read it)" if override.is_add() else ""
            return problem + added
    return None
