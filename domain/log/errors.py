"""The event store port's errors: the PEP 249 exception hierarchy.

Both stores (``uok.adapters.sqlite_store`` on apsw, ``uok.adapters.postgres``)
translate their driver's errors into these, so callers handle one family
whichever store they run on. An append that would write a (stream, version)
already written raises :class:`IntegrityError` and writes nothing.

The eventsourcing library has the same hierarchy under the same names
(``eventsourcing.persistence``); the one adapter that speaks to that library,
``uok.adapters.es_apsw``, raises the library's classes to it. uok's own are
defined here so that a command reading the log does not import the library
(about a fifth of what ``uok status`` executes to start).
"""

from __future__ import annotations


class PersistenceError(Exception):
    """Any error of an event store."""


class InterfaceError(PersistenceError):
    """The store's interface was misused (a closed connection, another thread's)."""


class DatabaseError(PersistenceError):
    """An error of the database itself."""


class DataError(DatabaseError):
    """The data could not be processed (a value out of range, a bad encoding)."""


class OperationalError(DatabaseError):
    """The database could not do what was asked (busy, locked, read-only, full, gone)."""


class IntegrityError(DatabaseError):
    """A constraint would be broken: nothing was written."""


class InternalError(DatabaseError):
    """The database is in a state it should not be in."""


class ProgrammingError(DatabaseError):
    """A statement is wrong (a missing table, bad SQL)."""


class NotSupportedError(DatabaseError):
    """The database does not support what was asked."""
