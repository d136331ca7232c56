"""Every section of ``uok.toml`` changes something: one test per section,
each driving the real part it configures (the kernel, the gate host, the
security gate, the turn hooks, the chaos monkey) from a TOML snippet.
A section no test here can show an effect for does not belong in the
schema (``uok.domain.config.schema``) nor in docs/gates.md."""

from __future__ import annotations

import subprocess
import tomllib
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from uok.adapters.chaos import settings_for_run
from uok.adapters.eventlog import EventLog
from uok.adapters.gates.host import GateHost
from uok.adapters.gates.registry import GateRegistry, default_registry
from uok.adapters.observer import build_turn_hooks
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.config import Settings, parse_settings, recorded
from uok.domain.kernel import Kernel
from uok.domain.policies.gates import GateContext

from tests.helpers import StepClock, plan_toml

GATES = {"verification": "verification", "security": "security"}


def settings(toml: str) -> Settings:
    return parse_settings(tomllib.loads(toml).get("uok", {}))


class Run:
    """A kernel driven as a shell would, with the settings of ``toml``."""

    def __init__(self, toml: str, tasks: list[dict], *, clock: StepClock | None = None, log=()):
        self.clock = clock or StepClock()
        self.k = Kernel()
        self.log: list[ev.Event] = list(log)
        for e in self.log:
            self.k.apply(e)
        flags = {"gates": GATES, "uok": recorded(settings(toml))}
        self.feed(
            ev.KernelEntered(
                run_id=f"r{len(self.log)}",
                at=self.clock(),
                pid=1,
                plan_path="p.toml",
                plan_source=plan_toml(("S1", tasks)),
                workers=1,
                flags=flags,
            )
        )

    def feed(self, obs: ev.Event) -> list[ev.Event]:
        self.out = self.k.handle(obs)
        self.log += [obs, *self.out]
        return self.out

    def of(self, cls: type) -> list:
        return [e for e in self.out if isinstance(e, cls)]

    def finish(self, **kw) -> list[ev.Event]:
        [turn] = self.of(ev.TurnStarted)
        return self.feed(
            ev.ExecutionFinished(
                run_id=turn.run_id,
                at=self.clock(),
                turn_id=turn.turn_id,
                unit_id=turn.unit_id,
                exit_code=0,
                duration_ms=1,
                **kw,
            )
        )

    def evaluate(self, outcome: str, failure_class: str = "") -> list[ev.Event]:
        [req] = self.of(ev.GateRequested)
        return self.feed(
            ev.GateEvaluated(
                run_id=req.run_id,
                at=self.clock(),
                turn_id=req.turn_id,
                unit_id=req.unit_id,
                gate_id=req.gate_id,
                gate_type=req.gate_type,
                attempt=req.attempt,
                outcome=outcome,
                failure_class=failure_class,
                rationale="checked",
            )
        )


GATED = [{"id": "a", "command": ["true"], "gates": ["verification", "security"]}]
USAGE = (ev.ModelUsage(model="claude-sonnet-4-6", input_tokens=1_000_000, output_tokens=0),)  # $3.00


def test_uok_enabled_false_skips_every_gate_and_the_cost_guard():
    r = Run("[uok]\nenabled = false\n", GATED)
    r.finish(usage=USAGE)
    runs = r.of(ev.GateRun)
    assert [(g.gate_id, g.outcome) for g in runs] == [("verification", "skip"), ("security", "skip")]
    assert all("uok.enabled" in g.rationale for g in runs) and not r.of(ev.CostRecorded)
    on = Run("", GATED)
    on.finish(usage=(ev.ModelUsage(model="claude-sonnet-4-6", input_tokens=100_000),))  # $0.30: under the ceiling
    assert on.of(ev.CostRecorded) and on.of(ev.GateRequested)


def test_gates_enabled_false_skips_the_listed_gates():
    r = Run("[uok.gates]\nenabled = false\n", GATED)
    r.finish()
    assert [(g.outcome, g.rationale) for g in r.of(ev.GateRun)] == [
        ("skip", "disabled by uok.gates.enabled = false")
    ] * 2
    assert [e.to_state for e in r.of(ev.UnitTransitioned) if e.unit_id == "a"] == ["completed", "notified"]


