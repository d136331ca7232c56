"""The composition root: the one place uok's parts are built and wired.

Turning a ``--db`` / ``UOK_DB`` value into a store (through the store factory
:mod:`uok.adapters.stores`), the read models over it, and a run's runner with
every collaborator it drives (executor, gate host, turn hooks, steering
poller, chaos) happens here and nowhere else. The CLI's commands, the
metrics server, the public API (:mod:`uok`) and the tests build through these
functions; :class:`~uok.adapters.runner.KernelRunner` receives its parts built
and keeps only the loop (measure -> handle -> append -> act).

Imports are local to each function so that a command pays only for what it
builds (``uok status`` never imports the runner, the executor or rich).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from uok.adapters.eventlog import EventLog
    from uok.adapters.executor import CommandExecutor
    from uok.adapters.gates.host import GateHost
    from uok.adapters.gates.registry import GateRegistry
    from uok.adapters.metrics_http import MetricsServer
    from uok.adapters.observer import TurnObserver
    from uok.adapters.planfiles import PlanSources
    from uok.adapters.readmodels import ReadModels
    from uok.adapters.runner import KernelRunner, RunObserver, RunResult
    from uok.domain.plan import UnitGraph

Target = str | os.PathLike[str] | None
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------- the log


def open_store(target: Target = None, *, create: bool = False, readonly: bool = False, synchronous: str = "FULL"):
    """The event store ``target`` names (``--db``; None: ``$UOK_DB``, else the
    nearest ``.uok/events.db`` up from the working directory). A missing log
    is an :class:`~uok.errors.InputError` unless ``create``."""
    from uok.adapters.stores import locate_log, open_event_store

    return open_event_store(locate_log(target), create=create, readonly=readonly, synchronous=synchronous)


def open_log(
    target: Target = None, *, create: bool = False, readonly: bool = False, synchronous: str = "FULL"
) -> EventLog:
    """:func:`open_store` wrapped in the typed, chain-verifying :class:`EventLog`."""
    from uok.adapters.eventlog import EventLog

    return EventLog(open_store(target, create=create, readonly=readonly, synchronous=synchronous))


@contextmanager
def read_models(
    target: Target = None, *, batch: int | None = None, snapshot_every: int | None = None, readonly: bool = False
) -> Iterator[ReadModels]:
    """The read models of the log ``target`` names, closed on exit.
    ``readonly``: the log opened read-only, the read models folded in memory
    (what reading commands use: they change no byte of the log)."""
    from uok.adapters.readmodels import ReadModels

    store = open_store(target, readonly=readonly)
    try:
        yield ReadModels(store, batch=batch, snapshot_every=snapshot_every)
    finally:
        store.close()


def status(target: Target = None, *, summary: bool = False) -> dict[str, Any]:
    """Runs and each plan's units by state at the head (what ``uok status --json`` prints).
    ``summary``: only the open runs, the last few and the units of their plans (what
    ``uok status`` prints), with ``summary`` counting every run by status and every plan."""
    from uok.adapters.claims import worker_rows
    from uok.adapters.eventlog import EventLog

    with read_models(target, readonly=True) as rm:
        snap = rm.status(summary=summary)
        runs = [(r["run_id"], r["status"]) for r in snap["runs"]]  # oldest first
        snap["workers"] = worker_rows(EventLog(rm.store), datetime.now(UTC), runs)  # `uok worker`s, their leases
        return snap


def metrics_server(
    rm: ReadModels, host: str = "127.0.0.1", port: int = 9464, *, on_error: Callable[[Exception], None] | None = None
) -> MetricsServer:
    """``/metrics`` over HTTP for the read models ``rm``, refreshed per scrape.
    The log is checked once now, so an unusable log fails here (exit 2/3),
    not at the first scrape."""
    from uok.adapters.metrics_http import MetricsServer
    from uok.adapters.readmodels import MetricsSource

    source = MetricsSource(rm, remember=True)
    source()
    return MetricsServer(source, host, port, on_error=on_error)


# --------------------------------------------------------------------- a run


class PreparedRun(NamedTuple):
    """A run checked and resolved before any log is touched: bad input
    (plan, config, gates, chaos settings) fails here and writes nothing."""

    plan_path: Path
    source: str
    graph: UnitGraph
    flags: dict[str, Any]  # recorded in KernelEntered: resolved config ("uok"), "gates", "chaos"
    gates: GateHost
    chaos: Any  # uok.adapters.chaos.ChaosSettings, or None
    files: dict[str, str] = {}  # the Markdown task files the plan names (uok.adapters.planfiles)
    globs: dict[str, tuple[str, ...]] = {}


def prepare_run(
    plan_path: str | os.PathLike[str],
    *,
    flags: dict[str, Any] | None = None,
    config: str | os.PathLike[str] | None = None,
    gates: GateRegistry | None = None,
    clock: Clock = utc_now,
    sources: PlanSources | None = None,
    check_gates: bool = True,
) -> PreparedRun:
    """Read and compile the plan, resolve the config (``--config``, else
    ``uok.toml`` / ``[tool.uok]``), the gates and the chaos settings.
    ``sources``: the plan's text and task files as already read (``uok eval``
    runs a plan it wrote in memory), instead of reading ``plan_path``."""
    from uok.adapters.agents import check_plan as check_agents
    from uok.adapters.chaos import settings_for_run
    from uok.adapters.gates.host import check_gate_ids, setup_gates
    from uok.adapters.planfiles import load_plan_sources
    from uok.adapters.secrets import redact_plan
    from uok.domain.config import recorded_settings
    from uok.domain.config.recorded import TURNS_PER_UNIT

    path = Path(plan_path)
    if sources is None:
        sources, graph = load_plan_sources(path)
    else:
        graph = sources.compile()
    check_agents(graph, str(path))  # an agent uok has no adapter for: exit 2, nothing written
    run_flags = {
        "turn_closeout": True,  # exit waits for turn closeouts (uok.domain.kernel.rules.closeout)
        "failed_runs": True,  # units that did not complete make the run ``failed`` (uok.domain.kernel.rules.dispatch)
        "requeue": True,  # failed, blocked and amended units run again (uok.domain.kernel.rules.requeue)
        "turns_per_unit": TURNS_PER_UNIT,  # no global loop cap: the turn ceiling grows with the plan
        "cost_fail_closed": True,  # unreadable or unpriceable usage stops the unit (uok.domain.kernel.rules.pricing)
        "dense_turns": 2,  # no PhaseResult "dispatch" nor an outcome's "finalize": implied (domain/kernel/rules/outcome.py)
        **(flags or {}),
    }
    host, run_flags = setup_gates(path, run_flags, config=Path(config) if config else None, registry=gates, clock=clock)
    if check_gates:  # a typo in a gate id fails here (exit 2), not after the (paid) command ran
        check_gate_ids(graph, run_flags["gates"], str(path))
    chaos, run_flags = settings_for_run(run_flags)
    run_flags = run_modes(run_flags)
    run_flags["breaker_scope"] = recorded_settings(run_flags.get("uok"))[0].breakers.scope  # rules.gating.breaker_key
    # the log records the plan redacted; the run executes the graph compiled from the file (uok.adapters.secrets)
    source, files = redact_plan(sources.source, dict(sources.files), filename=str(path), globs=sources.globs)
    host.planned = {n.id: n for n in graph.nodes}
    return PreparedRun(path, source, graph, run_flags, host, chaos, files, sources.globs)


def new_run_id(clock: Clock = utc_now) -> str:
    import uuid  # here: it imports platform, which a reading command does not need

    return f"r{clock():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"


def assemble_runner(
    log: EventLog,
    prepared: PreparedRun,
    *,
    workers: int = 2,
    clock: Clock = utc_now,
    run_id: str | None = None,
    observer: RunObserver | None = None,
    executor: CommandExecutor | None = None,
    turn_observers: Sequence[TurnObserver] = (),
) -> KernelRunner:
    """The runner of ``prepared`` on ``log`` with every collaborator built:
    they reach the running loop only through its :class:`RunLoop` port."""
    from uok.adapters.changeset import attach_tracker
    from uok.adapters.chaos import ChaosMonkey, NoChaos
    from uok.adapters.executor import CommandExecutor
    from uok.adapters.feedback import FeedbackIndex
    from uok.adapters.gitpublish import enable_publish
    from uok.adapters.kernel_checkpoint import RunCheckpoints
    from uok.adapters.observer import build_turn_hooks, gitops_action
    from uok.adapters.runner import KernelRunner, RunLoop
    from uok.adapters.steering import SteeringPoller
    from uok.adapters.turnlogs import LogsDir
    from uok.domain.config import recorded_settings

    run_id = run_id or new_run_id(clock)
    loop = RunLoop(run_id, clock)
    root = prepared.plan_path.parent
    store_path = getattr(log.store, "path", None)
    logs = LogsDir.for_store(log.store, plan_dir=root)
    exclude = [*([Path(store_path)] if store_path else []), logs.root]  # never commit the log or the outputs
    publish = gitops_action(prepared.flags, root) == "commit"
    guarded = enforced_profiles(prepared)  # a restricted or strict unit: the permissions gate (behaviour §5)
    tracker = attach_tracker(  # what each turn really changed, for the security gate (uok.adapters.changeset)
        root,
        registry=prepared.gates.registry,
        gate_types=prepared.flags.get("gates", {}),
        node=lambda unit_id: loop.kernel.node(unit_id),  # noqa: PLW0108 (the kernel of the moment: rebuilt after a failed append)
        graph_gates=[n.gates for n in prepared.graph.nodes],
        exclude=exclude,
        always=publish or guarded,
        timeout=float(prepared.flags.get("gitops_timeout", 10.0)),  # each git call (uok.adapters.gitops)
    )
    if guarded and tracker is not None:
        from uok.adapters.gates.permissions import GATE_ID, GATE_TYPE, PermissionGate

        prepared.gates.registry.register(PermissionGate(tracker.changes, tracker.tree.relative))
        prepared.flags["gates"] = {**prepared.flags.get("gates", {}), GATE_ID: GATE_TYPE}
        prepared.flags["permission_gate"] = GATE_ID  # recorded: the kernel appends the gate (rules.gating)
    publisher = None
    if publish and tracker is not None:  # --gitops commit: the gitops gate (uok.adapters.gitpublish)
        push = recorded_settings(prepared.flags.get("uok"))[0].gitops.push_remote
        publisher, workers = enable_publish(
            prepared.flags,
            prepared.gates.registry,
            tracker,
            prepared.graph,
            workers,
            push_remote=push,
            inputs=(
                prepared.plan_path,
                *([Path(prepared.flags["config_path"])] if "config_path" in prepared.flags else []),
            ),
        )
    hooks = build_turn_hooks(
        log=log,
        flags=prepared.flags,
        root=root,
        record=loop.record,
        clock=clock,
        run_id=run_id,
        unit_timeout=lambda unit_id: loop.kernel.node(unit_id).timeout,
        observers=[*turn_observers, *([tracker] if tracker else [])],
        exclude=exclude,
        publisher=publisher,
    )
    steering = SteeringPoller(log, lambda: loop.kernel, run_id=run_id, step=loop.record, clock=clock)
    chaos = (
        NoChaos()
        if prepared.chaos is None
        else ChaosMonkey(prepared.chaos, loop, log_dir=Path(store_path).parent if store_path else None)
    )
    return KernelRunner(
        log,
        prepared.plan_path,
        prepared.source,
        graph=prepared.graph,
        loop=loop,
        workers=workers,
        flags=prepared.flags,
        executor=executor
        or CommandExecutor(
            root,
            env=eval_env(prepared.flags),  # an eval's cell: every task learns its case, variant, repetition
            redact=prepared.gates.redact,  # the run's one redaction pass (uok.adapters.secrets)
            logs=logs,
            db=task_log_target(log.store),
            plan_id=prepared.graph.plan_id,
            tasks=task_settings(prepared.flags),
            models=recorded_settings_of(prepared.flags).models,  # routing table (behaviour §5)
        ),
        feedback=FeedbackIndex(log, logs),
        gates=prepared.gates,
        hooks=hooks,
        steering=steering,
        chaos=chaos,
        observer=observer,
        checkpoints=RunCheckpoints(log, read_models=lambda: _read_models_of(log.store)),
        plan_files=prepared.files,
        plan_globs=prepared.globs,
    )


def _read_models_of(store: Any) -> ReadModels:
    from uok.adapters.readmodels import ReadModels

    return ReadModels(store)


def task_log_target(store: Any) -> str:
    """What a task is told its log is (``UOK_DB``): the SQLite file's absolute
    path, or the PostgreSQL URL (with its schema) the run opened."""
    path = getattr(store, "path", None)
    if path is not None:
        return str(path)
    target = getattr(store, "target", None)
    conninfo = getattr(target, "conninfo", "")
    if not conninfo:
        return ""
    schema = getattr(target, "schema", "public")
    if schema == "public":
        return conninfo
    return f"{conninfo}{'&' if '?' in conninfo else '?'}schema={schema}"


def recorded_settings_of(flags: dict[str, Any]) -> Any:
    """The run's resolved ``[uok]`` settings, as ``KernelEntered`` records them."""
    from uok.domain.config import recorded_settings

    return recorded_settings(flags.get("uok"))[0]


