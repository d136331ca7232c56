"""psycopg's errors as the persistence hierarchy every uok store raises.

psycopg follows PEP 249, and so does :mod:`uok.domain.log.errors`: a
psycopg ``IntegrityError`` becomes the store's ``IntegrityError`` and so on,
so callers (the event log, the bus, the CLI's exit codes) handle one family
of errors whichever store they run on. Every message is scrubbed of the
password and names the log by its redacted URL.
"""

from __future__ import annotations

import psycopg
import psycopg_pool
from uok.adapters.postgres.target import PgTarget
from uok.domain.errors import InputError, IntegrityFailure
from uok.domain.log import errors as p

_BY_NAME: dict[str, type[p.PersistenceError]] = {
    "IntegrityError": p.IntegrityError,
    "DataError": p.DataError,
    "OperationalError": p.OperationalError,
    "ProgrammingError": p.ProgrammingError,
    "NotSupportedError": p.NotSupportedError,
    "InternalError": p.InternalError,
    "InterfaceError": p.InterfaceError,
    "DatabaseError": p.DatabaseError,
}


class NoEventLogError(InputError, p.OperationalError):
    """The schema holds no event log and this command may not create one (exit 2)."""


class NotAnEventLogError(IntegrityFailure, p.DatabaseError):
    """The schema holds tables that are not (or not yet) a uok event log (exit 3)."""


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


def translate(error: BaseException, target: PgTarget, doing: str = "") -> p.PersistenceError:
    """The persistence error for a psycopg (or pool) error, password-free."""
    if isinstance(error, p.PersistenceError):
        return error
    if isinstance(error, psycopg_pool.PoolTimeout):
        cls: type[p.PersistenceError] = p.OperationalError
    else:
        cls = next((_BY_NAME[c.__name__] for c in type(error).__mro__ if c.__name__ in _BY_NAME), p.DatabaseError)
    if isinstance(error, psycopg.Error) and error.diag.message_primary and cls is not p.OperationalError:
        reason = error.diag.message_primary
    else:
        reason = first_line(error)
    what = f"{doing}: " if doing else ""
    return cls(target.scrub(f"{what}{reason} (PostgreSQL event log {target.display})"))
