"""The chaos monkey (behaviour §15): opt-in, seeded faults at phase boundaries.

``uok run PLAN --chaos SEED [--chaos-rate R]`` (or ``[uok.chaos] enabled =
true`` in the config, with ``seed``, ``rate``, ``faults``,
``max_latency_ms``, ``disk_mb``, ``memory_mb``) makes the runner roll for a
fault at three boundaries of every turn:

* ``dispatch``: a unit's command is about to start (in a worker thread);
* ``gate``: a gate attempt is about to run;
* ``finalize``: a unit's result came back and is about to be judged.

With probability ``rate`` one fault strikes, drawn from ``faults``:
``latency`` (sleep U(0, max_latency_ms)), ``disk-stress`` (write, fsync and
delete a temp file of ``disk_mb`` MiB beside the event log),
``memory-stress`` (allocate, touch and free ``memory_mb`` MiB), or
``partial-failure`` (the attempt fails). Every fault is recorded as a
``ChaosInjected`` observation BEFORE it takes effect and logged to stderr;
what a partial failure changes is decided by the kernel from that
observation (``domain/kernel/rules/chaos.py``), so ``uok replay`` reproduces a chaotic
run with no divergence.

Every fault is recoverable: a partial failure is only injected where the
work will be tried again (a unit attempt that is not its last and under its
dispatch cap; a gate's first attempt, which the retry matrix retries), and
stress artefacts are gone before the fault's boundary is passed. So chaos
alone never makes a plan fail; it makes it take the paths failures take.

The random source is ``random.Random`` seeded per boundary with (seed,
boundary, unit, attempt, dispatch count, gate, gate attempt): the faults a
seed injects do not depend on thread timing, and ``random`` never enters
``domain/``.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from uok.domain import events as ev
from uok.domain.config import ChaosSettings, ConfigError, parse_settings, recorded_settings
from uok.domain.errors import InputError
from uok.domain.events import ChaosInjected, GateRequested
from uok.domain.policies.gates import retry_budget

MiB = 1024 * 1024
Wrapper = Callable[[Callable[..., Any]], Callable[..., Any]]


class ChaosSettingsError(InputError, ValueError):
    """A chaos setting that must not be used (exit 2, nothing written)."""


_CLI_OPTIONS = {"uok.chaos.seed": "chaos seed (--chaos)", "uok.chaos.rate": "chaos rate (--chaos-rate)"}


def resolve(cli: dict[str, Any] | None, config: ChaosSettings) -> ChaosSettings | None:
    """The run's chaos settings: ``--chaos``/``--chaos-rate`` (``cli``) over
    the config's ``[uok.chaos]`` (validated by its schema); None when off."""
    if cli and cli.get("seed") is not None:
        merged = {**msgspec.to_builtins(config), "enabled": True, **{k: v for k, v in cli.items() if v is not None}}
        try:
            config = parse_settings({"chaos": merged}).chaos
        except ConfigError as exc:
            raise ChaosSettingsError(f"{_CLI_OPTIONS.get(exc.key, exc.key)}: {exc.problem}") from None
    if not config.enabled:
        return None
    return msgspec.structs.replace(config, faults=tuple(dict.fromkeys(config.faults)))


