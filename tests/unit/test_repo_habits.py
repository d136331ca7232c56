"""The repository's habits agree with each other: the ruff that pre-commit
runs is the ruff that ``.ci/run`` installs, and the licence file is the
licence the package metadata declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.conftest import TIERS

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pre_commit_runs_the_ruff_version_pinned_in_the_dev_extra():
    dev = _pyproject()["project"]["optional-dependencies"]["dev"]
    pins = [re.fullmatch(r"ruff==(\S+)", req) for req in dev]
    pinned = [m.group(1) for m in pins if m]
    assert len(pinned) == 1, f"the dev extra must pin ruff exactly once: {dev}"
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    rev = re.search(r"repo: https://github.com/astral-sh/ruff-pre-commit\n\s+rev: v(\S+)", config)
    assert rev is not None, "pre-commit must run ruff from astral-sh/ruff-pre-commit"
    assert rev.group(1) == pinned[0]


def test_the_licence_file_is_the_licence_the_metadata_declares():
    project = _pyproject()["project"]
    assert project["license"] == "MIT"  # an SPDX expression (the TOML-table form is deprecated)
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_every_test_module_lives_in_a_tier_folder():
    """The tier of a test is the folder it lives in (its marker follows from it)."""
    stray = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py") if p.parent.name not in TIERS)
    assert not stray, f"test modules outside tests/unit, tests/integration, tests/e2e, tests/reliability: {stray}"


def test_every_path_contributing_md_names_exists():
    """The recipes point at real files: a path that moved makes them lie."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    named = set(re.findall(r"`((?:[\w.-]+/)+[\w.-]*)`", text)) | set(re.findall(r"\]\(([\w./-]+)\)", text))
    paths = {p for p in named if "<" not in p and not p.startswith(("http", "uok/adapters/cli/commands/<"))}
    assert len(paths) > 20, paths
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"CONTRIBUTING.md names paths that do not exist: {missing}"
