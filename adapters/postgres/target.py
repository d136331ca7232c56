"""Where a PostgreSQL event log lives: a ``postgresql://`` URL, parsed once.

The URL is libpq's (``postgresql://user:password@host:port/dbname?...``)
plus one parameter of ours, ``schema`` (default ``public``): the log's
tables live in that schema, so one database can hold several independent
logs (the tests give each test its own). ``schema`` is stripped before the
URL reaches libpq, which refuses parameters it does not know.

A connection string is never shown with its password: :attr:`PgTarget.display`
replaces it (and a ``password=`` query parameter) with ``***``, and
:meth:`PgTarget.scrub` removes it from any text, such as a driver's error
message, before that text reaches a user, a log line or an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from uok.domain.errors import InputError

SCHEMES = ("postgresql", "postgres")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_MASK = "***"


def is_postgres_url(value: object) -> bool:
    """True for a ``postgresql://`` or ``postgres://`` URL (what selects this store)."""
    return isinstance(value, str) and value.split("://", 1)[0].lower() in SCHEMES and "://" in value


class BadTarget(InputError, ValueError):
    """The URL cannot name a PostgreSQL event log (exit 2; its message holds no password)."""


@dataclass(frozen=True)
class PgTarget:
    conninfo: str  # for psycopg: the URL without ``schema`` (may hold the password)
    schema: str
    display: str  # the URL as shown to people: password replaced by ***
    secrets: tuple[str, ...] = ()  # the password as written and decoded, for scrub()

    @classmethod
    def parse(cls, url: str) -> PgTarget:
        if not is_postgres_url(url):
            raise BadTarget("a PostgreSQL event log is named by a postgresql:// URL")
        try:
            parts = urlsplit(url)
            query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as e:
            raise BadTarget(f"bad PostgreSQL URL {redact(url)}: {e}") from None
        secrets = [s for s in (parts.password, unquote(parts.password or "")) if s]
        secrets += [v for k, v in query if k == "password" and v]
        schema = "public"
        kept = []
        for key, value in query:
            if key == "schema":
                schema = value
            else:
                kept.append((key, value))
        if not _SCHEMA_NAME.fullmatch(schema):
            raise BadTarget(
                f"schema {schema!r} in {redact(url)} is not a plain lower-case name (a-z, 0-9, _; at most 63 characters)"
            )
        conninfo = urlunsplit(parts._replace(query=urlencode(kept, quote_via=quote)))
        display = redact(url)
        return cls(conninfo=conninfo, schema=schema, display=display, secrets=tuple(sorted(set(secrets), key=len)))

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the password replaced (longest first)."""
        for secret in reversed(self.secrets):
            text = text.replace(secret, _MASK)
        return text

    def __repr__(self) -> str:  # the dataclass repr would print conninfo
        return f"PgTarget({self.display!r})"

    __str__ = __repr__


def redact(url: str) -> str:
    """``url`` with its password (in the authority or as ``password=``) shown as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^@/]*@", "//***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + _MASK
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=" + _MASK, parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))
