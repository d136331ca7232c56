"""The config file (behaviour §5): its schema (msgspec Structs), errors that
name the dotted key, discovery, and the settings a run records, including
the shape logs written before the schema was typed carry.
(What each section changes is shown in tests/integration/test_config_effects.py.)"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import msgspec
import orjson
import pytest
from uok.adapters.config import ConfigFileError, find_config, load_config
from uok.domain.config import (
    RETIRED_SECTIONS,
    ConfigError,
    Settings,
    parse_settings,
    recorded,
    recorded_settings,
    run_flags,
)

from tests.conftest import uok

ROOT = Path(__file__).resolve().parents[2]
PLAN = (
    '[plan]\nid = "cfg"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    '[[milestones.slices.tasks]]\nid = "a"\ncommand = ["true"]\ngates = ["verification"]\n'
)


def test_defaults_everything_on_but_chaos():
    s = parse_settings({})
    assert s == Settings()
    assert s.enabled and s.gates.enabled and s.breakers.enabled and s.cost_guard.enabled
    assert s.security_guard.enabled and s.gitops.enabled and not s.chaos.enabled
    assert s.gitops.turn_action == "commit"
    assert (s.cost_guard.per_unit_usd, s.cost_guard.per_hour_usd, s.cost_guard.window_seconds) == (2.0, 20.0, 3600.0)
    p = s.breaker_policy("anything")
    assert (p.failure_threshold, p.open_seconds, p.max_streak, p.half_open_max_probes, p.half_open_timeout_seconds) == (
        3,
        30.0,
        5,
        1,
        60.0,
    )
    assert s.security_guard.timeout_seconds == 30.0


def test_explicit_settings_are_typed():
    s = parse_settings(
        {
            "gates": {"enabled": False},
            "chaos": {"enabled": True, "seed": 7},
            "gitops": {"turn_action": "snapshot"},
            "security_guard": {"enabled": False},
            "breakers": {"failure_threshold": 5, "open_seconds": 10},
            "gate": {"verification": {"command": ["make", "test"], "timeout": 60, "breaker": {"max_streak": 2}}},
        }
    )
    assert not s.gates.enabled and s.chaos.enabled and s.chaos.seed == 7
    assert s.gitops.turn_action == "snapshot"
    assert s.gate_enabled("verification") == (False, "uok.gates.enabled")
    p = s.breaker_policy("verification")
    assert (p.failure_threshold, p.open_seconds, p.max_streak) == (5, 10.0, 2)
    assert isinstance(p.open_seconds, float) and s.breaker_policy("other").max_streak == 5
    assert s.gate["verification"].command == ["make", "test"] and s.gate["verification"].timeout == 60.0
    s2 = parse_settings({"security_guard": {"enabled": False}})
    assert s2.gate_enabled("security") == (False, "uok.security_guard.enabled")
    assert s2.gate_enabled("verification") == (True, "")
    assert parse_settings({"gate": {"lint": {"command": "make lint", "shell": True}}}).gate["lint"].command == [
        "make lint"
    ]


@pytest.mark.parametrize(
    "config, key",
    [
        ({"gitops": {"turn_action": "push-everything"}}, "uok.gitops.turn_action"),
        ({"gitops": {"turn_push": True}}, "uok.gitops.turn_push"),  # never pushed anything: gone
        ({"gates": {"enabled": "yes"}}, "uok.gates.enabled"),
        ({"gates": {"strict": True}}, "uok.gates.strict"),
        ({"breakers": {"failure_threshold": 0}}, "uok.breakers.failure_threshold"),
        ({"breakers": {"failure_threshold": True}}, "uok.breakers.failure_threshold"),
        ({"breakers": {"open_seconds": -1}}, "uok.breakers.open_seconds"),
        ({"breakers": {"open_seconds": float("inf")}}, "uok.breakers.open_seconds"),
        ({"breakers": {"treshold": 3}}, "uok.breakers.treshold"),
        ({"cost_guard": {"per_unit_usd": "2"}}, "uok.cost_guard.per_unit_usd"),
        ({"cost_guard": {"table_rows": []}}, "uok.cost_guard.table_rows"),  # the shell's, not the file's
        ({"security_guard": {"files": "a.txt"}}, "uok.security_guard.files"),
        ({"security_guard": {"files": ["ok", ""]}}, "uok.security_guard.files[1]"),
        ({"gate": {"verification": {"command": "make test"}}}, "uok.gate.verification.command"),
        (
            {"gate": {"verification": {"breaker": {"half_open_max_probes": 0}}}},
            "uok.gate.verification.breaker.half_open_max_probes",
        ),
        ({"gate": {"lint": {"timeout": 0}}}, "uok.gate.lint.timeout"),
        ({"gatez": {}}, "uok.gatez"),
        ({"chaos": True}, "uok.chaos"),
        ({"chaos": {"rate": 2}}, "uok.chaos.rate"),
        ({"chaos": {"faults": ["meteor"]}}, "uok.chaos.faults[0]"),
        ({"chaos": {"faults": []}}, "uok.chaos.faults"),
        ({"chaos": {"sneaky": 1}}, "uok.chaos.sneaky"),
        ({"metrics": {"port": 1}}, "uok.metrics.port"),
        *[({name: {"enabled": True}}, f"uok.{name}.enabled") for name in RETIRED_SECTIONS],
    ],
)
def test_a_bad_config_names_the_dotted_key(config, key):
    with pytest.raises(ConfigError) as info:
        parse_settings(config)
    assert info.value.key == key and str(info.value).startswith(key + ":")


def test_errors_say_what_was_found_and_what_is_allowed():
    with pytest.raises(ConfigError, match=r"must be one of commit, snapshot, status-only, got 'x'"):
        parse_settings({"gitops": {"turn_action": "x"}})
    with pytest.raises(ConfigError, match=r"expected `int` >= 1, got 0"):
        parse_settings({"breakers": {"failure_threshold": 0}})
    with pytest.raises(ConfigError, match=r"unknown key \(allowed: enabled, push_remote, turn_action\)"):
        parse_settings({"gitops": {"push": 1}})
    with pytest.raises(ConfigError, match=r"\[uok.metrics\] is not a uok section"):
        parse_settings({"metrics": {"port": 1}})


def test_settings_round_trip_through_the_recorded_form():
    s = parse_settings({"cost_guard": {"per_unit_usd": 1.5}, "gate": {"security": {"files": ["a"]}}})
    rows = [{"id": "m", "provider": "p", "input_per_1k": 0.1, "output_per_1k": 0.1}]
    assert recorded_settings(recorded(s, rows)) == (s, rows)
    assert recorded_settings(None) == (Settings(), [])
    assert recorded(s)["gate"]["security"] == {
        "enabled": True,
        "command": None,
        "shell": False,
        "timeout": None,
        "files": ["a"],
        "breaker": {},
    }


def test_the_settings_old_logs_recorded_still_convert():
    """Logs written before the schema was typed recorded every Feature section
    with pass-through options; the fixture logs are such logs."""
    for name in ("demo", "failures", "recovery"):
        lines = (ROOT / "fixtures" / "logs" / f"{name}.ndjson").read_text().splitlines()
        entered = next(json.loads(json.loads(line)["payload"]) for line in lines if '"KernelEntered/' in line)
        assert set(RETIRED_SECTIONS) <= set(entered["flags"]["uok"])
        flags = run_flags(entered["flags"])
        assert flags.settings == Settings() and flags.turn_closeout is True
        assert flags.gates == {"verification": "verification", "security": "security"}
    legacy = {
        "gitops": {"enabled": False, "turn_action": "status-only", "turn_push": True, "options": {"remote": "x"}},
        "gates": {"enabled": True, "options": {}},
        "chaos": {"enabled": True, "options": {"seed": 3, "rate": 0.5}},
        "metrics": {"enabled": False, "options": {"port": 9}},
        "cost_guard": {"table_rows": [{"id": "m"}]},
        "gate": {"verification": {"breaker": {"failure_threshold": 1}}},
    }
    s, rows = recorded_settings(legacy)
    assert (s.gitops.enabled, s.gitops.turn_action) == (False, "status-only")
    assert (s.chaos.enabled, s.chaos.seed, s.chaos.rate) == (True, 3, 0.5)
    assert rows == [{"id": "m"}] and s.breaker_policy("verification").failure_threshold == 1
    unchecked = recorded_settings({"chaos": {"enabled": False, "options": {"rate": "often"}}})[0]
    assert unchecked.chaos == Settings().chaos  # options never validated while chaos was off
    assert run_flags({"gates": ["lint"]}).gates == {"lint": "unknown"}  # the earliest shape


def test_the_documented_config_is_the_schema():
    """docs/gates.md lists every key of the schema, and only those (it parses)."""
    doc = (ROOT / "docs" / "gates.md").read_text()
    block = doc.split("Every key, with its default", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    table = tomllib.loads(block)["uok"]
    s = parse_settings(table)
    assert s.gate.keys() == {"verification"}

    def keys(schema: type, prefix: str) -> set[str]:
        out = set()
        for f in msgspec.structs.fields(schema):
            t = f.type
            if isinstance(t, type) and issubclass(t, msgspec.Struct):
                out |= keys(t, f"{prefix}{f.name}.")
            elif f.name == "gate":
                out |= keys(type(s.gate["verification"]), f"{prefix}gate.<id>.")
            else:
                out.add(prefix + f.name)
        return out

    def documented(t: dict, prefix: str) -> set[str]:
        out = set()
        for k, v in t.items():
            name = "<id>" if prefix == "gate." else k
            if prefix == "" and k == "models":  # the routing table: a dict field, any model mode
                out.add(k)
                continue
            out |= documented(v, f"{prefix}{name}.") if isinstance(v, dict) else {prefix + name}
        return out

    assert documented(table, "") == keys(Settings, "")


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
    assert load_config(plan, cwd=cwd).settings.cost_guard.per_unit_usd == 3.0
    (plan_dir / "uok.toml").write_text("[uok.cost_guard]\nper_unit_usd = 4.0\n")
    assert load_config(plan, cwd=cwd).settings.cost_guard.per_unit_usd == 4.0
    (plan_dir / "uok.toml").write_text("[cost_guard]\nper_unit_usd = 5.0\n")  # top-level form
    assert load_config(plan, cwd=cwd).settings.cost_guard.per_unit_usd == 5.0
    other = tmp_path / "other.toml"
    other.write_text("[uok.cost_guard]\nper_unit_usd = 6.0\n")
    assert load_config(plan, other, cwd=cwd).settings.cost_guard.per_unit_usd == 6.0  # --config wins


def test_a_cost_table_file_is_read_relative_to_the_config(tmp_path: Path):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    (tmp_path / "costs.toml").write_text(
        '[[models]]\nid = "in-house"\nprovider = "us"\ninput_per_1k = 0.01\noutput_per_1k = 0.02\n'
    )
    (tmp_path / "uok.toml").write_text('[uok.cost_guard]\ntable = "costs.toml"\n')
    rows = load_config(plan).cost_rows
    assert list(rows) == [{"id": "in-house", "provider": "us", "input_per_1k": 0.01, "output_per_1k": 0.02}]
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


def test_an_unknown_key_exits_2_naming_it_and_the_same_file_without_it_runs(tmp_path: Path):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN.replace('gates = ["verification"]\n', ""))
    (tmp_path / "uok.toml").write_text("[uok.breakers]\nfailure_threshold = 2\n\n[uok.metrics]\nport = 1\n")
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 2 and "uok.metrics.port" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not db.exists()
    (tmp_path / "uok.toml").write_text("[uok.breakers]\nfailure_threshold = 2\n")
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr


def test_settings_recorded_by_an_earlier_run_can_be_passed_back_in(tmp_path: Path):
    plan = tmp_path / "p.toml"
    plan.write_text(PLAN)
    s = parse_settings({"cost_guard": {"per_unit_usd": 1.25}})
    rows = [{"id": "m", "provider": "p", "input_per_1k": 0.1, "output_per_1k": 0.1}]
    loaded = load_config(plan, override=recorded(s, rows))  # recorded form: carries the cost rows
    assert (loaded.settings, list(loaded.cost_rows)) == (s, rows)
    with pytest.raises(ConfigFileError, match=r"uok\.gitops\.turn_action"):  # a hand-written table is
        load_config(plan, override={"gitops": {"turn_action": "sometimes"}})