def test_breakers_set_the_threshold_and_can_be_switched_off():
    tasks = [{"id": "a", "command": ["true"], "gates": ["verification"], "retries": 0}]
    r = Run("[uok.breakers]\nfailure_threshold = 1\nopen_seconds = 600\n", tasks)
    r.finish()
    r.evaluate("fail", "input")  # a final result: input failures are not retried
    [moved] = r.of(ev.BreakerTransitioned)
    assert (moved.to_state, moved.open_until - moved.at) == ("open", timedelta(seconds=600))
    tasks_b = [{**tasks[0], "id": "b"}]  # a new unit of the same plan, after the breaker opened
    again = Run("[uok.breakers]\nfailure_threshold = 1\n", tasks_b, log=r.log)
    again.finish()
    [short] = again.of(ev.GateRun)
    assert short.short_circuited and short.failure_class == "policy"
    off = Run("[uok.breakers]\nenabled = false\nfailure_threshold = 1\n", tasks_b, log=r.log)
    off.finish()
    assert not off.of(ev.GateRun) and off.of(ev.GateRequested)[0].breaker_state == ""  # asked, no breaker


def test_cost_guard_ceilings_stop_a_unit():
    tasks = [{"id": "a", "command": ["true"]}]
    r = Run("[uok.cost_guard]\nper_unit_usd = 1.0\n", tasks)
    r.finish(usage=USAGE)
    [guard] = r.of(ev.GateRun)
    assert guard.gate_id == "cost-guard" and guard.outcome == "fail" and "$1.00" in guard.rationale
    ok = Run("[uok.cost_guard]\nper_unit_usd = 5.0\n", tasks)
    ok.finish(usage=USAGE)
    assert ok.of(ev.GateRun)[0].outcome == "pass"
    off = Run("[uok.cost_guard]\nenabled = false\n", tasks)
    off.finish(usage=USAGE)
    assert not off.of(ev.CostRecorded)


FAKE_KEY = "AKIA" + "Q7XKZ3M2" + "P9R4T6W8"


def test_security_guard_switch_timeout_and_files(tmp_path: Path):
    r = Run("[uok.security_guard]\nenabled = false\n", GATED)
    r.finish()
    r.evaluate("pass")
    [skip] = [g for g in r.of(ev.GateRun) if g.gate_id == "security"]
    assert (skip.gate_id, skip.outcome, skip.rationale) == (
        "security",
        "skip",
        "disabled by uok.security_guard.enabled = false",
    )
    (tmp_path / "creds.txt").write_text(f"aws_access_key_id = {FAKE_KEY}\n")
    ctx = GateContext(run_id="r", turn_id="r:1", unit_id="a", gate_id="security", base_path=str(tmp_path))
    plain = default_registry(settings("")).get("security")
    assert plain.execute(ctx, 1).outcome == "skip"  # nothing to scan
    conf = settings('[uok.security_guard]\nfiles = ["creds.txt"]\ntimeout_seconds = 12\n')
    gate = default_registry(conf).get("security")
    found = gate.execute(ctx, 1)
    assert found.outcome == "fail" and any(f.file == "creds.txt" for f in found.findings)
    assert gate.timeout_seconds == 12.0


def test_gate_defaults_give_a_gate_its_command_timeout_files_and_breaker():
    toml = (
        '[uok.gate.verification]\ncommand = "make check"\nshell = true\ntimeout = 42\nfiles = ["a.txt"]\n'
        "[uok.gate.verification.breaker]\nfailure_threshold = 1\n"
    )
    r = Run(toml, [{"id": "a", "command": ["true"], "gates": ["verification"], "retries": 0}])
    r.finish()
    [req] = r.of(ev.GateRequested)
    host = GateHost(GateRegistry(), Path("."), settings(toml), clock=StepClock())
    ctx = host.context(req, r.k)
    assert (ctx.command, ctx.shell, ctx.timeout, ctx.files) == (("make check",), True, 42.0, ("a.txt",))
    r.evaluate("fail", "input")  # a final result: input failures are not retried
    assert r.of(ev.BreakerTransitioned)[0].to_state == "open"  # this gate's threshold: 1, not 3
    off = Run(
        "[uok.gate.verification]\nenabled = false\n", [{"id": "a", "command": ["true"], "gates": ["verification"]}]
    )
    off.finish()
    assert off.of(ev.GateRun)[0].rationale == "disabled by uok.gate.verification.enabled = false"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    return repo