def eval_env(flags: dict[str, Any]) -> dict[str, str] | None:
    """The tasks' environment for a run ``uok eval`` started (``flags["eval"]``):
    uok's own plus ``UOK_EVAL_ID``, ``_CASE``, ``_VARIANT``, ``_REPETITION``, so
    tasks read from Markdown files get them too (docs/evals.md); None otherwise."""
    tag = flags.get("eval")
    if not isinstance(tag, dict):
        return None
    names = {"eval_id": "UOK_EVAL_ID", "case": "UOK_EVAL_CASE", "variant": "UOK_EVAL_VARIANT"}
    extra = {env: str(tag[key]) for key, env in names.items() if key in tag}
    if "repetition" in tag:
        extra["UOK_EVAL_REPETITION"] = str(tag["repetition"])
    return {**os.environ, **extra}


def enforced_profiles(prepared: PreparedRun) -> bool:
    """True when the run's default permission profile, or a task's, is one
    uok enforces (restricted, strict: behaviour §5)."""
    from uok.domain.policies.modes import ENFORCED_PROFILES, resolve_permission_profile

    default = prepared.flags.get("permission_profile")
    return any(
        resolve_permission_profile(n.metadata.get("permission_profile") or default) in ENFORCED_PROFILES
        for n in prepared.graph.nodes
        if n.command is not None or n.agent is not None
    )


