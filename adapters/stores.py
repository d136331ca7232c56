"""Where the event log is, and opening it: the one place a ``--db`` /
``UOK_DB`` value becomes a store.

:func:`locate_log` decides *which* log (an explicit value, else ``UOK_DB``,
else the nearest ``.uok/events.db`` found by walking up from the working
directory, as git finds ``.git``); :func:`open_event_store` turns that
target into a store. A target is a file path today; other back ends add
their URL scheme to :data:`SCHEMES` (``postgresql://...``) and nothing else
changes: the CLI, :mod:`uok.bootstrap`, doctor and the metrics server all
come through here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from uok.errors import InputError

__all__ = [
    "DEFAULT_DIR",
    "DEFAULT_NAME",
    "ENV",
    "SCHEMES",
    "find_log",
    "is_url",
    "locate_log",
    "open_event_store",
]

ENV = "UOK_DB"
DEFAULT_DIR = ".uok"
DEFAULT_NAME = "events.db"
CEILING_ENV = "UOK_CEILING_DIRECTORIES"
"""Like git's ``GIT_CEILING_DIRECTORIES``: colon-separated directories the
upward search does not climb above (it still looks in them)."""

GITIGNORE = "*\n"

StoreOpener = Callable[..., Any]
SCHEMES: dict[str, StoreOpener] = {}
"""URL scheme (``postgresql``) -> ``opener(target, *, create, readonly)``;
filled by the back end's module when it is imported (see :func:`_scheme_opener`)."""

_SCHEME_MODULES: dict[str, str] = {
    "postgresql": "uok.adapters.postgres.store",
    "postgres": "uok.adapters.postgres.store",
}
"""URL scheme -> module that registers its opener in :data:`SCHEMES` on
import (imported only when a target names that scheme)."""


def is_url(target: str | os.PathLike[str]) -> bool:
    return isinstance(target, str) and "://" in target


def find_log(start: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """The nearest ``.uok/events.db`` in ``start`` or a parent directory.

    Stops, as git does, at a directory named in ``UOK_CEILING_DIRECTORIES``
    and before crossing onto another file system (a mount point)."""
    environ = os.environ if environ is None else environ
    ceilings = {Path(p).resolve() for p in environ.get(CEILING_ENV, "").split(":") if p}
    here = start.resolve()
    try:
        device = here.stat().st_dev
    except OSError:
        return None
    while True:
        candidate = here / DEFAULT_DIR / DEFAULT_NAME
        if candidate.is_file():
            return candidate
        parent = here.parent
        if parent == here or here in ceilings:
            return None
        try:
            if parent.stat().st_dev != device:
                return None
        except OSError:
            return None
        here = parent


def locate_log(
    db: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str | Path:
    """Which log a command means: ``db`` (``--db``), else ``$UOK_DB``, else
    the nearest ``.uok/events.db`` up from ``cwd``, else ``cwd/.uok/events.db``
    (which only commands that write create). An empty value is an error,
    never a silent fall back to the default."""
    environ = os.environ if environ is None else environ
    if db is not None:
        text = os.fspath(db)
        if not text.strip():
            raise InputError("--db needs a path (or a URL), not an empty string")
        return text if is_url(text) else Path(text)
    env = environ.get(ENV)
    if env is not None:
        if not env.strip():
            raise InputError(f"{ENV} is set but empty: unset it, or give a path")
        return env if is_url(env) else Path(env)
    cwd = Path.cwd() if cwd is None else cwd
    return find_log(cwd, environ) or cwd / DEFAULT_DIR / DEFAULT_NAME


def open_event_store(
    target: str | os.PathLike[str],
    *,
    create: bool = False,
    readonly: bool = False,
    synchronous: str = "FULL",
) -> Any:
    """Open the event store at ``target`` (a path or a URL).

    A missing log is an :class:`~uok.errors.InputError` unless ``create``
    (only commands that write may create one); a log created in a ``.uok``
    directory gets a ``.gitignore`` of ``*`` beside it, so it is never
    committed by accident.
    """
    if is_url(target):
        return _scheme_opener(str(target))(str(target), create=create, readonly=readonly)
    from uok.adapters.sqlite_store import SqliteEventStore

    path = Path(target)
    if not os.fspath(path).strip():
        raise InputError("the event log path is empty")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an event log")
    if path.exists() and not path.is_file():  # SQLite on /dev/null or a FIFO: "disk I/O error", /dev/null-journal
        raise InputError(f"{path} is not a regular file (a device, FIFO or socket), not an event log")
    if not path.exists():
        if not create or readonly:
            raise InputError(f"no event log at {path} (run `uok run PLAN` first, or pass --db)")
        _prepare_dir(path.parent)
    if not readonly and path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        raise InputError(
            f"cannot write the event log {path}: it or its directory is read-only "
            "(reading commands work on it; writing ones need it writable)"
        )
    try:
        return SqliteEventStore(path, synchronous=synchronous, readonly=readonly)
    except FileNotFoundError:
        raise InputError(f"no event log at {path} (run `uok run PLAN` first, or pass --db)") from None
    except OSError as exc:  # no permission, a missing parent we may not create
        raise InputError(f"cannot open event log {path}: {exc.strerror or exc}") from None


def _prepare_dir(directory: Path) -> None:
    """Create the log's directory (0700: it holds everything the log holds);
    a ``.uok`` directory also gets its ``.gitignore``."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if directory.name == DEFAULT_DIR:
            ignore = directory / ".gitignore"
            if not ignore.exists():
                ignore.write_text(GITIGNORE)
    except OSError as exc:
        raise InputError(f"cannot create {directory} for the event log: {exc.strerror or exc}") from None


def _scheme_opener(target: str) -> StoreOpener:
    scheme = target.split("://", 1)[0].lower()
    if scheme not in SCHEMES and scheme in _SCHEME_MODULES:
        import importlib

        try:
            importlib.import_module(_SCHEME_MODULES[scheme])  # registers itself in SCHEMES
        except ImportError as exc:
            raise InputError(f"{scheme}:// logs need the {scheme} back end, which is not installed: {exc}") from None
    try:
        return SCHEMES[scheme]
    except KeyError:
        known = ", ".join(f"{s}://" for s in sorted(SCHEMES)) or "none installed"
        raise InputError(f"unsupported event log URL {target!r} (a file path, or: {known})") from None