def gitops_of(repo: Path, db: Path, toml: str, **run_flags) -> list:
    flags = {"uok": recorded(settings(toml)), **run_flags}
    with SqliteEventStore(db) as store:
        hooks = build_turn_hooks(
            log=EventLog(store),
            flags=flags,
            root=repo,
            record=lambda e: None,
            clock=StepClock(),
            run_id="r",
            unit_timeout=lambda unit_id: 1.0,
        )
    return [o for o in hooks.observers if type(o).__name__ == "GitOps"]


def test_gitops_turn_action_and_its_veto(repo: Path, tmp_path: Path):
    assert gitops_of(repo, tmp_path / "a.db", "") == []  # off unless the run asks (uok run --gitops)
    [g] = gitops_of(repo, tmp_path / "b.db", '[uok.gitops]\nturn_action = "snapshot"\n', gitops=True)
    assert g.action == "snapshot"
    [g] = gitops_of(
        repo,
        tmp_path / "c.db",
        '[uok.gitops]\nturn_action = "snapshot"\n',
        gitops=True,
        gitops_turn_action="status-only",
    )
    assert g.action == "status-only"  # --gitops ACTION wins over the file
    assert gitops_of(repo, tmp_path / "d.db", "[uok.gitops]\nenabled = false\n", gitops=True) == []


def test_chaos_from_the_config_and_the_command_line():
    def chaos(toml: str, cli: dict | None = None):
        flags = {"uok": recorded(settings(toml)), **({"chaos": cli} if cli else {})}
        return settings_for_run(flags)

    assert chaos("") == (None, {"uok": recorded(Settings())})  # off by default
    resolved, flags = chaos('[uok.chaos]\nenabled = true\nseed = 7\nrate = 0.5\nfaults = ["latency"]\n')
    assert (resolved.seed, resolved.rate, resolved.faults) == (7, 0.5, ("latency",))
    assert flags["chaos"] == msgspec.to_builtins(resolved)  # what KernelEntered records
    resolved, _ = chaos("[uok.chaos]\nrate = 0.1\n", {"seed": 3, "rate": None})
    assert (resolved.seed, resolved.rate) == (3, 0.1)  # --chaos SEED turns it on, the file's rate stays


def test_tasks_grace_and_heartbeat(tmp_path: Path):
    """[uok.tasks]: the grace period a stopped task gets, and the heartbeat that stops a silent one."""
    import sys

    from uok.adapters.executor import CommandExecutor
    from uok.domain.plan import UnitNode

    def execute(toml: str, src: str, **node):
        executor = CommandExecutor(tmp_path, tasks=settings(toml).tasks)
        unit = UnitNode(
            id="t", kind="unit", unit_type="execute-task", milestone="M", slice="S", command=(sys.executable, "-c", src)
        )
        return executor.execute(msgspec.structs.replace(unit, **node), run_id="r", turn_id="r:1", attempt=1)

    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    out = execute("[uok.tasks]\ngrace_seconds = 0.2\n", stubborn, timeout=0.5)
    assert out.stop == ev.StopRecord(reason="timeout", signals=("SIGTERM", "SIGKILL"), grace_s=0.2)
    silent = "import time; print('one line', flush=True); time.sleep(60)"
    out = execute("[uok.tasks]\nheartbeat_seconds = 0.5\n", silent, timeout=60)
    assert out.timed_out and out.stop.reason == "heartbeat" and out.duration_ms < 30_000
    out = execute("[uok.tasks]\nheartbeat_seconds = 0.5\n", silent, timeout=1.5, heartbeat=120.0, grace=0.0)
    assert out.stop.reason == "timeout" and out.duration_ms >= 1500  # the task's own heartbeat wins over the file's
