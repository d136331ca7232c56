"""Redaction's shortcuts (uok.adapters.redactscan, uok.adapters.regexneeds) change nothing: on the
secret corpus and on generated output mixing every detect-secrets plugin's
shapes with token-like noise, odd line breaks, long lines and case-folding
characters, ``redact`` returns exactly what the line-by-line reference
(tests/redaction_reference.py) returns."""

from __future__ import annotations

import random
import re
import string

import pytest
from uok.adapters import redactscan, regexneeds, secrets
from uok.adapters.secrets import redact

from tests import redaction_reference as reference
from tests.secret_corpus import PLAIN, SHAPES


def _j(*parts: str) -> str:
    return "".join(parts)


def _fill(rnd: random.Random, alphabet: str, n: int) -> str:
    return "".join(rnd.choice(alphabet) for _ in range(n))


AZ09 = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = AZ09 + "+/"


def plugin_shapes(rnd: random.Random) -> list[str]:
    """One string in the shape of each detect-secrets plugin's patterns
    (assembled here, so this file holds no literal key)."""
    f = lambda a, n: _fill(rnd, a, n)  # noqa: E731
    return [
        "artifactory " + _j("A", "KC") + f(AZ09, 24),
        "x=" + _j("A", "P") + "B" + f(AZ09, 24) + " ",
        _j("AK", "IA") + f(string.ascii_uppercase + string.digits, 16),
        'aws_secret_key = "' + f(B64, 40) + '"',
        _j("Account", "Key=") + f(B64, 88),
        "https://user:" + f(AZ09, 12) + "@example.com/x",
        "cloudant_password = " + f(HEX, 64),
        "https://acct:" + f("abcdefghijklmnopqrstuvwxyz", 24) + "@acct.cloudant.com",
        "M" + f(AZ09, 23) + "." + f(AZ09, 6) + "." + f(AZ09, 27),
        _j("gh", "p_") + f(AZ09, 36),
        _j("gl", "pat-") + f(AZ09, 20),
        "ibm_cloud_iam_key: " + f(AZ09 + "_-", 44),
        "cos_secret_access_key = " + f(HEX, 48),
        _j("ey", "J") + f(AZ09, 20) + "." + _j("ey", "J") + f(AZ09, 20) + "." + f(AZ09, 20),
        'api_key: "' + f(AZ09, 16) + '"',
        'password = "' + f(AZ09, 12) + '";',
        "'" + f(AZ09, 12) + "' == my_secret",
        f(HEX, 32) + "-us" + f(string.digits, 2),
        "//registry.npmjs.org/:_authToken=" + _j("npm", "_") + f(AZ09, 36),
        "sk-" + f(AZ09, 20) + _j("T3Blbk", "FJ") + f(AZ09, 20),
        "-----" + _j("BEGIN ", "RSA PRIVATE KEY") + "-----",
        _j("pypi-", "AgEIcHlwaS5vcmc") + f(AZ09, 70),
        _j("S", "G.") + f(AZ09, 22) + "." + f(AZ09, 43),
        _j("xo", "xb-") + f(string.digits, 10) + "-" + f(HEX, 24),
        "https://hooks.slack.com/services/T" + f(AZ09, 8) + "/B" + f(AZ09, 8) + "/" + f(AZ09, 24),
        "softlayer_api_key = " + f("abcdefghijklmnopqrstuvwxyz0123456789", 64),
        _j("sq0", "csp-") + f(AZ09, 43),
        _j("sk_", "live_") + f(AZ09, 24),
        f(string.digits, 9) + ":" + f(AZ09, 35),
        _j("A", "C") + f("abcdefghijklmnopqrstuvwxyz0123456789", 32),
        "export DB_PASSWORD=" + f(AZ09, 14),
        "Authorization: Bearer " + f(AZ09, 30),
    ]


