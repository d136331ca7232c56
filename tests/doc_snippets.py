"""Finding the code snippets of the docs (tests/e2e/test_doc_snippets.py).

A snippet is a fenced block of the README or of a page of ``docs/``:

* a **shell** snippet: a block fenced ```` ```sh ```` (or ``bash``,
  ``console``), or a plain ```` ``` ```` block whose first line starts with
  ``uok `` or with ``$ `` (a transcript: only its ``$ `` lines are
  commands, the rest is output);
* a **python** snippet: a block fenced ```` ```python ````.

Every snippet is run by the test, in order, page by page, on a fresh log,
unless the line just before its fence says why not::

    <!-- snippet: not-run: needs the network (pip install) -->

A snippet that is not run still has every ``uok`` command in it parsed by
uok's own argument parser, so a renamed command or option fails the test
either way. Usage synopses (``uok verify [--db PATH]``) are fenced
```` ```text ````, like output and diagrams: they are not snippets.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

PAGES = ("README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")))
SHELL = {"sh", "bash", "console"}
FENCE = re.compile(r"^(\s*)```(.*)$")
MARKER = re.compile(r"^<!--\s*snippet:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str  # "shell" | "python"
    body: str
    marker: str  # the text of the <!-- snippet: ... --> line before the fence, "" when none

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def not_run(self) -> str:
        """Why the snippet is not run ("" when it is)."""
        m = re.match(r"not-run:\s*(.+)", self.marker)
        return m.group(1).strip() if m else ""

    def commands(self) -> list[str]:
        """The shell lines (a transcript's ``$`` lines without the prompt;
        continuation lines joined)."""
        lines = self.body.splitlines()
        if lines and lines[0].startswith("$ "):
            lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
        out: list[str] = []
        for ln in lines:
            if out and out[-1].endswith("\\"):
                out[-1] = out[-1][:-1] + " " + ln.strip()
            else:
                out.append(ln)
        return [ln for ln in out if ln.strip() and not ln.lstrip().startswith("#")]

    def script(self) -> str:
        return "\n".join(self.commands()) + "\n" if self.lang == "shell" else self.body


def snippets(page: str) -> list[Snippet]:
    lines = (ROOT / page).read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or m.group(2).strip().startswith("`"):
            i += 1
            continue
        info, start = m.group(2).strip(), i
        body = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(m.group(1)) :])
            i += 1
        i += 1
        lang = info.split()[0] if info else ""
        kind = ""
        if lang in SHELL or (not lang and body and body[0].startswith(("$ ", "uok "))):
            kind = "shell"
        elif lang == "python":
            kind = "python"
        if not kind:
            continue
        before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        mk = MARKER.match(before)
        found.append(Snippet(page, start + 1, kind, "\n".join(body) + "\n", mk.group(1) if mk else ""))
    return found


def all_snippets() -> list[Snippet]:
    return [s for page in PAGES for s in snippets(page)]


def uok_invocations(command: str) -> list[list[str]]:
    """The argument lists of every ``uok`` call in a shell line (``uok`` or a
    path ending in ``/uok``, after any ``VAR=value`` assignments)."""
    lex = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    words = list(lex)
    calls, current = [], []
    for w in [*words, ";"]:
        if w and set(w) <= set(";&|()<>"):
            if current:
                calls.append(current)
            current = []
        else:
            current.append(w)
    out = []
    for call in calls:
        while call and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", call[0]):
            call = call[1:]
        if call and (call[0] == "uok" or call[0].endswith("/uok")):
            out.append(call[1:])
    return out


def parse_uok(args: list[str]) -> None:
    """Parse ``uok ARGS`` as the CLI would (SystemExit on a usage error),
    without running anything."""
    from uok.adapters.cli.framework import _take_trailing_words, build_parser

    parser = build_parser(everything=True)
    ns, extra = parser.parse_known_args(args)
    if extra:
        _take_trailing_words(parser, ns, extra)


def page_path(page: str) -> Path:
    return ROOT / page
