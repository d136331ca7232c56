"""One error taxonomy: every exception uok defines is an input, integrity or
runtime failure carrying its exit code, and the CLI maps them in one place."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import apsw
import pytest
from uok.adapters.cli.output import err
from uok.domain.log.errors import IntegrityError, OperationalError, ProgrammingError

import uok
from tests.conftest import uok as run_uok
from uok import errors
from uok.errors import InputError, IntegrityFailure, RuntimeFailure, UokError, classify


def _uok_modules():
    """Every module of the installed package (its sub-packages are mapped
    from other folders, so each is walked from its own path)."""
    yield uok
    for name in ("uok", "uok.domain", "uok.adapters", "uok.projections", "uok.replay"):
        pkg = importlib.import_module(name)
        yield pkg
        for info in pkgutil.walk_packages(pkg.__path__, f"{name}."):
            if not info.name.endswith("__main__"):
                yield importlib.import_module(info.name)


# The event store's PEP 249 hierarchy: driver errors, as apsw's and psycopg's are
# (it was the eventsourcing library's until uok stopped importing that library to
# read a log). classify() maps them as before: OperationalError and IntegrityError
# exit 1, the rest (a bad statement, a closed connection) are internal errors.
DRIVER_ERRORS = "uok.domain.log.errors"


def _defined_exceptions():
    for module in _uok_modules():
        if module.__name__ == DRIVER_ERRORS:
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, BaseException):
                yield cls


def test_every_exception_uok_defines_has_a_place_in_the_taxonomy():
    found = set(_defined_exceptions())
    assert len(found) >= 30  # the walk really reached the sub-packages
    homeless = sorted(c.__qualname__ for c in found if not issubclass(c, UokError))
    assert homeless == []
    kinds = (InputError, IntegrityFailure, RuntimeFailure)
    for cls in found - {UokError, *kinds}:
        assert issubclass(cls, kinds), cls


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("uok.domain.plan.model:PlanError", InputError),
        ("uok.adapters.config:ConfigFileError", InputError),
        ("uok.adapters.runner:UsageError", InputError),
        ("uok.domain.log.chain:ChainBroken", IntegrityFailure),
        ("uok.domain.log.codec:DecodeError", IntegrityFailure),
        ("uok.adapters.sqlite_open:StoreCorruptError", IntegrityFailure),
        ("uok.adapters.sqlite_open:NotAnEventLogError", IntegrityFailure),
        ("uok.adapters.sqlite_open:StoreFullError", RuntimeFailure),
        ("uok.domain.policies.writer:StaleEpochError", RuntimeFailure),
    ],
)
def test_known_classes_are_filed_where_their_exit_code_says(name, kind):
    module, cls = name.split(":")
    assert issubclass(getattr(importlib.import_module(module), cls), kind)


def test_kinds_carry_their_exit_codes():
    assert (InputError("x").exit_code, IntegrityFailure("x").exit_code, RuntimeFailure("x").exit_code) == (2, 3, 1)
    assert classify(InputError("bad plan")) == (2, "bad plan")
    assert classify(KeyboardInterrupt()) == (130, "interrupted")
    assert classify(ValueError("a bug")) is None  # an internal error, reported as such


def test_older_bases_still_catch_them():
    from uok.adapters.sqlite_open import StoreFullError
    from uok.domain.log.codec import DecodeError

    assert issubclass(DecodeError, ValueError)
    assert issubclass(StoreFullError, OperationalError)


def test_driver_errors_are_mapped_by_class():
    assert classify(apsw.CorruptError("x"))[0] == 3
    assert classify(apsw.NotADBError("x"))[0] == 3
    assert classify(apsw.FullError("x"))[0] == 1
    assert classify(IntegrityError("stream 's' already has version 2"))[0] == 1
    assert classify(OperationalError("database is locked"))[0] == 1
    assert classify(ProgrammingError("no such table: x")) is None  # a bug: an internal error


def test_the_cli_maps_errors_by_class_not_by_name():
    source = (
        Path(errors.__file__).read_text()
        + Path(importlib.import_module("uok.adapters.cli.framework").__file__).read_text()
    )
    assert "__name__ in" not in source and "type(exc).__name__ ==" not in source


def test_one_uok_prefix(capsys):
    err("uok: events are append-only")
    err("plain")
    assert capsys.readouterr().err.splitlines() == ["uok: events are append-only", "uok: plain"]


def test_a_foreign_file_exits_3_with_one_prefix(tmp_path: Path):
    bogus = tmp_path / "not-a-log.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    r = run_uok("status", "--db", str(bogus))
    assert r.returncode == 3, r.stderr
    assert r.stderr.startswith("uok: ") and "uok: uok:" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
