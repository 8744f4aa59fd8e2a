"""Where a job executes: in a fresh worker process (``run.isolation=process``, the default) or in this one (``inline``).

A worker is forked from a server process that has imported torch and the execution code but never touched a GPU
(multiprocessing's forkserver), so it starts in milliseconds with nothing of an earlier job in it: thread counts,
TF32 and cuDNN switches, compiler configuration and caches in memory, allocator state and environment variables all
start from the defaults. The worker measures and does nothing else; this process observes it from outside:

* the worker announces each stage over a pipe (a synchronous write, no thread); here the stage is recorded on the
  run, a long stage's elapsed time is logged, and a benchmark stage that outlasts its stopping rule's ``max_s``
  (each timed loop) by ``run.hang_margin_s`` is taken as hung: the worker is killed and the job fails;
* the worker's log records come over the same pipe and are logged here (into Hydra's job log and the console);
  what it writes to stdout and stderr (libraries, a crash's traceback) goes to ``worker.log`` in the job folder;
* a worker that dies (a signal, ``os._exit``, the kernel's out-of-memory killer) fails the job with the signal or
  exit status and the tail of its ``worker.log``; Ctrl-C or SIGTERM here kills the worker and its children; a
  worker whose parent dies is killed by the kernel (``PR_SET_PDEATHSIG``), so none is left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.machinery
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from blockbench.job import faults
from blockbench.job.engine import release_memory
from blockbench.job.execute import ExecutionResult, execute
from blockbench.job.observation import add_observation
from blockbench.job.plan import JobPlan
from blockbench.job.stages import Stages, mark_failed_stage
from blockbench.job.worker import TIMED_STAGE, worker_main
from blockbench.measure.observer import SAMPLE_PERIOD_S, GpuObserver
from blockbench.recording.layout import WORKER_LOG

log = logging.getLogger(__name__)

TICK_S = 10.0  # a long stage's elapsed time is logged this often (benchmark.progress=true)
TICKING_STAGES = ("export", "build", "benchmark", "attribution")
_STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL after this long
_LOG_TAIL_BYTES = 4000
_PRELOAD = ["blockbench.job.worker", "blockbench.backends.onnxruntime.backend", "blockbench.backends.torch.backend"]
# What torch imports lazily on a first forward or module move (about a second), and what torch.compile imports (a
# few seconds): imported once in the server instead of in every worker, unless a worker saw them initialise CUDA.
_LAZY_PRELOAD = ["torch._dynamo", "torch._refs", "torch._prims_common.wrappers"]
_COMPILER_PRELOAD = "torch._inductor.compile_fx"
_NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


class _BadFork(Exception):
    """The worker was forked from a server that had initialised CUDA."""


class WorkerFailure(RuntimeError):
    """The measuring process failed as a process (its own error, if any, is raised as itself)."""


class WorkerDied(WorkerFailure):
    """The measuring process ended without a result (a signal, ``os._exit``, the out-of-memory killer)."""


class WorkerHung(WorkerFailure):
    """The measuring process outlasted its stopping rule by ``run.hang_margin_s`` and was killed."""


class WorkerError(RuntimeError):
    """An exception raised in the worker that could not be carried back as itself (not picklable)."""


def execute_job(plan: JobPlan, on_stage: Callable[[str], None]) -> ExecutionResult:
    """Execute ``plan`` as ``run.isolation`` says; ``on_stage(name)`` runs here as each stage starts.

    An exception that ends the job carries the stage it ended in (:func:`~blockbench.job.stages.failed_stage`).
    """
    if plan.config.run.isolation == "inline":
        return _inline(plan, on_stage)
    try:
        return _Worker(plan, on_stage).run()
    except _BadFork:
        log.warning("worker: the fork server's preloaded imports initialised CUDA; restarting it without them")
        _restart_server_without_extras()
        return _Worker(plan, on_stage).run()


def _inline(plan: JobPlan, on_stage: Callable[[str], None]) -> ExecutionResult:
    def enter(name: str) -> None:
        on_stage(name)
        faults.inject(name, plan.cfg)

    stages = Stages(enter)
    try:
        result = execute(plan, stages)
        add_observation(result, None, plan.config.benchmark, "run.isolation=inline (no parent watches the GPU)")
        return result
    except BaseException as exc:
        mark_failed_stage(exc, stages.current)
        release_memory()
        raise


_PREVIOUS: list[Any] = []  # workers that answered and are still exiting; reaped before the next one times
atexit.register(lambda: _reap_previous())
_SERVER = {"lazy_preload_safe": True}  # False once the server's extra imports were seen to initialise CUDA


def _context(plan: JobPlan) -> multiprocessing.context.BaseContext:
    """The forkserver context; its server (started by the first job) preloads torch and the execution code, and
    torch's lazy imports and the compiler where the first job compiles (unless they were seen to initialise CUDA)."""
    return _server_context(getattr(plan.config.backend, "mode", None) in ("compile", "aoti"))


