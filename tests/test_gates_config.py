"""Flags (behaviour §5) and the config file: defaults, validation, discovery."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from uok.adapters.config import ConfigFileError, find_config, load_config
from uok.domain.config import ConfigError, Flags, recorded_flags, resolve_flags

from tests.conftest import uok

PLAN = (
    '[plan]\nid = "cfg"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    '[[milestones.slices.tasks]]\nid = "a"\ncommand = ["true"]\ngates = ["verification"]\n'
)


def test_defaults_everything_on_but_chaos():
    f = resolve_flags({})
    for name in ("gates", "metrics", "message_bus", "model_policy", "execution_graph", "audit_unified", "plan_v2"):
        assert getattr(f, name).enabled is True, name
    assert f.enabled and f.breakers.enabled and f.cost_guard.enabled and f.security_guard.enabled and f.gitops.enabled
    assert f.chaos.enabled is False
    assert (f.gitops.turn_action, f.gitops.turn_push) == ("commit", False)
    assert (f.cost_guard.per_unit_usd, f.cost_guard.per_hour_usd, f.cost_guard.window_seconds) == (2.0, 20.0, 3600.0)
    p = f.breaker_policy("anything")
    assert (p.failure_threshold, p.open_seconds, p.max_streak, p.half_open_max_probes, p.half_open_timeout_seconds) == (
        3,
        30.0,
        5,
        1,
        60.0,
    )
    assert f.security_guard.timeout_seconds == 30.0


def test_explicit_opt_outs_and_settings():
    f = resolve_flags(
        {
            "gates": {"enabled": False},
            "chaos": {"enabled": True, "seed": 7},
            "metrics": {"enabled": False, "port": 9},
            "gitops": {"turn_action": "snapshot", "turn_push": True},
            "security_guard": {"enabled": False},
            "breakers": {"failure_threshold": 5, "open_seconds": 10},
            "gate": {"verification": {"command": ["make", "test"], "timeout": 60, "breaker": {"max_streak": 2}}},
        }
    )
    assert not f.gates.enabled and f.chaos.enabled and f.chaos.options == {"seed": 7}
    assert not f.metrics.enabled and f.metrics.options == {"port": 9}
    assert (f.gitops.turn_action, f.gitops.turn_push) == ("snapshot", True)
    assert f.gate_enabled("verification") == (False, "uok.gates.enabled")
    p = f.breaker_policy("verification")
    assert (p.failure_threshold, p.open_seconds, p.max_streak) == (5, 10.0, 2)
    assert f.breaker_policy("other").max_streak == 5
    assert f.gate["verification"].command == ["make", "test"]
    f2 = resolve_flags({"security_guard": {"enabled": False}})
    assert f2.gate_enabled("security") == (False, "uok.security_guard.enabled")
    assert f2.gate_enabled("verification") == (True, "")


@pytest.mark.parametrize(
    "config, key",
    [
        ({"gitops": {"turn_action": "push-everything"}}, "uok.gitops.turn_action"),
        ({"gates": {"enabled": "yes"}}, "uok.gates.enabled"),
        ({"breakers": {"failure_threshold": 0}}, "uok.breakers.failure_threshold"),
        ({"breakers": {"open_seconds": -1}}, "uok.breakers.open_seconds"),
        ({"breakers": {"treshold": 3}}, "uok.breakers.treshold"),
        ({"cost_guard": {"per_unit_usd": "2"}}, "uok.cost_guard.per_unit_usd"),
        ({"security_guard": {"files": "a.txt"}}, "uok.security_guard.files"),
        ({"gate": {"verification": {"command": "make test"}}}, "uok.gate.verification.command"),
        (
            {"gate": {"verification": {"breaker": {"half_open_max_probes": 0}}}},
            "uok.gate.verification.breaker.half_open_max_probes",
        ),
        ({"gatez": {}}, "uok.gatez"),
        ({"chaos": True}, "uok.chaos"),
    ],
)
def test_bad_config_names_the_key(config, key):
    with pytest.raises(ConfigError) as info:
        resolve_flags(config)
    assert info.value.key == key and str(info.value).startswith(key + ":")


def test_resolved_flags_round_trip_through_the_recorded_form():
    import msgspec

    f = resolve_flags({"cost_guard": {"per_unit_usd": 1.5}, "gate": {"security": {"files": ["a"]}}})
    assert recorded_flags({"uok": msgspec.to_builtins(f)}) == f
    assert recorded_flags({}) == Flags()


def test_discovery_plan_dir_first_then_cwd_and_pyproject(tmp_path: Path):
    plan_dir, cwd = tmp_path / "plan", tmp_path / "cwd"
    plan_dir.mkdir(), cwd.mkdir()
    plan = plan_dir / "p.toml"
    plan.write_text(PLAN)
    assert find_config(plan, cwd) is None
    (cwd / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.uok]: not a config
    assert find_config(plan, cwd) is None
    (cwd / "pyproject.toml").write_text("[tool.uok.cost_guard]\nper_unit_usd = 3.0\n")
    assert find_config(plan, cwd) == (cwd / "pyproject.toml").resolve()
    assert load_config(plan, cwd=cwd).flags.cost_guard.per_unit_usd == 3.0
    (plan_dir / "uok.toml").write_text("[uok.cost_guard]\nper_unit_usd = 4.0\n")
    assert load_config(plan, cwd=cwd).flags.cost_guard.per_unit_usd == 4.0
    (plan_dir / "uok.toml").write_text("[cost_guard]\nper_unit_usd = 5.0\n")  # top-level form
    assert load_config(plan, cwd=cwd).flags.cost_guard.per_unit_usd == 5.0
    other = tmp_path / "other.toml"
    other.write_text("[uok.cost_guard]\nper_unit_usd = 6.0\n")
    assert load_config(plan, other, cwd=cwd).flags.cost_guard.per_unit_usd == 6.0  # --config wins


def test_a_cost_table_file_is_read_relative_to_the_config(tmp_path: Path):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    (tmp_path / "costs.toml").write_text(
        '[[models]]\nid = "in-house"\nprovider = "us"\ninput_per_1k = 0.01\noutput_per_1k = 0.02\n'
    )
    (tmp_path / "uok.toml").write_text('[uok.cost_guard]\ntable = "costs.toml"\n')
    rows = load_config(plan).flags.cost_guard.table_rows
    assert rows == [{"id": "in-house", "provider": "us", "input_per_1k": 0.01, "output_per_1k": 0.02}]
    (tmp_path / "costs.json").write_text('{"models": {"gpt-4o": {"input_per_1k": "free"}}}')
    (tmp_path / "uok.toml").write_text('[uok.cost_guard]\ntable = "costs.json"\n')
    with pytest.raises(ConfigFileError, match=r"uok\.cost_guard\.table"):
        load_config(plan)


def test_a_bad_config_exits_2_naming_the_key_and_writes_nothing(tmp_path: Path):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    (tmp_path / "uok.toml").write_text('[uok.gitops]\nturn_action = "push-everything"\n')
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 2 and "uok.gitops.turn_action" in r.stderr and "Traceback" not in r.stderr
    assert not db.exists()
    r = uok("run", str(plan), "--db", str(db), "--quiet", "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "no such config file" in r.stderr and not db.exists()


def test_the_run_records_the_resolved_flags_and_a_disabled_gate_is_skipped(tmp_path: Path):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    cfg = tmp_path / "custom.toml"
    cfg.write_text("[uok.gate.verification]\nenabled = false\n[uok.breakers]\nfailure_threshold = 4\n")
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    rows = [orjson.loads(line)["event"] for line in uok("events", "--db", str(db), "--json").stdout.splitlines()]
    flags = rows[0]["flags"]
    assert rows[0]["type"] == "KernelEntered"
    assert (
        flags["uok"]["breakers"]["failure_threshold"] == 4 and flags["uok"]["gate"]["verification"]["enabled"] is False
    )
    assert flags["gates"] == {"verification": "verification", "security": "security"}
    assert flags["config_path"] == str(cfg)
    [g] = [e for e in rows if e["type"] == "GateRun"]
    assert g["outcome"] == "skip" and "uok.gate.verification.enabled" in g["rationale"]


def test_flags_recorded_by_an_earlier_run_can_be_passed_back_in(tmp_path: Path):
    import msgspec

    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    f = resolve_flags({"cost_guard": {"per_unit_usd": 1.25}})
    f.cost_guard.table_rows = [{"id": "m", "provider": "p", "input_per_1k": 0.1, "output_per_1k": 0.1}]
    loaded = load_config(plan, override=msgspec.to_builtins(f))  # resolved form: not re-validated as a table
    assert loaded.flags == f
    with pytest.raises(ConfigFileError, match=r"uok\.gitops\.turn_action"):  # a hand-written table is
        load_config(plan, override={"gitops": {"turn_action": "sometimes"}})
