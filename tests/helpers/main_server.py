"""A server that runs ``python main.py ARGS`` for the tests without paying the interpreter's imports each time.

It imports what ``main.py`` imports at its top (torch, Hydra, blockbench's sweep and CLI) and what each run imports
on its way, then, for each request read from stdin (one JSON line: argv, cwd, env, stdout/stderr files), forks a
child that becomes that command: ``sys.argv``, ``sys.path[0]``, the working directory, the environment and the
standard streams are set as a fresh ``python main.py`` would have them, and ``main.py`` runs as ``__main__``.
The child ends as the interpreter ends a program, in its order: an uncaught exception's traceback (exit 1; an
uncaught KeyboardInterrupt dies of SIGINT), ``SystemExit``'s code, then the join of non-daemon threads, the atexit
handlers (logging's shutdown, multiprocessing's) and the flush of stdout/stderr; only the teardown of the module
graph is skipped (about 2 s with torch and MLflow loaded, nothing a program sees). The server writes ``pid N`` when
the child started and ``status S`` (the raw wait status) when it ended; EOF on stdin ends the server. One request
at a time. Started by :func:`tests.helpers.main_py`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import runpy
import signal
import sys
import threading
import traceback
from collections.abc import Callable

# What main.py imports before it parses anything (the seconds a fresh process spends before its first line runs),
# and what every run then imports on its way: MLflow (the store), torch's lazily imported reference ops (the memory
# check's meta-device forward) and dynamo (an inline job's export). Importing a module changes no result.
import hydra  # noqa: F401
import mlflow.tracking  # noqa: F401
import omegaconf  # noqa: F401
import torch._dynamo
import torch._prims_common.wrappers
import torch._refs  # noqa: F401

import blockbench.config.argv
import blockbench.errors
import blockbench.job.run
import blockbench.sweep
import blockbench.tracking  # noqa: F401


def _serve() -> dict:
    """Answer requests until EOF (then exit); in a forked child, return that child's request."""
    requests = sys.stdin.buffer
    while True:
        line = requests.readline()
        if not line:
            sys.exit(0)
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            return request
        os.write(1, f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(1, f"status {status}\n".encode())


def _become(request: dict) -> None:
    """This forked child takes the place of ``python main.py ARGS`` started in ``cwd`` with ``env``."""
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = out if request["stderr"] is None else os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
    for fd in {null, out, err}:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    main = request["argv"][0]
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(os.path.abspath(main))  # what `python main.py` puts first on sys.path


def _exit_status(run: Callable[[], object]) -> int:
    """Run the program and end it as the interpreter would, without tearing the module graph down."""
    code = 0
    try:
        run()
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:  # noqa: BLE001  (the interpreter's own last handler: any exception ends the program)
        traceback.print_exc()
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx does first: join non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


if __name__ == "__main__":
    _become(_serve())
    status = _exit_status(lambda: runpy.run_path(sys.argv[0], run_name="__main__"))
    if status == -signal.SIGINT:  # as Python does for an uncaught KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(status & 0xFF)
