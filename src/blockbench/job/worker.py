"""The worker process's side of :mod:`blockbench.job.launch`: become a clean process, execute, answer.

It runs in a process forked from the launcher's fork server. Everything it reports goes over its pipe: the stages it
enters, its log records, the faults it is told to relay, and its result or error. It starts no thread of its own that
lives into the timed window. The one it starts, which makes the CUDA context while the model is built, has ended
before the timed window opens.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import logging
import os
import pickle
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection

import torch
from tqdm import tqdm

from blockbench.errors import BlockbenchError
from blockbench.job import faults
from blockbench.job.execute import execute
from blockbench.job.plan import JobPlan
from blockbench.job.stages import Stages, mark_failed_stage

TIMED_STAGE = "benchmark"
COMPILE_THREADS_ENV = "TORCHINDUCTOR_COMPILE_THREADS"  # inductor reads it once, when its config is imported
PREBUILT_MARK_ENV = "BLOCKBENCH_PREBUILT_COMPILE_THREADS"  # set beside it when a sweep's prebuild chose it, not a user


class _PipeHandler(logging.Handler):
    """Sends each log record to the parent (synchronously, in the thread that logs: no thread of its own)."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.conn.send(("log", record.levelno, record.name, text))
        except (OSError, ValueError):  # the parent is gone; the worker is about to be killed
            pass


def worker_main(plan: JobPlan, conn: Connection, log_path: str, environ: dict[str, str], cwd: str, level: int) -> None:
    """The worker: become a clean, separate process, execute the job, send the result (or the error) back."""
    os.setpgrp()  # its own process group: the parent can end it with everything it starts; Ctrl-C reaches the parent
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the worker
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(environ)  # the parent's environment as it is now, not the server's from when it started
    if plan.ctx.engine_cache_dir is not None and os.environ.pop(PREBUILT_MARK_ENV, None):
        os.environ.pop(COMPILE_THREADS_ENV, None)  # a fresh trial compiles from nothing: inductor's own pool
    _compile_threads_from_environment()
    os.chdir(cwd)
    if plan.ctx.is_cuda and torch.cuda._is_in_bad_fork():  # the server initialised CUDA: this process cannot use it
        conn.send(("bad_fork",))
        conn.close()
        os._exit(0)
    output = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd in (1, 2):
        os.dup2(output, fd)
    os.close(output)
    faulthandler.enable(file=sys.stderr, all_threads=True)  # a crash's Python traceback lands in worker.log
    tqdm.monitor_interval = 0  # libraries' progress bars (exporters, counters) start no monitor thread here
    tqdm.set_lock(threading.RLock())  # nor a process-shared lock, which an exit without teardown would leak
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_PipeHandler(conn))
    root.setLevel(level)

    warming = _warm_cuda(plan.ctx.device) if plan.ctx.is_cuda else None

    def enter(name: str) -> None:
        conn.send(("stage", name))
        faults.inject(name, plan.cfg, relay=lambda action: conn.send(("fault", action)))
        if name == TIMED_STAGE:
            if warming is not None:
                warming.join()  # long done: the model stage needed its context
            _shut_down_compile_workers()  # compiling is done: inductor's pool (and its thread) end before timing
            conn.recv()  # the parent's go: no earlier worker is still exiting

    stages = Stages(enter)
    try:
        result = execute(plan, stages)
        conn.send(("result", result))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent, which records it
        mark_failed_stage(exc, stages.current)
        conn.send(("error", _portable(exc), stages.current, "".join(traceback.format_exception(exc))))
    finally:
        conn.close()
        _shut_down_compile_workers()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)  # no interpreter teardown (torch's): the parent reaps this exit before the next worker times


def _warm_cuda(device: torch.device) -> threading.Thread:
    """Create the CUDA context and cuDNN's and cuBLAS's handles (about a second in a fresh process) in a thread
    while the main thread builds the model on the CPU; the thread has ended before the timed window opens.

    A failure here is left to the main thread, which meets the same error where it is reported.
    """

    def warm() -> None:
        with contextlib.suppress(Exception):
            x = torch.ones(1, 1, 4, 4, device=device)
            torch.nn.functional.conv2d(x, torch.ones(1, 1, 1, 1, device=device))
            torch.mm(x[0, 0], x[0, 0])
            torch.cuda.synchronize(device)

    thread = threading.Thread(target=warm, name="blockbench-cuda-warm-up", daemon=True)
    thread.start()
    return thread


def _compile_threads_from_environment() -> None:
    """Inductor's compile threads as the parent's environment says now: the fork server imported inductor's config
    (which reads ``TORCHINDUCTOR_COMPILE_THREADS`` once) before a sweep's prebuild set it for the timed jobs."""
    config = sys.modules.get("torch._inductor.config")
    value = os.environ.get(COMPILE_THREADS_ENV, "")
    if config is not None and value.isdigit() and int(value) > 0:
        config.compile_threads = int(value)


def _shut_down_compile_workers() -> None:
    """Inductor's pool of compile processes, where this job started one: ended (and its semaphores released) before
    the worker exits without the interpreter's teardown."""
    async_compile = sys.modules.get("torch._inductor.async_compile")
    shutdown = getattr(async_compile, "shutdown_compile_workers", None)
    if shutdown is not None:
        with contextlib.suppress(Exception):
            shutdown()


def _portable(exc: BaseException) -> BaseException | str:
    """``exc`` itself where it survives pickling, else its type and message (as a :class:`WorkerError`)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any pickling failure: fall back to text
        kind = "BlockbenchError" if isinstance(exc, BlockbenchError) else type(exc).__name__
        return f"{kind}: {exc}"
    return exc


def _die_with_parent() -> None:
    """Linux: the kernel sends this process SIGKILL when its parent dies (none is left measuring for no one)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
