"""Hypothesis fuzzing of the command line, in-process.

``uok.adapters.cli.framework.main(argv)`` with random argv built from every
registered sub-command and option, hostile values and real paths (a
healthy log, a corrupt log, a plan, a bad plan, a directory, a missing
file). It must end with exit 0/1/2/3 (``SystemExit`` from argparse or a
return value), never another exception, and leave every log it may have
touched whole: chain valid, positions gapless, versions per stream
gapless, and every transaction replaying whole.

Commands that serve, follow or wait for a run are left out (they are tested with
their own tests: HTTP, workers); their ``--help`` is still fuzzed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import uok
from tests.reliability.support import assert_log_whole, assert_replays, read_log, run_cli, subcommands

pytestmark = pytest.mark.reliability

EXAMPLES = 250
BLOCKING = {"serve", "ui", "watch", "tail", "follow", "worker"}  # servers, and a worker waiting for a run: --help only
WAITING = ("follow", "watch", "wait")  # options that block by design (e.g. steer --wait SECONDS)
COUNT: dict = {"cases": 0, "codes": {}}


SUBS = subcommands()
OPTIONS = sorted(
    {o for p in SUBS.values() for a in p._actions for o in a.option_strings if not any(b in o for b in WAITING)}
)
COMMANDS = sorted(name for name in SUBS if name.split()[0] not in BLOCKING)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("cli-fuzz")
    plan = root / "plan.toml"
    plan.write_text(
        '[plan]\nid = "f"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        '[[milestones.slices.tasks]]\nid = "a"\n[[milestones.slices.tasks]]\nid = "b"\n'
    )
    bad = root / "bad.toml"
    bad.write_text(
        '[plan]\nid = "f"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        '[[milestones.slices.tasks]]\nid = "a"\ndepends_on = ["a"]\n'
    )
    healthy = root / "healthy.db"
    assert uok("run", str(plan), "--db", str(healthy), "--quiet").returncode == 0
    corrupt = root / "corrupt.db"
    data = healthy.read_bytes()
    corrupt.write_bytes(data[: len(data) // 2 + 7])
    (root / "adir").mkdir()
    os.mkfifo(root / "fifo")
    # a log on read-only storage: chattr +i stops root too (chmod does not); where
    # it is refused (not root), the read-only target is a plain copy
    ro_dir = root / "ro"
    ro_dir.mkdir()
    readonly = ro_dir / "readonly.db"
    shutil.copy(healthy, readonly)
    locked = [
        p for p in (readonly, ro_dir) if subprocess.run(["chattr", "+i", str(p)], capture_output=True).returncode == 0
    ]
    try:
        yield {
            "root": root,
            "plan": plan,
            "bad": bad,
            "healthy": healthy,
            "corrupt": corrupt,
            "dir": root / "adir",
            "missing": root / "missing.db",
            "fifo": root / "fifo",
            "devnull": Path(os.devnull),
            "readonly": readonly,
        }
    finally:
        for p in reversed(locked):
            subprocess.run(["chattr", "-i", str(p)], check=False)


VALUES = st.one_of(
    st.sampled_from(
        [
            "-1",
            "0",
            "1",
            "2",
            "999999999999999999999",
            "nan",
            "abc",
            "",
            "--",
            "-",
            "FULL",
            "NORMAL",
            "r1",
            "f",
            "a",
            "x" * 300,
            "../../etc/passwd",
            "/dev/null",
            "\x7f",
            "é",
            "SELECT 1",
            "1e9",
        ]
    ),
    st.text(max_size=12),
)
PATHS = st.sampled_from(["plan", "bad", "healthy", "corrupt", "dir", "missing"])


def _value(draw, action: argparse.Action):
    if action.choices:
        return draw(st.one_of(st.sampled_from(sorted(map(str, action.choices))), VALUES))
    if action.dest == "db":
        return (
            "path",
            draw(
                st.sampled_from(
                    [
                        "healthy",
                        "healthy",
                        "healthy",
                        "corrupt",
                        "missing",
                        "dir",
                        "plan",
                        "fifo",
                        "devnull",
                        "readonly",
                    ]
                )
            ),
        )
    if action.dest == "plan":
        return ("path", draw(st.sampled_from(["plan", "plan", "plan", "bad", "missing", "dir", "healthy"])))
    if action.dest in ("out", "output", "path") or (action.metavar or "").upper() in ("PATH", "FILE", "DIR"):
        return ("path", draw(PATHS))
    return draw(st.one_of(VALUES, st.tuples(st.just("path"), PATHS)))


@st.composite
def well_formed(draw) -> list:
    """Mostly valid argv for one command: its options with plausible (or hostile) values."""
    name = draw(st.sampled_from(COMMANDS))
    tokens: list = name.split()
    for action in SUBS[name]._actions:
        if isinstance(action, argparse._HelpAction) or any(b in o for o in action.option_strings for b in WAITING):
            continue
        if not action.option_strings:  # positional
            if action.nargs in ("?", "*") and draw(st.booleans()):
                continue
            tokens.append(_value(draw, action))
        elif action.dest == "db" or draw(st.integers(0, 2)) == 0:
            tokens.append(draw(st.sampled_from(action.option_strings)))
            if action.nargs != 0:
                tokens.append(_value(draw, action))
    if draw(st.integers(0, 4)) == 0:  # a stray token somewhere
        tokens.insert(draw(st.integers(1, len(tokens))), draw(st.one_of(VALUES, st.sampled_from(OPTIONS))))
    return tokens


@st.composite
def token_soup(draw) -> list:
    tokens: list = []
    if draw(st.integers(0, 9)) > 0:
        tokens += draw(st.sampled_from([*COMMANDS, "--help", "-h", "nonsense", *sorted(BLOCKING & set(SUBS))])).split()
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            tokens.append(draw(st.sampled_from(OPTIONS)))
        elif kind == 1:
            tokens.append(("path", draw(PATHS)))
        else:
            tokens.append(draw(VALUES))
    return tokens


def argvs():
    return st.one_of(well_formed(), token_soup())


def resolve(tokens: list, world: dict[str, Path]) -> list[str]:
    out = [str(world[t[1]]) if isinstance(t, tuple) else t for t in tokens]
    if out and out[0] in BLOCKING and "--help" not in out:
        out.insert(1, "--help")  # a server must not block the fuzzer
    return out


KNOWN_INTERNAL: list = []
"""Predicates ``(argv, stderr) -> bool`` for "internal error" cases known and
reported but not yet fixed by their owner (none today; `uok sql --copy` of a
non-DuckDB file was one until commit 5d4e59a)."""
KNOWN_SEEN: list[str] = []


def call(argv: list[str]) -> int:
    code, _out, err = run_cli(argv)
    assert "Traceback" not in err, (argv, err)
    if "internal error" in err:
        assert any(known(argv, err) for known in KNOWN_INTERNAL), (argv, err)
        KNOWN_SEEN.append(err.strip().splitlines()[-1][:120])
    return code


def _is_sqlite(p: Path) -> bool:
    with open(p, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _db_args(argv: list[str]) -> set[str]:
    return {argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--db"}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argvs())
def test_random_argv_exits_cleanly_and_never_tears_a_log(world, monkeypatch, tokens):
    monkeypatch.chdir(world["root"])
    monkeypatch.delenv("UOK_DB", raising=False)
    corrupt_before = world["corrupt"].read_bytes()
    readonly_before = world["readonly"].read_bytes()
    healthy_before = world["healthy"].read_bytes()[:100]
    argv = resolve(tokens, world)
    code = call(argv)
    COUNT["cases"] += 1
    COUNT["codes"][code] = COUNT["codes"].get(code, 0) + 1
    assert code in (0, 1, 2, 3), (argv, code)
    assert world["readonly"].read_bytes() == readonly_before, (argv, "a log on read-only storage changed")
    assert not Path(f"{os.devnull}-journal").exists(), (argv, "SQLite was let loose on /dev/null")
    assert _is_sqlite(world["healthy"]), (argv, "the healthy log is no longer a SQLite file")
    if healthy_before != world["healthy"].read_bytes()[:100] or str(world["healthy"]) in _db_args(argv):
        assert_log_whole(world["healthy"])
    missing = world["missing"]
    if missing.exists():  # created by the command: as a log (--db) it must be whole; anything else is an output
        if str(missing) in _db_args(argv) and missing.stat().st_size and _is_sqlite(missing):
            assert_log_whole(missing)
        for p in (missing, Path(f"{missing}-wal"), Path(f"{missing}-shm"), Path(f"{missing}.wal")):
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    if argv and argv[0] != "run":  # `run --db corrupt` may rewrite it; nothing may clobber it as an output
        assert world["corrupt"].read_bytes() == corrupt_before, (
            f"{argv}: a command overwrote an existing file (a SQLite log) it was not asked to open as --db"
        )
    default = world["root"] / ".uok"
    if default.exists():
        db = default / "events.db"
        if db.exists() and db.stat().st_size and _is_sqlite(db):
            assert_log_whole(db)
        shutil.rmtree(default)


def test_zz_logs_replay_after_fuzzing(world):
    events = read_log(world["healthy"])
    checked = assert_replays(events)
    print(
        f"\nCLI fuzz: {COUNT['cases']} argv cases over {len(COMMANDS)} commands and {len(OPTIONS)} options; "
        f"exit codes {dict(sorted(COUNT['codes'].items()))}; healthy log now {len(events)} events, "
        f"{checked} observations replayed; known internal errors hit: {len(KNOWN_SEEN)}"
    )
    assert checked >= 1