def _server_context(compiles: bool) -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    preload = list(_PRELOAD)
    if _SERVER["lazy_preload_safe"]:
        preload += _LAZY_PRELOAD
        if compiles:
            preload.append(_COMPILER_PRELOAD)
    context.set_forkserver_preload(preload)  # takes effect only when the server starts
    return context


@contextlib.contextmanager
def _fork_safe_cuda_checks() -> Iterator[None]:
    """While the server starts (it inherits this environment): torch's CUDA availability checks through NVML, which
    does not initialise CUDA — a server that initialised CUDA would hand every worker a CUDA it cannot use."""
    before = os.environ.get(_NVML_CHECK)
    os.environ[_NVML_CHECK] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_NVML_CHECK, None)
        else:
            os.environ[_NVML_CHECK] = before


@contextlib.contextmanager
def _main_module_left_alone() -> Iterator[None]:
    """While a worker starts: multiprocessing would re-import this program's ``__main__`` (``main.py``, a user's
    script) in it; the worker runs package code only, so it is told the main module needs no preparing."""
    main = sys.modules["__main__"]
    before = getattr(main, "__spec__", None)
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = before


def _restart_server_without_extras() -> None:
    """A worker found CUDA initialised by the server's preload: stop that server; the next starts without it."""
    _SERVER["lazy_preload_safe"] = False
    forkserver = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
    forkserver._stop()


