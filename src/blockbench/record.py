"""``python -m blockbench.record``: the record command (:mod:`blockbench.recording.command`)."""

import sys

from blockbench.recording.command import main

if __name__ == "__main__":
    sys.exit(main())
