"""The security gate and redaction: secrets are found, never stored."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import orjson
import pytest
from uok.adapters import secrets
from uok.adapters.gates.security import SecurityGate
from uok.adapters.secrets import redact
from uok.adapters.secretscan import scan_files
from uok.domain.policies.gates import GateContext

from tests.conftest import uok

# A fake AWS access key id. The plan below builds it at run time from pieces,
# so the full text exists only in the file the task writes and its stdout.
PIECES = ("AKIA", "Q7XKZ3M2", "P9R4T6W8")
FAKE_KEY = "".join(PIECES)


def ctx(root: Path, writes=(), files=(), timeout=None) -> GateContext:
    return GateContext(
        run_id="r",
        turn_id="r:1",
        unit_id="u",
        gate_id="security",
        base_path=str(root),
        writes=tuple(writes),
        files=tuple(files),
        timeout=timeout,
    )


def test_a_planted_aws_key_fails_the_gate_and_its_text_never_reaches_the_log(tmp_path: Path):
    plan_dir = tmp_path / "p"
    plan_dir.mkdir()
    code = (
        f"import os; k={PIECES[0]!r}+{PIECES[1]!r}+{PIECES[2]!r}; os.makedirs('out', exist_ok=True); "
        "open('out/creds.txt','w').write('[default]\\naws_access_key_id = '+k+'\\n'); "
        "print('wrote key', k); import sys; print('stderr key', k, file=sys.stderr)"
    )
    (plan_dir / "plan.toml").write_text(
        '[plan]\nid = "sec"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        '[[milestones.slices.tasks]]\nid = "leaky"\nretries = 0\n'
        f'command = ["{sys.executable}", "-c", {orjson.dumps(code).decode()}]\n'
        'writes = ["out/creds.txt"]\ngates = ["security"]\n'
        '[[milestones.slices.tasks]]\nid = "clean"\ndepends_on = []\n'
        f"command = [\"{sys.executable}\", \"-c\", \"open('ok.txt','w').write('nothing here\\\\n')\"]\n"
        'writes = ["ok.txt"]\ngates = ["security"]\n'
    )
    assert FAKE_KEY not in (plan_dir / "plan.toml").read_text()
    db = tmp_path / "sec.db"
    r = uok("run", str(plan_dir / "plan.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr  # a unit failed
    assert FAKE_KEY in (plan_dir / "out" / "creds.txt").read_text()  # the key really was planted

    ev = uok("events", "--db", str(db), "--json")
    rows = [orjson.loads(line)["event"] for line in ev.stdout.splitlines()]
    runs = {(e["unit_id"], e["outcome"]): e for e in rows if e["type"] == "GateRun"}
    bad = runs[("leaky", "fail")]
    assert bad["failure_class"] == "policy" and "AWS Access Key at out/creds.txt:2" in bad["rationale"]
    [finding] = [f for f in bad["findings"] if f["kind"] == "AWS Access Key"]
    assert finding["file"] == "out/creds.txt" and finding["line"] == 2
    assert finding["fingerprint"] == hashlib.sha256(FAKE_KEY.encode()).hexdigest()[:16]
    assert ("clean", "pass") in runs
    [failed] = [
        e for e in rows if e["type"] == "UnitTransitioned" and e["unit_id"] == "leaky" and e["to_state"] == "failed"
    ]
    assert failed["failure_class"] == "policy"
    [out] = [e for e in rows if e["type"] == "ExecutionFinished" and e["unit_id"] == "leaky"]
    assert "[REDACTED:AWS Access Key:" in out["stdout_tail"] and "[REDACTED:AWS Access Key:" in out["stderr_tail"]

    # after the process closed the log: the key's bytes are nowhere in the files
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if path.exists():
            assert FAKE_KEY.encode() not in path.read_bytes(), path.name
    assert FAKE_KEY not in ev.stdout


def test_scan_files_reports_type_line_and_fingerprint_never_the_secret(tmp_path: Path):
    (tmp_path / "a.env").write_text(f'x = 1\nAWS_KEY={FAKE_KEY}\npassword = "correct-horse-battery-9"\n')
    (tmp_path / "b.txt").write_text("plain text\n")
    findings, notes = scan_files(tmp_path, ["a.env", "b.txt", "missing.txt"])
    kinds = {(f.file, f.line, f.kind) for f in findings}
    assert ("a.env", 2, "AWS Access Key") in kinds
    assert ("a.env", 3, "Secret Keyword") in kinds
    assert notes == ["missing.txt: not found"]
    blob = orjson.dumps([f.__struct_fields__ and {k: getattr(f, k) for k in f.__struct_fields__} for f in findings])
    assert FAKE_KEY.encode() not in blob and b"correct-horse-battery-9" not in blob


@pytest.mark.parametrize(
    "text, gone, kept",
    [
        (f"key={FAKE_KEY} done", [FAKE_KEY], ["key=", "done"]),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nxyz\n-----END RSA PRIVATE KEY-----\nafter",
            ["MIIEowIBAAKCAQEA7", "xyz"],
            ["after"],
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n(truncated tail)",
            ["b3BlbnNzaC1rZXktdjEAAAAA", "truncated"],
            [],
        ),
        ('password = "hunter2hunter2"', ["hunter2hunter2"], ["password"]),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 end", ["ghp_abcdefghijklmnopqrstuvwxyz0123456789"], ["end"]),
        ("collected 12 items; tests/test_x.py ....... [100%] in 0.52s", [], ["collected 12 items", "0.52s"]),
    ],
)
def test_redact(text, gone, kept):
    out = redact(text)
    for g in gone:
        assert g not in out
    for k in kept:
        assert k in out
    if gone:
        assert "[REDACTED:" in out
    else:
        assert out == text


def test_redaction_markers_carry_type_and_fingerprint():
    out = redact(f"id {FAKE_KEY}")
    assert out == f"id [REDACTED:AWS Access Key:{hashlib.sha256(FAKE_KEY.encode()).hexdigest()[:16]}]"
    assert redact(out) == out  # idempotent


def test_the_gate_passes_clean_files_and_skips_when_there_is_nothing_to_scan(tmp_path: Path):
    (tmp_path / "ok.txt").write_text("hello\n")
    gate = SecurityGate()
    r = gate.execute(ctx(tmp_path, writes=["ok.txt"]), 1)
    assert r.outcome == "pass" and "1 scanned file" in r.rationale
    r = gate.execute(ctx(tmp_path), 1)
    assert r.outcome == "skip" and "nothing to scan" in r.rationale
    # files listed by the gate config are scanned too
    (tmp_path / "cfg.ini").write_text(f"key = {FAKE_KEY}\n")
    r = SecurityGate(files=("cfg.ini",)).execute(ctx(tmp_path, writes=["ok.txt"]), 1)
    assert r.outcome == "fail" and r.failure_class == "policy" and r.findings[0].file == "cfg.ini"


def test_a_scanner_that_cannot_be_imported_fails_closed_or_skips_by_config_never_passes(tmp_path: Path, monkeypatch):
    (tmp_path / "x.txt").write_text(f"{FAKE_KEY}\n")
    monkeypatch.setitem(sys.modules, "detect_secrets.core", None)  # import detect_secrets.core -> ImportError
    r = SecurityGate().execute(ctx(tmp_path, writes=["x.txt"]), 1)
    assert r.outcome == "fail" and "could not run" in r.rationale and "detect-secrets is not importable" in r.rationale
    r = SecurityGate(unscannable="skip").execute(ctx(tmp_path, writes=["x.txt"]), 1)
    assert r.outcome == "skip" and "detect-secrets is not importable" in r.rationale
    # redaction still applies the strict patterns without detect-secrets
    assert FAKE_KEY not in redact(f"k {FAKE_KEY}")


def test_a_scanner_that_times_out_fails_closed(tmp_path: Path):
    (tmp_path / "x.txt").write_text("hello\n")
    with secrets.LOCK:  # another scan holds the scanner: this one cannot finish in time
        r = SecurityGate(timeout_seconds=0.2).execute(ctx(tmp_path, writes=["x.txt"]), 1)
    assert r.outcome == "fail" and r.failure_class == "timeout"
    assert "did not finish within 0.2 s" in r.rationale and "NOT scanned" in r.rationale


def test_an_oversized_or_unreadable_file_is_never_a_pass(tmp_path: Path):
    (tmp_path / "big.txt").write_bytes(b"a" * 2048)
    (tmp_path / "link").symlink_to("/etc/hostname")
    r = SecurityGate(max_file_bytes=1024).execute(ctx(tmp_path, writes=["big.txt"]), 1)
    assert r.outcome == "fail" and r.failure_class == "policy"
    assert "big.txt: 2048 bytes, larger than the scan limit of 1024" in r.rationale
    r = SecurityGate(max_file_bytes=1024, unscannable="skip").execute(ctx(tmp_path, writes=["big.txt"]), 1)
    assert r.outcome == "skip" and "could not be scanned" in r.rationale
    r = SecurityGate().execute(ctx(tmp_path, writes=["link"]), 1)
    assert r.outcome == "fail" and "symbolic link" in r.rationale
    assert SecurityGate().execute(ctx(tmp_path, writes=["big.txt"]), 1).outcome == "pass"  # under the default limit


def test_a_key_inside_a_binary_file_is_found(tmp_path: Path):
    (tmp_path / "blob.bin").write_bytes(b"\0\x01\x02" * 100 + FAKE_KEY.encode() + b"\0" * 50)
    r = SecurityGate().execute(ctx(tmp_path, writes=["blob.bin"]), 1)
    assert r.outcome == "fail" and r.findings[0].kind == "AWS Access Key" and r.findings[0].file == "blob.bin"
    assert FAKE_KEY not in r.rationale
