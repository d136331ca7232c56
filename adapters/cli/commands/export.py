"""``uok export``: an audit export of the log (or a range, or one run) that
``uok verify --export`` (or an auditor's own script) can prove. See
``docs/audit.md``."""

from __future__ import annotations

import argparse
from pathlib import Path

from uok.adapters.cli.common import open_store, refuse_to_replace_a_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError, IntegrityFailure


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "export",
        description="""
            Export events with their positions, streams, versions, topics, payloads and chain
            hashes (each row with the hash of the event before it), plus a manifest, so the
            export can be verified without the log. The range's chain is verified while
            exporting; a broken chain exits 3 and writes nothing.
        """,
        examples="""
            uok export --format jsonl --out audit.jsonl
            uok export --format parquet --out run.parquet --run r20260101120000-abc123
            uok export --format csv --out first-1000.csv --from 1 --to 1000
            uok verify --export audit.jsonl
        """,
        notes="""
            Writes PATH and PATH.manifest.json (count, first/last position, the hash
            before the first row, head hash, format version, SHA-256 of PATH), both
            mode 0600. The same range always gives the same bytes.
        """,
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="file format (default: from --out's extension, .parquet / .csv / .jsonl .ndjson .json, else jsonl); "
        "a format that contradicts the extension exits 2",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="data file to write (manifest: PATH.manifest.json)")
    p.add_argument("--run", metavar="ID", help="only the events this run wrote (each row still proves itself)")
    p.add_argument("--from", dest="first", type=int, default=1, metavar="P", help="first position (default 1)")
    p.add_argument("--to", dest="last", type=int, metavar="P", help="last position (default: the head)")
    p.add_argument("--json", action="store_true", help="one JSON object: the manifest")
    p.set_defaults(func=export)


FORMATS = ("jsonl", "parquet", "csv")
EXTENSIONS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def export_format(out: Path, given: str | None) -> str:
    """The format ``--out``'s extension names, unless ``--format`` says
    otherwise; a contradiction (``--format jsonl --out a.parquet``) is bad input."""
    implied = EXTENSIONS.get(out.suffix.lower())
    if given is None:
        return implied or "jsonl"
    if implied is not None and implied != given:
        raise InputError(f"--format {given} contradicts --out {out.name} (a {implied} file name); change one of them")
    return given


def export(args: argparse.Namespace) -> int:
    from uok.adapters.export import export as do_export
    from uok.domain.log.chain import ChainBroken

    out = Path(args.out)
    if out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file path")
    fmt = export_format(out, args.format)
    refuse_to_replace_a_log(out, "--out")  # `--out .uok/events.db` must not replace the log
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: no directory {out.parent}")
    store = open_store(args, readonly=True)
    try:
        try:  # an ExportError (empty range, unknown run) exits 2
            m = do_export(store, out, fmt, first=args.first, last=args.last, run_id=args.run)
        except ChainBroken as e:
            raise IntegrityFailure(f"{store.location}: {e}; nothing exported") from None
        except PermissionError as e:
            raise InputError(f"--out {out}: cannot write: {e.strerror}") from None
        except OSError as e:
            if e.filename is None:
                raise
            raise InputError(f"--out {out}: cannot write {e.filename}: {e.strerror}") from None
    finally:
        store.close()
    if args.json:
        emit(m)
    else:
        what = f"run {m.run_id}: " if m.run_id else ""
        print(
            f"exported {what}{m.count} events (positions {m.first_position}..{m.last_position}) to {out} "
            f"[{m.format}], head {m.head_hash[:16]}…, manifest {out.name}.manifest.json"
        )
    return 0


def verify_export_cli(args: argparse.Namespace) -> int:
    """``uok verify --export PATH [--db LOG]`` (wired from verify_cmd)."""
    import time

    from uok.adapters.export_verify import verify_export
    from uok.domain.log.chain import ChainBroken

    path = Path(args.export)
    if not path.is_file():  # a mistyped path is bad input (exit 2), not a damaged export (exit 3)
        raise InputError(f"--export {path}: no such file")
    store = open_store(args, readonly=True) if getattr(args, "db", None) else None
    started = time.perf_counter()
    try:
        v = verify_export(path, store)
    except ChainBroken as e:  # ExportInvalid names the file itself (exit 3)
        raise IntegrityFailure(f"{path}: {e}") from None
    finally:
        if store is not None:
            store.close()
    elapsed = time.perf_counter() - started
    if args.json:
        out = {
            "ok": True,
            "export": str(path),
            "format": v.format,
            "events": v.count,
            "first_position": v.first_position,
            "last_position": v.last_position,
            "head": v.head_hash,
            "run_id": v.run_id,
            "checked_against_log": v.checked_against_log,
            "seconds": round(elapsed, 3),
        }
        emit(out)
    else:
        scope = f"run {v.run_id}, each row proved" if v.run_id else "hash chain verified"
        log = "; every event matches the log" if v.checked_against_log else ""
        print(
            f"ok: export {path} [{v.format}]: {v.count} events (positions {v.first_position}..{v.last_position}), "
            f"{scope}, head {v.head_hash}{log} ({elapsed:.2f}s)"
        )
    return 0
