"""Command-line conveniences applied before Hydra parses ``sys.argv``."""

from __future__ import annotations

import re

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
