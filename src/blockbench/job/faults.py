"""Test-only fault injection, driven by the ``BLOCKBENCH_FAULT`` environment variable.

Why: failure isolation, Ctrl-C handling and crash recovery must be tested on real runs through ``main.py``,
deterministically, without special code paths. The pipeline calls :func:`inject` when it enters a stage; with
the variable unset (always, outside tests and the chaos script) that is one dictionary lookup.

Grammar: faults separated by ``;``, each ``STAGE[=ACTION][@KEY=VALUE,KEY=VALUE...]``:

* ``STAGE`` — a pipeline stage name (``model``, ``export``, ``build``, ``benchmark``, ``tracking``, ...).
* ``ACTION`` — ``error`` (default: raise :class:`InjectedFault`), ``kill`` (SIGKILL the job's main process, like
  ``kill -9``), ``sigint`` (Ctrl-C), ``sigterm`` — these three go to the process the user started, also when the
  stage runs in a worker —, ``crash`` (SIGKILL the process running the stage: the measuring worker under
  ``run.isolation=process``), ``exit`` (that process calls ``os._exit(3)``), ``hang`` (it sleeps for ever),
  ``unknown_op`` (append a node of an operator no runtime knows to the job's exported ``model.onnx``, so the engine
  builder's own parser error is exercised).
* ``KEY=VALUE`` — only jobs whose resolved config has these values (dot keys of leaf values, compared as
  strings).

Example: ``BLOCKBENCH_FAULT="export@block.name=mobilenet,norm.name=ln;benchmark=kill@block.name=resnet"``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from blockbench.errors import ConfigError

ENV = "BLOCKBENCH_FAULT"
ACTIONS = ("error", "kill", "sigint", "sigterm", "crash", "exit", "hang", "unknown_op")
MAIN_PROCESS_ACTIONS = ("kill", "sigint", "sigterm")  # what a user or a scheduler does to the job's own process
PLANTED_OP = "BlockbenchNoSuchOp"
PLANTED_NODE = "planted_unknown_op"


def plant_unknown_op(onnx_path: Path) -> None:
    """Route the graph's first output through a node of an operator that does not exist (the file is a copy)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path))
    output = model.graph.output[0]
    planted = f"{output.name}_planted"
    model.graph.node.append(helper.make_node(PLANTED_OP, [output.name], [planted], name=PLANTED_NODE))
    output.name = planted
    onnx_path.unlink()
    onnx.save(model, str(onnx_path))


class InjectedFault(RuntimeError):
    """The failure ``BLOCKBENCH_FAULT`` asked for."""


@dataclass(frozen=True)
class Fault:
    stage: str
    action: str
    when: tuple[tuple[str, str], ...]

    def matches(self, stage: str, cfg: Any) -> bool:
        if stage != self.stage:
            return False
        for key, value in self.when:
            actual = OmegaConf.select(cfg, key)
            if actual is None or OmegaConf.is_config(actual):  # a typo'd selector must not silently never fire
                raise ConfigError(f"{ENV}: selector key {key!r} is not a config value (e.g. block.name, norm.name)")
            if str(actual) != value:
                return False
        return True


def parse(spec: str) -> list[Fault]:
    """Parse a ``BLOCKBENCH_FAULT`` value; a malformed one is a :class:`ConfigError` (never silently ignored)."""
    faults = []
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        head, _, selector = item.partition("@")
        stage, _, action = head.partition("=")
        action = action or "error"
        when = []
        for pair in filter(None, selector.split(",")):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ConfigError(f"{ENV}={spec!r}: selector {pair!r} must be KEY=VALUE")
            when.append((key.strip(), value.strip()))
        if not stage or action not in ACTIONS:
            raise ConfigError(f"{ENV}={spec!r}: {item!r} must be STAGE[=ACTION][@KEY=VALUE,...], ACTION in {ACTIONS}")
        faults.append(Fault(stage.strip(), action, tuple(when)))
    return faults


def inject(stage: str, cfg: Any, relay: Callable[[str], None] | None = None) -> None:
    """Perform the fault configured for ``stage`` and this job's config, if any.

    ``relay``: where the stage runs in a worker, hands a :data:`MAIN_PROCESS_ACTIONS` fault to the job's main
    process (which then calls :func:`perform`) instead of performing it here.
    """
    spec = os.environ.get(ENV)
    if not spec:
        return
    for fault in parse(spec):
        if not fault.matches(stage, cfg):
            continue
        if fault.action in MAIN_PROCESS_ACTIONS and relay is not None:
            relay(fault.action)
        elif fault.action == "unknown_op":
            plant_unknown_op(Path(str(cfg.work_dir)) / "model.onnx")
        elif fault.action == "error":
            raise InjectedFault(f"injected fault at stage {stage} ({ENV})")
        else:
            perform(fault.action)


def perform(action: str) -> None:
    """Do a process-level fault to this process."""
    if action in ("kill", "crash"):
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "sigint":
        # As a user's Ctrl-C would be, whatever this process inherited (a background job starts with
        # SIGINT ignored, and raising it would then do nothing).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.raise_signal(signal.SIGINT)
    elif action == "sigterm":
        signal.raise_signal(signal.SIGTERM)
    elif action == "exit":
        os._exit(3)
    elif action == "hang":
        while True:
            time.sleep(3600)