def run_modes(flags: dict[str, Any]) -> dict[str, Any]:
    """The run's work and model modes and permission profile (behaviour §5):
    ``uok run --work-mode`` / ``--model-mode`` / ``--permission-profile`` (or
    an eval variant's), else ``[uok]``'s; recorded in ``KernelEntered``."""
    from uok.domain.policies.modes import resolve_permission_profile

    settings = recorded_settings_of(flags)
    out = dict(flags)
    for key in ("work_mode", "model_mode", "permission_profile"):
        if key not in out and getattr(settings, key):
            out[key] = getattr(settings, key)
    if "permission_profile" in out:  # a typo must not widen it: exit 2
        out["permission_profile"] = resolve_permission_profile(out["permission_profile"])
    return out


def task_settings(flags: dict[str, Any]) -> Any:
    """The run's ``[uok.tasks]`` settings, with ``uok run --grace`` over the config's."""
    import msgspec

    from uok.domain.config import recorded_settings

    tasks = recorded_settings(flags.get("uok"))[0].tasks
    grace = flags.get("grace_period")
    if isinstance(grace, int | float) and not isinstance(grace, bool):
        tasks = msgspec.structs.replace(tasks, grace_seconds=float(grace))
    return tasks


def build_runner(
    log: EventLog,
    plan_path: str | os.PathLike[str],
    *,
    workers: int = 2,
    flags: dict[str, Any] | None = None,
    clock: Clock = utc_now,
    run_id: str | None = None,
    observer: RunObserver | None = None,
    executor: CommandExecutor | None = None,
    config: str | os.PathLike[str] | None = None,
    gates: GateRegistry | None = None,
    turn_observers: Sequence[TurnObserver] = (),
    check_gates: bool = True,
) -> KernelRunner:
    """:func:`prepare_run` then :func:`assemble_runner`, on a log already open."""
    prepared = prepare_run(plan_path, flags=flags, config=config, gates=gates, clock=clock, check_gates=check_gates)
    return assemble_runner(
        log,
        prepared,
        workers=workers,
        clock=clock,
        run_id=run_id,
        observer=observer,
        executor=executor,
        turn_observers=turn_observers,
    )


def run_plan(
    plan_path: str | os.PathLike[str],
    *,
    db: Target = None,
    workers: int = 2,
    config: str | os.PathLike[str] | None = None,
    flags: dict[str, Any] | None = None,
    observer: RunObserver | None = None,
    synchronous: str = "FULL",
) -> RunResult:
    """Run (or resume) a plan on the log ``db`` names, creating it if needed;
    bad input raises :class:`~uok.errors.InputError` before the log is touched."""
    prepared = prepare_run(plan_path, flags=flags, config=config)
    log = open_log(db, create=True, synchronous=synchronous)
    try:
        return assemble_runner(log, prepared, workers=workers, observer=observer).run()
    finally:
        log.store.close()