def _identity(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


def passes(wrapper: Wrapper | None) -> bool:
    """Whether :meth:`ChaosMonkey.strike` left the work as it is (no stress
    to apply first): the runner may then run it on its own thread."""
    return wrapper is _identity


class NoChaos:
    """Chaos off: every boundary passes untouched."""

    injected: list[ChaosInjected] = []

    def strike(self, boundary: str, subject: ev.Event) -> Wrapper | None:
        return _identity


class ChaosMonkey:
    """Rolls, records and applies faults for one run (main thread only;
    the stress itself may run in a worker thread, see :meth:`strike`)."""

    def __init__(self, settings: ChaosSettings, runner: Any, *, log_dir: Path | None = None) -> None:
        self.settings = settings
        self.runner = runner  # the run's loop port: kernel, run_id, clock, record (uok.adapters.runner.RunLoop)
        self.disk_dir = Path(settings.disk_dir) if settings.disk_dir else (log_dir or Path(tempfile.gettempdir()))
        self.injected: list[ChaosInjected] = []

    # ----------------------------------------------------------------- rolling

    def strike(self, boundary: str, subject: ev.Event) -> Wrapper | None:
        """Maybe inject a fault at ``boundary`` for ``subject`` (a TurnStarted,
        a GateRequested or an ExecutionFinished). Records it first. Returns
        None if the kernel has dropped the work (a partial failure), else a
        wrapper for the worker callable that applies any stress first."""
        k = self.runner.kernel
        if isinstance(subject, GateRequested):
            rec = k.unit(subject.unit_id)
            key = (
                subject.unit_id,
                rec.attempt if rec else 0,
                rec.dispatches if rec else 0,
                subject.gate_id,
                subject.attempt,
            )
            can_fail = subject.attempt <= retry_budget("execution")
            attempt, turn_id, unit_id, gate_id = subject.attempt, subject.turn_id, subject.unit_id, subject.gate_id
        elif isinstance(subject, (ev.TurnStarted, ev.ExecutionFinished)):
            rec, node = k.unit(subject.unit_id), k.state.nodes.get(subject.unit_id)
            if rec is None or node is None or not k.is_in_flight(subject.turn_id):
                return _identity
            key = (subject.unit_id, rec.attempt, rec.dispatches, "", 0)
            can_fail = rec.attempt < node.retries + 1 and rec.dispatches < node.max_dispatches
            attempt, turn_id, unit_id, gate_id = rec.attempt, subject.turn_id, subject.unit_id, ""
        else:
            return _identity
        rng = random.Random("|".join(map(str, (self.settings.seed, boundary, *key))))
        if rng.random() >= self.settings.rate:
            return _identity
        choices = [f for f in self.settings.faults if f != "partial-failure" or can_fail]
        if not choices:
            return _identity
        fault = rng.choice(choices)
        magnitude = {
            "latency": rng.uniform(0, self.settings.max_latency_ms),
            "disk-stress": self.settings.disk_mb,
            "memory-stress": self.settings.memory_mb,
        }.get(fault, 0.0)
        obs = ChaosInjected(
            run_id=self.runner.run_id,
            at=self.runner.clock(),
            seed=self.settings.seed,
            sequence=len(self.injected) + 1,
            fault=fault,
            boundary=boundary,
            turn_id=turn_id,
            unit_id=unit_id,
            gate_id=gate_id,
            magnitude=round(magnitude, 3),
            attempt=attempt,
        )
        self.injected.append(obs)
        _say(obs)
        self.runner.record(obs)  # recorded (and decided on) before it takes effect
        if fault == "partial-failure":
            return None if self._dropped(subject) else _identity
        if boundary == "finalize":  # the main thread is at the boundary itself
            self.apply(obs)
            return _identity
        return lambda fn: _after(self.apply, obs, fn)

    def _dropped(self, subject: GateRequested | ev.TurnStarted | ev.ExecutionFinished) -> bool:
        k = self.runner.kernel
        if isinstance(subject, GateRequested):
            return not k.awaits_gate(subject.turn_id, subject.gate_id, subject.attempt)
        return not k.is_in_flight(subject.turn_id)

    # ---------------------------------------------------------------- applying

    def apply(self, obs: ChaosInjected) -> None:
        """Carry out a stress fault; never raises (a fault must stay recoverable)."""
        try:
            if obs.fault == "latency":
                time.sleep(obs.magnitude / 1000)
            elif obs.fault == "disk-stress":
                disk_stress(self.disk_dir, obs.magnitude)
            elif obs.fault == "memory-stress":
                memory_stress(obs.magnitude)
        except Exception as exc:  # e.g. the disk really is full: the fault is recorded, the run goes on  # noqa: BLE001
            print(f"uok: chaos #{obs.sequence} {obs.fault} could not be applied: {exc}", file=sys.stderr)


def _after(apply: Callable[[ChaosInjected], None], obs: ChaosInjected, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` preceded by the fault, in whichever thread runs it."""

    def run(*args: Any, **kwargs: Any) -> Any:
        apply(obs)
        return fn(*args, **kwargs)

    return run


def disk_stress(directory: Path, mib: float) -> None:
    """Write, fsync and delete a temp file of ``mib`` MiB in ``directory``."""
    chunk = b"\xa5" * MiB
    left = int(mib * MiB)
    with tempfile.NamedTemporaryFile(dir=directory, prefix="uok-chaos-", suffix=".tmp") as f:
        while left > 0:
            f.write(chunk[: min(left, MiB)])
            left -= MiB
        f.flush()
        os.fsync(f.fileno())


def memory_stress(mib: float) -> None:
    """Allocate ``mib`` MiB, touch every page, release it."""
    buf = bytearray(int(mib * MiB))
    for i in range(0, len(buf), 4096):
        buf[i] = 1
    del buf


def _say(obs: ChaosInjected) -> None:
    unit = f"{obs.unit_id} gate {obs.gate_id}" if obs.gate_id else obs.unit_id
    amount = {
        "latency": f" {obs.magnitude:.0f} ms",
        "disk-stress": f" {obs.magnitude:g} MiB",
        "memory-stress": f" {obs.magnitude:g} MiB",
    }.get(obs.fault, "")
    print(
        f"uok: chaos #{obs.sequence} {obs.fault}{amount} at {obs.boundary} of {unit} "
        f"(attempt {obs.attempt}, seed {obs.seed})",
        file=sys.stderr,
    )


def settings_for_run(flags: dict[str, Any]) -> tuple[ChaosSettings | None, dict[str, Any]]:
    """The run's chaos settings (None: off), resolved from the CLI's
    ``flags["chaos"]`` over the config's ``[uok.chaos]`` (``flags["uok"]``),
    and the flags to record in ``KernelEntered`` (``flags["chaos"]`` = the
    resolved settings). Bad settings raise :class:`ChaosSettingsError` (exit 2)."""
    config, _rows = recorded_settings(flags.get("uok"))  # as setup_gates recorded them
    cli = flags.get("chaos") if isinstance(flags.get("chaos"), dict) else None
    settings = resolve(cli, config.chaos)
    if settings is None:
        return None, {k: v for k, v in flags.items() if k != "chaos"}
    return settings, {**flags, "chaos": msgspec.to_builtins(settings)}
