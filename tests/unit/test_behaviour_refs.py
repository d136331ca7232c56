"""Every ``behaviour §N`` resolves inside the repository.

Code and docs cite sections of ``docs/behaviour.md`` (what uok does, module
by module, under the seed's module names). A citation of a section that
does not exist, or of the specification that lives outside this repository,
is a dangling link for the next reader; so is a module path in
behaviour.md that a refactoring moved.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BEHAVIOUR = ROOT / "docs" / "behaviour.md"
SOURCES = ("domain", "adapters", "projections", "replay", "uok", "tests", "bench", "fixtures", "docs")
TOP_FILES = ("README.md", "CHANGELOG.md", "CONTRIBUTING.md", "pyproject.toml")

HEADING = re.compile(r"^#{2,3} (\d+[a-z]?)\. ", re.M)
CITATION = re.compile(r"§(\d+[a-z]?)")
# A citation of the specification uok was built from: it is not in this
# repository (the patterns are split so that this file does not match them).
OUTSIDE = re.compile(r"\bspec\W{0,5}" + "§|uok-" + "behaviour\\.md", re.I)
MODULE_PATH = re.compile(r"`((?:domain|adapters|projections|replay|uok)/[\w/]*?(?:\.py|/))`")


def sections(text: str) -> set[str]:
    return set(HEADING.findall(text))


def dangling(text: str, known: set[str]) -> list[tuple[int, str]]:
    """(line, problem) for each citation that resolves nowhere."""
    found = []
    for n, line in enumerate(text.splitlines(), start=1):
        found += [(n, f"§{s} is not a section of docs/behaviour.md") for s in CITATION.findall(line) if s not in known]
        found += [(n, f"{m.group(0)!r} cites the specification outside the repository") for m in OUTSIDE.finditer(line)]
    joined = " ".join(text.split())  # a citation broken across two lines ("spec\n§13b")
    if OUTSIDE.search(joined) and not any("specification" in p for _, p in found):
        found.append((0, "a citation of the specification outside the repository spans two lines"))
    return found


def _files() -> list[Path]:
    out = [ROOT / name for name in TOP_FILES if (ROOT / name).exists()]
    for top in SOURCES:
        out += [
            p
            for p in sorted((ROOT / top).rglob("*"))
            if p.suffix in (".py", ".md", ".toml") and "__pycache__" not in p.parts
        ]
    return [p for p in out if p != Path(__file__).resolve()]


def test_behaviour_md_keeps_the_specification_numbering():
    known = sections(BEHAVIOUR.read_text())
    assert {str(n) for n in range(20)} | {"13a", "13b"} <= known


def test_every_citation_in_code_and_docs_names_a_section_of_behaviour_md():
    known = sections(BEHAVIOUR.read_text())
    files = _files()
    problems = [
        f"{path.relative_to(ROOT)}:{n}: {problem}"
        for path in files
        for n, problem in dangling(path.read_text(encoding="utf-8", errors="replace"), known)
    ]
    assert not problems, "\n".join(problems)
    cited = sum(len(CITATION.findall(p.read_text(encoding="utf-8", errors="replace"))) for p in files)
    assert cited > 50, f"only {cited} citations found: is the scan looking in the right places?"


def test_the_check_finds_what_it_must():
    known = {"1", "13b"}
    assert dangling("see behaviour §1 and §13b", known) == []
    assert [p for _, p in dangling("behaviour §14", known)] == ["§14 is not a section of docs/behaviour.md"]
    assert dangling("see the spec §1", known)[0][1].endswith("outside the repository")
    assert dangling("(spec\n§13b)", known)[0][1].endswith("spans two lines")


def test_every_module_path_in_behaviour_md_exists():
    missing = sorted({p for p in MODULE_PATH.findall(BEHAVIOUR.read_text()) if not (ROOT / p).exists()})
    assert not missing, f"docs/behaviour.md names paths that do not exist: {missing}"


def test_every_test_module_behaviour_md_names_exists():
    """§17 maps the seed's tests to uok's by module name; a renamed module
    must be renamed there too."""
    named = set(re.findall(r"`(test_\w+\.py)`", BEHAVIOUR.read_text()))
    present = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    assert len(named) > 20, named
    assert not sorted(named - present), (
        f"docs/behaviour.md names test modules that do not exist: {sorted(named - present)}"
    )