NOISE = [
    lambda rnd: f"commit {_fill(rnd, HEX, 40)}",
    lambda rnd: f'"integrity": "sha512-{_fill(rnd, B64, 86)}=="',
    lambda rnd: f"  {_fill(rnd, B64, 64)}",
    lambda rnd: f"id={_fill(rnd, HEX, 64)} key {_fill(rnd, AZ09, 30)}",
    lambda rnd: f"step {rnd.randrange(10**9)}: ok; tokens used: {rnd.randrange(9999)}",
    lambda rnd: "x=1 " * rnd.randrange(900, 1400),  # a long line: windows
    lambda rnd: "PWD=/home/dev OLDPWD=/tmp",
    lambda rnd: "token: $GITHUB_TOKEN",
    # case folding: ſ folds to s, K (KELVIN SIGN) to k, ı and İ to i
    lambda rnd: f"pa\u017f\u017fword = '{_fill(rnd, AZ09, 12)}'; api_\u212aEY: \"{_fill(rnd, AZ09, 12)}\"",
    lambda rnd: f'Secret_Key: "{_fill(rnd, AZ09, 14)}" \u0130 contrase\u00f1a = "{_fill(rnd, AZ09, 10)}"',
    lambda rnd: "caf\u00e9 \u2713 r\u00e9sum\u00e9 \U0001f600 " + _fill(rnd, AZ09, 40),
]
BREAKS = ["\n", "\n", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028"]


def generated(seed: int, lines: int = 60) -> str:
    rnd = random.Random(seed)
    shapes = plugin_shapes(rnd) + [text for _, text, _ in SHAPES]
    out = []
    for _ in range(lines):
        pick = rnd.random()
        if pick < 0.3:
            line = rnd.choice(shapes)
        elif pick < 0.4:  # a secret inside a long line, maybe across a window's edge
            at = rnd.randrange(3500, 4400)
            line = "y" * at + " " + rnd.choice(shapes) + " " + "z" * rnd.randrange(10, 600)
        elif pick < 0.5:  # two on one line
            line = f"{rnd.choice(shapes)} {rnd.choice(NOISE)(rnd)} {rnd.choice(shapes)}"
        else:
            line = rnd.choice(NOISE)(rnd)
        out.append(line + rnd.choice(BREAKS))
    return "".join(out)


@pytest.mark.parametrize("text", [t for _, t, _ in SHAPES] + PLAIN)
def test_the_corpus_redacts_as_the_reference_does(text: str):
    assert redact(text) == reference.redact(text)


@pytest.mark.parametrize("seed", range(12))
def test_generated_output_redacts_as_the_reference_does(seed: int):
    text = generated(seed)
    assert redact(text) == reference.redact(text)


def test_every_plugin_shape_is_caught():
    """The generated shapes are real: each is found by the plugins (the
    comparison above would be empty otherwise)."""
    rnd = random.Random(7)
    for shape in plugin_shapes(rnd):
        assert redact(shape) != shape, shape


def test_plugin_secrets_match_the_reference_on_each_line_shape():
    rnd = random.Random(3)
    text = "\n".join(plugin_shapes(rnd) + [n(rnd) for n in NOISE])
    with secrets.LOCK:
        fast = redactscan.plugin_secrets(
            text,
            secrets._probes(),
            candidate=secrets._CANDIDATE.search,
            keep=secrets._keep,
            window=secrets._WINDOW,
            overlap=secrets._OVERLAP,
        )
    assert fast == reference.plugin_secrets(text)
    assert len(fast) >= 25


@pytest.mark.parametrize("seed", range(5))
def test_lines_are_cut_as_splitlines_cuts_them(seed: int):
    rnd = random.Random(seed)
    text = "".join(rnd.choice(["a", "bc", " ", *BREAKS]) for _ in range(400))
    lines = redactscan.Lines(regexneeds.Text(text))
    assert [lines.line(i) for i in range(len(lines))] == text.splitlines()


def test_a_requirement_is_found_wherever_the_engine_matches_it():
    """Matching ignoring case, the engine also matches ſ to s, K (KELVIN SIGN)
    to k, ı and İ to i: the fold finds them too."""
    for word, text in [
        ("password", "PA\u017f\u017fWORD"),
        ("key", "\u212aEY"),
        ("pid", "P\u0130D"),
        ("pid", "p\u0131d"),
    ]:
        assert re.search(word, text, re.IGNORECASE)
        (need,) = regexneeds.requirements(re.compile(word, re.IGNORECASE))
        t = regexneeds.Text(text)
        assert need.found_in(t) and list(need.positions(t)) == [0]


def test_requirements_are_read_off_the_patterns():
    def strings(pattern: str, flags: int = 0) -> list[set[str]]:
        return [{s for s, _ in r.strings} for r in regexneeds.requirements(re.compile(pattern, flags))]

    assert strings(r"(?:AKIA|ASIA)[0-9A-Z]{16}") == [{"KIA", "SIA"}, {"A"}]
    assert strings(r"\bfoo(?:bar|baz)?x+") == [{"foo"}, {"x"}]
    assert strings(r"(?:ab|)cd") == [{"cd"}]
    assert strings(r"[a-z]+") == []
    assert regexneeds.context_free(re.compile(r"ab[0-9]+"))
    assert not regexneeds.context_free(re.compile(r"\bab"))
    assert not regexneeds.context_free(re.compile(r"(?<=x)ab"))


def test_anchored_matches_are_those_of_a_full_scan():
    """Where an anchor says matches can start, ``match`` there finds what
    ``finditer`` finds (every anchored pattern, on generated output)."""
    with secrets.LOCK:
        secrets.detector()
        anchored = [(p.regex, p.anchor) for p in secrets._probes() if p.anchor is not None]
    anchored += [(w.pattern, w.anchor) for _, w in secrets._strict() if w.anchor is not None]
    assert len(anchored) > 25
    for seed in range(3):
        text = generated(100 + seed) + "\n".join(plugin_shapes(random.Random(seed)))
        t = regexneeds.Text(text)
        for regex, anchor in anchored:
            starts = anchor.starts(t, len(text))
            assert starts is not None
            got = [m.span() for m in redactscan.matches_at(regex, starts, text)]
            assert got == [m.span() for m in regex.finditer(text)], regex.pattern


# Short words (no run of 20 token characters), none naming a secret, a URL
# without a password, odd line breaks and non-ASCII: text _CANDIDATE accepts
# nowhere, which redact() returns without running (or importing) detect-secrets.
PLAIN_WORDS = ["plan", "milestones", "slices.tasks", "id", "=", '"build"', "command", '["true"]', "0.5", "café", "✓"]
PLAIN_WORDS += ["https://example.com/a/b", "x" * 19, "/tmp/out", "résumé", "step 3: ok", "[[milestones.slices]]"]


@pytest.mark.parametrize("seed", range(8))
def test_text_no_plugin_would_scan_redacts_as_the_reference_does(seed: int):
    rnd = random.Random(seed)
    text = "".join(rnd.choice(PLAIN_WORDS) + rnd.choice([" ", " ", ", ", *BREAKS]) for _ in range(300))
    assert secrets._CANDIDATE.search(text) is None  # the shortcut is what this exercises
    assert redact(text) == reference.redact(text) == text
