"""uok's error taxonomy: every failure uok reports, by kind, with its exit code.

========================  ====  ==================================================
kind                      exit  raised as (module)
========================  ====  ==================================================
:class:`InputError`        2    PlanError (domain.plan.model), CycleError (domain.plan.graph),
                                ConfigError (domain.config), ModeError (domain.policies.modes),
                                CostTableError (domain.policies.costs), GateValidationError
                                (domain.policies.gates), ConfigFileError (adapters.config),
                                UsageError (adapters.runner), ChaosSettingsError
                                (adapters.chaos), BusError (adapters.bus), ExportError
                                (adapters.export), QueryRefused / QueryFailed
                                (adapters.analytics), RunNotFound (replay.replayer),
                                ForkError (replay.fork), PositionOutsideLog
                                (adapters.runread), NotFound / BadRequest
                                (adapters.web), CopyRefused
                                (adapters.log_copy), BadTarget / NoEventLogError
                                (adapters.postgres)
:class:`IntegrityFailure`  3    ChainBroken (domain.log.chain), DecodeError and its
                                UnknownEventError / MalformedEventError (domain.log.codec),
                                StoreCorruptError / NotAnEventLogError
                                (adapters.sqlite_open), CopyError (adapters.analytics),
                                ExportInvalid (adapters.export_verify), ImportMismatch
                                (adapters.ndjson_log), ForkIntegrityError (replay.fork),
                                CopyMismatch (adapters.log_copy), NotAnEventLogError
                                (adapters.postgres)
:class:`RuntimeFailure`    1    StoreFullError (adapters.sqlite_open), WriterTokenError
                                and its TokenAlreadyActive / StaleEpochError
                                (domain.policies.writer), DeadlockError (domain.plan.graph),
                                IllegalTransition (domain.policies.lifecycle), ScannerUnavailable
                                (adapters.secrets), ProjectionConflict (projections.port)
========================  ====  ==================================================

The classes keep their older bases too (``ValueError``, the event store's
``PersistenceError`` family, :mod:`uok.domain.log.errors`), so existing ``except`` clauses still
catch them. :func:`classify` is the one place that turns an exception into an
exit code and a message; the CLI calls it and nothing else decides.
"""

from __future__ import annotations

from uok.domain.errors import (
    EXIT_INPUT,
    EXIT_INTEGRITY,
    EXIT_RUNTIME,
    InputError,
    IntegrityFailure,
    RuntimeFailure,
    UokError,
)

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTEGRITY",
    "EXIT_INTERRUPTED",
    "EXIT_RUNTIME",
    "InputError",
    "IntegrityFailure",
    "RuntimeFailure",
    "UokError",
    "classify",
]

EXIT_INTERRUPTED = 130


def classify(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one-line message) for a failure uok knows, None for a bug.

    Besides uok's own classes this knows the few driver errors a command can
    meet before uok wraps them (a file opened by SQLite directly, the event
    store's persistence errors): matched by class, never by
    name.
    """
    if isinstance(exc, UokError):
        return exc.exit_code, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    import apsw  # only reached on an unexpected failure: no cost on the normal path

    from uok.domain.log.errors import IntegrityError, OperationalError

    if isinstance(exc, (apsw.CorruptError, apsw.NotADBError)):
        return EXIT_INTEGRITY, f"the event log is corrupt or not a SQLite database: {exc}"
    if isinstance(exc, apsw.FullError):
        return EXIT_RUNTIME, f"database or disk is full: {exc}"
    if isinstance(exc, (OperationalError, IntegrityError)):
        return EXIT_RUNTIME, str(exc)
    return None