class _Worker:
    """One job's worker process, watched from this one."""

    def __init__(self, plan: JobPlan, on_stage: Callable[[str], None]) -> None:
        self.plan = plan
        self.on_stage = on_stage
        self.stage = "setup"
        self.stage_started = time.monotonic()
        self.last_tick = self.stage_started
        self.log_path = plan.ctx.work_dir / WORKER_LOG
        self.process: Any = None
        self.answered = False  # the worker sent its result or its error, and is exiting on its own
        self.conn: Connection | None = None
        self.observer: GpuObserver | None = None  # the GPU, sampled from here through the benchmark stage

    def run(self) -> ExecutionResult:
        context = _context(self.plan)
        self.plan.ctx.work_dir.mkdir(parents=True, exist_ok=True)
        reader, writer = context.Pipe(duplex=True)
        self.conn = reader
        self.process = context.Process(
            target=worker_main,
            args=(self.plan, writer, str(self.log_path), dict(os.environ), os.getcwd(), _log_level()),
            name=f"blockbench-worker {self.plan.name}",
        )
        started = time.perf_counter()
        with _fork_safe_cuda_checks(), _main_module_left_alone():
            self.process.start()
        writer.close()
        log.debug("worker: pid %d started in %.3f s", self.process.pid, time.perf_counter() - started)
        try:
            return self._watch(reader)
        except _BadFork:
            raise
        except BaseException as exc:
            mark_failed_stage(exc, self.stage)
            raise
        finally:
            self._stop()
            reader.close()
            if self.observer is not None:
                self.observer.close()

    def _watch(self, reader: Connection) -> ExecutionResult:
        while True:
            observing = self.observer is not None and self.stage == TIMED_STAGE
            ready = wait([reader, self.process.sentinel], timeout=SAMPLE_PERIOD_S if observing else 1.0)
            if observing:
                self.observer.sample()  # type: ignore[union-attr]
            if reader in ready:
                try:
                    message = reader.recv()
                except (EOFError, OSError):  # the worker is gone: its end of the pipe closed or was reset
                    raise self._died() from None
                result = self._handle(message)
                if result is not None:
                    return result
                continue
            if self.process.sentinel in ready:
                raise self._died()
            self._observe()

    def _handle(self, message: tuple[Any, ...]) -> ExecutionResult | None:
        kind = message[0]
        if kind == "bad_fork":
            self.answered = True
            raise _BadFork()
        if kind == "stage":
            self._enter(message[1])
        elif kind == "log":
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
        elif kind == "fault":
            faults.perform(message[1])
        elif kind == "result":
            self.answered = True
            result: ExecutionResult = message[1]
            add_observation(result, self.observer, self.plan.config.benchmark, "no benchmark stage")
            return result
        elif kind == "error":
            self.answered = True
            _, exc, stage, text = message
            self.stage = stage
            raise _rebuilt(exc, text)
        return None

    def _enter(self, name: str) -> None:
        self.stage, self.stage_started = name, time.monotonic()
        self.last_tick = self.stage_started
        self.on_stage(name)
        if name == TIMED_STAGE:  # the worker waits for this: no earlier worker is still exiting while it times
            _reap_previous()
            bench = self.plan.config.benchmark
            self.observer = GpuObserver(self.plan.ctx.device, bench.throttle_clock_fraction)
            assert self.conn is not None
            try:
                self.conn.send(("go",))
            except OSError:  # it died on entering the stage
                raise self._died() from None
            self.stage_started = time.monotonic()

    def _observe(self) -> None:
        """Between messages: log a long stage's elapsed time, and kill a worker hung in its benchmark."""
        now = time.monotonic()
        elapsed = now - self.stage_started
        if self.stage == "benchmark":
            limit = self.benchmark_limit_s()
            if elapsed > limit:
                self._stop()
                raise WorkerHung(
                    f"the measuring process (pid {self.process.pid}) was still in its benchmark after {elapsed:.0f} s, "
                    f"past its stopping rule's limit plus run.hang_margin_s ({limit:.0f} s in all); it was killed"
                    + self._log_tail()
                )
        if self.stage in TICKING_STAGES and self.plan.config.benchmark.progress and now - self.last_tick >= TICK_S:
            self.last_tick = now
            log.info("%s: %.0f s so far ...", self.stage, elapsed)

    def benchmark_limit_s(self) -> float:
        """The longest a benchmark stage may take: warm-up and each timed loop stop at ``max_s``."""
        bench = self.plan.config.benchmark
        loops = 2 if bench.timing == "both" else 1
        return (loops + 1) * bench.max_s + self.plan.config.run.hang_margin_s

    def _died(self) -> WorkerDied:
        self.process.join(timeout=_STOP_GRACE_S)
        code = self.process.exitcode
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with status {code}" if code is not None else "closed its pipe"
        return WorkerDied(
            f"the measuring process (pid {self.process.pid}) {how} during stage {self.stage}, without a result"
            + self._log_tail()
        )

    def _log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - _LOG_TAIL_BYTES))
                tail = handle.read().decode(errors="replace").strip()
        except OSError:
            return ""
        return f"; the end of its {WORKER_LOG}:\n{tail}" if tail else f" ({WORKER_LOG} is empty)"

    def _stop(self) -> None:
        """End the worker and everything it started (its process group), politely first."""
        process = self.process
        if process is None:
            return
        if self.answered:  # exiting on its own (CUDA's teardown takes seconds): reaped before the next one times
            _PREVIOUS.append(process)
            return
        if process.exitcode is not None:
            return
        for sig, grace in ((signal.SIGTERM, _STOP_GRACE_S), (signal.SIGKILL, _STOP_GRACE_S)):
            try:
                os.killpg(process.pid, sig)
            except (ProcessLookupError, PermissionError):  # not yet its own group leader
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, sig)
            process.join(timeout=grace)
            if process.exitcode is not None:
                return
        log.error("worker: pid %d did not end after SIGKILL", process.pid)


def _reap_previous() -> None:
    """Wait until every earlier worker has exited (each had sent its result and was tearing down)."""
    while _PREVIOUS:
        process = _PREVIOUS.pop()
        process.join(timeout=_STOP_GRACE_S)
        if process.exitcode is None:
            log.warning("worker: pid %d still exiting after %.0f s; ending it", process.pid, _STOP_GRACE_S)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.join(timeout=_STOP_GRACE_S)


def start_server(compiles: bool) -> None:
    """Start the fork server now (its imports take seconds), e.g. while a sweep prebuilds, so the first job need
    not wait for it; ``compiles``: the sweep's jobs use torch.compile or AOTInductor."""
    _server_context(compiles)
    with _fork_safe_cuda_checks():
        multiprocessing.forkserver.ensure_running()


def _log_level() -> int:
    return logging.getLogger().getEffectiveLevel()


def _rebuilt(exc: BaseException | str, text: str) -> BaseException:
    """The worker's exception as raised here, its traceback attached as a note."""
    rebuilt = exc if isinstance(exc, BaseException) else WorkerError(exc)
    with contextlib.suppress(AttributeError):  # Python < 3.11 has no notes
        rebuilt.add_note(f"in the measuring process:\n{text}")
    return rebuilt
