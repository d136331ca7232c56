"""CI pre-flight: the PostgreSQL half of the test suite needs a server.

CI machines run one at 127.0.0.1:5432 (trust authentication, user
postgres) before CI starts; this script starts nothing. It connects once
and says exactly what is wrong if it cannot: not installed, not
listening, refusing the user, or too old. Exit 0 when usable, 1 otherwise.
"""

from __future__ import annotations

import os
import sys

URL = os.environ.get("UOK_TEST_PG") or "postgresql://postgres@127.0.0.1:5432/postgres"


def main() -> int:
    try:
        import psycopg
    except ImportError:
        print("ci: psycopg is not installed (pip install -e '.[test]' installs it)", file=sys.stderr)
        return 1
    from uok.adapters.postgres.target import redact

    try:
        with psycopg.connect(URL, connect_timeout=10) as conn:
            version = conn.info.server_version
    except psycopg.OperationalError as e:
        reason = " ".join(str(e).split())
        print(
            f"ci: PostgreSQL is not usable at {redact(URL)}: {reason}\n"
            "ci: the PostgreSQL tests need a server there (trust auth, user postgres), or set UOK_TEST_PG "
            "to another server's URL. On a CI machine it is started before CI runs; to start it by hand: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            file=sys.stderr,
        )
        return 1
    if version < 140000:
        print(f"ci: PostgreSQL at {redact(URL)} is version {version}; uok needs 14 or newer", file=sys.stderr)
        return 1
    print(f"ci: PostgreSQL {version // 10000}.{version % 10000} is up at {redact(URL)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
